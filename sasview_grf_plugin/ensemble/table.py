"""Evaluating the ensemble-mean GRF table: smooth, deterministic, any q >= 0.

This module imports only NumPy and SciPy (no other module of this package), so that it can be
copied next to a table file and a standalone SasView model file.

Representation (dimensionless: q in 1/a, intensities in a^3 per unit volume, unit contrast).
Three indicator functions describe a structure: A = pore + layer (the two-phase structure),
B = pore, L = layer = A - B. With F_XX(q a) the ensemble-mean scattering of indicator X, the
intensity of a density rho = rho_s + d_p chi_B + d_l chi_L (d_p = rho_pore - rho_solid,
d_l = rho_layer - rho_solid) is

    I(q) = a^3 [ d_p^2 F_BB + d_l^2 F_LL + d_p d_l (F_AA - F_BB - F_LL) ],

because chi_A = chi_B + chi_L gives 2 F_BL = F_AA - F_BB - F_LL. Each F_XX > 0, so the table holds
log(F_XX / (phi_X (1 - phi_X))) as tensor-product cubic B-splines (C2 in every variable) over

* x = ln(q a) on a grid of ``x`` nodes,
* the level t = Phi^-1(eps) of the porosity eps (far smoother than eps itself), smoothing s = sigma / a,
  and (for B and L) the layer fraction nu.

The layer's curve F_LL is tabulated against ln(q d) instead, d = eps nu / S the layer's thickness scale
(:func:`layer_shift`), so that its thickness fringes line up between nodes. Outside its grid each curve
continues by its exact limits: flat below (the q -> 0 plateau; the grids start where F is flat to
1e-5) and Porod's law q^-4 above.
"""

from __future__ import annotations

import json
import math
import os
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EnsembleTable", "TableError", "load_table", "default_table_path", "layer_shift"]

TABLE_FILE = "grf_ensemble_table.npz"
_REQUIRED = ("x_knots", "t_knots", "s2_knots", "s3_knots", "nu_knots", "coef_aa", "coef_bb", "coef_ll",
             "domain", "x_range", "xl_knots", "xl_range", "spectral_moment")


def layer_shift(porosity: float, layer_fraction: float, spectral_moment: float) -> float:
    """ln(d / a) of the layer's thickness scale d = eps nu / S, S = (2/pi) sqrt(lambda) exp(-t^2/2) the
    interface area per volume of the level cut (t = Phi^-1(eps), lambda = -rho''(0) a^2).

    The layer's curve is tabulated against ln(q d) = ln(q a) + layer_shift: its thickness fringes
    then sit at the same place for every node, and interpolating between nodes moves them smoothly
    instead of blending two fringe patterns.
    """
    from scipy.special import ndtri

    t = float(ndtri(porosity))
    area = 2.0 / math.pi * math.sqrt(spectral_moment) * math.exp(-0.5 * t * t)
    return math.log(porosity * layer_fraction / area)


class TableError(ValueError):
    """A table file that is missing, unreadable or inconsistent."""


def default_table_path() -> Path:
    """The table shipped beside this module."""
    return Path(__file__).with_name("tables") / TABLE_FILE


class EnsembleTable:
    """The ensemble-mean partial curves F_AA, F_BB, F_LL as smooth functions.

    Parameters
    ----------
    path
        An ``.npz`` table file (default: the shipped one). It is read with
        ``allow_pickle=False``: a file cannot run code.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        try:
            from scipy.interpolate import BSpline, NdBSpline
        except ImportError:
            # Standalone model files run in SasView's own Python, whose SciPy may predate NdBSpline.
            import scipy

            raise ImportError(f"the GRF ensemble models need SciPy 1.12 or newer (scipy.interpolate.NdBSpline); "
                              f"this Python has SciPy {scipy.__version__}: upgrade SciPy") from None
        from scipy.special import ndtri

        self.path = Path(path) if path is not None else default_table_path()
        try:
            with np.load(self.path, allow_pickle=False) as z:
                missing = [k for k in _REQUIRED if k not in z.files]
                if missing:
                    raise TableError(f"{self.path} is not a GRF ensemble table: missing {', '.join(missing)}")
                arrays = {k: np.asarray(z[k], dtype=np.float64) for k in _REQUIRED}
                self.meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        except TableError:
            raise
        except FileNotFoundError:
            raise TableError(f"GRF ensemble table not found: {self.path}") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise TableError(f"cannot read the GRF ensemble table {self.path}: {exc}") from None
        for k, v in arrays.items():
            if not np.all(np.isfinite(v)):
                raise TableError(f"{self.path}: {k} holds NaN or infinite values")
        dom = arrays["domain"]
        if dom.shape != (8,) or np.any(dom[0::2] > dom[1::2]):
            raise TableError(f"{self.path}: domain must hold 4 ordered (low, high) pairs")
        self.porosity_range = (float(dom[0]), float(dom[1]))
        self.layer_range = (float(dom[2]), float(dom[3]))
        self.smoothing2_range = (float(dom[4]), float(dom[5]))
        self.smoothing3_range = (float(dom[6]), float(dom[7]))
        self.x_range = (float(arrays["x_range"][0]), float(arrays["x_range"][1]))
        k = 3
        tx = arrays["x_knots"]
        try:
            self._aa = NdBSpline((arrays["t_knots"], arrays["s2_knots"]), arrays["coef_aa"], k)
            # B and L share their parameter knots: one spline whose trailing axis holds both x-coefficient
            # vectors, one evaluation for both.
            self._n_bb = arrays["coef_bb"].shape[-1]
            self._bl = NdBSpline((arrays["t_knots"], arrays["nu_knots"], arrays["s3_knots"]),
                                 np.concatenate([arrays["coef_bb"], arrays["coef_ll"]], axis=-1), k)
            if not (arrays["coef_aa"].shape[-1] == arrays["coef_bb"].shape[-1] == tx.size - k - 1
                    and arrays["coef_ll"].shape[-1] == arrays["xl_knots"].size - k - 1):
                raise ValueError("the x coefficients do not match the x knots")
        except (ValueError, TypeError) as exc:
            raise TableError(f"{self.path}: inconsistent spline data ({exc})") from None
        # Knots, domain and q range must agree: outside its knots' base interval a spline is NaN.
        x_rng = arrays["x_range"]
        if x_rng.shape != (2,) or not x_rng[0] < x_rng[1]:
            raise TableError(f"{self.path}: x_range must be an increasing pair")
        xl_rng = arrays["xl_range"]
        if xl_rng.shape != (2,) or not xl_rng[0] < xl_rng[1]:
            raise TableError(f"{self.path}: xl_range must be an increasing pair")
        checks = [("x", tx, x_rng), ("layer x", arrays["xl_knots"], xl_rng),
                  ("porosity", arrays["t_knots"], ndtri(dom[0:2])),
                  ("layer_fraction", arrays["nu_knots"], dom[2:4]), ("smoothing (two phases)", arrays["s2_knots"],
                                                                     dom[4:6]),
                  ("smoothing (three phases)", arrays["s3_knots"], dom[6:8])]
        if not (0.0 < dom[0] and dom[1] < 1.0):
            raise TableError(f"{self.path}: the porosity domain must lie inside (0, 1)")
        for what, knots, (lo, hi) in checks:
            if knots.ndim != 1 or knots.size < 8 or np.any(np.diff(knots) < 0):
                raise TableError(f"{self.path}: the {what} knots must be a sorted vector of at least 8")
            if not (knots[k] <= lo + 1e-12 and hi - 1e-12 <= knots[-k - 1]):
                raise TableError(f"{self.path}: the {what} domain [{lo:g}, {hi:g}] exceeds its knots")
        self._tx = tx
        self._txl = arrays["xl_knots"]
        self.xl_range = (float(xl_rng[0]), float(xl_rng[1]))
        self._lambda = float(arrays["spectral_moment"])
        self._bspline = BSpline
        self._ndtri = ndtri
        self._lock = threading.Lock()
        self._cache: dict[tuple[float, ...], Any] = {}

    # -- domain -------------------------------------------------------------------------------
    def check(self, porosity: float, layer_fraction: float, smoothing: float) -> tuple[float, float, float]:
        """Validate dimensionless parameters (smoothing = sigma/a); ``ValueError`` names the limit."""
        vals = []
        for name, v in (("porosity", porosity), ("layer_fraction", layer_fraction), ("smoothing/a", smoothing)):
            f = float(v)
            if not math.isfinite(f):
                raise ValueError(f"{name} must be finite, got {v}")
            vals.append(f)
        eps, nu, s = vals

        def inside(value: float, rng: tuple[float, float]) -> float | None:
            # Within 1e-9 (relative) of an edge counts as on it: a fit bound at the edge must not fail
            # by rounding. The value is clamped onto the edge.
            lo, hi = rng
            tol = 1e-9 * max(abs(lo), abs(hi), 1.0)
            return min(max(value, lo), hi) if lo - tol <= value <= hi + tol else None

        e = inside(eps, self.porosity_range)
        if e is None:
            lo, hi = self.porosity_range
            raise ValueError(f"porosity {eps:.6g} is outside the table's domain [{lo:g}, {hi:g}]")
        if nu == 0.0:
            s_in = inside(s, self.smoothing2_range)
            if s_in is None:
                lo, hi = self.smoothing2_range
                raise ValueError(f"smoothing/a = {s:.6g} is outside the two-phase domain [{lo:g}, {hi:g}] "
                                 f"(smoothing sigma divided by a; raise a or lower the smoothing)")
            return e, nu, s_in
        n_in = inside(nu, self.layer_range)
        if n_in is None:
            lo, hi = self.layer_range
            raise ValueError(f"layer_fraction {nu:.6g} is outside the table's domain [{lo:g}, {hi:g}]")
        s_in = inside(s, self.smoothing3_range)
        if s_in is None:
            lo, hi = self.smoothing3_range
            raise ValueError(f"smoothing/a = {s:.6g} is outside the three-phase domain [{lo:g}, {hi:g}] "
                             f"(smoothing sigma divided by a; change a or the smoothing)")
        eps, nu, s = e, n_in, s_in
        return eps, nu, s

    # -- evaluation ---------------------------------------------------------------------------
    def _spline(self, eps: float, nu: float, s: float) -> tuple[Any, Any]:
        """x-splines of ln(F / (phi (1 - phi))): columns AA (and BB) over ln(q a), and LL over ln(q d)."""
        key = (eps, nu, s)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        t = float(self._ndtri(eps))
        cols = self._aa([[t, s]])[0][:, None]
        layer = None
        make = self._bspline.construct_fast  # knots were checked on load
        if nu != 0.0:
            both = self._bl([[t, nu, s]])[0]
            cols = np.concatenate([cols, both[: self._n_bb, None]], axis=1)
            layer = make(self._txl, both[self._n_bb:], 3, extrapolate=False)
        out = (make(self._tx, cols, 3, extrapolate=False), layer)
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = out
        return out

    @staticmethod
    def _log_curve(spline: Any, x: np.ndarray, x_range: tuple[float, float]) -> np.ndarray:
        # Flat below the grid (the q -> 0 plateau), Porod's law q^-4 above it.
        x0, x1 = x_range
        logs = spline(np.clip(x, x0, x1))
        high = x > x1
        if np.any(high):
            drop = 4.0 * (x1 - x[high])
            logs[high] += drop[:, None] if logs.ndim == 2 else drop
        return logs

    def partials(self, qa: Any, porosity: float, layer_fraction: float = 0.0,
                 smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F_AA, F_BB, F_LL at q a (dimensionless, per unit volume in units of a^3).

        For ``layer_fraction == 0`` (two phases) F_BB = F_AA and F_LL = 0.
        """
        eps, nu, s = self.check(porosity, layer_fraction, smoothing)
        qa = np.asarray(qa, dtype=np.float64)
        if qa.size and (not np.all(np.isfinite(qa)) or np.any(qa < 0)):
            raise ValueError("q must be finite and >= 0")
        with np.errstate(divide="ignore"):
            x = np.log(qa.ravel())
        main, layer = self._spline(eps, nu, s)
        logs = self._log_curve(main, x, self.x_range)
        f_aa = (np.exp(logs[:, 0]) * (eps * (1.0 - eps))).reshape(qa.shape)
        if nu == 0.0:
            return f_aa, f_aa, np.zeros_like(f_aa)
        phi_b, phi_l = eps * (1.0 - nu), eps * nu
        f_bb = (np.exp(logs[:, 1]) * (phi_b * (1.0 - phi_b))).reshape(qa.shape)
        log_l = self._log_curve(layer, x + layer_shift(eps, nu, self._lambda), self.xl_range)
        f_ll = (np.exp(log_l) * (phi_l * (1.0 - phi_l))).reshape(qa.shape)
        return f_aa, f_bb, f_ll

    def intensity(self, qa: Any, porosity: float, layer_fraction: float, smoothing: float,
                  d_pore: float, d_layer: float) -> np.ndarray:
        """a^-3 I(q): F combined for contrasts d_pore = rho_p - rho_s and d_layer = rho_l - rho_s."""
        f_aa, f_bb, f_ll = self.partials(qa, porosity, layer_fraction, smoothing)
        if float(layer_fraction) == 0.0:
            return d_pore * d_pore * f_aa
        out = d_pore * d_pore * f_bb + d_layer * d_layer * f_ll + d_pore * d_layer * (f_aa - f_bb - f_ll)
        return np.maximum(out, 0.0)


_tables: dict[str, EnsembleTable] = {}
_tables_lock = threading.Lock()


def load_table(path: str | os.PathLike | None = None) -> EnsembleTable:
    """The table at ``path`` (default: shipped), loaded once per process (thread-safe)."""
    if path is None:
        shipped = _tables.get("")  # the models' hot path: no path resolution once loaded
        if shipped is not None:
            return shipped
    p = str(Path(path).resolve()) if path is not None else ""
    with _tables_lock:
        t = _tables.get(p)
        if t is None:
            t = EnsembleTable(p or None)
            _tables[p] = t
        return t
