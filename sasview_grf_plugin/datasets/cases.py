"""The four dataset cases of the paper (two/three phases x low/high porosity) and their parameter draws."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..simulator.config import SimulationConfig

__all__ = ["Case", "CASES", "SPLITS", "get_case", "split_size", "sample_parameters", "parameter_ranges"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Case:
    """A dataset case: number of phases and porosity level."""

    name: str
    three_phase: bool
    porosity: str  # "low" or "high"

    @property
    def outputs(self) -> tuple[str, ...]:
        """Parameters a model of this case predicts."""
        return ("a", "porosity", "layer_fraction") if self.three_phase else ("a", "porosity")


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case("two_phase_low", False, "low"),
        Case("two_phase_high", False, "high"),
        Case("three_phase_low", True, "low"),
        Case("three_phase_high", True, "high"),
    )
}


def get_case(name: str | Case) -> Case:
    """Look up a case by name."""
    if isinstance(name, Case):
        return name
    try:
        return CASES[name]
    except KeyError:
        raise ValueError(f"unknown case {name!r}; allowed: {', '.join(CASES)}") from None


def split_size(config: SimulationConfig, split: str) -> int:
    """Number of curves of ``split`` in ``config``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    return {"train": config.n_train, "val": config.n_val, "test": config.n_test}[split]


def parameter_ranges(config: SimulationConfig, case: str | Case) -> dict[str, tuple[float, float]]:
    """Uniform ranges of the parameters of ``case`` (layer fraction fixed at 0 for two phases)."""
    c = get_case(case)
    return {
        "a": config.a_range,
        "porosity": config.porosity_range(c.porosity),
        "layer_fraction": config.layer_fraction_range if c.three_phase else (0.0, 0.0),
    }


def sample_parameters(config: SimulationConfig, case: str | Case, n: int,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw ``n`` parameter sets of ``case`` from the paper's uniform distributions."""
    ranges = parameter_ranges(config, case)
    out = {}
    for name in ("a", "porosity", "layer_fraction"):
        lo, hi = ranges[name]
        out[name] = rng.uniform(lo, hi, size=n) if hi > lo else np.full(n, lo)
    return out
