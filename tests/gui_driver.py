"""Drive SasView's real main window through its widgets (run by tests/test_gui.py under Xvfb).

Not a test module: ``python tests/gui_driver.py PLAN.json`` runs the steps of the plan in a fresh
SasView main window, with SasView's own event loop (the Twisted Qt reactor it runs on), and writes
``result.json`` and screenshots (PNG) into the plan's ``out`` folder. The environment (HOME and the
XDG folders, so that SasView finds the plugin models installed there, and DISPLAY) is the caller's.

Steps, as a user does them:

1. ``fit``: load a data file (the Data Explorer's load), *Send data to Fitting*, choose the model
   under *Plugin Models*, tick parameters, choose the optimizer (Preferences > Fitting Optimizers,
   Apply) and press *Fit*; for every optimizer in the plan, one after the other.
2. ``project``: *File > Open Project* with the plan's project file (the file dialog answered), then
   read every fit page's model, parameter values, ticks, ranges and smearing, and *Fit* one page.
3. ``resolution``: load a file, send it to Fitting, choose the model, and read the resolution
   (smearing) the fit page uses.

The log is everything SasView logs (a handler on the root logger) and the Log Explorer's text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

PLAN = json.loads(Path(sys.argv[1]).read_text())
OUT = Path(PLAN["out"])
OUT.mkdir(parents=True, exist_ok=True)
T0 = time.perf_counter()
RESULT: dict = {"steps": [], "log": [], "errors": []}


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is itself worth reporting
            text = repr(record.msg)
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        RESULT["log"].append({"level": record.levelname, "logger": record.name, "message": text[:4000]})


logging.getLogger().addHandler(_Capture(level=logging.DEBUG))
logging.getLogger().setLevel(logging.INFO)


def _finish(code: int) -> None:
    RESULT["seconds"] = time.perf_counter() - T0
    (OUT / "result.json").write_text(json.dumps(RESULT, indent=1, default=str))
    sys.stdout.flush()
    sys.stderr.flush()
    # SasView's reactor and worker threads do not all stop on request: end the process here.
    os._exit(code)


from PySide6 import QtCore, QtWidgets  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402

QGuiApplication.setAttribute(Qt.AA_ShareOpenGLContexts)
app = QtWidgets.QApplication([])
app.setStyleSheet("* {font-size: 11pt;}")  # as SasView's own start (sas.qtgui.MainWindow.MainWindow)
from sas.qtgui.Utilities import ReactorCore  # noqa: E402

ReactorCore.install()
from sas.qtgui.MainWindow.MainWindow import MainSasViewWindow  # noqa: E402
from sas.system.version import __version__ as SASVIEW_VERSION  # noqa: E402
from twisted.internet import reactor  # noqa: E402

RESULT["sasview_version"] = SASVIEW_VERSION
mw = MainSasViewWindow()
mw.resize(1600, 1000)
mw.show()
gm = mw.guiManager


class StepTimeout(RuntimeError):
    pass


def wait(cond, seconds: float, what: str):
    """Yield to the event loop until ``cond()`` is true."""
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > seconds:
            raise StepTimeout(f"timed out after {seconds:g} s waiting for {what}")
        yield


def settle(n: int = 10):
    for _ in range(n):
        yield


def shot(name: str) -> str:
    path = OUT / f"{name}.png"
    mw.grab().save(str(path))
    return path.name


def panel_shot(name: str) -> str:
    """The fit panel alone (plots may cover it in the main window)."""
    path = OUT / f"{name}.png"
    perspective().grab().save(str(path))
    return path.name


def perspective():
    return gm.perspective()


def load_and_send(path: str):
    """Load a file as File > Load Data File does, then press 'Send data to' (Fitting)."""
    fw = gm.filesWidget
    before = fw.model.rowCount()
    # Only the new data set is checked, so that Send sends it alone.
    for r in range(before):
        fw.model.item(r).setCheckState(Qt.Unchecked)
    fw.loadFromURL([path])
    yield from wait(lambda: fw.model.rowCount() > before, 60, f"{Path(path).name} to load")
    for r in range(fw.model.rowCount()):
        fw.model.item(r).setCheckState(Qt.Checked if r >= before else Qt.Unchecked)
    per = perspective()
    tabs_before = per.count() if hasattr(per, "count") else 0
    fw.cmdSendTo.click()
    yield from wait(lambda: per.currentTab is not None and per.currentTab.data is not None
                    and (per.count() > tabs_before or tabs_before <= 1), 30, "the fit page")
    yield from settle()
    return per.currentTab


def choose_model(tab, model: str):
    tab.cbCategory.setCurrentIndex(tab.cbCategory.findText("Plugin Models"))
    yield from settle(3)
    models = [tab.cbModel.itemText(i) for i in range(tab.cbModel.count())]
    if model not in models:
        raise RuntimeError(f"{model} not under Plugin Models: {models}")
    tab.cbModel.setCurrentIndex(tab.cbModel.findText(model))
    yield from wait(lambda: tab.logic.kernel_module is not None and tab.logic.kernel_module.id == model, 30,
                    f"{model} to load")
    yield from settle()


def rows(tab) -> dict:
    """Every parameter row of the fit page as shown: ticked, value, min, max (texts)."""
    m = tab._model_model
    out = {}
    j = 1 if tab.has_error_column else 0
    for r in range(m.rowCount()):
        name = m.item(r, 0).text()
        cells = [m.item(r, c).text() if m.item(r, c) is not None else "" for c in range(m.columnCount())]
        if cells[1] == "":
            continue  # the model's name row
        out[name] = {"ticked": m.item(r, 0).checkState() == Qt.Checked, "value": cells[1],
                     "min": cells[2 + j], "max": cells[3 + j], "kernel": tab.logic.kernel_module.getParam(name)}
    return out


def tick(tab, names: list[str]) -> None:
    m = tab._model_model
    for r in range(m.rowCount()):
        name = m.item(r, 0).text()
        if m.item(r, 0).isCheckable():
            m.item(r, 0).setCheckState(Qt.Checked if name in names else Qt.Unchecked)


def choose_optimizer(opt: dict) -> None:
    """Preferences > Fitting Optimizers: choose the algorithm, type its settings, Apply."""
    w = perspective().fit_options_widget
    w.cbAlgorithm.setCurrentIndex(w.cbAlgorithm.findText(opt["name"]))
    for option, value in opt.get("settings", {}).items():
        w.widgetFromOption(option, opt["id"]).setText(str(value))
    w.applyNonConfigValues()


def press_fit(tab, label: str, seconds: float):
    status = gm.statusLabel
    status.setText("")
    t0 = time.perf_counter()
    tab.cmdFit.click()
    yield from wait(lambda: tab.fit_started, 10, "the fit to start")
    yield from wait(lambda: not tab.fit_started, seconds, f"the {label} fit to finish")
    yield from settle(20)
    chi2 = getattr(tab, "chi2", None)  # the fit's own value (res.fitness); the label shows 5 digits
    return {"status": status.text(), "chi2_shown": tab.lblChi2Value.text(),
            "chi2": None if chi2 is None else float(chi2), "seconds": time.perf_counter() - t0,
            "optimizer": perspective().fit_options.selected_name, "window_title": perspective().windowTitle()}


def step_fit(spec: dict):
    tab = yield from load_and_send(spec["data"])
    yield from choose_model(tab, spec["model"])
    available = rows(tab)
    wanted = [n for n in spec["tick"] if n in available]
    tick(tab, wanted)
    yield from settle()
    record = {"kind": "fit", "data": spec["data"], "model": spec["model"], "ticked": wanted,
              "defaults": available, "fits": []}
    for opt in spec["optimizers"]:
        choose_optimizer(opt)
        yield from settle()
        fit = yield from press_fit(tab, opt["name"], spec.get("timeout", 120))
        fit["values"] = rows(tab)
        fit["screenshot"] = shot(f"fit-{spec['model']}-{opt['id']}")
        fit["panel_screenshot"] = panel_shot(f"fitpanel-{spec['model']}-{opt['id']}")
        if gm.results_frame.isVisible():
            fit["results_screenshot"] = f"results-{opt['id']}.png"
            gm.results_panel.grab().save(str(OUT / fit["results_screenshot"]))
        record["fits"].append(fit)
    RESULT["steps"].append(record)


def step_project(spec: dict):
    path = spec["project"]
    # The user's answers to the two dialogs of File > Open Project.
    QtWidgets.QFileDialog.getOpenFileName = staticmethod(lambda *a, **k: (path, ""))
    QtWidgets.QMessageBox.exec = lambda self: QtWidgets.QMessageBox.StandardButton.Yes
    if spec.get("via") == "command_line":
        # SasView 6.2: `sasview FILE.json` (or a file dropped on the app) emits this signal for each file.
        gm.communicator.fileTriggerSignal.emit(path)
    else:
        gm.actionOpen_Project()
    per = perspective()
    yield from wait(lambda: gm.filesWidget.model.rowCount() >= spec["pages"], 60, "the project's data")
    yield from wait(lambda: len(getattr(per, "tabs", [])) >= spec["pages"], 60, "the project's fit pages")
    yield from settle(20)
    pages = []
    for tab in per.tabs:
        if tab.data is None or tab.logic.kernel_module is None:
            continue
        # Compute/Plot: the chi^2 of the loaded values (the page shows a stale one until then).
        per.setCurrentWidget(tab)
        shown = tab.lblChi2Value.text()
        tab.cmdPlot.click()
        yield from wait(lambda tab=tab, shown=shown: tab.lblChi2Value.text() != shown, 30, "Compute/Plot")
        yield from settle(10)
        pages.append({"data": tab.data.name, "model": tab.logic.kernel_module.id,
                      "category": tab.cbCategory.currentText(),
                      "params": rows(tab), "smearing": tab.smearing_widget.cbSmearing.currentText(),
                      "slit_length": _slit(tab), "q_range": [tab.q_range_min, tab.q_range_max],
                      "chi2_computed": tab.lblChi2Value.text(), "chi2_on_open": shown})
    record = {"kind": "project", "project": path, "pages": pages, "screenshot": shot("project-opened"),
              "panel_screenshot": panel_shot("fitpanel-project-opened")}
    # "fit_page": one page (index) to fit; "fit_pages": several, one after the other.
    wanted = spec.get("fit_pages", [] if spec.get("fit_page") is None else [spec["fit_page"]])
    if wanted:
        choose_optimizer(spec["optimizer"])
        yield from settle()
    record["fits"] = []
    for k in wanted:
        tab = per.tabs[k]
        per.setCurrentWidget(tab)
        yield from settle()
        fit = yield from press_fit(tab, "seeded", spec.get("timeout", 120))
        fit["data"] = tab.data.name
        fit["values"] = rows(tab)
        fit["screenshot"] = shot(f"project-fitted-{k}")
        fit["panel_screenshot"] = panel_shot(f"fitpanel-project-fitted-{k}")
        record["fits"].append(fit)
    if record["fits"]:
        record["fit"] = record["fits"][0]
    RESULT["steps"].append(record)


def _slit(tab):
    smearer = tab.smearing_widget.smearer()
    res = getattr(smearer, "resolution", None)
    if res is None or type(res).__name__ != "Slit1D":
        return None
    return {"type": "Slit1D", "q_length": [float(v) for v in getattr(res, "q_length", [])][:3]
            if hasattr(res, "q_length") else None}


def step_resolution(spec: dict):
    tab = yield from load_and_send(spec["data"])
    yield from choose_model(tab, spec["model"])
    yield from settle()
    smearer = tab.smearing_widget.smearer()
    res = getattr(smearer, "resolution", None)
    data = tab.data
    RESULT["steps"].append({
        "kind": "resolution", "data": spec["data"], "smearing": tab.smearing_widget.cbSmearing.currentText(),
        "resolution": type(res).__name__ if res is not None else None,
        "x_min": float(min(data.x)), "x_max": float(max(data.x)),
        "dxl": None if getattr(data, "dxl", None) is None else [float(v) for v in data.dxl[:3]],
        "x_unit": getattr(data, "_xunit", None), "screenshot": shot("resolution")})


def script():
    yield from settle(5)
    for spec in PLAN["steps"]:
        t0 = time.perf_counter()
        yield from {"fit": step_fit, "project": step_project, "resolution": step_resolution}[spec["kind"]](spec)
        RESULT["steps"][-1]["step_seconds"] = time.perf_counter() - t0
    RESULT["log_window"] = gm.listWidget.toPlainText()
    shot("final")
    # The shared libraries and fonts this process loaded (for the CI's list of system packages).
    RESULT["mapped_files"] = sorted({line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                                     if "/" in line} if Path("/proc/self/maps").exists() else set())


_gen = script()


def _step() -> None:
    try:
        next(_gen)
    except StopIteration:
        _finish(0)
        return
    except Exception as exc:  # noqa: BLE001 - every failure goes into the result for the test to show
        RESULT["errors"].append("".join(traceback.format_exception(exc)))
        try:
            RESULT["log_window"] = gm.listWidget.toPlainText()
            shot("failure")
        finally:
            _finish(1)
        return
    QtCore.QTimer.singleShot(50, _step)


QtCore.QTimer.singleShot(500, _step)
QtCore.QTimer.singleShot(int(PLAN.get("timeout", 170) * 1000),
                         lambda: (RESULT["errors"].append("driver timeout"), _finish(2)))
reactor.run()
