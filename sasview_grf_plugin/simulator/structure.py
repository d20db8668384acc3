"""Microstructures from thresholded Gaussian random fields (paper Eqs. 5-10).

Units: a and the voxel size in nm; wave numbers in nm^-1.

Steps, as in Röding et al. (2022), section 2.2:

1. GRF psi = F^-1 Gamma^(1/2) F W with white noise W and
   Gamma(q) = (1 + (a|q|)^8)^-2 (Eqs. 6-7), or any spectrum of :mod:`sasview_grf_plugin.spectra`
   (``spectrum=``; a is then its length unit: the Matérn range, or the domain spacing d). F W is drawn directly in
   Fourier space: for real N(0, 1) noise, F W is exactly a Hermitian array of
   independent circular complex normals with E|.|^2 = N^3 (real on the
   self-conjugate points), which saves one FFT.
2. psi' = 1 where psi is above its porosity quantile, else 0 (Eq. 8).
3. psi'' = periodic Gaussian smoothing of psi' (sigma in voxels), done in
   Fourier space (exact for the periodic kernel).
4. Pore, layer and solid are the eps(1-nu), eps*nu and 1-eps quantiles of
   psi'' (Eqs. 9-10).

Quantiles are taken by count, not by interpolation: the pore holds exactly
round(eps(1-nu) N^3) voxels and pore + layer exactly round(eps N^3), ties
broken by flat index, so volume fractions are exact to one voxel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..spectra import PaperSpectrum, Spectrum, as_spectrum
from .backends import Backend, InsufficientMemoryError, get_backend
from .config import SimulationConfig
from .grid import FourierGrid, fourier_grid
from .seeds import SeedLike, as_seed_sequence, child_seed

__all__ = [
    "gaussian_random_field",
    "generate_structure",
    "generate_labels",
    "spectral_density",
    "shell_amplitudes",
    "validate_parameters",
    "estimate_memory",
    "check_memory",
]

# Peak working set of one sample, in units of N^3 * itemsize: noise (2 half-space
# arrays), the complex half spectrum (2), the real field, a partition copy, masks
# and the output. Measured peaks stay below this.
_WORKING_ARRAYS = 8


def spectral_density(q: Any, a: float, spectrum: Spectrum | str | None = None) -> Any:
    """Gamma(q), q in nm^-1, a in nm: by default (1 + (a q)^8)^-2 (paper Eq. 7 with the scaling parameter a).

    ``spectrum`` selects another family of :mod:`sasview_grf_plugin.spectra` (the one place where spectra
    are defined); NumPy or CuPy arrays.
    """
    return as_spectrum(spectrum).density(q, a)


def shell_amplitudes(n: int, a: float, dq: float, s_max: int, spectrum: Spectrum | str | None = None) -> np.ndarray:
    """sqrt(N^3 Gamma(q)) on the shells q^2 = dq^2 s, s = 0..s_max (float64, host): the GRF filter."""
    s = np.arange(s_max + 1, dtype=np.float64)
    spec = as_spectrum(spectrum)
    if isinstance(spec, PaperSpectrum):
        return math.sqrt(n**3) / (1.0 + (a * a * s * dq**2) ** 4)  # the paper's, written as ever (same bits)
    return math.sqrt(n**3) * np.sqrt(spec.density(np.sqrt(s) * dq, a))


def validate_parameters(a: float, porosity: float, layer_fraction: float = 0.0) -> tuple[float, float, float]:
    """Check and convert the structure parameters; raise ``ValueError`` naming the bad one."""
    out = []
    for name, v in (("a", a), ("porosity", porosity), ("layer_fraction", layer_fraction)):
        try:
            f = float(v)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a number, got {v!r}") from exc
        if not math.isfinite(f):
            raise ValueError(f"{name} must be finite, got {f}")
        out.append(f)
    a, eps, nu = out
    if a <= 0:
        raise ValueError(f"a (scaling parameter, nm) must be > 0, got {a}")
    if not 0.0 < eps < 1.0:
        raise ValueError(f"porosity must lie in the open interval (0, 1), got {eps}")
    if not 0.0 <= nu < 1.0:
        raise ValueError(f"layer_fraction must lie in [0, 1), got {nu}")
    return a, eps, nu


def estimate_memory(grid_size: int, dtype: str | np.dtype = "float32") -> int:
    """Bytes one sample of an N^3 grid needs at its peak (approximate upper bound)."""
    n3 = int(grid_size) ** 3
    itemsize = np.dtype(dtype).itemsize
    shell_table = 4 * n3  # int64 shell index on the half space (int32 on GPUs: half of it)
    return _WORKING_ARRAYS * n3 * itemsize + shell_table


def check_memory(backend: Backend, grid_size: int, dtype: str | np.dtype = "float32", copies: int = 1) -> None:
    """Raise :class:`InsufficientMemoryError` if ``copies`` samples would not fit now."""
    need = copies * estimate_memory(grid_size, dtype)
    free = backend.available_memory()
    if need > free:
        raise InsufficientMemoryError(
            f"grid_size={grid_size} ({np.dtype(dtype).name}) needs about {need / 2**30:.2f} GiB "
            f"on backend '{backend.name}', but only {free / 2**30:.2f} GiB is free; "
            f"use a smaller grid_size (memory grows as N^3)"
        )


def _hermitian_planes(xp: Any, f: Any, grid: FourierGrid) -> None:
    # In the k = 0 and k = N/2 planes the half-space holds both q and -q: make them
    # conjugate pairs. (z + conj(z'))/sqrt(2) of two independent circular normals is
    # again one with the same variance, and real (variance kept) where q = -q.
    n = grid.n
    neg = xp.asarray((-np.arange(n)) % n)
    for c in grid.edge_columns:
        plane = f[:, :, c]
        mirror = xp.conj(plane[neg][:, neg])
        f[:, :, c] = (plane + mirror) * plane.real.dtype.type(1 / math.sqrt(2))


def _grf(backend: Backend, config: SimulationConfig, a: float, seed: np.random.SeedSequence,
         spectrum: Spectrum | None = None) -> Any:
    spec = as_spectrum(spectrum)
    if backend.native_stages:
        if isinstance(spec, PaperSpectrum):
            return backend.grf(config, a, seed)
        return backend.grf(config, a, seed, spectrum=spec)
    xp = backend.xp
    n = config.grid_size
    rdtype = np.dtype(config.dtype)
    cdtype = np.result_type(rdtype, np.complex64)
    grid = fourier_grid(backend, n)
    m = n // 2 + 1
    # sqrt(N^3 Gamma(q)) per shell, q^2 = dq^2 s.
    amp_table = xp.asarray(shell_amplitudes(n, a, config.dq, grid.s_max, spec), dtype=rdtype)
    two_pi = rdtype.type(2 * math.pi)
    f = xp.empty((n, n, m), dtype=cdtype)

    def fill(k: int, lo: int, hi: int) -> None:
        # Circular complex normal with E|z|^2 = 1: sqrt(Exp(1)) * exp(2 pi i U).
        g = backend.generator(child_seed(seed, k))
        amp = g.standard_exponential((hi - lo, n, m), dtype=rdtype)
        theta = g.random((hi - lo, n, m), dtype=rdtype)
        xp.sqrt(amp, out=amp)
        amp *= xp.take(amp_table, grid.shell[lo:hi])
        theta *= two_pi
        out = f[lo:hi]
        xp.multiply(xp.cos(theta), amp, out=out.real)
        xp.multiply(xp.sin(theta), amp, out=out.imag)

    backend.map_slabs(fill, n)
    _hermitian_planes(xp, f, grid)
    return backend.irfftn(f, n)


def _kth_values(xp: Any, x: Any, ks: list[int]) -> list[Any]:
    """The k-th smallest values (1-based) of flat ``x``, by partitioning."""
    vals = {}
    part, length = x, x.size
    for k in sorted(set(ks), reverse=True):
        # After partitioning at k, the first k entries are the k smallest: the next,
        # smaller k only needs to look at them.
        part = xp.partition(part[:length], k - 1)
        vals[k] = part[k - 1]
        length = k
    return [vals[k] for k in ks]


def _smallest_mask(xp: Any, x: Any, k: int) -> Any:
    """Boolean mask of exactly the k smallest entries of flat ``x`` (ties by flat index)."""
    if k <= 0:
        return xp.zeros(x.shape, dtype=bool)
    if k >= x.size:
        return xp.ones(x.shape, dtype=bool)
    (t,) = _kth_values(xp, x, [k])
    mask = x < t
    need = k - int(xp.count_nonzero(mask))
    eq = x == t
    if int(xp.count_nonzero(eq)) == need:
        mask |= eq
    else:
        mask |= eq & (xp.cumsum(eq) <= need)
    return mask


def _classify(backend: Backend, x: Any, k1: int, k2: int, values: tuple[Any, Any, Any], dtype: Any) -> Any:
    """values[0] on the k1 smallest entries of flat ``x``, values[1] on the next k2 - k1, values[2] elsewhere.

    Fast path: thresholds by partition and one threaded pass of comparisons; exact
    counts are verified and ties (equal values across a threshold) fall back to
    count-based masks.
    """
    if backend.native_stages:
        return backend.classify(x, k1, k2, values, dtype)
    xp = backend.xp
    size = x.size
    # Lookup by the number of thresholds a value is under: 0 -> values[2], 1 -> values[1],
    # 2 -> values[0]. A gather is exact and, unlike nested where, branch-free.
    table = xp.asarray([values[2], values[1], values[0]], dtype=dtype)
    ks = [k for k in (k1, k2) if 0 < k < size]
    kth = dict(zip(ks, _kth_values(xp, x.ravel(), ks), strict=False))
    rows = x.reshape(x.shape[0], -1)
    out = xp.empty(rows.shape, dtype=dtype)

    def below(v: Any, k: int) -> Any:
        if k <= 0:
            return xp.zeros(v.shape, dtype=bool)
        if k >= size:
            return xp.ones(v.shape, dtype=bool)
        return v <= kth[k]

    def slab(_k: int, lo: int, hi: int) -> tuple[int, int]:
        v = rows[lo:hi]
        m1 = below(v, k1)
        m2 = m1 if k2 == k1 else below(v, k2)
        xp.take(table, m1.view(np.uint8) + m2.view(np.uint8), out=out[lo:hi])
        return int(xp.count_nonzero(m1)), int(xp.count_nonzero(m2))

    counts = backend.map_slabs(slab, rows.shape[0])
    if sum(c[0] for c in counts) == k1 and sum(c[1] for c in counts) == k2:
        return out.reshape(x.shape)
    xf = x.ravel()
    m1 = _smallest_mask(xp, xf, k1)
    m2 = _smallest_mask(xp, xf, k2)
    return xp.take(table, m1.view(np.uint8) + m2.view(np.uint8)).reshape(x.shape)


def _smooth(backend: Backend, config: SimulationConfig, field: Any) -> Any:
    """Periodic Gaussian smoothing (sigma in voxels) by multiplication in Fourier space."""
    if backend.native_stages:
        return backend.smooth(config, field)
    xp = backend.xp
    n = config.grid_size
    grid = fourier_grid(backend, n)
    s = np.arange(grid.s_max + 1, dtype=np.float64)
    kernel = xp.asarray(np.exp(-0.5 * config.smoothing_sigma**2 * (2 * math.pi / n) ** 2 * s), dtype=field.dtype)
    spec = backend.rfftn(field)

    def mul(_k: int, lo: int, hi: int) -> None:
        spec[lo:hi] *= xp.take(kernel, grid.shell[lo:hi])

    backend.map_slabs(mul, n)
    return backend.irfftn(spec, n)


def _phase_field(backend: Backend, config: SimulationConfig, a: float, eps: float, nu: float,
                 seed: np.random.SeedSequence, values: tuple[Any, Any, Any], dtype: Any,
                 spectrum: Spectrum | None = None) -> Any:
    """(N, N, N) array with values[0] on the pore, values[1] on the layer, values[2] on the solid."""
    n3 = config.grid_size**3
    rdtype = np.dtype(config.dtype)
    psi = _grf(backend, config, a, seed, spectrum)
    # Eq. 8: psi' = 0 on the eps-quantile of psi (the pore-to-be), 1 elsewhere.
    k = int(round(eps * n3))
    binary = _classify(backend, psi, k, k, (0, 0, 1), rdtype)
    del psi
    smooth = _smooth(backend, config, binary) if config.smoothing_sigma > 0 else binary
    # Eqs. 9-10: quantiles eps(1 - nu) and eps of psi''.
    return _classify(backend, smooth, int(round(eps * (1.0 - nu) * n3)), k, values, dtype)


def gaussian_random_field(config: SimulationConfig, a: float, seed: SeedLike = None,
                          backend: str | Backend | None = None, spectrum: Spectrum | str | None = None) -> Any:
    """A periodic Gaussian random field with spectral density (1 + (a|q|)^8)^-2, or ``spectrum``'s.

    Parameters
    ----------
    config
        Grid size, voxel size (nm) and precision.
    a
        Scaling parameter in nm.
    seed
        ``None``, an int or a :class:`numpy.random.SeedSequence`.
    backend
        ``"auto"``, ``"numpy"``, ``"cupy"``, ``"opencl"`` or a :class:`Backend`.
    spectrum
        A :class:`~sasview_grf_plugin.spectra.Spectrum` or family name (default: the paper's); ``a`` is
        its length unit in nm.

    Returns
    -------
    array
        Real (N, N, N) field of the backend's array type, zero mean in expectation and
        variance sum_q Gamma(q) / N^3 (the paper's F^-1 Gamma^1/2 F W for N(0,1) noise W).
    """
    a, _, _ = validate_parameters(a, 0.5)
    be = get_backend(backend)
    check_memory(be, config.grid_size, config.dtype)
    return _grf(be, config, a, as_seed_sequence(seed), as_spectrum(spectrum))


def generate_labels(config: SimulationConfig, a: float, porosity: float, layer_fraction: float = 0.0,
                    seed: SeedLike = None, backend: str | Backend | None = None,
                    spectrum: Spectrum | str | None = None) -> Any:
    """Phase labels 0 (pore), 1 (layer), 2 (solid) as a uint8 (N, N, N) array.

    See :func:`generate_structure` for the parameters (``spectrum`` included).
    """
    a, eps, nu = validate_parameters(a, porosity, layer_fraction)
    be = get_backend(backend)
    check_memory(be, config.grid_size, config.dtype)
    return _phase_field(be, config, a, eps, nu, as_seed_sequence(seed), (0, 1, 2), np.uint8, as_spectrum(spectrum))


def generate_structure(config: SimulationConfig, a: float, porosity: float, layer_fraction: float = 0.0,
                       seed: SeedLike = None, backend: str | Backend | None = None,
                       spectrum: Spectrum | str | None = None) -> Any:
    """A two- or three-phase density field (paper Eqs. 8-10).

    Parameters
    ----------
    config
        Grid size N, voxel size (nm), smoothing sigma (voxels), phase densities, precision.
    a
        Scaling parameter in nm (> 0).
    porosity
        eps in (0, 1): volume fraction of pore plus layer.
    layer_fraction
        nu in [0, 1): fraction of the pore space filled by the layer; 0 gives the
        two-phase model.
    seed
        ``None``, an int or a :class:`numpy.random.SeedSequence`; the same seed on the
        same backend gives the same structure.
    backend
        ``"auto"``, ``"numpy"``, ``"cupy"``, ``"opencl"`` or a :class:`Backend`.
    spectrum
        The GRF's spectrum (:mod:`sasview_grf_plugin.spectra`; default the paper's); ``a`` is its length
        unit in nm (for ``"peaked"`` the domain spacing d).

    Returns
    -------
    array
        (N, N, N) densities of the backend's array type: ``densities[0]`` on exactly
        round(eps(1-nu) N^3) voxels, ``densities[1]`` on round(eps N^3) minus that,
        ``densities[2]`` on the rest.
    """
    a, eps, nu = validate_parameters(a, porosity, layer_fraction)
    be = get_backend(backend)
    check_memory(be, config.grid_size, config.dtype)
    return _phase_field(be, config, a, eps, nu, as_seed_sequence(seed), config.densities, config.dtype,
                        as_spectrum(spectrum))
