"""From datasets to a verified bundle: train every output of a case, calibrate intervals, evaluate, write."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.cases import get_case, parameter_ranges
from ..datasets.storage import Dataset
from .bundle import write_bundle
from .evaluation import evaluate_predictions
from .features import FeatureScaler, log_features
from .training import TrainingSettings, sample_hyperparameters, train_interval, train_regressor

__all__ = ["train_bundle", "dataset_fingerprint"]


def dataset_fingerprint(ds: Dataset) -> str:
    """SHA-256 of a dataset's spec and of its inputs and targets."""
    h = hashlib.sha256(json.dumps(ds.spec.to_dict(), sort_keys=True).encode())
    for name in ("noisy", "a", "porosity", "layer_fraction"):
        h.update(np.ascontiguousarray(np.asarray(getattr(ds, name))).tobytes())
    return h.hexdigest()


def _check_compatible(train: Dataset, other: Dataset, name: str) -> None:
    a, b = train.spec, other.spec
    if a.case != b.case:
        raise ValueError(f"{name} split is of case {b.case!r} but the training split of {a.case!r}")
    if a.config.to_dict() | {"n_train": 0, "n_val": 0, "n_test": 0, "name": ""} != \
            b.config.to_dict() | {"n_train": 0, "n_val": 0, "n_test": 0, "name": ""}:
        raise ValueError(f"{name} split was simulated with another configuration than the training split")


def _features(ds: Dataset, scaler: FeatureScaler | None, client: Any) -> Any:
    if client is None:
        return scaler.transform(log_features(ds.noisy)) if scaler is not None else log_features(ds.noisy)
    import dask.array as da

    x = da.log10(da.asarray(ds.noisy).astype(np.float64))
    return x if scaler is None else ((x - scaler.mean) / scaler.std).astype(np.float32)


def train_bundle(out: str | os.PathLike, train: Dataset, val: Dataset, test: Dataset | None,
                 settings: TrainingSettings, log: Callable[[str], None] = print,
                 command: str = "", client: Any = None) -> Path:
    """Train the case's boosters on ``train``, stop early on ``val``, evaluate, and write a bundle.

    With ``settings.random_search_trials`` > 0, hyperparameters are first drawn from the
    paper's Table 1 and the best (validation MSE of the porosity, as in the paper) is used.
    With a ``dask.distributed.Client`` (datasets loaded with ``lazy=True``), training runs on
    the cluster through ``xgboost.dask``.
    """
    from .. import __version__

    case = get_case(train.spec.case)
    _check_compatible(train, val, "validation")
    if test is not None:
        _check_compatible(train, test, "test")
    t0 = time.perf_counter()
    if client is None:
        scaler = FeatureScaler.fit(log_features(train.noisy))
    else:
        import dask

        logx = _features(train, None, client)
        mean, std, lo, hi = dask.compute(logx.mean(0), logx.std(0), logx.min(0), logx.max(0))
        std = np.where(std > 0, std, 1.0)
        scaler = FeatureScaler(mean=mean, std=std, low=(lo - mean) / std, high=(hi - mean) / std)
    x_tr, x_va = _features(train, scaler, client), _features(val, scaler, client)
    params = dict(settings.params)
    search = []
    if settings.random_search_trials:
        rng = np.random.default_rng(settings.seed)
        for trial in range(settings.random_search_trials):
            cand = {**params, **sample_hyperparameters(rng)}
            _, info = train_regressor(x_tr, train.porosity, x_va, val.porosity,
                                      TrainingSettings(**{**settings.__dict__, "params": cand, "restarts": 1}),
                                      client=client)
            search.append({"params": cand, "val_mse": info["val_mse"], "best_iteration": info["best_iteration"]})
            log(f"  search {trial + 1}/{settings.random_search_trials}: porosity val MSE {info['val_mse']:.3e}")
        params = min(search, key=lambda s: s["val_mse"])["params"]
    boosters, intervals, record = {}, {}, {}
    for out_name in case.outputs:
        booster, info = train_regressor(x_tr, getattr(train, out_name), x_va, getattr(val, out_name), settings,
                                        params=params, client=client)
        ibooster, iinfo = train_interval(x_tr, getattr(train, out_name), x_va, getattr(val, out_name), settings,
                                         params=params, client=client)
        boosters[out_name], intervals[out_name] = booster, ibooster
        record[out_name] = {"point": info, "interval": iinfo}
        log(f"  {out_name}: {info['best_iteration'] + 1} trees, val MSE {info['val_mse']:.3e}; "
            f"interval margin {iinfo['margin']:.3g}")
    cfg = train.spec.config
    card: dict[str, Any] = {
        "case": case.name,
        "outputs": list(case.outputs),
        "preset": cfg.name,
        "config": cfg.to_dict(),
        "q": {"min": cfg.q_min, "max": cfg.q_max, "n": cfg.n_q, "unit": "1/nm"},
        "scaler": scaler.to_dict(),
        "parameter_ranges": {k: list(v) for k, v in parameter_ranges(cfg, case).items() if k in case.outputs},
        "interval_level": settings.interval_level,
        "intervals": {o: {"method": "conformalized quantile regression (validation split)",
                          "alphas": record[o]["interval"]["alphas"], "margin": record[o]["interval"]["margin"]}
                      for o in case.outputs},
        "training": {**settings.to_dict(), "params": params, "random_search": search,
                     "best_iterations": {o: record[o]["point"]["best_iteration"] for o in case.outputs},
                     "restart_runs": {o: record[o]["point"]["runs"] for o in case.outputs},
                     "seconds": time.perf_counter() - t0},
        "datasets": {name: {"path": str(ds.path), "n": ds.spec.n, "seed": ds.spec.seed,
                            "fingerprint": dataset_fingerprint(ds)}
                     for name, ds in (("train", train), ("val", val), ("test", test)) if ds is not None},
        "noise": {"alpha_range": list(train.spec.alpha_range), "intensity_scale": train.spec.intensity_scale},
        "versions": _versions(__version__),
        "command": command,
    }
    path = write_bundle(out, card, boosters, intervals)
    # Metrics come from the written bundle, read back and verified, as users will load it.
    from .predictor import load_predictor

    predictor = load_predictor(path)
    splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    splits = {k: v if isinstance(v.noisy, np.ndarray) else _in_memory(v) for k, v in splits.items()}
    card["metrics"] = evaluate_predictions(predictor, splits)
    path = write_bundle(out, card, boosters, intervals)
    # The prebuilt flat forest, keyed by the final card's digest: predictions never wait for its build.
    from .predictor import write_forest

    write_forest(path)
    return path


def _in_memory(ds: Dataset) -> Dataset:
    from ..datasets.storage import load_dataset

    return load_dataset(ds.path)


def _versions(package_version: str) -> dict[str, str]:
    import numpy
    import xgboost

    return {"sasview_grf_plugin": package_version, "xgboost": xgboost.__version__, "numpy": numpy.__version__}
