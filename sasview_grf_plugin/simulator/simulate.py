"""Structure plus curve in one call: the unit of work of datasets and plugin models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..spectra import Spectrum, as_spectrum
from .backends import Backend, get_backend
from .config import SimulationConfig
from .sanity import check_phases
from .scattering import reduce_shells, shell_intensity
from .seeds import SeedLike, as_seed_sequence, child_seed, realization_seeds
from .structure import _phase_field, check_memory, validate_parameters

__all__ = ["simulate_curve", "simulate_sample"]


def simulate_sample(backend: Backend, config: SimulationConfig, a: float, porosity: float,
                    layer_fraction: float, seed: np.random.SeedSequence,
                    n_realizations: int = 1, spectrum: Spectrum | None = None) -> np.ndarray:
    """Curve (float64, on ``config.q``) of one validated parameter set, averaged over realizations.

    Shell sums are averaged before the reduction, which is linear, so the result
    equals the mean of the realizations' curves.
    """
    total = None
    grid = None
    for s in realization_seeds(seed, n_realizations):
        rho = _phase_field(backend, config, a, porosity, layer_fraction, s, config.densities, config.dtype,
                           spectrum)
        sums, grid = shell_intensity(backend, rho, config.voxel_size)
        total = sums if total is None else total + sums
    assert grid is not None and total is not None
    return reduce_shells(config.grid_size, config.voxel_size, config.q, total / n_realizations, grid.counts)


def simulate_curve(config: SimulationConfig, a: float | Sequence[float] | np.ndarray,
                   porosity: float | Sequence[float] | np.ndarray,
                   layer_fraction: float | Sequence[float] | np.ndarray = 0.0,
                   seed: SeedLike | Sequence[SeedLike] = None, n_realizations: int = 1,
                   backend: str | Backend | None = None, progress: bool = False,
                   spectrum: Spectrum | str | None = None) -> np.ndarray:
    """Simulate structures and their SAXS curves on ``config.q`` (nm^-1).

    Parameters
    ----------
    config
        Simulation configuration (grid, voxel size in nm, q grid, smoothing, densities).
    a, porosity, layer_fraction
        Scaling parameter (nm), porosity in (0, 1), layer fraction in [0, 1). Scalars
        give one curve; arrays (broadcast together) give one curve per entry.
    seed
        Seed of the whole call (``None``, int or SeedSequence), or one seed per
        parameter set. With arrays and one seed, parameter set i uses child i of it.
    n_realizations
        Number of independent structures averaged per parameter set.
    backend
        ``"auto"``, ``"numpy"``, ``"cupy"``, ``"opencl"`` or a :class:`Backend`.
    progress
        Show a progress bar (tqdm) over parameter sets.
    spectrum
        The GRF's spectrum (:mod:`sasview_grf_plugin.spectra`; default the paper's); ``a`` is its length unit.

    Returns
    -------
    numpy.ndarray
        float64 intensities per unit volume (rho^2 nm^3): shape (n_q,) for scalar
        parameters, (n, n_q) for arrays.
    """
    if isinstance(n_realizations, bool) or not isinstance(n_realizations, (int, np.integer)) or n_realizations < 1:
        raise ValueError(f"n_realizations must be an integer >= 1, got {n_realizations!r}")
    scalar = all(np.ndim(v) == 0 for v in (a, porosity, layer_fraction))
    try:
        aa, ee, nn = np.broadcast_arrays(np.atleast_1d(np.asarray(a, dtype=float)),
                                         np.atleast_1d(np.asarray(porosity, dtype=float)),
                                         np.atleast_1d(np.asarray(layer_fraction, dtype=float)))
    except ValueError as exc:
        raise ValueError(f"a, porosity and layer_fraction must broadcast together: {exc}") from None
    if aa.ndim != 1:
        raise ValueError(f"parameters must be scalars or 1-D arrays, got shape {aa.shape}")
    params = [validate_parameters(*p) for p in zip(aa, ee, nn, strict=False)]
    for _, eps, nu in params:
        check_phases(config, eps, nu)  # a phase without voxels: an all-zero curve, never what was meant
    if isinstance(seed, (list, tuple)):
        if len(seed) != len(params):
            raise ValueError(f"got {len(seed)} seeds for {len(params)} parameter sets")
        seeds = [as_seed_sequence(s) for s in seed]
    else:
        root = as_seed_sequence(seed)
        seeds = [root] if scalar else [child_seed(root, i) for i in range(len(params))]
    spec = as_spectrum(spectrum)
    be = get_backend(backend)
    check_memory(be, config.grid_size, config.dtype)
    items: Any = zip(params, seeds, strict=False)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, total=len(params), unit="curve")
    curves = np.stack([simulate_sample(be, config, *p, s, n_realizations, spec) for p, s in items])
    return curves[0] if scalar else curves
