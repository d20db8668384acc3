"""Fits as SasView's GUI runs them: LM and DREAM from the models' defaults on four sasdata porous files.

Usage: python benchmarks/study_gui_fits.py [--dream-file Alumina_usaxs.csv] [--no-dream] [--out results.json]

What a GUI user does in SasView's Fitting perspective, done through the same engine without the window:
SasView's own ``sas.sascalc.fit.BumpsFitting.BumpsFit`` (the FitEngine its Fit button runs), the plugin
model loaded as SasView loads it (``sasmodels.sasview_model.load_custom_model``), the model's defaults
as the start (scale 1, background 0.001), per-parameter fit ranges = the model's limits (SasView's
default), SasView's smearer (``smear_selection``: pinhole dQ or slit length from the file), and bumps'
fitter options as SasView leaves them (``bumps.options.FIT_CONFIG``; DREAM: 10,000 samples, burn 100,
pop 10). Ticked: scale, background and every shape parameter, with ``smoothing_ratio`` free, then fixed
at its default (0.2), for the comparison the issue asks for.

Model exceptions: bumps catches an exception raised inside the model, logs its traceback with
``logging.error`` and goes on with NaN (what SasView's Log Explorer shows). Every ERROR record logged
during a fit is counted; "clean" means zero.

Files (sasdata's example data; the three of docs/comparison.md and the USAXS/SAXS/WAXS file named in the
design brief), read with the package's loaders (q in 1/Å, the .pdh file's slit length kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

FILES = [("Alumina_usaxs.csv", "1/A"), ("Anton-Paar.pdh", None), ("AOT_Microemulsion-Core_Contrast.xml", None),
         ("Lew_Sa3_DSM_QinA.h5", None)]
SHAPE = {"grf_two_phase": ["a", "porosity", "smoothing_ratio"],
         "grf_three_phase": ["a", "porosity", "layer_fraction", "smoothing_ratio"]}
# Timing reference in the same run: SasView's built-in C model of the same kind (bicontinuous, two phases) with
# as many free parameters as grf_two_phase.
REFERENCE = ("teubner_strey", ["volfraction_a", "d", "xi"])


class _Errors(logging.Handler):
    """Counts ERROR records (bumps logs a model's traceback this way) and keeps the first."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count, self.first = 0, None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = record.getMessage()[:2000]


def sasview_fit(path: Path, q_unit: str | None, model_name: str, pars: list[str], method: str,
                start: dict[str, float] | None = None) -> dict:
    """One fit through SasView's fit engine; returns chi^2 (SasView's reduced chi^2), values, errors logged.
    ``start``: parameter values other than the model's defaults (a previous fit's, as the GUI keeps them)."""
    from bumps.options import FIT_CONFIG
    from sas.sascalc.fit.BumpsFitting import BumpsFit
    from sas.sascalc.fit.qsmearing import smear_selection
    from sasmodels.sasview_model import load_custom_model

    from sasview_grf_plugin.loaders import load_curves
    from sasview_grf_plugin.sasview import model_path

    (curve,) = load_curves(path, q_unit=q_unit)
    data = curve.data
    if model_name in SHAPE:
        model = load_custom_model(model_path(model_name))()
    else:  # a built-in model, the timing reference
        from sasmodels.sasview_model import _make_standard_model

        model = _make_standard_model(model_name)()
    for k, v in (start or {}).items():
        model.setParam(k, v)
    FIT_CONFIG.selected_id = method
    fitter = BumpsFit()
    fitter.set_model(model, 0, pars=list(pars), constraints=[])
    fitter.set_data(data, 0, smearer=smear_selection(data, model), qmin=float(data.x[0]), qmax=float(data.x[-1]))
    fitter.select_problem_for_fit(0, 1)
    fitter.set_weight_increase(0, 1.0)
    errors = _Errors()
    root = logging.getLogger()
    root.addHandler(errors)
    t0 = time.perf_counter()
    try:
        results = fitter.fit(handler=None)
        exc = None
    except Exception as e:  # noqa: BLE001 - what the GUI would show as "Fitting failed"
        results, exc = [], f"{type(e).__name__}: {e}"
    finally:
        root.removeHandler(errors)
    wall = time.perf_counter() - t0
    out = {"file": path.name, "model": model_name, "method": method, "free": list(pars), "wall_s": round(wall, 2),
           "errors_logged": errors.count, "first_error": errors.first, "exception": exc}
    if results:
        r = results[0]
        values = dict(zip(r.param_list, (float(v) for v in r.pvec), strict=True))
        limits = {p: tuple(model.details[p][1:3]) for p in values}
        out.update(chi2=float(r.fitness), success=bool(r.success), mesg=r.mesg, values=values,
                   inside_limits=all(limits[k][0] <= v <= limits[k][1] for k, v in values.items()),
                   on_limit=sorted(k for k, v in values.items() if k in SHAPE.get(model_name, REFERENCE[1])
                                   and (np.isclose(v, limits[k][0], rtol=1e-6) or np.isclose(v, limits[k][1],
                                                                                               rtol=1e-6))))
        state = getattr(r, "uncertainty_state", None)
        if state is not None:  # DREAM: the posterior SasView summarizes (68 % and 95 % credible intervals)
            draw = state.draw()
            pts = np.asarray(draw.points)
            labels = [str(lab).split(".")[-1] for lab in draw.labels]  # the draw's column order, "model.name"
            out["posterior"] = {k: {"mean": float(pts[:, i].mean()),
                                    "ci68": [float(v) for v in np.percentile(pts[:, i], [15.865, 84.135])],
                                    "ci95": [float(v) for v in np.percentile(pts[:, i], [2.5, 97.5])]}
                                for i, k in enumerate(labels)}
            out["correlation"] = {"labels": labels,
                                  "matrix": np.round(np.corrcoef(pts, rowvar=False), 3).tolist()}
            out["samples"] = int(pts.shape[0])
        if model_name in SHAPE:
            ratio = values.get("smoothing_ratio", model.getParam("smoothing_ratio"))
            out["smoothing_A"] = ratio * values.get("a", model.getParam("a"))
    return out


def main() -> None:
    import sasdata

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dream-file", default="Alumina_usaxs.csv")
    ap.add_argument("--no-dream", action="store_true")
    ap.add_argument("--no-lm", action="store_true")
    ap.add_argument("--models", nargs="+", default=list(SHAPE))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gui_fits.json"))
    args = ap.parse_args()
    examples = Path(os.path.dirname(sasdata.__file__)) / "example_data" / "1d_data"
    rows = []
    for fname, q_unit in [] if args.no_lm else FILES:
        for name in args.models:
            # Every shape parameter ticked; smoothing_ratio unticked; and the two-step way (unticked, Fit, then
            # ticked, Fit again from the first fit's values, as the GUI keeps them).
            fixed_row = None
            for how in ("fixed", "free", "two-step"):
                pars = ["scale", "background"] + [p for p in SHAPE[name] if how != "fixed" or p != "smoothing_ratio"]
                start = fixed_row["values"] if how == "two-step" and fixed_row and "values" in fixed_row else None
                row = sasview_fit(examples / fname, q_unit, name, pars, "lm", start=start)
                row["smoothing"] = how
                fixed_row = row if how == "fixed" else fixed_row
                rows.append(row)
                print(f"LM    {fname:<38}{name:<16} smoothing {how:<9} "
                      f"chi2 {row.get('chi2', float('nan')):<10.4g} errors logged {row['errors_logged']}  "
                      f"inside limits {row.get('inside_limits')}  on limit {row.get('on_limit')}  "
                      f"{row['wall_s']:.2f} s  {row['exception'] or ''}", flush=True)
    if not args.no_dream:
        fname, q_unit = next(f for f in FILES if f[0] == args.dream_file)
        for name in [*args.models, REFERENCE[0]]:
            pars = ["scale", "background"] + (SHAPE[name] if name in SHAPE else REFERENCE[1])
            row = sasview_fit(examples / fname, q_unit, name, pars, "dream")
            rows.append(row)
            print(f"DREAM {fname:<38}{name:<16} chi2 {row.get('chi2', float('nan')):.4g}  "
                  f"errors logged {row['errors_logged']}  inside limits {row.get('inside_limits')}  "
                  f"{row['wall_s']:.1f} s  values {row.get('values')}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from bumps.options import FIT_CONFIG

    args.out.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                    "dream_options": FIT_CONFIG.values["dream"], "lm_options": FIT_CONFIG.values["lm"],
                                    "rows": rows}, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
