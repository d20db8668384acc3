"""ML-seeded fitting: a measured curve in, GRF parameters with uncertainties out.

Modes:

- ``"replace"``: the boosters' prediction is the answer (milliseconds), with its intervals;
- ``"seed"``: a bumps fit of the ensemble-mean model (``grf_two_phase``/``grf_three_phase``) starting
  at the prediction, within the table's domain (porosity on the case's side of 0.5);
- ``"conventional"``: the same fit from the model's default parameters (the baseline).

Units follow SasView: q in 1/Å, ``a`` in Å, intensity in the data's unit. The boosters assume
the curve is the structure's own scattering: no instrument smearing, background subtracted, any
scale. The fit corrects what the ML part cannot: a free ``scale`` (absolute or arbitrary units)
and flat ``background``, resolution smearing through sasmodels (pinhole ``dx`` or slit ``dxl``
read with the data), and the data's whole q range (or ``q_range``).

The models are the ensemble means (deterministic, no realization scatter), so the reduced chi^2 uses
the data's errors only and equals what SasView reports for the same parameters, q range and weights.
LM reports covariance-based standard errors; DREAM reports posterior means, 68 % and 95 % credible
intervals and the parameter correlations (``FitResult.posterior``).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .loaders import intensity_unit

__all__ = ["FitResult", "fit_curve", "fit_many", "plot_fit", "MODES", "DEFAULT_MODEL_OPTIONS", "MAX_FIT_POINTS",
           "SUMMARY_FORMATS"]

MODES = ("seed", "replace", "conventional")
#: Booster families: "measured" (any q window and length scale, the default) and "paper" (the paper's
#: fixed-grid boosters of Table 2).
FAMILIES = ("measured", "paper")
# The paper's smoothing, 2 voxels of 5 Å: the paper family's boosters were trained with it.
PAPER_SMOOTHING = 10.0
# Fixed parameters of the ensemble models when nothing else sets them: the models' default smoothing_ratio
# (sigma / a = 0.2, the paper's 10 Å at a = 50 Å).
DEFAULT_MODEL_OPTIONS = {"smoothing_ratio": 0.2}
# 90 % interval -> standard deviation of a normal distribution.
_Z90 = 1.6448536269514722
# Curves with more points are rebinned before the fit: sasmodels' pinhole resolution holds a dense
# (q_calc x q) weight matrix, so memory grows as the square of the points (2000: ~50 MB).
MAX_FIT_POINTS = 2000
SUMMARY_FORMATS = (".csv", ".json")
# bumps fitters that search the whole box (no local start to improve on).
_GLOBAL_FITTERS = ("dream", "de", "pt")


@dataclass
class FitResult:
    """Outcome of :func:`fit_curve` (SasView units: ``a`` in Å)."""

    name: str
    case: str
    mode: str
    method: str
    values: dict[str, float]
    uncertainties: dict[str, float]
    start: dict[str, float]
    chi2: float
    n_points: int
    q_range: tuple[float, float]
    evaluations: int
    wall_time: float
    ml: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)
    posterior: dict[str, Any] | None = None
    curves: dict[str, list[float]] = field(default_factory=dict, repr=False)
    fixed: dict[str, float] = field(default_factory=dict)  # fixed model parameters (smoothing_ratio = sigma / a)
    # Quantities computed from the result for the user: ``smoothing`` in Å (smoothing_ratio x a).
    derived: dict[str, float] = field(default_factory=dict)
    # Parameters that ended on a limit of their fit range: name -> "lower" or "upper".
    on_limit: dict[str, str] = field(default_factory=dict)
    intensity_unit: str = ""  # the data's intensity unit ("cm^-1" for absolute data; "" if the file names none)
    units: dict[str, str] = field(default_factory=dict)  # parameter units (multi-start fits of any model)

    def to_dict(self, with_curves: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_curves:
            d.pop("curves")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitResult:
        """A result from :meth:`to_dict` (e.g. read back from ``fit --json``).

        Results saved by version 0.1 hold the models' old ``smoothing`` (sigma in Å) instead of
        ``smoothing_ratio``: it is converted to sigma / a with the result's ``a`` (a ``DeprecationWarning``
        says so) and kept as ``derived["smoothing"]``.
        """
        d = dict(d)
        d.setdefault("curves", {})
        for key in ("values", "fixed", "start", "uncertainties"):
            part = dict(d.get(key) or {})
            if "smoothing" in part and "smoothing_ratio" not in part:
                a = (d.get("values") or {}).get("a", (d.get("start") or {}).get("a"))
                sigma = part.pop("smoothing")
                if key == "uncertainties":
                    part["smoothing_ratio"] = sigma / a if a else float("nan")
                elif a:
                    warnings.warn(f"result {d.get('name')!r}: old parameter 'smoothing' ({sigma:g} Å) read as "
                                  f"smoothing_ratio = {sigma:g} / a = {sigma / a:.6g} (renamed after version 0.1)",
                                  DeprecationWarning, stacklevel=2)
                    part["smoothing_ratio"] = sigma / a
                    d.setdefault("derived", {})["smoothing"] = sigma
            d[key] = part
        known = {f.name for f in cls.__dataclass_fields__.values()}
        return cls(**{k: v for k, v in d.items() if k in known})

    def table(self) -> str:
        """A plain-text table of the result."""
        lines = [f"{self.name}: case {self.case}, mode {self.mode}" + ("" if self.mode == "replace" else
                                                                      f" ({self.method})"),
                 f"  q range {self.q_range[0]:.4g}-{self.q_range[1]:.4g} 1/Å, {self.n_points} points; "
                 f"reduced chi^2 {self.chi2:.3g}; {self.evaluations} model evaluations, {self.wall_time:.2f} s",
                 f"  {'parameter':<16}{'start':>12}{'value':>12}{'+/-':>11}"]
        for k, v in self.values.items():
            unit = f" [{self.units[k]}]" if self.units.get(k) else (" [Å]" if k == "a" else "")
            lines.append(f"  {k + unit:<16}{self.start.get(k, float('nan')):>12.5g}"
                         f"{v:>12.5g}{self.uncertainties.get(k, float('nan')):>11.3g}")
        if self.fixed:
            lines.append("  fixed: " + ", ".join(f"{k} {v:.5g}" for k, v in self.fixed.items()))
        if "smoothing" in self.derived:
            ratio = self.values.get("smoothing_ratio", self.fixed.get("smoothing_ratio", float("nan")))
            lines.append(f"  smoothing = smoothing_ratio x a = {ratio:.4g} x {self.values.get('a', float('nan')):.5g} Å"
                         f" = {self.derived['smoothing']:.4g} Å")
        if self.posterior is not None:
            lines.append("  DREAM posterior: mean, 68 % and 95 % credible intervals")
            for k, st in self.posterior["parameters"].items():
                lines.append(f"    {k:<14}{st['mean']:>12.5g}  [{st['ci68'][0]:.5g}, {st['ci68'][1]:.5g}]"
                             f"  [{st['ci95'][0]:.5g}, {st['ci95'][1]:.5g}]")
        if self.ml is not None:
            iv = self.ml["interval"]
            lines.append("  ML prediction (90 % interval): " + ", ".join(
                f"{k} {v:.4g} [{iv[k][0]:.4g}, {iv[k][1]:.4g}]" for k, v in self.ml["values_sasview"].items()))
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


_PREDICTORS: dict[tuple[str, int], Any] = {}
_PREDICTORS_LOCK = threading.Lock()


def _predictor(bundle_or_case: str | os.PathLike) -> Any:
    """One predictor per bundle (and version of it) for the process: fits of many curves reuse its
    boosters and its flat-forest engine."""
    from .ml.predictor import load_predictor, shipped_bundles

    given = str(bundle_or_case)
    shipped = shipped_bundles()
    # A bundle directory is keyed by its resolved path (the same bundle under another relative path).
    key = given if given in shipped else str(Path(given).resolve())
    card = shipped.get(key, Path(key)) / "card.json"
    stamp = card.stat().st_mtime_ns if card.is_file() else -1
    with _PREDICTORS_LOCK:
        pred = _PREDICTORS.get((key, stamp))
    if pred is None:
        pred = load_predictor(given)
        with _PREDICTORS_LOCK:
            if len(_PREDICTORS) >= 8:
                _PREDICTORS.pop(next(iter(_PREDICTORS)))
            _PREDICTORS[(key, stamp)] = pred
    return pred


def _check_bundle_case(predictor: Any, case: str, bundle: Any) -> None:
    """A bundle made for another case would seed the fit with another model's parameters: refuse it."""
    bundle_case = getattr(predictor, "case", case)
    if bundle_case != case:
        where = getattr(getattr(predictor, "bundle", None), "path", bundle)
        raise ValueError(f"the bundle {where} predicts case {bundle_case}, not {case}: "
                         f"give --case {bundle_case} or a bundle of {case}")


def _as_curve(data: Any, q_unit: str | None, name: str | None) -> Any:
    from .loaders import Curve, load_curves, prepare_data1d

    if isinstance(data, Curve):
        return data
    if isinstance(data, (str, os.PathLike)):
        curves = load_curves(data, q_unit=q_unit)
        if len(curves) > 1:
            raise ValueError(f"{data} holds {len(curves)} curves; use fit_many for multi-frame files")
        return curves[0]
    if type(data).__name__ == "Data1D":
        d, masked = prepare_data1d(data, name or "data")
        return Curve(data=d, name=name or getattr(d, "filename", None) or "data", source="Data1D",
                     q_unit_source="1/Å (Data1D)", masked=masked)
    if type(data).__name__ == "Data2D":
        raise ValueError("2-D data are not supported: reduce them to a 1-D curve I(q) first")
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        if q_unit is None:
            raise ValueError("arrays carry no unit: give q_unit='1/A' or '1/nm'")
        from sasdata.dataloader.data_info import Data1D

        from .loaders import unit_factor

        q = np.asarray(data[0], dtype=np.float64) * unit_factor(q_unit)
        d = Data1D(x=q, y=np.asarray(data[1], dtype=np.float64),
                   dy=None if len(data) == 2 else np.asarray(data[2], dtype=np.float64))
        d, masked = prepare_data1d(d, name or "arrays")
        return Curve(data=d, name=name or "arrays", source="arrays", q_unit_source=f"{q_unit} (given)", masked=masked)
    raise ValueError(f"cannot fit {type(data).__name__}: give a sasdata Data1D, a file path, or (q, I[, dI]) arrays")


def _rebin(curve: Any, n_bins: int) -> Any:
    """The curve in at most ``n_bins`` log-spaced q bins: error-weighted means (plain means without
    errors), errors combined as 1/sqrt(sum w), resolution widths averaged (root mean square). Empty
    bins are dropped; the first and last points are kept as they are."""
    from sasdata.dataloader.data_info import Data1D

    d = curve.data
    q, y = np.asarray(d.x, dtype=np.float64), np.asarray(d.y, dtype=np.float64)
    # The first and last points stay bins of their own: the curve keeps its q range (which the boosters'
    # grid must lie in).
    edges = np.geomspace(q[1], q[-2] * (1 + 1e-12), n_bins - 1)
    inner = np.clip(np.searchsorted(edges, q[1:-1], side="right"), 1, n_bins - 2)
    idx = np.concatenate([[0], inner, [n_bins - 1]])
    count = np.bincount(idx, minlength=n_bins)
    keep = count > 0
    dy = None if d.dy is None else np.asarray(d.dy, dtype=np.float64)
    w = np.ones_like(y) if dy is None else dy**-2
    wsum = np.bincount(idx, w, n_bins)

    def mean(v: np.ndarray, weights: np.ndarray = w, total: np.ndarray = wsum) -> np.ndarray:
        return (np.bincount(idx, weights * v, n_bins) / np.where(total > 0, total, 1.0))[keep]

    out = Data1D(x=mean(q), y=mean(y), dy=None if dy is None else (1.0 / np.sqrt(wsum))[keep])
    ones, n = np.ones_like(q), count.astype(np.float64)
    for attr in ("dx", "dxl", "dxw"):
        v = getattr(d, attr, None)
        # Root-mean-square resolution width of the points in a bin.
        setattr(out, attr, None if v is None else np.sqrt(mean(np.asarray(v, dtype=np.float64) ** 2, ones, n)))
    out.filename = getattr(d, "filename", None)
    out.qmin, out.qmax = float(out.x[0]), float(out.x[-1])
    return type(curve)(data=out, name=curve.name, source=curve.source, q_unit_source=curve.q_unit_source,
                       masked=curve.masked, notes=list(curve.notes))


def _linear_scale_background(model_i: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[float, float]:
    """Weighted least squares y ~ scale * model + background, with scale > 0 and background >= 0."""
    w = 1.0 / dy
    a = np.column_stack([model_i * w, w])
    (scale, bkg), *_ = np.linalg.lstsq(a, y * w, rcond=None)
    if bkg < 0 or scale <= 0:
        bkg = 0.0
        scale = float(np.sum(model_i * y * w**2) / np.sum((model_i * w) ** 2))
    return float(max(scale, 1e-30)), float(bkg)


def _parameter_ranges(spec: Any, card_ranges: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Fit bounds: the model's own limits (SasView's default fit ranges; every point of that box is a valid
    structure), not the boosters' training ranges. The porosity keeps the case's side of 0.5 (low or high:
    Babinet makes the two sides indistinguishable for two phases)."""
    from .sasview.models import grf_three_phase, grf_two_phase

    limits = {p[0]: (float(p[3][0]), float(p[3][1]))
              for p in (grf_three_phase if spec.three_phase else grf_two_phase).parameters}
    e_lo, e_hi = grf_three_phase.parameters[1][3]  # the porosity domain of the table (both sides of 0.5)
    high = float(card_ranges["porosity"][0]) >= 0.5
    out = {"a": limits["a"], "porosity": (0.5, float(e_hi)) if high else (float(e_lo), 0.5),
           "smoothing_ratio": limits["smoothing_ratio"]}
    if "layer_fraction" in spec.outputs:
        out["layer_fraction"] = limits["layer_fraction"]
    return out


def _inside(name: str, value: float, rng: tuple[float, float]) -> float:
    """A start just inside its range (a start on a bound stalls LM: its step is clipped back onto the bound):
    1 % of the range from either end, of its logarithm for ``a`` (its range spans five decades, and 1 % of
    it in Å would move every a below 1000 Å)."""
    lo, hi = rng
    if name == "a":
        llo, lhi = math.log(lo), math.log(hi)
        m = 0.01 * (lhi - llo)
        return float(math.exp(np.clip(math.log(min(max(value, lo), hi)), llo + m, lhi - m)))
    m = 0.01 * (hi - lo)
    return float(np.clip(value, lo + m, hi - m))


# What a parameter ending on a limit usually means, for the warning.
_LIMIT_HINTS = {
    ("porosity", "lower"): "the minority phase would be below the model's smallest fraction, or the model does not "
                           "describe the data (a low-q upturn wants a power law: grf_two_phase+power_law)",
    ("porosity", "upper"): "the structure is at its most symmetric (for two phases 0.5: pore and solid alike)",
    ("layer_fraction", "lower"): "the data show no layer: try the two-phase model",
    ("layer_fraction", "upper"): "the layer would fill more of the pore space than the model allows",
    ("smoothing_ratio", "lower"): "the interfaces are as sharp as the model allows",
    ("smoothing_ratio", "upper"): "the interfaces are as smooth as the model allows",
    ("a", "lower"): "the structure is smaller than the model's range of a, or the data hold no structure peak",
    ("a", "upper"): "the data's q range does not reach the structure's length scale (the low-q plateau)",
    ("scale", "lower"): "scale moved by 10^-3 from its start: the model does not describe the data",
    ("scale", "upper"): "scale moved by 10^3 from its start: the model does not describe the data",
}


def _limit_warnings(values: dict[str, float], ranges: dict[str, tuple[float, float]],
                    names: list[str]) -> tuple[dict[str, str], list[str]]:
    """Free parameters that ended on (within 1e-6 of the range from) a limit of their fit range."""
    on: dict[str, str] = {}
    msgs = []
    for k in names:
        if k not in ranges or k not in values:
            continue
        lo, hi = ranges[k]
        v = values[k]
        if k in ("a", "scale") and lo > 0:  # ranges of several decades: compare logarithms
            v, lo_c, hi_c = math.log(max(v, 1e-300)), math.log(lo), math.log(hi)
        else:
            lo_c, hi_c = lo, hi
        tol = 1e-6 * (hi_c - lo_c)
        side = "lower" if v <= lo_c + tol else "upper" if v >= hi_c - tol else None
        if side is None:
            continue
        on[k] = side
        limit = lo if side == "lower" else hi
        hint = _LIMIT_HINTS.get((k, side), "the best fit lies at or beyond the limit")
        msgs.append(f"{k} ended on its {side} limit {limit:.4g}" + (" Å" if k == "a" else "")
                    + f": {hint}; the value is a bound, not an estimate")
    return on, msgs


def _is_measured_root(bundle: Any) -> bool:
    return bundle is not None and (Path(bundle) / "stage1" / "card.json").is_file()


def _family_of(family: str, bundle: Any) -> str:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; allowed: {', '.join(FAMILIES)}")
    if bundle is not None:
        return "measured" if _is_measured_root(bundle) else "paper"
    return family


def _measured_ml(curve: Any, q: np.ndarray, case: str, bundle: Any) -> tuple[Any, dict[str, Any]]:
    """The measured family's prediction (case resolved) and its row for the FitResult."""
    from .ml.measured import load_measured

    pred = load_measured(bundle).predict(q, curve.intensity, curve.error, curve.data.dx,
                                         None if not curve.slit_length else np.full(q.size, curve.slit_length),
                                         case=case)
    row = {"family": "measured", **pred.to_dict()}
    row["values_sasview"] = dict(pred.values)
    row["interval"] = {k: list(v) for k, v in pred.intervals.items()}
    return pred, row


def fit_curve(data: Any, case: str = "auto", mode: str = "seed", method: str = "lm", q_unit: str | None = None,
              bundle: str | os.PathLike | None = None, model_options: dict[str, float] | None = None,
              steps: int = 200, name: str | None = None, progress: bool = False,
              q_range: tuple[float, float] | None = None, time_budget: float | None = None,
              family: str = "measured", free_smoothing: bool | None = None, model: str | None = None,
              plus: tuple[str, ...] | list[str] = (), auto_qrange: bool = False, n_starts: int = 3) -> FitResult:
    """Fit (or predict) the GRF parameters of one curve.

    Parameters
    ----------
    data
        A sasdata ``Data1D`` (q in 1/Å), a path to a file sasdata reads (or ``.pdh``), or arrays
        ``(q, I[, dI])`` with ``q_unit``.
    case
        ``"auto"`` (measured family: the number of phases chosen from the data; two phases fitted on the
        low-porosity side, see Babinet's principle), or ``two_phase_low``, ``two_phase_high``,
        ``three_phase_low``, ``three_phase_high``.
    mode
        ``"seed"``, ``"replace"`` or ``"conventional"``.
    method
        A bumps fitter: ``"lm"``, ``"amoeba"``, ``"newton"``, ``"de"``, ``"dream"``, ...
    bundle
        A bundle directory instead of the shipped one for ``case`` (paper family), or a folder of
        measured-family bundles (``stage1/`` and the cases).
    model_options
        Fixed parameters of the model: ``smoothing_ratio`` = sigma / a (default: the measured family's
        prediction; with the paper family the paper's 10 Å at the predicted a; else the model's default
        0.2). The old ``smoothing`` (sigma in Å) is still accepted, with a ``DeprecationWarning``: it is
        converted to sigma / a at the start value of a.
    steps
        Maximum fitter steps (DREAM: generations after burn-in).
    progress
        Show the fitter's progress (bumps' console monitor).
    q_range
        (q_min, q_max) in 1/Å for the fit; default: all of the data. The ML prediction always uses its
        boosters' own q grid.
    time_budget
        Seconds the fitter may run; bumps stops DREAM, DE and amoeba there and returns the best point so
        far (with a warning). ``None``: no limit.
    family
        ``"measured"`` (default: any q window, a from 8 to 500 Å, automatic case) or ``"paper"`` (the
        paper's boosters: q exactly 0.01-0.3 1/Å, a 8-40 Å). A ``bundle`` sets the family itself.
    free_smoothing
        Fit ``smoothing_ratio`` too (starting from the value above). Default: free in an ML-seeded fit
        of the measured family (unless ``model_options`` fixes it), fixed otherwise. The result reports
        the smoothing in Å as well (``derived["smoothing"]`` = smoothing_ratio x a).

    model
        Any model of the GRF family (``ENSEMBLE_MODELS``) or a compared built-in (``teubner_strey``, ``dab``,
        ``broad_peak``). ``grf_two_phase`` (and ``grf_three_phase`` with a three-phase ``case``) without
        ``plus`` take the ML-seeded path above; every other model, and any model with ``plus``, is fitted
        from ``n_starts`` starts taken from the data (its length scale), the best kept
        (:func:`sasview_grf_plugin.compare.fit_model`).
    plus
        Additive terms (``"power_law"``, ``"lorentz"``, ``"guinier"``, ``"porod"``): the sasmodels sum model
        ``model+term``; a flat background is always fitted.
    auto_qrange
        Fit the q range :func:`sasview_grf_plugin.qrange.check_q_range` suggests (beam stop, tail drop, WAXS
        cut off) when ``q_range`` is not given. Its findings are always in ``warnings``; what was cut too.

    Curves of more than ``MAX_FIT_POINTS`` points are rebinned to that many log-spaced q bins first (with
    a warning), so that a fit's memory stays bounded.
    """
    from .datasets.cases import get_case

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    # --- any GRF model / additive terms (multi-start from the data) ---
    generic, case = _route_model(model, case, tuple(plus), mode)
    if generic:
        return _fit_any_model(data, model or "grf_two_phase", tuple(plus), method, q_unit, name, q_range,
                              auto_qrange, steps, n_starts)
    family = _family_of(family, bundle)
    if family == "paper":
        if case in ("auto", "two_phase"):
            raise ValueError(f"case {case!r} needs the measured family; the paper family needs one of two_phase_low, "
                             "two_phase_high, three_phase_low, three_phase_high")
        spec = get_case(case)
    else:
        from .ml.measured import CASE_CHOICES

        if case not in CASE_CHOICES:
            raise ValueError(f"unknown case {case!r}; allowed: {', '.join(CASE_CHOICES)}")
        spec = None
    if time_budget is not None and not (math.isfinite(time_budget) and time_budget > 0):
        raise ValueError(f"time_budget must be a positive number of seconds, got {time_budget}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if q_range is not None:
        if not all(math.isfinite(x) or x == math.inf for x in q_range) or not q_range[0] < q_range[1]:
            raise ValueError(f"the fit's q range must satisfy q_min < q_max (finite numbers in 1/Å), got "
                             f"{q_range[0]:g}-{q_range[1]:g}")
    curve = _as_curve(data, q_unit, name)
    _check_magnitudes(curve)
    predictor = None
    if family == "paper":
        predictor = _predictor(bundle if bundle is not None else case)
        _check_bundle_case(predictor, spec.name, bundle)
    opts = dict(model_options or {})
    legacy_sigma = None
    if "smoothing" in opts:  # version 0.1 models took sigma in Å
        legacy_sigma = float(opts.pop("smoothing"))
        if not (math.isfinite(legacy_sigma) and legacy_sigma >= 0):
            raise ValueError(f"smoothing (sigma in Å) must be finite and >= 0, got {legacy_sigma}")
        if "smoothing_ratio" in opts:
            raise ValueError("give smoothing_ratio (sigma / a) or the old smoothing (sigma in Å), not both")
        warnings.warn("model_options['smoothing'] (sigma in Å) is deprecated: the models take smoothing_ratio = "
                      "sigma / a after version 0.1; the value is converted at the start value of a",
                      DeprecationWarning, stacklevel=2)
    user_ratio = opts.pop("smoothing_ratio", None)
    if user_ratio is not None:
        user_ratio = float(user_ratio)
        if not math.isfinite(user_ratio):
            raise ValueError(f"smoothing_ratio must be finite, got {user_ratio}")
    ml_ratio = None
    warnings_out = list(curve.notes)
    if curve.q.size > MAX_FIT_POINTS:
        n_raw = curve.q.size
        curve = _rebin(curve, MAX_FIT_POINTS)
        warnings_out.append(f"{n_raw} points rebinned to {curve.q.size} log-spaced q bins (error-weighted means) to "
                            f"bound the fit's memory; at most {MAX_FIT_POINTS} points are fitted as they are")
    if curve.masked:
        warnings_out.append(f"{curve.masked} unusable points removed")
    q_range = _check_range(curve, q_range, auto_qrange, warnings_out)
    if curve.data.dy is None:
        warnings_out.append("the data carry no uncertainties: unit weights, so chi^2 is not a goodness of fit")
    if curve.slit_length:
        warnings_out.append(f"slit smearing (slit length {curve.slit_length:.4g} 1/Å) is applied in the fit; "
                            "the ML prediction sees the smeared curve")
    # The ensemble model holds for every q: fit the data's whole range, or the one asked for.
    q = curve.q
    lo, hi = (float(q[0]), float(q[-1])) if q_range is None else (max(float(q_range[0]), float(q[0])),
                                                                   min(float(q_range[1]), float(q[-1])))
    if hi <= lo:
        what = ("span no q range" if q_range is None
                else f"do not overlap the q range {q_range[0]:.4g}-{q_range[1]:.4g} 1/Å")
        raise ValueError(f"{curve.name}: the data (q = {q[0]:.4g}-{q[-1]:.4g} 1/Å) {what}")
    t0 = time.perf_counter()
    ml = None
    if family == "measured":
        try:
            mpred, ml = _measured_ml(curve, q, case, bundle)
        except ValueError as exc:
            if mode != "conventional" or case in ("auto", "two_phase"):
                raise ValueError(f"{curve.name}: {exc}" + ("" if mode != "conventional" else
                                 "; with --mode conventional give the case (e.g. --case three_phase_high)")) from None
            warnings_out.append(f"no ML prediction: {exc}")
            spec = get_case(case)
        else:
            spec = get_case(mpred.case)
            if not mpred.in_domain:
                warnings_out.append("the ML prediction is flagged: " + "; ".join(mpred.flags))
            warnings_out += [n for n in mpred.notes if n.startswith("two phases")]
            if mode != "conventional":
                ml_ratio = float(mpred.values["smoothing"]) / float(mpred.values["a"])
    else:
        try:
            pred = predictor.predict(q, curve.intensity, q_unit="1/A")
            row = pred.row(0)
            row["values_sasview"] = {k: (10 * v if k == "a" else v) for k, v in row["values"].items()}
            row["interval"] = {k: ([10 * x for x in iv] if k == "a" else iv) for k, iv in row["interval"].items()}
            row["warnings"] = pred.warnings
            ml = {"family": "paper", **row}
            if not row["in_domain"]:
                warnings_out.append("the curve lies outside the boosters' training domain; treat the ML values "
                                    "with care")
            warnings_out += pred.warnings
        except ValueError as exc:
            if mode != "conventional":
                raise
            warnings_out.append(f"no ML prediction: {exc}")
    data1d = curve.data
    data1d.qmin, data1d.qmax = float(lo), float(hi)
    sel = (q >= lo) & (q <= hi)
    if sel.sum() < len(spec.outputs) + 3:
        raise ValueError(f"{curve.name}: only {int(sel.sum())} points in the fit range {lo:.4g}-{hi:.4g} 1/Å")
    side = ({"porosity": (0.5, 1.0) if spec.porosity == "high" else (0.0, 0.5)} if predictor is None
            else predictor.card["parameter_ranges"])
    ranges = _parameter_ranges(spec, side)
    if mode == "conventional" or ml is None:
        from .sasview.models import grf_three_phase, grf_two_phase

        table = (grf_three_phase if spec.three_phase else grf_two_phase).parameters
        defaults = {p[0]: float(p[2]) for p in table}
        if not spec.three_phase and ranges["porosity"][0] >= 0.5:
            defaults["porosity"] = 1.0 - defaults["porosity"]  # the same curve (Babinet) in the case's range
        # A default outside the case's range starts at the range's middle, not on a bound.
        start = {k: (float(defaults[k]) if ranges[k][0] < defaults[k] < ranges[k][1] else 0.5 * sum(ranges[k]))
                 for k in spec.outputs}
    else:
        # The ML values as they are, clipped only to the model's limits: replace mode reports them and must
        # compute chi^2, scale and background at exactly these values.
        start = {k: float(np.clip(ml["values_sasview"][k], *ranges[k])) for k in spec.outputs}
        moved = [k for k in spec.outputs if start[k] != float(ml["values_sasview"][k])]
        if moved:
            warnings_out.append("the ML prediction lies outside the model's limits in " + ", ".join(
                f"{k} ({ml['values_sasview'][k]:.4g}, limits {ranges[k][0]:.4g}-{ranges[k][1]:.4g})" for k in moved)
                + ": evaluated on the limit")
    # The smoothing, sigma / a: given, converted from the old Å value, predicted, or the model's default.
    if user_ratio is not None:
        ratio = user_ratio
    elif legacy_sigma is not None:
        ratio = legacy_sigma / start["a"]
    elif ml_ratio is not None:
        ratio = ml_ratio
    elif family == "paper" and ml is not None:
        ratio = PAPER_SMOOTHING / start["a"]  # the paper's boosters were trained at sigma = 10 Å
    else:
        ratio = DEFAULT_MODEL_OPTIONS["smoothing_ratio"]
    s_lo, s_hi = ranges["smoothing_ratio"]
    if not s_lo <= ratio <= s_hi:
        if user_ratio is not None:
            raise ValueError(f"smoothing_ratio {ratio:g} is outside the model's limits [{s_lo:g}, {s_hi:g}]")
        what = (f"smoothing {legacy_sigma:g} Å at a = {start['a']:.4g} Å" if legacy_sigma is not None
                else "the predicted smoothing" if ml_ratio is not None else "the paper's smoothing of 10 Å")
        warnings_out.append(f"{what} gives smoothing_ratio {ratio:.4g}, outside the model's limits "
                            f"[{s_lo:g}, {s_hi:g}]: {min(max(ratio, s_lo), s_hi):g} used")
        ratio = min(max(ratio, s_lo), s_hi)
    if free_smoothing is None:
        free_smoothing = (family == "measured" and mode == "seed" and ml_ratio is not None and user_ratio is None
                          and legacy_sigma is None)
    if free_smoothing and mode != "replace":
        start["smoothing_ratio"] = ratio
    else:
        opts["smoothing_ratio"] = ratio
    if mode != "replace":
        start = {k: _inside(k, v, ranges[k]) for k, v in start.items()}
    result = _fit(curve, spec, start, ranges, opts, method, steps, mode, progress, time_budget)
    # bumps checks the time between steps of its iterative fitters; LM (one scipy call) is not stopped.
    if time_budget is not None and mode != "replace" and method != "lm" and time.perf_counter() - t0 >= time_budget:
        warnings_out.append(f"the fit stopped at its time budget of {time_budget:g} s: the best point so far is "
                            "reported, possibly before convergence")
    result.update(ml=ml, warnings=warnings_out, wall_time=time.perf_counter() - t0, case=spec.name, mode=mode,
                  method=method, name=curve.name, q_range=(float(lo), float(hi)))
    if mode == "replace" and ml is not None:
        # The values stay those at which chi^2, scale and background were computed (the ML's, clipped to the
        # model's limits); the uncertainties are the ML's intervals.
        result["uncertainties"] = {**result["uncertainties"],
                                   **{k: (ml["interval"][k][1] - ml["interval"][k][0]) / (2 * _Z90)
                                      for k in spec.outputs}}
    result["fixed"] = {k: float(v) for k, v in opts.items() if k not in result["values"]}
    if mode == "seed" and ml is not None:
        result["warnings"] += far_from_prediction(result["values"], ml, spec.outputs)
    ratio_final = result["values"].get("smoothing_ratio", result["fixed"].get("smoothing_ratio"))
    if ratio_final is not None:
        result["derived"] = {"smoothing": float(ratio_final) * float(result["values"]["a"])}
    result["warnings"] += result.pop("limit_warnings")
    result["intensity_unit"] = intensity_unit(curve)
    if result["chi2"] > 10:
        what = "the ML prediction does not reproduce the data" if mode == "replace" else "poor fit"
        result["warnings"].append(f"{what}: reduced chi^2 = {result['chi2']:.3g}")
    return FitResult(**result)


#: Intensities and errors a fit handles: their squares (weights, chi^2) stay far inside the float range.
MAGNITUDE_RANGE = (1e-100, 1e100)


def _check_magnitudes(curve: Any) -> None:
    """Refuse data whose values would overflow or underflow the fit's squares (a silently wrong fit)."""
    lo, hi = MAGNITUDE_RANGE
    for what, v in (("intensities", curve.intensity), ("uncertainties", curve.error)):
        if v is None or v.size == 0:
            continue
        a = np.abs(v)
        if a.max() > hi or a.min() < lo:
            raise ValueError(f"{curve.name}: the {what} span {a.min():.3g}-{a.max():.3g}; a fit needs them within "
                             f"{lo:g}-{hi:g} (their squares must not overflow): rescale the data (the fitted scale "
                             "absorbs any factor)")


def far_from_prediction(values: dict[str, float], ml: dict[str, Any], outputs: Any) -> list[str]:
    """Warnings for fitted values far outside the ML's interval (SasView units).

    "Far": beyond the interval by more than its own width (for a: in ln a), and at least 5 % of the
    predicted value. Such a move means the data and the initializer disagree: another case, another
    local minimum of the fit, or a curve outside the initializer's domain.
    """
    out = []
    level = ml.get("interval_level", 0.9)
    for k in outputs:
        iv, pred = ml.get("interval", {}).get(k), ml.get("values_sasview", {}).get(k)
        v = values.get(k)
        if iv is None or pred is None or v is None or not all(math.isfinite(x) for x in (*iv, pred, v)):
            continue
        lo, hi = iv
        if k == "a" and lo > 0 and v > 0:
            x, lo_x, hi_x, p_x = math.log(v), math.log(lo), math.log(hi), math.log(max(pred, 1e-300))
        else:
            x, lo_x, hi_x, p_x = v, lo, hi, pred
        slack = max(hi_x - lo_x, (0.05 if k == "a" else 0.05 * abs(p_x)))
        if x < lo_x - slack or x > hi_x + slack:
            out.append(f"the fit moved {k} to {v:.4g}, far outside the ML's {level:.0%} interval [{lo:.4g}, {hi:.4g}] "
                       f"(prediction {pred:.4g}): the data and the initializer disagree; check the case (--case), "
                       "the fit's minimum (--mode conventional) and the prediction's flags")
    return out


# --- fitting any model of the GRF family (or a built-in), with additive terms -------------------------

_ML_MODELS = {"grf_two_phase": "two_phase", "grf_three_phase": "three_phase"}


def _route_model(model: str | None, case: str, plus: tuple[str, ...], mode: str) -> tuple[bool, str]:
    """Whether the fit takes the multi-start path, and the case for the ML-seeded one.

    The ML seeds ``grf_two_phase`` (any two-phase case) and ``grf_three_phase`` (a three-phase case named
    by ``case``); everything else, and any sum with additive terms, is a multi-start fit from the data.
    """
    if model is None and not plus:
        return False, case
    from .compare import model_names

    if model is not None and model not in model_names():
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(model_names())}")
    kind = _ML_MODELS.get(model or "grf_two_phase")
    if kind is not None and case != "auto" and not case.startswith(kind):
        raise ValueError(f"case {case!r} is not a case of {model}; give a {kind}_* case or case 'auto'")
    ml_path = not plus and (kind == "two_phase" or (kind == "three_phase" and case != "auto"))
    if ml_path:
        return False, ("two_phase" if kind == "two_phase" and case == "auto" else case)
    if mode == "replace":
        raise ValueError(f"mode 'replace' needs an ML prediction, which {model or 'grf_two_phase'}"
                         f"{''.join('+' + p for p in plus)} has none: use mode 'seed' (a multi-start fit)")
    return True, case


def _check_range(curve: Any, q_range: tuple[float, float] | None, auto_qrange: bool,
                 warnings_out: list[str]) -> tuple[float, float] | None:
    """Report what no small-angle model describes; with ``auto_qrange`` (and no ``q_range``) cut it."""
    from .qrange import check_q_range

    report = check_q_range(curve.q, curve.intensity, curve.error)
    if not report.cut:
        return q_range
    if q_range is None and auto_qrange:
        warnings_out.extend(f"cut: {f.message}" for f in report.findings)
        warnings_out.append(f"fitted q range {report.suggested[0]:.4g}-{report.suggested[1]:.4g} 1/Å "
                            f"(data: {report.q_data[0]:.4g}-{report.q_data[1]:.4g} 1/Å)")
        return report.suggested
    warnings_out.extend(report.describe())
    if q_range is None:
        warnings_out.append("nothing was cut: give the suggested --q-min/--q-max, or --auto-qrange")
    return q_range


def _fit_any_model(data: Any, model: str, plus: tuple[str, ...], method: str, q_unit: str | None,
                   name: str | None, q_range: tuple[float, float] | None, auto_qrange: bool, steps: int,
                   n_starts: int) -> FitResult:
    """Multi-start fit of any model (+ terms), as a :class:`FitResult`."""
    from .compare import fit_model

    t0 = time.perf_counter()
    curve = _as_curve(data, q_unit, name)
    _check_magnitudes(curve)
    warnings_out = list(curve.notes)
    if curve.q.size > MAX_FIT_POINTS:
        n_raw = curve.q.size
        curve = _rebin(curve, MAX_FIT_POINTS)
        warnings_out.append(f"{n_raw} points rebinned to {curve.q.size} log-spaced q bins")
    if curve.masked:
        warnings_out.append(f"{curve.masked} unusable points removed")
    if curve.data.dy is None:
        warnings_out.append("the data carry no uncertainties: unit weights, so chi^2 is not a goodness of fit")
    q_range = _check_range(curve, q_range, auto_qrange, warnings_out)
    extra = []
    if plus:
        # As in compare_models: the model's own best fit is one more start of the sum (the terms then start
        # small), so that a low-q term cannot take over the curve from every start.
        from .compare import alone_linear

        alone = fit_model(curve, model, (), q_range=q_range, n_starts=n_starts, method=method, steps=max(steps, 300))
        extra = [{"A_" + k: v for k, v in alone.values.items() if k not in alone_linear(alone)}]
    f = fit_model(curve, model, plus, q_range=q_range, n_starts=n_starts, method=method, steps=max(steps, 300),
                  extra_starts=extra)
    warnings_out += f.warnings
    if f.chi2 > 10:
        warnings_out.append(f"poor fit: reduced chi^2 = {f.chi2:.3g}")
    curves = dict(f.curves)
    curves["start"] = curves["fit"]  # the best start is not kept; the figure shows the fit
    return FitResult(name=curve.name, case=f.model, mode="multistart", method=method, values=f.values,
                     uncertainties=f.uncertainties, start=f.start, chi2=f.chi2, n_points=f.n_points,
                     q_range=f.q_range, evaluations=f.evaluations, wall_time=time.perf_counter() - t0, ml=None,
                     warnings=warnings_out, curves=curves, fixed=f.fixed, units=f.units,
                     intensity_unit=intensity_unit(curve))


def _counting_experiment() -> type:
    from sasmodels.bumps_model import Experiment

    class CountingExperiment(Experiment):
        """An Experiment that counts its model evaluations (cached repeats are not counted)."""

        evaluations = 0

        def _calc_theory(self, *args: Any, **kwargs: Any) -> Any:
            self.evaluations += 1
            return super()._calc_theory(*args, **kwargs)

    return CountingExperiment


def _posterior(state: Any, labels: list[str]) -> dict[str, Any]:
    """Posterior summary of a DREAM run: means, 68 %/95 % credible intervals, correlations."""
    draw = state.draw()
    pts = np.asarray(draw.points)
    out: dict[str, Any] = {"samples": int(pts.shape[0]), "parameters": {}}
    for i, k in enumerate(labels):
        col = pts[:, i]
        out["parameters"][k] = {"mean": float(col.mean()), "std": float(col.std(ddof=1)),
                                "ci68": [float(v) for v in np.percentile(col, [15.865, 84.135])],
                                "ci95": [float(v) for v in np.percentile(col, [2.5, 97.5])]}
    corr = np.corrcoef(pts, rowvar=False) if pts.shape[1] > 1 else np.ones((1, 1))
    out["correlation"] = {"labels": labels, "matrix": np.round(corr, 4).tolist()}
    return out


def _fit(curve: Any, spec: Any, start: dict[str, float], ranges: dict[str, tuple[float, float]],
         opts: dict[str, float], method: str, steps: int, mode: str, progress: bool = False,
         time_budget: float | None = None) -> dict[str, Any]:
    from bumps.fitters import fit as bumps_fit
    from bumps.names import FitProblem
    from sasmodels.bumps_model import Model
    from sasmodels.core import load_model

    from .sasview import model_path

    kernel = load_model(model_path("grf_three_phase" if spec.three_phase else "grf_two_phase"))
    contrast = {"sld_pore": 0.0, "sld_solid": 1.0, **({"sld_layer": 0.65} if spec.three_phase else {})}
    # Two phases: the model's porosity stops at 0.5 (Babinet: eps and 1 - eps scatter alike); a high-porosity
    # case is fitted as its mirror and reported back as the pore fraction.
    mirror = (not spec.three_phase) and ranges["porosity"][0] >= 0.5

    def to_model(values: dict[str, float]) -> dict[str, float]:
        return {**values, "porosity": 1.0 - values["porosity"]} if mirror else dict(values)

    model_start = to_model(start)
    model_ranges = dict(ranges)
    if mirror:
        lo, hi = ranges["porosity"]
        model_ranges["porosity"] = (1.0 - hi, 1.0 - lo)
    fixed = {k: v for k, v in opts.items() if k not in model_start}
    model = Model(kernel, **contrast, **fixed, **model_start, scale=1.0, background=0.0)
    if curve.data.dy is None:  # no uncertainties given: unit weights (chi^2 is then no goodness of fit)
        curve.data.dy = np.ones_like(np.asarray(curve.data.y, dtype=float))
    experiment = _counting_experiment()(data=curve.data, model=model)
    # Linear start for scale and background at the structure start (same for every mode).
    theory = experiment.theory()
    y, dy = experiment.Iq, experiment.dIq
    scale, bkg = _linear_scale_background(theory, y, dy)
    model.scale.value, model.background.value = scale, bkg
    experiment.update()  # the experiment caches its theory; parameters set directly do not clear it
    free = list(start)
    start_all = {**start, "scale": scale, "background": bkg}
    start_curve = experiment.theory().copy()
    posterior = None
    if mode == "replace":
        values, errs = start_all, {k: float("nan") for k in start_all}
        chi2 = float(experiment.nllf() * 2 / max(1, len(y) - len(free) - 2))
    else:
        for k in free:
            getattr(model, k).range(*model_ranges[k])
        model.scale.range(scale * 1e-3, scale * 1e3)
        y_max = float(np.max(y))
        model.background.range(0.0, max(10 * bkg, 0.5 * y_max))
        options: dict[str, Any] = {"steps": steps}
        if method == "dream":
            options["burn"] = max(100, steps)
        if time_budget is not None:
            options["time"] = time_budget / 3600.0  # bumps' FitDriver takes hours
        if "smoothing_ratio" in free and method not in _GLOBAL_FITTERS:
            # A local fitter first with the smoothing fixed, then everything free from there. The smoothing
            # acts at second order near sigma = 0 (a Gaussian's effect grows as sigma^2), so chi^2 is flat
            # there: LM from a distant start can step onto the limit 0 and stop on that flat ground, worse
            # than with the smoothing fixed (measured on sasdata files: benchmarks/study_gui_fits.py). From the
            # first stage's optimum the second can only lower chi^2.
            model.smoothing_ratio.fixed = True
            first = FitProblem(experiment)
            first.setp(bumps_fit(first, method=method, verbose=progress, **options).x)
            model.smoothing_ratio.fixed = False
        problem = FitProblem(experiment)
        res = bumps_fit(problem, method=method, verbose=progress, **options)
        names = problem.labels()
        values = dict(start_all)
        errs = {k: float("nan") for k in start_all}
        for label, x, dx in zip(names, res.x, res.dx if res.dx is not None else [math.nan] * len(res.x),
                                strict=True):
            values[label] = float(x)
            errs[label] = float(dx)
        if method == "dream" and getattr(res, "state", None) is not None:
            posterior = _posterior(res.state, list(names))
            for k, st in posterior["parameters"].items():
                errs[k] = st["std"]
        problem.setp(res.x)
        chi2 = float(problem.chisq())
        scale_range = (float(model.scale.bounds[0]), float(model.scale.bounds[1]))
        if mirror:
            values["porosity"] = 1.0 - values["porosity"]
            if posterior is not None:
                st = posterior["parameters"]["porosity"]
                st["mean"] = 1.0 - st["mean"]
                st["ci68"] = [1.0 - st["ci68"][1], 1.0 - st["ci68"][0]]
                st["ci95"] = [1.0 - st["ci95"][1], 1.0 - st["ci95"][0]]
                corr = np.asarray(posterior["correlation"]["matrix"])
                i = posterior["correlation"]["labels"].index("porosity")
                corr[i, :] *= -1.0  # p -> 1 - p flips the sign of porosity's correlations
                corr[:, i] *= -1.0
                posterior["correlation"]["matrix"] = corr.tolist()
    final_curve = experiment.theory()
    on_limit: dict[str, str] = {}
    limit_msgs: list[str] = []
    if mode != "replace":
        on_limit, limit_msgs = _limit_warnings(values, {**ranges, "scale": scale_range}, [*free, "scale"])
    return {"values": {k: values[k] for k in (*free, "scale", "background")},
            "on_limit": on_limit, "limit_warnings": limit_msgs,
            "uncertainties": {k: errs[k] for k in (*free, "scale", "background")},
            "start": start_all, "chi2": chi2, "n_points": int(len(y)), "posterior": posterior,
            "evaluations": experiment.evaluations,
            "curves": {"q": np.asarray(experiment.resolution.q).tolist(),
                       "data": np.asarray(y).tolist(), "error": np.asarray(dy).tolist(),
                       "start": np.asarray(start_curve).tolist(), "fit": np.asarray(final_curve).tolist()}}


def plot_fit(result: FitResult, path: str | os.PathLike) -> None:
    """Data, the start curve (ML seed or defaults), the final fit and normalized residuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = {k: np.asarray(v) for k, v in result.curves.items()}
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.errorbar(c["q"], c["data"], yerr=c["error"], fmt=".", ms=3, color="0.4", elinewidth=0.6, label="data")
    label = {"seed": "ML-seeded start", "conventional": "default start", "replace": "ML prediction"}.get(
        result.mode, "best start")
    if result.mode != "multistart":  # a multi-start fit keeps only its best start's result
        ax.loglog(c["q"], c["start"], "--", color="tab:orange", lw=1.3, label=label)
    if result.mode != "replace":
        ax.loglog(c["q"], c["fit"], "-", color="tab:blue", lw=1.5, label=f"fit ({result.method})")
    ax.set_ylabel(f"I(q) [{result.intensity_unit or 'data unit'}]")
    # A name from a file name that is not UTF-8 holds surrogate escapes, which fonts cannot draw.
    shown = result.name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    ax.set_title(f"{shown}: {result.case}, reduced χ² = {result.chi2:.3g}", fontsize=10)
    ax.legend(fontsize=8)
    final = c["fit"] if result.mode != "replace" else c["start"]
    axr.semilogx(c["q"], (c["data"] - final) / c["error"], ".", ms=3, color="tab:blue")
    axr.axhline(0, color="k", lw=0.8)
    axr.set_xlabel("q [1/Å]")
    axr.set_ylabel("(data - model)/σ")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fit_many(paths: list[str | os.PathLike], case: str = "auto", mode: str = "seed", method: str = "lm",
             q_unit: str | None = None, progress: bool = True, fit_progress: bool = False,
             on_result: Callable[[FitResult | None, dict[str, str] | None], None] | None = None,
             **kwargs: Any) -> tuple[list[FitResult], list[dict[str, str]]]:
    """Fit every curve of every file (a folder's files, multi-frame files curve by curve).

    A file or curve that fails is reported in the second list and skipped; the rest go on.
    ``progress`` shows a bar when there is more than one curve; ``on_result(result, failure)`` is
    called as each curve finishes (one of the two is None), so results can be shown as they come.
    """
    from .datasets.cases import get_case
    from .loaders import load_curves

    bundle = kwargs.get("bundle")
    if bundle is not None and not _is_measured_root(bundle):  # once, before any file is read
        _check_bundle_case(_predictor(bundle), get_case(case).name, bundle)
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            if not found:
                raise ValueError(f"{p} is an empty folder: no data files to fit (give files, or a folder of them)")
            files += found
        else:
            files.append(p)
    jobs: list[Any] = []
    failures: list[dict[str, str]] = []
    def report(result: FitResult | None, failure: dict[str, str] | None) -> None:
        if failure is not None:
            failures.append(failure)
        if on_result is not None:
            on_result(result, failure)

    for f in files:
        try:
            jobs += load_curves(f, q_unit=q_unit)
        except ValueError as exc:
            report(None, {"source": str(f), "error": str(exc)})
    iterator: Any = jobs
    if progress and len(jobs) > 1:
        from tqdm.auto import tqdm

        iterator = tqdm(jobs, unit="curve", desc="fitting")
    results = []
    for curve in iterator:
        try:
            results.append(fit_curve(curve, case, mode=mode, method=method, progress=fit_progress, **kwargs))
        except (ValueError, RuntimeError) as exc:
            report(None, {"source": curve.name, "error": str(exc)})
        else:
            report(results[-1], None)
    return results, failures


def write_summary(results: list[FitResult], failures: list[dict[str, str]], path: str | os.PathLike) -> None:
    """CSV or JSON summary of a batch, by the extension of ``path`` (``.csv`` or ``.json``)."""
    path = Path(path)
    if path.suffix.lower() not in SUMMARY_FORMATS:
        raise ValueError(f"{path}: a summary is written as {' or '.join(SUMMARY_FORMATS)}; give one of those "
                         "extensions")
    if path.suffix.lower() == ".csv":
        import csv

        keys = sorted({k for r in results for k in r.values})
        # surrogateescape: names of files whose names are not UTF-8 are written back as their bytes.
        with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
            w = csv.writer(fh)
            # The fixed smoothing_ratio and the smoothing in Å (smoothing_ratio x a) are columns too.
            fixed = sorted({k for r in results for k in r.fixed} - set(keys))
            w.writerow(["name", "case", "mode", "chi2", "evaluations", "wall_time_s", *keys,
                        *(f"{k}_err" for k in keys), *fixed, "smoothing_A", "warnings"])
            for r in results:
                w.writerow([r.name, r.case, r.mode, f"{r.chi2:.6g}", r.evaluations, f"{r.wall_time:.3f}",
                            *(f"{r.values.get(k, float('nan')):.6g}" for k in keys),
                            *(f"{r.uncertainties.get(k, float('nan')):.3g}" for k in keys),
                            *(f"{r.fixed.get(k, float('nan')):.6g}" for k in fixed),
                            f"{r.derived.get('smoothing', float('nan')):.6g}", "; ".join(r.warnings)])
            for f in failures:
                w.writerow([f["source"], "", "", "", "", "", *([""] * (2 * len(keys) + len(fixed) + 1)),
                            "FAILED: " + f["error"]])
    else:
        path.write_text(json.dumps({"results": [r.to_dict() for r in results], "failures": failures}, indent=1))
