"""Plugin model evaluation cost: first (simulating) call and cached calls, via sasmodels.

Usage: python benchmarks/bench_plugin.py [--grid-size 64] [--n-q 200] [--repeats 200]
Prints the cached call's time against the sasmodels overhead of a trivial built-in model
evaluated on the same q (the floor any plugin pays).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

import numpy as np
from _timing import median_time
from sasmodels.core import load_model
from sasmodels.direct_model import call_kernel

from sasview_grf_plugin.sasview import engine, model_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid-size", type=int, default=64)
    ap.add_argument("--n-q", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    print(f"{date.today()} {platform.machine()} cores={os.cpu_count()} grid={args.grid_size} n_q={args.n_q}")
    q = np.geomspace(1e-3, 0.6, args.n_q)
    print(f"{'model':<18}{'first call ms':>15}{'cached ms':>12}{'trivial model ms':>18}{'ratio':>8}")
    floor_kernel = load_model("power_law").make_kernel([q])
    floor = median_time(lambda: call_kernel(floor_kernel, {}), args.repeats)
    for name in ("grf_two_phase", "grf_three_phase"):
        engine.clear_cache()
        kernel = load_model(model_path(name)).make_kernel([q])
        pars = {"grid_size": args.grid_size}
        t0 = time.perf_counter()
        call_kernel(kernel, pars)
        first = time.perf_counter() - t0
        cached = median_time(lambda k=kernel, p=pars: call_kernel(k, p), args.repeats)
        print(f"{name:<18}{first * 1e3:>15.1f}{cached * 1e3:>12.3f}{floor * 1e3:>18.3f}{cached / floor:>8.2f}")


if __name__ == "__main__":
    main()
