import json
import shutil

import numpy as np
import pytest

from sasview_grf_plugin.datasets import generate_dataset
from sasview_grf_plugin.ml import BundleError, load_predictor, read_bundle, settings_for
from sasview_grf_plugin.ml.pipeline import train_bundle
from sasview_grf_plugin.simulator import PRESETS, simulate_curve

# A small, quick case: 32^3 grids, 120 q points in [0.4, 3] 1/nm, a in [0.8, 2] nm (a few voxels).
CFG = PRESETS["compact"].replace(grid_size=32, n_q=120, q_min=0.4, q_max=3.0, a_range=(0.8, 2.0))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml")
    sizes = {"train": 1200, "val": 400, "test": 400}
    ds = {s: generate_dataset(root / s, "three_phase_high", s, config=CFG, n=n, chunk_size=100, seed=1,
                              progress=False).read() for s, n in sizes.items()}
    settings = settings_for("compact", num_boost_round=600, early_stopping_rounds=40, nthread=2)
    bundle = train_bundle(root / "bundle", ds["train"], ds["val"], ds["test"], settings, log=lambda m: None)
    return bundle, ds


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A bundle on the same grid trained in seconds (its accuracy means nothing): for the tests of the
    machinery (reloading, errors, refusals, the CLI), which need a bundle, not a good one."""
    root = tmp_path_factory.mktemp("ml-small")
    sizes = {"train": 160, "val": 80, "test": 80}
    ds = {s: generate_dataset(root / s, "three_phase_high", s, config=CFG, n=n, chunk_size=80, seed=2,
                              progress=False).read() for s, n in sizes.items()}
    settings = settings_for("compact", num_boost_round=10, early_stopping_rounds=5, nthread=1)
    settings.params = {**settings.params, "max_depth": 4}
    bundle = train_bundle(root / "bundle", ds["train"], ds["val"], ds["test"], settings, log=lambda m: None)
    return bundle, ds


@pytest.mark.slow  # trains a bundle for minutes
def test_boosters_beat_the_trivial_predictor_by_far(trained):
    bundle, ds = trained
    card = json.loads((bundle / "card.json").read_text())
    # Ratios to the trivial predictor's MSE measured at this size: a 0.15, layer fraction 0.15, porosity 0.55
    # (the hardest output, as in the paper: a 16 nm box holds little of its information). Shuffled labels,
    # a wrong scaler or swapped outputs give ratios >= 1.
    limits = {"a": 0.35, "porosity": 0.7, "layer_fraction": 0.35}
    for out, limit in limits.items():
        trivial = np.mean((getattr(ds["test"], out) - getattr(ds["train"], out).mean()) ** 2)
        assert card["metrics"][out]["test"]["mse"] < limit * trivial, out
    # The scaler comes from the training split alone.
    logx = np.log10(ds["train"].noisy.astype(np.float64))
    np.testing.assert_allclose(card["scaler"]["mean"], logx.mean(0), rtol=1e-10)


def test_reloaded_bundle_predicts_identically(small, tmp_path):
    bundle, ds = small
    first = load_predictor(bundle).predict_normalized(ds["test"].noisy[:50])
    copy = shutil.copytree(bundle, tmp_path / "copy")
    again = load_predictor(copy).predict_normalized(ds["test"].noisy[:50])
    for out in first.values:
        np.testing.assert_array_equal(first.values[out], again.values[out])
        np.testing.assert_array_equal(first.lower[out], again.lower[out])


@pytest.mark.slow  # trains a bundle for minutes
def test_interval_coverage_is_nominal_on_held_out_data(trained):
    # Conformal calibration on the validation split gives coverage >= 0.9 in expectation and at most
    # 0.9 + 1/(n_val + 1); on 400 test curves the sampling sd is sqrt(0.09/400) = 0.015: allow 4 sd.
    bundle, _ = trained
    card = json.loads((bundle / "card.json").read_text())
    for out in ("a", "porosity", "layer_fraction"):
        assert abs(card["metrics"][out]["test"]["coverage"] - 0.9) < 0.06, out


@pytest.mark.slow  # trains a bundle for minutes
def test_predict_from_raw_curves_on_another_grid_and_unit(trained):
    bundle, _ = trained
    pred = load_predictor(bundle)
    truth = dict(a=1.4, porosity=0.7, layer_fraction=0.3)
    curve = simulate_curve(CFG.replace(q_min=0.3, q_max=3.2, n_q=300), *truth.values(), seed=99)
    q_nm = np.linspace(0.3, 3.2, 300)
    scale = 1234.5  # arbitrary intensity scale: normalization removes it
    in_nm = pred.predict(q_nm, scale * curve, q_unit="1/nm")
    in_a = pred.predict(q_nm / 10, scale * curve, q_unit="1/A")
    for out in truth:
        assert in_nm.values[out][0] == pytest.approx(in_a.values[out][0], rel=1e-6)
    assert abs(in_nm.values["a"][0] - 1.4) < 0.25 and abs(in_nm.values["porosity"][0] - 0.7) < 0.1
    assert in_nm.in_domain[0]


@pytest.mark.parametrize(
    "q, intensity, unit, message",
    [
        (np.linspace(0.3, 3.2, 50), np.full(50, np.nan), "1/nm", "NaN"),
        (np.linspace(0.3, 3.2, 50), -np.ones(50), "1/nm", "> 0"),
        (np.linspace(3.2, 0.3, 50), np.ones(50), "1/nm", "strictly increasing"),
        (np.linspace(0.5, 3.2, 50), np.ones(50), "1/nm", r"missing: 0\.4-0\.5 1/nm"),
        (np.linspace(0.3, 2.0, 50), np.ones(50), "1/nm", r"missing: 2-3 1/nm"),
        (np.linspace(0.3, 3.2, 50), np.ones(50), "1/A", "check q_unit='1/A'"),
        (np.linspace(0.3, 3.2, 50), np.ones(49), "1/nm", "shape"),
        (np.linspace(0.3, 3.2, 50), np.ones(50), "furlongs", "unknown q unit"),
    ],
)
def test_bad_curves_get_clear_errors(small, q, intensity, unit, message):
    with pytest.raises(ValueError, match=message):
        load_predictor(small[0]).predict(q, intensity, q_unit=unit)


def test_corrupt_or_edited_bundles_are_refused(small, tmp_path):
    bundle = shutil.copytree(small[0], tmp_path / "b")
    booster = bundle / "porosity.ubj.gz"
    raw = bytearray(booster.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    booster.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="does not match its checksum"):
        read_bundle(bundle)
    bundle = shutil.copytree(small[0], tmp_path / "c")
    card = json.loads((bundle / "card.json").read_text())
    card["parameter_ranges"]["a"] = [0.1, 100.0]
    (bundle / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="modified after it was written"):
        read_bundle(bundle)
    (bundle / "card.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(bundle)
    bundle = shutil.copytree(small[0], tmp_path / "d")
    (bundle / "a.interval.ubj.gz").unlink()
    with pytest.raises(BundleError, match="a.interval.ubj.gz is missing"):
        read_bundle(bundle)
    with pytest.raises(BundleError, match="bundle directory .*nothing-here does not exist"):
        load_predictor(tmp_path / "nothing-here")


def test_a_bundle_for_another_q_grid_refuses_model_grid_curves(small):
    # Curves on a 500-point grid handed to a 120-point model as "already normalized on the model grid".
    pred = load_predictor(small[0])
    with pytest.raises(ValueError, match="curves have 500 points, the model expects 120"):
        pred.predict_normalized(np.ones((1, 500)))


def test_cli_predict_reads_a_csv_with_its_q_unit(small, tmp_path, capsys):
    from sasview_grf_plugin.cli import main

    q_nm = np.linspace(0.3, 3.2, 200)
    curve = simulate_curve(CFG.replace(q_min=0.3, q_max=3.2, n_q=200), 1.2, 0.6, 0.2, seed=5)
    data = tmp_path / "m.csv"
    np.savetxt(data, np.column_stack([q_nm / 10, curve, 0.02 * curve]), delimiter=",")
    assert main(["predict", str(data), "--bundle", str(small[0])]) == 2
    assert "carry no q unit" in capsys.readouterr().err
    out_json = tmp_path / "p.json"
    assert main(["predict", str(data), "--bundle", str(small[0]), "--q-unit", "1/A", "--json",
                 str(out_json)]) == 0
    rows = json.loads(out_json.read_text())
    assert set(rows[0]["values"]) == {"a", "porosity", "layer_fraction"}
    assert "porosity" in capsys.readouterr().out


@pytest.mark.slow  # trains a bundle for minutes
def test_training_on_a_dask_cluster_with_xgboost_dask(trained, tmp_path):
    from dask.distributed import Client, LocalCluster

    from sasview_grf_plugin.datasets import load_dataset

    _, ds = trained
    lazy = {s: load_dataset(d.path, lazy=True) for s, d in ds.items()}
    # Few, fast rounds: xgboost.dask synchronizes the workers every round.
    settings = settings_for("compact", num_boost_round=40, early_stopping_rounds=10)
    settings.params = {**settings.params, "learning_rate": 0.3, "max_depth": 5}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        bundle = train_bundle(tmp_path / "dask-bundle", lazy["train"], lazy["val"], lazy["test"], settings,
                              log=lambda m: None, client=client)
    card = json.loads((bundle / "card.json").read_text())
    local_scaler = json.loads((trained[0] / "card.json").read_text())["scaler"]
    np.testing.assert_allclose(card["scaler"]["mean"], local_scaler["mean"], rtol=1e-9)
    for out in ("a", "layer_fraction"):
        trivial = np.mean((ds["test"].__dict__[out] - ds["train"].__dict__[out].mean()) ** 2)
        assert card["metrics"][out]["test"]["mse"] < 0.5 * trivial, out
    assert load_predictor(bundle).predict_normalized(ds["test"].noisy[:3]).values["a"].shape == (3,)


def test_conformal_margin_is_the_cqr_quantile():
    from sasview_grf_plugin.ml.training import conformal_margin

    y = np.arange(10.0)
    # Scores y - hi = 1..10 for a zero-width interval at y - i - 1: the ceil(11 * 0.9) = 10th smallest is 10.
    raw = np.column_stack([y - np.arange(1, 11), y - np.arange(1, 11)])
    assert conformal_margin(raw, y, 0.9) == 10.0
    assert conformal_margin(raw, y, 0.5) == 6.0
    # Intervals far wider than the data: every score is -5, so CQR narrows them by 5 (a legitimate negative
    # margin, which the card accepts).
    wide = np.column_stack([y - 5, y + 5])
    assert conformal_margin(wide, y, 0.9) == -5.0
