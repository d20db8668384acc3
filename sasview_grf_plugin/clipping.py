"""Non-parametric route (as in SAXS-Morph): the GRF correlation behind a two-phase curve, by inverting the
clipping relation.

A level cut {psi < t} of a Gaussian random field of normalized correlation rho(r), at porosity phi
(t = Phi^-1(phi)), has the two-point function C(r) = phi (1 - phi) - D(1 - rho(r)), where D is Berk's
bivariate-normal integral (``ensemble.levelcut``), increasing in 1 - rho. A measured curve gives the
structure's normalized correlation function

    gamma(r) = int q^2 I(q) sinc(q r) dq / int q^2 I(q) dq  =  C(r) / C(0),

so rho(r) follows point by point from D(1 - rho) = phi (1 - phi) (1 - gamma(r)), for a porosity given by the
user (the curve alone does not fix it). The curve is continued flat below its first point and by Porod's
law A / q^4 above its last (A from its last points), both integrated in closed form.

Units: q in 1/Å, r in Å; the intensity's unit cancels (background subtracted first).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["correlation_function", "clipping_inversion", "spectrum_from_correlation"]


def _tail_integral(x: np.ndarray) -> np.ndarray:
    """int_x^inf sin(t) / t^3 dt (by parts, with the sine integral)."""
    from scipy.special import sici

    si, _ = sici(x)
    return np.sin(x) / (2 * x**2) + np.cos(x) / (2 * x) - 0.5 * (0.5 * math.pi - si)


def correlation_function(q: Any, intensity: Any, r: Any, tail_fraction: float = 0.2) -> np.ndarray:
    """Normalized correlation function gamma(r) (gamma(0) = 1) of a background-free curve I(q).

    Below the first point I is continued flat, above the last by A / q^4 with A the median of I q^4 over the
    last ``tail_fraction`` of the points; the data part is integrated by the trapezoidal rule.
    """
    q = np.asarray(q, dtype=np.float64)
    y = np.asarray(intensity, dtype=np.float64)
    r = np.atleast_1d(np.asarray(r, dtype=np.float64))
    order = np.argsort(q)
    q, y = q[order], y[order]
    if q.size < 10 or np.any(q <= 0) or not np.all(np.isfinite(y)):
        raise ValueError("need at least 10 finite points at q > 0")
    if np.any(y <= 0):
        raise ValueError("the curve must be positive everywhere (subtract a smaller background)")
    if np.any(r <= 0):
        raise ValueError("r must be > 0")
    n_tail = max(3, int(tail_fraction * q.size))
    porod = float(np.median(y[-n_tail:] * q[-n_tail:] ** 4))
    q0, y0, qm = q[0], y[0], q[-1]
    invariant = y0 * q0**3 / 3.0 + np.trapezoid(q**2 * y, q) + porod / qm
    low = y0 * (np.sin(q0 * r) - q0 * r * np.cos(q0 * r)) / r**3
    data = np.array([np.trapezoid(q**2 * y * np.sinc(q * ri / math.pi), q) for ri in r])
    tail = porod * r * _tail_integral(qm * r)
    return (low + data + tail) / invariant


def clipping_inversion(q: Any, intensity: Any, porosity: float, r: Any) -> tuple[np.ndarray, np.ndarray]:
    """The GRF correlation rho(r) whose level cut at ``porosity`` has the curve's correlation function.

    Returns
    -------
    (gamma, rho)
        The curve's normalized correlation function and the GRF correlation, at ``r`` (Å). Where gamma lies
        outside what a level cut of this porosity can have, rho is clipped to [-1, 1].
    """
    from .ensemble.levelcut import _band_drop

    phi = float(porosity)
    if not 0.0 < phi < 1.0:
        raise ValueError(f"porosity must lie in (0, 1), got {porosity}")
    gamma = correlation_function(q, intensity, r)
    one_minus = np.linspace(0.0, 2.0, 4001)
    drop = _band_drop(one_minus, 0.0, phi)  # C(0) - C(r) against 1 - rho, increasing
    target = phi * (1.0 - phi) * (1.0 - gamma)
    rho = 1.0 - np.interp(target, drop, one_minus)
    return gamma, rho


def spectrum_from_correlation(r: Any, rho: Any, k: Any) -> np.ndarray:
    """Spectral density Gamma(k) = 4 pi int r^2 rho(r) sinc(k r) dr of a correlation tabulated on ``r``.

    ``r`` must start near 0 and reach where rho has decayed; rho is tapered to zero over the last fifth of
    the range (a cosine), which limits the ringing of the truncation. Negative values (a rho that no GRF
    has, from noise or a model mismatch) are set to zero, so the result is a valid spectrum.
    """
    r = np.asarray(r, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    k = np.atleast_1d(np.asarray(k, dtype=np.float64))
    if r.ndim != 1 or r.shape != rho.shape or r.size < 10 or np.any(np.diff(r) <= 0):
        raise ValueError("r must be increasing and as long as rho (at least 10 points)")
    r_cut = r[0] + 0.8 * (r[-1] - r[0])
    taper = np.where(r < r_cut, 1.0, 0.5 * (1 + np.cos(math.pi * (r - r_cut) / (r[-1] - r_cut))))
    f = r**2 * rho * taper
    out = np.array([4 * math.pi * np.trapezoid(f * np.sinc(ki * r / math.pi), r) for ki in k])
    return np.maximum(out, 0.0)
