"""ML-seeded against conventional fitting on simulated measurements at known parameters.

Usage: python benchmarks/study_fitting.py --case two_phase_low --n 20 [--method lm] [--json out.json]

Each measurement: a new structure (seed not in any dataset) at parameters drawn in the central 80 %
of the case's ranges, lognormal noise (alpha log-uniform as in the datasets), an arbitrary scale
and a flat background, written as canSAS XML and read back through sasdata. Each is analysed in
the three modes; a result counts as a success when a is within 10 % and the fractions within 0.05
of the truth.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from datetime import date

import numpy as np

from sasview_grf_plugin.datasets import PAPER_INTENSITY_SCALE, add_noise, parameter_ranges
from sasview_grf_plugin.datasets.cases import get_case
from sasview_grf_plugin.fitting import MODES, fit_curve
from sasview_grf_plugin.simulator import PRESETS, simulate_curve


def measurement(path: str, cfg, truth: dict, seed: int, rng: np.random.Generator) -> None:
    from sasdata.dataloader.data_info import Data1D
    from sasdata.dataloader.readers.cansas_reader import Reader

    curve = simulate_curve(cfg, truth["a"], truth["porosity"], truth["layer_fraction"], seed=seed)
    noisy, alpha = add_noise(PAPER_INTENSITY_SCALE * curve, rng)
    scale = 10 ** rng.uniform(0, 2)
    sigma = np.sqrt(alpha * PAPER_INTENSITY_SCALE * curve)
    y = scale * noisy / PAPER_INTENSITY_SCALE
    background = 0.02 * float(np.min(y))
    d = Data1D(x=cfg.q / 10, y=y + background, dy=scale * sigma / PAPER_INTENSITY_SCALE)
    d.xaxis("\\rm{Q}", "A^{-1}")
    d.yaxis("\\rm{Intensity}", "cm^{-1}")
    d.filename = os.path.basename(path)
    Reader().write(path, d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="two_phase_low")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--method", default="lm")
    ap.add_argument("--seed", type=int, default=31337)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    case = get_case(args.case)
    cfg = PRESETS["compact"].replace(q_min=0.08, q_max=3.2, n_q=300)  # a detector grid wider than the model's
    ranges = parameter_ranges(PRESETS["compact"], case)
    rng = np.random.default_rng(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.n):
            truth = {k: float(rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))) if hi > lo else 0.0
                     for k, (lo, hi) in ranges.items()}
            path = os.path.join(tmp, f"m{i:03d}.xml")
            measurement(path, cfg, truth, seed=args.seed * 1000 + i, rng=rng)
            for mode in MODES:
                r = fit_curve(path, case.name, mode=mode, method=args.method)
                err_a = abs(r.values["a"] / 10 - truth["a"]) / truth["a"]
                err_f = max(abs(r.values[k] - truth[k]) for k in case.outputs if k != "a")
                rows.append({"i": i, "mode": mode, "truth": truth, "values": r.values, "chi2": r.chi2,
                             "evaluations": r.evaluations, "wall_time": r.wall_time,
                             "err_a": err_a, "err_fraction": err_f, "success": bool(err_a < 0.10 and err_f < 0.05)})
            print(f"{i + 1}/{args.n} done", flush=True)
    print(f"\n{date.today()} {platform.machine()} cores={os.cpu_count()} case={case.name} n={args.n} "
          f"method={args.method}")
    print(f"{'mode':<14}{'success':>9}{'median |da|/a':>15}{'median |d frac|':>17}{'median chi2':>13}"
          f"{'median evals':>13}{'median s':>10}")
    for mode in MODES:
        sel = [r for r in rows if r["mode"] == mode]
        print(f"{mode:<14}{sum(r['success'] for r in sel):>5}/{len(sel):<3}"
              f"{statistics.median(r['err_a'] for r in sel):>15.3f}"
              f"{statistics.median(r['err_fraction'] for r in sel):>17.3f}"
              f"{statistics.median(r['chi2'] for r in sel):>13.3g}"
              f"{statistics.median(r['evaluations'] for r in sel):>13.0f}"
              f"{statistics.median(r['wall_time'] for r in sel):>10.2f}")
    seed_ok = {r["i"] for r in rows if r["mode"] == "seed" and r["success"]}
    conv_fail = {r["i"] for r in rows if r["mode"] == "conventional" and not r["success"]}
    print(f"conventional fails on {len(seed_ok & conv_fail)} of the {len(seed_ok)} measurements where seed succeeds")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
