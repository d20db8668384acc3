"""Evaluation cost of the exact GRF models (broad and peaked spectra) via sasmodels, against teubner_strey.

Usage: python benchmarks/bench_exact_models.py [--n-q 200] [--repeats 300]

Every call has another porosity (or layer volume), so the per-parameter cache of the evaluator never hits:
each call runs the whole exact evaluation (correlation on the grid, the bivariate normal table, FFTLog,
interpolation). The Matérn correlation's nodes in alpha are computed once per neighbourhood of alpha (the
"first call" column includes them), as in a fit. The built-in C model teubner_strey is timed on the same q
in the same run; "+shape" also changes the shape parameter (alpha or xi_over_d) on every call; the cached
call (same parameters again) is shown for reference.
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

from sasview_grf_plugin.sasview import model_path

CASES = [
    ("grf_two_phase_broad", {"a": 50.0, "alpha": 1.5}, "porosity", (0.1, 0.5)),
    ("grf_two_phase_broad", {"a": 50.0, "alpha": 0.4}, "porosity", (0.1, 0.5)),
    ("grf_two_phase_peaked", {"d": 200.0, "xi_over_d": 0.5}, "porosity", (0.1, 0.5)),
    ("grf_three_phase_broad", {"a": 50.0, "alpha": 1.5, "pore_share": 0.4}, "layer_volume", (0.05, 0.3)),
    ("grf_three_phase_peaked", {"d": 200.0, "xi_over_d": 0.5, "pore_share": 0.5}, "layer_volume", (0.05, 0.3)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-q", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args()
    print(f"{date.today()} {platform.machine()} cores={os.cpu_count()} n_q={args.n_q} "
          f"load={os.getloadavg()[0]:.1f}")
    q = np.geomspace(1e-3, 0.6, args.n_q)
    ts = load_model("teubner_strey").make_kernel([q])
    ref = median_time(lambda: call_kernel(ts, {}), args.repeats)
    print(f"\n{'model':<24}{'shape':<16}{'first ms':>10}{'uncached ms':>13}{'+shape ms':>11}{'cached ms':>11}"
          f"{'teubner_strey ms':>18}{'ratio':>8}")
    for name, pars, vary, (lo, hi) in CASES:
        kernel = load_model(model_path(name)).make_kernel([q])
        t0 = time.perf_counter()
        call_kernel(kernel, {**pars, vary: 0.5 * (lo + hi)})
        first = time.perf_counter() - t0
        values = itertools.cycle(np.linspace(lo, hi, 10007))
        t = median_time(lambda k=kernel, it=values, p=pars, v=vary: call_kernel(k, {**p, v: next(it)}), args.repeats)
        # The shape parameter changes too (by up to +-2 %, as in a fit): its correlation on the grid is redone.
        sk = "alpha" if "alpha" in pars else "xi_over_d"
        shapes = itertools.cycle(pars[sk] * np.linspace(0.98, 1.02, 9973))
        for s in np.linspace(0.98, 1.02, 6):  # the Matérn nodes of this neighbourhood, once (as the first call)
            call_kernel(kernel, {**pars, sk: pars[sk] * s})
        t2 = median_time(lambda k=kernel, it=values, p=pars, v=vary, sh=shapes, sk=sk:
                         call_kernel(k, {**p, v: next(it), sk: next(sh)}), args.repeats)
        cached = median_time(lambda k=kernel, p=pars: call_kernel(k, p), args.repeats)
        shape = ",".join(f"{k}={v:g}" for k, v in pars.items() if k in ("alpha", "xi_over_d"))
        print(f"{name:<24}{shape:<16}{first * 1e3:>10.1f}{t * 1e3:>13.3f}{t2 * 1e3:>11.3f}{cached * 1e3:>11.3f}"
              f"{ref * 1e3:>18.3f}{t / ref:>8.2f}")


if __name__ == "__main__":
    main()
