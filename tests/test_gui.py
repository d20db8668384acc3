"""SasView's real main window under Xvfb, driven through its widgets (tests/gui_driver.py).

One SasView session (a subprocess with its own HOME, where the plugin models are installed, and an
Xvfb display started here) does what a GUI user does: load a sasdata file, send it to Fitting,
choose ``grf_two_phase`` under Plugin Models, fit with Levenberg-Marquardt and with DREAM (a small
sample count); open the project written by ``sasview-grf seed`` (two files, one fit page each) and
fit a seeded page; load the canSAS XML written by ``sasview-grf convert`` from an Anton Paar file.
Screenshots go to ``gui-artifacts/`` in the working directory (``SASVIEW_GRF_GUI_ARTIFACTS``
elsewhere). Skipped where SasView's GUI or Xvfb is missing (failed instead where
``SASVIEW_GRF_REQUIRE_GUI`` is set, as in CI).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).with_name("gui_driver.py")
# A hang guard for the whole SasView session (start, two fits, a project with a seeded fit, a resolution
# check), not a speed limit: the session takes about a minute on an idle 2-core machine, and several
# times that on a loaded one.
SESSION_TIMEOUT = 480


def _skip_reason() -> str | None:
    if shutil.which("Xvfb") is None:
        return "Xvfb is not installed (Debian: apt-get install xvfb; see .ci/run for the libraries Qt needs)"
    try:
        import sas.qtgui  # noqa: F401
        import sasdata  # noqa: F401
        from PySide6 import QtWidgets  # noqa: F401
    except ImportError as exc:
        return f"SasView's GUI is not installed ({exc}); pip install '.[sasview]'"
    return None


@pytest.fixture(scope="module")
def xvfb():
    """A private Xvfb display (the number chosen by Xvfb itself through -displayfd)."""
    reason = _skip_reason()
    if reason and os.environ.get("SASVIEW_GRF_REQUIRE_GUI"):
        pytest.fail(f"SASVIEW_GRF_REQUIRE_GUI is set but {reason}")
    if reason:
        pytest.skip(reason)
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as fh:
            number = fh.readline().strip()
        if not number:
            pytest.fail("Xvfb did not start (no display number)")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _example(name: str) -> str:
    import sasdata

    return str(Path(sasdata.__file__).parent / "example_data" / "1d_data" / name)


@pytest.fixture(scope="module")
def session(xvfb, tmp_path_factory):
    """Run the driver once; return its result, the project written by ``seed`` and the artifacts folder."""
    import sasview_grf_plugin
    from sasview_grf_plugin.cli import main
    from sasview_grf_plugin.sasview.install import install_plugins

    tmp = tmp_path_factory.mktemp("sasview-gui")
    home = tmp / "home"
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_STATE_HOME": str(home / "state"), "DISPLAY": xvfb}
    env.pop("QT_QPA_PLATFORM", None)  # the offscreen platform crashes SasView's 3D viewer: the real X display
    # SasView's plugin folder under that HOME (platformdirs: $XDG_DATA_HOME/SasView/plugin_models); the plugin
    # files import this package as the test process sees it.
    install_plugins(home / "data" / "SasView" / "plugin_models")
    package_root = str(Path(sasview_grf_plugin.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])

    alumina, pdh = _example("Alumina_usaxs.csv"), _example("Anton-Paar.pdh")
    project = tmp / "seeded.json"
    assert main(["seed", alumina, pdh, "--q-unit", "1/A", "-o", str(project)]) == 0
    converted = tmp / "anton-paar.xml"
    assert main(["convert", pdh, str(converted)]) == 0

    out = Path(os.environ.get("SASVIEW_GRF_GUI_ARTIFACTS", "gui-artifacts")).resolve()
    shutil.rmtree(out, ignore_errors=True)
    lm = {"id": "lm", "name": "Levenberg-Marquardt"}
    plan = {"out": str(out), "timeout": SESSION_TIMEOUT - 10, "steps": [
        {"kind": "fit", "data": alumina, "model": "grf_two_phase",
         # The parameters a user ticks (smoothing_ratio where the model has it; smoothing in Å stays fixed).
         "tick": ["scale", "background", "a", "porosity", "smoothing_ratio"],
         "optimizers": [lm, {"id": "dream", "name": "DREAM", "settings": {"samples": 2000, "burn": 50}}]},
        # A model of the spectral family (exact level cut, no table) on a bicontinuous microemulsion.
        {"kind": "fit", "data": _example("AOT_Microemulsion-Core_Contrast.xml"), "model": "grf_two_phase_peaked",
         "tick": ["scale", "background", "d", "xi_over_d", "porosity"],
         "optimizers": [lm, {"id": "dream", "name": "DREAM", "settings": {"samples": 2000, "burn": 50}}]},
        {"kind": "project", "project": str(project), "pages": 2, "fit_page": 0, "optimizer": lm},
        {"kind": "resolution", "data": str(converted), "model": "grf_two_phase"},
    ]}
    plan_path = tmp / "plan.json"
    plan_path.write_text(json.dumps(plan))
    result_path = out / "result.json"
    # Once in about five sessions on this 2-core machine, SasView's fit thread left a DREAM fit of grf_two_phase
    # unfinished ("Fitting started..." for minutes; the same fit takes 1.6 s in bumps directly), and the session
    # never exits. A session that times out gets one fresh retry; its artefacts are kept beside the second
    # session's (gui-artifacts-attempt1), and a second timeout fails the test.
    for attempt in (1, 2):
        try:
            proc = subprocess.run([sys.executable, str(DRIVER), str(plan_path)], env=env, cwd=tmp,
                                  capture_output=True, text=True, timeout=SESSION_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc = None
        timed_out = proc is None or (result_path.is_file() and any(
            "StepTimeout" in e for e in json.loads(result_path.read_text())["errors"]))
        if not timed_out or attempt == 2:
            break
        first = out.with_name(out.name + "-attempt1")
        shutil.rmtree(first, ignore_errors=True)
        shutil.move(str(out), str(first))
    if proc is None:
        pytest.fail(f"the SasView session did not finish within {SESSION_TIMEOUT} s, twice")
    if not result_path.is_file():
        pytest.fail(f"the SasView session wrote no result (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(result_path.read_text())
    (out / "driver-output.txt").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    assert not result["errors"], "\n".join(result["errors"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"result": result, "project": json.loads(project.read_text()), "out": out}


def _step(session, kind: str) -> dict:
    return next(s for s in session["result"]["steps"] if s["kind"] == kind)


def _model_limits(model: str) -> dict[str, tuple[float, float]]:
    from sasview_grf_plugin.sasview.project import model_parameters

    return {p.name: p.limits for p in model_parameters(model)}


@pytest.mark.parametrize("model", ["grf_two_phase", "grf_two_phase_peaked"])
def test_fit_from_defaults_lm_and_dream(session, model):
    step = next(s for s in session["result"]["steps"] if s["kind"] == "fit" and s["model"] == model)
    assert [f["optimizer"] for f in step["fits"]] == ["Levenberg-Marquardt", "DREAM"]
    limits = _model_limits(model)
    for fit in step["fits"]:
        assert fit["status"].startswith("Fitting completed successfully"), fit["status"]
        assert fit["optimizer"] in fit["window_title"]
        chi2 = float(fit["chi2_shown"])
        assert math.isfinite(chi2) and chi2 > 0
        for name in step["ticked"]:
            value = fit["values"][name]["kernel"]
            lo, hi = limits[name]
            assert lo <= value <= hi, (name, value)
        assert (session["out"] / fit["screenshot"]).is_file()
    # LM moved the ticked structure parameters away from the defaults.
    lm = step["fits"][0]["values"]
    length = "a" if "a" in lm else "d"
    assert lm[length]["kernel"] != pytest.approx(step["defaults"][length]["kernel"], rel=1e-3)


def test_log_has_no_errors_or_tracebacks(session):
    result = session["result"]
    bad = [r for r in result["log"] if r["level"] in ("ERROR", "CRITICAL") or "Traceback" in r["message"]]
    assert not bad, "\n\n".join(f"{r['level']} {r['logger']}: {r['message'][:1500]}" for r in bad)
    assert "Traceback" not in result["log_window"]
    assert "ERROR" not in result["log_window"]


def test_seeded_project_opens_with_values_ticks_ranges_and_resolution(session):
    project = session["project"]
    step = _step(session, "project")
    assert len(step["pages"]) == 2
    pages = {p["data"]: p for p in step["pages"]}
    for entry in project.values():
        if not isinstance(entry, dict) or "fit_params" not in entry:
            continue
        saved = entry["fit_params"][0]
        name = saved["data_name"][0][0]
        page = pages[name]
        assert page["model"] == saved["fitpage_model"][0] and page["category"] == "Plugin Models"
        assert page["q_range"] == pytest.approx([float(saved["q_range_min"][0]), float(saved["q_range_max"][0])])
        for pname, row in page["params"].items():
            ticked, value, _err, lo, hi, _cons = saved[pname]
            assert row["ticked"] == (ticked == "True"), pname
            # SasView shows (and sets) a loaded value to 5 significant digits: a relative rounding error of up to
            # 0.5e-4 / 1.0000 = 5e-5 (e.g. 0.125193554 -> 0.12519, 2.8e-5).
            assert row["kernel"] == pytest.approx(float(value), rel=5e-5), pname
            assert float(row["min"]) == pytest.approx(float(lo), rel=1e-4) and \
                float(row["max"]) == pytest.approx(float(hi), rel=1e-4), pname
        # Compute/Plot's chi^2 is the seed's, as sasmodels gives it on the curve (with its slit) at the values
        # SasView holds: the page evaluates what the file describes, resolution included.
        assert float(page["chi2_computed"]) == pytest.approx(_chi2(name, saved["fitpage_model"][0], page["params"]),
                                                              rel=0.02)
        if name == "Anton-Paar":
            # The slit length read from the .pdh header reaches SasView's smearing ("Use dQ Data", a slit).
            assert page["smearing"] == "Use dQ Data"
            assert page["slit_length"]["q_length"][0] == pytest.approx(0.1557578, rel=1e-6)
        else:
            assert page["smearing"] == "None"
    assert (session["out"] / step["screenshot"]).is_file()


def _chi2(name: str, model: str, params: dict) -> float:
    """SasView's chi^2 (mean squared normalized residual) of ``model`` at the page's values, by sasmodels."""
    import numpy as np
    from sasmodels.core import load_model
    from sasmodels.direct_model import DirectModel

    from sasview_grf_plugin.loaders import load_curves
    from sasview_grf_plugin.sasview import model_path

    files = {"Anton-Paar": ("Anton-Paar.pdh", None), "Alumina_usaxs": ("Alumina_usaxs.csv", "1/A")}
    file, unit = files[name]
    d = load_curves(_example(file), q_unit=unit)[0].data
    theory = DirectModel(d, load_model(model_path(model)))(**{k: v["kernel"] for k, v in params.items()})
    return float(np.mean(((np.asarray(d.y) - theory) / np.asarray(d.dy)) ** 2))


def test_seeded_fit_finishes(session):
    step = _step(session, "project")
    fit = step["fit"]
    assert fit["status"].startswith("Fitting completed successfully"), fit["status"]
    seeded = float(fit["chi2_shown"])
    assert math.isfinite(seeded) and seeded > 0
    # The issue's target (seeded chi^2 <= the defaults' chi^2) is a fair comparison only where every
    # structure parameter is free: with the smoothing in Å fixed at the seed, the fit cannot correct it.
    # Both LM fits may end in the same minimum: "at or below" within the optimizer's convergence (1e-6).
    defaults = _step(session, "fit")["fits"][0]["chi2"]
    assert fit["chi2"] == pytest.approx(seeded, rel=1e-4) and math.isfinite(defaults)
    if "smoothing_ratio" in fit["values"]:
        assert fit["chi2"] <= defaults * (1 + 1e-6), (fit["chi2"], defaults)


def test_converted_pdh_loads_in_angstrom_with_slit_smearing(session):
    step = _step(session, "resolution")
    from sasview_grf_plugin.loaders import load_curves

    curve = load_curves(_example("Anton-Paar.pdh"))[0]
    assert step["smearing"] == "Use dQ Data" and step["resolution"] == "Slit1D"
    assert step["x_min"] == pytest.approx(float(curve.q.min()), rel=1e-9)
    assert step["x_max"] == pytest.approx(float(curve.q.max()), rel=1e-9)  # 0.45 1/Å (4.5 1/nm in the file)
    assert step["dxl"][0] == pytest.approx(curve.slit_length, rel=1e-9)
