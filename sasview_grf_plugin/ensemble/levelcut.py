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

from ..spectra import PaperSpectrum, Spectrum, as_spectrum

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


_PAPER = PaperSpectrum()


def _is_paper(spectrum: Spectrum) -> bool:
    return isinstance(spectrum, PaperSpectrum)


def spectral_moment(spectrum: Spectrum | str | None = None) -> float:
    """lambda = -rho''(0) = <(d psi/dx)^2> / var(psi) for a = 1 (``inf`` for a rough field).

    For the paper's spectrum (1/3) int q^4 Gamma / int q^2 Gamma.
    """
    return as_spectrum(spectrum).spectral_moment


def grf_correlation(r: np.ndarray, spectrum: Spectrum | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """rho(r) and 1 - rho(r) of the GRF for a = 1 (r in units of a), float64."""
    return as_spectrum(spectrum).correlation(r)


def _levels(lo_frac: float, hi_frac: float) -> tuple[float, float]:
    if not (0.0 <= lo_frac < hi_frac <= 1.0) or (lo_frac == 0.0 and hi_frac == 1.0):
        raise ValueError(f"need 0 <= lo_frac < hi_frac <= 1 (not the whole space), got {lo_frac}, {hi_frac}")
    return float(ndtri(lo_frac)), float(ndtri(hi_frac))  # -inf / +inf at the ends


def interface_area(lo_frac: float, hi_frac: float | None = None,
                   spectrum: Spectrum | str | None = None) -> float:
    """Interface area per unit volume S of {psi < t(hi)} or of the band between two levels, a = 1.

    Rice's formula: S = (2/pi) sqrt(lambda) exp(-t^2/2) per level. ``interface_area(eps)`` is the
    level cut of porosity eps. ``inf`` for a rough spectrum (lambda = inf).
    """
    if hi_frac is None:
        lo_frac, hi_frac = 0.0, lo_frac
    lam = spectral_moment(spectrum)
    total = 0.0
    for t in _levels(lo_frac, hi_frac):
        if math.isfinite(t):
            total += 2.0 / math.pi * math.sqrt(lam) * math.exp(-0.5 * t * t)
    return total


def _orthant_terms(h: float, k: float, u: np.ndarray) -> np.ndarray:
    # exp(-(h^2 + k^2 - 2 h k sin th) / (2 cos^2 th)) at th = pi/2 - u, written without cancellation:
    # h^2 + k^2 - 2 h k cos u = (h - k)^2 + 4 h k sin^2(u/2), cos^2 th = sin^2 u. Zero for an infinite level.
    if not (math.isfinite(h) and math.isfinite(k)):
        return np.zeros_like(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.exp(-((h - k) ** 2 + 4.0 * h * k * np.sin(0.5 * u) ** 2) / (2.0 * np.sin(u) ** 2))
    return np.where(u > 0, out, 0.0)  # u = 0 only on an empty interval (r = 0): its weight is zero


def band_correlation(r: np.ndarray, lo_frac: float, hi_frac: float,
                     spectrum: Spectrum | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """C(r) = S2(r) - phi^2 of the band {t(lo) <= psi < t(hi)}, and C(0) - C(r); a = 1.

    ``lo_frac = 0`` gives the level cut of porosity ``hi_frac``.
    """
    _levels(lo_frac, hi_frac)
    spec = as_spectrum(spectrum)
    band_drop = _band_drop if _is_paper(spec) else _band_drop_fine
    drop = band_drop(grf_correlation(r, spec)[1], lo_frac, hi_frac)
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


def _band_drop_fine(one_minus: np.ndarray, lo_frac: float, hi_frac: float) -> np.ndarray:
    """As :func:`_band_drop`, to ~1e-13 absolute (general spectra): 24 equal panels of 16-point Gauss-Legendre.

    The low-q curve of a band rests on C(0) - drop cancelling to O(rho^2) at large r, weighted by r^2 out to
    many correlation lengths: the two-panel rule's 1e-9 error there would show at q -> 0.
    """
    t_lo, t_hi = _levels(lo_frac, hi_frac)
    acos = 2.0 * np.arcsin(np.sqrt(np.clip(0.5 * one_minus, 0.0, 1.0)))
    x, w = np.polynomial.legendre.leggauss(16)
    n_pan = 24
    half = 0.5 * acos / n_pan
    drop = np.zeros_like(acos)
    for k in range(n_pan):
        u = (half * (2 * k + 1))[..., None] + half[..., None] * x
        integrand = (_orthant_terms(t_hi, t_hi, u) - 2.0 * _orthant_terms(t_hi, t_lo, u)
                     + _orthant_terms(t_lo, t_lo, u))
        drop += (half[..., None] * w * integrand).sum(-1) / (2.0 * math.pi)
    return drop


def levelcut_correlation(r: np.ndarray, porosity: float,
                         spectrum: Spectrum | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """C(r) = S2(r) - eps^2 of the level cut and C(0) - C(r), for a = 1 (r in units of a)."""
    return band_correlation(r, 0.0, porosity, spectrum)


@functools.lru_cache(maxsize=8)
def _r_rule(spectrum: Spectrum = _PAPER) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Graded towards r = 0 (a thin band's correlation drops over its thickness), then 0.002 a up to
    # r = a and 0.02 a beyond: at q a = 40 a panel spans at most 0.8 rad of sin(q r).
    edges = np.concatenate([np.geomspace(1e-7, 2e-3, 40)[:-1], np.arange(2e-3, 1.0, 2e-3),
                            np.arange(1.0, _R_MAX + 1e-9, 2e-2)])
    r, w = _gauss_legendre(np.concatenate([[0.0], edges]), 8)
    return r, w, grf_correlation(r, spectrum)[1]


@functools.lru_cache(maxsize=512)
def _remainder(lo_frac: float, hi_frac: float) -> tuple[np.ndarray, float, float]:
    """Quadrature weights times C - h, and (amplitude, length) of the exponential h (paper's spectrum)."""
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


_L_GENERAL = 0.5  # length of the exponential that carries C(0) for a general spectrum (units of a)
_Q_GENERAL = 200.0  # general spectra: remainder transformed up to q a = 200, matched power law beyond


@functools.lru_cache(maxsize=256)
def _remainder_general(lo_frac: float, hi_frac: float, spectrum: Spectrum) -> tuple[np.ndarray, float, float]:
    """Weights times C - h - c1 rho, with h = (C0 - c1) exp(-r / l), for any spectrum (rough ones too).

    c1 = (phi(t_hi) - phi(t_lo))^2 is the first Hermite coefficient of the band's indicator, so C - c1 rho
    decays as rho^2 at large r; c1 rho transforms exactly (2 pi^2 Gamma / int q^2 Gamma). The remainder
    vanishes at r = 0 and keeps the cusp (C(0) - C(r) ~ r, or r^alpha for a rough field), which the
    geometrically graded panels near r = 0 resolve.
    """
    r, w, one_minus = _r_rule(spectrum)
    phi = hi_frac - lo_frac
    c0 = phi * (1.0 - phi)
    t_lo, t_hi = _levels(lo_frac, hi_frac)
    dens = [math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi) if math.isfinite(t) else 0.0 for t in (t_lo, t_hi)]
    c1 = (dens[1] - dens[0]) ** 2
    drop = _band_drop_fine(one_minus, lo_frac, hi_frac)
    d = (c0 - c1) * -np.expm1(-r / _L_GENERAL) - drop + c1 * one_minus
    return 4.0 * math.pi * w * r * r * d, c0 - c1, c1


def _general_inner(q: np.ndarray, lo: float, hi: float, spectrum: Spectrum) -> np.ndarray:
    wd, amp, c1 = _remainder_general(lo, hi, spectrum)
    r = _r_rule(spectrum)[0]
    out = 8.0 * math.pi * amp * _L_GENERAL**3 / (1.0 + (q * _L_GENERAL) ** 2) ** 2 + c1 * spectrum.rho_transform(q)
    for start in range(0, q.size, 64):
        out[start:start + 64] += np.sinc(q[start:start + 64, None] * r[None, :] / math.pi) @ wd
    return out


def _band_curve_general(flat: np.ndarray, lo: float, hi: float, spectrum: Spectrum) -> np.ndarray:
    out = np.empty_like(flat)
    inner = flat <= _Q_GENERAL
    out[inner] = _general_inner(flat[inner], lo, hi, spectrum)
    if np.any(~inner):
        # Beyond q a = 200: F (q / q0)^s with F and its log slope s at q0 (the asymptotic power law,
        # q^-4 or q^-(3 + alpha), reached there up to its slow corrections).
        q0 = np.array([_Q_GENERAL, _Q_GENERAL * (1.0 - 1e-4)])
        v = _general_inner(q0, lo, hi, spectrum)
        slope = math.log(v[0] / v[1]) / math.log(q0[0] / q0[1])
        out[~inner] = v[0] * (flat[~inner] / q0[0]) ** slope
    return out


def band_curve(q: np.ndarray, lo_frac: float, hi_frac: float, spectrum: Spectrum | str | None = None) -> np.ndarray:
    """Ensemble-mean scattering F(q a) of the band {t(lo) <= psi < t(hi)}, unit contrast, a = 1.

    Parameters
    ----------
    q
        Wave numbers in units of 1/a (q a), any shape, q >= 0.
    lo_frac, hi_frac
        Volume fractions below the band's two levels (0 <= lo < hi <= 1); ``lo_frac = 0`` is the level
        cut of porosity ``hi_frac``.
    spectrum
        The GRF's spectrum (:mod:`sasview_grf_plugin.spectra`; default the paper's). For the paper's, the
        exponential subtraction carries Porod's law exactly; for the others, the remainder is transformed
        by quadrature up to q a = 200 and continued beyond by its local power law.

    Returns
    -------
    numpy.ndarray
        F with I(q) = a^3 F(q a). Exact properties: F(0) finite, F ~ 2 pi S / q^4 at high q (smooth
        spectra), int q^2 F dq = 2 pi^2 phi (1 - phi) with phi = hi - lo.
    """
    lo, hi = float(lo_frac), float(hi_frac)
    _levels(lo, hi)
    if lo == 0.0 and hi > 0.5:
        hi = 1.0 - hi  # level cut: exact symmetry t -> -t, one cache entry for both
    qa = np.asarray(q, dtype=np.float64)
    if np.any(~np.isfinite(qa)) or np.any(qa < 0):
        raise ValueError("q must be finite and >= 0")
    flat = qa.ravel()
    spec = as_spectrum(spectrum)
    if not _is_paper(spec):
        return _band_curve_general(flat, lo, hi, spec).reshape(qa.shape)
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


def levelcut_curve(q: np.ndarray, porosity: float, spectrum: Spectrum | str | None = None) -> np.ndarray:
    """Ensemble-mean scattering F(q a) of the level cut of porosity eps (see :func:`band_curve`).

    F(eps) = F(1 - eps) (Babinet).
    """
    eps = float(porosity)
    if not 0.0 < eps < 1.0:
        raise ValueError(f"porosity must lie in (0, 1), got {porosity}")
    return band_curve(q, 0.0, eps, spectrum)


def porod_invariant(phi: float) -> float:
    """2 pi^2 phi (1 - phi): int_0^inf q^2 F(q) dq of an indicator of volume fraction phi."""
    return 2.0 * math.pi**2 * phi * (1.0 - phi)
