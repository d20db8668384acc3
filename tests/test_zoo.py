"""The shipped default bundles: present for all four cases, verified, and sensible on new curves."""

import numpy as np
import pytest

from sasview_grf_plugin.datasets import (
    CASES,
    PAPER_INTENSITY_SCALE,
    add_noise,
    load_dataset,
    normalize,
    parameter_ranges,
)
from sasview_grf_plugin.ml import load_predictor, read_bundle, shipped_bundles
from sasview_grf_plugin.simulator import PRESETS, simulate_curve


def test_all_four_cases_are_shipped_within_the_size_budget():
    bundles = shipped_bundles()
    assert sorted(bundles) == sorted(CASES)
    # The budget is the boosters' (and cards'); each bundle's prebuilt flat forest (forest.npz, derived from
    # them) comes on top and is smaller than the boosters it was built from.
    total = sum(f.stat().st_size for p in bundles.values() for f in p.iterdir() if f.name != "forest.npz")
    assert total < 25 * 2**20
    for p in bundles.values():
        boosters = sum(f.stat().st_size for f in p.glob("*.ubj.gz"))
        assert 0 < (p / "forest.npz").stat().st_size < boosters


@pytest.mark.parametrize("case", list(CASES))
def test_shipped_bundle_card_and_predictions_on_fresh_curves(case):
    pred = load_predictor(case)
    card = pred.card
    cfg = PRESETS["compact"]
    assert card["case"] == case and card["preset"] == "compact"
    np.testing.assert_allclose(pred.q, cfg.q)
    assert set(card["metrics"][pred.outputs[0]]) == {"train", "val", "test"}
    # Four parameter sets inside the case's ranges, new seeds (not in any dataset: seed 20261123).
    ranges = parameter_ranges(cfg, case)
    rng = np.random.default_rng(20261123)
    truth = {k: rng.uniform(lo + 0.2 * (hi - lo), hi - 0.2 * (hi - lo), 4) if hi > lo else np.zeros(4)
             for k, (lo, hi) in ranges.items()}
    curves = simulate_curve(cfg, truth["a"], truth["porosity"], truth["layer_fraction"], seed=20261123)
    noisy, _ = add_noise(PAPER_INTENSITY_SCALE * curves, rng, alpha=1e3)
    p = pred.predict(cfg.q, noisy)
    for out in pred.outputs:
        # Within 4 test-split RMSEs of the truth (the card's own accuracy), and inside the ranges.
        rmse = np.sqrt(card["metrics"][out]["test"]["mse"])
        assert np.all(np.abs(p.values[out] - truth[out]) < 4 * rmse), (out, p.values[out], truth[out])
    assert np.all(p.in_domain)
    # The raw curve on another scale and in 1/Å gives the same prediction.
    again = pred.predict(cfg.q / 10, 17.0 * curves[0], q_unit="1/A")
    once = pred.predict_normalized(normalize(cfg.q, curves[:1]))
    for out in pred.outputs:
        assert again.values[out][0] == pytest.approx(once.values[out][0], rel=1e-5)


@pytest.mark.slow  # generates and trains all four cases
def test_zoo_build_is_resumable_and_grows_the_training_set(tmp_path):
    from sasview_grf_plugin.ml.zoo import build_zoo

    tiny = PRESETS["compact"].replace(grid_size=24, n_q=60, q_min=0.5, q_max=3.0, n_train=96, n_val=64, n_test=64)
    kw = dict(work=tmp_path / "work", out=tmp_path / "bundles", cases=["two_phase_high"], backend="numpy",
              chunk_size=32, progress=False)
    logs: list[str] = []
    first = build_zoo(tiny, log=logs.append, **kw)["two_phase_high"]
    card = read_bundle(first).card
    assert card["datasets"]["train"]["n"] == 96 and "--n-train" not in card["command"]
    logs.clear()
    build_zoo(tiny, log=logs.append, **kw)
    assert any("complete and verified; skipping" in m for m in logs)
    # A larger training set: the stored one grows (its first 96 curves kept) and the bundle is retrained.
    before = load_dataset(tmp_path / "work" / "compact" / "two_phase_high" / "train").noisy
    again = build_zoo(tiny, n_train=128, log=lambda m: None, **kw)["two_phase_high"]
    grown = load_dataset(tmp_path / "work" / "compact" / "two_phase_high" / "train")
    assert grown.spec.n == 128
    np.testing.assert_array_equal(grown.noisy[:96], before)
    card = read_bundle(again).card
    assert card["datasets"]["train"]["n"] == 128 and "--n-train 128" in card["command"]
    with pytest.raises(ValueError, match="n_train must be an integer >= 2"):
        build_zoo(tiny, n_train=0, **kw)


def test_shipped_bundles_match_the_zoo_defaults():
    # A plain `sasview-grf zoo build` must accept the shipped bundles (and rebuild exactly these).
    from sasview_grf_plugin.ml.zoo import _bundle_ok, zoo_train_size

    for case, path in shipped_bundles().items():
        n = zoo_train_size(PRESETS["compact"], case)
        assert read_bundle(path).card["datasets"]["train"]["n"] == n, case
        assert _bundle_ok(path, "compact", n)
    assert zoo_train_size(PRESETS["compact"].replace(n_train=64), "two_phase_low") == 64
