"""Simulator layer: configuration, backends, structures and scattering curves.

Units throughout: lengths in nm, wave numbers in nm^-1 (Röding et al. 2022).
"""

from .backends import InsufficientMemoryError, available_backends, get_backend
from .config import PRESETS, SimulationConfig, get_preset
from .scattering import radial_power_spectrum, scattering_curve
from .simulate import simulate_curve
from .structure import (
    estimate_memory,
    gaussian_random_field,
    generate_labels,
    generate_structure,
    spectral_density,
    validate_parameters,
)

__all__ = [
    "PRESETS",
    "SimulationConfig",
    "get_preset",
    "get_backend",
    "available_backends",
    "InsufficientMemoryError",
    "gaussian_random_field",
    "generate_structure",
    "generate_labels",
    "spectral_density",
    "validate_parameters",
    "estimate_memory",
    "scattering_curve",
    "radial_power_spectrum",
    "simulate_curve",
]
