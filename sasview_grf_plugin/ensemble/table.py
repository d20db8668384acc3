"""Evaluating the ensemble-mean GRF table: smooth, deterministic, any q >= 0, physical at every point.

This module imports only NumPy, SciPy and the standard library (no other module of this package), so
that it can be copied next to a table file and a standalone SasView model file.

Representation (format 2; dimensionless: q in 1/a, intensities in a^3 per unit volume, unit contrast).
Three indicator functions describe a structure: A = pore + layer (the two-phase structure, volume
fraction eps), B = pore (eps (1 - nu)), L = layer = A - B (eps nu). A density
rho = rho_s + d_p chi_B + d_l chi_L (d_p = rho_pore - rho_solid, d_l = rho_layer - rho_solid) is
rho_s + alpha chi_A + beta chi_L with alpha = d_p, beta = d_l - d_p, so

    I(q) = a^3 [ alpha^2 F_AA + beta^2 F_LL + 2 alpha beta c sqrt(F_AA F_LL) ],

F_XX the ensemble-mean scattering of indicator X and c = F_AL / sqrt(F_AA F_LL) the coherence of A and
L. The table stores, as tensor-product cubic B-splines (C2 in every variable) over the level
t = Phi^-1(eps), nu and s = sigma / a, and over x = ln(q a) (g_A), ln(q d) (g_L; d = eps nu / S the
layer's thickness scale, see :func:`layer_shift`) or ln(q (a + d)) (u):

* ln g_A and ln g_L, the shapes of F_AA and F_LL. At every parameter point the evaluator normalizes
  them over all q (the table's q range plus its continuations: flat below, Porod's law q^-4 above),
  F_XX = 2 pi^2 phi_X (1 - phi_X) g_X / int q^2 g_X dq, so each invariant is exact everywhere, not
  only at the nodes;
* u = atanh(c). The evaluator uses c = tanh(u + delta), abs(c) < 1 by construction, with one scalar
  delta per parameter point solving int q^2 F_AL dq = 2 pi^2 phi_L (1 - eps) (the exact cross
  invariant; delta is ~0 at the nodes). The 2x2 matrix of partial curves is then positive definite at
  every q, I >= (1 - abs(c)) (alpha^2 F_AA + beta^2 F_LL) > 0 unless all SLDs are equal (no clipping),
  the Porod invariant is exact for every SLD choice, and d_l = d_p (beta = 0) gives the two-phase
  curve alpha^2 F_AA exactly.

The table file is untrusted input: it is read with ``allow_pickle=False`` (a file cannot run code),
each member's declared and actual sizes are capped before anything is decompressed, every array's
dtype, shape and finiteness is checked, and a ``card.json`` beside the file must carry the file's
SHA-256 (a check against accidents such as a truncated or altered copy, not against tampering: whoever
can change the file can change the card).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EnsembleTable", "TableError", "load_table", "default_table_path", "read_card", "FORMAT_VERSION",
           "continuation_ramp", "layer_shift"]

TABLE_FILE = "grf_ensemble_table.npz"
CARD_FILE = "card.json"
#: The table format this evaluator reads (see the module docstring).
FORMAT_VERSION = 2
#: Largest table file read (bytes on disk) and largest total decompressed size: the shipped table is
#: ~7 MB on disk and ~11 MB decompressed.
MAX_FILE_BYTES = 64 * 2**20
MAX_DECOMPRESSED_BYTES = 256 * 2**20
_COEFS = ("coef_aa", "coef_ll", "coef_cx")
_VECTORS = ("x_knots", "t_knots", "s2_knots", "s3_knots", "nu_knots", "domain", "x_range", "xl_knots", "xl_range")
_SCALARS = ("version", "spectral_moment")
_REQUIRED = _VECTORS + _COEFS + _SCALARS
_K = 3  # cubic splines


class TableError(ValueError):
    """A table file (or its card) that is missing, unreadable, inconsistent or of another format."""


def default_table_path() -> Path:
    """The table shipped beside this module."""
    return Path(__file__).with_name("tables") / TABLE_FILE


def read_card(folder: str | os.PathLike) -> dict[str, Any]:
    """The card (``card.json``) of the table folder ``folder``, with its required fields checked.

    ``TableError`` names the problem: missing or unreadable card, not a table card, a ``file`` that is not
    a bare file name in the folder, or a ``sha256`` that is not 64 hex digits.
    """
    path = Path(folder) / CARD_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TableError(f"{path} not found: a table folder holds {TABLE_FILE} and its {CARD_FILE}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TableError(f"cannot read {path}: {exc}") from None
    if len(text) > 1 << 20:
        raise TableError(f"{path} is {len(text)} characters; a table card is a few kB")
    try:
        card = json.loads(text)
    except ValueError as exc:
        raise TableError(f"{path} is not JSON: {exc}") from None
    if not isinstance(card, dict) or card.get("kind") != "grf-ensemble-table":
        raise TableError(f"{path} is not a GRF ensemble table card (needs \"kind\": \"grf-ensemble-table\")")
    name = card.get("file")
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise TableError(f"{path}: \"file\" must be a bare file name in the card's folder, got {name!r}")
    digest = card.get("sha256")
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise TableError(f"{path}: \"sha256\" must be 64 lowercase hex digits, got {digest!r}")
    return card


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> np.ndarray:
    """One .npy member, its header checked against its declared size before the data is read."""
    fmt = np.lib.format
    with zf.open(info) as fh:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise TableError(f"{where}: unknown .npy version {version}")
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = reader(fh, max_header_size=10000)
        if dtype.hasobject:
            raise TableError(f"{where}: object arrays are refused (a table holds numbers only)")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > info.file_size:
            raise TableError(f"{where}: its header claims {nbytes} bytes but the member holds {info.file_size}")
        data = fh.read(nbytes)
    if len(data) != nbytes:
        raise TableError(f"{where}: truncated ({len(data)} of {nbytes} bytes)")
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The table's arrays, read with every size capped (no pickle, no decompression bomb)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TableError(f"{path} is {size / 2**20:.1f} MiB; a GRF ensemble table is at most "
                         f"{MAX_FILE_BYTES / 2**20:.0f} MiB")
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        total = sum(i.file_size for i in infos.values())
        if total > MAX_DECOMPRESSED_BYTES:
            raise TableError(f"{path} would decompress to {total / 2**20:.0f} MiB; a GRF ensemble table is at most "
                             f"{MAX_DECOMPRESSED_BYTES / 2**20:.0f} MiB (refused before decompressing)")
        missing = [k for k in _REQUIRED if k + ".npy" not in infos]
        if missing:
            raise TableError(f"{path} is not a GRF ensemble table of format {FORMAT_VERSION}: missing "
                             f"{', '.join(missing)} (tables made before format {FORMAT_VERSION} must be remade with "
                             "'sasview-grf ensemble tabulate')")
        for k in (*_REQUIRED, "meta"):
            if k + ".npy" in infos:
                out[k] = _read_member(zf, infos[k + ".npy"], f"{path}: {k}")
    return out


def _checked_arrays(path: Path, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """float64 arrays of the expected dimensions, all finite; TableError names the first bad one."""
    arrays: dict[str, np.ndarray] = {}
    dims = {**{k: 1 for k in _VECTORS}, "coef_aa": 3, "coef_ll": 4, "coef_cx": 4, "version": 0, "spectral_moment": 0}
    for k in _REQUIRED:
        v = raw[k]
        if v.dtype.kind != "f" or v.dtype.itemsize != 8:
            raise TableError(f"{path}: {k} must be float64, got {v.dtype}")
        if v.ndim != dims[k]:
            raise TableError(f"{path}: {k} must have {dims[k]} dimension(s), got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise TableError(f"{path}: {k} holds NaN or infinite values")
        arrays[k] = np.array(v, dtype=np.float64, order="C")  # a copy: frombuffer arrays are read-only
    if float(arrays["version"]) != FORMAT_VERSION:
        raise TableError(f"{path}: table format {float(arrays['version']):g}, this evaluator reads format "
                         f"{FORMAT_VERSION}; remake it with 'sasview-grf ensemble tabulate'")
    return arrays


class EnsembleTable:
    """The ensemble-mean partial curves of the two- and three-phase structures as smooth functions.

    Parameters
    ----------
    path
        An ``.npz`` table file (default: the shipped one). A ``card.json`` beside it must name it and
        carry its SHA-256; a table without a card (as exported for standalone SasView models) is read
        only where ``require_card`` is False.
    require_card
        Refuse a table without a card (default: only the shipped table requires one).
    """

    def __init__(self, path: str | os.PathLike | None = None, require_card: bool | None = None) -> None:
        try:
            from scipy.interpolate import BSpline, NdBSpline
        except ImportError:
            # Standalone model files run in SasView's own Python, whose SciPy may predate NdBSpline.
            import scipy

            raise ImportError(f"the GRF ensemble models need SciPy 1.12 or newer (scipy.interpolate.NdBSpline); "
                              f"this Python has SciPy {scipy.__version__}: upgrade SciPy") from None
        from scipy.special import ndtri

        self.path = Path(path) if path is not None else default_table_path()
        if require_card is None:
            require_card = path is None
        self.card: dict[str, Any] | None = None
        if not self.path.is_file():
            raise TableError(f"GRF ensemble table not found: {self.path}")
        if require_card or (self.path.parent / CARD_FILE).is_file():
            card = read_card(self.path.parent)
            if card["file"] != self.path.name:
                raise TableError(f"{self.path.parent / CARD_FILE} describes {card['file']}, not {self.path.name}")
            digest = _sha256(self.path)
            if digest != card["sha256"]:
                raise TableError(f"{self.path} does not match its card: sha256 {digest[:16]}..., the card says "
                                 f"{card['sha256'][:16]}... (a damaged or replaced file; copy or remake the table "
                                 "and its card together)")
            self.card = card
        try:
            raw = _read_npz(self.path)
        except TableError:
            raise
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise TableError(f"cannot read the GRF ensemble table {self.path}: {exc}") from None
        arrays = _checked_arrays(self.path, raw)
        try:
            self.meta = json.loads(str(raw["meta"][()])) if "meta" in raw and raw["meta"].dtype.kind == "U" else {}
        except ValueError:
            raise TableError(f"{self.path}: meta is not JSON") from None
        dom = arrays["domain"]
        if dom.shape != (8,) or np.any(dom[0::2] > dom[1::2]):
            raise TableError(f"{self.path}: domain must hold 4 ordered (low, high) pairs")
        if not (0.0 < dom[0] and dom[1] < 1.0 and 0.0 < dom[2] and dom[3] < 1.0 and 0.0 <= dom[4] and 0.0 < dom[6]):
            raise TableError(f"{self.path}: the domain must lie inside porosity (0, 1), layer_fraction (0, 1), "
                             "smoothing/a >= 0 (two phases) and > 0 (three phases)")
        self.porosity_range = (float(dom[0]), float(dom[1]))
        self.layer_range = (float(dom[2]), float(dom[3]))
        self.smoothing2_range = (float(dom[4]), float(dom[5]))
        self.smoothing3_range = (float(dom[6]), float(dom[7]))
        x_rng = arrays["x_range"]
        if x_rng.shape != (2,) or not x_rng[0] < x_rng[1]:
            raise TableError(f"{self.path}: x_range must be an increasing pair")
        self.x_range = (float(x_rng[0]), float(x_rng[1]))
        xl_rng = arrays["xl_range"]
        if xl_rng.shape != (2,) or not xl_rng[0] < xl_rng[1]:
            raise TableError(f"{self.path}: xl_range must be an increasing pair")
        self.xl_range = (float(xl_rng[0]), float(xl_rng[1]))
        self._lambda = float(arrays["spectral_moment"])
        if not self._lambda > 0:
            raise TableError(f"{self.path}: spectral_moment must be > 0")
        tx = arrays["x_knots"]
        checks = [("x", tx, x_rng), ("layer x", arrays["xl_knots"], xl_rng),
                  ("porosity", arrays["t_knots"], ndtri(dom[0:2])), ("layer_fraction", arrays["nu_knots"], dom[2:4]),
                  ("smoothing (two phases)", arrays["s2_knots"], dom[4:6]),
                  ("smoothing (three phases)", arrays["s3_knots"], dom[6:8])]
        for what, knots, (lo, hi) in checks:
            if knots.size < 2 * (_K + 1) or np.any(np.diff(knots) < 0):
                raise TableError(f"{self.path}: the {what} knots must be a sorted vector of at least 8")
            if not (knots[_K] <= lo + 1e-12 and hi - 1e-12 <= knots[-_K - 1]):
                raise TableError(f"{self.path}: the {what} domain [{lo:g}, {hi:g}] exceeds its knots")
        n_t, n_s2, n_s3, n_nu, n_x, n_xl = (arrays[k].size - _K - 1 for k in ("t_knots", "s2_knots", "s3_knots",
                                                                               "nu_knots", "x_knots", "xl_knots"))
        want = {"coef_aa": (n_t, n_s2, n_x), "coef_ll": (n_t, n_nu, n_s3, n_xl), "coef_cx": (n_t, n_nu, n_s3, n_x)}
        for k, shape in want.items():
            if arrays[k].shape != shape:
                raise TableError(f"{self.path}: {k} has shape {arrays[k].shape}, its knots need {shape}")
        if self.card is not None:
            nodes = self.card.get("nodes", {})
            try:
                agree = (float(nodes["porosity"][0]), float(nodes["porosity"][-1])) == self.porosity_range and (
                    float(nodes["layer_fraction"][0]), float(nodes["layer_fraction"][-1])) == self.layer_range
            except (KeyError, TypeError, ValueError, IndexError):
                agree = False
            if not agree:
                raise TableError(f"{self.path.parent / CARD_FILE}: its nodes do not span the table's domain")
        self._aa = NdBSpline((arrays["t_knots"], arrays["s2_knots"]), arrays["coef_aa"], _K)
        # L and the coherence share their parameter knots: one spline whose trailing axis holds both
        # x-coefficient vectors, one evaluation for both.
        self._ll = NdBSpline((arrays["t_knots"], arrays["nu_knots"], arrays["s3_knots"]), arrays["coef_ll"], _K)
        self._cx = NdBSpline((arrays["t_knots"], arrays["nu_knots"], arrays["s3_knots"]), arrays["coef_cx"], _K)
        self._tx = tx
        self._txl = arrays["xl_knots"]
        # Normalization quadrature: Simpson's rule in x on a grid as fine as the knots (the
        # integrands are smooth exponentials in x), plus the continuations' exact integrals.
        n_quad = 2 * (tx.size // 2) + 1
        self._xq = np.linspace(self.x_range[0], self.x_range[1], n_quad)
        w = np.full(n_quad, 2.0)
        w[1::2] = 4.0
        w[0] = w[-1] = 1.0
        self._wq = w * (self._xq[1] - self._xq[0]) / 3.0 * np.exp(3.0 * self._xq)  # dq q^2 = q^3 dx
        self._rq = continuation_ramp(self._xq)
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
                                 f"(the models' smoothing_ratio: smoothing sigma divided by a)")
            return e, nu, s_in
        n_in = inside(nu, self.layer_range)
        if n_in is None:
            lo, hi = self.layer_range
            raise ValueError(f"layer_fraction {nu:.6g} is outside the table's domain [{lo:g}, {hi:g}]")
        s_in = inside(s, self.smoothing3_range)
        if s_in is None:
            lo, hi = self.smoothing3_range
            raise ValueError(f"smoothing/a = {s:.6g} is outside the three-phase domain [{lo:g}, {hi:g}] "
                             f"(the models' smoothing_ratio: smoothing sigma divided by a)")
        eps, nu, s = e, n_in, s_in
        return eps, nu, s

    # -- evaluation ---------------------------------------------------------------------------
    @staticmethod
    def _continued(spline: Any, x: np.ndarray, porod: np.ndarray, x_range: tuple[float, float]) -> np.ndarray:
        """Spline (columns) at x, continued flat below the grid ``x_range`` and, where ``porod`` is True, as
        q^-4 above it (the coherence stays at its last value)."""
        x0, x1 = x_range
        out = spline(np.clip(x, x0, x1))
        high = x > x1
        if np.any(high):
            drop = 4.0 * (x1 - x[high])
            out[high] += drop[:, None] * porod[None, :] if out.ndim == 2 else drop * porod
        return out

    def _moment(self, f: np.ndarray) -> float:
        """int_0^inf q^2 f dq for f on the quadrature grid, with the continuations' tails (flat below, q^-4
        above; the ramp of :func:`continuation_ramp` is constant beyond the grid)."""
        q0, q1 = math.exp(self.x_range[0]), math.exp(self.x_range[1])
        return float(self._wq @ f + f[0] * q0**3 / 3.0 + f[-1] * q1**3)

    def _normalize(self, log_f: np.ndarray, target: float, on_ramp: bool) -> tuple[float, float]:
        """(ln of a uniform factor, kappa) with int q^2 f (1 + kappa ramp) dq / factor = target.

        With ``on_ramp`` (the layer) the correction goes into the continuations (below and above the simulated
        q range), in proportion to their share of the invariant: a factor 1 + kappa, kappa in [-1/2, 1], on
        the ramp; what remains is a uniform factor. Otherwise (A: its high-q law is the interface area) it is
        a uniform factor.
        """
        f = np.exp(log_f)
        m0 = self._moment(f)
        mr = self._moment(f * self._rq)
        kappa = min(max((target - m0) / mr, -0.5), 1.0) if on_ramp else 0.0
        return math.log((m0 + kappa * mr) / target), kappa

    def _solve(self, eps: float, nu: float, s: float) -> tuple[Any, Any, float, np.ndarray]:
        """Spline of ln g_A over ln(q a), splines of ln g_L over ln(q d) and of u over ln(q (a + d)) (None for two
        phases), ln(d / a),
        and the corrections at one point: (ln factor_A, kappa_A,
        ln factor_L, kappa_L, delta on the ramp, uniform delta); see :meth:`_normalize`, :func:`_shift`."""
        key = (eps, nu, s)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        t = float(self._ndtri(eps))
        make = self._bspline.construct_fast  # knots were checked on load
        cols = self._aa([[t, s]])[0][:, None]
        layer: Any = None
        shift = 0.0
        if nu != 0.0:
            # ln g_L over ln(q d); u over ln(q (a + d)) (see coherence_shift), on the x knots.
            layer = make(self._txl, self._ll([[t, nu, s]])[0], _K, extrapolate=False)
            cross = make(self._tx, self._cx([[t, nu, s]])[0], _K, extrapolate=False)
            shift = layer_shift(eps, nu, self._lambda)
        spline = make(self._tx, cols[:, 0], _K, extrapolate=False)
        vals = spline(self._xq)[:, None]
        if layer is not None:
            log_l = self._continued(layer, self._xq + shift, np.array(True), self.xl_range)
            u = self._continued(cross, self._xq + math.log1p(math.exp(shift)), np.array(False), self.x_range)
            vals = np.stack([vals[:, 0], log_l, u], axis=1)
            layer = (layer, cross)
        two_pi2 = 2.0 * math.pi**2
        corr = np.zeros(6)
        # The shapes g hold int q^2 g dq = 1 at the nodes; F = 2 pi^2 phi (1 - phi) g, corrected between them.
        for col, phi in ((0, eps), (1, eps * nu)):
            if col == 1 and nu == 0.0:
                break
            log_norm = math.log(two_pi2 * phi * (1.0 - phi))
            ln_factor, kappa = self._normalize(vals[:, col] + log_norm, math.exp(log_norm), col == 1)
            corr[2 * col: 2 * col + 2] = ln_factor - log_norm, kappa
        if nu != 0.0:
            phi_l = eps * nu
            # The cross term's invariant: int q^2 F_AL dq = 2 pi^2 (<chi_A chi_L> - eps phi_L) = 2 pi^2 phi_L (1 - eps).
            # sqrt(F_AA F_LL) on the grid, tails folded into the end weights:
            amp = np.exp(0.5 * (vals[:, 0] - corr[0] + vals[:, 1] - corr[2]))
            amp *= np.sqrt((1.0 + corr[1] * self._rq) * (1.0 + corr[3] * self._rq))
            q0, q1 = math.exp(self.x_range[0]), math.exp(self.x_range[1])
            weights = self._wq * amp
            weights[0] += amp[0] * q0**3 / 3.0
            weights[-1] += amp[-1] * q1**3
            target = two_pi2 * phi_l * (1.0 - eps)
            # First on the ramp (the continuations), bounded; any remainder by a uniform shift.
            corr[4] = _shift(vals[:, 2], self._rq, weights, target, 2.0)
            corr[5] = _shift(vals[:, 2] + corr[4] * self._rq, np.ones_like(self._rq), weights, target, 40.0)
        out = (spline, layer, shift, corr)
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = out
        return out

    def _curves(self, qa: Any, porosity: float, layer_fraction: float,
                smoothing: float) -> tuple[tuple[int, ...], float, float, np.ndarray, np.ndarray | None,
                                            np.ndarray | None]:
        """Checked parameters and F_AA, F_LL, c on q a (flattened); F_LL and c are None for two phases."""
        eps, nu, s = self.check(porosity, layer_fraction, smoothing)
        qa = np.asarray(qa, dtype=np.float64)
        if qa.size and (not np.all(np.isfinite(qa)) or np.any(qa < 0)):
            raise ValueError("q must be finite and >= 0")
        with np.errstate(divide="ignore"):
            x = np.log(qa.ravel())
        spline, layer, shift, corr = self._solve(eps, nu, s)
        log_a = self._continued(spline, x, np.array(True), self.x_range)
        ramp = continuation_ramp(np.clip(x, *self.x_range))
        f_aa = np.exp(log_a - corr[0]) * (1.0 + corr[1] * ramp)
        if nu == 0.0:
            return qa.shape, eps, nu, f_aa, None, None
        log_l = self._continued(layer[0], x + shift, np.array(True), self.xl_range)
        f_ll = np.exp(log_l - corr[2]) * (1.0 + corr[3] * ramp)
        u = self._continued(layer[1], x + math.log1p(math.exp(shift)), np.array(False), self.x_range)
        coh = np.tanh(u + corr[4] * ramp + corr[5])
        return qa.shape, eps, nu, f_aa, f_ll, coh

    def partials(self, qa: Any, porosity: float, layer_fraction: float = 0.0,
                 smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F_AA, F_BB, F_LL at q a (dimensionless, per unit volume in units of a^3).

        For ``layer_fraction == 0`` (two phases) F_BB = F_AA and F_LL = 0. F_BB = F_AA + F_LL - 2 F_AL is
        written as a sum of non-negative terms.
        """
        shape, _, _, f_aa, f_ll, coh = self._curves(qa, porosity, layer_fraction, smoothing)
        if f_ll is None:
            return f_aa.reshape(shape), f_aa.reshape(shape), np.zeros(shape)
        f_bb = (np.sqrt(f_aa) - coh * np.sqrt(f_ll)) ** 2 + (1.0 - coh * coh) * f_ll
        return f_aa.reshape(shape), f_bb.reshape(shape), f_ll.reshape(shape)

    def coherence(self, qa: Any, porosity: float, layer_fraction: float, smoothing: float) -> np.ndarray:
        """c = F_AL / sqrt(F_AA F_LL) of pore + layer and layer at q a, abs(c) < 1 (three phases only)."""
        if float(layer_fraction) == 0.0:
            raise ValueError("the coherence needs a layer (layer_fraction > 0)")
        shape, *_, coh = self._curves(qa, porosity, layer_fraction, smoothing)
        return coh.reshape(shape)

    def intensity(self, qa: Any, porosity: float, layer_fraction: float, smoothing: float,
                  d_pore: float, d_layer: float) -> np.ndarray:
        """a^-3 I(q) for contrasts d_pore = rho_p - rho_s and d_layer = rho_l - rho_s (never negative)."""
        shape, _, _, f_aa, f_ll, coh = self._curves(qa, porosity, layer_fraction, smoothing)
        alpha = float(d_pore)
        if f_ll is None:
            return (alpha * alpha * f_aa).reshape(shape)
        beta = float(d_layer) - alpha
        out = alpha * alpha * f_aa + beta * beta * f_ll + 2.0 * alpha * beta * coh * np.sqrt(f_aa * f_ll)
        return out.reshape(shape)


def layer_shift(porosity: float, layer_fraction: float, spectral_moment: float) -> float:
    """ln(d / a) of the layer's thickness scale d = eps nu / S, S = (2/pi) sqrt(lambda) exp(-t^2/2) the
    interface area per volume of the level cut (t = Phi^-1(eps), lambda = -rho''(0) a^2).

    The layer's curve and the coherence are tabulated against ln(q d) = ln(q a) + layer_shift: the layer's
    thickness fringes then sit at the same place for every node, and interpolating between nodes moves
    them instead of blending two fringe patterns.
    """
    from scipy.special import ndtri

    t = float(ndtri(porosity))
    area = 2.0 / math.pi * math.sqrt(spectral_moment) * math.exp(-0.5 * t * t)
    return math.log(porosity * layer_fraction / area)


#: The simulated q range of the build (q a from the box's first wave number to where the voxels alias, see
#: the card's ``simulated_q_a``); invariant corrections go outside it, see :func:`continuation_ramp`.
_Q_MEASURED = (0.08, 10.0)


def continuation_ramp(x: np.ndarray) -> np.ndarray:
    """Smooth weight, ~1 outside the simulated q range (continuations) and ~0 inside, over x = ln(q a)."""
    lo, hi = (math.log(v) for v in _Q_MEASURED)
    return 0.5 * (1.0 - np.tanh((x - lo) / 0.3)) + 0.5 * (1.0 + np.tanh((x - hi) / 0.3))


def _shift(u: np.ndarray, ramp: np.ndarray, weights: np.ndarray, target: float, bound: float) -> float:
    """delta in [-bound, bound] with sum(weights * tanh(u + delta ramp)) closest to target.

    weights, ramp >= 0: the sum rises monotonically with delta, so a bracketed Newton iteration converges.
    """
    total = float(weights.sum())
    lo, hi = -bound, bound
    d = 0.0
    for _ in range(100):
        th = np.tanh(u + d * ramp)
        f = float(weights @ th) - target
        if abs(f) <= 1e-13 * total:
            break
        if f > 0:
            hi = d
        else:
            lo = d
        if hi - lo < 1e-14:
            break
        slope = float(weights @ ((1.0 - th * th) * ramp))
        step = d - f / slope if slope > 0 else 0.5 * (lo + hi)
        d = step if lo < step < hi else 0.5 * (lo + hi)
    return d


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
