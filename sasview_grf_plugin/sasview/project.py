"""SasView project files seeded by the ML initializer: File > Open Project, then Fit.

A SasView project (``.json``, written by SasView's *File > Save Project*) holds every loaded data set
and, per data set, the state of its fit page: category and model, and for every parameter
``[ticked, value, error, min, max, constraint]``. SasView 6.1 and 6.2 rebuild the data set from the
fields ``x, y, dy, dx, dxl, dxw``, axis labels and metadata (``DataManager.create_gui_data``), open
one fit page per data set, choose the model and fill in the parameters (``FittingWidget.
createPageForParameters``). This module writes such a file without SasView: the data as this
package reads them (q in 1/Å, Anton Paar ``.pdh`` with its slit length), the GRF model the
prediction chose (a plugin model: ``sasview-grf install-plugins`` first), the predicted values,
``scale`` and ``background`` solved linearly at those values, and the parameters a fit should move
ticked. Many files (an in-situ series) give one project with one fit page per curve.

Parameter names, defaults, limits and units come from the model files' ``parameters`` lists and
values from the prediction, so the file follows the models as they are: where a model has the
dimensionless ``smoothing_ratio`` (sigma/a) it is written (and ticked: any value inside its limits
is valid), where it has ``smoothing`` in Å that is written and left unticked (its valid range
depends on ``a``, which per-parameter fit ranges cannot express).
"""

from __future__ import annotations

import copy
import json
import math
import os
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .paths import ENSEMBLE_MODELS, model_path

__all__ = ["ProjectEntry", "model_parameters", "seed_values", "fit_page", "sasview_project", "write_project",
           "model_for_case", "PLUGIN_CATEGORY"]

#: The category SasView lists plugin models under.
PLUGIN_CATEGORY = "Plugin Models"
# SasView's own parameters of every model: [name, units, default, (min, max)].
_COMMON = [("scale", "", 1.0, (0.0, math.inf)), ("background", "1/cm", 0.001, (-math.inf, math.inf))]
# Structure parameters a seeded fit moves (when the model has them); scale and background always.
_FITTED = ("a", "porosity", "layer_fraction", "smoothing_ratio")


@dataclass
class ProjectEntry:
    """One curve and its seed: ``data`` a sasdata ``Data1D`` (q in 1/Å), ``values`` in SasView units."""

    data: Any
    name: str
    model: str
    values: dict[str, float]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelParameter:
    """One fit-page row: name, units, default and limits, as the model file (or SasView) defines them."""

    name: str
    units: str
    default: float
    limits: tuple[float, float]


def model_for_case(case: str) -> str:
    """The GRF model (one of ``ENSEMBLE_MODELS``) for a predicted case (``two_phase_low``, ...)."""
    for name in ENSEMBLE_MODELS:
        if case.startswith(name.removeprefix("grf_")):
            return name
    raise ValueError(f"no GRF model for case {case!r}; cases start with two_phase or three_phase")


def model_parameters(model: str) -> list[ModelParameter]:
    """The rows of ``model``'s fit page in SasView's order: scale, background, then the model file's list."""
    from sasmodels.core import load_model_info

    info = load_model_info(model_path(model))
    rows = [ModelParameter(n, u, float(d), (float(lo), float(hi))) for n, u, d, (lo, hi) in _COMMON]
    rows += [ModelParameter(p.name, p.units, float(p.default), (float(p.limits[0]), float(p.limits[1])))
             for p in info.parameters.kernel_parameters]
    return rows


def _inside(value: float, limits: tuple[float, float]) -> float:
    """``value`` moved just inside ``limits``: SasView refuses a start value on a limit ("coerced")."""
    lo, hi = limits
    width = hi - lo
    step = 1e-3 * (width if math.isfinite(width) else max(abs(value), 1.0))
    if math.isfinite(lo) and lo != 0.0:
        step = min(step, 1e-3 * abs(lo))
    if value <= lo:
        return lo + step
    if value >= hi:
        return hi - step
    return value


def seed_values(model: str, predicted: dict[str, float]) -> dict[str, float]:
    """The predicted structure in ``model``'s own parameters (those it has), inside its limits.

    ``predicted`` uses the names of the prediction (``a``, ``porosity``, ``layer_fraction`` and
    ``smoothing`` in Å or ``smoothing_ratio`` = sigma/a): each model parameter takes its value
    directly or, for the smoothing, converted between Å and the ratio.
    """
    values: dict[str, float] = {}
    a = predicted.get("a")
    for p in model_parameters(model):
        if p.name in predicted:
            v = float(predicted[p.name])
        elif p.name == "smoothing_ratio" and "smoothing" in predicted and a:
            v = float(predicted["smoothing"]) / float(a)
        elif p.name == "smoothing" and "smoothing_ratio" in predicted and a:
            v = float(predicted["smoothing_ratio"]) * float(a)
        else:
            continue
        if not math.isfinite(v):
            raise ValueError(f"{p.name} = {v} is not a number; the prediction cannot seed {model}")
        values[p.name] = _inside(v, p.limits)
    return values


def _linear_scale_background(model_i: np.ndarray, y: np.ndarray, dy: np.ndarray | None) -> tuple[float, float]:
    """Weighted least squares y ~ scale * model + background with scale > 0 and background >= 0."""
    w = 1.0 / (dy if dy is not None and np.all(dy > 0) else np.abs(y))
    a = np.column_stack([model_i * w, w])
    (scale, bkg), *_ = np.linalg.lstsq(a, y * w, rcond=None)
    if bkg < 0 or scale <= 0:
        bkg = 0.0
        scale = float(np.sum(model_i * y * w**2) / np.sum((model_i * w) ** 2))
    return float(max(scale, 1e-30)), float(bkg)


def scale_and_background(data: Any, model: str, values: dict[str, float]) -> tuple[float, float]:
    """``scale`` and ``background`` that match ``model`` at ``values`` to ``data`` (sasmodels, with the
    data's resolution: pinhole ``dx`` or, where ``dx`` is None, slit ``dxl``)."""
    from sasmodels.core import load_model
    from sasmodels.direct_model import DirectModel

    kernel = load_model(model_path(model))
    data = copy.copy(data)
    # sasmodels needs the q range, and smears with the slit only where dx is None.
    x = np.asarray(data.x, dtype=np.float64)
    data.qmin, data.qmax = float(x.min()), float(x.max())
    if getattr(data, "dx", None) is not None and not np.any(np.asarray(data.dx) > 0):
        data.dx = None
    theory = np.asarray(DirectModel(data, kernel)(**values, scale=1.0, background=0.0), dtype=np.float64)
    y = np.asarray(data.y, dtype=np.float64)
    dy = None if data.dy is None else np.asarray(data.dy, dtype=np.float64)
    if not np.all(np.isfinite(theory)) or not np.any(theory > 0):
        raise ValueError(f"{model} gives no usable intensity at {values}; cannot solve for scale")
    return _linear_scale_background(theory, y, dy)


def _evaluates(kernel: Any, q: np.ndarray, values: dict[str, float]) -> bool:
    """Whether the model gives finite intensities at ``values`` (a model refuses values outside its domain)."""
    from sasmodels.data import empty_data1D
    from sasmodels.direct_model import DirectModel

    try:
        i = DirectModel(empty_data1D(q), kernel)(**values)
    except Exception:  # noqa: BLE001 - any refusal by the model marks the value as outside its domain
        return False
    return bool(np.all(np.isfinite(i)))


def valid_range(model: str, values: dict[str, float], name: str, limits: tuple[float, float],
                q: np.ndarray) -> tuple[float, float]:
    """The part of ``limits`` of parameter ``name`` where ``model`` evaluates with the others at ``values``.

    A fit range is per parameter; where a model's domain couples parameters (a smoothing in Å that must
    stay below a multiple of ``a``), the fit would step out of it. Each end that fails is moved towards
    ``values[name]`` by bisection (geometric for positive ranges) to 1 % inside the valid part.
    """
    from sasmodels.core import load_model

    kernel = load_model(model_path(model))
    q = np.geomspace(max(float(np.min(q)), 1e-6), max(float(np.max(q)), 2e-6), 5)
    start = values[name]
    out = list(limits)
    for k, end in enumerate(limits):
        if not math.isfinite(end) or _evaluates(kernel, q, {**values, name: end}):
            continue
        good, bad = start, end
        geometric = good > 0 and bad > 0
        for _ in range(30):
            mid = math.sqrt(good * bad) if geometric else 0.5 * (good + bad)
            good, bad = (mid, bad) if _evaluates(kernel, q, {**values, name: mid}) else (good, mid)
        # 1 % inside the valid part (never past the start value).
        if geometric:
            good = min(good * 1.01, start) if k == 0 else max(good * 0.99, start)
        out[k] = good
    return out[0], out[1]


def _fmt(v: float) -> str:
    return repr(float(v))


def fit_page(entry: ProjectEntry, data_id: str, tab_index: int, scale: float, background: float) -> dict[str, list]:
    """The fit page's state as SasView saves it (``FittingWidget.getFitPage`` + ``getFitModel``)."""
    q = np.asarray(entry.data.x, dtype=np.float64)
    y = np.asarray(entry.data.y, dtype=np.float64)
    slit = _slit_length(entry.data)
    page: dict[str, list] = {
        "tab_index": [str(tab_index)], "tab_name": [f"M{tab_index}"], "is_data": ["True"],
        "is_batch_fitting": ["False"], "data_name": [[entry.name]], "data_id": [[data_id]],
        "fitpage_category": [PLUGIN_CATEGORY], "fitpage_model": [entry.model], "fitpage_structure": ["None"],
        "model_name": [entry.model], "2D_params": ["False"], "chainfit_params": ["False"],
        "polydisperse_params": ["False"], "magnetic_params": ["False"],
        "q_range_min": [_fmt(q.min())], "q_range_max": [_fmt(q.max())],
        # Weighting: SasView's default (dI from the data); smearing 1 = "Use dQ Data" where the data
        # carry a resolution (a slit length here or a pinhole dQ), else 0 = none.
        "weighting": ["1"], "q_weighting": ["1"],
        "smearing": ["1" if (slit or _has_pinhole(entry.data)) else "0"],
        "smearing_min": ["None"], "smearing_max": ["None"],
        # The model's name row (SasView writes one, with no value).
        entry.model: [None, "", None, "", "", []],
    }
    values = {**entry.values, "scale": scale, "background": background}
    for p in model_parameters(entry.model):
        lo, hi = p.limits
        if p.name == "scale":
            lo, hi = scale * 1e-3, scale * 1e3
        elif p.name == "background":
            # Finite ranges (DREAM needs them): from zero to well above the curve's low end.
            lo, hi = 0.0, max(10.0 * background, 0.5 * float(np.max(y)))
        ticked = p.name in ("scale", "background") or p.name in _FITTED
        if ticked and p.name in entry.values:
            lo, hi = valid_range(entry.model, entry.values, p.name, (lo, hi), q)
        value = values.get(p.name, p.default)
        page[p.name] = [str(ticked and p.name in values), _fmt(value), None, _fmt(lo), _fmt(hi), []]
    return page


def _slit_length(data: Any) -> float:
    dxl = getattr(data, "dxl", None)
    if dxl is None:
        return 0.0
    dxl = np.asarray(dxl, dtype=np.float64)
    return float(dxl[0]) if dxl.size and np.all(dxl > 0) else 0.0


def _has_pinhole(data: Any) -> bool:
    dx = getattr(data, "dx", None)
    return dx is not None and bool(np.any(np.asarray(dx, dtype=np.float64) > 0))


def _serialize(o: Any) -> Any:
    """JSON for sasdata objects, as SasView's ``GuiUtils.saveData`` writes them (``__type__`` + fields)."""
    if isinstance(o, np.ndarray):
        return {"__type__": "ndarray", "data": o.tolist()}
    if isinstance(o, (tuple, set)):
        return {"__type__": type(o).__name__, "data": [_serialize(v) for v in o]}
    if isinstance(o, dict):
        return {str(k): _serialize(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_serialize(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    if o is None or isinstance(o, (bool, int, float, str)):
        return o
    if isinstance(o, types.FunctionType):
        return None
    if hasattr(o, "__dict__"):
        # Sample, Source, Vector, Detector, Collimation, Aperture, Process, TransmissionSpectrum, Data1D:
        # the class names SasView's reader knows.
        return {"__type__": type(o).__name__, **{k: _serialize(v) for k, v in vars(o).items()}}
    return None


def _data_record(entry: ProjectEntry, data_id: str) -> dict[str, Any]:
    d = entry.data
    rec = _serialize(d)
    n = len(np.asarray(d.x))
    # SasView's GUI smears with a slit only where both dxl and dxw are arrays of the data's length
    # (sas.sascalc.fit.qsmearing.smear_selection) and dx is empty: give dxw zeros (no slit width).
    for attr in ("dx", "dxl", "dxw"):
        rec.setdefault(attr, None)
    if _slit_length(d) > 0:
        rec["dxw"] = _serialize(np.zeros(n)) if getattr(d, "dxw", None) is None else rec["dxw"]
        rec["dx"] = None
    rec.update({"__type__": "Data1D", "id": data_id, "group_id": data_id, "name": entry.name,
                "title": getattr(d, "title", "") or entry.name, "filename": getattr(d, "filename", "") or entry.name,
                "is_data": True, "isSesans": bool(getattr(d, "isSesans", False))})
    for attr, default in (("_xaxis", "\\rm{Q}"), ("_xunit", "A^{-1}"), ("_yaxis", "\\rm{Intensity}"),
                          ("_yunit", "cm^{-1}"), ("notes", []), ("run", []), ("instrument", ""), ("process", []),
                          ("detector", []), ("collimation", []), ("trans_spectrum", []), ("meta_data", {}),
                          ("errors", [])):
        rec.setdefault(attr, default)
    # The notes say where the seed came from (SasView shows them under Data Info).
    rec["notes"] = list(rec.get("notes") or []) + entry.notes
    for attr, cls in (("sample", "Sample"), ("source", "Source")):
        if not isinstance(rec.get(attr), dict):
            from sasdata.dataloader import data_info

            rec[attr] = _serialize(getattr(data_info, cls)())
    return rec


def sasview_project(entries: Sequence[ProjectEntry]) -> dict[str, Any]:
    """The project as a JSON-ready dictionary: one data set and one fit page per entry."""
    if not entries:
        raise ValueError("no curves to write: a project needs at least one")
    project: dict[str, Any] = {}
    used: set[str] = set()
    for k, entry in enumerate(entries, start=1):
        if entry.model not in ENSEMBLE_MODELS:
            raise ValueError(f"model {entry.model!r} is not a GRF fitting model ({', '.join(ENSEMBLE_MODELS)})")
        data_id = f"{entry.name} [{k}]"
        while data_id in used:
            data_id += "'"
        used.add(data_id)
        scale, background = scale_and_background(entry.data, entry.model, entry.values)
        project[data_id] = {
            "fit_data": [_data_record(entry, data_id), {"checked": True}, []],
            "fit_params": [fit_page(entry, data_id, k, scale, background)],
        }
    project.update({"is_batch": "False", "batch_grid": {}, "visible_perspective": "Fitting"})
    return project


def write_project(path: str | os.PathLike, entries: Sequence[ProjectEntry]) -> Path:
    """Write the SasView project of ``entries`` to ``path`` (``.json``); returns the path."""
    from .install import write_atomic

    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ValueError(f"{path}: a SasView project file ends in .json (SasView's Open Project lists only those)")
    project = sasview_project(entries)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: no folder {path.parent}")
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(project, indent=1), encoding="utf-8"))
    return path
