"""A plain, literal NumPy/SciPy implementation of the simulator: the benchmark's baseline.

Every step is written the way the paper (Röding et al. 2022, sections 2.1-2.2) states it, with the
obvious library call and no tricks, in float64 (NumPy's FFT is double precision):

1. real white noise W ~ N(0, 1) on the N^3 grid, ``np.fft.fftn``, multiplication by sqrt(Gamma) with
   Gamma(q) = (1 + (a|q|)^8)^-2 and q = 2 pi fftfreq(N, dx) per axis, ``np.fft.ifftn(...).real`` (Eqs. 6-7);
2. psi' = psi > T with T = ``np.quantile(psi, eps)`` (Eq. 8);
3. psi'' = ``scipy.ndimage.gaussian_filter(psi', sigma=2, mode='wrap')`` (periodic smoothing);
4. densities 0 / 0.65 / 1 split at ``np.quantile(psi'', eps (1 - nu))`` and ``np.quantile(psi'', eps)``
   (Eqs. 9-10);
5. I(q_ijk) = dx^3 / N^3 |``np.fft.fftn(rho)``|^2 (Eq. 1, intensity per unit volume);
6. the spherical average of Eqs. 3-4 on the N^3 array folded into the (N/2 + 1)^3 octant of
   |i|, |j|, |k| (the weights depend on |q_ijk| only, so mirrored points are summed), one q at a time,
   vectorized over the octant: w = exp(-2 ((|q_ijk| - q) / dq)^2) / |q_ijk|^2, w(0) = 0, normalized to
   sum 1 over the full grid, dq = 2 pi / (N dx).

Units: lengths in nm, wave numbers in nm^-1. It is deliberately unoptimized but correct: the benchmark
checks :func:`plain_reduce` against the package's ``scattering_curve`` before timing anything.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

__all__ = ["plain_structure", "plain_reduce", "plain_simulate_curve"]

DENSITIES = (0.0, 0.65, 1.0)
SIGMA = 2.0


def _check_even(n: int) -> None:
    if n % 2:
        raise ValueError(f"the plain implementation follows paper Eq. 2 and needs an even N, got {n}")


def plain_structure(N: int, dx: float, a: float, eps: float, nu: float, seed: int) -> np.ndarray:
    """Three-phase density field rho (float64, N^3) of paper Eqs. 6-10; two phases for nu = 0."""
    _check_even(N)
    rng = np.random.default_rng(seed)
    # Eqs. 6-7: psi = F^-1 Gamma^1/2 F W.
    w = rng.standard_normal((N, N, N))
    q1 = 2 * np.pi * np.fft.fftfreq(N, d=dx)
    qx, qy, qz = np.meshgrid(q1, q1, q1, indexing="ij")
    qabs = np.sqrt(qx**2 + qy**2 + qz**2)
    gamma = (1 + (a * qabs) ** 8) ** -2.0
    psi = np.fft.ifftn(np.fft.fftn(w) * np.sqrt(gamma)).real
    # Eq. 8: psi' = 1 above the eps-quantile.
    binary = (psi > np.quantile(psi, eps)).astype(np.float64)
    # Periodic 3D Gaussian smoothing, sigma = 2 voxels.
    smooth = scipy.ndimage.gaussian_filter(binary, sigma=SIGMA, mode="wrap")
    # Eqs. 9-10.
    t1 = np.quantile(smooth, eps * (1 - nu))
    t2 = np.quantile(smooth, eps)
    rho = np.full((N, N, N), DENSITIES[2])
    rho[smooth <= t2] = DENSITIES[1]
    rho[smooth <= t1] = DENSITIES[0]
    return rho


def _fold(x: np.ndarray) -> np.ndarray:
    """Sum an N^3 array in FFT order over the mirror images (i, j, k) -> (|i|, |j|, |k|): (N/2+1)^3."""
    n = x.shape[0]
    h = n // 2
    for axis in range(3):
        x = np.moveaxis(x, axis, 0)
        folded = np.empty((h + 1,) + x.shape[1:], dtype=x.dtype)
        folded[0] = x[0]  # frequency 0
        folded[1:h] = x[1:h] + x[n - 1 : h : -1]  # frequencies +m and -m, m = 1 .. N/2-1
        folded[h] = x[h]  # frequency -N/2 (no +N/2 partner)
        x = np.moveaxis(folded, 0, axis)
    return x


def plain_reduce(rho: np.ndarray, dx: float, q: np.ndarray) -> np.ndarray:
    """I(q) of a real (N, N, N) density by paper Eqs. 1-4, folded octant, one q at a time (float64)."""
    rho = np.asarray(rho, dtype=np.float64)
    n = rho.shape[0]
    _check_even(n)
    q = np.asarray(q, dtype=np.float64)
    i3 = dx**3 / n**3 * np.abs(np.fft.fftn(rho)) ** 2
    folded = _fold(i3)
    mult = _fold(np.ones_like(i3))  # number of grid points behind each octant entry
    dq = 2 * np.pi / (n * dx)
    m = np.arange(n // 2 + 1)
    mx, my, mz = np.meshgrid(m, m, m, indexing="ij")
    qabs = dq * np.sqrt(mx**2 + my**2 + mz**2)
    nonzero = qabs > 0
    inv_q2 = np.zeros_like(qabs)
    inv_q2[nonzero] = 1.0 / qabs[nonzero] ** 2
    out = np.empty(q.size)
    for iq, qv in enumerate(q):
        w = np.exp(-2 * ((qabs - qv) / dq) ** 2) * inv_q2  # zero at q_ijk = 0
        out[iq] = np.sum(w * folded) / np.sum(w * mult)
    return out


def plain_simulate_curve(N: int, dx: float, q: np.ndarray, a: float, eps: float, nu: float,
                         seed: int) -> np.ndarray:
    """Structure and SAXS curve of one sample, all steps plain NumPy/SciPy (float64)."""
    return plain_reduce(plain_structure(N, dx, a, eps, nu, seed), dx, q)
