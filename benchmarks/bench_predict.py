"""Prediction latency and throughput of a model bundle (all outputs with their intervals).

Usage: python benchmarks/bench_predict.py [--bundle CASE_OR_DIR] [--repeats 2000] [--batch 10000]
One curve: the full path (resampling a measured curve onto the model grid, normalization,
features, every booster) and the booster part alone; a batch of 10^4 curves: curves per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

import numpy as np
from _timing import median_time

from sasview_grf_plugin.ml import load_predictor
from sasview_grf_plugin.simulator import get_preset, simulate_curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="three_phase_high")
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()
    pred = load_predictor(args.bundle)
    cfg = get_preset(pred.card["preset"])
    trees = {o: n + 1 for o, n in pred.card["training"]["best_iterations"].items()}
    print(f"{date.today()} {platform.machine()} cores={os.cpu_count()} bundle={pred.case} trees={trees}")
    curve = simulate_curve(cfg, 2.5, 0.7, 0.2 if "three" in pred.case else 0.0, seed=1)
    q_meas = np.linspace(cfg.q_min * 0.9, cfg.q_max * 1.05, 700)  # a measured grid, not the model's
    meas = np.exp(np.interp(np.log(q_meas), np.log(cfg.q), np.log(curve)))
    from sasview_grf_plugin.datasets import normalize

    norm = normalize(cfg.q, curve)[None]
    full = median_time(lambda: pred.predict(q_meas, meas), args.repeats)
    boosters = median_time(lambda: pred.predict_normalized(norm), args.repeats)
    points = median_time(lambda: pred.predict_normalized(norm, intervals=False), args.repeats)
    batch = np.repeat(norm, args.batch, axis=0) * np.random.default_rng(0).lognormal(0, 0.01, (args.batch, cfg.n_q))
    for b in (*pred.bundle.boosters.values(), *pred.bundle.interval_boosters.values()):
        b.set_param({"nthread": os.cpu_count() or 1})
    t0 = time.perf_counter()
    pred.predict_normalized(batch)
    many = time.perf_counter() - t0
    print(f"one curve, full path (resample + normalize + all boosters): {full * 1e3:.3f} ms")
    print(f"one curve, features + all boosters:                        {boosters * 1e3:.3f} ms")
    print(f"one curve, features + point boosters (intervals=False):     {points * 1e3:.3f} ms")
    print(f"{args.batch} curves in one call:                                 {many:.3f} s "
          f"({args.batch / many:,.0f} curves/s, {many / args.batch * 1e6:.1f} us/curve)")


if __name__ == "__main__":
    main()
