"""Fit any model of the GRF family or SasView's built-ins to a measured curve, and compare them.

:func:`fit_model` fits one sasmodels model, optionally with additive terms (``plus=("power_law",)``
makes the sum model ``model+power_law``), from several starts taken from the data (its length scale
from a correlation peak or the knee of the curve), and keeps the best. :func:`compare_models` fits the
GRF family (:data:`~sasview_grf_plugin.sasview.paths.ENSEMBLE_MODELS`) and the built-ins
(``teubner_strey``, ``dab``, ``broad_peak``), each alone and with a power law, with the **same data
object**: the same weights (the data's errors), q range and resolution (pinhole ``dx`` or slit ``dxl``
as sasmodels applies them), and ranks them by BIC.

Units: q in 1/Å, lengths in Å, intensities in the data's unit (SasView's).

Conventions (why):

- SLD parameters are fixed at their defaults and the model's ``scale`` is free: the contrast and
  the scale are one factor for a curve of unknown absolute scale.
- Linear amplitudes (``scale``, the terms' ``B_scale``, broad_peak's ``porod_scale``/``peak_scale``)
  and the flat ``background`` start from a non-negative least-squares fit at each start.
- ``teubner_strey``'s ``volfraction_a`` only multiplies the curve (fixed at 0.5); ``broad_peak``'s
  ``shape_exp`` is fixed at 1 (a Lorentzian peak, as SasView's default) and its overall ``scale`` at 1;
  the GRF models' smoothing parameter is fixed at its default (it shapes only the far tail).
- χ² uses the data's errors only (all models are deterministic); reduced χ² = χ²/(n - p) and
  BIC = χ² + p ln n with p the number of free parameters (amplitudes and background included).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .loaders import intensity_unit

__all__ = ["ModelFit", "Comparison", "fit_model", "compare_models", "BUILTIN_MODELS", "PLUS_TERMS",
           "characteristic_length", "model_names", "resolve_model"]

#: Built-in SasView models compared with the GRF family.
BUILTIN_MODELS = ("teubner_strey", "dab", "broad_peak")
#: Additive terms for ``plus`` (sasmodels built-ins): low-q upturns, a second length scale, Porod tails.
PLUS_TERMS = {
    "power_law": "A q^-p upturn at low q (larger grains or aggregates, surface or mass fractals)",
    "lorentz": "Ornstein-Zernike term (a second, smaller correlation length; polymer or solvent fluctuations)",
    "guinier": "a second, larger length scale with a Guinier knee (aggregates of finite size)",
    "porod": "a q^-4 term (smooth surfaces of large grains)",
}
# Parameters fixed at a value (not their default) for a model.
_FIXED = {"teubner_strey": {"volfraction_a": 0.5}, "broad_peak": {"shape_exp": 1.0, "scale": 1.0}}
# Linear amplitudes of a model besides its "scale" (broad_peak's overall scale is fixed instead).
_LINEAR = {"broad_peak": ("porod_scale", "peak_scale")}
# Fit ranges for parameters whose model limits are unbounded.
_BOUNDS = {"power": (1.0, 6.0), "porod_exp": (1.0, 6.0), "width_exp": (0.5, 6.0), "shape_exp": (0.25, 6.0)}
# Start of a length parameter relative to the curve's length L = 1/q*: a domain spacing is 2 pi / q*.
_LENGTH_HINT = {"d": 2 * math.pi, "spacing": 2 * math.pi, "domain_spacing": 2 * math.pi}
#: Factors applied to the data's length scale, one start each.
START_FACTORS = (0.5, 1.0, 2.5)


def model_names() -> tuple[str, ...]:
    """The models :func:`fit_model` accepts by name: the GRF family and the compared built-ins."""
    from .sasview.paths import ENSEMBLE_MODELS

    return tuple(ENSEMBLE_MODELS) + BUILTIN_MODELS


def resolve_model(name: str) -> str:
    """The sasmodels name (a file path for this package's models) of a model name."""
    from .sasview.paths import MODEL_NAMES, model_path

    if name in MODEL_NAMES:
        return model_path(name)
    from sasmodels.core import list_models

    if name in list_models():
        return name
    raise ValueError(f"unknown model {name!r}; allowed: {', '.join(model_names())} (or any sasmodels built-in)")


def _check_plus(plus: Sequence[str]) -> tuple[str, ...]:
    plus = tuple(plus)
    for term in plus:
        if term not in PLUS_TERMS:
            raise ValueError(f"unknown additive term {term!r}; allowed: {', '.join(PLUS_TERMS)}")
    return plus


@dataclass
class ModelFit:
    """One model's best fit (SasView units: lengths Å, q 1/Å, intensities in the data's unit)."""

    model: str
    chi2: float  # reduced
    chi2_total: float
    bic: float
    n_points: int
    n_free: int
    values: dict[str, float]
    uncertainties: dict[str, float]
    units: dict[str, str]
    fixed: dict[str, float]
    start: dict[str, float]
    q_range: tuple[float, float]
    wall_time: float
    evaluations: int
    starts: int
    start_chi2: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict, repr=False)

    @property
    def family(self) -> str:
        """``"grf"`` for the GRF family (any sum with a GRF model first), else ``"builtin"``."""
        return "grf" if self.model.startswith("grf_") else "builtin"

    def to_dict(self, with_curves: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_curves:
            d.pop("curves")
        d["family"] = self.family
        return d

    def parameter_text(self) -> str:
        out = []
        for k, v in self.values.items():
            unit = self.units.get(k, "")
            err = self.uncertainties.get(k, math.nan)
            out.append(f"{k} {v:.4g} ± {err:.2g}" + (f" {unit}" if unit else ""))
        return ", ".join(out)


def _unit(u: str) -> str:
    return {"Ang": "Å", "1/Ang": "1/Å", "1e-6/Ang^2": "1e-6/Å²", "cm^-1": "cm^-1"}.get(u, u)


def characteristic_length(q: np.ndarray, intensity: np.ndarray, error: np.ndarray | None = None,
                          slit: bool = False) -> tuple[float, str]:
    """The curve's length scale L = 1/q* in Å, and how it was found.

    q* is a correlation peak's position where the smoothed curve has a clear interior maximum, else the
    knee where the background-free curve turns steeper than q^-2 (q^-1 with slit smearing; q ξ = 1 for a
    DAB curve), else where q^2 I is largest; at the window's edges 3/q_min or 1/q_max.
    """
    from .qrange import local_slopes

    ls, s = local_slopes(q, intensity, error)
    n = q.size
    # Local maxima of the smoothed curve at least 30 % above the curve's minimum at lower q: correlation
    # peaks; the most prominent one sets the length.
    peaks = [i for i in range(2, n - 2) if s[i - 1] > 0 >= s[i + 1] and ls[i] >= ls[i - 1] and ls[i] >= ls[i + 1]]
    prominence = [ls[i] - ls[:i].min() for i in peaks]
    if peaks and max(prominence) > np.log(1.3):
        i = peaks[int(np.argmax(prominence))]
        return 1.0 / float(q[i]), f"correlation peak at q = {q[i]:.4g} 1/Å"
    # Else the maximum of q^2 I (q I for slit-smeared data, whose slopes are one less): at q xi = 1 for DAB,
    # near the spacing's q for a smeared peak; at an edge of the window the structure is outside it.
    power = 1.0 if slit else 2.0
    # Less a flat background (90 % of the smoothed curve's high-q floor), which would make q^2 I grow at
    # high q whatever the structure.
    smooth = np.exp(ls)
    floor = 0.9 * float(np.min(smooth[int(0.8 * n):]))
    excess = np.clip(smooth - floor, 1e-3 * smooth, None)
    kratky = np.log(excess) + power * np.log(q)
    # Knees: where the background-free curve turns steeper than q^-2 (q^-1 slit-smeared), the slope of
    # DAB at q xi = 1; of several (a low-q upturn, a second level), the one highest in q^2 I.
    es = np.gradient(np.log(excess), np.log(q))
    knees = np.flatnonzero((es[:-1] > -power) & (es[1:] <= -power))
    knees = knees[(knees > 0) & (knees < n - 2)]
    if knees.size:
        k = int(knees[np.argmax(kratky[knees])])
        return 1.0 / float(q[k]), f"knee (log-log slope -{power:g} above the background) at q = {q[k]:.4g} 1/Å"
    k = int(np.argmax(kratky))
    if 0 < k < n - 1:
        return 1.0 / float(q[k]), f"maximum of q^{power:g} I at q = {q[k]:.4g} 1/Å"
    # No length inside the window: the caller spreads its starts over the window instead.
    if k == 0:
        return 3.0 / float(q[0]), f"q^{power:g} I largest at the lowest q (structure larger than the window): 3/q_min"
    return 1.0 / float(q[-1]), f"q^{power:g} I largest at the highest q: 1/q_max"


@dataclass
class _Spec:
    """A sasmodels kernel and how its parameters are treated."""

    name: str
    kernel: Any
    free: list[str]
    linear: list[str]
    fixed: dict[str, float]
    bounds: dict[str, tuple[float, float]]
    units: dict[str, str]
    defaults: dict[str, float]
    length_like: dict[str, float]  # name -> hint factor
    inverse_length: list[str]
    powers: list[str]  # exponents of the power-law terms


_KERNELS: dict[str, Any] = {}


def _counting() -> type:
    from .fitting import _counting_experiment

    return _counting_experiment()


def _spec(model: str, plus: tuple[str, ...], q: np.ndarray) -> _Spec:
    from sasmodels.core import build_model, load_model_info

    parts = (model, *plus)
    full = "+".join(resolve_model(p) for p in parts)
    kernel = _KERNELS.get(full)
    if kernel is None:
        kernel = _KERNELS[full] = build_model(load_model_info(full))
    prefixes = [""] if len(parts) == 1 else [chr(ord("A") + i) + "_" for i in range(len(parts))]
    free, linear, units, defaults, bounds = [], [], {}, {}, {}
    fixed: dict[str, float] = {} if len(parts) == 1 else {"scale": 1.0}
    length_like: dict[str, float] = {}
    inverse: list[str] = []
    powers: list[str] = []
    qmin, qmax = float(q[0]), float(q[-1])
    for part, prefix in zip(parts, prefixes, strict=True):
        info = load_model_info(resolve_model(part))
        base = part if part in _FIXED or part in _LINEAR else ""
        part_fixed = dict(_FIXED.get(base, {}))
        amp = [prefix + k for k in _LINEAR.get(base, ())]
        if "scale" in part_fixed:
            fixed[prefix + "scale"] = part_fixed.pop("scale")
        else:
            amp.insert(0, prefix + "scale")
        linear += amp
        for p in info.parameters.kernel_parameters:
            name = prefix + p.name
            units[name] = _unit(p.units)
            defaults[name] = float(p.default)
            if p.type in ("sld", "magnetic", "orientation") or p.name.startswith("smoothing"):
                fixed[name] = float(p.default)
                continue
            if p.name in part_fixed:
                fixed[name] = float(part_fixed[p.name])
                continue
            if name in amp:
                continue
            lo, hi = (float(v) for v in p.limits)
            if p.units == "Ang":
                lo, hi = max(lo, 1.0), min(hi, 20.0 * math.pi / qmin)
                length_like[name] = _LENGTH_HINT.get(p.name, 1.0)
            elif p.units == "1/Ang":
                lo, hi = max(lo, qmin / 20.0), min(hi, 20.0 * qmax)
                inverse.append(name)
            elif p.name in _BOUNDS:
                lo, hi = max(lo, _BOUNDS[p.name][0]), min(hi, _BOUNDS[p.name][1])
            if not (math.isfinite(lo) and math.isfinite(hi)):
                d = abs(float(p.default)) * 10 + 1.0
                lo, hi = (lo if math.isfinite(lo) else -d), (hi if math.isfinite(hi) else d)
            if part == "power_law" and p.name == "power":
                powers.append(name)
            bounds[name] = (lo, hi)
            free.append(name)
    for name in linear:
        units.setdefault(name, "")
    units["background"] = ""
    return _Spec(full, kernel, free, linear, fixed, bounds, units, defaults, length_like, inverse, powers)


def _starts(spec: _Spec, length: float, q: np.ndarray, y: np.ndarray, n: int,
            inside: bool = True) -> list[dict[str, float]]:
    """``n`` starts: the data's length scale times :data:`START_FACTORS`, then (n > 3) the length itself
    with the shape parameters at half and twice their defaults; when the curve shows no length inside its
    window, lengths spread from 2/q_max to 1/q_min."""
    if inside:
        # Beyond the three length factors, further starts keep the length and vary the shape parameters.
        factors = (START_FACTORS + (1.0,) * max(0, n - len(START_FACTORS)))[:n]
    else:
        factors = tuple(np.geomspace(2.0 / q[-1], 1.0 / q[0], n) / length)
    # Low-q slope of the data for power-law exponents (the first decade's straight line).
    k = max(4, q.size // 10)
    slope = float(np.polyfit(np.log(q[:k]), np.log(y[:k]), 1)[0])
    power0 = float(np.clip(-slope, 1.5, 4.5))
    out = []
    for i, f in enumerate(factors[:n]):
        s: dict[str, float] = {}
        for name in spec.free:
            lo, hi = spec.bounds[name]
            if name in spec.length_like:
                v = length * f * spec.length_like[name]
            elif name in spec.inverse_length:
                v = 1.0 / (length * f)
            elif name in spec.powers:
                # The data's low-q slope is shallower than the upturn itself where the structure adds to it:
                # the other starts try a steep upturn (q^-4, q^-3) that leaves the middle to the model.
                v = (power0, 4.0, 3.0)[i % 3]
            elif spec.units.get(name) == "" and 0.0 <= lo < hi <= 1.0 and i > 0:
                # Fractions (porosity, layer fraction): the starts also spread over their range.
                v = lo + (0.25 if i % 2 else 0.75) * (hi - lo)
            elif spec.units.get(name) == "" and i >= len(START_FACTORS) and spec.defaults[name] > 0 and lo >= 0:
                # Shape parameters (exponents, ratios) from the fourth start on: half and twice the default.
                v = spec.defaults[name] * (0.5 if i % 2 else 2.0)
            else:
                v = spec.defaults[name]
            # Strictly inside the bounds: LM stalls on a bound.
            if lo > 0 and hi / lo > 100:  # wide positive ranges (lengths): a relative margin
                s[name] = float(np.clip(v, lo * 1.01, hi / 1.01))
            else:
                margin = 0.01 * (hi - lo)
                s[name] = float(np.clip(v, lo + margin, hi - margin))
        out.append(s)
    return out


def _linear_start(experiment: Any, model: Any, spec: _Spec, y: np.ndarray, dy: np.ndarray) -> dict[str, float]:
    """Non-negative least squares for the linear amplitudes and the background at the current shape."""
    from scipy.optimize import nnls

    cols = []
    for name in spec.linear:
        for other in spec.linear:
            getattr(model, other).value = 1.0 if other == name else 0.0
        model.background.value = 0.0
        experiment.update()
        cols.append(np.asarray(experiment.theory(), dtype=float).copy())
    cols.append(np.ones_like(y))
    a = np.column_stack(cols) / dy[:, None]
    coef, _ = nnls(a, y / dy)
    # Each term's amplitude if it alone described the data: the scale of its range, and a floor for its
    # start (a term started at zero has no gradient in LM and would stay switched off).
    alone = [float(np.dot(c, y / dy) / max(np.dot(c, c), 1e-300)) for c in a.T[:-1]]
    out = {}
    for name, c, c1 in zip(spec.linear, coef[:-1], alone, strict=True):
        c1 = max(c1, 1e-30)
        out[name] = float(max(c, 0.01 * c1))
        out["_alone_" + name] = c1
    out["background"] = float(coef[-1])
    return out


def fit_model(curve: Any, model: str, plus: Sequence[str] = (), q_range: tuple[float, float] | None = None,
              n_starts: int = 3, method: str = "lm", steps: int = 300, extra_starts: Sequence[dict] = (),
              fixed: dict[str, float] | None = None) -> ModelFit:
    """Fit ``model`` (+ ``plus`` terms) to a curve from several starts and return the best (lowest χ²).

    Parameters
    ----------
    curve
        A :class:`~sasview_grf_plugin.loaders.Curve` (q in 1/Å; its ``dx``/``dxl`` give the resolution).
    model
        A GRF model of :data:`ENSEMBLE_MODELS` or a sasmodels built-in name.
    plus
        Additive terms from :data:`PLUS_TERMS` (sasmodels sum model ``model+term``).
    q_range
        (q_min, q_max) in 1/Å; default: all of the data.
    n_starts
        Starts from the data's length scale (see :func:`characteristic_length`).
    extra_starts
        Further starts (parameter name -> value) tried as well, e.g. an ML prediction.
    fixed
        Parameters fixed at the given values (overriding the conventions of the module docstring).
    """
    from bumps.fitters import fit as bumps_fit
    from bumps.names import FitProblem
    from sasmodels.bumps_model import Model

    plus = _check_plus(plus)
    if n_starts < 1:
        raise ValueError(f"n_starts must be >= 1, got {n_starts}")
    data = curve.data
    q_all = np.asarray(data.x, dtype=float)
    lo, hi = (float(q_all[0]), float(q_all[-1])) if q_range is None else (
        max(float(q_range[0]), float(q_all[0])), min(float(q_range[1]), float(q_all[-1])))
    sel = (q_all >= lo) & (q_all <= hi)
    if sel.sum() < 8:
        raise ValueError(f"{curve.name}: only {int(sel.sum())} points in the fit range {lo:.4g}-{hi:.4g} 1/Å")
    if data.dy is None:
        data.dy = np.ones_like(np.asarray(data.y, dtype=float))
    data.qmin, data.qmax = lo, hi
    q, y = q_all[sel], np.asarray(data.y, dtype=float)[sel]
    dyv = np.asarray(data.dy, dtype=float)[sel]
    spec = _spec(model, plus, q)
    user_fixed = dict(fixed or {})
    for k in user_fixed:
        if k not in spec.free and k not in spec.linear and k not in spec.fixed and k != "background":
            raise ValueError(f"{model}: no parameter {k!r} to fix; parameters: {', '.join(spec.free + spec.linear)}")
    free = [k for k in spec.free if k not in user_fixed]
    linear = [k for k in spec.linear if k not in user_fixed]
    # The length scale from the part of the curve a model can describe (no beam-stop shadow or WAXS).
    from .qrange import check_q_range

    rep = check_q_range(q, y, dyv)
    keep = (q >= rep.suggested[0]) & (q <= rep.suggested[1])
    length, how = characteristic_length(q[keep], y[keep], dyv[keep], slit=bool(curve.slit_length))
    inside = "window" not in how and "lowest q" not in how and "highest q" not in how
    starts = _starts(spec, length, q, y, n_starts, inside) + [dict(s) for s in extra_starts]
    t0 = time.perf_counter()
    best: dict[str, Any] | None = None
    start_chi2 = []
    evaluations = 0
    failures = []
    for st in starts:
        values = {**spec.fixed, **{k: spec.defaults[k] for k in spec.free}, **st, **user_fixed}
        pars = {k: v for k, v in values.items() if k not in ("background",)}
        m = Model(spec.kernel, **pars, **{k: 1.0 for k in spec.linear if k not in pars}, background=0.0)
        exp = _counting()(data=data, model=m)
        lin_spec = dataclasses.replace(spec, linear=linear)  # without the amplitudes the user fixed
        try:
            lin = _linear_start(exp, m, lin_spec, np.asarray(exp.Iq), np.asarray(exp.dIq)) if linear else {}
        except (ValueError, RuntimeError) as exc:
            failures.append(str(exc))
            continue
        for k, v in lin.items():
            if k in user_fixed or k.startswith("_alone_"):
                continue
            getattr(m, k).value = v
        exp.update()
        start_values = {k: float(getattr(m, k).value) for k in (*free, *linear, "background")}
        for k in free:
            getattr(m, k).range(*spec.bounds[k])
        for k in linear:
            getattr(m, k).range(0.0, 1e3 * max(lin["_alone_" + k], float(getattr(m, k).value)))
        if "background" not in user_fixed:
            ymax = float(np.max(y))
            m.background.range(0.0, max(ymax, 10.0 * float(m.background.value)))
        problem = FitProblem(exp)
        try:
            res = bumps_fit(problem, method=method, steps=steps, verbose=False)
        except (ValueError, RuntimeError, FloatingPointError) as exc:
            failures.append(str(exc))
            continue
        problem.setp(res.x)
        resid = np.asarray(exp.residuals(), dtype=float)
        chi2_total = float(np.sum(resid**2))
        evaluations += exp.evaluations
        start_chi2.append(chi2_total)
        if best is None or chi2_total < best["chi2_total"]:
            dx = res.dx if res.dx is not None else [math.nan] * len(res.x)
            labels = problem.labels()
            best = {"chi2_total": chi2_total, "n": int(resid.size), "labels": labels,
                    "values": {k: float(v) for k, v in zip(labels, res.x, strict=True)},
                    "errors": {k: float(e) for k, e in zip(labels, dx, strict=True)},
                    "start": start_values, "q": np.asarray(exp.resolution.q).tolist(),
                    "fit": np.asarray(exp.theory()).tolist(), "data": np.asarray(exp.Iq).tolist(),
                    "error": np.asarray(exp.dIq).tolist()}
    if best is None:
        raise RuntimeError(f"{model}{''.join('+' + p for p in plus)}: no start could be fitted: "
                           + "; ".join(failures[:3]))
    p = len(best["labels"])
    n = best["n"]
    warnings = []
    order = [*free, *linear, "background"]
    values = {k: best["values"][k] for k in order if k in best["values"]}
    errors = {k: best["errors"][k] for k in order if k in best["errors"]}
    for k in free:
        lo_b, hi_b = spec.bounds[k]
        if k in values and min(values[k] - lo_b, hi_b - values[k]) <= 1e-6 * (hi_b - lo_b):
            if k.split("_", 1)[-1] == "porosity" and hi_b == 0.5 and values[k] >= 0.5 - 1e-6:
                # Babinet: the two-phase curve is symmetric about porosity 0.5, so it does not change there to
                # first order and its error is meaningless.
                warnings.append(f"{k} ended at 0.5, the symmetric point (pore and solid alike, Babinet): the "
                                "value is a bound and its uncertainty is not determined")
                errors[k] = float("nan")
            else:
                warnings.append(f"{k} ended on its bound ({values[k]:.4g}): the data lie outside what the model "
                                "describes there; the value is a bound, not an estimate")
    all_fixed = {k: v for k, v in {**spec.fixed, **user_fixed}.items() if k not in values}
    return ModelFit(model="+".join((model, *plus)), chi2=best["chi2_total"] / max(1, n - p),
                    chi2_total=best["chi2_total"], bic=best["chi2_total"] + p * math.log(n), n_points=n, n_free=p,
                    values=values, uncertainties=errors, units={k: spec.units.get(k, "") for k in values},
                    fixed=all_fixed, start=best["start"], q_range=(lo, hi), wall_time=time.perf_counter() - t0,
                    evaluations=evaluations, starts=len(starts), start_chi2=start_chi2,
                    warnings=[f"length scale of the data: {1 / length:.4g} 1/Å ({how})"] + warnings,
                    curves={"q": best["q"], "data": best["data"], "error": best["error"], "fit": best["fit"]})


@dataclass
class Comparison:
    """All fits of one curve, ranked by BIC, with the q-range check."""

    name: str
    q_range: tuple[float, float]
    n_points: int
    resolution: str
    fits: list[ModelFit]
    failures: dict[str, str]
    qcheck: dict[str, Any]
    cut: list[str] = field(default_factory=list)
    intensity_unit: str = ""  # the data's intensity unit ("" if the file names none)

    @property
    def best(self) -> ModelFit:
        return self.fits[0]

    def best_of(self, family: str, by: str = "bic") -> ModelFit | None:
        """The family's (``"grf"`` or ``"builtin"``) best fit by ``"bic"`` or by reduced ``"chi2"``."""
        fits = [f for f in self.fits if f.family == family]
        if not fits:
            return None
        return min(fits, key=lambda f: f.bic if by == "bic" else f.chi2)

    def verdict(self) -> str:
        """Which model is best (BIC), and the GRF family's lowest reduced χ² against the built-ins'."""
        g, b = self.best_of("grf", by="chi2"), self.best_of("builtin", by="chi2")
        text = f"best (lowest BIC): {self.best.model}, reduced χ² {self.best.chi2:.3g}"
        if g is not None and b is not None:
            text += (f"; lowest reduced χ²: GRF {g.model} {g.chi2:.3g}, built-in {b.model} {b.chi2:.3g}: "
                     f"ratio {g.chi2 / b.chi2:.3g}")
        return text

    def table(self) -> str:
        lines = [f"{self.name}: q {self.q_range[0]:.4g}-{self.q_range[1]:.4g} 1/Å, {self.n_points} points, "
                 f"{self.resolution}; every model with the same weights, q range and resolution"]
        lines += [f"  cut: {c}" for c in self.cut]
        w = max(len(f.model) for f in self.fits) + 2
        lines.append(f"  {'model':<{w}}{'red. χ²':>10}{'BIC':>12}{'time [s]':>10}  parameters (± 1σ)")
        for f in self.fits:
            lines.append(f"  {f.model:<{w}}{f.chi2:>10.4g}{f.bic:>12.6g}{f.wall_time:>10.2f}  {f.parameter_text()}")
        for k, v in self.failures.items():
            lines.append(f"  {k:<{w}}failed: {v}")
        lines.append("  " + self.verdict())
        return "\n".join(lines)

    def to_dict(self, with_curves: bool = False) -> dict[str, Any]:
        return {"name": self.name, "q_range": list(self.q_range), "n_points": self.n_points,
                "resolution": self.resolution, "qcheck": self.qcheck, "cut": self.cut, "verdict": self.verdict(),
                "fits": [f.to_dict(with_curves) for f in self.fits], "failures": self.failures}

    def write_json(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(with_curves=True), indent=1, default=_plain))

    def plot(self, path: str | os.PathLike, n_best: int = 6) -> None:
        """Data with the ``n_best`` fits (by BIC; the best GRF and built-in always shown) and residuals."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        shown = list(self.fits[:n_best])
        for fam in ("grf", "builtin"):
            f = self.best_of(fam)
            if f is not None and f not in shown:
                shown.append(f)
        fig, (ax, axr) = plt.subplots(2, 1, figsize=(7.5, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
        c0 = {k: np.asarray(v) for k, v in shown[0].curves.items()}
        ax.errorbar(c0["q"], c0["data"], yerr=c0["error"], fmt=".", ms=2.5, color="0.55", elinewidth=0.5,
                    label="data", zorder=1)
        for f in shown:
            c = {k: np.asarray(v) for k, v in f.curves.items()}
            style = "-" if f.family == "grf" else "--"
            (line,) = ax.loglog(c["q"], c["fit"], style, lw=1.3, label=f"{f.model} (χ² {f.chi2:.3g})")
            axr.semilogx(c["q"], (c["data"] - c["fit"]) / c["error"], ".", ms=2, color=line.get_color())
        ax.set_ylabel(f"I(q) [{self.intensity_unit or 'data unit'}]")
        shown_name = self.name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        ax.set_title(f"{shown_name}: fits ranked by BIC (solid: GRF family)", fontsize=9)
        ax.legend(fontsize=7)
        axr.axhline(0, color="k", lw=0.8)
        axr.set_xlabel("q [1/Å]")
        axr.set_ylabel("(data - model)/σ")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def alone_linear(fit: ModelFit) -> set[str]:
    """The amplitudes and background of a single-model fit (not carried into a sum model's start)."""
    return {"scale", "background", *_LINEAR.get(fit.model, ())}


def _resolution_text(curve: Any) -> str:
    if curve.slit_length:
        return f"slit smearing (slit length {curve.slit_length:.4g} 1/Å)"
    dx = getattr(curve.data, "dx", None)
    if dx is not None and np.any(np.asarray(dx) > 0):
        return f"pinhole smearing (median dq/q {np.median(np.asarray(dx) / curve.q):.3g})"
    return "no resolution given (unsmeared)"


def compare_models(data: Any, models: Sequence[str] | None = None,
                   plus_variants: Sequence[Sequence[str]] = ((), ("power_law",)),
                   q_range: tuple[float, float] | None = None, auto_qrange: bool = False,
                   q_unit: str | None = None, n_starts: int = 3, method: str = "lm", name: str | None = None,
                   progress: bool = False) -> Comparison:
    """Fit every model (GRF family and built-ins by default), each with every ``plus`` variant, on the same
    data, q range, weights and resolution; rank by BIC.

    ``data`` is a file path, a ``Curve``, a sasdata ``Data1D`` or ``(q, I[, dI])`` arrays with ``q_unit``.
    The q range is checked (:func:`~sasview_grf_plugin.qrange.check_q_range`): findings are always
    reported; with ``auto_qrange`` (and no ``q_range``) the suggested range is fitted, and what was cut
    is listed in ``Comparison.cut``.
    """
    from .fitting import MAX_FIT_POINTS, _as_curve, _rebin
    from .qrange import check_q_range

    curve = _as_curve(data, q_unit, name)
    notes = list(curve.notes)
    if curve.q.size > MAX_FIT_POINTS:
        n_raw = curve.q.size
        curve = _rebin(curve, MAX_FIT_POINTS)
        notes.append(f"{n_raw} points rebinned to {curve.q.size} log-spaced bins")
    models = tuple(models) if models is not None else model_names()
    for m in models:
        resolve_model(m)
    variants = [_check_plus(v) for v in plus_variants]
    report = check_q_range(curve.q, curve.intensity, curve.error)
    cut = []
    if q_range is None and auto_qrange and report.cut:
        q_range = report.suggested
        cut = [f.message for f in report.findings]
    q = curve.q
    lo, hi = (float(q[0]), float(q[-1])) if q_range is None else (max(q_range[0], float(q[0])),
                                                                   min(q_range[1], float(q[-1])))
    fits, failures = [], {}
    for m in models:
        alone: ModelFit | None = None
        for v in sorted(variants, key=len):
            label = "+".join((m, *v))
            if progress:
                print(f"  fitting {label} ...", flush=True)
            # A sum model also starts from the model's own best fit (its terms' amplitudes then start small).
            extra = [] if (alone is None or not v) else [
                {"A_" + k: val for k, val in alone.values.items() if k not in alone_linear(alone)}]
            try:
                f = fit_model(curve, m, v, q_range=(lo, hi), n_starts=n_starts, method=method, extra_starts=extra)
            except (ValueError, RuntimeError) as exc:
                failures[label] = str(exc)
                continue
            fits.append(f)
            if not v:
                alone = f
    if not fits:
        raise RuntimeError(f"{curve.name}: no model could be fitted: {failures}")
    fits.sort(key=lambda f: f.bic)
    qcheck = report.to_dict()
    qcheck["messages"] = report.describe() + notes
    return Comparison(name=curve.name, q_range=(lo, hi), n_points=fits[0].n_points,
                      resolution=_resolution_text(curve), fits=fits, failures=failures, qcheck=qcheck, cut=cut,
                      intensity_unit=intensity_unit(curve))
