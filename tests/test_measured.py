"""The measured booster family: window-free features, synthetic measurements, the shipped bundles' pipeline."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sasview_grf_plugin.ml.bundle import read_bundle
from sasview_grf_plugin.ml.measured import CASE_CHOICES, load_measured, measured_root
from sasview_grf_plugin.ml.measured_data import (
    MEASURED_CASES,
    STAGE2_GRID,
    WINDOW_RULE,
    Effects,
    model_curve,
    synthesize,
)
from sasview_grf_plugin.ml.window_features import LogGrid, log_bins, slope_features

EXAMPLES = Path(__import__("sasdata").__file__).parent / "example_data" / "1d_data"
CLEAN = Effects(0.0, 0.0, 0.0, 0.0, fixed_window=(0.1, 10.0))


# -- features -----------------------------------------------------------------------------------------
def test_slopes_of_a_power_law_are_its_exponent_inside_the_window_and_missing_outside():
    grid = LogGrid(0.01, 100.0, 41)
    q = np.geomspace(0.3, 20.0, 500)
    feats = slope_features(log_bins(q, 7.0 * q**-3.2, grid), grid)[0]
    c = grid.centres
    inside = (c[:-1] >= q[0]) & (c[1:] <= q[-1])
    seen = ~np.isnan(feats)
    # Cell means (ln q, ln I) of an exact power law lie on its line: the slopes are exact.
    assert np.allclose(feats[seen], -3.2, atol=1e-4)
    # Missing outside the window; inside, at most the edge cells (centre beyond their points' mean).
    assert not np.any(seen & ~inside) and seen.sum() >= inside.sum() - 2


def test_sparse_data_are_interpolated_and_a_scale_factor_changes_nothing():
    grid = LogGrid(0.01, 100.0, 41)
    q = np.linspace(0.05, 30.0, 25)  # linear spacing: empty cells at low q
    i = model_curve(q, 0.3, 0.0, 0.2)
    a = slope_features(log_bins(q, i, grid), grid)
    b = slope_features(log_bins(q, 1e5 * i, grid), grid)
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], atol=1e-5)
    c = grid.centres
    inside = (c[:-1] >= q[0]) & (c[1:] <= q[-1])
    # Every slope between grid points inside the data is there (but the edge cells'): interpolation fills
    # the empty low-q cells between the sparse points.
    seen = ~np.isnan(a[0])
    assert not np.any(seen & ~inside) and seen.sum() >= inside.sum() - 2


def test_the_length_scale_is_a_shift_in_q_a0():
    """Stage-2 features of one structure at a = 20 Å and a = 300 Å (windows scaled alike) are the same."""
    qa = np.geomspace(0.1, 12.0, 200)
    f = model_curve(qa, 0.35, 0.2, 0.4)
    feats = [slope_features(log_bins((qa / a) * a, f * a**3, STAGE2_GRID), STAGE2_GRID) for a in (20.0, 300.0)]
    assert np.allclose(feats[0], feats[1], equal_nan=True, atol=1e-5)


# -- synthetic measurements ---------------------------------------------------------------------------
def test_synthesis_is_seeded_and_obeys_the_window_rule():
    case = MEASURED_CASES["three_phase_high"]
    a = synthesize(case, 40, np.random.SeedSequence(5), keep_curves=True)
    b = synthesize(case, 40, np.random.SeedSequence(5))
    assert np.array_equal(a["x2"], b["x2"], equal_nan=True) and np.array_equal(a["a"], b["a"])
    for (q, i, di), e in zip(a["curves"], a["effects"], strict=True):
        lo, hi = e["window"]
        assert lo <= WINDOW_RULE["qa_low_max"] and hi >= WINDOW_RULE["qa_high_min"] and hi / lo >= 5 - 1e-9
        assert 1e-3 * (1 - 0.021) <= q[0] and q[-1] <= 1.0 * 1.021  # inside 0.001-1 1/Å up to the q error
        assert np.all(i > 0) and np.all(di > 0)
    assert np.all((a["porosity"] >= 0.5) & (a["porosity"] <= 0.9))


def test_without_effects_the_curves_are_the_noisy_ensemble_model():
    case = MEASURED_CASES["two_phase"]
    d = synthesize(case, 30, np.random.SeedSequence(9), Effects(0, 0, 0, 0, noise=False), keep_curves=True)
    for k, (q, i, _) in enumerate(d["curves"]):
        expect = model_curve(q * d["a"][k], d["porosity"][k], 0.0, d["smoothing"][k])
        assert np.allclose(i, expect, rtol=1e-12)
        assert not ({"pinhole", "slit", "background", "q_error"} & set(d["effects"][k]))


# -- the shipped family --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def family():
    return load_measured()


def test_shipped_cards_are_verified_and_complete():
    root = measured_root()
    for name in ("stage1", *MEASURED_CASES):
        b = read_bundle(root / name)
        assert b.card["family"] == "measured"
        if name != "stage1":
            case = MEASURED_CASES[name]
            assert b.card["outputs"] == list(case.outputs)
            for o in case.outputs:
                iv = b.card["intervals"][o]
                assert len(iv["margins"]) == len(iv["bin_edges"]) - 1 and min(iv["margins"]) >= 0
            assert 0 < b.card["domain"]["threshold"] < math.inf


@pytest.mark.parametrize("case", list(MEASURED_CASES))
def test_fresh_clean_curves_are_predicted_accurately_with_ordered_intervals(family, case):
    """New seeds, the paper's noise, q a 0.1-10. Tolerances: 3x the MAPE measured by study_measured
    (docs/measured-family.md), so a broken pipeline (wrong grid, unit or stage) fails by far."""
    d = synthesize(MEASURED_CASES[case], 60, np.random.SeedSequence([31337, len(case)]), CLEAN, keep_curves=True)
    forced = "two_phase_low" if case == "two_phase" else case
    err = {o: [] for o in ("a", "porosity", "layer_fraction")}
    for k, (q, i, di) in enumerate(d["curves"]):
        p = family.predict(q, i, di, case=forced)
        for o, (lo, hi) in p.intervals.items():
            assert lo <= p.values[o] <= hi
        assert 0 < p.values["porosity"] < 1
        err["a"].append(abs(p.values["a"] / d["a"][k] - 1))
        err["porosity"].append(abs(p.values["porosity"] / d["porosity"][k] - 1))
        if case != "two_phase":
            err["layer_fraction"].append(abs(p.values["layer_fraction"] / d["layer_fraction"][k] - 1))
    assert np.mean(err["a"]) < 0.05
    assert np.mean(err["porosity"]) < 0.15
    if case != "two_phase":
        assert np.mean(err["layer_fraction"]) < 0.4


def test_auto_case_tells_two_from_three_phases_on_clear_cases(family):
    rng = np.random.default_rng(3)
    right = 0
    for k in range(20):
        three = k % 2 == 1
        a = float(rng.uniform(20, 200))
        qa = np.geomspace(0.05, 20.0, 200)
        i = model_curve(qa, 0.7 if three else 0.3, 0.4 if three else 0.0, 0.5)
        i = i * (1 + 0.01 * rng.standard_normal(qa.size))
        p = family.predict(qa / a, i, 0.01 * i)
        right += p.case.startswith("three") == three
    assert right >= 18


def test_refusals_and_repairs(family):
    q = np.geomspace(0.2, 0.9, 50)
    with pytest.raises(ValueError, match=r"overlaps the initializer's domain .* by a factor 4.5"):
        family.predict(q, q**-3)
    with pytest.raises(ValueError, match="unknown case 'two'"):
        family.predict(np.geomspace(0.01, 0.5, 50), np.ones(50), case="two")
    with pytest.raises(ValueError, match="intensity must be > 0"):
        family.predict(np.geomspace(0.01, 0.5, 50), -np.ones(50))
    # Unsorted q with a repeated value: sorted and averaged, same answer as the clean curve.
    qa = np.geomspace(0.1, 10, 120)
    a = 50.0
    i = model_curve(qa, 0.3, 0.0, 0.3)
    q = qa / a
    ref = family.predict(q, i, case="two_phase")
    perm = np.r_[q[::-1], q[10]], np.r_[i[::-1], i[10]]
    got = family.predict(*perm, case="two_phase")
    # Same points, summed in another order: float32 features agree to their last bits (1e-5 relative).
    assert got.values == pytest.approx(ref.values, rel=1e-5)
    # The resolution follows its points when they are sorted (a reversed dq would change the self-check).
    dq = 0.05 * q
    ref = family.predict(q, i, 0.01 * i, dq=dq, case="two_phase")
    got = family.predict(q[::-1], i[::-1], 0.01 * i[::-1], dq=dq[::-1], case="two_phase")
    assert got.chi2r == pytest.approx(ref.chi2r, rel=1e-6)


def test_two_phase_answers_offer_both_sides_of_babinet(family):
    qa = np.geomspace(0.1, 10, 120)
    i = model_curve(qa, 0.3, 0.0, 0.3)
    low = family.predict(qa / 40, i, case="two_phase_low")
    high = family.predict(qa / 40, i, case="two_phase_high")
    assert high.values["porosity"] == pytest.approx(1 - low.values["porosity"])
    assert high.intervals["porosity"][0] == pytest.approx(1 - low.intervals["porosity"][1])
    auto = family.predict(qa / 40, i, case="two_phase")
    assert any("Babinet" in n for n in auto.notes)


def test_cli_predict_json_on_a_real_file(tmp_path):
    """AOT_Microemulsion stops at q = 0.277 1/Å: the paper family refused it, the measured one predicts."""
    out = tmp_path / "p.json"
    run = subprocess.run([sys.executable, "-m", "sasview_grf_plugin.cli", "predict",
                          str(EXAMPLES / "AOT_Microemulsion-Core_Contrast.xml"), "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "a [Å]" in run.stdout and "Traceback" not in run.stderr
    doc = json.loads(out.read_text())
    (row,) = doc["predictions"]
    assert row["units"]["a"] == "Å" and row["case"] in CASE_CHOICES[2:]
    for k, (lo, hi) in row["intervals"].items():
        assert lo <= row["values"][k] <= hi
    assert row["self_check"]["chi2r"] > 0
