"""Synthetic measurements for the "measured" booster family: ensemble-mean curves as instruments record them.

A real sample scatters the ensemble mean of the structure model, so the training curves come from
the ensemble table (no realization scatter), measured the way real curves are:

- the paper's noise model (lognormal, variance alpha I, alpha log-uniform in [1e2, 10^5.5]) at the
  intensity scale of a paper-range structure (``a_eq`` in 0.8-8 nm), see :mod:`..datasets.noise`;
- a random q window (at least a factor 5 wide, holding the structure's knee: q a from <= 1 to >= 2),
  30-400 points spaced linearly or logarithmically;
- with some probability each: pinhole smearing (dq/q 1-15 %), slit smearing (slit length 0.05-5 / a),
  a flat background (3-300 % of the intensity at the window's end), a q-calibration error (+-2 %).

Pinhole and slit smearing use sasmodels' own resolution classes. Every curve is then reduced to the
slope features of :mod:`.window_features` twice: on the absolute grid (stage 1, q in 1/Å, target
ln a) and on the ``q a0`` grid with ``a0 = a / r`` for a random ``r`` (stage 2, targets ln r and the
structure parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..datasets.noise import PAPER_INTENSITY_SCALE, add_noise
from ..ensemble.table import load_table
from .window_features import LogGrid, log_bins, slope_features

__all__ = ["MeasuredCase", "MEASURED_CASES", "EFFECTS", "STAGE1_GRID", "STAGE2_GRID", "A_RANGE", "Q_LIMITS",
           "WINDOW_RULE", "Effects", "model_curve", "draw_parameters", "synthesize"]

# The paper's phase densities (pore, layer, solid) = (0, 0.65, 1): contrasts against the solid.
D_PORE, D_LAYER = -1.0, -0.35
A_RANGE = (6.0, 700.0)  # Å; the stated domain is 8-500 Å, trained a little wider so its edges are not edges
Q_LIMITS = (1e-3, 1.0)  # 1/Å, where windows may lie
# The window must reach q a <= 1 (the structure's knee) and q a >= 2, and span a factor >= 5.
WINDOW_RULE = {"qa_low_max": 1.0, "qa_high_min": 2.0, "min_factor": 5.0, "qa_low_min": 0.02, "qa_high_max": 100.0}
STAGE1_GRID = LogGrid(8e-4, 1.25, 44)  # q in 1/Å
STAGE2_GRID = LogGrid(0.015, 130.0, 52)  # q a0


@dataclass(frozen=True)
class MeasuredCase:
    """A case of the measured family; two phases are one case (Babinet: eps and 1 - eps scatter alike)."""

    name: str
    three_phase: bool
    porosity: tuple[float, float]
    smoothing: tuple[float, float]  # sigma / a

    @property
    def outputs(self) -> tuple[str, ...]:
        base = ("a", "porosity", "layer_fraction") if self.three_phase else ("a", "porosity")
        return (*base, "smoothing")


MEASURED_CASES: dict[str, MeasuredCase] = {
    c.name: c for c in (
        MeasuredCase("two_phase", False, (0.1, 0.5), (0.0, 1.25)),
        MeasuredCase("three_phase_low", True, (0.1, 0.5), (0.1, 1.25)),
        MeasuredCase("three_phase_high", True, (0.5, 0.9), (0.1, 1.25)),
    )
}
LAYER_RANGE = (0.05, 0.5)


@dataclass(frozen=True)
class Effects:
    """Probabilities of the instrument effects (all zero: the paper's noise on a clean window)."""

    pinhole: float = 0.35
    slit: float = 0.15
    background: float = 0.4
    q_error: float = 0.3
    fixed_window: tuple[float, float] | None = None  # q a window forced (tests, Table-2 comparison)
    noise: bool = True


EFFECTS = {"instrument": Effects(), "clean": Effects(0.0, 0.0, 0.0, 0.0)}


def model_curve(qa: Any, porosity: float, layer_fraction: float, smoothing: float) -> np.ndarray:
    """a^-3 I of the ensemble model with the paper's contrasts, at q a (two phases when layer_fraction=0)."""
    return load_table().intensity(qa, porosity, layer_fraction, smoothing, D_PORE, D_LAYER)


def draw_parameters(case: MeasuredCase, n: int, rng: np.random.Generator,
                    a_range: tuple[float, float] = A_RANGE) -> dict[str, np.ndarray]:
    """Uniform porosity, layer fraction and smoothing/a in the case's ranges; a log-uniform in ``a_range``."""
    out = {
        "a": np.exp(rng.uniform(*np.log(a_range), n)),
        "porosity": rng.uniform(*case.porosity, n),
        "layer_fraction": rng.uniform(*LAYER_RANGE, n) if case.three_phase else np.zeros(n),
        "smoothing": rng.uniform(*case.smoothing, n),
    }
    return out


def _window(a: float, rng: np.random.Generator, effects: Effects) -> tuple[float, float]:
    """A q a window obeying WINDOW_RULE and lying inside Q_LIMITS (in q) for this a."""
    w = WINDOW_RULE
    if effects.fixed_window is not None:
        return effects.fixed_window
    lo_lim, hi_lim = max(w["qa_low_min"], Q_LIMITS[0] * a), min(w["qa_high_max"], Q_LIMITS[1] * a)
    for _ in range(100):
        lo = np.exp(rng.uniform(np.log(lo_lim), np.log(min(w["qa_low_max"], hi_lim / w["min_factor"]))))
        hi_min = max(w["qa_high_min"], lo * w["min_factor"])
        if hi_min >= hi_lim:
            continue
        hi = np.exp(rng.uniform(np.log(hi_min), np.log(hi_lim)))
        return float(lo), float(hi)
    raise ValueError(f"no q window obeys the window rule for a = {a:g} Å inside q = {Q_LIMITS} 1/Å")


def _measure(qa: np.ndarray, p: dict[str, float], rng: np.random.Generator, effects: Effects,
             info: dict[str, Any]) -> np.ndarray:
    """Intensity (a^-3 units) at qa with the drawn instrument effects and noise."""
    from sasmodels.resolution import Pinhole1D, Slit1D

    def f(x: np.ndarray) -> np.ndarray:
        return model_curve(np.maximum(x, 0.0), p["porosity"], p["layer_fraction"], p["smoothing"])

    u = rng.uniform(size=4)
    if u[0] < effects.pinhole:
        rel = rng.uniform(0.01, 0.15)
        res = Pinhole1D(qa, rel * qa)
        info["pinhole"] = rel
        i = res.apply(f(res.q_calc))
    elif u[1] < effects.slit / max(1e-12, 1.0 - effects.pinhole):
        length = float(np.exp(rng.uniform(np.log(0.05), np.log(5.0))))
        res = Slit1D(qa, q_length=length)
        info["slit"] = length
        i = res.apply(f(res.q_calc))
    else:
        i = f(qa)
    if u[2] < effects.background:
        beta = float(np.exp(rng.uniform(np.log(0.03), np.log(3.0))))
        info["background"] = beta
        i = i + beta * i[-1]
    if effects.noise:
        a_eq = float(np.exp(rng.uniform(np.log(0.8), np.log(8.0))))
        scale = PAPER_INTENSITY_SCALE * a_eq**3
        noisy, alpha = add_noise(np.maximum(i, 1e-300) * scale, rng)
        info["alpha"] = float(alpha)
        info["dI"] = np.sqrt(alpha * np.maximum(i, 1e-300) * scale) / scale  # the noise's standard deviation
        i = noisy / scale
    return np.maximum(i, 1e-300)


def synthesize(case: MeasuredCase, n: int, seed: Any, effects: Effects = EFFECTS["instrument"],
               r_spread: float = 0.5, keep_curves: bool = False,
               a_range: tuple[float, float] = A_RANGE) -> dict[str, Any]:
    """``n`` synthetic measurements of ``case`` reduced to stage-1 and stage-2 features.

    Parameters
    ----------
    case
        A :data:`MEASURED_CASES` entry.
    n
        Number of curves.
    seed
        Anything ``numpy.random.default_rng`` takes (a SeedSequence child for a chunk).
    effects
        Instrument effects and their probabilities.
    r_spread
        Stage-2 offsets: ln r uniform in [-r_spread, r_spread] for half the curves, normal with
        sd 0.05 for the other half (the second, refining pass).
    keep_curves
        Also return the curves (q in 1/Å, intensity in a^-3 units) and the effects drawn.
    a_range
        Range of a in Å (log-uniform); tests use the stated domain 8-500 Å.

    Returns
    -------
    dict with parameters (``a`` in Å, ``porosity``, ``layer_fraction``, ``smoothing`` = sigma/a),
    ``ln_r``, ``x1`` (n, stage-1 features), ``x2`` (n, stage-2 features).
    """
    rng = np.random.default_rng(seed)
    p = draw_parameters(case, n, rng, a_range)
    ln_r = np.where(rng.uniform(size=n) < 0.5, rng.uniform(-r_spread, r_spread, n), rng.normal(0.0, 0.05, n))
    b1 = np.full((n, STAGE1_GRID.n), np.nan)
    b2 = np.full((n, STAGE2_GRID.n), np.nan)
    curves, infos = [], []
    for k in range(n):
        pk = {name: float(v[k]) for name, v in p.items()}
        lo, hi = _window(pk["a"], rng, effects)
        m = int(np.exp(rng.uniform(np.log(30), np.log(400))))
        qa = np.geomspace(lo, hi, m) if rng.uniform() < 0.5 else np.linspace(lo, hi, m)
        info: dict[str, Any] = {"window": (lo, hi), "points": m}
        while np.any(model_curve(qa, pk["porosity"], pk["layer_fraction"], pk["smoothing"]) <= 0):
            # The table's thick-layer curves can cross zero in a narrow q range (about 1 % of three-phase
            # draws, where its accuracy is lowest): such structures are redrawn, not trained on.
            redraw = draw_parameters(case, 1, rng)
            pk.update({name: float(v[0]) for name, v in redraw.items() if name != "a"})
            for name in ("porosity", "layer_fraction", "smoothing"):
                p[name][k] = pk[name]
        i = _measure(qa, pk, rng, effects, info)
        if rng.uniform() < effects.q_error:
            err = float(rng.uniform(-0.02, 0.02))
            info["q_error"] = err
            qa = qa * (1.0 + err)  # the q the instrument reports
        q = qa / pk["a"]
        b1[k] = log_bins(q, i, STAGE1_GRID)
        b2[k] = log_bins(qa * np.exp(-ln_r[k]), i, STAGE2_GRID)
        if keep_curves:
            curves.append((q, i, info.pop("dI", None)))
            infos.append(info)
    out = {**p, "ln_r": ln_r, "x1": slope_features(b1, STAGE1_GRID), "x2": slope_features(b2, STAGE2_GRID)}
    if keep_curves:
        out["curves"], out["effects"] = curves, infos
    return out
