"""Features of measured curves on any q window: local log-log slopes on a fixed logarithmic grid.

The "measured" booster family sees a curve through its log-log slopes ``d ln I / d ln x`` between
neighbouring points of a fixed grid in ``ln x``. Two properties make this the right input for real data:

- The slopes ignore the intensity scale (arbitrary units, unknown contrast, absolute or not).
- With ``x = q a0`` for a length ``a0``, changing the structure's length scale only shifts the
  curve along the grid: a second stage works in ``q a0`` with ``a0`` from a first one, so one booster
  serves every length scale.

Grid points outside the measured window are NaN, which XGBoost treats as missing (its trees learn
a default direction for them), so any window works. The points of each grid cell are averaged to one
point (mean ln q, mean ln I; dense data: noise averages out), and the grid values are interpolated
linearly between those points (sparse data: across empty cells), never extrapolated beyond them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LogGrid", "log_bins", "slope_features"]


@dataclass(frozen=True)
class LogGrid:
    """A logarithmic grid of ``n`` points from ``x_min`` to ``x_max`` (dimensionless or 1/Å)."""

    x_min: float
    x_max: float
    n: int

    def __post_init__(self) -> None:
        if not (0 < self.x_min < self.x_max and np.isfinite(self.x_max)) or int(self.n) < 3:
            raise ValueError(f"a log grid needs 0 < x_min < x_max and n >= 3, got {self}")

    @property
    def centres(self) -> np.ndarray:
        return np.geomspace(self.x_min, self.x_max, int(self.n))

    @property
    def step(self) -> float:
        """Spacing in ln x."""
        return float(np.log(self.x_max / self.x_min) / (int(self.n) - 1))

    @property
    def n_features(self) -> int:
        return int(self.n) - 1

    def to_dict(self) -> dict[str, Any]:
        return {"x_min": float(self.x_min), "x_max": float(self.x_max), "n": int(self.n), "spacing": "log"}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogGrid:
        try:
            return cls(float(d["x_min"]), float(d["x_max"]), int(d["n"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"feature grid is malformed: {exc}") from None


def log_bins(x: Any, intensity: Any, grid: LogGrid) -> np.ndarray:
    """Mean ln I per grid cell for curves on abscissae ``x`` (scaled q), NaN outside the window.

    Parameters
    ----------
    x
        Strictly increasing positive abscissae: one (m,) shared by all curves, or (n, m), one per curve.
    intensity
        Positive intensities (m,) or (n, m).
    grid
        The feature grid.

    Returns
    -------
    (n, grid.n) array of ln I at the grid points (NaN where the curve does not reach).
    """
    i = np.asarray(intensity, dtype=np.float64)
    single = i.ndim == 1
    i = np.atleast_2d(i)
    xs = np.asarray(x, dtype=np.float64)
    xs = np.broadcast_to(xs, i.shape) if xs.ndim == 1 else xs
    if xs.shape != i.shape:
        raise ValueError(f"x has shape {xs.shape} but the intensities {i.shape}")
    lx, li = np.log(xs), np.log(i)
    c = np.log(grid.centres)
    n, m = i.shape
    # Cell of each point: the nearest grid point (cells are +- half a step around it).
    cell = np.rint((lx - c[0]) / grid.step).astype(np.int64)
    inside = (cell >= 0) & (cell < grid.n)
    rows = np.broadcast_to(np.arange(n)[:, None], (n, m))
    flat = (rows * grid.n + np.clip(cell, 0, grid.n - 1))[inside]
    counts = np.bincount(flat, minlength=n * grid.n).reshape(n, grid.n)
    sum_x = np.bincount(flat, weights=lx[inside], minlength=n * grid.n).reshape(n, grid.n)
    sum_y = np.bincount(flat, weights=li[inside], minlength=n * grid.n).reshape(n, grid.n)
    out = np.full((n, grid.n), np.nan)
    for r in range(n):
        have = counts[r] > 0
        if not have.any():
            continue
        # Each cell's points become one point at their mean (ln q, ln I): averaging the noise without
        # biasing the level by where in the cell the points lie. The grid values are then interpolated
        # between those points (sparse data: across empty cells), never extrapolated past them.
        px, py = sum_x[r, have] / counts[r, have], sum_y[r, have] / counts[r, have]
        ok = (c >= px[0]) & (c <= px[-1])
        out[r, ok] = np.interp(c[ok], px, py)
    return out[0] if single else out


def slope_features(log_binned: Any, grid: LogGrid) -> np.ndarray:
    """Slopes d ln I / d ln x between neighbouring grid points (NaN where either is missing), float32."""
    lb = np.atleast_2d(np.asarray(log_binned, dtype=np.float64))
    if lb.shape[-1] != grid.n:
        raise ValueError(f"expected {grid.n} binned values per curve, got {lb.shape[-1]}")
    return (np.diff(lb, axis=-1) / grid.step).astype(np.float32)
