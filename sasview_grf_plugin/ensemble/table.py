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

Outside the x grid the curve continues by its exact limits: flat below (the q -> 0 plateau; the
table starts where F is flat to 1e-5) and Porod's law q^-4 above.
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

__all__ = ["EnsembleTable", "TableError", "load_table", "default_table_path", "DOMAIN_HELP"]

TABLE_FILE = "grf_ensemble_table.npz"
DOMAIN_HELP = ("porosity in [{e0}, {e1}], layer_fraction in [{n0}, {n1}] (three phases), "
               "smoothing/a in [{s20}, {s21}] (two phases) or [{s30}, {s31}] (three phases)")
_REQUIRED = ("x_knots", "t_knots", "s2_knots", "s3_knots", "nu_knots", "coef_aa", "coef_bb", "coef_ll",
             "domain", "x_range")


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
        from scipy.interpolate import BSpline, NdBSpline
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
            # B and L share their knots: one spline with two trailing columns, one evaluation for both.
            self._bl = NdBSpline((arrays["t_knots"], arrays["nu_knots"], arrays["s3_knots"]),
                                 np.stack([arrays["coef_bb"], arrays["coef_ll"]], axis=-1), k)
            nx = tx.size - k - 1
            if not (arrays["coef_aa"].shape[-1] == arrays["coef_bb"].shape[-1] == arrays["coef_ll"].shape[-1] == nx):
                raise ValueError("the x coefficients do not match the x knots")
        except (ValueError, TypeError) as exc:
            raise TableError(f"{self.path}: inconsistent spline data ({exc})") from None
        # Knots, domain and q range must agree: outside its knots' base interval a spline is NaN.
        x_rng = arrays["x_range"]
        if x_rng.shape != (2,) or not x_rng[0] < x_rng[1]:
            raise TableError(f"{self.path}: x_range must be an increasing pair")
        checks = [("x", tx, x_rng), ("porosity", arrays["t_knots"], ndtri(dom[0:2])),
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
        self._bspline = BSpline
        self._ndtri = ndtri
        self._lock = threading.Lock()
        self._cache: dict[tuple[float, ...], Any] = {}

    # -- domain -------------------------------------------------------------------------------
    def domain_text(self) -> str:
        return DOMAIN_HELP.format(e0=self.porosity_range[0], e1=self.porosity_range[1], n0=self.layer_range[0],
                                  n1=self.layer_range[1], s20=self.smoothing2_range[0], s21=self.smoothing2_range[1],
                                  s30=self.smoothing3_range[0], s31=self.smoothing3_range[1])

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
    def _spline(self, eps: float, nu: float, s: float) -> Any:
        """The x-spline of ln(F / (phi (1 - phi))) with columns AA (two phases) or AA, BB, LL."""
        key = (eps, nu, s)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        t = float(self._ndtri(eps))
        cols = self._aa([[t, s]])[0][:, None]
        if nu != 0.0:
            cols = np.concatenate([cols, self._bl([[t, nu, s]])[0]], axis=1)
        out = self._bspline(self._tx, cols, 3, extrapolate=False)
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = out
        return out

    def partials(self, qa: Any, porosity: float, layer_fraction: float = 0.0,
                 smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F_AA, F_BB, F_LL at q a (dimensionless, per unit volume in units of a^3).

        For ``layer_fraction == 0`` (two phases) F_BB = F_AA and F_LL = 0.
        """
        eps, nu, s = self.check(porosity, layer_fraction, smoothing)
        qa = np.asarray(qa, dtype=np.float64)
        if qa.size and (not np.all(np.isfinite(qa)) or np.any(qa < 0)):
            raise ValueError("q must be finite and >= 0")
        x0, x1 = self.x_range
        with np.errstate(divide="ignore"):
            x = np.log(qa.ravel())
        logs = self._spline(eps, nu, s)(np.clip(x, x0, x1))
        high = x > x1
        if np.any(high):
            logs[high] += (4.0 * (x1 - x[high]))[:, None]  # Porod's law beyond the table
        phis = [eps] if nu == 0.0 else [eps, eps * (1.0 - nu), eps * nu]
        curves = np.exp(logs) * np.array([p * (1.0 - p) for p in phis])
        f_aa = curves[:, 0].reshape(qa.shape)
        if nu == 0.0:
            return f_aa, f_aa, np.zeros_like(f_aa)
        return f_aa, curves[:, 1].reshape(qa.shape), curves[:, 2].reshape(qa.shape)

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
    p = str(Path(path).resolve()) if path is not None else str(default_table_path())
    with _tables_lock:
        t = _tables.get(p)
        if t is None:
            t = EnsembleTable(p)
            _tables[p] = t
        return t
