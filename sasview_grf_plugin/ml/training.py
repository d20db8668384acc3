"""Training XGBoost boosters per output, with early stopping, restarts, random search and intervals.

Paper section 2.4: one booster per output, MSE loss, the paper's hyperparameters,
early stopping on the validation split, best of several restarts. Prediction
intervals are conformalized quantile regression (Romano et al. 2019): a quantile
booster gives a raw interval, the validation split calibrates its width, so that the
coverage on new data from the same distribution is at least nominal.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "PAPER_PARAMS",
    "COMPACT_PARAMS",
    "TABLE1_RANGES",
    "TrainingSettings",
    "settings_for",
    "sample_hyperparameters",
    "train_regressor",
    "train_interval",
    "conformal_margin",
]

# Röding et al. 2022, section 2.4.
PAPER_PARAMS: dict[str, Any] = dict(learning_rate=0.005, max_depth=15, min_child_weight=3, subsample=0.15,
                                    colsample_bytree=0.15, reg_lambda=0.2, max_bin=1024)
# CPU defaults for the compact preset: ~8k curves fit far shallower trees; a 10x larger learning rate
# reaches the early-stopping point in ~1/10 of the rounds.
COMPACT_PARAMS: dict[str, Any] = dict(learning_rate=0.05, max_depth=8, min_child_weight=3, subsample=0.5,
                                      colsample_bytree=0.3, reg_lambda=1.0, max_bin=256)

# Table 1 of the paper (ranges searched).
TABLE1_RANGES: dict[str, Any] = dict(learning_rate=(0.001, 0.05), max_depth=(10, 20), min_child_weight=(1, 10),
                                     subsample=(0.1, 0.5), colsample_bytree=(0.1, 0.3), reg_lambda=(0.1, 10.0),
                                     max_bin=(256, 512, 1024))


@dataclass
class TrainingSettings:
    """How to train one case's boosters."""

    params: dict[str, Any]
    num_boost_round: int
    early_stopping_rounds: int
    restarts: int = 1
    device: str = "cpu"
    seed: int = 0
    interval_level: float = 0.9
    random_search_trials: int = 0
    nthread: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if not 0.5 <= self.interval_level < 1:
            raise ValueError(f"interval_level must lie in [0.5, 1) (the nominal coverage of the intervals), got "
                             f"{self.interval_level}")
        for name in ("num_boost_round", "early_stopping_rounds", "restarts"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return {"params": dict(self.params), "num_boost_round": self.num_boost_round,
                "early_stopping_rounds": self.early_stopping_rounds, "restarts": self.restarts,
                "device": self.device, "seed": self.seed, "interval_level": self.interval_level,
                "random_search_trials": self.random_search_trials}


def settings_for(preset: str, **overrides: Any) -> TrainingSettings:
    """Defaults: the paper's hyperparameters for ``paper``; faster ones for ``compact``."""
    if preset == "paper":
        base = TrainingSettings(params=dict(PAPER_PARAMS), num_boost_round=50_000, early_stopping_rounds=1000,
                                restarts=10)
    elif preset == "compact":
        base = TrainingSettings(params=dict(COMPACT_PARAMS), num_boost_round=5000, early_stopping_rounds=100,
                                restarts=1)
    else:
        raise ValueError(f"no training defaults for preset {preset!r}; use 'paper' or 'compact'")
    for k, v in overrides.items():
        if v is not None:
            setattr(base, k, v)
    base.__post_init__()
    return base


def sample_hyperparameters(rng: np.random.Generator) -> dict[str, Any]:
    """One draw of the paper's Table 1 (log-uniform for rates and regularization)."""
    r = TABLE1_RANGES
    return dict(
        learning_rate=float(10 ** rng.uniform(*np.log10(r["learning_rate"]))),
        max_depth=int(rng.integers(r["max_depth"][0], r["max_depth"][1] + 1)),
        min_child_weight=int(rng.integers(r["min_child_weight"][0], r["min_child_weight"][1] + 1)),
        subsample=float(rng.uniform(*r["subsample"])),
        colsample_bytree=float(rng.uniform(*r["colsample_bytree"])),
        reg_lambda=float(10 ** rng.uniform(*np.log10(r["reg_lambda"]))),
        max_bin=int(rng.choice(r["max_bin"])),
    )


def _xgb_params(settings: TrainingSettings, params: dict[str, Any], seed: int, **extra: Any) -> dict[str, Any]:
    out = {"tree_method": "hist", "device": settings.device, "seed": int(seed), **params, **extra}
    if settings.nthread:
        out["nthread"] = int(settings.nthread)
    return out


def _dmatrices(x_tr, y_tr, x_va, y_va, max_bin: int, client: Any = None):
    import xgboost as xgb

    # QuantileDMatrix bins once and shares the cuts with the validation matrix.
    if client is not None:
        from xgboost import dask as dxgb

        dtr = dxgb.DaskQuantileDMatrix(client, x_tr, label=y_tr, max_bin=max_bin)
        dva = dxgb.DaskQuantileDMatrix(client, x_va, label=y_va, ref=dtr, max_bin=max_bin)
        return dtr, dva
    dtr = xgb.QuantileDMatrix(x_tr, label=y_tr, max_bin=max_bin)
    dva = xgb.QuantileDMatrix(x_va, label=y_va, ref=dtr, max_bin=max_bin)
    return dtr, dva


def _train(params: dict[str, Any], dtr: Any, dva: Any, settings: TrainingSettings, client: Any = None) -> Any:
    """xgboost.train, or xgboost.dask.train on a cluster; returns the booster cut at its best iteration."""
    import xgboost as xgb

    kw = dict(num_boost_round=settings.num_boost_round, evals=[(dva, "val")],
              early_stopping_rounds=settings.early_stopping_rounds, verbose_eval=False)
    if client is None:
        booster = xgb.train(params, dtr, **kw)
    else:
        from xgboost import dask as dxgb

        booster = dxgb.train(client, params, dtr, **kw)["booster"]
    return booster[: int(booster.best_iteration) + 1]


def _predict(booster: Any, x: Any, client: Any = None) -> np.ndarray:
    if client is None:
        return booster.inplace_predict(x)
    from xgboost import dask as dxgb

    return np.asarray(dxgb.inplace_predict(client, booster, x).compute())


def train_regressor(x_tr: Any, y_tr: Any, x_va: Any, y_va: Any, settings: TrainingSettings,
                    params: dict[str, Any] | None = None, progress: Any = None,
                    client: Any = None) -> tuple[Any, dict[str, Any]]:
    """Best of ``settings.restarts`` MSE boosters (early stopping on the validation split).

    Arrays are NumPy, or Dask arrays with a ``dask.distributed.Client`` (training by
    ``xgboost.dask`` on the cluster). Returns the booster (cut at its best iteration) and
    a record of the runs.
    """
    params = dict(settings.params if params is None else params)
    dtr, dva = _dmatrices(x_tr, y_tr, x_va, y_va, int(params.get("max_bin", 256)), client)
    y_va_np = np.asarray(y_va)
    best, runs = None, []
    for r in range(settings.restarts):
        t0 = time.perf_counter()
        booster = _train(_xgb_params(settings, params, settings.seed + r, objective="reg:squarederror",
                                     eval_metric="rmse"), dtr, dva, settings, client)
        it = int(booster.num_boosted_rounds()) - 1
        mse = float(np.mean((_predict(booster, x_va, client) - y_va_np) ** 2))
        runs.append({"restart": r, "best_iteration": it, "val_mse": mse, "seconds": time.perf_counter() - t0})
        if progress is not None:
            progress(runs[-1])
        if best is None or mse < best[1]:
            best = (booster, mse)
    assert best is not None
    return best[0], {"runs": runs, "best_iteration": int(best[0].num_boosted_rounds()) - 1, "val_mse": best[1]}


def train_interval(x_tr: Any, y_tr: Any, x_va: Any, y_va: Any, settings: TrainingSettings,
                   params: dict[str, Any] | None = None, client: Any = None) -> tuple[Any, dict[str, Any]]:
    """Quantile booster for the (1-level)/2 and (1+level)/2 quantiles, plus its conformal margin."""
    params = dict(settings.params if params is None else params)
    lvl = settings.interval_level
    alphas = np.array([(1 - lvl) / 2, (1 + lvl) / 2])
    dtr, dva = _dmatrices(x_tr, y_tr, x_va, y_va, int(params.get("max_bin", 256)), client)
    booster = _train(_xgb_params(settings, params, settings.seed + 1000, objective="reg:quantileerror",
                                 quantile_alpha=alphas), dtr, dva, settings, client)
    margin = conformal_margin(_predict(booster, x_va, client).reshape(-1, 2), np.asarray(y_va), lvl)
    return booster, {"alphas": alphas.tolist(), "margin": margin,
                     "best_iteration": int(booster.num_boosted_rounds()) - 1}


def conformal_margin(raw_interval: np.ndarray, y: np.ndarray, level: float) -> float:
    """CQR calibration: the ceil((n+1) level)/n empirical quantile of max(lo - y, y - hi).

    Negative where the quantile boosters' raw interval is wider than needed: CQR then narrows it, which is
    what keeps the coverage at the nominal level (the card check accepts such margins down to minus half the
    output's range).
    """
    scores = np.maximum(raw_interval[:, 0] - y, y - raw_interval[:, 1])
    n = scores.size
    k = min(n, math.ceil((n + 1) * level))
    return float(np.sort(scores)[k - 1])
