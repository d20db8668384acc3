"""Predict a, porosity and layer fraction from SAXS curves with a model bundle.

Units: the model grid is in 1/nm (``q_unit="1/nm"``); curves in 1/Å are accepted with
``q_unit="1/A"``. Intensities may be on any scale (the curve is normalized, Eq. 12).
"""

from __future__ import annotations

import os
import threading
import warnings as _warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.noise import normalize
from ..loaders import unit_factor
from .bundle import Bundle, BundleError, read_bundle
from .features import log_features
from .forest import FOREST_FILE, FlatForest, cache_forest, find_forest

__all__ = ["Predictor", "Prediction", "load_predictor", "resolve_bundle", "shipped_bundles", "ENGINES",
           "FLAT_MAX_CURVES", "write_forest"]
# A curve is outside the domain when more than this fraction of its features leave the training envelope.
OUTSIDE_TOLERANCE = 0.05
ENGINES = ("auto", "flat", "xgboost")
# Up to this many curves per call the flat forest is faster than XGBoost (crossover ~30 curves on 2
# cores, lower with more cores; benchmarks/bench_predict.py).
FLAT_MAX_CURVES = 16


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
    """A verified bundle ready to predict. Create with :func:`load_predictor`.

    ``engine`` chooses how the boosters are evaluated: ``"xgboost"`` always calls XGBoost's
    ``inplace_predict``; ``"flat"`` always uses :class:`~sasview_grf_plugin.ml.forest.FlatForest`
    (loaded with the bundle when stored, else built now, 0.2-1.3 s); ``"auto"`` uses XGBoost for batches
    of more than ``FLAT_MAX_CURVES`` curves, and the flat forest for small calls: from the first when the
    bundle has a stored forest (its ``forest.npz``, or the user's cache), else from the second (built then
    and cached), so that a predictor used once never pays for a build. Both engines give the
    same values to float32 rounding (checked when the flat forest is built).
    """

    def __init__(self, bundle: Bundle, engine: str = "auto") -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
        self.bundle = bundle
        self.engine = engine
        card = bundle.card
        self.case: str = card["case"]
        self.outputs: list[str] = list(card["outputs"])
        self.q = np.linspace(float(card["q"]["min"]), float(card["q"]["max"]), int(card["q"]["n"]))
        self.ranges = {k: tuple(v) for k, v in card["parameter_ranges"].items()}
        self.level = float(card.get("interval_level", 0.9))
        self.margins = {o: float(card["intervals"][o]["margin"]) for o in self.outputs}
        self.scaler = bundle.scaler
        self._forest: FlatForest | None = None
        self._forest_failed = False
        self._small_calls = 0
        self._lock = threading.Lock()
        if engine != "xgboost":
            # A stored forest (the bundle's forest.npz, or the user's cache) is used from the first call on.
            self._forest = find_forest(bundle.path, card["integrity"], self.scaler.low.size, 3 * len(self.outputs))
        if engine == "flat":
            self._flat_forest()

    @property
    def card(self) -> dict[str, Any]:
        return self.bundle.card

    def _xgboost_raw(self, z: np.ndarray, intervals: bool) -> np.ndarray:
        """(n, k) point predictions, then (lower, upper) raw quantiles per output if ``intervals``."""
        cols = [self.bundle.boosters[o].inplace_predict(z, validate_features=False).reshape(z.shape[0], 1)
                for o in self.outputs]
        if intervals:
            cols += [self.bundle.interval_boosters[o].inplace_predict(z, validate_features=False).reshape(z.shape[0], 2)
                     for o in self.outputs]
        return np.concatenate(cols, axis=1).astype(np.float64)

    def _flat_forest(self) -> FlatForest | None:
        """The bundle's boosters as one flat forest, verified against XGBoost; None if unsupported."""
        with self._lock:
            if self._forest is not None or self._forest_failed:
                return self._forest
            boosters = [self.bundle.boosters[o] for o in self.outputs]
            boosters += [self.bundle.interval_boosters[o] for o in self.outputs]
            labels = [f"{o} booster" for o in self.outputs] + [f"{o} interval booster" for o in self.outputs]
            problem = None
            try:
                forest = FlatForest.from_boosters(boosters, labels)
            except ValueError as exc:
                problem = str(exc)
            else:
                # Guard against a future change of XGBoost's model schema: the training mean and the
                # corners of the training envelope must give XGBoost's values.
                z = np.stack([np.zeros_like(self.scaler.low), self.scaler.low, self.scaler.high]).astype(np.float32)
                ref, got = self._xgboost_raw(z, True), forest.predict(z)
                if got.shape != ref.shape or not np.all(np.abs(got - ref) <= 1e-4 * np.maximum(1.0, np.abs(ref))):
                    problem = "its values differ from XGBoost's on the check curves"
            if problem is None:
                self._forest = forest
                cache_forest(forest, self.card["integrity"], z, ref)
                return forest
            self._forest_failed = True
            if self.engine == "flat":
                raise BundleError(f"{self.bundle.path}: the flat forest engine cannot evaluate this bundle: {problem}")
            _warnings.warn(f"{self.bundle.path}: using XGBoost for single curves ({problem})", RuntimeWarning,
                           stacklevel=3)
            return None

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
            # A unit mix-up shows as a window off by a factor 10: say so only then.
            hint = (f" The data would cover it in the other unit: check q_unit={q_unit!r}." if any(
                qd[0] * f <= lo + tol and qd[-1] * f >= hi - tol for f in (10.0, 0.1)) else
                " The paper family needs exactly this window; the measured family (predict/fit --family "
                "measured, the default) takes any window.")
            raise ValueError(
                f"the data cover q = {qd[0]:.4g}-{qd[-1]:.4g} 1/nm but the {self.case} model needs "
                f"{lo:.4g}-{hi:.4g} 1/nm; missing: {' and '.join(missing)} 1/nm." + hint
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
            Also evaluate the interval boosters; without, the bounds are NaN (about half the time).
        """
        curves = self._resample(q, intensity, q_unit)
        return self.predict_normalized(normalize(self.q, curves), intervals=intervals)

    def predict_normalized(self, normalized: Any, intervals: bool = True) -> Prediction:
        """Predict from curves already on the model grid and normalized by Eq. 12 (as in datasets)."""
        z = self.scaler.transform(log_features(np.atleast_2d(normalized)))
        k = len(self.outputs)
        forest = None
        if self.engine == "flat":
            forest = self._flat_forest()
        elif self.engine == "auto" and z.shape[0] <= FLAT_MAX_CURVES:
            self._small_calls += 1
            forest = self._flat_forest() if self._small_calls > 1 or self._forest is not None else None
        if forest is not None:
            raw = forest.predict(z, slice(None) if intervals else slice(0, k))
        else:
            raw = self._xgboost_raw(z, intervals)
        values, lower, upper = {}, {}, {}
        for i, out in enumerate(self.outputs):
            values[out] = raw[:, i].copy()
            if intervals:
                m = self.margins[out]
                # Quantile boosters can cross: order the pair and keep the point prediction inside.
                q_lo, q_hi = raw[:, k + 2 * i], raw[:, k + 2 * i + 1]
                lower[out] = np.minimum(np.minimum(q_lo, q_hi) - m, values[out])
                upper[out] = np.maximum(np.maximum(q_lo, q_hi) + m, values[out])
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


def resolve_bundle(bundle_or_case: str | os.PathLike) -> Path:
    """The bundle directory that ``bundle_or_case`` names.

    Rules, so that a name never silently picks another bundle than the user meant:

    * a path — a :class:`os.PathLike`, or a string with a path separator (``./two_phase_low``,
      ``/data/bundles/x``) — is that directory, even if its last part is a case name;
    * a bare name (``"three_phase_high"``) is a user-built bundle of that name in
      :func:`~sasview_grf_plugin.userdata.user_bundle_dir` (``sasview-grf zoo build`` writes there), else
      the shipped one; a bare name that is also a directory in the current folder is refused, naming
      both candidates, unless no named bundle exists (then it is that directory).

    Raises
    ------
    BundleError
        If nothing matches, or a bare name is ambiguous.
    """
    from ..userdata import user_bundle_dir

    key = os.fspath(bundle_or_case)
    seps = {os.sep, os.altsep} - {None}
    if not isinstance(bundle_or_case, str) or any(sep in key for sep in seps):
        path = Path(key)
        if not path.exists():
            raise BundleError(f"bundle directory {key} does not exist")
        return path
    named = []
    user = user_bundle_dir() / key
    if key not in ("", ".", "..") and (user / "card.json").is_file():
        named.append(("user-built", user))
    shipped = shipped_bundles()
    if key in shipped:
        named.append(("shipped", shipped[key]))
    local = Path(key)
    if named and local.is_dir():
        kind, where = named[0]
        raise BundleError(f"{key!r} is ambiguous: the directory {local.resolve()} and the {kind} bundle {where}; "
                          f"give the directory as ./{key}, or the bundle's full path")
    if named:
        return named[0][1]
    if local.exists():
        return local
    known = ", ".join(sorted(set(shipped) | {p.name for p in _user_bundles()})) or "none"
    raise BundleError(f"{key!r} is neither a bundle directory nor a bundle name (user-built in {user_bundle_dir()}"
                      f" or shipped; known: {known})")


def _user_bundles() -> list[Path]:
    from ..userdata import user_bundle_dir

    root = user_bundle_dir()
    return [p for p in sorted(root.iterdir()) if (p / "card.json").is_file()] if root.is_dir() else []


def write_forest(bundle_dir: str | os.PathLike) -> Path:
    """Build a paper-family bundle's flat forest and write it into the bundle as ``forest.npz``.

    Run after the bundle is final: the file is keyed by the card's digest. Returns the file written.
    """
    pred = Predictor(read_bundle(bundle_dir), engine="xgboost")
    pred.engine = "flat"
    forest = pred._flat_forest()
    z = np.stack([np.zeros_like(pred.scaler.low), pred.scaler.low, pred.scaler.high]).astype(np.float32)
    path = Path(bundle_dir) / FOREST_FILE
    forest.save(path, pred.card["integrity"], z, pred._xgboost_raw(z, True))
    return path


def load_predictor(bundle_or_case: str | os.PathLike, engine: str = "auto") -> Predictor:
    """Load a bundle directory, or a bundle by case name (e.g. ``"three_phase_high"``).

    Names resolve as :func:`resolve_bundle` says: user-built bundles (``sasview-grf zoo build``) before the
    shipped ones, and a path always as a path. ``engine``: ``"auto"`` (default), ``"flat"`` or
    ``"xgboost"``; see :class:`Predictor`.
    """
    return Predictor(read_bundle(resolve_bundle(bundle_or_case)), engine)
