"""Features of the boosters: log10 of the normalized curve, standardized with training statistics.

Paper section 2.4. The scaler is fitted on the training split only, stored with the
model, and never refitted on new data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FeatureScaler", "log_features"]


def log_features(normalized: Any) -> np.ndarray:
    """log10 of normalized intensities (n, n_q); refuses non-positive or non-finite values."""
    x = np.asarray(normalized, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a batch of curves (n, n_q), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("curves contain NaN or infinite values")
    if np.any(x <= 0):
        raise ValueError("curves must be > 0 everywhere (log features)")
    return np.log10(x)


@dataclass(frozen=True)
class FeatureScaler:
    """Per-q standardization of log features, with the training envelope for domain checks."""

    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray  # per-feature minimum of the standardized training features
    high: np.ndarray  # per-feature maximum

    @classmethod
    def fit(cls, log_x: np.ndarray) -> FeatureScaler:
        mean = log_x.mean(axis=0)
        std = log_x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        z = (log_x - mean) / std
        return cls(mean=mean, std=std, low=z.min(axis=0), high=z.max(axis=0))

    def transform(self, log_x: np.ndarray) -> np.ndarray:
        if log_x.shape[-1] != self.mean.size:
            raise ValueError(f"curves have {log_x.shape[-1]} points, the model expects {self.mean.size}")
        return ((log_x - self.mean) / self.std).astype(np.float32)

    def outside_fraction(self, z: np.ndarray) -> np.ndarray:
        """Per curve, the fraction of features outside the training envelope."""
        return np.mean((z < self.low) | (z > self.high), axis=-1)

    def to_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in ("mean", "std", "low", "high")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureScaler:
        try:
            arrays = {k: np.asarray(d[k], dtype=np.float64) for k in ("mean", "std", "low", "high")}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"feature scaler is incomplete or malformed: {exc}") from None
        sizes = {a.shape for a in arrays.values()}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1 or not all(np.all(np.isfinite(a)) for a in arrays.values()):
            raise ValueError("feature scaler arrays must be finite 1-D arrays of one length")
        if np.any(arrays["std"] <= 0):
            raise ValueError("feature scaler has non-positive standard deviations")
        return cls(**arrays)
