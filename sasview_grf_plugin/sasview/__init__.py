"""SasView-facing layer: plugin models ``grf_two_phase`` and ``grf_three_phase`` and their installer.

Units here are SasView's: q in 1/Å, lengths in Å, SLD in 1e-6/Å^2, intensity in cm^-1.
"""

from .paths import MODEL_NAMES, model_path

__all__ = ["MODEL_NAMES", "model_path"]
