"""Predict GRF parameters from measured curves: any q window, any length scale, automatic case, self-check.

The "measured" family (made by :mod:`.measured_train` from :mod:`.measured_data`):

1. Stage 1 predicts a first length ``a0`` from the slopes of the curve on an absolute q grid.
2. Stage 2 (one bundle per case) works in ``q a0``, where the length scale is a shift: it predicts
   ``ln(a / a0)`` and the structure parameters. It runs twice; the second pass starts from the first
   pass's a, where it is most accurate.
3. Intervals: the 5 %/95 % quantile boosters widened by conformal margins calibrated per decile of
   the predicted value (so the coverage holds over the whole range), clipped to the case's range.
4. Self-check: the prediction is re-simulated with the ensemble model on the data's q (with its
   resolution), scale and background solved linearly, and its misfit is reported (chi^2_r against
   the data's errors) and tested against the misfit seen on in-domain calibration curves.
5. ``case="auto"``: every case is predicted and self-checked; an information criterion (BIC on the
   self-check misfit) picks the number of phases, and three phases must also lower the two-phase
   misfit by a measured factor (:data:`THREE_PHASE_GAIN`): parsimony against model error. Two
   phases: porosity eps and 1 - eps give the same curve (Babinet's principle), so both are offered.

Units as in SasView: q in 1/Å, a and smoothing in Å.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import Bundle, BundleError, read_bundle
from .forest import FOREST_FILE, FlatForest, cache_forest, find_forest
from .measured_data import A_RANGE, MEASURED_CASES, Q_LIMITS, WINDOW_RULE, model_curve
from .window_features import LogGrid, log_bins, slope_features

__all__ = ["MeasuredPredictor", "MeasuredPrediction", "load_measured", "measured_root", "CASE_CHOICES",
           "STATED_A_RANGE", "KAPPA", "build_forest", "write_forests"]

#: The length scales the family is stated for (trained on A_RANGE, a little wider).
STATED_A_RANGE = (8.0, 500.0)
#: Relative model-error floor of the self-check misfit: the ensemble table's own accuracy is a few %.
KAPPA = 0.05
#: Cases a user may ask for. "two_phase" = either porosity side (Babinet).
CASE_CHOICES = ("auto", "two_phase", "two_phase_low", "two_phase_high", "three_phase_low", "three_phase_high")
UNITS = {"a": "Å", "smoothing": "Å", "porosity": "", "layer_fraction": ""}
# Feature envelope: a curve whose features leave the training envelope on more than this fraction is out.
OUTSIDE_TOLERANCE = 0.10
# Edge probe: a parameter just beyond its range's edge that lowers the self-check misfit sum by more
# than this fraction flags the curve as outside the case's range.
EDGE_GAIN = 0.2
# Model evaluations per case of the polish that precedes the choice of the number of phases (case="auto").
POLISH_EVALUATIONS = 25
# case="auto": the factor by which a three-phase case must lower the two-phase misfit sum (both polished) to be
# chosen, keyed by "the two-phase prediction passes its self-check". Measured on 118 two-phase curves of the
# package's own simulator (compact preset, a 2-6 nm, porosity 0.15-0.85, 1-4 realizations), which differ from
# the ensemble mean by finite-box and voxel effects: three-phase fits lowered the misfit by up to 4.4x where the
# two-phase fit passed and up to 2.2x where it failed (BIC chose three phases for all of them). On fresh synthetic
# curves, three_phase_low loses 10-15 % of its detections to this rule (thin layers within the model error),
# three_phase_high none (benchmarks/study_auto_case.py, docs/measured-family.md).
THREE_PHASE_GAIN = {True: 5.0, False: 2.5}


def _xgboost_all(bundle: Bundle, z: np.ndarray) -> np.ndarray:
    """XGBoost's values of every booster of a (loaded) bundle: points, then (lower, upper) per output."""
    outs = bundle.outputs
    cols = [bundle.boosters[o].inplace_predict(z, validate_features=False).reshape(z.shape[0], 1) for o in outs]
    cols += [bundle.interval_boosters[o].inplace_predict(z, validate_features=False).reshape(z.shape[0], 2)
             for o in outs]
    return np.concatenate(cols, axis=1).astype(np.float64)


def build_forest(bundle: Bundle) -> tuple[FlatForest, np.ndarray, np.ndarray]:
    """A loaded bundle's boosters as one :class:`~.forest.FlatForest`, checked against XGBoost.

    Returns the forest, its three probe rows (the feature envelope's low and high ends, all missing)
    and XGBoost's values there; ``ValueError`` if the forest engine cannot evaluate these boosters.
    """
    outs = bundle.outputs
    forest = FlatForest.from_boosters([bundle.boosters[o] for o in outs] + [bundle.interval_boosters[o] for o in outs])
    s = bundle.scaler
    z = np.stack([s.low, s.high, np.full_like(s.low, np.nan)]).astype(np.float32)
    ref = _xgboost_all(bundle, z)
    if not np.all(np.abs(forest.predict(z) - ref) <= 1e-4 * np.maximum(1.0, np.abs(ref))):
        raise ValueError(f"{bundle.path}: the flat forest's values differ from XGBoost's")
    return forest, z, ref


def write_forests(root: str | os.PathLike) -> list[Path]:
    """Build each bundle's flat forest under a measured-family ``root`` and write it as its ``forest.npz``.

    Run after the bundles are final (a card written later changes the digest the file is keyed by).
    """
    written = []
    for card in sorted(Path(root).glob("*/card.json")):
        bundle = read_bundle(card.parent)
        forest, z, ref = build_forest(bundle)
        forest.save(card.parent / FOREST_FILE, bundle.card["integrity"], z, ref)
        written.append(card.parent / FOREST_FILE)
    return written


def measured_root() -> Path:
    """Folder of the shipped measured-family bundles."""
    return Path(str(resources.files("sasview_grf_plugin.ml") / "bundles" / "measured"))


@dataclass
class MeasuredPrediction:
    """One curve's prediction (SasView units: a and smoothing in Å)."""

    case: str
    values: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    level: float
    chi2r: float | None
    misfit: float
    misfit_threshold: float
    in_domain: bool
    flags: list[str]
    scale: float
    background: float
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary; every dimensional value names its unit."""
        return {
            "case": self.case,
            "values": {k: float(v) for k, v in self.values.items()},
            "intervals": {k: [float(lo), float(hi)] for k, (lo, hi) in self.intervals.items()},
            "interval_level": self.level,
            "units": {k: UNITS[k] for k in self.values},
            "self_check": {"chi2r": self.chi2r, "misfit": self.misfit, "misfit_threshold": self.misfit_threshold,
                           "scale": self.scale, "background_cm^-1_or_data_units": self.background},
            "in_domain": self.in_domain,
            "flags": list(self.flags),
            "alternatives": self.alternatives,
            "notes": list(self.notes),
        }


def _check_curve(q: Any, intensity: Any, di: Any, dq: Any = None,
                 slit: Any = None) -> tuple[np.ndarray, np.ndarray, Any, Any, Any]:
    q = np.asarray(q, dtype=np.float64)
    i = np.asarray(intensity, dtype=np.float64)
    if q.ndim != 1 or q.size < 5:
        raise ValueError(f"q must be a 1-D array of at least 5 points, got shape {q.shape}")
    if i.shape != q.shape:
        raise ValueError(f"intensity must have the shape of q {q.shape}, got {i.shape}")
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(i))):
        raise ValueError("q and intensity must be finite (remove NaN/inf points first)")
    if np.any(q <= 0):
        raise ValueError("q must be > 0 (1/Å)")
    if np.any(i <= 0):
        raise ValueError("intensity must be > 0 everywhere (mask or remove non-positive points first)")
    if di is not None:
        di = np.asarray(di, dtype=np.float64)
        if di.shape != q.shape or not np.all(np.isfinite(di)) or np.any(di <= 0):
            di = None  # unusable errors: the self-check falls back to relative residuals
    res = []
    for name, v in (("dq", dq), ("slit", slit)):
        if v is not None:
            v = np.broadcast_to(np.asarray(v, dtype=np.float64), q.shape).copy()
            if not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ValueError(f"{name} must be finite and >= 0 (1/Å), one value or one per q")
        res.append(v)
    dq, slit = res
    if np.any(np.diff(q) <= 0):
        # Merged frames repeat q values: sort, and average the repeats (their errors combined); the
        # resolution follows its points.
        order = np.argsort(q, kind="stable")
        q, i = q[order], i[order]
        di, dq, slit = (None if v is None else v[order] for v in (di, dq, slit))
        uq, first, counts = np.unique(q, return_index=True, return_counts=True)
        if uq.size < q.size:
            i = np.add.reduceat(i, first) / counts
            di = None if di is None else np.sqrt(np.add.reduceat(di**2, first)) / counts
            dq, slit = (None if v is None else np.add.reduceat(v, first) / counts for v in (dq, slit))
            q = uq
        if q.size < 5:
            raise ValueError(f"only {q.size} distinct q values; at least 5 are needed")
    return q, i, di, dq, slit


class _Stage:
    """One verified bundle of the family, evaluated by its flat forest (NaN = missing feature).

    The forest comes ready-made: from the bundle's own ``forest.npz`` (shipped bundles), else from the
    user's cache (:func:`~.forest.forest_cache_dir`), else it is built from the boosters once and cached there.
    XGBoost (the boosters) is loaded only to build a forest, or where the forest engine cannot evaluate
    a bundle; predictions never wait for a build.
    """

    def __init__(self, path: Path) -> None:
        bundle = read_bundle(path, boosters=False)
        card = bundle.card
        if card.get("family") != "measured":
            raise BundleError(f"{bundle.path} is not a bundle of the measured family")
        self.bundle = bundle
        self.card = card
        self.grid = LogGrid.from_dict(card["q"])
        if bundle.scaler is None or self.grid.n_features != bundle.scaler.low.size:
            raise BundleError(f"{bundle.path}: the feature envelope does not match the feature grid")
        self.outputs = list(card["outputs"])
        self.ranges = {k: tuple(float(x) for x in v) for k, v in card["parameter_ranges"].items()}
        self.level = float(card.get("interval_level", 0.9))
        self.intervals = card["intervals"]
        self.domain = card.get("domain", {})
        self._full: Bundle | None = None
        self.forest = self._load_forest()

    def boosters(self) -> Bundle:
        """The bundle with its boosters (read, checked and loaded on first use)."""
        if self._full is None:
            full = read_bundle(self.bundle.path)
            if full.card["integrity"] != self.card["integrity"]:
                raise BundleError(f"{self.bundle.path} changed while it was in use; load it again")
            self._full = full
        return self._full

    def _load_forest(self) -> FlatForest | None:
        key = self.card["integrity"]
        forest = find_forest(self.bundle.path, key, self.grid.n_features, 3 * len(self.outputs))
        if forest is None:
            try:
                forest, z, ref = build_forest(self.boosters())
            except ValueError:
                return None  # boosters the forest engine cannot evaluate: XGBoost evaluates every call
            cache_forest(forest, key, z, ref)
        return forest

    def features(self, x: np.ndarray, i: np.ndarray) -> np.ndarray:
        return slope_features(log_bins(x, i, self.grid), self.grid)

    def outside_fraction(self, z: np.ndarray) -> float:
        s = self.bundle.scaler
        seen = np.isfinite(z)
        if not seen.any():
            return 1.0
        out = (z < s.low) | (z > s.high)
        return float(np.sum(out & seen) / np.sum(seen))

    def _xgboost_all(self, z: np.ndarray) -> np.ndarray:
        return _xgboost_all(self.boosters(), z)

    def raw(self, z: np.ndarray, point_only: str | None = None) -> dict[str, Any]:
        """Point predictions and raw (lower, upper) quantiles per output, for one curve's features (1, m)."""
        forest = self.forest
        k = len(self.outputs)
        if forest is not None and point_only is not None:
            # Only this output's trees: the forest sums each output's trees separately.
            j = self.outputs.index(point_only)
            return {"point": {point_only: float(forest.predict(z, slice(j, j + 1))[0, 0])}}
        if forest is not None:
            row = forest.predict(z)[0]
        elif point_only is not None:
            booster = self.boosters().boosters[point_only]
            return {"point": {point_only: float(booster.inplace_predict(z, validate_features=False).ravel()[0])}}
        else:
            row = self._xgboost_all(z)[0]
        out = {"point": {o: float(row[j]) for j, o in enumerate(self.outputs)},
               "quantiles": {o: (float(min(row[k + 2 * j], row[k + 2 * j + 1])),
                                 float(max(row[k + 2 * j], row[k + 2 * j + 1]))) for j, o in enumerate(self.outputs)}}
        return out

    def margin(self, output: str, predicted: float) -> float:
        """Conformal margin of ``output`` for a prediction (Mondrian bins of the predicted value)."""
        spec = self.intervals[output]
        edges, margins = spec.get("bin_edges"), spec.get("margins")
        if edges and margins:
            k = int(np.clip(np.searchsorted(np.asarray(edges), predicted, side="right") - 1, 0, len(margins) - 1))
            return float(margins[k])
        return float(spec["margin"])


class MeasuredPredictor:
    """The measured family, loaded and verified. Create with :func:`load_measured`."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        root = Path(root) if root is not None else measured_root()
        if not (root / "stage1" / "card.json").is_file():
            raise BundleError(f"{root} holds no measured-family bundles (stage1/card.json not found)")
        self.root = root
        self.stage1 = _Stage(root / "stage1")
        self.cases = {c: _Stage(root / c) for c in MEASURED_CASES if (root / c / "card.json").is_file()}
        if not self.cases:
            raise BundleError(f"{root} holds no case bundles of the measured family")
        # Everything a prediction needs is loaded here, so that the first prediction costs what later ones do.
        from scipy.optimize import least_squares  # noqa: F401  (the polish of case="auto")

        from ..ensemble.table import load_table

        load_table()

    # -- steps --------------------------------------------------------------------------------------
    def coarse_a(self, q: np.ndarray, i: np.ndarray) -> float:
        """Stage 1: a first length a0 (Å) from the absolute-q slopes."""
        z = self.stage1.features(q, i)
        return float(np.exp(self.stage1.raw(z, point_only="a")["point"]["a"]))

    def _case(self, name: str, q: np.ndarray, i: np.ndarray, a0: float) -> dict[str, Any]:
        """Two stage-2 passes and the intervals for one case; values in model units (smoothing = sigma/a)."""
        st = self.cases[name]
        a1 = a0
        for _ in range(3):
            # Stage 2 was trained on |ln(a/a0)| <= 0.5: a first length further off takes a few steps.
            step = float(np.clip(st.raw(st.features(q * a1, i), point_only="a")["point"]["a"], -1.0, 1.0))
            a1 *= math.exp(step)
            if abs(step) < 0.35:
                break
        z = st.features(q * a1, i)
        raw = st.raw(z)
        values, intervals = {}, {}
        for o in st.outputs:
            p = raw["point"][o]
            lo, hi = raw["quantiles"][o]
            if o == "a":
                ln_a = math.log(a1) + p
                m = st.margin(o, ln_a)
                values[o] = math.exp(ln_a)
                lo_v, hi_v = math.exp(math.log(a1) + lo - m), math.exp(math.log(a1) + hi + m)
            else:
                m = st.margin(o, p)
                values[o], lo_v, hi_v = p, lo - m, hi + m
            rlo, rhi = st.ranges[o]  # a: the trained A_RANGE, from the card
            # Physical and trained range: a value outside it is clipped (and flagged by the caller).
            values[o] = float(np.clip(values[o], rlo, rhi))
            intervals[o] = (float(np.clip(min(lo_v, values[o]), rlo, rhi)),
                            float(np.clip(max(hi_v, values[o]), rlo, rhi)))
        return {"values": values, "intervals": intervals, "outside": st.outside_fraction(z[0]), "a1": a1}

    def self_check(self, q: np.ndarray, i: np.ndarray, di: np.ndarray | None, values: dict[str, float],
                   dq: np.ndarray | None = None, slit: np.ndarray | None = None, residuals: bool = False) -> Any:
        """Re-simulate ``values`` (model units) on the data's q with its resolution; scale and background free."""
        a = values["a"]
        nu = values.get("layer_fraction", 0.0)

        def f(qq: np.ndarray) -> np.ndarray:
            return model_curve(np.maximum(qq, 0.0) * a, values["porosity"], nu, values["smoothing"])

        if dq is not None and np.any(dq > 0):
            from sasmodels.resolution import Pinhole1D

            res = Pinhole1D(q, np.maximum(dq, 1e-12))
            m = res.apply(f(res.q_calc))
        elif slit is not None and np.any(slit > 0):
            from sasmodels.resolution import Slit1D

            res = Slit1D(q, q_length=slit)
            m = res.apply(f(res.q_calc))
        else:
            m = f(q)
        w = 1.0 / (di if di is not None else i)
        # Weighted least squares for I = c m + b with b >= 0 (a background cannot be negative).
        A = np.stack([m * w, w], axis=1)
        coef, *_ = np.linalg.lstsq(A, i * w, rcond=None)
        if coef[1] < 0:
            coef = np.array([float(np.sum(m * i * w * w) / np.sum((m * w) ** 2)), 0.0])
        c, b = float(coef[0]), float(coef[1])
        if not c > 0:
            if residuals:
                return np.full(q.size, 1e3)
            return {"chi2r": math.inf, "misfit": math.inf, "sum": math.inf, "scale": c, "background": b}
        fit = c * m + b
        r = i - fit
        if residuals:
            return r / np.sqrt((di if di is not None else 0.0) ** 2 + (KAPPA * fit) ** 2)
        k = 2 + len(values)
        chi2r = float(np.sum((r * w) ** 2) / max(1, q.size - k)) if di is not None else None
        sigma2 = (di if di is not None else 0.0) ** 2 + (KAPPA * fit) ** 2
        s = float(np.sum(r * r / sigma2))
        return {"chi2r": chi2r, "misfit": math.sqrt(s / q.size), "sum": s, "scale": c, "background": b}

    def _polish(self, st: _Stage, q: np.ndarray, i: np.ndarray, di: np.ndarray | None, values: dict[str, float],
                dq: np.ndarray | None, slit: np.ndarray | None, evaluations: int = POLISH_EVALUATIONS) -> float:
        """The self-check misfit sum after a few bounded least-squares steps from ``values`` (model units)."""
        from scipy.optimize import least_squares

        names = list(st.outputs)
        lo = np.array([math.log(A_RANGE[0]) if o == "a" else st.ranges[o][0] for o in names])
        hi = np.array([math.log(A_RANGE[1]) if o == "a" else st.ranges[o][1] for o in names])
        x0 = np.clip([math.log(values[o]) if o == "a" else values[o] for o in names], lo + 1e-9, hi - 1e-9)

        def resid(x: np.ndarray) -> np.ndarray:
            v = {"layer_fraction": 0.0, **{o: (math.exp(x[j]) if o == "a" else x[j]) for j, o in enumerate(names)}}
            try:
                chk = self.self_check(q, i, di, v, dq, slit, residuals=True)
            except ValueError:
                return np.full(q.size, 1e3)
            return chk

        try:
            sol = least_squares(resid, x0, bounds=(lo, hi), max_nfev=evaluations, x_scale="jac")
        except ValueError:
            return math.inf
        return float(np.sum(sol.fun**2))

    def _prefer_two_phases(self, results: dict[str, Any], best: str, n: int) -> str | None:
        """Why two phases are kept although BIC prefers a three-phase case (None: BIC's choice stands).

        BIC counts every point as an independent piece of evidence. A real curve, or the package's own
        simulation of a finite box, differs from the ensemble model by a smooth systematic error, not by
        noise: a model with one more parameter absorbs part of it and wins BIC on hundreds of points
        without a third phase being there. The third phase must therefore also lower the two-phase
        misfit sum (both after the polish) by a factor: THREE_PHASE_GAIN[True] when the two-phase
        prediction already passes its self-check, THREE_PHASE_GAIN[False] when it does not.
        """
        if best == "two_phase" or "two_phase" not in results:
            return None
        s2, s3 = results["two_phase"]["sum"], results[best]["sum"]
        if not (math.isfinite(s2) and math.isfinite(s3)):
            return None
        gain = s2 / max(s3, 1e-300)
        two_ok = math.sqrt(s2 / n) <= float(self.cases["two_phase"].domain.get("threshold", 0.0))
        need = THREE_PHASE_GAIN[two_ok]
        if gain >= need:
            return None
        return (f"two phases kept: {best} lowers the misfit by a factor {gain:.3g} only (< {need:g} needed "
                f"{'when the polished two-phase fit passes its self-check' if two_ok else 'beyond the model error'})")

    def _edge_probe(self, st: _Stage, q: np.ndarray, i: np.ndarray, di: np.ndarray | None, r: dict[str, Any],
                    dq: np.ndarray | None, slit: np.ndarray | None) -> list[str]:
        """Flags for structures beyond the case's range, which boosters (trees) cannot predict past its edge.

        A porosity or layer fraction predicted within 10 % of its range's edge is tried once more just
        beyond the edge (one model evaluation); if that reproduces the data clearly better (misfit sum
        down by more than EDGE_GAIN), the data lie outside the case's range.
        """
        from ..ensemble.table import load_table

        table = load_table()
        limits = {"porosity": table.porosity_range, "layer_fraction": table.layer_range}
        flags = []
        base = r["check"]["sum"]
        for o in ("porosity", "layer_fraction"):
            if o not in st.ranges or not math.isfinite(base):
                continue
            lo, hi = st.ranges[o]
            v, width = r["values"][o], hi - lo
            for edge, step in ((lo, -0.1 * width), (hi, 0.1 * width)):
                if abs(v - edge) <= 0.1 * width:
                    probe = float(np.clip(edge + step, limits[o][0] + 1e-6, limits[o][1] - 1e-6))
                    if (probe - edge) * step <= 0:
                        continue
                    trial = self.self_check(q, i, di, {"layer_fraction": 0.0, **r["values"], o: probe}, dq, slit)
                    if trial["sum"] < (1.0 - EDGE_GAIN) * base:
                        flags.append(f"the data are reproduced clearly better with {o} {probe:.3g}, outside the "
                                     f"{st.card['case']} range [{lo:g}, {hi:g}]: another case (or none) describes them")
        return flags

    # -- the whole pipeline --------------------------------------------------------------------------
    def predict(self, q: Any, intensity: Any, di: Any = None, dq: Any = None, slit: Any = None,
                case: str = "auto") -> MeasuredPrediction:
        """Predict a, porosity, layer fraction and smoothing from one measured curve.

        Parameters
        ----------
        q
            q in 1/Å (at least 5 points, a window at least a factor 5 wide in 0.001-1 1/Å); unsorted q are
        sorted and repeated q values averaged.
        intensity
            Positive intensities, any scale (absolute or arbitrary units).
        di
            Their standard errors (optional; without, the self-check uses relative residuals).
        dq, slit
            Pinhole resolution (1-sigma, 1/Å) or slit length (1/Å) per point, for the self-check.
        case
            One of :data:`CASE_CHOICES`; ``"auto"`` picks the number of phases.
        """
        if case not in CASE_CHOICES:
            raise ValueError(f"unknown case {case!r}; allowed: {', '.join(CASE_CHOICES)}")
        q, i, di, dq, slit = _check_curve(q, intensity, di, dq, slit)
        # The prediction is scale-free; its self-check squares residuals. Intensities near the float range
        # (1e300, 1e-300) would overflow there: work at unit scale and report scale and background in data units.
        unit = float(np.exp(np.median(np.log(i))))
        i = i / unit
        di = None if di is None else di / unit
        if i.max() > 1e100 or i.min() < 1e-100:
            raise ValueError(f"the intensities span {i.min() * unit:.3g}-{i.max() * unit:.3g}, more than 200 decades: "
                             "not a scattering curve (check the file's columns)")
        lo, hi = max(q[0], Q_LIMITS[0]), min(q[-1], Q_LIMITS[1])
        factor = hi / lo if hi > lo else 0.0
        if factor < WINDOW_RULE["min_factor"]:
            overlap = f"by a factor {factor:.3g} only" if factor > 0 else "not at all"
            raise ValueError(
                f"the curve covers q = {q[0]:.4g}-{q[-1]:.4g} 1/Å, which overlaps the initializer's domain "
                f"(q = {Q_LIMITS[0]:g}-{Q_LIMITS[1]:g} 1/Å, a window at least a factor "
                f"{WINDOW_RULE['min_factor']:g} wide) {overlap}; fit without it "
                "(fit --mode conventional --case ...) or measure a wider q range")
        a0 = self.coarse_a(q, i)
        if case == "auto":
            names = list(self.cases)
        else:
            base = "two_phase" if case.startswith("two_phase") else case
            if base not in self.cases:
                raise BundleError(f"the measured family at {self.root} has no bundle for {base}")
            names = [base]
        results = {}
        for name in names:
            r = self._case(name, q, i, a0)
            r["check"] = self.self_check(q, i, di, {"layer_fraction": 0.0, **r["values"]}, dq, slit)
            n, k = q.size, 2 + len(r["values"])
            s = r["check"]["sum"]
            if len(names) > 1:
                # Choosing the number of phases compares each case at its best, not at its raw prediction
                # (whose errors differ between cases): a short bounded least-squares polish first.
                s = min(s, self._polish(self.cases[name], q, i, di, r["values"], dq, slit))
            r["sum"] = s
            r["bic"] = n * math.log(max(s, 1e-300) / n) + k * math.log(n) if math.isfinite(s) else math.inf
            results[name] = r
        best = min(results, key=lambda c: results[c]["bic"])
        parsimony = self._prefer_two_phases(results, best, q.size) if case == "auto" else None
        if parsimony is not None:
            best = "two_phase"
        r = results[best]
        st = self.cases[best]
        values = dict(r["values"])
        intervals = dict(r["intervals"])
        # Model units -> SasView units: smoothing is sigma/a in the model, Å for the user.
        values["smoothing"] = r["values"]["smoothing"] * values["a"]
        slo, shi = r["intervals"]["smoothing"]
        intervals["smoothing"] = (slo * values["a"], shi * values["a"])
        label, notes = best, []
        if best == "two_phase":
            high = case == "two_phase_high"
            label = "two_phase_high" if high else "two_phase_low"
            if high:
                values["porosity"] = 1.0 - values["porosity"]
                plo, phi = intervals["porosity"]
                intervals["porosity"] = (1.0 - phi, 1.0 - plo)
            if case in ("auto", "two_phase") and abs(values["porosity"] - 0.5) > 0.01:
                notes.append(f"two phases: porosity {values['porosity']:.4g} and {1 - values['porosity']:.4g} give "
                             "the same curve (Babinet's principle); the data cannot tell them apart, choose by what "
                             "you know of the sample (case two_phase_high for the other)")
        flags = []
        if "threshold" not in st.domain:
            raise BundleError(f"{st.bundle.path} is not calibrated (its card has no domain.threshold): run the "
                              "family's calibration before predicting with it")
        thr = float(st.domain["threshold"])
        chk = r["check"]
        flags += self._edge_probe(st, q, i, di, r, dq, slit)
        if not chk["misfit"] <= thr:
            flags.append(f"the prediction does not reproduce the data (self-check misfit {chk['misfit']:.3g} > "
                         f"{thr:.3g}, the level of in-domain curves)")
        if r["outside"] > OUTSIDE_TOLERANCE:
            flags.append(f"{r['outside']:.0%} of the curve's features lie outside the training curves' range")
        qa_lo, qa_hi = q[0] * values["a"], q[-1] * values["a"]
        if qa_lo > WINDOW_RULE["qa_low_max"] * 1.25 or qa_hi < WINDOW_RULE["qa_high_min"] / 1.25:
            flags.append(f"the window covers q a = {qa_lo:.3g}-{qa_hi:.3g}; the initializer needs it to reach from "
                         f"q a <= {WINDOW_RULE['qa_low_max']:g} to q a >= {WINDOW_RULE['qa_high_min']:g} (the "
                         "structure's knee)")
        if not STATED_A_RANGE[0] <= values["a"] <= STATED_A_RANGE[1]:
            flags.append(f"a = {values['a']:.4g} Å lies outside the stated domain {STATED_A_RANGE[0]:g}-"
                         f"{STATED_A_RANGE[1]:g} Å")
        alternatives = {}
        for name, other in results.items():
            if name != best:
                alternatives[name] = {"values": {**other["values"],
                                                 "smoothing": other["values"]["smoothing"] * other["values"]["a"]},
                                      "chi2r": other["check"]["chi2r"], "misfit": other["check"]["misfit"],
                                      "bic": other["bic"]}
        if case == "auto" and len(results) > 1:
            notes.append("case chosen by BIC on the self-check misfit: " + ", ".join(
                f"{c} {results[c]['bic']:.1f}" for c in sorted(results, key=lambda c: results[c]["bic"])) +
                ("" if parsimony is None else f"; {parsimony}"))
        return MeasuredPrediction(case=label, values=values, intervals=intervals, level=st.level,
                                  chi2r=chk["chi2r"], misfit=chk["misfit"], misfit_threshold=thr,
                                  in_domain=not flags, flags=flags, scale=chk["scale"] * unit,
                                  background=chk["background"] * unit,
                                  alternatives=alternatives, notes=notes)


_cache: dict[str, MeasuredPredictor] = {}


def load_measured(root: str | os.PathLike | None = None) -> MeasuredPredictor:
    """The measured family at ``root`` (default: shipped), loaded once per process."""
    key = str(Path(root).resolve()) if root is not None else ""
    if key not in _cache:
        _cache[key] = MeasuredPredictor(root)
    return _cache[key]
