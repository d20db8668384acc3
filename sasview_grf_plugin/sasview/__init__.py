"""SasView-facing layer: plugin models and their installer.

``grf_two_phase`` and ``grf_three_phase`` are the ensemble means (deterministic, for fitting);
``grf_two_phase_sim`` and ``grf_three_phase_sim`` simulate one realization (paper-exact).

Units here are SasView's: q in 1/Å, lengths in Å, SLD in 1e-6/Å^2, intensity in cm^-1.
"""

from .paths import ENSEMBLE_MODELS, MODEL_NAMES, SIM_MODELS, model_path

__all__ = ["ENSEMBLE_MODELS", "MODEL_NAMES", "SIM_MODELS", "model_path"]
