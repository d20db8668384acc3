"""SAXS intensity of a periodic density field (paper Eqs. 1-4).

Units: voxel size in nm, q in nm^-1; the intensity is per unit volume,
I(q_ijk) = dx^3 / N^3 |FFT(rho)_ijk|^2, in units of rho^2 nm^3 (rho
dimensionless as in the paper). With this normalization the Porod invariant
holds: integral of q^2 I(q) dq = 2 pi^2 var(rho).

The spherical average (Eqs. 3-4) weighs each grid point by
exp(-2 ((|q_ijk| - q) / dq)^2) / |q_ijk|^2, zero at q = 0, normalized to sum 1,
dq = 2 pi / (N dx). Because |q_ijk|^2 = dq^2 s with integer s, the sum is done
exactly in two steps: sum I over each shell s (one pass over the rfft half-space),
then a small sparse matrix of per-shell weights maps shell sums to I(q).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .backends import Backend, get_backend
from .grid import FourierGrid, fourier_grid, max_shell

__all__ = ["scattering_curve", "radial_power_spectrum", "shell_weights", "shell_intensity", "reduce_shells"]

# Window half-width, in units of dq, beyond which a weight is below exp(-2 * 9^2) ~ 1e-70
# of the window's largest: zero to double precision.
_WINDOW = 9.0


def _as_q(q: Any) -> np.ndarray:
    qa = np.atleast_1d(np.asarray(q, dtype=np.float64))
    if qa.ndim != 1:
        raise ValueError(f"q must be a scalar or a 1-D array, got shape {qa.shape}")
    if qa.size == 0:
        raise ValueError("q is empty")
    if not np.all(np.isfinite(qa)):
        raise ValueError("q contains NaN or infinite values")
    if np.any(qa < 0):
        raise ValueError(f"q must be >= 0 (nm^-1), got a minimum of {qa.min()}")
    return qa


def _check_voxel_size(voxel_size: Any) -> float:
    try:
        dx = float(voxel_size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"voxel_size must be a number (nm), got {voxel_size!r}") from exc
    if not (math.isfinite(dx) and dx > 0):
        raise ValueError(f"voxel_size must be a finite number > 0 (nm), got {voxel_size!r}")
    return dx


@functools.lru_cache(maxsize=32)
def _weights_cached(n: int, q_over_dq: bytes) -> Any:
    import scipy.sparse

    c = np.frombuffer(q_over_dq, dtype=np.float64)
    s_max = max_shell(n)
    r_max = math.sqrt(s_max)
    # Beyond the cube's corner the nearest shells dominate: centre the window there.
    c_eff = np.minimum(c, r_max)
    lo = np.maximum(np.ceil(np.maximum(c_eff - _WINDOW, 0.0) ** 2), 1).astype(np.int64)
    hi = np.minimum(np.floor((c_eff + _WINDOW) ** 2), s_max).astype(np.int64)
    lengths = hi - lo + 1
    rows = np.repeat(np.arange(c.size), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cols = np.repeat(lo, lengths) + offsets
    r = np.sqrt(cols.astype(np.float64))
    expo = -2.0 * (r - c[rows]) ** 2 - 2.0 * np.log(r)  # log of exp(-2 x^2) / s
    # Subtract each row's maximum so that no row underflows, whatever its q.
    row_max = np.full(c.size, -np.inf)
    np.maximum.at(row_max, rows, expo)
    w = np.exp(expo - row_max[rows])
    return scipy.sparse.csr_matrix((w, (rows, cols)), shape=(c.size, s_max + 1))


def shell_weights(n: int, voxel_size: float, q: Any) -> Any:
    """Sparse (len(q), s_max+1) matrix of unnormalized Eq. 4 weights per shell s.

    Row i holds exp(-2 (sqrt(s) - q_i/dq)^2) / s up to a constant factor per row
    (which cancels in the normalization); entries below 1e-70 of the row's largest
    are dropped. Cached by grid size and q/dq.
    """
    dx = _check_voxel_size(voxel_size)
    qa = _as_q(q)
    dq = 2.0 * math.pi / (int(n) * dx)
    return _weights_cached(int(n), np.ascontiguousarray(qa / dq).tobytes())


def reduce_shells(grid_size: int, voxel_size: float, q: Any, shell_sums: np.ndarray,
                  counts: np.ndarray) -> np.ndarray:
    """Eqs. 3-4 from per-shell sums of I(q_ijk) and per-shell point counts."""
    w = shell_weights(grid_size, voxel_size, q)
    return (w @ shell_sums) / (w @ counts)


def _array_backend(x: Any) -> str:
    """The backend an array belongs to, by its type's module."""
    module = type(x).__module__
    if module.startswith("cupy"):
        return "cupy"
    if module.startswith("pyopencl"):
        return "opencl"
    return "numpy"


def _validate_field(backend: Backend, rho: Any) -> Any:
    arr = backend.asarray(rho)
    if arr.ndim != 3 or len(set(arr.shape)) != 1:
        raise ValueError(f"rho must be a cubic 3-D array (N, N, N), got shape {tuple(arr.shape)}")
    if arr.shape[0] < 2:
        raise ValueError(f"rho must have at least 2 voxels per side, got {arr.shape[0]}")
    if arr.dtype.kind == "c":
        raise ValueError("rho must be real-valued, got a complex array")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if not backend.all_finite(arr):
        raise ValueError("rho contains NaN or infinite values")
    return arr


def shell_intensity(backend: Backend, rho: Any, voxel_size: float) -> tuple[np.ndarray, FourierGrid]:
    """Per-shell sums of I(q_ijk) = dx^3/N^3 |FFT(rho)|^2 over the full grid (NumPy float64)."""
    n = rho.shape[-1]
    grid = fourier_grid(backend, n)
    sums = grid.shell_sums(backend.rfftn(rho), squared_magnitude=True)
    return sums * (voxel_size**3 / n**3), grid


def scattering_curve(rho: Any, voxel_size: float, q: Any, backend: str | Backend | None = None) -> np.ndarray:
    """Spherically averaged scattering intensity of a periodic density field.

    Parameters
    ----------
    rho
        Real (N, N, N) density (NumPy, CuPy or pyopencl array); float32 is computed in float32
        (single-precision FFT), anything else in float64.
    voxel_size
        Voxel edge dx in nm.
    q
        Scalar or 1-D array of wave numbers in nm^-1, any order, q >= 0.
    backend
        ``"auto"``, ``"numpy"``, ``"cupy"``, ``"opencl"`` or a :class:`Backend`; ``None``
        follows the array type of ``rho``.

    Returns
    -------
    numpy.ndarray
        I(q) per unit volume (float64, rho^2 nm^3), paper Eqs. 3-4 with the weights
        ``exp(-2((|q_ijk|-q)/dq)^2)/|q_ijk|^2``. Finite for every q >= 0; beyond the
        grid's corner sqrt(3) pi/dx it is the average of the outermost shells.
    """
    dx = _check_voxel_size(voxel_size)
    qa = _as_q(q)
    if backend is None:
        backend = _array_backend(rho)
    be = get_backend(backend)
    arr = _validate_field(be, rho)
    sums, grid = shell_intensity(be, arr, dx)
    return reduce_shells(grid.n, dx, qa, sums, grid.counts)


def radial_power_spectrum(field: Any, voxel_size: float,
                          backend: str | Backend | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shell-resolved intensity: (q_s, mean I over the shell, number of points), for non-empty shells s >= 1.

    q_s = dq sqrt(s) in nm^-1; the mean intensity uses the normalization of
    :func:`scattering_curve`. Useful to check a field's spectrum without the Gaussian
    smoothing of Eq. 4.
    """
    dx = _check_voxel_size(voxel_size)
    if backend is None:
        backend = _array_backend(field)
    be = get_backend(backend)
    arr = _validate_field(be, field)
    sums, grid = shell_intensity(be, arr, dx)
    s = np.nonzero(grid.counts)[0]
    s = s[s > 0]
    dq = 2.0 * math.pi / (grid.n * dx)
    return dq * np.sqrt(s), sums[s] / grid.counts[s], grid.counts[s]
