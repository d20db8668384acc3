"""Hardening (issue 15): untrusted bundles, resource limits, a clear line for every bad file.

Every case of the adversarial pass is replayed here: the CLI must answer with one clear line (never a
traceback), refuse before working, or give the correct result.
"""

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from sasview_grf_plugin.cli import main
from sasview_grf_plugin.ml.bundle import BundleError, read_bundle, rewrite_bundle, write_bundle
from sasview_grf_plugin.ml.predictor import shipped_bundles

PY = sys.executable
SHIPPED = shipped_bundles()


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert ": error: " in lines[0]
    return lines[0]


# ----------------------------------------------------------------------------------------------------- bundles
def tamper(bundle: Path, edit) -> None:
    """Edit card.json as an attacker would: change it, then recompute the (public) integrity digest."""
    card = json.loads((bundle / "card.json").read_text())
    edit(card)
    body = {k: v for k, v in card.items() if k != "integrity"}
    card["integrity"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    (bundle / "card.json").write_text(json.dumps(card))


@pytest.fixture
def bundle(tmp_path):
    return Path(shutil.copytree(SHIPPED["two_phase_high"], tmp_path / "bundle"))


def rename_file(card, old, new):
    card["files"][new] = card["files"].pop(old)


def test_shipped_bundles_still_load():
    assert set(SHIPPED) >= {"two_phase_low", "two_phase_high", "three_phase_low", "three_phase_high"}
    for case, path in SHIPPED.items():
        b = read_bundle(path)
        assert b.card["case"] == case and set(b.boosters) == set(b.card["outputs"]) == set(b.interval_boosters)


def test_path_traversal_is_refused_before_anything_is_opened(bundle, tmp_path):
    shutil.copy(bundle / "a.ubj.gz", tmp_path / "a.ubj.gz")  # a valid booster outside: it must still not be read
    tamper(bundle, lambda c: rename_file(c, "a.ubj.gz", "../a.ubj.gz"))
    with pytest.raises(BundleError, match=r"only plain file names inside the bundle directory"):
        read_bundle(bundle)


def test_absolute_path_is_refused(bundle):
    tamper(bundle, lambda c: rename_file(c, "a.ubj.gz", "/etc/passwd"))
    with pytest.raises(BundleError, match="'/etc/passwd'.*only plain file names"):
        read_bundle(bundle)


def test_symlink_out_of_the_bundle_is_refused(bundle, tmp_path):
    outside = tmp_path / "elsewhere.ubj.gz"
    shutil.move(bundle / "a.ubj.gz", outside)
    (bundle / "a.ubj.gz").symlink_to(outside)  # same bytes, checksum matches: only the location is wrong
    with pytest.raises(BundleError, match="leads outside the bundle directory"):
        read_bundle(bundle)


@pytest.mark.parametrize("margin, message", [(float("nan"), "must be a finite number"), (-1e3, "is absurd"),
                                             (1e300, "is absurd")])
def test_nan_and_absurd_margins_are_refused(bundle, margin, message):
    tamper(bundle, lambda c: c["intervals"]["a"].update(margin=margin))
    with pytest.raises(BundleError, match=rf"intervals\['a'\]\.margin.* {message}"):
        read_bundle(bundle)


def test_a_small_negative_margin_is_legitimate_and_keeps_intervals_ordered(bundle):
    """Conformal calibration narrows quantile intervals that over-cover: a negative margin is its output."""
    from sasview_grf_plugin.ml import load_predictor
    from sasview_grf_plugin.simulator import PRESETS, simulate_curve

    tamper(bundle, lambda c: c["intervals"]["a"].update(margin=-0.05))
    read_bundle(bundle)
    cfg = PRESETS["compact"]
    pred = load_predictor(bundle).predict(cfg.q, simulate_curve(cfg, 2.5, 0.7, 0.0, seed=1), q_unit="1/nm")
    assert pred.lower["a"][0] <= pred.values["a"][0] <= pred.upper["a"][0]


def test_inverted_ranges_are_refused(bundle):
    tamper(bundle, lambda c: c["parameter_ranges"].update(a=[4.0, 0.8]))
    with pytest.raises(BundleError, match=r"parameter_ranges\['a'\] must satisfy low < high, got \[4.0, 0.8\]"):
        read_bundle(bundle)


def test_porosity_range_on_the_wrong_side_is_refused(bundle):
    tamper(bundle, lambda c: c["parameter_ranges"].update(porosity=[0.1, 0.5]))  # a "high" case
    with pytest.raises(BundleError, match="leaves"):
        read_bundle(bundle)


def test_relabelled_outputs_are_refused(bundle):
    tamper(bundle, lambda c: c.update(case="three_phase_high"))  # a two-output bundle called three-phase
    with pytest.raises(BundleError, match=r"outputs \['a', 'porosity'\] do not match case three_phase_high"):
        read_bundle(bundle)


def test_missing_kind_and_files_as_list_are_bundle_errors(bundle, tmp_path):
    tamper(bundle, lambda c: c["files"]["a.ubj.gz"].pop("kind"))
    with pytest.raises(BundleError, match=r"files\['a.ubj.gz'\] lacks kind"):
        read_bundle(bundle)
    other = Path(shutil.copytree(SHIPPED["two_phase_high"], tmp_path / "b2"))
    tamper(other, lambda c: c.update(files=list(c["files"])))
    with pytest.raises(BundleError, match="'files' must be a non-empty mapping"):
        read_bundle(other)
    third = Path(shutil.copytree(SHIPPED["two_phase_high"], tmp_path / "b3"))
    tamper(third, lambda c: c.pop("q"))
    with pytest.raises(BundleError, match="lacks required entries: q"):
        read_bundle(third)


def test_scaler_and_q_grid_are_checked(bundle, tmp_path):
    tamper(bundle, lambda c: c["q"].update(n=499))
    with pytest.raises(BundleError, match="scaler must hold 499 features"):
        read_bundle(bundle)
    other = Path(shutil.copytree(SHIPPED["two_phase_high"], tmp_path / "b2"))
    tamper(other, lambda c: c["q"].update(min=3.0, max=0.1))
    with pytest.raises(BundleError, match="0 < q.min < q.max"):
        read_bundle(other)


def bomb_bytes(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes, made without compressing them all: one 16 MiB full-flush block
    (self-contained) repeated. The trailer's checksum is wrong, but nothing may read that far."""
    chunk = 1 << 24
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    return head + block * (size // chunk - 1) + c.flush()


def plant_bomb(bundle: Path, size: int, declared: int | None) -> None:
    raw = bomb_bytes(size)
    (bundle / "a.ubj.gz").write_bytes(raw)

    def edit(card):
        meta = card["files"]["a.ubj.gz"]
        meta.update(sha256=hashlib.sha256(raw).hexdigest(), bytes=len(raw))
        meta.pop("uncompressed_bytes", None)
        if declared is not None:
            meta["uncompressed_bytes"] = declared

    tamper(bundle, edit)


@pytest.mark.parametrize("declared", [None, 2**31])
def test_a_decompression_bomb_never_inflates(bundle, declared):
    # 512 MiB of zeros in ~0.5 MB; the card either records no size (old cards) or claims the full size.
    plant_bomb(bundle, 2**29, declared)
    import tracemalloc

    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(BundleError, match="inflates to more than 50x its compressed size"):
        read_bundle(bundle)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - t0 < 5
    assert peak < 100 * 2**20  # the cap is 50 x 0.5 MB + 1 MiB, not 512 MiB


def test_a_wrong_recorded_size_is_refused(tmp_path):
    path = tmp_path / "b"
    card, boosters, intervals = tiny_card_and_boosters()
    write_bundle(path, card, boosters, intervals)
    meta = json.loads((path / "card.json").read_text())["files"]["a.ubj.gz"]
    assert meta["uncompressed_bytes"] == len(gzip.decompress((path / "a.ubj.gz").read_bytes()))
    tamper(path, lambda c: c["files"]["a.ubj.gz"].update(uncompressed_bytes=meta["uncompressed_bytes"] - 10))
    with pytest.raises(BundleError, match="inflates to more than the .* bytes card.json records"):
        read_bundle(path)


def test_rewrite_bundle_never_deletes_outside_files(bundle, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    shutil.copy(bundle / "a.ubj.gz", victim)  # same bytes as a booster, so its checksum would match
    tamper(bundle, lambda c: rename_file(c, "a.ubj.gz", "../victim.txt"))
    with pytest.raises(BundleError):
        rewrite_bundle(bundle)
    assert victim.exists()
    # A sound bundle is rewritten in place, with the sizes now recorded, and still loads.
    good = Path(shutil.copytree(SHIPPED["two_phase_low"], tmp_path / "good"))
    rewrite_bundle(good)
    card = read_bundle(good).card
    assert all("uncompressed_bytes" in m for m in card["files"].values()) and victim.exists()


def test_write_bundle_refuses_output_names_that_are_paths(tmp_path):
    card, boosters, intervals = tiny_card_and_boosters()
    bad = {**card, "outputs": ["../evil"]}
    with pytest.raises(BundleError, match="cannot name a booster file"):
        write_bundle(tmp_path / "b", bad, {"../evil": boosters["a"]}, {"../evil": intervals["a"]})
    assert not (tmp_path / "evil.ubj.gz").exists()


def tiny_card_and_boosters():
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    d = xgb.DMatrix(x, label=x[:, 0])
    booster = xgb.train({"max_depth": 2, "nthread": 1}, d, num_boost_round=2)
    # A stage-1 card of the measured family: a feature grid of 4 points (3 slopes) and its envelope.
    card = {"family": "measured", "case": "stage1", "outputs": ["a"], "parameter_ranges": {"a": [1.0, 2.0]},
            "intervals": {"a": {"margin": 0.1}}, "interval_level": 0.9,
            "q": {"x_min": 0.001, "x_max": 1.0, "n": 4},
            "scaler": {"mean": [0.0] * 3, "std": [1.0] * 3, "low": [-1.0] * 3, "high": [1.0] * 3}}
    return card, {"a": booster}, {"a": booster}


def test_measured_family_cards_get_the_generic_checks_too(tmp_path):
    card, boosters, intervals = tiny_card_and_boosters()
    path = write_bundle(tmp_path / "m", card, boosters, intervals)
    b = read_bundle(path)
    assert b.card["family"] == "measured" and set(b.boosters) == {"a"}
    tamper(path, lambda c: c["intervals"]["a"].update(margin=-1.0))  # more than half of ln(2) narrower
    with pytest.raises(BundleError, match="is absurd"):
        read_bundle(path)
    path = write_bundle(tmp_path / "m2", card, boosters, intervals)
    tamper(path, lambda c: c["files"]["a.ubj.gz"].update(kind="mystery"))
    with pytest.raises(BundleError, match="kind 'mystery' is not one of point, interval, coarse"):
        read_bundle(path)


# ------------------------------------------------------------------------------------- bundle, case and data fit
@pytest.fixture(scope="module")
def curve_file(tmp_path_factory):
    """A simulated two-phase curve on the compact q grid (1/nm), as CSV."""
    from sasview_grf_plugin.simulator import PRESETS, simulate_curve

    cfg = PRESETS["compact"].replace(grid_size=32)
    i = simulate_curve(cfg, 1.5, 0.3, 0.0, seed=1, backend="numpy")
    path = tmp_path_factory.mktemp("curve") / "curve.csv"
    np.savetxt(path, np.column_stack([cfg.q, i, 0.02 * i]), delimiter=",")
    return path


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from sasview_grf_plugin.datasets import generate_dataset
    from sasview_grf_plugin.simulator import PRESETS

    root = tmp_path_factory.mktemp("ds")

    generate_dataset(root / "d16", "two_phase_low", "test", config=PRESETS["compact"].replace(grid_size=16), n=4,
                     chunk_size=4, progress=False, backend="numpy")
    return root / "d16"


def test_fit_with_a_bundle_of_another_case_is_refused(curve_file, capsys):
    rc, _, err = run_cli(["fit", curve_file, "--case", "two_phase_low", "--q-unit", "1/nm",
                          "--bundle", SHIPPED["three_phase_high"], "--no-progress"], capsys)
    assert rc == 2
    assert "predicts case three_phase_high, not two_phase_low" in one_error_line(err)


def test_evaluate_on_another_grid_is_refused(small_dataset, capsys):
    rc, _, err = run_cli(["evaluate", SHIPPED["two_phase_low"], "--data", small_dataset], capsys)
    assert rc == 2
    assert "simulated with grid_size 16 (bundle: 128)" in one_error_line(err)


def test_train_with_the_same_split_twice_is_refused(small_dataset, tmp_path, capsys):
    rc, _, err = run_cli(["train", "--train", small_dataset, "--val", small_dataset, "--out", tmp_path / "b"], capsys)
    assert rc == 2 and "are the same dataset" in one_error_line(err)
    copy = shutil.copytree(small_dataset, tmp_path / "copy")
    rc, _, err = run_cli(["train", "--train", small_dataset, "--val", copy, "--out", tmp_path / "b"], capsys)
    assert rc == 2 and "hold the same curves (case two_phase_low, split test, seed 0)" in one_error_line(err)
    assert not (tmp_path / "b").exists()


# ------------------------------------------------------------------------------------------------- resources
def test_huge_dataset_is_refused_with_estimate_and_limit(tmp_path, capsys):
    rc, _, err = run_cli(["dataset", "--case", "two_phase_low", "--split", "train", "--n", "100000000000",
                          "--out", tmp_path / "d"], capsys)
    assert rc == 2 and "1.56e+09 chunks, more than the 1e+07" in one_error_line(err)
    rc, _, err = run_cli(["dataset", "--case", "two_phase_low", "--split", "train", "--n", "1000000000",
                          "--chunk-size", "10000", "--out", tmp_path / "d"], capsys)
    line = one_error_line(err)
    assert rc == 2 and re.search(r"1000000000 curves of 500 q points need about 3\.7\de\+03 GiB on disk", line)
    assert not (tmp_path / "d").exists()


def test_training_on_datasets_larger_than_memory_is_refused_before_reading(small_dataset, tmp_path, capsys):
    import dataclasses

    from sasview_grf_plugin.datasets import DatasetStore

    spec = DatasetStore.open(small_dataset).spec
    # The store's metadata only (no curves): 10^9 curves of 500 points, as a paper-scale run could announce.
    DatasetStore.create(tmp_path / "huge", dataclasses.replace(spec, n=10**9, chunk_size=10**6, split="train"))
    rc, _, err = run_cli(["train", "--train", tmp_path / "huge", "--val", small_dataset, "--out", tmp_path / "b"],
                         capsys)
    line = one_error_line(err)
    assert rc == 2 and re.search(r"train needs about 1\.1\de\+04 GiB of memory for 1000000004 curves", line)


def test_too_many_workers_is_one_line(tmp_path, capsys):
    many = (os.cpu_count() or 1) * 4 + 1
    rc, _, err = run_cli(["dataset", "--case", "two_phase_low", "--split", "train", "--n", "8", "--workers", many,
                          "--out", tmp_path / "d"], capsys)
    assert rc == 2 and f"--workers {many} is more than the" in one_error_line(err)


def test_simulation_work_is_capped_with_an_override(tmp_path, capsys):
    from sasview_grf_plugin.simulator import PRESETS
    from sasview_grf_plugin.simulator.sanity import check_work

    rc, _, err = run_cli(["simulate", "--realizations", "100000000", "--grid-size", "8", "--out",
                          tmp_path / "c.csv"], capsys)
    line = one_error_line(err)
    assert rc == 2 and "5.12e+10 voxel-realizations, more than the limit of 1.72e+10" in line and "--allow-long" in line
    cfg = PRESETS["compact"].replace(grid_size=8)
    check_work(cfg, 10**8, allow_long=True)  # the override lets it through
    with pytest.raises(ValueError):
        check_work(cfg, 10**8)
    check_work(cfg, 1000)


def test_large_curves_are_rebinned_for_the_fit(tmp_path):
    # 20000 points of a two-phase ensemble curve (1/Å) with 1 % noise: the fit sees 2000 bins, and still
    # finds the truth.
    from sasmodels.core import load_model
    from sasmodels.data import empty_data1D
    from sasmodels.direct_model import DirectModel

    from sasview_grf_plugin.fitting import MAX_FIT_POINTS, fit_curve
    from sasview_grf_plugin.sasview import model_path

    q = np.linspace(0.01, 0.3, 20000)
    kernel = load_model(model_path("grf_two_phase"))
    i = DirectModel(empty_data1D(q), kernel)(a=25.0, porosity=0.3, smoothing_ratio=0.4, sld_pore=0.0,
                                             sld_solid=1.0, scale=1.0, background=0.001)
    rng = np.random.default_rng(0)
    r = fit_curve((q, i * (1 + 0.01 * rng.standard_normal(q.size)), 0.01 * i), "two_phase_low", q_unit="1/A")
    assert r.n_points <= MAX_FIT_POINTS and any("20000 points rebinned" in w for w in r.warnings)
    assert r.values["a"] == pytest.approx(25.0, rel=0.01) and r.values["porosity"] == pytest.approx(0.3, abs=0.01)
    assert 0.7 < r.chi2 < 1.3  # errors combined correctly: a reduced chi^2 near 1


def test_dream_stops_at_its_time_budget(curve_file):
    from sasview_grf_plugin.fitting import fit_curve

    t0 = time.perf_counter()
    r = fit_curve(curve_file, "two_phase_low", method="dream", steps=100000, q_unit="1/nm", time_budget=2.0)
    assert time.perf_counter() - t0 < 15
    assert any("time budget of 2 s" in w for w in r.warnings)


# --------------------------------------------------------------------------------------------------- bad files
def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


ROWS = b"0.1,5\n0.2,4\n0.3,3\n0.4,2\n0.5,1\n"
BAD_FILES = [
    ("empty.csv", b"", "the file is empty; accepted: text with 2-4 columns"),
    ("empty.xml", b"", "the file is empty; accepted: canSAS 1-D XML"),
    ("garbage.csv", bytes(range(256)) * 20, "binary content, not a text file of numbers"),
    ("garbage.xml", bytes(range(256)) * 20, "not an XML file"),
    ("garbage.h5", bytes(range(256)) * 20, "not an HDF5 file (no HDF5 signature); accepted: NXcanSAS HDF5"),
    ("broken.xml", b'<?xml version="1.0"?>\n<SASroot><SASentry><broken', "sasdata found no data in it; accepted: "
     "canSAS 1-D XML"),
    ("nodata.h5", b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 10, "sasdata found no data in it; accepted: NXcanSAS"),
    ("one.csv", b"0.1\n0.2\n0.3\n0.4\n0.5\n", "only one column of numbers; need q and I"),
    ("nan.csv", b"nan,nan\n" * 6, "0 of its 6 points usable"),
    ("two.csv", b"0.1,1\n0.2,2\n", "only 2 row(s) of numbers found, at least 5 are needed"),
    ("three.csv", b"0.1,1\n0.2,2\n0.3,3\n", "only 3 row(s) of numbers found, at least 5 are needed"),
]


@pytest.mark.parametrize("name, content, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_get_one_line_naming_file_and_problem(tmp_path, capsys, name, content, message):
    f = write(tmp_path / name, content)
    unit = ["--q-unit", "1/nm"] if name.endswith(".csv") else []
    rc, out, err = run_cli(["predict", f, "--case", "two_phase_low", *unit], capsys)
    line = one_error_line(err)
    assert rc == 2 and f"{name}: {message}" in line
    assert len(err) < 400 and "\\x" not in err  # no escaped bytes from sasdata's readers
    assert out == ""


def test_decimal_commas_and_bom_are_read_correctly(tmp_path):
    from sasview_grf_plugin.loaders import load_curves

    (ref,) = load_curves(write(tmp_path / "dot.csv", ROWS), q_unit="1/A")
    (semi,) = load_curves(write(tmp_path / "semi.csv", ROWS.replace(b",", b";").replace(b".", b",")), q_unit="1/A")
    (tab,) = load_curves(write(tmp_path / "tab.txt", b"# q I\n" + ROWS.replace(b",", b"\t").replace(b".", b",")),
                         q_unit="1/A")
    (bom,) = load_curves(write(tmp_path / "bom.csv", b"\xef\xbb\xbf" + ROWS), q_unit="1/A")
    for c in (semi, tab, bom):
        np.testing.assert_array_equal(c.q, ref.q)
        np.testing.assert_array_equal(c.intensity, ref.intensity)
    assert ref.q.size == 5 and ref.q[0] == 0.1  # the BOM no longer swallows the first row
    assert any("decimal commas" in n for n in semi.notes)


def test_fit_on_an_empty_folder_says_so(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(["fit", tmp_path / "empty", "--case", "two_phase_low"], capsys)
    assert rc == 2 and "is an empty folder: no data files to fit" in one_error_line(err)


def test_warnings_are_one_line_for_people(curve_file, tmp_path, capsys):
    data = np.loadtxt(curve_file, delimiter=",")
    data[3, 1] = -1.0
    f = tmp_path / "masked.csv"
    np.savetxt(f, data, delimiter=",")
    rc, out, err = run_cli(["predict", f, "--case", "two_phase_low", "--q-unit", "1/nm"], capsys)
    assert rc == 0 and "a " in out
    assert err.strip() == "sasview-grf predict: warning: masked.csv: removed 1 of 500 points (non-finite, q <= 0, " \
                          "I <= 0 or dy <= 0)"


# ------------------------------------------------------------------------------------------ physical meaning
@pytest.mark.parametrize("args, message", [
    (["--grid-size", "7"], "grid size 7 is below 16"),
    (["--a", "1000", "--grid-size", "32"], "is only 0.016 a wide; below 4 a"),
    (["--a", "0.001", "--grid-size", "32"], "is 0.002 voxels of 0.5 nm; below 1.5 voxels"),
])
def test_meaningless_simulations_warn_naming_the_limit(tmp_path, capsys, args, message):
    rc, _, err = run_cli(["simulate", *args, "--out", tmp_path / "c.csv"], capsys)
    assert rc == 0 and message in err and "warning:" in err


def test_a_phase_without_voxels_is_an_error_not_a_zero_curve(tmp_path, capsys):
    rc, _, err = run_cli(["simulate", "--porosity", "1e-9", "--grid-size", "32", "--out", tmp_path / "c.csv"],
                         capsys)
    assert rc == 2 and "the pore phase about 3.28e-05 of the 32^3 voxels: it is absent" in one_error_line(err)
    assert not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize("model", ["grf_two_phase", "grf_three_phase", "grf_two_phase_sim", "grf_three_phase_sim"])
def test_plugin_models_refuse_negative_q_and_a_beyond_their_limits(model):
    from sasmodels.core import load_model
    from sasmodels.data import empty_data1D
    from sasmodels.direct_model import DirectModel

    from sasview_grf_plugin.sasview import model_path

    kernel = load_model(model_path(model))
    with pytest.raises(ValueError, match="q must be finite and >= 0"):
        DirectModel(empty_data1D(np.array([-0.01, 0.1])), kernel)()
    with pytest.raises(ValueError, match=r"a = 1e\+06 Å is outside the model's limits \[1, 10+\] Å"):
        DirectModel(empty_data1D(np.array([0.01, 0.1])), kernel)(a=1e6)


# ---------------------------------------------------------------------------------------- names and outputs
@pytest.mark.parametrize("argv, message", [
    (["fit", "x.csv", "--case", "two_phase_low", "--summary", "x.xyz"], "--summary x.xyz: the extension must be"),
    (["simulate", "--out", "x.xyz"], "--out x.xyz: the extension must be one of .csv, .txt, .dat"),
    (["predict", "x.csv", "--case", "two_phase_low", "--json", "x.txt"], "--json x.txt: the extension must be"),
])
def test_output_extensions_are_kept_or_refused(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2 and message in one_error_line(err)
    assert os.listdir(tmp_path) == []


def test_non_utf8_file_names_work_everywhere(tmp_path, curve_file):
    name = b"caf\xe9"
    root = os.fsencode(tmp_path)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    r = subprocess.run([PY, "-m", "sasview_grf_plugin.cli", "simulate", "--grid-size", "32",
                        "--out", root + b"/" + name + b".csv", "--plot", root + b"/" + name + b".png"],
                       capture_output=True, env=env, timeout=120)
    assert r.returncode == 0 and b"Traceback" not in r.stderr and name + b".png" in r.stdout
    assert os.path.getsize(root + b"/" + name + b".png") > 10_000
    folder = root + b"/d" + name
    os.mkdir(folder)
    shutil.copy(curve_file, folder + b"/" + name + b".csv")
    summary = root + b"/s" + name + b".csv"
    r = subprocess.run([PY, "-m", "sasview_grf_plugin.cli", "fit", folder, "--case", "two_phase_low", "--q-unit",
                        "1/nm", "--no-progress", "--plot", root + b"/plots", "--summary", summary],
                       capture_output=True, env=env, timeout=120)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr[-2000:]
    assert os.listdir(root + b"/plots") == [name + b".png"]
    assert name in Path(os.fsdecode(summary)).read_bytes()


def test_install_plugins_touches_only_its_own_files(tmp_path, capsys):
    mine = tmp_path / "grf_two_phase.py.tmp"
    mine.write_text("a user's file")
    rc, _, _ = run_cli(["install-plugins", "--dir", tmp_path], capsys)
    assert rc == 0 and mine.read_text() == "a user's file"
    from sasview_grf_plugin.sasview import MODEL_NAMES

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{n}.py" for n in MODEL_NAMES]
                                                                + ["grf_two_phase.py.tmp"])


# ------------------------------------------------------------------------------- under a 4 GB address space
def limited(args: list, cwd: Path, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    cmd = " ".join(["ulimit -v 4000000;", PY, "-m", "sasview_grf_plugin.cli", *map(str, args)])
    t0 = time.perf_counter()
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    return r, time.perf_counter() - t0


def test_limited_memory_huge_dataset_and_realizations_end_in_seconds(tmp_path):
    r, dt = limited(["dataset", "--case", "two_phase_low", "--split", "train", "--n", "100000000000",
                     "--out", "d"], tmp_path)
    assert r.returncode == 2 and "chunks, more than" in r.stderr and "Traceback" not in r.stderr and dt < 15
    r, dt = limited(["simulate", "--realizations", "100000000", "--grid-size", "8"], tmp_path)
    assert r.returncode == 2 and "voxel-realizations" in r.stderr and "Traceback" not in r.stderr and dt < 15


def test_limited_memory_decompression_bomb_ends_in_seconds(tmp_path, curve_file):
    bundle = Path(shutil.copytree(SHIPPED["two_phase_low"], tmp_path / "bomb"))
    plant_bomb(bundle, 2**31, None)  # 2 GiB of zeros in ~2 MB, as in the report
    r, dt = limited(["predict", curve_file, "--bundle", bundle, "--q-unit", "1/nm"], tmp_path)
    assert r.returncode == 2 and "inflates to more than" in r.stderr and "Traceback" not in r.stderr
    assert dt < 15


@pytest.mark.slow
def test_limited_memory_million_point_fit_succeeds(tmp_path):
    n = 10**6
    q = np.linspace(0.005, 0.3, n)
    from sasmodels.core import load_model
    from sasmodels.data import empty_data1D
    from sasmodels.direct_model import DirectModel

    from sasview_grf_plugin.sasview import model_path

    coarse = np.geomspace(0.005, 0.3, 400)
    i = DirectModel(empty_data1D(coarse), load_model(model_path("grf_two_phase")))(
        a=25.0, porosity=0.3, smoothing_ratio=0.4, sld_pore=0.0, sld_solid=1.0, scale=1.0, background=0.001)
    i = np.exp(np.interp(np.log(q), np.log(coarse), np.log(i)))
    np.savetxt(tmp_path / "million.csv", np.column_stack([q, i, 0.01 * i]), delimiter=",", fmt="%.8g")
    r, dt = limited(["fit", "million.csv", "--case", "two_phase_low", "--q-unit", "1/A", "--no-progress",
                     "--json", "fit.json"], tmp_path, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    (res,) = json.loads((tmp_path / "fit.json").read_text())
    assert res["n_points"] <= 2000 and any("1000000 points rebinned" in w for w in res["warnings"])
    assert res["values"]["a"] == pytest.approx(25.0, rel=0.02)
    assert dt < 60
