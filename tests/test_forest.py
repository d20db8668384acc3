"""The flat forest engine reproduces XGBoost's predictions: same leaf in every tree, same sums."""

import warnings

import numpy as np
import pytest
import xgboost as xgb

from sasview_grf_plugin.ml import BundleError, load_predictor
from sasview_grf_plugin.ml import predictor as predictor_module
from sasview_grf_plugin.ml.forest import FlatForest

N_FEATURES = 12


@pytest.fixture(scope="module")
def boosters():
    """A squared-error and a two-quantile booster, trained on data with missing values (so that the
    learned default directions differ between nodes)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, N_FEATURES)).astype(np.float32)
    y = x[:, 0] - 2 * x[:, 1] * x[:, 2] + rng.normal(0, 0.3, 600)
    x[rng.random(x.shape) < 0.15] = np.nan
    d = xgb.DMatrix(x, y)
    common = {"max_depth": 5, "learning_rate": 0.3, "nthread": 1, "seed": 0}
    mse = xgb.train({**common, "objective": "reg:squarederror"}, d, 40)
    quant = xgb.train({**common, "objective": "reg:quantileerror", "quantile_alpha": [0.1, 0.9]}, d, 25)
    return [mse, quant], x


def _test_rows(forest: FlatForest, x: np.ndarray) -> np.ndarray:
    """Random rows, rows with NaNs, and rows sitting exactly on split thresholds (x == condition goes right)."""
    rng = np.random.default_rng(4)
    rows = [x[:100], rng.normal(size=(50, N_FEATURES)).astype(np.float32)]
    splits = np.flatnonzero(forest.children[:, 0] != np.arange(forest.feature.size))
    on_split = rng.normal(size=(splits.size, N_FEATURES)).astype(np.float32)
    on_split[np.arange(splits.size), forest.feature[splits]] = forest.threshold[splits]
    rows.append(on_split)
    return np.concatenate(rows)


def test_same_leaf_as_xgboost_in_every_tree(boosters):
    bs, x = boosters
    forest = FlatForest.from_boosters(bs)
    rows = _test_rows(forest, x)
    assert np.isnan(rows).any()
    leaves = forest.leaves(rows)
    for b, booster in enumerate(bs):
        ref = booster.predict(xgb.DMatrix(rows), pred_leaf=True)
        mine = np.flatnonzero(forest.origin[:, 0] == b)
        local = leaves[:, mine] - forest.roots[mine]
        order = forest.origin[mine, 1]
        got = np.empty_like(local)
        got[:, order] = local
        np.testing.assert_array_equal(got, ref)


def test_predictions_equal_xgboost(boosters):
    bs, x = boosters
    forest = FlatForest.from_boosters(bs)
    rows = _test_rows(forest, x)
    ref = np.column_stack([bs[0].inplace_predict(rows), bs[1].inplace_predict(rows)])
    assert forest.n_outputs == 3
    # Same leaves; only the summation order differs (float32 in XGBoost): relative 1e-6 over 40 trees.
    np.testing.assert_allclose(forest.predict(rows), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(forest.predict(rows[:1]), ref[:1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(forest.predict(rows, slice(1, 3)), ref[:, 1:], rtol=1e-5, atol=1e-6)
    # Row blocks (bounded memory for large batches) change nothing.
    np.testing.assert_array_equal(forest.predict(rows, block=7), forest.predict(rows))
    assert forest.predict(rows[:0]).shape == (0, 3)
    with pytest.raises(ValueError, match="contiguous slice"):
        forest.predict(rows, slice(0, 3, 2))


def test_unsupported_models_are_refused_by_name(boosters):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 4))
    d = xgb.DMatrix(x, (x[:, 0] > 0).astype(float))
    logistic = xgb.train({"objective": "binary:logistic", "nthread": 1}, d, 3)
    with pytest.raises(ValueError, match="objective 'binary:logistic' is not supported"):
        FlatForest.from_boosters([logistic], ["clf"])
    dart = xgb.train({"booster": "dart", "nthread": 1}, d, 3)
    with pytest.raises(ValueError, match="booster type 'dart'"):
        FlatForest.from_boosters([dart])
    with pytest.raises(ValueError, match="features"):
        FlatForest.from_boosters([boosters[0][0], xgb.train({"nthread": 1}, d, 2)])
    with pytest.raises(ValueError, match=r"shape \(n, 12\)"):
        FlatForest.from_boosters(boosters[0]).predict(np.zeros((1, 5)))


def test_shipped_bundle_engines_agree():
    rng = np.random.default_rng(6)
    flat = load_predictor("three_phase_high", engine="flat")
    ref = load_predictor("three_phase_high", engine="xgboost")
    # Curves inside and outside the training envelope, one at a time and as a batch.
    z = rng.normal(0, 1.5, (20, flat.q.size))
    normalized = 10 ** (z * flat.scaler.std + flat.scaler.mean)
    for curves in (normalized[:1], normalized):
        a, b = flat.predict_normalized(curves), ref.predict_normalized(curves)
        for out in flat.outputs:
            for field in ("values", "lower", "upper"):
                np.testing.assert_allclose(getattr(a, field)[out], getattr(b, field)[out], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(a.in_domain, b.in_domain)


def test_auto_engine_builds_the_forest_on_the_second_small_call():
    pred = load_predictor("two_phase_high")
    curve = 10 ** pred.scaler.mean[None]
    first = pred.predict_normalized(curve)
    assert pred._forest is None  # a predictor used once never pays for the build
    pred.predict_normalized(np.repeat(curve, predictor_module.FLAT_MAX_CURVES + 1, axis=0))
    assert pred._forest is None  # large batches go to XGBoost
    second = pred.predict_normalized(curve)
    assert pred._forest is not None
    np.testing.assert_allclose(second.values["a"], first.values["a"], rtol=1e-5)
    with pytest.raises(ValueError, match="unknown engine 'fast'; allowed: auto, flat, xgboost"):
        load_predictor("two_phase_high", engine="fast")


def test_a_forest_that_disagrees_with_xgboost_is_not_used(monkeypatch):
    real = FlatForest.predict

    def shifted(self, x, outputs=slice(None)):
        return real(self, x, outputs) + 0.01

    monkeypatch.setattr(FlatForest, "predict", shifted)
    with pytest.raises(BundleError, match="differ from XGBoost"):
        load_predictor("two_phase_low", engine="flat")
    pred = load_predictor("two_phase_low")
    curve = 10 ** pred.scaler.mean[None]
    first = pred.predict_normalized(curve)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = pred.predict_normalized(curve)
    assert any("using XGBoost for single curves" in str(w.message) for w in caught)
    assert second.values["porosity"][0] == first.values["porosity"][0]
