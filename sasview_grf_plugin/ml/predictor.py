"""Predict a, porosity and layer fraction from SAXS curves with a model bundle.

Units: the model grid is in 1/nm (``q_unit="1/nm"``); curves in 1/Å are accepted with
``q_unit="1/A"``. Intensities may be on any scale (the curve is normalized, Eq. 12).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.noise import normalize
from ..loaders import unit_factor
from .bundle import Bundle, BundleError, read_bundle
from .features import log_features

__all__ = ["Predictor", "Prediction", "load_predictor", "shipped_bundles"]
# A curve is outside the domain when more than this fraction of its features leave the training envelope.
OUTSIDE_TOLERANCE = 0.05


@dataclass
class Prediction:
    """Predicted parameters for a batch of curves (arrays of length n)."""

    values: dict[str, np.ndarray]
    lower: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]
    level: float
    in_domain: np.ndarray
    outside_fraction: np.ndarray
    warnings: list[str] = field(default_factory=list)

    def row(self, i: int = 0) -> dict[str, Any]:
        """Curve ``i`` as a plain dictionary."""
        return {"values": {k: float(v[i]) for k, v in self.values.items()},
                "interval": {k: [float(self.lower[k][i]), float(self.upper[k][i])] for k in self.values},
                "interval_level": self.level, "in_domain": bool(self.in_domain[i]),
                "outside_fraction": float(self.outside_fraction[i])}


def _shipped_root() -> Path:
    return Path(str(resources.files("sasview_grf_plugin.ml") / "bundles"))


def shipped_bundles() -> dict[str, Path]:
    """Case name -> directory of the bundles shipped with the package."""
    root = _shipped_root()
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "card.json").is_file()}


class Predictor:
    """A verified bundle ready to predict. Create with :func:`load_predictor`."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        card = bundle.card
        self.case: str = card["case"]
        self.outputs: list[str] = list(card["outputs"])
        self.q = np.linspace(float(card["q"]["min"]), float(card["q"]["max"]), int(card["q"]["n"]))
        self.ranges = {k: tuple(v) for k, v in card["parameter_ranges"].items()}
        self.level = float(card.get("interval_level", 0.9))
        self.margins = {o: float(card["intervals"][o]["margin"]) for o in self.outputs}
        self.scaler = bundle.scaler
        for b in (*bundle.boosters.values(), *bundle.interval_boosters.values()):
            b.set_param({"nthread": 1})  # one curve: thread start-up would dominate

    @property
    def card(self) -> dict[str, Any]:
        return self.bundle.card

    def _resample(self, q: Any, intensity: Any, q_unit: str) -> np.ndarray:
        qd = np.asarray(q, dtype=np.float64) * (10.0 * unit_factor(q_unit))  # -> 1/nm
        i = np.asarray(intensity, dtype=np.float64)
        if qd.ndim != 1 or qd.size < 2:
            raise ValueError(f"q must be a 1-D array of at least 2 values, got shape {qd.shape}")
        if i.ndim not in (1, 2) or i.shape[-1] != qd.size:
            raise ValueError(f"intensity must have shape ({qd.size},) or (n, {qd.size}) to match q, got {i.shape}")
        if not np.all(np.isfinite(qd)):
            raise ValueError("q contains NaN or infinite values")
        if np.any(qd <= 0):
            raise ValueError("q must be > 0")
        if np.any(np.diff(qd) <= 0):
            raise ValueError("q must be strictly increasing (sort the data and remove duplicate q values)")
        if not np.all(np.isfinite(i)):
            raise ValueError("intensity contains NaN or infinite values")
        if np.any(i <= 0):
            raise ValueError("intensity must be > 0 everywhere (mask or remove non-positive points first)")
        lo, hi = self.q[0], self.q[-1]
        tol = 1e-9 * hi
        missing = []
        if qd[0] > lo + tol:
            missing.append(f"{lo:.4g}-{qd[0]:.4g}")
        if qd[-1] < hi - tol:
            missing.append(f"{qd[-1]:.4g}-{hi:.4g}")
        if missing:
            raise ValueError(
                f"the data cover q = {qd[0]:.4g}-{qd[-1]:.4g} 1/nm but the {self.case} model needs "
                f"{lo:.4g}-{hi:.4g} 1/nm; missing: {' and '.join(missing)} 1/nm (check q_unit={q_unit!r})"
            )
        logq = np.log(qd)
        logi = np.log(i.reshape(-1, qd.size))
        target = np.log(self.q)
        return np.exp(np.stack([np.interp(target, logq, row) for row in logi]))

    def predict(self, q: Any, intensity: Any, q_unit: str = "1/nm", intervals: bool = True) -> Prediction:
        """Predict from curves on any q grid that covers the model's (log-log interpolation).

        Parameters
        ----------
        q
            Strictly increasing q values of the data, in ``q_unit``.
        intensity
            One curve (len(q),) or a batch (n, len(q)); positive, any scale.
        q_unit
            ``"1/nm"`` or ``"1/A"``.
        intervals
            Also evaluate the interval boosters (about half the time); without, the bounds are NaN.
        """
        curves = self._resample(q, intensity, q_unit)
        return self.predict_normalized(normalize(self.q, curves), intervals=intervals)

    def predict_normalized(self, normalized: Any, intervals: bool = True) -> Prediction:
        """Predict from curves already on the model grid and normalized by Eq. 12 (as in datasets)."""
        z = self.scaler.transform(log_features(np.atleast_2d(normalized)))
        values, lower, upper = {}, {}, {}
        for out in self.outputs:
            values[out] = self.bundle.boosters[out].inplace_predict(z, validate_features=False).astype(np.float64)
            if intervals:
                raw = self.bundle.interval_boosters[out].inplace_predict(z, validate_features=False)
                m = self.margins[out]
                lower[out], upper[out] = raw[:, 0] - m, raw[:, 1] + m
            else:
                lower[out] = upper[out] = np.full(z.shape[0], np.nan)
        outside = self.scaler.outside_fraction(z)
        in_domain = outside <= OUTSIDE_TOLERANCE
        warnings = []
        for out in self.outputs:
            lo, hi = self.ranges[out]
            beyond = (values[out] < lo) | (values[out] > hi)
            in_domain &= ~beyond
            if beyond.any():
                warnings.append(f"{int(beyond.sum())} prediction(s) of {out} outside the training range [{lo}, {hi}]")
        if np.any(outside > OUTSIDE_TOLERANCE):
            warnings.append(f"{int(np.sum(outside > OUTSIDE_TOLERANCE))} curve(s) leave the range of the training "
                            f"curves on more than {OUTSIDE_TOLERANCE:.0%} of the q grid: outside the model's domain")
        return Prediction(values, lower, upper, self.level, in_domain, outside, warnings)


def load_predictor(bundle_or_case: str | os.PathLike) -> Predictor:
    """Load a bundle directory, or a shipped bundle by case name (e.g. ``"three_phase_high"``)."""
    shipped = shipped_bundles()
    key = str(bundle_or_case)
    if key in shipped:
        return Predictor(read_bundle(shipped[key]))
    path = Path(key)
    if path.exists():
        return Predictor(read_bundle(path))
    known = ", ".join(shipped) or "none are shipped in this installation"
    raise BundleError(f"{key!r} is neither a bundle directory nor a shipped case (shipped: {known})")
