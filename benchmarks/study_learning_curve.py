"""Learning curve of the zoo boosters: validation error against the number of training curves.

Usage: python benchmarks/study_learning_curve.py --work zoo-work --case three_phase_high [--sizes 4096 8192 16384]

Trains one booster per output with the zoo's settings (``ZOO_TRAINING``) on the first n curves
of the case's training split, for each n, and prints the validation MSE and MAPE. A flat curve
means more data will not help (the error is at the preset's floor); a falling one says how much a
larger training set would buy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sasview_grf_plugin.datasets import load_dataset
from sasview_grf_plugin.datasets.cases import get_case
from sasview_grf_plugin.ml.features import FeatureScaler, log_features
from sasview_grf_plugin.ml.training import train_regressor
from sasview_grf_plugin.ml.zoo import zoo_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("zoo-work"))
    ap.add_argument("--preset", default="compact")
    ap.add_argument("--case", default="three_phase_high")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 1/4, 1/2 and all of the split")
    args = ap.parse_args()
    root = args.work / args.preset / args.case
    train, val = load_dataset(root / "train"), load_dataset(root / "val")
    sizes = args.sizes or [train.spec.n // 4, train.spec.n // 2, train.spec.n]
    settings = zoo_settings(args.preset)
    print(f"{args.case}: validation split of {val.spec.n} curves; zoo settings {settings.params}")
    print(f"{'output':<16}{'n train':>9}{'val MSE':>12}{'val MAPE %':>12}{'trees':>7}{'s':>6}")
    for out in get_case(args.case).outputs:
        for n in sizes:
            if n > train.spec.n:
                raise SystemExit(f"the training split holds {train.spec.n} curves, fewer than {n}")
            logx = log_features(train.noisy[:n])
            scaler = FeatureScaler.fit(logx)
            x_va = scaler.transform(log_features(val.noisy))
            y_va = getattr(val, out)
            t0 = time.perf_counter()
            booster, info = train_regressor(scaler.transform(logx), getattr(train, out)[:n], x_va, y_va, settings)
            pred = booster.inplace_predict(x_va)
            mape = 100 * np.mean(np.abs(pred - y_va) / np.abs(y_va))
            print(f"{out:<16}{n:>9}{info['val_mse']:>12.4e}{mape:>12.2f}{info['best_iteration'] + 1:>7}"
                  f"{time.perf_counter() - t0:>6.0f}", flush=True)


if __name__ == "__main__":
    main()
