"""Wall time of complete fits of real files with the ensemble models (LM and DREAM).

Usage: python benchmarks/bench_fit.py [--files AOT_Microemulsion-Core_Contrast.xml Alumina_usaxs.csv]
       [--dream-steps 200]

Each file of sasdata's example_data/1d_data is fitted with grf_two_phase (case two_phase_low, from the
model defaults, the file's whole q range, its own errors as weights) by LM and by DREAM; the same run
fits teubner_strey with LM through bumps as a reference.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

import sasdata

from sasview_grf_plugin.fitting import fit_curve
from sasview_grf_plugin.loaders import load_curves

DATA = os.path.join(os.path.dirname(sasdata.__file__), "example_data", "1d_data")


def teubner_strey_lm(curve) -> tuple[float, float]:
    from bumps.fitters import fit
    from bumps.names import FitProblem
    from sasmodels.bumps_model import Experiment, Model
    from sasmodels.core import load_model

    data = curve.data
    data.qmin, data.qmax = float(curve.q[0]), float(curve.q[-1])
    model = Model(load_model("teubner_strey"))
    for p in ("scale", "background", "volfraction_a", "xi", "d"):
        getattr(model, p).range(*{"scale": (0, 1e6), "background": (0, 1e3), "volfraction_a": (0.01, 0.99),
                                  "xi": (1, 1e4), "d": (1, 1e4)}[p])
    problem = FitProblem(Experiment(data=data, model=model))
    t0 = time.perf_counter()
    fit(problem, method="lm", steps=200, verbose=False)
    return time.perf_counter() - t0, float(problem.chisq())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", nargs="+", default=["AOT_Microemulsion-Core_Contrast.xml", "Alumina_usaxs.csv"])
    ap.add_argument("--dream-steps", type=int, default=200)
    args = ap.parse_args()
    print(f"{date.today()} {platform.machine()} cores={os.cpu_count()}")
    print(f"{'file':<38}{'points':>7}{'LM s':>8}{'LM chi2':>9}{'DREAM s':>9}{'DREAM evals':>12}"
          f"{'teubner_strey LM s':>20}{'TS chi2':>9}")
    for name in args.files:
        path = os.path.join(DATA, name)
        lm = fit_curve(path, "two_phase_low", mode="conventional", q_unit="1/A")
        dream = fit_curve(path, "two_phase_low", mode="conventional", method="dream", steps=args.dream_steps,
                          q_unit="1/A")
        ts_time, ts_chi2 = teubner_strey_lm(load_curves(path, q_unit="1/A")[0])
        print(f"{name:<38}{lm.n_points:>7}{lm.wall_time:>8.2f}{lm.chi2:>9.3g}{dream.wall_time:>9.1f}"
              f"{dream.evaluations:>12}{ts_time:>20.2f}{ts_chi2:>9.3g}")


if __name__ == "__main__":
    main()
