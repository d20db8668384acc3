"""Hardening round 3 (issue 28): wrong answers in predict/fit, train refusing its own output, measured-family
cards as untrusted input, overflowing models, bounded ensemble jobs and careful writers.

Each test replays a case of the hostile pass; the CLI must answer with one clear line (never a traceback),
refuse before working (naming the estimate, the limit and the override), or give the correct result.
"""

import hashlib
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sasview_grf_plugin.cli import main
from sasview_grf_plugin.ml.bundle import BundleError, check_card
from sasview_grf_plugin.ml.measured import load_measured, measured_root

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out and "internal error" not in err
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and ": warning: " not in line]
    assert len(lines) == 1, err
    assert ": error: " in lines[0]
    return lines[0]


# ------------------------------------------------------------------------------- 1: the automatic case
@pytest.fixture
def family():
    fam = load_measured()
    # XGBoost evaluates each call: the flat forests (built from a predictor's second curve on) cost seconds.
    for stage in (fam.stage1, *fam.cases.values()):
        stage.curves_seen = 0
    return fam


@pytest.mark.parametrize("a, porosity, realizations", [(2.5, 0.3, 4), (2.5, 0.45, 1), (4.0, 0.2, 4), (3.0, 0.7, 1)])
def test_the_package_own_two_phase_simulation_is_predicted_two_phase(family, a, porosity, realizations):
    """Issue 28: every curve of the package's simulator was called three-phase "in the domain" (BIC alone)."""
    from sasview_grf_plugin.simulator import PRESETS, simulate_curve

    cfg = PRESETS["compact"]
    curve = simulate_curve(cfg, a, porosity, 0.0, seed=1, n_realizations=realizations)
    pred = family.predict(cfg.q / 10.0, curve, case="auto")  # q in 1/Å
    assert pred.case == "two_phase_low"  # Babinet: reported on the low side
    side = min(porosity, 1 - porosity)
    assert abs(pred.values["porosity"] - side) < 0.1
    assert any("two phases kept" in n for n in pred.notes)


@pytest.mark.parametrize("case, porosity, nu", [("three_phase_low", 0.3, 0.3), ("three_phase_high", 0.7, 0.25)])
def test_the_automatic_case_still_finds_three_phases(family, case, porosity, nu):
    from sasview_grf_plugin.ml.measured_data import model_curve

    qa = np.geomspace(0.05, 20, 150)
    i = model_curve(qa, porosity, nu, 0.3)
    rng = np.random.default_rng(3)
    noisy = i * (1 + 0.01 * rng.normal(size=i.size))
    pred = family.predict(qa / 40, noisy, 0.01 * i, case="auto")
    assert pred.case == case


def test_a_seeded_fit_far_outside_the_ml_interval_is_flagged():
    from sasview_grf_plugin.fitting import far_from_prediction

    ml = {"interval_level": 0.9, "values_sasview": {"a": 41.8, "porosity": 0.345, "layer_fraction": 0.096},
          "interval": {"a": [40.4, 43.1], "porosity": [0.2997, 0.3778], "layer_fraction": [0.065, 0.11]}}
    # The case of the report: porosity 0.35 -> 0.19 (and the layer 0.10 -> 0.30), a within its interval.
    got = far_from_prediction({"a": 42.3, "porosity": 0.187, "layer_fraction": 0.299}, ml,
                              ("a", "porosity", "layer_fraction"))
    assert len(got) == 2 and "porosity to 0.187" in got[0] and "[0.2997, 0.3778]" in got[0]
    assert "layer_fraction" in got[1]
    # Just outside the interval (by less than its width) is no news; a beyond a factor exp(width + 5 %) is.
    assert far_from_prediction({"a": 44.0, "porosity": 0.25, "layer_fraction": 0.12}, ml,
                               ("a", "porosity", "layer_fraction")) == []
    assert "a to 60" in far_from_prediction({"a": 60.0}, ml, ("a",))[0]
    # NaN or missing numbers give no flag and no error.
    assert far_from_prediction({"a": float("nan")}, ml, ("a", "smoothing")) == []


@pytest.mark.slow
def test_seeded_fit_of_a_three_phase_case_on_a_two_phase_simulation_is_flagged(tmp_path, capsys):
    from sasview_grf_plugin.simulator import PRESETS, simulate_curve

    cfg = PRESETS["compact"]
    f = tmp_path / "sim.csv"
    np.savetxt(f, np.column_stack([cfg.q, simulate_curve(cfg, 5.0, 0.3, 0.0, seed=0, n_realizations=4)]),
               delimiter=",")
    rc, out, _ = run_cli(["fit", f, "--q-unit", "1/nm", "--case", "three_phase_low", "--no-progress"], capsys)
    assert rc == 0 and "far outside the ML's 90% interval" in out


# ------------------------------------------------------------------------------- 2: train validates its output
@pytest.mark.slow
def test_a_short_training_writes_a_bundle_that_loads(tmp_path, capsys):
    """Issue 28: a negative conformal margin (legitimate) made train fail after training."""
    from sasview_grf_plugin.ml import read_bundle

    for split in ("train", "val"):
        rc, _, _ = run_cli(["dataset", "--grid-size", "16", "--case", "three_phase_high", "--split", split, "--n", 128,
                            "--out", tmp_path / split, "--no-progress"], capsys)
        assert rc == 0
    rc, out, err = run_cli(["train", "--train", tmp_path / "train", "--val", tmp_path / "val", "--out",
                            tmp_path / "b", "--rounds", 100, "--early-stopping", 10, "--seed", 1], capsys)
    assert rc == 0, err
    card = read_bundle(tmp_path / "b").card
    margins = [v["margin"] for v in card["intervals"].values()]
    assert min(margins) < 0  # the case of the report (seeded: the a booster's margin is -0.00077)


# ------------------------------------------------------------------------------- 3: measured-family cards
def shipped_card(case: str) -> dict:
    return json.loads((measured_root() / case / "card.json").read_text())


CARD_EDITS = {
    "a NaN margin": ("two_phase", lambda c: c["intervals"]["porosity"]["margins"].__setitem__(3, math.nan),
                     "must be a finite number"),
    "a NaN bin edge": ("two_phase", lambda c: c["intervals"]["a"]["bin_edges"].__setitem__(2, math.nan),
                       "must be a finite number"),
    "descending bin edges": ("two_phase", lambda c: c["intervals"]["porosity"]["bin_edges"].reverse(),
                             "must be in increasing order"),
    "one edge too few": ("two_phase", lambda c: c["intervals"]["a"]["bin_edges"].pop(), "n \\+ 1 and n numbers"),
    "a margin of 1e300": ("three_phase_high",
                          lambda c: c["intervals"]["layer_fraction"]["margins"].__setitem__(0, 1e300), "is absurd"),
    "a margin that collapses intervals": ("two_phase",
                                          lambda c: c["intervals"]["smoothing"]["margins"].__setitem__(0, -5.0),
                                          "is absurd"),
    "a 0.1 % interval level": ("two_phase", lambda c: c.__setitem__("interval_level", 0.001),
                               "interval_level must lie"),
    "a NaN interval level": ("two_phase", lambda c: c.__setitem__("interval_level", math.nan), "finite number"),
    "a NaN threshold": ("two_phase", lambda c: c["domain"].__setitem__("threshold", math.nan), "finite number"),
    "a negative threshold": ("three_phase_low", lambda c: c["domain"].__setitem__("threshold", -1.0),
                             "must be a finite"),
    "a feature grid of 1e9 points": ("two_phase", lambda c: c["q"].__setitem__("n", 10**9), "feature grid needs"),
    "a feature grid from 0": ("stage1", lambda c: c["q"].__setitem__("x_min", 0.0), "feature grid needs"),
    "no porosity output": ("two_phase", lambda c: c["outputs"].remove("porosity"), "do not match case"),
    "a porosity range to 5": ("two_phase", lambda c: c["parameter_ranges"].__setitem__("porosity", [0.1, 5.0]),
                              "physical range"),
    "a negative a": ("stage1", lambda c: c["parameter_ranges"].__setitem__("a", [-1.0, 700.0]), "physical range"),
    "an unknown case": ("two_phase", lambda c: c.__setitem__("case", "four_phase"), "unknown measured-family case"),
    "a scaler of the wrong size": ("two_phase", lambda c: c["scaler"]["low"].pop(), "feature envelope"),
}


def test_the_shipped_measured_cards_pass():
    for case in ("stage1", "two_phase", "three_phase_low", "three_phase_high"):
        check_card(shipped_card(case))


@pytest.mark.parametrize("what", list(CARD_EDITS))
def test_corrupt_measured_cards_are_refused(what):
    case, edit, message = CARD_EDITS[what]
    card = shipped_card(case)
    edit(card)
    with pytest.raises(BundleError, match=message):
        check_card(card)


def tamper(card_path: Path, edit) -> None:
    card = json.loads(card_path.read_text())
    edit(card)
    body = {k: v for k, v in card.items() if k != "integrity"}
    card["integrity"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    card_path.write_text(json.dumps(card))


@pytest.fixture(scope="module")
def family_copy(tmp_path_factory):
    return Path(shutil.copytree(measured_root(), tmp_path_factory.mktemp("fam") / "measured"))


@pytest.fixture
def curve_csv(tmp_path):
    qa = np.geomspace(0.05, 20, 120)
    from sasview_grf_plugin.ml.measured_data import model_curve

    f = tmp_path / "c.csv"
    np.savetxt(f, np.column_stack([qa / 40, model_curve(qa, 0.3, 0.0, 0.25)]), delimiter=",")
    return f


@pytest.mark.parametrize("what", ["a NaN margin", "a NaN threshold", "a 0.1 % interval level"])
def test_predict_with_a_corrupt_family_is_one_clear_line(family_copy, curve_csv, tmp_path, capsys, what):
    case, edit, message = CARD_EDITS[what]
    fam = Path(shutil.copytree(family_copy, tmp_path / "fam"))
    tamper(fam / case / "card.json", edit)
    rc, out, err = run_cli(["predict", curve_csv, "--q-unit", "1/A", "--bundle", fam], capsys)
    assert rc == 2 and "nan" not in out.lower()
    assert "card.json" in one_error_line(err)


def test_an_uncalibrated_family_refuses_to_predict(family_copy, curve_csv, tmp_path, capsys):
    fam = Path(shutil.copytree(family_copy, tmp_path / "fam"))
    tamper(fam / "two_phase" / "card.json", lambda c: c.pop("domain"))
    rc, _, err = run_cli(["predict", curve_csv, "--q-unit", "1/A", "--bundle", fam, "--case", "two_phase"], capsys)
    assert rc == 2 and "is not calibrated" in one_error_line(err)


# ------------------------------------------------------------------------------- 4: models never return inf
def test_models_refuse_overflowing_slds_and_stay_finite_below():
    from sasview_grf_plugin.sasview.models import grf_three_phase, grf_three_phase_sim, grf_two_phase, grf_two_phase_sim

    q = np.array([1e-4, 0.01, 0.1, 1.0])
    for model in (grf_two_phase, grf_three_phase, grf_two_phase_sim, grf_three_phase_sim):
        # The model's own defaults (its parameter table), a small grid for the simulating ones.
        base = {p[0]: p[2] for p in model.parameters} | ({"grid_size": 32} if model.__name__.endswith("_sim") else {})

        def iq(sld_pore, model=model, base=base):
            return model.Iq(q, **{**base, "sld_pore": sld_pore, "sld_solid": 0.0})

        for bad in (1e200, -1e200, math.inf, math.nan):
            with pytest.raises(ValueError, match="SLDs must be finite"):
                iq(bad)
        with np.errstate(all="raise"):  # the largest accepted contrast: finite, no overflow anywhere
            assert np.all(np.isfinite(iq(1e100)))
    # The exact models of the spectral family share one check (ensemble.fastcut.check_contrasts); before it a
    # huge SLD gave an OverflowError (two phases) or a silent NaN (three phases).
    from sasview_grf_plugin.sasview.models import (
        grf_three_phase_broad,
        grf_three_phase_peaked,
        grf_two_phase_broad,
        grf_two_phase_peaked,
    )

    for model in (grf_two_phase_broad, grf_two_phase_peaked, grf_three_phase_broad, grf_three_phase_peaked):
        base = {p[0]: p[2] for p in model.parameters}
        for bad in (1e200, -1e200, math.inf, math.nan):
            with pytest.raises(ValueError, match="SLDs must be finite"):
                model.Iq(q, **{**base, "sld_pore": bad})
        with np.errstate(over="raise"):
            assert np.all(np.isfinite(model.Iq(q, **{**base, "sld_pore": 1e100, "sld_solid": 0.0})))
    # Equal huge SLDs are no contrast: zero, not inf - inf.
    base = {p[0]: p[2] for p in grf_two_phase.parameters}
    assert np.all(grf_two_phase.Iq(q, **{**base, "sld_pore": 1e200, "sld_solid": 1e200}) == 0.0)


# ------------------------------------------------------------------------------- 5: bounded ensemble builds
def test_ensemble_build_over_the_work_limit_is_refused_before_anything_is_written(tmp_path, capsys):
    rc, _, err = run_cli(["ensemble", "build", "--out", tmp_path / "b", "--realizations", 100], capsys)
    line = one_error_line(err)
    assert rc == 2 and "voxel-FFTs" in line and "limit of" in line and "--allow-long" in line
    assert not (tmp_path / "b").exists()


def test_ensemble_build_beyond_memory_is_refused_even_when_long_is_allowed(tmp_path, capsys):
    rc, _, err = run_cli(["ensemble", "build", "--out", tmp_path / "b", "--realizations", 1, "--grid-size", 4096,
                          "--allow-long"], capsys)
    line = one_error_line(err)
    assert rc == 2 and "GiB of memory" in line and "available" in line and "--grid-size" in line
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("extra, message", [
    (["--realizations", 10**12, "--grid-size", 8, "--allow-long"], "realization files"),
    (["--realizations", 0], "positive integer"),
    (["--realizations", 1, "--seed", -1, "--grid-size", 16], "non-negative integer"),
    (["--realizations", 1, "--voxels-per-a", "nan", "--grid-size", 16], "finite voxels_per_a"),
])
def test_bad_build_options_are_refused_and_leave_nothing_behind(tmp_path, capsys, extra, message):
    t0 = time.perf_counter()
    rc, _, err = run_cli(["ensemble", "build", "--out", tmp_path / "b", *extra], capsys)
    assert rc == 2 and message in one_error_line(err) and time.perf_counter() - t0 < 10
    assert not (tmp_path / "b").exists()  # the corrected rerun starts as new


TINY = dict(grid_size=16, voxels_per_a=4.0, porosity=(0.3, 0.5, 0.7), smoothing=(0.3,), layer_fraction=(0.3,),
            n_bins=8)


def test_a_build_never_adopts_a_folder_or_files_it_did_not_write(tmp_path):
    from sasview_grf_plugin.ensemble.build import EnsembleSpec, build_realizations, load_sums

    spec = EnsembleSpec(**TINY)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "r000000.npz").write_bytes(b"a user's file")
    with pytest.raises(ValueError, match="is not empty and holds no ensemble build"):
        build_realizations(foreign, 1, spec, progress=False)
    assert (foreign / "r000000.npz").read_bytes() == b"a user's file" and not (foreign / "spec.json").exists()
    # A realization of another build (another seed) copied into this one is refused when read.
    build_realizations(tmp_path / "a", 1, spec, progress=False)
    build_realizations(tmp_path / "b", 1, EnsembleSpec(**{**TINY, "seed": 7}), progress=False)
    shutil.copy(tmp_path / "b" / "r000000.npz", tmp_path / "a" / "r000001.npz")
    with pytest.raises(ValueError, match="written by a build with another spec"):
        load_sums(tmp_path / "a")


def test_an_interrupted_build_resumes_with_the_identical_command(tmp_path, monkeypatch):
    import sasview_grf_plugin.ensemble.build as build

    spec = build.EnsembleSpec(**TINY)
    real = build.compute_realization

    def interrupted(s, r, backend="numpy"):
        if r == 1:
            raise KeyboardInterrupt
        return real(s, r, backend)

    monkeypatch.setattr(build, "compute_realization", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build.build_realizations(tmp_path / "b", 3, spec, progress=False)
    monkeypatch.setattr(build, "compute_realization", real)
    assert build.build_realizations(tmp_path / "b", 3, spec, progress=False) == [1, 2]  # the lock was released
    _, sums = build.load_sums(tmp_path / "b")
    assert sums["lc"].shape[0] == 3


HOLD_LOCK = "import sys, time; from sasview_grf_plugin._locks import writer_lock\n" \
            "with writer_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(30)\n"


def test_a_second_writer_of_a_build_folder_is_refused(tmp_path, capsys):
    from sasview_grf_plugin.ensemble.build import EnsembleSpec, build_realizations

    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "b")], stdout=subprocess.PIPE,
                              text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match="another run is writing to"):
            build_realizations(tmp_path / "b", 1, EnsembleSpec(**TINY), progress=False)
    finally:
        holder.kill()
        holder.wait()
    # Killed: the OS released its lock; the same command now runs.
    assert build_realizations(tmp_path / "b", 1, EnsembleSpec(**TINY), progress=False) == [0]


def test_tabulate_refuses_an_out_folder_with_files_of_others_before_working(tmp_path, capsys):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "card.json").write_text('{"mine": 1}')
    rc, _, err = run_cli(["ensemble", "tabulate", tmp_path / "nothing", "--out", tmp_path / "t"], capsys)
    assert rc == 2 and "that tabulate did not write" in one_error_line(err)
    assert (tmp_path / "t" / "card.json").read_text() == '{"mine": 1}'


@pytest.mark.slow  # tabulating even a tiny build takes ~1 min (exact level-cut curves per node)
def test_tabulate_shows_progress_and_node_results_as_they_come(tmp_path):
    from sasview_grf_plugin.ensemble.build import EnsembleSpec, build_realizations
    from sasview_grf_plugin.ensemble.tabulate import tabulate

    # Cubic splines over every node axis: at least 4 nodes each.
    spec = EnsembleSpec(grid_size=16, voxels_per_a=4.0, porosity=(0.2, 0.4, 0.5, 0.6, 0.8),
                        smoothing=(0.25, 0.5, 0.8, 1.25), layer_fraction=(0.1, 0.25, 0.4, 0.6), n_bins=8)
    build_realizations(tmp_path / "b", 8, spec, progress=False)
    lines = []
    card = tabulate(tmp_path / "b", tmp_path / "t", log=lines.append)
    assert len(lines) == 5 and lines[0].startswith("porosity 0.2: median relative Monte-Carlo error")
    assert card["kind"] == "grf-ensemble-table"
    tabulate(tmp_path / "b", tmp_path / "t")  # its own output is replaced on a rerun


def test_multi_curve_fits_report_each_curve_as_it_finishes(tmp_path):
    from sasview_grf_plugin.fitting import fit_many
    from sasview_grf_plugin.ml.measured_data import model_curve

    qa = np.geomspace(0.05, 20, 100)
    seen = []
    for k, eps in enumerate((0.25, 0.35)):
        np.savetxt(tmp_path / f"c{k}.csv", np.column_stack([qa / 40, model_curve(qa, eps, 0.0, 0.25)]), delimiter=",")
    (tmp_path / "c2.csv").write_text("not a curve\n")
    results, failures = fit_many([tmp_path], "two_phase_low", mode="replace", q_unit="1/A", progress=False,
                                 on_result=lambda r, f: seen.append((r, f)))
    assert len(seen) == 3 and len(results) == 2 and len(failures) == 1
    assert [r for r, _ in seen if r is not None] == results


# ------------------------------------------------------------------------------- 6: writers
def test_export_plugin_never_replaces_a_table_it_did_not_write(tmp_path, capsys):
    target = tmp_path / "plugins"
    target.mkdir()
    (target / "grf_ensemble_table.npz").write_bytes(b"a user's table")
    rc, _, err = run_cli(["export-plugin", "--standalone", target], capsys)
    assert rc == 2 and "not overwriting" in one_error_line(err) and "--force" in err
    assert (target / "grf_ensemble_table.npz").read_bytes() == b"a user's table"
    assert not (target / "grf_two_phase.py").exists()  # refused before anything was written
    rc, _, _ = run_cli(["export-plugin", "--standalone", target, "--force"], capsys)
    assert rc == 0
    # A table this command wrote (recorded in its manifest) is replaced without --force.
    manifest = json.loads((target / ".sasview-grf-export.json").read_text())
    table = target / "grf_ensemble_table.npz"
    assert hashlib.sha256(table.read_bytes()).hexdigest() in manifest["grf_ensemble_table.npz"]
    rc, _, _ = run_cli(["export-plugin", "--standalone", target], capsys)
    assert rc == 0


def test_export_plugin_to_a_file_path_says_so(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    rc, _, err = run_cli(["export-plugin", "--standalone", f], capsys)
    assert rc == 2 and "is a file, not a folder" in one_error_line(err) and f.read_text() == "mine"


def _generate(path: str, queue) -> None:
    from sasview_grf_plugin.datasets import generate_dataset
    from sasview_grf_plugin.simulator import PRESETS

    cfg = PRESETS["compact"].replace(grid_size=16, name="t16")
    try:
        generate_dataset(path, "two_phase_low", "train", config=cfg, n=256, chunk_size=32, seed=1, progress=False)
        queue.put("complete")
    except ValueError as exc:
        queue.put(f"refused: {exc}")


@pytest.mark.slow  # two interpreters that import the package and simulate: ~5 s
def test_concurrent_dataset_runs_into_one_folder_cannot_both_complete(tmp_path):
    from sasview_grf_plugin.datasets.storage import load_dataset

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_generate, args=(str(tmp_path / "d"), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    answers = sorted(queue.get(timeout=5) for _ in procs)
    assert answers[0] == "complete" and answers[1].startswith("refused: another run is writing to")
    assert load_dataset(tmp_path / "d").noisy.shape == (256, 500)


def test_a_dataset_interrupted_during_creation_resumes(tmp_path):
    from sasview_grf_plugin.datasets import generate_dataset
    from sasview_grf_plugin.simulator import PRESETS

    cfg = PRESETS["compact"].replace(grid_size=16, name="t16")
    d = tmp_path / "d"
    d.mkdir()
    (d / ".creating").write_bytes(b"")  # killed between the store's creation and its completion
    (d / "zarr.json").write_text("{}")
    store = generate_dataset(d, "two_phase_low", "train", config=cfg, n=32, chunk_size=32, seed=1, progress=False)
    assert store.is_complete and not (d / ".creating").exists()
