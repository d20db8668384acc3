"""Fitting any model (+ additive terms), the model comparison, and the q-range check."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from sasview_grf_plugin.compare import compare_models, fit_model
from sasview_grf_plugin.fitting import fit_curve
from sasview_grf_plugin.loaders import Curve
from sasview_grf_plugin.qrange import check_q_range


def _curve(q, i, di, dx=None, name="synthetic") -> Curve:
    from sasdata.dataloader.data_info import Data1D

    d = Data1D(x=np.asarray(q, float), y=np.asarray(i, float), dy=np.asarray(di, float))
    d.dx = None if dx is None else np.asarray(dx, float)
    d.dxl = d.dxw = None
    d.qmin, d.qmax = float(q[0]), float(q[-1])
    d.filename = name
    return Curve(data=d, name=name, source="test", q_unit_source="1/Å (test)")


def _direct(model: str, q: np.ndarray, dx: np.ndarray | None = None, **pars) -> np.ndarray:
    """The model's curve through sasmodels' own DirectModel (independent of the fitting code)."""
    from sasdata.dataloader.data_info import Data1D
    from sasmodels.core import build_model, load_model_info
    from sasmodels.direct_model import DirectModel

    from sasview_grf_plugin.compare import resolve_model

    full = "+".join(resolve_model(p) for p in model.split("+"))
    d = Data1D(x=q, y=np.ones_like(q), dy=np.ones_like(q))
    d.dx = dx
    d.dxl = d.dxw = None
    d.qmin, d.qmax = float(q[0]), float(q[-1])
    return np.asarray(DirectModel(d, build_model(load_model_info(full)))(**pars))


def _dab(q):
    return 1e3 / (1 + (q * 80.0) ** 2) ** 2 + 0.05


def test_sum_model_fit_recovers_grf_plus_power_law():
    """A noisy grf_two_phase + power_law curve (2 % errors, seeded): the fit recovers a, porosity and the
    power law's exponent within 4 standard errors and a few per cent, with reduced chi^2 near 1."""
    q = np.geomspace(1e-3, 0.3, 200)
    truth = {"A_a": 60.0, "A_porosity": 0.25, "A_scale": 0.02, "B_scale": 1e-6, "B_power": 3.2, "scale": 1.0,
             "background": 0.01}
    clean = _direct("grf_two_phase+power_law", q, **truth)
    rng = np.random.default_rng(7)
    di = 0.02 * clean
    fit = fit_model(_curve(q, clean + rng.normal(0, di), di), "grf_two_phase", ("power_law",))
    assert fit.model == "grf_two_phase+power_law"
    assert 0.7 < fit.chi2 < 1.4
    for k, rel in (("A_a", 0.05), ("A_porosity", 0.15), ("B_power", 0.03)):
        v, e = fit.values[k], fit.uncertainties[k]
        assert abs(v - truth[k]) < max(4 * e, 1e-12), (k, v, e)
        assert abs(v / truth[k] - 1) < rel, (k, v)


def test_compare_uses_the_same_data_weights_and_resolution_for_every_model():
    """Every fit's chi^2 equals the one recomputed independently (sasmodels DirectModel, pinhole dq, the
    data's errors, the reported q range) from its reported parameters; all fits share q and errors."""
    q = np.geomspace(3e-3, 0.25, 90)
    dx = 0.08 * q
    clean = _direct("teubner_strey", q, dx=dx, d=300.0, xi=80.0, scale=1.0, background=0.02)
    rng = np.random.default_rng(3)
    di = 0.03 * clean + 1e-3
    cmp = compare_models(_curve(q, clean + rng.normal(0, di), di, dx=dx), models=("dab", "teubner_strey"),
                         q_range=(4e-3, 0.2))
    assert {f.model for f in cmp.fits} == {"dab", "dab+power_law", "teubner_strey", "teubner_strey+power_law"}
    sel = (q >= 4e-3) & (q <= 0.2)
    y = (clean + rng.normal(0, di))  # a different draw: used only to show the check is sensitive
    for f in cmp.fits:
        assert np.allclose(f.curves["q"], q[sel]) and np.allclose(f.curves["error"], di[sel])
        # sasmodels builds the resolution from the points inside the fit range: the same data, restricted.
        model = _direct(f.model, q[sel], dx=dx[sel], **{**f.fixed, **f.values})
        chi2 = float(np.sum(((np.asarray(f.curves["data"]) - model) / di[sel]) ** 2))
        assert chi2 == pytest.approx(f.chi2_total, rel=1e-6)
        assert f.chi2 == pytest.approx(chi2 / (sel.sum() - f.n_free), rel=1e-6)
        assert f.bic == pytest.approx(chi2 + f.n_free * np.log(sel.sum()), rel=1e-9)
        # Without the resolution the same parameters give another chi^2: the smearing was applied.
        unsmeared = _direct(f.model, q[sel], **{**f.fixed, **f.values})
        assert abs(np.sum(((np.asarray(f.curves["data"]) - unsmeared) / di[sel]) ** 2) - chi2) > 1e-3 * chi2
        assert not np.allclose(np.asarray(f.curves["data"]), y[sel])
    # The generating model wins, and the ranking is by BIC.
    assert cmp.best.model.startswith("teubner_strey")
    assert [f.bic for f in cmp.fits] == sorted(f.bic for f in cmp.fits)


def _q():
    return np.geomspace(2e-3, 1.5, 300)


def test_qrange_clean_curves_are_not_cut():
    q = _q()
    assert not check_q_range(q, _dab(q), 0.02 * _dab(q)).findings
    ts = _direct("teubner_strey", q, d=120.0, xi=40.0, scale=1.0, background=0.01)
    assert not check_q_range(q, ts, 0.02 * ts).findings  # a correlation peak is not an artefact


def test_qrange_finds_a_waxs_peak():
    q = _q()
    i = _dab(q) + 2.0 * np.exp(-0.5 * ((q - 1.0) / 0.12) ** 2)
    rep = check_q_range(q, i, 0.02 * i)
    assert [f.kind for f in rep.findings] == ["waxs"]
    assert 0.3 < rep.suggested[1] < 0.85 and rep.suggested[0] == q[0]


def test_qrange_finds_a_tail_that_drops_below_its_background():
    q = _q()
    i = _dab(q)
    drop = q > 0.8
    i[drop] *= np.linspace(0.9, 0.3, drop.sum())
    rep = check_q_range(q, i, 0.01 * i)
    assert [f.kind for f in rep.findings] == ["tail_drop"]
    assert q[~drop][-1] * 0.9 <= rep.suggested[1] <= q[~drop][-1]


def test_qrange_finds_a_steep_fall_after_the_flat_tail():
    """A flat tail that then falls faster than q^-5 (a detector edge): cut where it flattened; the same
    curve without the fall is not cut."""
    q = _q()
    i = _dab(q)
    edge = q > 0.6
    i[edge] *= np.exp(-(((q[edge] - 0.6) / 0.15) ** 2))
    rep = check_q_range(q, i, 0.01 * i)
    assert [f.kind for f in rep.findings] == ["tail_drop"]
    assert 0.45 < rep.suggested[1] <= 0.62
    assert not check_q_range(q, _dab(q), 0.01 * _dab(q)).findings
    assert json.loads(json.dumps(rep.to_dict()))["findings"][0]["kind"] == "tail_drop"  # plain JSON types


def test_qrange_finds_beam_stop_upturn_and_shadow():
    q = _q()
    up = _dab(q) + 1e-12 * q**-6.5
    rep = check_q_range(q, up, 0.02 * up)
    assert [f.kind for f in rep.findings] == ["beam_stop_upturn"]
    assert rep.suggested[0] > q[2]
    shadow = _dab(q)
    shadow[:6] *= np.linspace(0.2, 0.95, 6)
    rep = check_q_range(q, shadow, 0.02 * shadow)
    assert [f.kind for f in rep.findings] == ["beam_stop_drop"]
    assert q[4] <= rep.suggested[0] <= q[7]


def test_fit_never_cuts_silently():
    q = _q()
    i = _dab(q) + 2.0 * np.exp(-0.5 * ((q - 1.0) / 0.12) ** 2)
    data = (q, i, 0.02 * i)
    kept = fit_curve(data, model="dab", q_unit="1/A")
    assert kept.q_range == (q[0], q[-1])
    assert any(w.startswith("WAXS") for w in kept.warnings) and any("nothing was cut" in w for w in kept.warnings)
    cut = fit_curve(data, model="dab", q_unit="1/A", auto_qrange=True)
    assert cut.q_range[1] < 0.85 and any(w.startswith("cut: WAXS") for w in cut.warnings)
    assert cut.chi2 < kept.chi2


def test_fit_curve_model_and_plus_routing():
    q = np.geomspace(3e-3, 0.3, 80)
    i = _dab(q)
    r = fit_curve((q, i, 0.02 * i), model="dab", plus=["power_law"], q_unit="1/A")
    assert r.mode == "multistart" and r.case == "dab+power_law" and r.units["A_cor_length"] == "Å"
    assert r.values["A_cor_length"] == pytest.approx(80.0, rel=0.02)
    with pytest.raises(ValueError, match="replace"):
        fit_curve((q, i, 0.02 * i), model="dab", mode="replace", q_unit="1/A")
    with pytest.raises(ValueError, match="unknown additive term"):
        fit_curve((q, i, 0.02 * i), model="dab", plus=["sphere"], q_unit="1/A")
    with pytest.raises(ValueError, match="not a case of grf_two_phase"):
        fit_curve((q, i, 0.02 * i), model="grf_two_phase", case="three_phase_low", q_unit="1/A")


def test_cli_compare_on_a_sasdata_example(tmp_path, capsys):
    import sasdata

    from sasview_grf_plugin.cli import main

    path = os.path.join(os.path.dirname(sasdata.__file__), "example_data", "1d_data",
                        "AOT_Microemulsion-Core_Contrast.xml")
    png, js = tmp_path / "cmp.png", tmp_path / "cmp.json"
    rc = main(["compare", path, "--models", "dab", "teubner_strey", "--plot", str(png), "--json", str(js)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "red. χ²" in out and "best (lowest BIC): teubner_strey" in out
    assert png.stat().st_size > 10_000
    d = json.loads(js.read_text())
    assert {f["model"] for f in d["fits"]} == {"dab", "dab+power_law", "teubner_strey", "teubner_strey+power_law"}
    assert len({f["n_points"] for f in d["fits"]}) == 1 and len({tuple(f["q_range"]) for f in d["fits"]}) == 1


@pytest.mark.slow
@pytest.mark.parametrize("model", __import__("sasview_grf_plugin.sasview.paths", fromlist=["x"]).ENSEMBLE_MODELS)
def test_every_grf_model_fits_its_own_curve(model):
    """Every model of the family (new ones included) is fitted from the data alone: on its own curve at
    the default parameters, with 2 % noise, the multi-start fit reaches the noise level (reduced chi^2
    below 1.5; the truth gives about 1)."""
    q = np.geomspace(2e-3, 0.4, 150)
    clean = _direct(model, q, scale=1.0, background=1e-3)
    rng = np.random.default_rng(11)
    di = 0.02 * clean
    fit = fit_model(_curve(q, clean + rng.normal(0, di), di), model)
    assert fit.chi2 < 1.5, (fit.chi2, fit.values)
