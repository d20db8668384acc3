"""Latency of the measured family's one-curve prediction, against one evaluation of the ensemble model.

Usage: python benchmarks/bench_measured.py [--curves 200] [--bundles DIR]

For each case (forced) and for ``case="auto"``: the median wall time of ``MeasuredPredictor.predict``
on one curve (after a warm-up, flat-forest engine built), and in the same run the median time of one
``model_curve`` evaluation on the same q (the self-check's model evaluation) and of the self-check
alone. The issue's budget is "1 ms + one model evaluation" per forced-case prediction.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np

from sasview_grf_plugin.ml.measured import load_measured
from sasview_grf_plugin.ml.measured_data import MEASURED_CASES, model_curve, synthesize


def median_time(fn, repeat: int) -> float:
    """Median wall time; the ensemble table's spline cache is emptied first (a new curve is a cache miss)."""
    from sasview_grf_plugin.ensemble.table import load_table

    table = load_table()
    times = []
    for _ in range(repeat):
        table._cache.clear()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curves", type=int, default=200)
    ap.add_argument("--bundles", type=Path, default=None)
    args = ap.parse_args()
    fam = load_measured(args.bundles)
    print(f"# bench_measured {date.today()} on {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}; median per curve over {args.curves} curves")
    print(f"{'case':<18}{'predict [ms]':>14}{'model eval [ms]':>17}{'self-check [ms]':>17}{'predict - eval':>16}")
    for j, case in enumerate(MEASURED_CASES):
        d = synthesize(MEASURED_CASES[case], args.curves, np.random.SeedSequence([77, j]), keep_curves=True)
        forced = "two_phase_low" if case == "two_phase" else case
        for mode in (forced, "auto"):
            preds, evals, checks = [], [], []
            for k, (q, i, di) in enumerate(d["curves"]):
                fam.predict(q, i, di, case=mode)  # warm-up (builds the flat forests once)
                preds.append(median_time(lambda q=q, i=i, di=di, mode=mode: fam.predict(q, i, di, case=mode), 3))
                v = {"a": float(d["a"][k]), "porosity": float(d["porosity"][k]),
                     "layer_fraction": float(d["layer_fraction"][k]), "smoothing": float(d["smoothing"][k])}
                evals.append(median_time(lambda q=q, v=v: model_curve(q * v["a"], v["porosity"], v["layer_fraction"],
                                                                      v["smoothing"]), 3))
                checks.append(median_time(lambda q=q, i=i, di=di, v=v: fam.self_check(q, i, di, v), 3))
            p, e, c = (1e3 * float(np.median(x)) for x in (preds, evals, checks))
            print(f"{mode:<18}{p:>14.3f}{e:>17.3f}{c:>17.3f}{p - e:>16.3f}")


if __name__ == "__main__":
    main()
