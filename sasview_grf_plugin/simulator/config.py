"""Simulation configuration and the two presets of the design brief.

All lengths are in nanometres and all wave numbers in inverse nanometres, the
units of Röding et al. (2022). Conversion to SasView's units (Å, 1/Å) happens
only in the SasView-facing layer.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SimulationConfig", "PRESETS", "get_preset"]


def _check_range(name: str, rng: tuple[float, float], lo: float, hi: float,
                 closed_lo: bool = False) -> tuple[float, float]:
    try:
        a, b = (float(rng[0]), float(rng[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {rng!r}") from exc
    low_ok = (a >= lo) if closed_lo else (a > lo)
    if not (math.isfinite(a) and math.isfinite(b) and low_ok and b < hi and a <= b):
        bracket = "[" if closed_lo else "("
        raise ValueError(
            f"{name} must satisfy {lo} {'<=' if closed_lo else '<'} low <= high < {hi}"
            f" (interval {bracket}{lo}, {hi})), got ({a}, {b})"
        )
    return (a, b)


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a simulated SAXS curve and a dataset of them.

    Parameters
    ----------
    grid_size
        Voxels per side N of the periodic cubic box.
    voxel_size
        Voxel edge length dx in nm.
    q_min, q_max, n_q
        The curve's q grid, ``linspace(q_min, q_max, n_q)`` in nm^-1.
    smoothing_sigma
        Standard deviation of the periodic Gaussian smoothing, in voxels (paper: 2).
    densities
        Electron densities of pore, layer and solid (paper: 0, 0.65, 1).
    a_range
        Uniform range of the scaling parameter a, in nm.
    porosity_low, porosity_high
        Uniform ranges of the porosity for the low- and high-porosity cases.
    layer_fraction_range
        Uniform range of the layer fraction nu (three-phase cases).
    n_train, n_val, n_test
        Dataset split sizes per case.
    dtype
        Floating-point precision of the simulation, ``"float32"`` or ``"float64"``.
    name
        Preset name, informational.
    """

    grid_size: int
    voxel_size: float
    q_min: float
    q_max: float
    n_q: int = 500
    smoothing_sigma: float = 2.0
    densities: tuple[float, float, float] = (0.0, 0.65, 1.0)
    a_range: tuple[float, float] = (0.8, 8.0)
    porosity_low: tuple[float, float] = (0.1, 0.5)
    porosity_high: tuple[float, float] = (0.5, 0.9)
    layer_fraction_range: tuple[float, float] = (0.05, 0.5)
    n_train: int = 2**19
    n_val: int = 2**18
    n_test: int = 2**17
    dtype: str = "float32"
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        def setf(attr: str, value: Any) -> None:
            object.__setattr__(self, attr, value)

        n = self.grid_size
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 4:
            raise ValueError(f"grid_size must be an integer >= 4, got {n!r}")
        setf("grid_size", int(n))
        for attr in ("voxel_size", "q_min", "q_max", "smoothing_sigma"):
            v = getattr(self, attr)
            try:
                v = float(v)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{attr} must be a number, got {v!r}") from exc
            if not math.isfinite(v):
                raise ValueError(f"{attr} must be finite, got {v}")
            setf(attr, v)
        if self.voxel_size <= 0:
            raise ValueError(f"voxel_size must be > 0 nm, got {self.voxel_size}")
        if self.q_min < 0 or self.q_max <= self.q_min:
            raise ValueError(
                f"q grid must satisfy 0 <= q_min < q_max (nm^-1), got q_min={self.q_min}, q_max={self.q_max}"
            )
        if isinstance(self.n_q, bool) or not isinstance(self.n_q, (int, np.integer)) or self.n_q < 2:
            raise ValueError(f"n_q must be an integer >= 2, got {self.n_q!r}")
        setf("n_q", int(self.n_q))
        if self.smoothing_sigma < 0:
            raise ValueError(f"smoothing_sigma must be >= 0 voxels, got {self.smoothing_sigma}")
        dens = tuple(float(d) for d in self.densities)
        if len(dens) != 3 or not all(math.isfinite(d) for d in dens):
            raise ValueError(f"densities must be three finite numbers (pore, layer, solid), got {self.densities!r}")
        setf("densities", dens)
        a_lo, a_hi = self.a_range
        if not (0 < float(a_lo) <= float(a_hi) < math.inf):
            raise ValueError(f"a_range must satisfy 0 < low <= high (nm), got {self.a_range!r}")
        setf("a_range", (float(a_lo), float(a_hi)))
        setf("porosity_low", _check_range("porosity_low", self.porosity_low, 0.0, 1.0))
        setf("porosity_high", _check_range("porosity_high", self.porosity_high, 0.0, 1.0))
        setf("layer_fraction_range",
             _check_range("layer_fraction_range", self.layer_fraction_range, 0.0, 1.0, closed_lo=True))
        for attr in ("n_train", "n_val", "n_test"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{attr} must be a positive integer, got {v!r}")
            setf(attr, int(v))
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")

    # -- derived quantities -------------------------------------------------
    @property
    def q(self) -> np.ndarray:
        """The curve's q grid in nm^-1 (float64)."""
        return np.linspace(self.q_min, self.q_max, self.n_q)

    @property
    def dq(self) -> float:
        """Reciprocal-grid spacing 2 pi / (N dx) in nm^-1 (paper's Delta q)."""
        return 2.0 * math.pi / (self.grid_size * self.voxel_size)

    @property
    def box_size(self) -> float:
        """Edge length N dx of the periodic box in nm."""
        return self.grid_size * self.voxel_size

    @property
    def q_nyquist(self) -> float:
        """Largest wave number pi/dx along an axis, in nm^-1."""
        return math.pi / self.voxel_size

    def porosity_range(self, level: str) -> tuple[float, float]:
        """Porosity range of ``level`` ``"low"`` or ``"high"``."""
        if level == "low":
            return self.porosity_low
        if level == "high":
            return self.porosity_high
        raise ValueError(f"porosity level must be 'low' or 'high', got {level!r}")

    def replace(self, **changes: Any) -> SimulationConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # -- serialization ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dictionary (tuples become lists)."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulationConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown SimulationConfig fields {sorted(unknown)}; allowed: {sorted(names)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kw)


PRESETS: dict[str, SimulationConfig] = {
    # Röding et al. 2022, section 2.3: 512^3 voxels of 0.5 nm, 500 q in [0.04, 3] nm^-1.
    "paper": SimulationConfig(
        grid_size=512, voxel_size=0.5, q_min=0.04, q_max=3.0, n_q=500,
        a_range=(0.8, 8.0), n_train=2**19, n_val=2**18, n_test=2**17, name="paper",
    ),
    # CPU default: a 64 nm box resolves q >= 2 pi / 64 ~ 0.1 nm^-1, hence the q_min and a <= 4 nm.
    "compact": SimulationConfig(
        grid_size=128, voxel_size=0.5, q_min=0.1, q_max=3.0, n_q=500,
        a_range=(0.8, 4.0), n_train=2**13, n_val=2**11, n_test=2**11, name="compact",
    ),
}


def get_preset(name: str | SimulationConfig) -> SimulationConfig:
    """Look up a preset by name (a :class:`SimulationConfig` passes through)."""
    if isinstance(name, SimulationConfig):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}") from None
