"""Evaluation as in the paper's Table 2 (MSE, MAPE per output and split), interval coverage, and figures
(parity plots as Figs. 4-5, the replicate histogram of Fig. 6)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["regression_metrics", "interval_coverage", "evaluate_predictions", "parity_plot", "replicate_histogram"]

LABELS = {"a": "a [nm]", "porosity": "porosity ε", "layer_fraction": "layer fraction ν"}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE (Eq. 13) and MAPE in % (Eq. 14)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return {"mse": float(np.mean((y_pred - y_true) ** 2)),
            "mape": float(100.0 * np.mean(np.abs((y_pred - y_true) / y_true))),
            "n": int(y_true.size)}


def interval_coverage(y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Fraction of true values inside [lower, upper]."""
    return float(np.mean((y_true >= lower) & (y_true <= upper)))


def evaluate_predictions(predictor: Any, datasets: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics per output and split: {output: {split: {mse, mape, n, coverage, mean_width}}}."""
    out: dict[str, dict[str, dict[str, float]]] = {o: {} for o in predictor.outputs}
    for split, ds in datasets.items():
        pred = predictor.predict_normalized(ds.noisy)
        for o in predictor.outputs:
            truth = getattr(ds, o)
            m = regression_metrics(truth, pred.values[o])
            m["coverage"] = interval_coverage(truth, pred.lower[o], pred.upper[o])
            m["mean_width"] = float(np.mean(pred.upper[o] - pred.lower[o]))
            out[o][split] = m
    return out


def parity_plot(truth: dict[str, np.ndarray], predicted: dict[str, np.ndarray], path: str | os.PathLike,
                title: str = "", max_points: int = 20000) -> None:
    """Predicted against true values, one panel per output (the paper's Figs. 4-5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(predicted)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.0), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        t, p = np.asarray(truth[name]), np.asarray(predicted[name])
        sel = slice(None) if t.size <= max_points else np.random.default_rng(0).choice(t.size, max_points, False)
        ax.scatter(t[sel], p[sel], s=3, alpha=0.35, edgecolors="none")
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        m = regression_metrics(t, p)
        ax.set_xlabel(f"true {LABELS.get(name, name)}")
        ax.set_ylabel(f"predicted {LABELS.get(name, name)}")
        ax.set_title(f"MAPE {m['mape']:.2f} %, MSE {m['mse']:.2e}", fontsize=10)
        ax.set_aspect("equal", adjustable="box")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replicate_histogram(predicted: dict[str, np.ndarray], truth: dict[str, float], path: str | os.PathLike,
                        title: str = "") -> dict[str, tuple[float, float]]:
    """Histograms of predictions for replicate curves of one parameter set (the paper's Fig. 6).

    Returns {output: (mean, sd)}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(predicted)
    stats = {}
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        v = np.asarray(predicted[name])
        stats[name] = (float(v.mean()), float(v.std(ddof=1)))
        ax.hist(v, bins=30, color="0.6", edgecolor="0.3")
        ax.axvline(truth[name], color="k", lw=1.5)
        ax.set_xlabel(f"predicted {LABELS.get(name, name)}")
        ax.set_title(f"{stats[name][0]:.4g} ± {stats[name][1]:.2g} (true {truth[name]:g})", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return stats
