"""Measurement noise and normalization of simulated curves (paper section 2.3, Eq. 12).

Noise: lognormal with mean I(q) and variance alpha I(q), alpha log-uniform in
[1e2, 1e5.5] per curve. The paper adds it to |FFT(rho)|^2 of its 512^3 grid of
0.5 nm voxels; our intensities are per unit volume (dx^3/N^3 |FFT|^2), so the
noise acts on ``PAPER_INTENSITY_SCALE * I``: exactly the paper's scale at the
paper preset, and the same relative noise for the same physical curve at any
grid (the illuminated volume is the experiment's, not the simulation box's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ALPHA_RANGE", "PAPER_INTENSITY_SCALE", "sample_alpha", "add_noise", "normalize", "porod_weights"]

ALPHA_RANGE = (1e2, 10**5.5)

# N^3 / dx^3 of the paper's grid: (512)^3 / (0.5 nm)^3 = 2^30 nm^-3.
PAPER_INTENSITY_SCALE = float(2**30)


def _as_curves(intensity: Any, name: str = "intensity") -> np.ndarray:
    arr = np.asarray(intensity, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] < 2:
        raise ValueError(f"{name} must be one curve (n_q,) or a batch (n, n_q) with n_q >= 2, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def sample_alpha(rng: np.random.Generator, size: int | None = None,
                 alpha_range: tuple[float, float] = ALPHA_RANGE) -> np.ndarray | float:
    """Noise levels alpha, log-uniform in ``alpha_range``."""
    lo, hi = alpha_range
    if not 0 < lo <= hi:
        raise ValueError(f"alpha_range must satisfy 0 < low <= high, got {alpha_range}")
    return 10.0 ** rng.uniform(np.log10(lo), np.log10(hi), size=size)


def add_noise(intensity: Any, rng: np.random.Generator, alpha: Any = None,
              alpha_range: tuple[float, float] = ALPHA_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """Lognormal noise with mean ``intensity`` and variance ``alpha * intensity``.

    Parameters
    ----------
    intensity
        Positive curve (n_q,) or batch (n, n_q), on the scale the noise refers to
        (see ``PAPER_INTENSITY_SCALE``).
    rng
        NumPy generator.
    alpha
        Noise level per curve (scalar or (n,)); drawn log-uniform in ``alpha_range`` if ``None``.

    Returns
    -------
    noisy, alpha
        Noisy curves (same shape, all > 0) and the alpha used per curve.
    """
    i = _as_curves(intensity)
    if np.any(i <= 0):
        raise ValueError("intensity must be > 0 everywhere for lognormal noise")
    batch = i.reshape(-1, i.shape[-1])
    if alpha is None:
        alpha_arr = np.asarray(sample_alpha(rng, batch.shape[0], alpha_range), dtype=np.float64)
    else:
        alpha_arr = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (batch.shape[0],)).copy()
        if not np.all(np.isfinite(alpha_arr) & (alpha_arr >= 0)):
            raise ValueError(f"alpha must be finite and >= 0, got {alpha!r}")
    # Lognormal with mean m and variance v: sigma^2 = log(1 + v/m^2), mu = log(m) - sigma^2/2.
    s2 = np.log1p(alpha_arr[:, None] / batch)
    mu = np.log(batch) - 0.5 * s2
    noisy = np.exp(mu + np.sqrt(s2) * rng.standard_normal(batch.shape))
    return noisy.reshape(i.shape), (alpha_arr if i.ndim == 2 else alpha_arr[0])


def porod_weights(q: Any) -> np.ndarray:
    """Weights 4 pi q_i^2 dq_i of Eq. 12 (dq_i the local q spacing; the constant step on a uniform grid)."""
    qa = np.asarray(q, dtype=np.float64)
    if qa.ndim != 1 or qa.size < 2:
        raise ValueError(f"q must be a 1-D array of at least 2 values, got shape {qa.shape}")
    if not np.all(np.isfinite(qa)) or np.any(qa < 0):
        raise ValueError("q must be finite and >= 0")
    if np.any(np.diff(qa) <= 0):
        raise ValueError("q must be strictly increasing")
    return 4.0 * np.pi * qa**2 * np.gradient(qa)


def normalize(q: Any, intensity: Any) -> np.ndarray:
    """Divide each curve by 4 pi Q~ = sum_i I(q_i) 4 pi q_i^2 dq (paper Eq. 12)."""
    i = _as_curves(intensity)
    w = porod_weights(q)
    if i.shape[-1] != w.size:
        raise ValueError(f"intensity has {i.shape[-1]} points per curve but q has {w.size}")
    total = i @ w
    if np.any(total <= 0):
        raise ValueError("cannot normalize a curve whose 4 pi Q~ is <= 0")
    return i / (total[..., None] if i.ndim == 2 else total)
