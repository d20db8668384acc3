"""The computation behind the SasView models: cached, thread-safe, SasView units in and out.

A parameter set (a, porosity, layer fraction, voxel size, grid size, realizations,
seed) fixes the structures. For them we compute, once, the three partial curves of
the phase indicators chi_layer and chi_solid on the simulator's own q nodes:

    I(q) = d1^2 I_11 + d2^2 I_22 + 2 d1 d2 I_12,   d1 = sld_layer - sld_pore, d2 = sld_solid - sld_pore,

(rho = sld_pore + d1 chi_layer + d2 chi_solid; the constant sld_pore only adds to q = 0,
whose weight is zero), so changing SLDs never re-simulates. Requested q are interpolated
from the nodes; outside them the curve is extrapolated (see :func:`intensity`).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from .units import CM_PER_SLD2_NM3, length_to_nm, q_to_per_nm

__all__ = ["StructureKey", "PartialCurves", "partial_curves", "intensity", "cache_info", "clear_cache",
           "MAX_CACHE_ENTRIES", "SIMULATION_CONTROLS", "check_inputs"]

# The simulation controls both plugin models end their parameter tables with (sasmodels format).
SIMULATION_CONTROLS = [
    ["voxel_size", "Ang", 5.0, [0.1, 1000.0], "", "simulation voxel edge"],
    ["grid_size", "", 64, [8, 1024], "", "voxels per box edge (rounded to a whole number)"],
    ["n_realizations", "", 1, [1, 100], "", "structures averaged (rounded to a whole number)"],
    ["seed", "", 1, [0, 1e9], "", "random seed of the structures (rounded to a whole number)"],
]

MAX_CACHE_ENTRIES = 128
_NODES_PER_DQ = 8

_lock = threading.RLock()
_cache: OrderedDict[StructureKey, PartialCurves] = OrderedDict()
_stats = {"hits": 0, "misses": 0}


@dataclass(frozen=True)
class StructureKey:
    """Plain-float identity of a set of simulated structures (simulator units)."""

    a_nm: float
    porosity: float
    layer_fraction: float
    voxel_nm: float
    grid_size: int
    n_realizations: int
    seed: int


@dataclass(frozen=True)
class PartialCurves:
    """Partial intensities per unit volume (nm^3, unit contrast) on nodes q (1/nm)."""

    q: np.ndarray
    i11: np.ndarray
    i22: np.ndarray
    i12: np.ndarray
    backend: str


def _as_int(name: str, value: float, low: int, high: int) -> int:
    # Whole-number controls arrive as floats (and a fit may nudge them): the nearest integer counts.
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite whole number, got {value}")
    v = int(round(v))
    if not low <= v <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {v}")
    return v


def make_key(a: float, porosity: float, layer_fraction: float, voxel_size: float, grid_size: float,
             n_realizations: float, seed: float) -> StructureKey:
    """Validate SasView-unit parameters (Å) and build the cache key. Raises ``ValueError`` naming the problem."""
    from ..simulator.structure import validate_parameters

    a_f, eps, nu = validate_parameters(float(a), float(porosity), float(layer_fraction))
    dx = float(voxel_size)
    if not (math.isfinite(dx) and dx > 0):
        raise ValueError(f"voxel_size must be > 0 Å, got {voxel_size}")
    return StructureKey(
        a_nm=length_to_nm(a_f), porosity=eps, layer_fraction=nu, voxel_nm=length_to_nm(dx),
        grid_size=_as_int("grid_size", grid_size, 8, 2048),
        n_realizations=_as_int("n_realizations", n_realizations, 1, 1000),
        seed=_as_int("seed", seed, 0, 2**32 - 1),
    )


def _backend_name() -> str:
    # SasView runs models in worker threads; the backend (CuPy when a CUDA GPU works, else OpenCL on
    # another GPU) is resolved lazily on first use. SASVIEW_GRF_BACKEND=numpy|cupy|opencl|auto overrides;
    # with opencl, SAS_OPENCL (as for sasmodels) picks the device.
    return os.environ.get("SASVIEW_GRF_BACKEND", "auto")


def _compute(key: StructureKey) -> PartialCurves:
    from ..simulator.backends import get_backend
    from ..simulator.config import SimulationConfig
    from ..simulator.scattering import reduce_shells, shell_intensity
    from ..simulator.seeds import realization_seeds
    from ..simulator.structure import generate_labels

    be = get_backend(_backend_name())
    n = key.grid_size
    cfg = SimulationConfig(grid_size=n, voxel_size=key.voxel_nm, q_min=0.0, q_max=1.0, dtype="float32")
    two_phase = key.layer_fraction == 0.0
    s11 = s22 = s33 = None
    counts = None
    for s in realization_seeds(np.random.SeedSequence(key.seed), key.n_realizations):
        labels = generate_labels(cfg, key.a_nm, key.porosity, key.layer_fraction, seed=s, backend=be)
        solid = (labels == 2).astype(np.float32)
        part22, grid = shell_intensity(be, solid, key.voxel_nm)
        counts = grid.counts
        s22 = part22 if s22 is None else s22 + part22
        if not two_phase:
            layer = (labels == 1).astype(np.float32)
            part11, _ = shell_intensity(be, layer, key.voxel_nm)
            part33, _ = shell_intensity(be, layer + solid, key.voxel_nm)
            s11 = part11 if s11 is None else s11 + part11
            s33 = part33 if s33 is None else s33 + part33
    dq = cfg.dq
    nodes = dq * (1.0 + np.arange((n // 2 - 1) * _NODES_PER_DQ + 1) / _NODES_PER_DQ)  # dq .. (N/2) dq = pi/dx
    k = key.n_realizations

    def curve(sums: np.ndarray | None) -> np.ndarray:
        if sums is None:
            return np.zeros_like(nodes)
        return reduce_shells(n, key.voxel_nm, nodes, sums / k, counts)

    i11, i22, i33 = curve(s11), curve(s22), curve(s33)
    i12 = 0.5 * (i33 - i11 - i22) if not two_phase else np.zeros_like(nodes)
    return PartialCurves(q=nodes, i11=i11, i22=i22, i12=i12, backend=be.name)


def partial_curves(key: StructureKey) -> PartialCurves:
    """Partial curves of ``key``, from the LRU cache or simulated (thread-safe)."""
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            _stats["hits"] += 1
            return hit
        _stats["misses"] += 1
        value = _compute(key)
        _cache[key] = value
        while len(_cache) > MAX_CACHE_ENTRIES:
            _cache.popitem(last=False)
        return value


def cache_info() -> dict[str, int]:
    """Hits, misses and size of the structure cache."""
    with _lock:
        return {**_stats, "size": len(_cache)}


def clear_cache() -> None:
    with _lock:
        _cache.clear()
        _stats.update(hits=0, misses=0)


#: Largest SLD contrast (1e-6/Å^2) the models accept: its square times a^3 must stay far below the float range.
MAX_CONTRAST = 1e100


def check_inputs(q: Any, a: float, parameters: list) -> None:
    """Refuse q < 0 (or non-finite) and an ``a`` outside the model's limits (its ``parameters`` table).

    Raises
    ------
    ValueError
        Naming the value and the limit; sasmodels passes it on to the caller.
    """
    qa = np.asarray(q, dtype=np.float64)
    if np.any(qa < 0) or not np.all(np.isfinite(qa)):
        raise ValueError("q must be finite and >= 0 (1/Å)")
    a_lo, a_hi = next(p[3] for p in parameters if p[0] == "a")
    a = float(a)
    if not (math.isfinite(a) and a_lo <= a <= a_hi):
        raise ValueError(f"a = {a:g} Å is outside the model's limits [{a_lo:g}, {a_hi:g}] Å")


def intensity(q: Any, a: float, porosity: float, layer_fraction: float, sld_pore: float, sld_layer: float,
              sld_solid: float, voxel_size: float, grid_size: float, n_realizations: float,
              seed: float) -> np.ndarray:
    """Absolute intensity in cm^-1 at q (1/Å) for SasView-unit parameters (Å, 1e-6/Å^2).

    Inside [dq, pi/dx] (dq = 2 pi/(N dx), the box's first wave number, pi/dx the grid's
    Nyquist wave number) the simulated curve is interpolated (linearly in log I). Below dq
    the box holds no information: the value at dq is continued flat (the low-q plateau of a
    structure much smaller than the box). Above pi/dx it continues as Porod's law, I ~ q^-4,
    of sharp interfaces. Hence finite, non-negative values for every q >= 0.
    """
    key = make_key(a, porosity, layer_fraction, voxel_size, grid_size, n_realizations, seed)
    sld = [float(sld_pore), float(sld_layer), float(sld_solid)]
    contrasts = (sld[1] - sld[0], sld[2] - sld[0], sld[2] - sld[1])
    if not all(math.isfinite(v) and abs(v) <= MAX_CONTRAST for v in contrasts):
        raise ValueError(f"SLDs must be finite with contrasts <= {MAX_CONTRAST:g} (1e-6/Å^2; beyond, the intensity "
                         f"overflows; physical SLDs are below ~1e3), got pore={sld_pore}, layer={sld_layer}, "
                         f"solid={sld_solid}")
    parts = partial_curves(key)
    d1, d2 = sld[1] - sld[0], sld[2] - sld[0]
    nodes = CM_PER_SLD2_NM3 * (d1 * d1 * parts.i11 + d2 * d2 * parts.i22 + 2.0 * d1 * d2 * parts.i12)
    nodes = np.maximum(nodes, 0.0)  # round-off of the cross term must not go negative
    qn = q_to_per_nm(np.asarray(q, dtype=np.float64))
    q_lo, q_hi = parts.q[0], parts.q[-1]
    inside = np.clip(qn, q_lo, q_hi)
    if np.all(nodes > 0):
        out = np.exp(np.interp(inside, parts.q, np.log(nodes)))
    else:
        out = np.interp(inside, parts.q, nodes)
    high = qn > q_hi
    if np.any(high):
        out[high] = nodes[-1] * (q_hi / qn[high]) ** 4
    return out
