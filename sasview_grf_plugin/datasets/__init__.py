"""Datasets layer: noise and normalization, the four cases, chunked resumable generation.

Units: q in nm^-1, a in nm, intensities per unit volume (rho^2 nm^3); noisy curves are normalized.
"""

from .cases import CASES, SPLITS, Case, get_case, parameter_ranges, sample_parameters, split_size
from .generate import generate_dataset
from .noise import ALPHA_RANGE, PAPER_INTENSITY_SCALE, add_noise, normalize, sample_alpha
from .storage import Dataset, DatasetSpec, DatasetStore, load_dataset

__all__ = [
    "CASES",
    "SPLITS",
    "Case",
    "get_case",
    "parameter_ranges",
    "sample_parameters",
    "split_size",
    "generate_dataset",
    "ALPHA_RANGE",
    "PAPER_INTENSITY_SCALE",
    "add_noise",
    "normalize",
    "sample_alpha",
    "Dataset",
    "DatasetSpec",
    "DatasetStore",
    "load_dataset",
]
