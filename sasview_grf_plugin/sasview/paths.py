"""Where the model files are, for ``sasmodels.core.load_model`` and the installer."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODEL_NAMES", "model_path"]

#: The ensemble-mean models (for fitting) and the one-realization simulations (paper-exact).
MODEL_NAMES = ("grf_two_phase", "grf_three_phase", "grf_two_phase_sim", "grf_three_phase_sim")


def model_path(name: str) -> str:
    """Path of the sasmodels model file ``name`` shipped in this package.

    ``sasmodels.core.load_model(model_path("grf_two_phase"))`` loads the model in a script.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODEL_NAMES)}")
    return str(Path(__file__).with_name("models") / f"{name}.py")
