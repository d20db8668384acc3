"""Prediction latency and throughput of the model bundles (all outputs with their intervals).

Usage: python benchmarks/bench_predict.py [--bundle CASE_OR_DIR ... | --bundle all] [--repeats 1000] [--batch 10000]

Per bundle, in one run: one curve through the full path (resampling a measured 700-point curve
onto the model grid, normalization, features, every booster) and the boosters alone, with the flat
forest engine and with XGBoost's ``inplace_predict`` (the ratio is printed); a batch of 10^4
curves in one call (XGBoost, all cores); and the one-time cost of loading and of building the flat
forest. Curves are fresh draws each call, so no cache of results can help.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

import numpy as np
from _timing import median_time

from sasview_grf_plugin.datasets import normalize
from sasview_grf_plugin.ml import load_predictor, shipped_bundles
from sasview_grf_plugin.simulator import get_preset, simulate_curve

SMALL_BATCHES = (4, 16, 64)  # where the flat forest stops paying off (FLAT_MAX_CURVES)


def bench(bundle: str, repeats: int, batch_n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    xgb = load_predictor(bundle, engine="xgboost")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    flat = load_predictor(bundle, engine="flat")  # builds the flat forest at once
    build_s = time.perf_counter() - t0 - load_s
    cfg = get_preset(flat.card["preset"])
    trees = {o: n + 1 for o, n in flat.card["training"]["best_iterations"].items()}
    curve = simulate_curve(cfg, 2.5, 0.7, 0.2 if "three" in flat.case else 0.0, seed=1)
    q_meas = np.linspace(cfg.q_min * 0.9, cfg.q_max * 1.05, 700)  # a measured grid, not the model's
    meas = np.exp(np.interp(np.log(q_meas), np.log(cfg.q), np.log(curve)))
    rng = np.random.default_rng(0)
    # A pool of noisy variants: each call sees another curve.
    pool_meas = meas * rng.lognormal(0, 0.02, (256, meas.size))
    pool_norm = normalize(cfg.q, curve)[None] * rng.lognormal(0, 0.02, (256, cfg.n_q))
    it = iter(range(10**9))

    def nxt(pool: np.ndarray) -> np.ndarray:
        return pool[next(it) % len(pool)]

    out = {"load_s": load_s, "build_s": build_s, "trees": trees}
    for name, pred in (("flat", flat), ("xgboost", xgb)):
        out[f"{name}_full"] = median_time(lambda p=pred: p.predict(q_meas, nxt(pool_meas)), repeats)
        out[f"{name}_boosters"] = median_time(lambda p=pred: p.predict_normalized(nxt(pool_norm)[None]), repeats)
        out[f"{name}_points"] = median_time(lambda p=pred: p.predict_normalized(nxt(pool_norm)[None],
                                                                                intervals=False), repeats)
    for n in SMALL_BATCHES:
        rows = pool_norm[:n]
        out[f"small_{n}"] = (median_time(lambda r=rows: flat.predict_normalized(r), max(repeats // 10, 5)),
                             median_time(lambda r=rows: xgb.predict_normalized(r), max(repeats // 10, 5)))
    batch = np.repeat(pool_norm[:1], batch_n, axis=0) * rng.lognormal(0, 0.01, (batch_n, cfg.n_q))
    out["batch_s"] = median_time(lambda: xgb.predict_normalized(batch), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", nargs="+", default=["all"])
    ap.add_argument("--repeats", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()
    bundles = list(shipped_bundles()) if args.bundle == ["all"] else args.bundle
    print(f"{date.today()} {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}")
    print("one curve [ms]: full path (resample + normalize + all boosters) / boosters incl. intervals / "
          "point boosters only")
    for b in bundles:
        r = bench(b, args.repeats, args.batch)
        print(f"\n{b}: trees {r['trees']}; load {r['load_s']:.2f} s, flat forest build {r['build_s']:.2f} s")
        for name in ("flat", "xgboost"):
            print(f"  {name:<8} {r[f'{name}_full'] * 1e3:7.3f} / {r[f'{name}_boosters'] * 1e3:7.3f} / "
                  f"{r[f'{name}_points'] * 1e3:7.3f}")
        print(f"  ratio xgboost/flat: full path {r['xgboost_full'] / r['flat_full']:.1f}x, "
              f"boosters {r['xgboost_boosters'] / r['flat_boosters']:.1f}x")
        print("  small batches, flat / xgboost [ms]: " + ", ".join(
            f"{n} curves {r[f'small_{n}'][0] * 1e3:.2f} / {r[f'small_{n}'][1] * 1e3:.2f}" for n in SMALL_BATCHES))
        print(f"  {args.batch} curves in one call (XGBoost, {os.cpu_count()} threads): {r['batch_s']:.3f} s "
              f"({args.batch / r['batch_s']:,.0f} curves/s, {r['batch_s'] / args.batch * 1e6:.1f} us/curve)")


if __name__ == "__main__":
    main()
