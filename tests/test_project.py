"""The SasView project writer (sasview/project.py) and the canSAS XML converter (sasview/convert.py).

The GUI test (test_gui.py) opens the written files in SasView's window; these tests check the files
themselves, fast and without a display: the model's own parameters, scale and background solved
exactly on a curve made by the model, fit ranges the model can evaluate, the data as SasView's
project reader rebuilds them, and the converter's round trip through sasdata's loader.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from sasview_grf_plugin.sasview import project as proj
from sasview_grf_plugin.sasview.project import (
    ModelParameter,
    ProjectEntry,
    model_for_case,
    model_parameters,
    seed_values,
    valid_range,
    write_project,
)


def _pdh() -> str:
    import sasdata

    return str(Path(sasdata.__file__).parent / "example_data" / "1d_data" / "Anton-Paar.pdh")


def _model_curve(model: str, values: dict, scale: float, background: float, q: np.ndarray, slit: float = 0.0):
    """A sasdata Data1D holding the model's own intensity (with a slit length when given)."""
    from sasdata.dataloader.data_info import Data1D
    from sasmodels.core import load_model
    from sasmodels.direct_model import DirectModel

    from sasview_grf_plugin.sasview import model_path

    d = Data1D(x=q.copy(), y=np.ones_like(q), dy=np.ones_like(q))
    d.dx = None
    d.qmin, d.qmax = float(q.min()), float(q.max())
    if slit:
        d.dxl = np.full(q.size, slit)
    i = DirectModel(d, load_model(model_path(model)))(**values, scale=scale, background=background)
    d.y = np.asarray(i, dtype=np.float64)
    d.dy = 0.01 * d.y
    d.filename = "synthetic"
    return d


def test_model_parameters_follow_the_model_file():
    from sasview_grf_plugin.sasview.models import grf_three_phase

    rows = model_parameters("grf_three_phase")
    assert [r.name for r in rows[:2]] == ["scale", "background"]
    assert [r.name for r in rows[2:]] == [p[0] for p in grf_three_phase.parameters]
    for r, p in zip(rows[2:], grf_three_phase.parameters, strict=True):
        assert r.default == p[2] and r.limits == (float(p[3][0]), float(p[3][1]))


def test_model_for_case():
    assert model_for_case("two_phase_low") == "grf_two_phase"
    assert model_for_case("three_phase_high") == "grf_three_phase"
    with pytest.raises(ValueError, match="no GRF model"):
        model_for_case("sphere")


@pytest.mark.parametrize("scheme", ["smoothing", "smoothing_ratio"])
def test_seed_values_write_the_models_own_smoothing(monkeypatch, scheme):
    """Before and after the switch to smoothing_ratio = sigma/a: the seed fills whichever the model has."""
    rows = [ModelParameter("scale", "", 1.0, (0.0, math.inf)), ModelParameter("background", "1/cm", 0.001,
                                                                               (-math.inf, math.inf)),
            ModelParameter("a", "Ang", 50.0, (1.0, 1e4)), ModelParameter("porosity", "", 0.3, (0.02, 0.5)),
            ModelParameter(scheme, "Ang" if scheme == "smoothing" else "", 10.0 if scheme == "smoothing" else 0.2,
                           (0.0, 1e5) if scheme == "smoothing" else (0.0, 1.25))]
    monkeypatch.setattr(proj, "model_parameters", lambda model: rows)
    for predicted in ({"a": 80.0, "porosity": 0.25, "smoothing": 20.0},
                      {"a": 80.0, "porosity": 0.25, "smoothing_ratio": 0.25}):
        v = seed_values("grf_two_phase", predicted)
        assert v["a"] == 80.0 and v["porosity"] == 0.25
        assert set(v) == {"a", "porosity", scheme}
        assert v[scheme] == pytest.approx(20.0 if scheme == "smoothing" else 0.25, rel=1e-12)


def test_seed_values_are_moved_inside_the_limits():
    """SasView refuses a start value on a limit ('coerced'): the seed lies strictly inside."""
    lo, hi = dict((p.name, p.limits) for p in model_parameters("grf_two_phase"))["porosity"]
    for given in (lo, hi, lo - 0.5, hi + 0.5):
        v = seed_values("grf_two_phase", {"a": 100.0, "porosity": given, "smoothing": 10.0})["porosity"]
        assert lo < v < hi and min(abs(v - lo), abs(v - hi)) < 1e-3 * (hi - lo) * 1.0001
    with pytest.raises(ValueError, match="not a number"):
        seed_values("grf_two_phase", {"a": 100.0, "porosity": float("nan"), "smoothing": 10.0})


def test_scale_and_background_are_solved_exactly_on_the_models_own_curve():
    q = np.geomspace(0.003, 0.3, 60)
    values = seed_values("grf_two_phase", {"a": 120.0, "porosity": 0.3, "smoothing": 12.0})
    data = _model_curve("grf_two_phase", values, scale=0.037, background=0.25, q=q, slit=0.02)
    scale, background = proj.scale_and_background(data, "grf_two_phase", values)
    assert scale == pytest.approx(0.037, rel=1e-8) and background == pytest.approx(0.25, rel=1e-6)


def test_fit_ranges_stay_where_the_model_evaluates():
    """Where a model's domain couples parameters, each ticked range ends where the model still evaluates."""
    from sasmodels.core import load_model

    from sasview_grf_plugin.sasview import model_path

    q = np.geomspace(0.001, 0.5, 20)
    names = {p.name: p for p in model_parameters("grf_two_phase")}
    kernel = load_model(model_path("grf_two_phase"))
    predicted = {"a": 400.0, "porosity": 0.3, "smoothing": 380.0, "smoothing_ratio": 0.95}
    values = seed_values("grf_two_phase", predicted)
    for name, p in names.items():
        if name not in values:
            continue
        lo, hi = valid_range("grf_two_phase", values, name, p.limits, q)
        assert p.limits[0] <= lo <= values[name] <= hi <= p.limits[1]
        for end in (lo, hi):
            assert proj._evaluates(kernel, q, {**values, name: end})
        if lo > p.limits[0]:
            # Narrowed: the model refuses the value 2 % beyond the new end.
            assert not proj._evaluates(kernel, q, {**values, name: lo * 0.98})


def _entries(tmp_path):
    from sasview_grf_plugin.loaders import load_curves

    q = np.geomspace(0.002, 0.4, 80)
    two = seed_values("grf_two_phase", {"a": 90.0, "porosity": 0.35, "smoothing": 9.0, "smoothing_ratio": 0.1})
    three = seed_values("grf_three_phase", {"a": 60.0, "porosity": 0.6, "layer_fraction": 0.3, "smoothing": 9.0,
                                           "smoothing_ratio": 0.15})
    pdh = load_curves(_pdh())[0]
    return [ProjectEntry(_model_curve("grf_two_phase", two, 0.01, 0.1, q), "synthetic-two", "grf_two_phase", two,
                         notes=["seeded"]),
            ProjectEntry(pdh.data, pdh.name, "grf_three_phase", three)]


def test_project_file_pages_and_parameters(tmp_path):
    entries = _entries(tmp_path)
    path = write_project(tmp_path / "p.json", entries)
    project = json.loads(path.read_text())
    pages = {k: v for k, v in project.items() if isinstance(v, dict) and "fit_params" in v}
    assert len(pages) == 2 and project["is_batch"] == "False" and project["visible_perspective"] == "Fitting"
    for (data_id, page), entry, tab in zip(pages.items(), entries, (1, 2), strict=True):
        params = page["fit_params"][0]
        data = page["fit_data"][0]
        assert data["id"] == data_id and params["data_id"] == [[data_id]] and params["tab_index"] == [str(tab)]
        assert params["fitpage_category"] == ["Plugin Models"] and params["fitpage_model"] == [entry.model]
        assert float(params["q_range_min"][0]) == pytest.approx(float(np.min(entry.data.x)))
        for p in model_parameters(entry.model):
            ticked, value, _err, lo, hi, _cons = params[p.name]
            value, lo, hi = float(value), float(lo), float(hi)
            assert lo <= value <= hi
            if p.name in entry.values:
                assert value == pytest.approx(entry.values[p.name], rel=1e-12)
            # Ticked: scale, background and the structure parameters that are free in every model version.
            assert (ticked == "True") == (p.name in ("scale", "background", "a", "porosity", "layer_fraction",
                                                     "smoothing_ratio")), p.name
            if p.name in ("scale", "background"):
                assert math.isfinite(lo) and math.isfinite(hi)  # DREAM needs finite ranges
    first, second = (page["fit_params"][0] for page in pages.values())
    assert first["smearing"] == ["0"] and second["smearing"] == ["1"]  # the .pdh has a slit length
    assert "seeded" in next(iter(pages.values()))["fit_data"][0]["notes"]


def test_project_data_as_sasviews_reader_rebuilds_them(tmp_path):
    """SasView's own project reader and data manager give back the curve, with the slit for SasView's smearing."""
    pytest.importorskip("sas.qtgui.Utilities.GuiUtils", reason="needs SasView (pip install '.[sasview]')")
    from sas.qtgui.MainWindow.DataManager import DataManager
    from sas.qtgui.Utilities import GuiUtils
    from sas.sascalc.fit.qsmearing import smear_selection

    entries = _entries(tmp_path)
    path = write_project(tmp_path / "p.json", entries)
    with open(path) as fh:
        loaded = GuiUtils.readDataFromFile(fh)
    pages = [v for v in loaded.values() if isinstance(v, dict) and "fit_data" in v]
    for page, entry in zip(pages, entries, strict=True):
        gui = DataManager().create_gui_data(page["fit_data"][0], entry.name)
        np.testing.assert_array_equal(gui.x, np.asarray(entry.data.x))
        np.testing.assert_array_equal(gui.y, np.asarray(entry.data.y))
        smearer = smear_selection(gui, None)
        if getattr(entry.data, "dxl", None) is not None:
            assert type(smearer.resolution).__name__ == "Slit1D"
            np.testing.assert_allclose(smearer.resolution.q_length, entry.data.dxl[0])
        else:
            assert smearer is None


def test_write_project_refuses_bad_paths_and_models(tmp_path):
    entries = _entries(tmp_path)
    with pytest.raises(ValueError, match=r"\.json"):
        write_project(tmp_path / "p.svs", entries)
    with pytest.raises(ValueError, match="no folder"):
        write_project(tmp_path / "missing" / "p.json", entries)
    with pytest.raises(ValueError, match="not a GRF fitting model"):
        write_project(tmp_path / "p.json", [ProjectEntry(entries[0].data, "x", "grf_two_phase_sim", {})])
    with pytest.raises(ValueError, match="at least one"):
        write_project(tmp_path / "p.json", [])


def test_convert_pdh_round_trip_through_sasdata(tmp_path):
    """The converted file loads with sasdata's Loader in 1/Å with the slit length (dx empty)."""
    from sasdata.dataloader.loader import Loader

    from sasview_grf_plugin.cli import main
    from sasview_grf_plugin.loaders import load_curves

    out = tmp_path / "ap.xml"
    assert main(["convert", _pdh(), str(out)]) == 0
    curve = load_curves(_pdh())[0]
    d = Loader().load(str(out))[0]
    np.testing.assert_allclose(d.x, curve.q, rtol=1e-12)
    np.testing.assert_allclose(d.y, curve.intensity, rtol=1e-12)
    np.testing.assert_allclose(d.dy, curve.error, rtol=1e-12)
    np.testing.assert_allclose(d.dxl, curve.slit_length, rtol=1e-12)
    assert d.dx is None or not np.any(d.dx)
    assert d._xunit in ("A^{-1}", "1/A")
    assert d.run == ["Anton-Paar"] and "None" not in out.read_text()  # SasView shows the run as the data's name
    # Our loader reads it back as the same curve.
    again = load_curves(out)[0]
    np.testing.assert_allclose(again.q, curve.q, rtol=1e-12)
    assert again.slit_length == pytest.approx(curve.slit_length, rel=1e-12)
    # Refusals: existing output, wrong extension.
    assert main(["convert", _pdh(), str(out)]) == 2
    assert main(["convert", _pdh(), str(tmp_path / "ap.h5")]) == 2
    assert main(["convert", _pdh(), str(out), "--force"]) == 0
    assert os.path.getsize(out) > 0


@pytest.mark.slow
def test_seed_cli_writes_the_predicted_values(tmp_path, capsys):
    """``seed`` = ``predict`` + the project: the page holds the prediction; a refused curve is left out."""
    import sasdata

    from sasview_grf_plugin.cli import main
    from sasview_grf_plugin.loaders import load_curves
    from sasview_grf_plugin.ml.measured import load_measured

    refused = str(Path(sasdata.__file__).parent / "example_data" / "1d_data" / "CoreXY_ShellZ.txt")
    out = tmp_path / "seed.json"
    assert main(["seed", _pdh(), refused, "--q-unit", "1/A", "-o", str(out)]) == 2
    assert "--skip-refused" in capsys.readouterr().err and not out.exists()
    assert main(["seed", _pdh(), refused, "--q-unit", "1/A", "-o", str(out), "--skip-refused"]) == 0
    pages = [v["fit_params"][0] for v in json.loads(out.read_text()).values()
             if isinstance(v, dict) and "fit_params" in v]
    assert len(pages) == 1
    curve = load_curves(_pdh())[0]
    pred = load_measured().predict(curve.q, curve.intensity, curve.error, None, [curve.slit_length] * curve.q.size)
    model = model_for_case(pred.case)
    assert pages[0]["fitpage_model"] == [model]
    for name, value in seed_values(model, pred.values).items():
        assert float(pages[0][name][1]) == pytest.approx(value, rel=1e-9), name
