"""ML layer: features, XGBoost training with calibrated intervals, model bundles, prediction, evaluation.

Units: the models' q grid is in 1/nm, a in nm.
"""

from .._deps import check_xgboost

# Before anything here can import XGBoost: two XGBoost distributions in one environment break it (see _deps).
check_xgboost()

from .bundle import BundleError, read_bundle  # noqa: E402
from .features import FeatureScaler  # noqa: E402
from .predictor import Prediction, Predictor, load_predictor, shipped_bundles  # noqa: E402
from .training import COMPACT_PARAMS, PAPER_PARAMS, TABLE1_RANGES, TrainingSettings, settings_for  # noqa: E402

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
