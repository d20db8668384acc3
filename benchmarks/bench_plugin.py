"""Plugin model evaluation cost via sasmodels, in one run against built-in references.

Usage: python benchmarks/bench_plugin.py [--grid-size 64] [--n-q 200] [--repeats 200]

* Ensemble models (grf_two_phase, grf_three_phase): uncached calls (every call has another a and another
  smoothing_ratio, hence no cache hit of the table's spline) against the built-in C model teubner_strey on
  the same q.
* Simulation models (*_sim): the first (simulating) call and cached calls, against the sasmodels
  overhead of the trivial built-in power_law.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from datetime import date

import numpy as np
from _timing import median_time
from sasmodels.core import load_model
from sasmodels.direct_model import call_kernel

from sasview_grf_plugin.ensemble.table import load_table
from sasview_grf_plugin.sasview import engine, model_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid-size", type=int, default=64)
    ap.add_argument("--n-q", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    print(f"{date.today()} {platform.machine()} cores={os.cpu_count()} n_q={args.n_q}")
    q = np.geomspace(1e-3, 0.6, args.n_q)
    t0 = time.perf_counter()
    load_table()
    print(f"table load: {(time.perf_counter() - t0) * 1e3:.1f} ms (once per process)")
    ts = load_model("teubner_strey").make_kernel([q])
    ref = median_time(lambda: call_kernel(ts, {}), args.repeats)
    print(f"\n{'ensemble model':<18}{'uncached ms':>13}{'teubner_strey ms':>18}{'ratio':>8}")
    for name in ("grf_two_phase", "grf_three_phase"):
        kernel = load_model(model_path(name)).make_kernel([q])
        # The table's splines are cached by (porosity, layer_fraction, smoothing_ratio): a alone would hit it.
        values = itertools.cycle(zip(np.linspace(40.0, 60.0, 1000), np.linspace(0.15, 0.3, 1000), strict=True))
        t = median_time(lambda k=kernel, it=values: call_kernel(k, dict(zip(("a", "smoothing_ratio"), next(it),
                                                                              strict=True))), args.repeats)
        print(f"{name:<18}{t * 1e3:>13.3f}{ref * 1e3:>18.3f}{t / ref:>8.2f}")
    floor_kernel = load_model("power_law").make_kernel([q])
    floor = median_time(lambda: call_kernel(floor_kernel, {}), args.repeats)
    print(f"\n{'simulation model':<22}{'first call ms':>15}{'cached ms':>12}{'power_law ms':>14}{'ratio':>8}"
          f"   (grid {args.grid_size})")
    for name in ("grf_two_phase_sim", "grf_three_phase_sim"):
        engine.clear_cache()
        kernel = load_model(model_path(name)).make_kernel([q])
        pars = {"grid_size": args.grid_size}
        t0 = time.perf_counter()
        call_kernel(kernel, pars)
        first = time.perf_counter() - t0
        cached = median_time(lambda k=kernel, p=pars: call_kernel(k, p), args.repeats)
        print(f"{name:<22}{first * 1e3:>15.1f}{cached * 1e3:>12.3f}{floor * 1e3:>14.3f}{cached / floor:>8.2f}")


if __name__ == "__main__":
    main()
