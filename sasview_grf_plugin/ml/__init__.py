"""ML layer: features, XGBoost training with calibrated intervals, model bundles, prediction, evaluation.

Units: the models' q grid is in 1/nm, a in nm.
"""

from .bundle import BundleError, read_bundle
from .features import FeatureScaler
from .predictor import Prediction, Predictor, load_predictor, shipped_bundles
from .training import COMPACT_PARAMS, PAPER_PARAMS, TABLE1_RANGES, TrainingSettings, settings_for

__all__ = [
    "BundleError",
    "read_bundle",
    "FeatureScaler",
    "Prediction",
    "Predictor",
    "load_predictor",
    "shipped_bundles",
    "COMPACT_PARAMS",
    "PAPER_PARAMS",
    "TABLE1_RANGES",
    "TrainingSettings",
    "settings_for",
]
