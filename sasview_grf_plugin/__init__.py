"""SasView plugin models and an ML initializer for thresholded Gaussian random field structures.

Implements Röding et al. (2022), "Machine learning-accelerated small-angle X-ray scattering
analysis of disordered two- and three-phase materials", Frontiers in Materials 9, 956839:
two- and three-phase GRF microstructures, their simulated SAXS curves, and their use from
SasView/sasmodels.

Importing the package is cheap: submodules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "SimulationConfig": "sasview_grf_plugin.simulator",
    "PRESETS": "sasview_grf_plugin.simulator",
    "get_preset": "sasview_grf_plugin.simulator",
    "gaussian_random_field": "sasview_grf_plugin.simulator",
    "generate_structure": "sasview_grf_plugin.simulator",
    "generate_labels": "sasview_grf_plugin.simulator",
    "scattering_curve": "sasview_grf_plugin.simulator",
    "simulate_curve": "sasview_grf_plugin.simulator",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sasview_grf_plugin' has no attribute {name!r}")
