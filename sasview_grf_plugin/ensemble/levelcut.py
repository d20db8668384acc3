"""Exact ensemble means of level sets of the GRF: the level cut and the band between two levels.

With sigma = 0 the paper's two-phase structure is the classical level cut (clipped Gaussian
field, Berk 1987; Teubner 1991): pore = {x : psi(x) < t} with t = Phi^-1(eps). Its two-point
function follows from the normalized GRF correlation

    rho(r) = g(r) / g(0),   g(r) = (1 / 2 pi^2) int_0^inf q^2 Gamma(q) sinc(q r) dq,
    Gamma(q) = (1 + (a q)^8)^-2.

For indicators of {psi < h} and {psi < k} the covariance is the bivariate normal integral

    C_hk(r) = (1 / 2 pi) int_0^{arcsin rho(r)} exp(-(h^2 + k^2 - 2 h k sin th) / (2 cos^2 th)) d th,

(h = k: Berk's formula). A band {t_lo <= psi < t_hi} (volume fraction phi_hi - phi_lo) has
C_band = C_hh - 2 C_hl + C_ll, evaluated as one integral of the second difference. The
scattering per unit volume of unit contrast is F(q) = 4 pi int r^2 C(r) sinc(q r) dr.

Everything here is dimensionless (lengths in units of a, wave numbers in 1/a): a structure with
scaling parameter a scatters a^3 F(q a). These curves are the control variates of the table build
(:mod:`.build`) and the sigma = 0 two-phase model itself.

Numerics (float64, NumPy/SciPy only):

* 1 - rho(r) directly (no cancellation at small r) by composite Gauss-Legendre over q in
  [0, 8/a], where Gamma < 4e-15.
* C(0) - C(r) by Gauss-Legendre over theta in [arcsin rho, pi/2] (accurate at small r).
* An exponential h(r) = A exp(-r / l) with C's slope at r = 0, A / l = S / 4 (S the interface area
  per volume, Rice's formula S = (2/pi) sqrt(lambda) exp(-t^2/2) per level, lambda = -rho''(0)),
  l = min(C(0) / (S/4), a/2); its transform 8 pi A l^3 / (1 + q^2 l^2)^2 is exact and carries
  Porod's law. The remainder C - h is transformed on a composite Gauss-Legendre rule in r
  (panels graded from 1e-7 a, 0.002 a wide up to a, 0.02 a up to 60 a, where |rho| < 1e-9) up
  to q a = 40, and continued as A q^-6 + B q^-8 beyond (the next terms of the asymptotic series of
  a smooth interface), matched in value and slope. A band thinner than about a/40 is still in its
  thin-sheet regime at q a = 40: its curve is then too low above that q (the layer's own
  scattering there is below the pore's and solid's Porod scattering by about (q d)^2).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import ndtri

from ..simulator.structure import spectral_density

__all__ = [
    "levelcut_curve",
    "band_curve",
    "band_correlation",
    "levelcut_correlation",
    "grf_correlation",
    "interface_area",
    "spectral_moment",
    "porod_invariant",
]

_Q_CUT = 8.0  # Gamma(8/a) = 8^-16 ~ 3.6e-15: the GRF spectrum is negligible beyond
_R_MAX = 60.0  # |rho(60 a)| < 1e-9
_Q_EXACT = 40.0  # remainder transformed numerically up to q a = 40, q^-6 beyond


def _gauss_legendre(edges: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(order)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    return (mid[:, None] + half[:, None] * x[None, :]).ravel(), (half[:, None] * w[None, :]).ravel()


@functools.lru_cache(maxsize=1)
def _q_rule() -> tuple[np.ndarray, np.ndarray]:
    # Panels of 0.005/a: sinc(q r) changes by at most 0.3 rad per panel out to r = 60 a.
    q, w = _gauss_legendre(np.linspace(0.0, _Q_CUT, 1601), 8)
    return q, w * q * q * spectral_density(q, 1.0)


def _one_minus_sinc(x: np.ndarray) -> np.ndarray:
    small = np.abs(x) < 0.1
    out = np.empty_like(x)
    xs = x[small] ** 2
    out[small] = xs / 6.0 * (1.0 - xs / 20.0 * (1.0 - xs / 42.0 * (1.0 - xs / 72.0)))
    xl = x[~small]
    out[~small] = 1.0 - np.sin(xl) / xl
    return out


def spectral_moment() -> float:
    """lambda = -rho''(0) = <(d psi/dx)^2> / var(psi) for a = 1: (1/3) int q^4 Gamma / int q^2 Gamma."""
    q, w = _q_rule()
    return float(np.sum(w * q * q) / (3.0 * np.sum(w)))


def grf_correlation(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rho(r) and 1 - rho(r) of the GRF for a = 1 (r in units of a), float64."""
    r = np.asarray(r, dtype=np.float64)
    q, w = _q_rule()
    norm = np.sum(w)
    flat = r.ravel()
    one_minus = np.empty_like(flat)
    for lo in range(0, flat.size, 1024):  # blocks keep the (r, q) matrix small
        block = flat[lo:lo + 1024]
        one_minus[lo:lo + 1024] = _one_minus_sinc(block[:, None] * q[None, :]) @ w / norm
    one_minus = one_minus.reshape(r.shape)
    return 1.0 - one_minus, one_minus


def _levels(lo_frac: float, hi_frac: float) -> tuple[float, float]:
    if not (0.0 <= lo_frac < hi_frac <= 1.0) or (lo_frac == 0.0 and hi_frac == 1.0):
        raise ValueError(f"need 0 <= lo_frac < hi_frac <= 1 (not the whole space), got {lo_frac}, {hi_frac}")
    return float(ndtri(lo_frac)), float(ndtri(hi_frac))  # -inf / +inf at the ends


def interface_area(lo_frac: float, hi_frac: float | None = None) -> float:
    """Interface area per unit volume S of {psi < t(hi)} or of the band between two levels, a = 1.

    Rice's formula: S = (2/pi) sqrt(lambda) exp(-t^2/2) per level. ``interface_area(eps)`` is the
    level cut of porosity eps.
    """
    if hi_frac is None:
        lo_frac, hi_frac = 0.0, lo_frac
    total = 0.0
    for t in _levels(lo_frac, hi_frac):
        if math.isfinite(t):
            total += 2.0 / math.pi * math.sqrt(spectral_moment()) * math.exp(-0.5 * t * t)
    return total


def _orthant_terms(h: float, k: float, u: np.ndarray) -> np.ndarray:
    # exp(-(h^2 + k^2 - 2 h k sin th) / (2 cos^2 th)) at th = pi/2 - u, written without cancellation:
    # h^2 + k^2 - 2 h k cos u = (h - k)^2 + 4 h k sin^2(u/2), cos^2 th = sin^2 u. Zero for an infinite level.
    if not (math.isfinite(h) and math.isfinite(k)):
        return np.zeros_like(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.exp(-((h - k) ** 2 + 4.0 * h * k * np.sin(0.5 * u) ** 2) / (2.0 * np.sin(u) ** 2))
    return np.where(u > 0, out, 0.0)  # u = 0 only on an empty interval (r = 0): its weight is zero


def band_correlation(r: np.ndarray, lo_frac: float, hi_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """C(r) = S2(r) - phi^2 of the band {t(lo) <= psi < t(hi)}, and C(0) - C(r); a = 1.

    ``lo_frac = 0`` gives the level cut of porosity ``hi_frac``.
    """
    _levels(lo_frac, hi_frac)
    drop = _band_drop(grf_correlation(r)[1], lo_frac, hi_frac)
    phi = hi_frac - lo_frac
    return phi * (1.0 - phi) - drop, drop


def _band_drop(one_minus: np.ndarray, lo_frac: float, hi_frac: float) -> np.ndarray:
    t_lo, t_hi = _levels(lo_frac, hi_frac)
    acos = 2.0 * np.arcsin(np.sqrt(np.clip(0.5 * one_minus, 0.0, 1.0)))  # arccos(rho), no cancellation
    # Integrate over u = pi/2 - theta in [0, arccos rho]. For a band the cross term switches on over
    # u ~ |t_hi - t_lo|: a separate Gauss-Legendre panel resolves that (thin layers).
    x, w = np.polynomial.legendre.leggauss(48)
    gap = abs(t_hi - t_lo) if math.isfinite(t_hi - t_lo) else math.inf
    split = np.minimum(acos, 8.0 * gap) if math.isfinite(gap) else acos
    drop = np.zeros_like(acos)
    for lo, hi in ((np.zeros_like(acos), split), (split, acos)):
        half = 0.5 * (hi - lo)
        u = (lo + half)[..., None] + half[..., None] * x
        integrand = (_orthant_terms(t_hi, t_hi, u) - 2.0 * _orthant_terms(t_hi, t_lo, u)
                     + _orthant_terms(t_lo, t_lo, u))
        drop += (half[..., None] * w * integrand).sum(-1) / (2.0 * math.pi)
    return drop


def levelcut_correlation(r: np.ndarray, porosity: float) -> tuple[np.ndarray, np.ndarray]:
    """C(r) = S2(r) - eps^2 of the level cut and C(0) - C(r), for a = 1 (r in units of a)."""
    return band_correlation(r, 0.0, porosity)


@functools.lru_cache(maxsize=1)
def _r_rule() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Graded towards r = 0 (a thin band's correlation drops over its thickness), then 0.002 a up to
    # r = a and 0.02 a beyond: at q a = 40 a panel spans at most 0.8 rad of sin(q r).
    edges = np.concatenate([np.geomspace(1e-7, 2e-3, 40)[:-1], np.arange(2e-3, 1.0, 2e-3),
                            np.arange(1.0, _R_MAX + 1e-9, 2e-2)])
    r, w = _gauss_legendre(np.concatenate([[0.0], edges]), 8)
    return r, w, grf_correlation(r)[1]


@functools.lru_cache(maxsize=512)
def _remainder(lo_frac: float, hi_frac: float) -> tuple[np.ndarray, float, float]:
    """Quadrature weights times C - h, and (amplitude, length) of the exponential h."""
    r, w, one_minus = _r_rule()
    phi = hi_frac - lo_frac
    c0 = phi * (1.0 - phi)
    slope = interface_area(lo_frac, hi_frac) / 4.0  # -C'(0)
    # h = A exp(-r / l) with A / l = -C'(0): C - h then has no linear term at r = 0 (no cusp). A short l
    # (at most a/2) keeps h's tail below 1e-50 at r = 60 a, where the quadrature stops.
    length = min(c0 / slope, 0.5)
    amp = slope * length
    drop = _band_drop(one_minus, lo_frac, hi_frac)
    # C - h = (C0 - A) + A (1 - exp(-r/l)) - (C0 - C): accurate at small r.
    d = (c0 - amp) + amp * -np.expm1(-r / length) - drop
    return 4.0 * math.pi * w * r * r * d, amp, length


def _tail(lo: float, hi: float, q: np.ndarray) -> np.ndarray:
    # The remainder beyond q a = 40 as A q^-6 + B q^-8, matched in value and slope at 40 (a kink there
    # would make interpolating splines ring).
    wd = _remainder(lo, hi)[0]
    r = _r_rule()[0]
    q0, q1 = _Q_EXACT, _Q_EXACT * (1.0 - 1e-4)
    v0, v1 = (float(np.sinc(x * r / math.pi) @ wd) for x in (q0, q1))
    dv = (v0 - v1) / (q0 - q1)  # d remainder / dq at q0
    # A q0^-6 + B q0^-8 = v0;  -6 A q0^-7 - 8 B q0^-9 = dv
    m = np.array([[q0**-6, q0**-8], [-6.0 * q0**-7, -8.0 * q0**-9]])
    a_coef, b_coef = np.linalg.solve(m, [v0, dv])
    return a_coef * q**-6 + b_coef * q**-8


@functools.lru_cache(maxsize=1)
def _sinc_matrix(q_bytes: bytes) -> np.ndarray:
    # Reused when many curves are evaluated on the same q (the table build).
    q = np.frombuffer(q_bytes, dtype=np.float64)
    return np.sinc(q[:, None] * _r_rule()[0][None, :] / math.pi)


def band_curve(q: np.ndarray, lo_frac: float, hi_frac: float) -> np.ndarray:
    """Ensemble-mean scattering F(q a) of the band {t(lo) <= psi < t(hi)}, unit contrast, a = 1.

    Parameters
    ----------
    q
        Wave numbers in units of 1/a (q a), any shape, q >= 0.
    lo_frac, hi_frac
        Volume fractions below the band's two levels (0 <= lo < hi <= 1); ``lo_frac = 0`` is the level
        cut of porosity ``hi_frac``.

    Returns
    -------
    numpy.ndarray
        F with I(q) = a^3 F(q a). Exact properties: F(0) finite, F ~ 2 pi S / q^4 at high q,
        int q^2 F dq = 2 pi^2 phi (1 - phi) with phi = hi - lo.
    """
    lo, hi = float(lo_frac), float(hi_frac)
    _levels(lo, hi)
    if lo == 0.0 and hi > 0.5:
        hi = 1.0 - hi  # level cut: exact symmetry t -> -t, one cache entry for both
    qa = np.asarray(q, dtype=np.float64)
    if np.any(~np.isfinite(qa)) or np.any(qa < 0):
        raise ValueError("q must be finite and >= 0")
    flat = qa.ravel()
    wd, amp, length = _remainder(lo, hi)
    r = _r_rule()[0]
    out = 8.0 * math.pi * amp * length**3 / (1.0 + (flat * length) ** 2) ** 2
    inner = flat <= _Q_EXACT
    idx = np.flatnonzero(inner)
    if 0 < idx.size <= 512:
        out[idx] += _sinc_matrix(flat[idx].tobytes()) @ wd
    else:
        for start in range(0, idx.size, 64):
            block = idx[start:start + 64]
            out[block] += np.sinc(flat[block, None] * r[None, :] / math.pi) @ wd
    if np.any(~inner):
        out[~inner] += _tail(lo, hi, flat[~inner])
    return out.reshape(qa.shape)


def levelcut_curve(q: np.ndarray, porosity: float) -> np.ndarray:
    """Ensemble-mean scattering F(q a) of the level cut of porosity eps (see :func:`band_curve`).

    F(eps) = F(1 - eps) (Babinet).
    """
    eps = float(porosity)
    if not 0.0 < eps < 1.0:
        raise ValueError(f"porosity must lie in (0, 1), got {porosity}")
    return band_curve(q, 0.0, eps)


def porod_invariant(phi: float) -> float:
    """2 pi^2 phi (1 - phi): int_0^inf q^2 F(q) dq of an indicator of volume fraction phi."""
    return 2.0 * math.pi**2 * phi * (1.0 - phi)
