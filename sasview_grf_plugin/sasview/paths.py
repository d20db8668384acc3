"""Where the model files are, for ``sasmodels.core.load_model`` and the installer."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ENSEMBLE_MODELS", "SIM_MODELS", "MODEL_NAMES", "model_path"]

#: The ensemble-mean models: deterministic, smooth, for fitting (the GRF model family). The first two use the
#: paper's spectrum and the smoothing table; the others are exact level cuts / bands (smoothing 0) of the broad
#: (Matérn) and peaked (squared Teubner-Strey) spectra of :mod:`sasview_grf_plugin.spectra`.
ENSEMBLE_MODELS = ("grf_two_phase", "grf_three_phase", "grf_two_phase_broad", "grf_two_phase_peaked",
                   "grf_three_phase_broad", "grf_three_phase_peaked")
#: The one-realization simulations of the paper's voxel model (paper-exact, not for fitting).
SIM_MODELS = ("grf_two_phase_sim", "grf_three_phase_sim")
MODEL_NAMES = ENSEMBLE_MODELS + SIM_MODELS


def model_path(name: str) -> str:
    """Path of the sasmodels model file ``name`` shipped in this package.

    ``sasmodels.core.load_model(model_path("grf_two_phase"))`` loads the model in a script.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODEL_NAMES)}")
    return str(Path(__file__).with_name("models") / f"{name}.py")
