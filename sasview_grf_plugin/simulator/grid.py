"""Geometry of the periodic reciprocal grid in the ``rfftn`` half-space layout.

On an N^3 periodic grid of voxel size dx, the wave vectors are
q_ijk = dq (i, j, k) with dq = 2 pi / (N dx) and i, j, k the signed FFT
frequencies (paper Eq. 2). Hence |q_ijk|^2 = dq^2 s with the integer
s = i^2 + j^2 + k^2: every radial quantity (the GRF filter, the Gaussian
smoothing kernel, the shell weights of the spherical average) is a function
of s alone. This module caches the s table of the half-space array and sums
half-space values over the full grid shell by shell.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends import Backend

__all__ = ["FourierGrid", "fourier_grid", "max_shell", "shell_counts"]


def max_shell(n: int) -> int:
    """Largest s = i^2 + j^2 + k^2 on an n^3 grid (the cube's corner)."""
    return 3 * (n // 2) ** 2


def shell_counts(n: int) -> np.ndarray:
    """Number of full-grid wave vectors on each shell s = i^2 + j^2 + k^2 (float64, length s_max+1).

    Exact integers: the per-axis counts of i^2 convolved three times.
    """
    f2 = np.minimum(np.arange(n), n - np.arange(n)) ** 2
    axis = np.bincount(f2, minlength=(n // 2) ** 2 + 1)
    return np.convolve(np.convolve(axis, axis), axis).astype(np.float64)


@dataclass(frozen=True, eq=False)
class FourierGrid:
    """Cached tables of an n^3 grid for one backend.

    Attributes
    ----------
    n
        Grid size.
    shell
        Backend integer array (n, n, n//2+1): s for each half-space entry (``None`` on backends
        with ``native_stages``, whose kernels compute s from the index).
    counts
        NumPy float64 (s_max+1,): number of full-grid wave vectors in each shell.
    """

    n: int
    backend: Backend
    shell: Any
    counts: np.ndarray

    @property
    def s_max(self) -> int:
        return max_shell(self.n)

    @property
    def edge_columns(self) -> tuple[int, ...]:
        # Columns of the half-space that stand for themselves only: k = 0 and, for even n,
        # the Nyquist column k = n/2. Every other column also stands for its mirror -k.
        return (0, self.n // 2) if self.n % 2 == 0 else (0,)

    def lookup(self, table: np.ndarray, dtype: Any) -> Any:
        """Gather a per-shell table (length s_max+1) onto the half-space grid."""
        xp = self.backend.xp
        return xp.take(xp.asarray(table, dtype=dtype), self.shell)

    def shell_sums(self, values: Any, squared_magnitude: bool = False) -> np.ndarray:
        """Sum half-space ``values`` over the full grid, shell by shell.

        ``values`` must be the half-space part of a field with v(-q) = v(q) (e.g. a
        power spectrum), shape (n, n, n//2+1); with ``squared_magnitude`` the sums
        are of |values|^2 (for a complex spectrum, without a full-size temporary).
        Returns NumPy float64 (s_max+1,).
        """
        be = self.backend
        if be.native_stages:
            return be.shell_sums(values, squared_magnitude)
        xp = be.xp
        m = self.s_max + 1

        def slab(_k: int, lo: int, hi: int) -> Any:
            v = values[lo:hi]
            if squared_magnitude:
                v = v.real**2 + v.imag**2
            shell = self.shell[lo:hi]
            sums = 2.0 * xp.bincount(shell.ravel(), weights=v.ravel(), minlength=m)
            for c in self.edge_columns:
                sums -= xp.bincount(shell[..., c].ravel(), weights=v[..., c].ravel(), minlength=m)
            return sums

        total = sum(be.map_slabs(slab, self.n))
        return be.to_numpy(total).astype(np.float64, copy=False)


@functools.lru_cache(maxsize=8)
def _grid(backend: Backend, n: int) -> FourierGrid:
    if backend.native_stages:
        return FourierGrid(n=n, backend=backend, shell=None, counts=shell_counts(n))
    xp = backend.xp
    freq = np.fft.fftfreq(n, 1.0 / n).astype(np.int64)  # signed integer frequencies
    half = np.arange(n // 2 + 1, dtype=np.int64)
    f2 = xp.asarray(freq**2)
    h2 = xp.asarray(half**2)
    itype = np.intp if backend.name == "numpy" else np.int32
    shell = (f2[:, None, None] + f2[None, :, None] + h2[None, None, :]).astype(itype)
    grid = FourierGrid(n=n, backend=backend, shell=shell, counts=np.empty(0))
    counts = grid.shell_sums(xp.ones(shell.shape, dtype=np.float64))
    object.__setattr__(grid, "counts", np.rint(counts))
    return grid


def fourier_grid(backend: Backend, n: int) -> FourierGrid:
    """The cached :class:`FourierGrid` of an n^3 grid on ``backend``."""
    return _grid(backend, int(n))
