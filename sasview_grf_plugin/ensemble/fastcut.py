"""Fast exact ensemble means of level sets of a GRF with any spectrum (smoothing = 0): the evaluator of the
exact SasView models (grf_two_phase_broad, grf_two_phase_peaked, grf_three_phase_broad, grf_three_phase_peaked).

A density that takes the value sum_{i: t_i > psi} w_i, i.e. f(psi) = sum_i w_i 1{psi < t_i} for levels
t_1 < t_2 (one level: a level cut; two: a band between two levels with its own density), has the
covariance C(r) = sum_ij w_i w_j Cov(1{X < t_i}, 1{Y < t_j}) of a bivariate normal pair (X, Y) with
correlation rho(r). Its drop from C(0) is one integral over v in [0, arccos rho] (Berk 1987, Teubner 1991):

    C(0) - C(r) = D(arccos rho(r)),   D'(v) = (1 / 2 pi) sum_ij w_i w_j
                  exp(-(t_i - t_j)^2 / (2 sin^2 v) - t_i t_j / (2 cos^2 (v/2))).

Numerics (all lengths in units of the spectrum's length a, wave numbers in 1/a; float64):

* D is tabulated per call on fixed nodes in v (geometric near 0, where a thin band's cross term switches
  on, uniform beyond) from 6-point Gauss-Legendre cell integrals, and read by cubic Hermite interpolation
  with its exact derivative D' (C1; relative error < 1e-8).
* C = [h + c1 rho] + R with h = (C(0) - c1) exp(-r / l) (l = a/2) and c1 = (sum_i w_i phi(t_i))^2, the
  first Hermite coefficient: h and rho transform exactly (8 pi A l^3 / (1 + q^2 l^2)^2 and
  2 pi^2 Gamma / int q^2 Gamma), and R = (C(0) - c1)(1 - e^(-r/l)) - D + c1 (1 - rho) vanishes at r = 0
  and decays as rho^2.
* R is transformed by FFTLog (scipy's fast Hankel transform algorithm, order 1/2, with its coefficients
  computed once per family) on a fixed log grid r in [1e-6, 100] a (1024 points, 2048 for the peaked
  family): F_R(q) = (2 pi)^(3/2) q^(-3/2) H_(1/2)[r^(3/2) R](q), read at the
  requested q by cubic Hermite interpolation in ln q (node slopes by fourth-order differences). The grid
  resolves the cusp of C at r -> 0 down to r_min, so the transform is exact up to q a = 3e-3 / r_min
  (= 3e3; the fractal tail of a rough field included); beyond, F continues with its local power law
  (value and slope matched), below q a = 0.05 as F(0) + A q^2 + B q^4 with the exact F(0) (the trapezoidal sum of
  r^3 R in ln r) and F, F' matched at q a = 0.05 (the plateau).
* The Matérn correlation 1 - rho(x; alpha) on the grid is interpolated (cubic Hermite, C1) in alpha
  from its logarithm on nodes 0.01 apart, each computed once from the exact expression when first
  needed (:func:`~sasview_grf_plugin.spectra.matern_one_minus`); the peaked family's is closed form.

Everything is deterministic and C1 in every parameter and in q; finite for every q >= 0.

This module imports only NumPy, SciPy and :mod:`sasview_grf_plugin.spectra` (itself NumPy/SciPy only): the
standalone SasView models inline both.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import Any

import numpy as np
from scipy.special import loggamma, ndtri

from ..spectra import ALPHA_RANGE, BroadSpectrum, PaperSpectrum, PeakedSpectrum, Spectrum, matern_one_minus

__all__ = ["level_set_curve", "two_phase_curve", "three_phase_curve", "check_contrasts", "FAST_Q_RANGE",
           "MAX_CONTRAST"]

#: Largest SLD difference (1e-6/Å^2) the models accept: the intensity holds its square times 1e-4 a^3 F, which
#: stays finite up to here (the paper's table models use the same bound). Physical SLDs are below about 100.
MAX_CONTRAST = 1e100


def check_contrasts(**contrasts: float) -> None:
    """Raise ``ValueError`` naming any SLD difference that is not finite or exceeds :data:`MAX_CONTRAST`."""
    for label, value in contrasts.items():
        if not (math.isfinite(value) and abs(value) <= MAX_CONTRAST):
            raise ValueError(f"SLDs must be finite with |{label}| <= {MAX_CONTRAST:g} (1e-6/Å^2; physical SLDs are "
                             f"below about 100), got {value:g}: beyond it the intensity overflows")


_LN_X_MAX = math.log(100.0)
# Per family: grid points and r_min / a. The exact range ends at q a = 3e-3 / r_min = 3e3, where F / F(0)
# approaches 1e-13 (Porod: q^-4): beyond, the transform's rounding would show; the continuation takes over.
_GRIDS = {"paper": (1024, 1e-6), "broad": (1024, 1e-6), "peaked": (2048, 1e-6)}
_BIAS = 0.0  # FFTLog bias: none (r^(3/2) R vanishes at both ends; the replica correction in transform assumes 0)
_L_H = 0.5  # length of the exponential that carries C(0) - c1 (units of a)
#: Exact (FFTLog) range of q a per family (q_max = 3e-3 / r_min); outside it, the matched continuations.
FAST_Q_RANGE = {name: (0.05, 3e-3 / x_min) for name, (_, x_min) in _GRIDS.items()}
_ALPHA_STEP = 0.01
_LOCK = threading.Lock()


class _Grid:
    """The log grid of one family and its FFTLog coefficients (order 1/2, bias ``_BIAS``)."""

    def __init__(self, family: str) -> None:
        n, x_min = _GRIDS[family]
        self.n = n
        self.dln = (_LN_X_MAX - math.log(x_min)) / (n - 1)
        j = np.arange(n)
        self.lnx = math.log(x_min) + j * self.dln
        self.x = np.exp(self.lnx)
        mu, q = 0.5, _BIAS
        # Low-ringing offset (Hamilton 2000), as scipy.fft.fhtoffset.
        xp, xm = (mu + 1 + q) / 2, (mu + 1 - q) / 2
        y = math.pi / (2 * self.dln)
        zp, zm = loggamma(xp + 1j * y), loggamma(xm + 1j * y)
        arg = (math.log(2) - 0) / self.dln + (zp.imag + zm.imag) / math.pi
        self.offset = 0 + (arg - round(arg)) * self.dln
        # Coefficients u_m = (k r)^(-2 pi i m / L) U_mu(q + 2 pi i m / L) (scipy.fft's fhtcoeff).
        yy = np.linspace(0, np.pi * (n // 2) / (n * self.dln), n // 2 + 1)
        v = loggamma(xm + 1j * yy)
        u = loggamma(xp + 1j * yy)
        u = np.exp((u.real - v.real + math.log(2) * q) + 1j * (u.imag + v.imag + 2 * (math.log(2) - self.offset) * yy))
        if n % 2 == 0:
            u[-1] = u[-1].real
        self.u = u
        jc = (n - 1) / 2
        self.pre = self.x**1.5 * np.exp(-q * (j - jc) * self.dln)
        # Output grid k_j = e^offset / x_(n-1-j); F_R = (2 pi)^(3/2) k^(-3/2) A.
        self.lnk = self.offset - self.lnx[::-1]
        self.k = np.exp(self.lnk)
        self.post = np.exp(-q * ((j - jc) * self.dln + self.offset)) * (2 * math.pi) ** 1.5 * self.k**-1.5
        self.x3 = self.x**3
        self.replica = math.exp(-1.5 * n * self.dln)
        self.j_lo = int(np.searchsorted(self.lnk, math.log(FAST_Q_RANGE[family][0])))
        self.j_hi = int(np.searchsorted(self.lnk, math.log(FAST_Q_RANGE[family][1])))

    def transform(self, r_values: np.ndarray) -> tuple[np.ndarray, float]:
        """F_R(k) on the output grid, 4 pi int r^2 R(r) sinc(k r) dr, and F_R(0)."""
        from scipy.fft import irfft, rfft  # here, not at import: loading a plugin model stays cheap

        a = irfft(rfft(r_values * self.pre) * self.u, self.n)[::-1]
        # FFTLog transforms the periodic continuation in ln r: a copy of R scaled down by e^-L (L = n dln)
        # sits below r_min and adds e^(-3L/2) F_R(k e^-L) = e^(-3L/2) F_R(0) for k << e^L (a constant,
        # 1e-12 F_R(0) here, which would be a floor under the high-q tail). Removed exactly.
        # F_R(0) = 4 pi int r^3 R d ln r: the trapezoidal sum, spectrally accurate for R that vanishes at both ends.
        f0 = 4.0 * math.pi * self.dln * float(np.dot(self.x3, r_values))
        return a * self.post - self.replica * f0, f0


@functools.lru_cache(maxsize=4)
def _grid(family: str) -> _Grid:
    return _Grid(family)


@functools.lru_cache(maxsize=1)
def _paper_one_minus() -> np.ndarray:
    return PaperSpectrum().correlation(_grid("paper").x)[1]


@functools.lru_cache(maxsize=128)
def _matern_node(k: int) -> np.ndarray:
    """ln(1 - rho) of the Matérn correlation on the broad grid at alpha = ALPHA_RANGE[0] + k _ALPHA_STEP."""
    return np.log(matern_one_minus(_grid("broad").x, ALPHA_RANGE[0] + k * _ALPHA_STEP))


def _matern_log_one_minus(alpha: float) -> np.ndarray:
    """ln(1 - rho(x; alpha)) on the broad grid: cubic Hermite in alpha between nodes 0.01 apart, slopes by
    central differences (C1 in alpha; relative error of 1 - rho below 1e-5, largest near alpha = 1 at the
    smallest r). Nodes are computed when first needed (four per neighbourhood, ~50 ms each) and kept."""
    u = (alpha - ALPHA_RANGE[0]) / _ALPHA_STEP
    i = int(math.floor(u))
    t = u - i
    with _LOCK:
        p0, p1, p2, p3 = (_matern_node(k) for k in range(i - 1, i + 3))
    m1, m2 = 0.5 * (p2 - p0), 0.5 * (p3 - p1)
    t2, t3 = t * t, t * t * t
    return (2 * t3 - 3 * t2 + 1) * p1 + (t3 - 2 * t2 + t) * m1 + (-2 * t3 + 3 * t2) * p2 + (t3 - t2) * m2


@functools.lru_cache(maxsize=16)
def _correlation(spectrum: Spectrum) -> tuple[_Grid, np.ndarray, np.ndarray]:
    """The family's grid, rho and 1 - rho on it (each accurate relative to itself); kept per spectrum."""
    if isinstance(spectrum, BroadSpectrum):
        log_om = _matern_log_one_minus(spectrum.alpha)
        return _grid("broad"), -np.expm1(log_om), np.exp(log_om)
    if isinstance(spectrum, PeakedSpectrum):
        g = _grid("peaked")
        rho, om = spectrum.correlation(g.x)
        return g, rho, om
    if isinstance(spectrum, PaperSpectrum):
        with _LOCK:
            om = _paper_one_minus()
        return _grid("paper"), 1.0 - om, om
    raise ValueError(f"no fast evaluator for the spectrum {spectrum!r}")


@functools.lru_cache(maxsize=16)
def _split_correlation(spectrum: Spectrum) -> tuple:
    """Per spectrum, kept: the grid, the mask |rho| >= 0.1 and there arccos rho, 1 - rho, 1 - e^(-r/l); elsewhere
    rho and e^(-r/l)."""
    g, rho, om = _correlation(spectrum)
    near = np.abs(rho) >= _RHO_SERIES
    v = 2.0 * np.arcsin(np.sqrt(np.clip(0.5 * om[near], 0.0, 1.0)))  # arccos(rho), no cancellation
    return (g, near, v, om[near], -np.expm1(-g.x[near] / _L_H), rho[~near], np.exp(-g.x[~near] / _L_H))


# Nodes of the table of D(v): geometric from 1e-7 to 1e-2 (a thin band's cross term switches on at
# v ~ |t_i - t_j|), uniform up to pi (exclusive: the integrand's formula is 0/0 there for t_i = -t_j).
_V_NODES = np.concatenate([[0.0], np.geomspace(1e-7, 1e-2, 61)[:-1], np.linspace(1e-2, math.pi * (1 - 1e-9), 200)])
_GL_X, _GL_W = np.polynomial.legendre.leggauss(6)
_V_MID = 0.5 * (_V_NODES[1:] + _V_NODES[:-1])
_V_HALF = 0.5 * np.diff(_V_NODES)
# All points where D' is evaluated (cell quadrature nodes, then the table nodes) and their 1/(2 sin^2 v),
# 1/(2 cos^2(v/2)), computed once.
_V_ALL = np.concatenate([(_V_MID[:, None] + _V_HALF[:, None] * _GL_X[None, :]).ravel(), _V_NODES])
with np.errstate(divide="ignore"):
    _INV_S2 = 0.5 / np.sin(_V_ALL) ** 2
_INV_C2 = 0.5 / np.cos(0.5 * _V_ALL) ** 2
_N_GL = _V_MID.size * _GL_X.size


def _drop_rate_nodes(levels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """D'(v) = (1 / 2 pi) sum_ij w_i w_j exp(-(t_i - t_j)^2 / (2 sin^2 v) - t_i t_j / (2 cos^2(v/2))) on _V_ALL."""
    out = np.zeros_like(_V_ALL)
    m = len(levels)
    for i in range(m):
        for j in range(i, m):
            ww = weights[i] * weights[j] * (1.0 if i == j else 2.0)
            expo = (-levels[i] * levels[j]) * _INV_C2
            if i != j:
                expo -= (levels[i] - levels[j]) ** 2 * _INV_S2
            out += ww * np.exp(expo)
    return out / (2.0 * math.pi)


def _drop(v: np.ndarray, levels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """D(v) = int_0^v D'(u) du by cubic Hermite interpolation of exact node values and slopes."""
    rate = _drop_rate_nodes(levels, weights)
    cells = (rate[:_N_GL].reshape(-1, _GL_X.size) @ _GL_W) * _V_HALF
    d_nodes = np.concatenate([[0.0], np.cumsum(cells)])
    s_nodes = rate[_N_GL:]
    i = np.clip(np.searchsorted(_V_NODES, v, side="right") - 1, 0, _V_NODES.size - 2)
    h = _V_NODES[i + 1] - _V_NODES[i]
    t = (v - _V_NODES[i]) / h
    t2, t3 = t * t, t * t * t
    return ((2 * t3 - 3 * t2 + 1) * d_nodes[i] + (t3 - 2 * t2 + t) * h * s_nodes[i]
            + (-2 * t3 + 3 * t2) * d_nodes[i + 1] + (t3 - t2) * h * s_nodes[i + 1])


_RHO_SERIES = 0.1
_N_HERMITE = 20  # 0.1^21: the series' truncation is far below rounding


_FACTORIALS = np.array([math.factorial(n) for n in range(1, _N_HERMITE + 1)], dtype=np.float64)


def _hermite_tail(rho: np.ndarray, levels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_(n >= 2) c_n rho^n, c_n = (sum_i w_i phi(t_i) He_(n-1)(t_i))^2 / n! (Mehler's expansion of C)."""
    sums = np.zeros(_N_HERMITE)
    for t, w in zip(levels.tolist(), weights.tolist(), strict=True):
        he_prev, he = 0.0, 1.0  # He_(n-2), He_(n-1) by He_n = t He_(n-1) - (n-1) He_(n-2)
        wp = w * math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
        for n in range(_N_HERMITE):
            sums[n] += wp * he
            he_prev, he = he, t * he - n * he_prev
    coef = sums**2 / _FACTORIALS  # c_1 .. c_N
    out = np.zeros_like(rho)
    live = np.abs(rho) > 1e-18  # below, every term is under 1e-36 C(0): exactly nothing in double precision
    x = rho[live]
    acc = np.full_like(x, coef[-1])
    for c in coef[-2:0:-1]:  # Horner from c_N down to c_2
        acc *= x
        acc += c
    out[live] = acc * x * x
    return out


def _analytic(q: np.ndarray, amp: float, c1: float, spectrum: Spectrum) -> np.ndarray:
    """h's and c1 rho's transforms at q."""
    ql = q * _L_H
    return 8.0 * math.pi * amp * _L_H**3 / (1.0 + ql * ql) ** 2 + c1 * spectrum.rho_transform(q)


class _Prepared:
    """The curve of one parameter set on the FFTLog grid, ready to read at any q."""

    __slots__ = ("spectrum", "grid", "f_rem", "slope", "amp", "c1", "f_end", "d_end", "low_coef")

    def __init__(self, spectrum: Spectrum, levels: np.ndarray, w: np.ndarray, c0: float) -> None:
        self.spectrum = spectrum
        c1 = float(np.sum(w * np.exp(-0.5 * levels**2)) ** 2 / (2.0 * math.pi))
        g, near, v, om_near, h_near, rho_far, h_far = _split_correlation(spectrum)
        # |rho| >= 0.1: C = C(0) - D(arccos rho). |rho| < 0.1 (large r): the Hermite series of C in rho, exact
        # to rounding relative to C itself (C(0) - D would leave an absolute rounding floor there, which the
        # transform's r^(3/2) weight would lift into the low-q curve).
        rem = np.empty_like(g.x)
        rem[near] = (c0 - c1) * h_near + c1 * om_near - _drop(v, levels, w)
        rem[~near] = _hermite_tail(rho_far, levels, w) - (c0 - c1) * h_far
        f_rem, f0_rem = g.transform(rem)
        # Fourth-order central differences (a power law q^-4 on this grid: relative slope error 1e-6, where
        # second order would leave 1e-3).
        slope = np.empty_like(f_rem)
        slope[2:-2] = (f_rem[:-4] - 8.0 * f_rem[1:-3] + 8.0 * f_rem[3:-1] - f_rem[4:]) / (12.0 * g.dln)
        slope[:2] = slope[2]
        slope[-2:] = slope[-3]
        self.grid, self.f_rem, self.slope, self.amp, self.c1 = g, f_rem, slope, c0 - c1, c1
        # Value and slope dF / d ln q at the two ends (the analytic part's slope by a central difference).
        lo_k, hi_k = g.k[g.j_lo], g.k[g.j_hi]
        eps = 1e-6
        ends = np.array([lo_k, hi_k, lo_k * (1 + eps), hi_k * (1 + eps), lo_k * (1 - eps), hi_k * (1 - eps)])
        fa = _analytic(ends, self.amp, c1, spectrum)
        self.f_end = fa[:2] + f_rem[[g.j_lo, g.j_hi]]
        self.d_end = (fa[2:4] - fa[4:]) / (2 * eps) + slope[[g.j_lo, g.j_hi]]
        # Below q0 = lo_k: F(q) = F(0) + A q^2 + B q^4 with the exact F(0) and F, dF/dq matched at q0.
        f0 = float(_analytic(np.zeros(1), self.amp, c1, spectrum)[0]) + f0_rem
        df = self.f_end[0] - f0
        b4 = (self.d_end[0] - 2.0 * df) / (2.0 * lo_k**4)
        self.low_coef = (f0, (df - b4 * lo_k**4) / lo_k**2, b4)

    def __call__(self, flat: np.ndarray) -> np.ndarray:
        g = self.grid
        out = np.empty_like(flat)
        lo_k, hi_k = g.k[g.j_lo], g.k[g.j_hi]
        mid = (flat >= lo_k) & (flat <= hi_k)
        if np.any(mid):
            # Cubic Hermite in ln k (C1).
            qm = flat[mid]
            pos = (np.log(qm) - g.lnk[0]) / g.dln
            i = np.clip(np.floor(pos).astype(int), 0, g.n - 2)
            t = pos - i
            t2, t3 = t * t, t * t * t
            f, s = self.f_rem, self.slope
            out[mid] = ((2 * t3 - 3 * t2 + 1) * f[i] + (t3 - 2 * t2 + t) * g.dln * s[i]
                        + (-2 * t3 + 3 * t2) * f[i + 1] + (t3 - t2) * g.dln * s[i + 1]
                        + _analytic(qm, self.amp, self.c1, self.spectrum))
        low = flat < lo_k
        if np.any(low):
            f0, a2, b4 = self.low_coef
            q2 = flat[low] ** 2
            out[low] = f0 + q2 * (a2 + q2 * b4)
        high = flat > hi_k
        if np.any(high):
            out[high] = self.f_end[1] * (flat[high] / hi_k) ** (self.d_end[1] / self.f_end[1])
        return out


@functools.lru_cache(maxsize=64)
def _prepared_cached(spectrum: Spectrum, fractions: tuple, weights: tuple) -> _Prepared:
    return _prepare(spectrum, np.array(fractions), np.array(weights))


def _prepare(spectrum: Spectrum, p: np.ndarray, w: np.ndarray) -> _Prepared:
    levels = ndtri(p)
    c0 = float(sum(w[i] * w[j] * (p[min(i, j)] - p[i] * p[j]) for i in range(p.size) for j in range(p.size)))
    return _Prepared(spectrum, levels, w, c0)


def level_set_curve(q: Any, spectrum: Spectrum, fractions: Any, weights: Any, cache: bool = True) -> np.ndarray:
    """Ensemble-mean scattering F(q a) of the density f(psi) = sum_i w_i 1{psi < Phi^-1(p_i)}.

    Parameters
    ----------
    q
        q a (dimensionless), any shape, finite, >= 0.
    spectrum
        A :class:`~sasview_grf_plugin.spectra.Spectrum` (paper, broad or peaked); a is its length unit.
    fractions
        The cumulative volume fractions p_1 < p_2 < ... below each level, each in (0, 1).
    weights
        The density steps w_i (contrast units).
    cache
        Keep the last 64 parameter sets' grid curves (a fit repeats parameters; reading a cached curve
        at 200 q takes a few tens of microseconds).

    Returns
    -------
    numpy.ndarray
        F with I(q) = a^3 F(q a) per unit volume (contrast^2 x length^3). Exact limits: a finite plateau,
        int q^2 F dq = 2 pi^2 Var f, Porod's law (smooth spectra) or the surface-fractal law (rough ones).
    """
    p = np.atleast_1d(np.asarray(fractions, dtype=np.float64))
    w = np.atleast_1d(np.asarray(weights, dtype=np.float64))
    if p.shape != w.shape or p.ndim != 1 or not np.all((p > 0) & (p < 1)) or np.any(np.diff(p) <= 0):
        raise ValueError(f"fractions must increase strictly within (0, 1), one weight each; got {p}, {w}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"weights (contrasts) must be finite, got {w}")
    qa = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(qa)) or np.any(qa < 0):
        raise ValueError("q must be finite and >= 0")
    if cache:
        prep = _prepared_cached(spectrum, tuple(p.tolist()), tuple(w.tolist()))
    else:
        prep = _prepare(spectrum, p, w)
    return prep(qa.ravel()).reshape(qa.shape)


def two_phase_curve(q: Any, spectrum: Spectrum, porosity: float, cache: bool = True) -> np.ndarray:
    """Level cut of porosity eps, unit contrast: F(q a) (see :func:`level_set_curve`).

    F(eps) = F(1 - eps) (Babinet; exact here: the curve of min(eps, 1 - eps) is computed).
    """
    eps = float(porosity)
    if not 0.0 < eps < 1.0:
        raise ValueError(f"porosity must lie in (0, 1), got {porosity}")
    return level_set_curve(q, spectrum, [min(eps, 1.0 - eps)], [1.0], cache)


def three_phase_curve(q: Any, spectrum: Spectrum, phi_pore: float, phi_layer: float,
                      d_pore: float, d_layer: float, cache: bool = True) -> np.ndarray:
    """Pore {psi < t1}, layer {t1 <= psi < t2}, solid: F(q a) for densities d_pore, d_layer, 0 (solid).

    ``phi_pore`` and ``phi_layer`` are volume fractions (> 0, sum < 1).
    """
    p1, p2 = float(phi_pore), float(phi_pore) + float(phi_layer)
    return level_set_curve(q, spectrum, [p1, p2], [float(d_pore) - float(d_layer), float(d_layer)], cache)
