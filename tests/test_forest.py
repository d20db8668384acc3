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


def test_auto_engine_uses_the_shipped_forest_from_the_first_call():
    pred = load_predictor("two_phase_high")
    assert pred._forest is not None  # the bundle's forest.npz, loaded with it: no build on any call
    curve = 10 ** pred.scaler.mean[None]
    ref = load_predictor("two_phase_high", engine="xgboost").predict_normalized(curve)
    np.testing.assert_allclose(pred.predict_normalized(curve).values["a"], ref.values["a"], rtol=1e-5)
    with pytest.raises(ValueError, match="unknown engine 'fast'; allowed: auto, flat, xgboost"):
        load_predictor("two_phase_high", engine="fast")


@pytest.mark.user_forest_cache
def test_auto_engine_without_a_stored_forest_builds_it_on_the_second_small_call(tmp_path, monkeypatch):
    import shutil

    from sasview_grf_plugin.ml.forest import FOREST_FILE, forest_cache_dir
    from sasview_grf_plugin.ml.predictor import shipped_bundles

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    copy = tmp_path / "two_phase_high"
    shutil.copytree(shipped_bundles()["two_phase_high"], copy)
    (copy / FOREST_FILE).unlink()
    pred = load_predictor(copy)
    curve = 10 ** pred.scaler.mean[None]
    first = pred.predict_normalized(curve)
    assert pred._forest is None  # a predictor used once never pays for the build
    pred.predict_normalized(np.repeat(curve, predictor_module.FLAT_MAX_CURVES + 1, axis=0))
    assert pred._forest is None  # large batches go to XGBoost
    second = pred.predict_normalized(curve)
    assert pred._forest is not None
    np.testing.assert_allclose(second.values["a"], first.values["a"], rtol=1e-5)
    # The build was kept in the user's cache: the next process has the forest from the start.
    assert (forest_cache_dir() / f"{pred.card['integrity']}.npz").is_file()
    assert load_predictor(copy)._forest is not None


def test_shipped_paper_bundles_carry_their_current_forest():
    from sasview_grf_plugin.ml.forest import FOREST_FILE
    from sasview_grf_plugin.ml.predictor import shipped_bundles

    paper = {c: p for c, p in shipped_bundles().items() if c != "measured"}
    assert len(paper) == 4
    for path in paper.values():
        card = __import__("json").loads((path / "card.json").read_text())
        FlatForest.load(path / FOREST_FILE, card["integrity"])


def test_a_forest_that_disagrees_with_xgboost_is_not_used(monkeypatch):
    real = FlatForest.predict

    def shifted(self, x, outputs=slice(None)):
        return real(self, x, outputs) + 0.01

    monkeypatch.setattr(FlatForest, "predict", shifted)
    monkeypatch.setattr(predictor_module, "find_forest", lambda *args: None)  # no stored forest: a build
    monkeypatch.setattr(predictor_module, "cache_forest", lambda *args: None)
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


# -- forest files: the prebuilt engine, stored and loaded as untrusted input ---------------------------------------

def _saved(boosters, tmp_path, key="k" * 64, **changes):
    """Save a forest of the test boosters (with ``changes`` applied to its arrays first) and return the file."""
    bs, x = boosters
    forest = FlatForest.from_boosters(bs)
    probe = x[:3]
    ref = np.column_stack([bs[0].inplace_predict(probe), bs[1].inplace_predict(probe)])
    if changes:
        import dataclasses

        forest = dataclasses.replace(forest, **changes)
    path = tmp_path / "forest.npz"
    forest.save(path, key, probe, ref)
    return path, forest


def test_a_saved_forest_loads_back_identical(boosters, tmp_path):
    path, forest = _saved(boosters, tmp_path)
    loaded = FlatForest.load(path, "k" * 64)
    for name in ("feature", "threshold", "children", "default_left", "roots", "starts", "intercept", "origin"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(forest, name))
    assert (loaded.depth, loaded.n_features) == (forest.depth, forest.n_features)
    rows = _test_rows(forest, boosters[1])
    np.testing.assert_array_equal(loaded.predict(rows), forest.predict(rows))
    assert not list(tmp_path.glob(".forest-*"))  # the temporary file of the atomic write is gone
    assert path.stat().st_mode & 0o444 == 0o444


def test_forest_files_are_refused_when_they_do_not_fit(boosters, tmp_path):
    path, forest = _saved(boosters, tmp_path)
    with pytest.raises(ValueError, match="built for another bundle"):
        FlatForest.load(path, "x" * 64)
    leaf = forest.children[:, 0] == np.arange(forest.feature.size)
    inner = int(np.flatnonzero(~leaf)[1])
    bad = forest.children.copy()
    bad[inner, 0] = forest.feature.size + 5
    with pytest.raises(ValueError, match="outside the .* nodes"):
        FlatForest.load(_saved(boosters, tmp_path, children=bad)[0], "k" * 64)
    cycle = forest.children.copy()
    cycle[inner, 1] = forest.roots[0]  # a node pointing back to a root: a loop, never a leaf
    with pytest.raises(ValueError, match="two parents"):
        FlatForest.load(_saved(boosters, tmp_path, children=cycle)[0], "k" * 64)
    feature = forest.feature.copy()
    feature[inner] = N_FEATURES
    with pytest.raises(ValueError, match="feature outside"):
        FlatForest.load(_saved(boosters, tmp_path, feature=feature)[0], "k" * 64)
    # Consistent structure, other values: the probe rows catch it.
    threshold = forest.threshold.copy()
    threshold[leaf] += 1.0
    with pytest.raises(ValueError, match="differ from the reference"):
        FlatForest.load(_saved(boosters, tmp_path, threshold=threshold)[0], "k" * 64)
    # Damaged, foreign and pickled files.
    path, _ = _saved(boosters, tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a readable forest file"):
        FlatForest.load(path, "k" * 64)
    np.savez(path, key=np.array([object()], dtype=object))
    with pytest.raises(ValueError):
        FlatForest.load(path, "k" * 64)
    np.savez(path, something=np.zeros(3))
    with pytest.raises(ValueError, match="not a forest file"):
        FlatForest.load(path, "k" * 64)


def test_shipped_measured_bundles_carry_their_current_forest():
    """Each shipped measured bundle has a forest.npz for its card's digest (a retrained bundle must ship a new one),
    and the forest predicts what XGBoost does off the probe rows too."""
    from sasview_grf_plugin.ml.bundle import read_bundle
    from sasview_grf_plugin.ml.forest import FOREST_FILE
    from sasview_grf_plugin.ml.measured import measured_root

    stages = sorted(p.parent for p in measured_root().glob("*/card.json"))
    assert len(stages) == 4
    for stage in stages:
        card = read_bundle(stage, boosters=False).card
        forest = FlatForest.load(stage / FOREST_FILE, card["integrity"])
        assert forest.n_outputs == 3 * len(card["outputs"])
    bundle = read_bundle(measured_root() / "stage1")
    forest = FlatForest.load(bundle.path / FOREST_FILE, bundle.card["integrity"])
    s = bundle.scaler
    rng = np.random.default_rng(7)
    z = (s.low + rng.random((40, s.low.size)) * (s.high - s.low)).astype(np.float32)
    z[rng.random(z.shape) < 0.2] = np.nan
    ref = np.column_stack([bundle.boosters["a"].inplace_predict(z), bundle.interval_boosters["a"].inplace_predict(z)])
    np.testing.assert_allclose(forest.predict(z), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.user_forest_cache
def test_a_bundle_without_a_forest_builds_it_once_into_the_user_cache(tmp_path, monkeypatch):
    import shutil

    from sasview_grf_plugin.ml.forest import FOREST_FILE, forest_cache_dir
    from sasview_grf_plugin.ml.measured import _Stage, measured_root

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    copy = tmp_path / "stage1"
    shutil.copytree(measured_root() / "stage1", copy)
    (copy / FOREST_FILE).unlink()
    built = _Stage(copy)
    assert built._full is not None  # the boosters were loaded to build the forest
    cached = forest_cache_dir() / f"{built.card['integrity']}.npz"
    assert cached.is_file() and str(cached).startswith(str(tmp_path / "data"))
    again = _Stage(copy)
    assert again._full is None  # from the cache: no XGBoost
    z = np.nan_to_num(again.bundle.scaler.low[None].astype(np.float32))
    assert again.raw(z) == built.raw(z)
    cached.write_bytes(b"not a forest")  # a damaged cache is rebuilt, not trusted
    rebuilt = _Stage(copy)
    assert rebuilt._full is not None and rebuilt.raw(z) == built.raw(z)
    FlatForest.load(cached, built.card["integrity"])
