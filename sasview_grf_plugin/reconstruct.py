"""3-D structures from a fitted curve: realizations of the fitted GRF model, with pictures and morphology.

A fit (:class:`~sasview_grf_plugin.fitting.FitResult`, its JSON from ``sasview-grf fit --json``, or a data
file fitted first) gives the structure's parameters in SasView's units. :func:`reconstruct` chooses a voxel
grid from the structure's length scales and the data's q range, generates K realizations with the package's
FFT simulator (any backend), and writes

- the labelled volumes (0 pore, 1 layer, 2 solid) as ``.npy`` and as ImageJ TIFF stacks with the voxel size
  in Å (the format of tomography and porous-media tools: Fiji/ImageJ, Dragonfly, Avizo, PoreSpy all read
  it; uint8 labels make small files);
- orthogonal slices and a 3-D rendering (PNG);
- the realizations' mean I(q) in cm^-1 against the model curve (and the data), with the box's q window;
- morphology numbers with their spread over realizations (see :mod:`sasview_grf_plugin.morphology`).

Units: everything here is in Å, 1/Å and cm^-1; the simulator works in nm, and :func:`_to_simulator` and
:func:`_from_simulator` are the only places that convert.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import morphology
from .sasview.units import ANGSTROM_PER_NM, CM_PER_SLD2_NM3

__all__ = ["FitSpec", "GridChoice", "Reconstruction", "load_fit", "choose_grid", "memory_estimate",
           "model_intensity", "model_interface_areas", "reconstruct", "RES_VOXELS_PER_A", "BOX_PER_A",
           "Q_HIGH_FRACTION"]

#: The voxel resolves a by at least this many voxels (interfaces and their area to about 1 %).
RES_VOXELS_PER_A = 5.0
#: The box holds at least this many a: smaller boxes bias smoothed structures' curves (one box's quantiles).
BOX_PER_A = 20.0
#: The box's curve follows the continuum model up to this fraction of the voxels' Nyquist wave number pi/dx;
#: above it aliasing and staircase interfaces of the voxels add intensity (the package's table study uses the
#: same quarter).
Q_HIGH_FRACTION = 0.25
#: A three-phase layer of mean thickness t (= layer volume fraction / its outer interface area) is resolved
#: by at least this many voxels where the grid allows.
LAYER_VOXELS = 2.0
# Default SLDs of the fits (fitting._fit): the fitted scale holds the true contrast.
_FIT_SLDS = {"sld_pore": 0.0, "sld_layer": 0.65, "sld_solid": 1.0}
# Bytes per voxel beyond the simulator's own peak: the labels kept for the images, a float32 density for the
# curve, and morphology's working arrays (int32 cluster labels, boolean masks, rolled copies).
_EXTRA_BYTES_PER_VOXEL = 16


# -- the fit ----------------------------------------------------------------------------------------------
@dataclass
class FitSpec:
    """The structure to reconstruct, in SasView's units (a and smoothing in Å, SLDs in 1e-6/Å^2)."""

    name: str
    model: str
    a: float
    porosity: float
    layer_fraction: float
    smoothing: float
    scale: float = 1.0
    background: float = 0.0
    slds: dict[str, float] = field(default_factory=lambda: dict(_FIT_SLDS))
    q_range: tuple[float, float] | None = None
    values: dict[str, float] = field(default_factory=dict)  # every fitted and fixed model parameter
    #: Spectral family of the GRF: "paper" (Röding et al.), "broad" (Matérn) or "peaked" (squared Teubner-Strey),
    #: and its shape parameters (``alpha``, ``xi_over_d``). ``a`` is the family's length unit (a or d) in Å.
    spectrum: str = "paper"
    shape: dict[str, float] = field(default_factory=dict)

    @property
    def three_phase(self) -> bool:
        return self.layer_fraction > 0

    @property
    def band(self) -> bool:
        """Three phases as the band between two levels of the GRF (the broad and peaked models), instead of
        the paper's layer on the smoothed level cut."""
        return self.three_phase and self.spectrum != "paper"

    @property
    def length_name(self) -> str:
        return "d" if self.spectrum == "peaked" else "a"

    @property
    def densities(self) -> tuple[float, float, float]:
        """Pore, layer and solid SLDs (1e-6/Å^2): the simulator's densities."""
        s = self.slds
        return (s["sld_pore"], s.get("sld_layer", s["sld_pore"]), s["sld_solid"])


def _json_safe(x: Any) -> Any:
    """``x`` with non-finite floats replaced by None (strict JSON has no NaN or Infinity)."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _model_of_case(case: str) -> str:
    """The GRF model of a fit's ``case``: a model name itself for multi-start fits (``fit --model``, possibly a
    sum such as ``grf_two_phase_peaked+power_law``), else the paper's model of an ML case."""
    case = str(case)
    if case.startswith("grf_"):
        return case.split("+")[0]
    return "grf_three_phase" if case.startswith("three") else "grf_two_phase"


def load_fit(source: Any, index: int = 0) -> FitSpec:
    """A :class:`FitSpec` from a ``FitResult``, its dict, or a JSON file of ``sasview-grf fit --json``.

    The model is the result's ``model`` (any GRF ensemble model: paper, broad or peaked spectrum, two or three
    phases) or follows from its ``case``. The smoothing of the paper's models is read as ``smoothing`` [Å] or
    ``smoothing_ratio`` (sigma/a), from the fitted values or the fixed ones; the band models' ``layer_volume``
    and ``pore_share`` become porosity and layer fraction. ``index`` picks one result of a JSON list.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON file of a fit result ({exc})") from None
    elif hasattr(source, "to_dict"):
        data = source.to_dict()
    else:
        data = source
    if isinstance(data, dict) and "results" in data:  # fit --summary x.json
        data = data["results"]
    if isinstance(data, list):
        if not data:
            raise ValueError("the fit JSON holds no result")
        if not 0 <= index < len(data):
            raise ValueError(f"result index {index} is out of range: the JSON holds {len(data)} results")
        data = data[index]
    if not isinstance(data, dict) or "values" not in data:
        raise ValueError("not a fit result: expected the JSON of `sasview-grf fit --json` (keys 'values', 'case')")
    values = {**{k: float(v) for k, v in data.get("fixed", {}).items()},
              **{k: float(v) for k, v in data["values"].items()}}
    if "+" in str(data.get("case", "")):
        # A sum model (fit --plus): sasmodels prefixes the GRF part's parameters with A_ (the added terms' with
        # B_, C_, ...); the structure is the A part, its own scale the volume-fraction scale.
        values = {**{k: v for k, v in values.items() if k in ("scale", "background")},
                  **{k[2:]: v for k, v in values.items() if k.startswith("A_")}}
    model = str(data.get("model") or _model_of_case(data.get("case", "two_phase")))
    family = _family_of_model(model)
    length = "d" if family == "peaked" else "a"
    if length not in values:
        raise ValueError(f"the fit result of {model} has no {length!r}; it holds {sorted(values)}")
    a = values[length]
    shape = {k: values[k] for k in _SHAPE_PARAMS.get(family, ()) if k in values}
    missing = [k for k in _SHAPE_PARAMS.get(family, ()) if k not in values]
    if missing:
        raise ValueError(f"the fit result of {model} has no {missing}; it holds {sorted(values)}")
    if "layer_volume" in values and "pore_share" in values:  # band models: pore / layer / solid volumes
        lv, share = values["layer_volume"], values["pore_share"]
        pore = (1.0 - lv) * share
        porosity, nu = pore + lv, lv / (pore + lv)
    elif "porosity" in values:
        porosity, nu = values["porosity"], values.get("layer_fraction", 0.0)
    else:
        raise ValueError(f"the fit result has no 'porosity' (nor 'layer_volume' and 'pore_share'); it holds "
                         f"{sorted(values)}")
    if family != "paper":
        smoothing = 0.0  # the broad and peaked models are exact level cuts and bands
    elif "smoothing" in values:
        smoothing = values["smoothing"]
    elif "smoothing_ratio" in values:
        smoothing = values["smoothing_ratio"] * a
    else:
        raise ValueError(f"the fit result has no 'smoothing' [Å] nor 'smoothing_ratio'; it holds {sorted(values)}")
    slds = {k: values.get(k, v) for k, v in _FIT_SLDS.items()}
    if nu == 0:
        slds.pop("sld_layer")
    q_range = tuple(float(x) for x in data["q_range"]) if data.get("q_range") else None
    spec = FitSpec(name=str(data.get("name", "fit")), model=model, a=a, porosity=porosity,
                   layer_fraction=nu, smoothing=smoothing, scale=values.get("scale", 1.0),
                   background=values.get("background", 0.0), slds=slds, q_range=q_range, values=values,
                   spectrum=family, shape=shape)
    _check_spec(spec)
    return spec


_SHAPE_PARAMS = {"broad": ("alpha",), "peaked": ("xi_over_d",)}


def _family_of_model(model: str) -> str:
    for family in ("broad", "peaked"):
        if model.endswith(f"_{family}"):
            return family
    return "paper"


def _check_spec(spec: FitSpec) -> None:
    from .simulator import validate_parameters

    validate_parameters(spec.a, spec.porosity, spec.layer_fraction)
    if not (math.isfinite(spec.smoothing) and spec.smoothing >= 0):
        raise ValueError(f"smoothing must be a finite length >= 0 Å, got {spec.smoothing}")


# -- the model ----------------------------------------------------------------------------------------------
_MODELS: dict[str, Any] = {}


def _load_model(name: str) -> Any:
    if name not in _MODELS:
        from sasmodels.core import load_model

        from .sasview import model_path

        _MODELS[name] = load_model(model_path(name))
    return _MODELS[name]


def _model_pars(spec: FitSpec, model: Any, overrides: dict[str, float]) -> dict[str, float]:
    pars: dict[str, float] = {"scale": spec.scale, "background": spec.background}
    for p in model.info.parameters.kernel_parameters:
        name = p.name
        if name in overrides:
            pars[name] = overrides[name]
        elif name in ("a", "d"):
            pars[name] = spec.a
        elif name in spec.shape:
            pars[name] = spec.shape[name]
        elif name == "layer_fraction":
            pars[name] = spec.layer_fraction
        elif name == "layer_volume":
            pars[name] = spec.porosity * spec.layer_fraction
        elif name == "pore_share":
            pore = spec.porosity * (1.0 - spec.layer_fraction)
            pars[name] = pore / (1.0 - spec.porosity * spec.layer_fraction)
        elif name == "smoothing":
            pars[name] = spec.smoothing
        elif name == "smoothing_ratio":
            pars[name] = spec.smoothing / spec.a
        elif name in spec.slds:
            pars[name] = spec.slds[name]
        elif name == "porosity":
            # Two-phase models stop at 0.5 (Babinet): a majority pore phase is the same curve as its mirror.
            hi = float(p.limits[1])
            pars[name] = spec.porosity if spec.porosity <= hi else 1.0 - spec.porosity
        elif name in spec.values:
            pars[name] = spec.values[name]
    pars.update({k: v for k, v in overrides.items() if k in ("scale", "background")})
    return pars


def model_intensity(spec: FitSpec, q: Any, **overrides: float) -> np.ndarray:
    """The fitted ensemble model's I(q) in cm^-1 at q in 1/Å (no resolution smearing).

    ``overrides`` replace model parameters (e.g. SLDs, ``scale=1``).
    """
    from sasmodels.direct_model import call_kernel

    model = _load_model(spec.model)
    qa = np.atleast_1d(np.asarray(q, dtype=np.float64))
    kernel = model.make_kernel([qa])
    try:
        return np.asarray(call_kernel(kernel, _model_pars(spec, model, overrides)), dtype=np.float64)
    finally:
        kernel.release()


def model_interface_areas(spec: FitSpec) -> dict[str, float]:
    """Interface area per volume (1/Å) of each phase's boundary in the model.

    Without smoothing (level cuts and bands of any spectrum) Rice's formula, S = (2/pi) sqrt(lambda)
    exp(-t^2/2) per level (``ensemble.levelcut.interface_area``; NaN for a rough spectrum, whose area is
    infinite). With smoothing (the paper's models) the Porod limit of the model, I -> 2 pi S (delta rho)^2
    1e-4 / q^4: with unit contrast on one phase's indicator (its SLD 1, the others 0), S = lim q^4 I / (2 pi
    1e-4) is that phase's boundary area. Keys as :func:`morphology.phase_masks`: ``pore``, ``solid``, and for
    three phases ``layer`` and ``pore+layer`` (whose boundary is the solid's).
    """
    pore_frac = spec.porosity * (1.0 - spec.layer_fraction)
    if spec.smoothing == 0:
        from .ensemble.levelcut import interface_area

        kw = _spectrum_kwargs(spec)

        def rice(lo: float, hi: float | None = None) -> float:
            s = interface_area(lo, hi, **kw) / spec.a
            return s if math.isfinite(s) else float("nan")

        if not spec.three_phase:
            return {"pore": rice(spec.porosity), "solid": rice(spec.porosity)}
        solid = rice(spec.porosity)
        return {"pore": rice(pore_frac), "layer": rice(pore_frac, spec.porosity), "solid": solid,
                "pore+layer": solid}
    # Far in the Porod regime of the smoothed models (the table continues by q^-4); q^4 I must be constant
    # there, else the area is reported as NaN. The three-phase pore curve (format-2 table) reaches its limit
    # only slowly (q^4 I differs by 1.7e-3 between q a = 1e3 and 1e4, by 2e-5 between 1e4 and 1e5).
    q = np.array([1e4 / spec.a, 1e5 / spec.a])

    def area(pore: float, layer: float, solid: float) -> float:
        i = model_intensity(spec, q, scale=1.0, background=0.0, sld_pore=pore, sld_layer=layer, sld_solid=solid)
        s = i * q**4 / (2 * math.pi * 1e-4)
        return float(s[1]) if abs(s[1] - s[0]) <= 1e-3 * abs(s[1]) else float("nan")

    if not spec.three_phase:
        s = area(1.0, 1.0, 0.0)
        return {"pore": s, "solid": s}
    solid = area(0.0, 0.0, 1.0)
    return {"pore": area(1.0, 0.0, 0.0), "layer": area(0.0, 1.0, 0.0), "solid": solid, "pore+layer": solid}


# -- the grid -----------------------------------------------------------------------------------------------
@dataclass
class GridChoice:
    """Voxel grid of the realizations (lengths in Å, q in 1/Å) and why it was chosen."""

    grid: int
    voxel: float
    reasons: list[str]

    @property
    def box(self) -> float:
        return self.grid * self.voxel

    @property
    def q_window(self) -> tuple[float, float]:
        """Where the box's curve is the structure's: 2 pi / L (the first shell) to Q_HIGH_FRACTION pi/dx."""
        return (2 * math.pi / self.box, Q_HIGH_FRACTION * math.pi / self.voxel)


def choose_grid(spec: FitSpec, grid: int = 256, voxel: float | None = None, box: float | None = None,
                layer_thickness: float | None = None) -> GridChoice:
    """Voxel size for an N^3 grid from the structure's length scales and the data's q range.

    Rules (Å): the voxel resolves the structure (dx <= a / RES_VOXELS_PER_A; peaked spectrum: d / 12) and a
    three-phase layer (dx <= t / 2); the box holds a sample (L >= BOX_PER_A a; peaked: max(10 d, 10 xi)).
    Between these limits the voxel centres the box's q window on the data's q range (geometric mean of the
    voxels that would reach the data's q_max and q_min). A given ``voxel`` or ``box`` overrides the rules (one
    of them: the grid fixes the other).
    """
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 16:
        raise ValueError(f"grid must be an integer >= 16 voxels per side, got {grid!r}")
    n = int(grid)
    if voxel is not None and box is not None:
        raise ValueError("give the voxel or the box, not both: the grid size fixes the other")
    reasons: list[str] = []
    res, res_why, box_min, box_why = _structure_lengths(spec)
    if layer_thickness is not None and layer_thickness / LAYER_VOXELS < res:
        res = layer_thickness / LAYER_VOXELS
        res_why = f"layer thickness / {LAYER_VOXELS:g} = {res:.4g} Å (resolve the layer)"
    small = box_min / n
    if voxel is not None or box is not None:
        v = float(voxel) if voxel is not None else float(box) / n
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"voxel and box must be finite lengths > 0 Å, got {voxel if voxel else box}")
        reasons.append(f"voxel {v:.4g} Å given ({'--voxel' if voxel is not None else f'--box {box:g} Å / {n}'})")
        if v > res * (1 + 1e-9):
            reasons.append(f"warning: coarser than {res_why}: interfaces and areas are under-resolved")
        if n * v < box_min * (1 - 1e-9):
            reasons.append(f"warning: the box {n * v:.4g} Å is smaller than {box_why}: realizations scatter more "
                           "and smoothed structures' curves are biased")
        return GridChoice(n, v, reasons)
    if small > res:
        reasons.append(f"voxel {res:.4g} Å = {res_why}; the grid {n} is too small for {box_why} "
                       f"(needs {math.ceil(box_min / res)} voxels): warning: the box is only {n * res:.4g} Å")
        return GridChoice(n, res, reasons)
    lo_why = f"{box_why} / {n} = {small:.4g} Å"
    if spec.q_range is None:
        reasons.append(f"voxel {res:.4g} Å: the largest allowed, {res_why} (no data q range: widest box)")
        return GridChoice(n, res, reasons)
    q_lo, q_hi = spec.q_range
    want_fine = Q_HIGH_FRACTION * math.pi / q_hi  # reaches the data's q_max in the window
    want_coarse = 2 * math.pi / q_lo / n  # reaches the data's q_min
    target = math.sqrt(want_fine * want_coarse)
    v = min(max(target, small), res)
    where = ("centres the box's q window on the data's" if small < target < res else
             "is the finest allowed" if target <= small else "is the coarsest allowed")
    reasons.append(f"voxel {v:.4g} Å {where} q range {q_lo:.4g}-{q_hi:.4g} 1/Å (it would need "
                   f"{want_fine:.4g} Å for q_max and {want_coarse:.4g} Å for q_min); limits: >= {lo_why}, "
                   f"<= {res_why}")
    return GridChoice(n, v, reasons)


#: Peaked spectrum: voxels per domain spacing d (a domain, half a period, spans 6 voxels), and the box in d and
#: in correlation lengths xi (the correlations oscillate with period d and decay over xi).
PEAKED_VOXELS_PER_D = 12.0
PEAKED_BOX_PER_D = 10.0
PEAKED_BOX_PER_XI = 10.0


#: The lattice holds the spectrum up to pi/dx: the field variance beyond it (fraction of int q^2 Gamma) must stay
#: below SPECTRUM_VARIANCE_LOSS, and for a smooth field the part of Rice's lambda (int q^4 Gamma) beyond it below
#: SPECTRUM_LAMBDA_LOSS (the interface area goes as sqrt(lambda): 2 %). Broad spectra with small alpha need it.
SPECTRUM_VARIANCE_LOSS = 0.005
SPECTRUM_LAMBDA_LOSS = 0.04


def _spectral_voxel(spec: FitSpec) -> float:
    """Largest voxel (Å) whose lattice holds the GRF's spectrum (see SPECTRUM_VARIANCE_LOSS)."""
    if spec.spectrum == "paper":
        return math.inf  # Gamma ~ q^-16: a / 5 holds it with room to spare
    from .spectra import get_spectrum

    sp = get_spectrum(spec.spectrum, **spec.shape)
    q = np.geomspace(1e-4, 1e5, 20001)  # units of 1/a
    g = np.asarray(sp.density(q, 1.0), dtype=np.float64)
    dq = np.diff(q)

    def tail_fraction(power: int) -> np.ndarray:
        f = q**power * g
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * dq)])
        return 1.0 - cum / cum[-1]

    ok = tail_fraction(2) <= SPECTRUM_VARIANCE_LOSS
    if math.isfinite(sp.spectral_moment):
        ok &= tail_fraction(4) <= SPECTRUM_LAMBDA_LOSS
    q_need = float(q[np.argmax(ok)]) if ok.any() else float(q[-1])
    return math.pi / q_need * spec.a


#: The box's k = 0 cell carries Gamma(0) / L^3 of the field's variance, which a box's own quantile thresholds
#: remove (they follow the box's mean): the box must keep it below BOX_VARIANCE_LOSS (1 % biases I(q) by about
#: 1-2 %; measured: +6 % at 6 %, +10-20 % at 15 %).
BOX_VARIANCE_LOSS = 0.01


def _structure_lengths(spec: FitSpec) -> tuple[float, str, float, str]:
    """(largest voxel, why; smallest box, why) in Å from the structure's length scales and its spectrum."""
    a = spec.a
    name = spec.length_name
    if spec.spectrum == "peaked":
        xi = a * spec.shape.get("xi_over_d", 0.5)
        res, res_why = a / PEAKED_VOXELS_PER_D, f"d / {PEAKED_VOXELS_PER_D:g} = {a / PEAKED_VOXELS_PER_D:.4g} Å " \
                                                 "(resolve the domains)"
        box, box_why = (max(PEAKED_BOX_PER_D * a, PEAKED_BOX_PER_XI * xi),
                        f"a box of max({PEAKED_BOX_PER_D:g} d, {PEAKED_BOX_PER_XI:g} xi)")
    elif spec.spectrum == "broad":
        res, res_why = a / RES_VOXELS_PER_A, f"a / {RES_VOXELS_PER_A:g} = {a / RES_VOXELS_PER_A:.4g} Å (resolve a)"
        box, box_why = 10.0 * a, "a box of 10 a"
    else:
        res, res_why = a / RES_VOXELS_PER_A, f"a / {RES_VOXELS_PER_A:g} = {a / RES_VOXELS_PER_A:.4g} Å (resolve a)"
        box, box_why = BOX_PER_A * a, f"a box of {BOX_PER_A:g} a"
    if spec.spectrum != "paper":
        from .spectra import get_spectrum

        sp = get_spectrum(spec.spectrum, **spec.shape)
        dx_spec = _spectral_voxel(spec)
        if dx_spec < res:
            res, res_why = dx_spec, (f"{name} / {a / dx_spec:.3g} = {dx_spec:.4g} Å (the lattice holds the "
                                     f"{spec.spectrum} spectrum: variance and lambda lost beyond pi/dx below "
                                     f"{100 * SPECTRUM_VARIANCE_LOSS:g} % and {100 * SPECTRUM_LAMBDA_LOSS:g} %)")
        variance = sp.second_moment / (2 * math.pi**2)
        l_var = a * (float(sp.density(0.0, 1.0)) / (BOX_VARIANCE_LOSS * variance)) ** (1 / 3)
        if l_var > box:
            box, box_why = l_var, (f"a box of {l_var / a:.3g} {name} (the k = 0 cell holds < "
                                   f"{100 * BOX_VARIANCE_LOSS:g} % of the variance)")
    return res, res_why, box, f"{box_why} = {box:.4g} Å"


def memory_estimate(grid: int) -> int:
    """Bytes one realization needs at its peak (simulator in float32, labels, curve and morphology)."""
    from .simulator import estimate_memory

    return estimate_memory(int(grid), "float32") + _EXTRA_BYTES_PER_VOXEL * int(grid) ** 3


# -- the run ------------------------------------------------------------------------------------------------
@dataclass
class Reconstruction:
    """What :func:`reconstruct` made: parameters, grid, curves, morphology, files and timings."""

    spec: FitSpec
    grid: GridChoice
    seed_entropy: int
    backend: str
    realizations: int
    curve: dict[str, Any]
    agreement: dict[str, Any]
    morphology: dict[str, Any]
    model_areas: dict[str, float]
    files: dict[str, Any]
    timings: dict[str, float]
    cpu_time: float
    cpu_timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["grid"] = {"grid": self.grid.grid, "voxel_A": self.grid.voxel, "box_A": self.grid.box,
                     "q_window_per_A": list(self.grid.q_window), "reasons": self.grid.reasons}
        d["units"] = {"lengths": "Å", "q": "1/Å", "intensity": "cm^-1", "areas": "1/Å (per volume)"}
        return d

    def summary(self) -> str:
        """Plain-text report of the numbers."""
        g = self.grid
        ln = self.spec.length_name
        shape = "".join(f", {k} {v:.4g}" for k, v in self.spec.shape.items())
        lines = [f"{self.spec.name}: {self.spec.model}, {ln} {self.spec.a:.4g} Å{shape}, porosity "
                 f"{self.spec.porosity:.4g}"
                 + (f", layer fraction {self.spec.layer_fraction:.4g}" if self.spec.three_phase else "")
                 + f", smoothing {self.spec.smoothing:.4g} Å",
                 f"  grid {g.grid}^3, voxel {g.voxel:.4g} Å, box {g.box:.4g} Å ({g.box / self.spec.a:.3g} {ln}); "
                 f"{self.realizations} realizations on {self.backend}",
                 f"  q window {g.q_window[0]:.4g}-{g.q_window[1]:.4g} 1/Å (2 pi/L to {Q_HIGH_FRACTION:g} pi/dx)"]
        ag = self.agreement
        if ag.get("n_bins"):
            lines.append(f"  mean I(q) vs model in the window: {ag['n_bins']} bins, "
                         f"chi^2/bin {ag['chi2_per_bin']:.3g}, "
                         f"RMS deviation {100 * ag['rms_relative_precise']:.2g} % over the {ag['n_precise']} bins "
                         f"with s.e. < 5 % ({100 * ag['rms_relative']:.2g} % over all), "
                         f"{100 * ag['within_2se']:.0f} % of bins within 2 standard errors")
        m = self.morphology
        if m:
            lines.append("  phase        volume fraction      S_V [1/Å] voxels     S_V model     mean chord [Å]"
                         "   percolating")
            for ph, st in m["phases"].items():
                model = self.model_areas.get(ph)
                lines.append(f"  {ph:<11}{_pm(st['volume_fraction'])}   {_pm(st['surface_area'], '.4g')}   "
                             f"{model if model is not None else float('nan'):>10.4g}   "
                             f"{_pm(st['mean_chord'], '.4g')}   {_pm(st['percolating_fraction'], '.3f')}")
        lines.append("  wall time " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        lines.append("  CPU time (all threads) " + ", ".join(f"{k} {v:.2f} s" for k, v in self.cpu_timings.items())
                     + f", total {self.cpu_time:.2f} s")
        return "\n".join(lines)


def _pm(stat: dict[str, float], fmt: str = ".4f") -> str:
    return f"{format(stat['mean'], fmt):>9} ± {format(stat['std'], '.2g'):<7}"


def _to_simulator(spec: FitSpec, g: GridChoice) -> tuple[Any, float]:
    """SimulationConfig (nm) and a in nm: the one place where lengths go from Å to nm."""
    from .simulator import SimulationConfig

    dx_nm = g.voxel / ANGSTROM_PER_NM
    cfg = SimulationConfig(grid_size=g.grid, voxel_size=dx_nm, q_min=0.0, q_max=math.pi / dx_nm, n_q=2,
                           smoothing_sigma=spec.smoothing / g.voxel, densities=spec.densities, dtype="float32")
    return cfg, spec.a / ANGSTROM_PER_NM


def _from_simulator(q_nm: Any, i_nm3: Any, spec: FitSpec) -> tuple[np.ndarray, np.ndarray]:
    """q in 1/Å and I in cm^-1 (scale and background of the fit) from the simulator's 1/nm and rho^2 nm^3."""
    return q_nm / ANGSTROM_PER_NM, spec.scale * CM_PER_SLD2_NM3 * i_nm3 + spec.background


def _q_bins(n: int, dx_nm: float, n_bins: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """Shell index -> log-spaced bin (-1: unused) up to the axis Nyquist, and each bin's shells' count."""
    from .simulator.grid import shell_counts

    counts = shell_counts(n)
    s = np.arange(counts.size)
    dq = 2 * math.pi / (n * dx_nm)
    q_s = dq * np.sqrt(s)
    edges = np.geomspace(dq * (1 - 1e-9), math.pi / dx_nm, n_bins + 1)
    b = np.digitize(q_s, edges) - 1
    b[(s == 0) | (counts == 0) | (b >= n_bins)] = -1
    used = np.unique(b[b >= 0])
    remap = -np.ones(n_bins, dtype=np.int64)
    remap[used] = np.arange(used.size)  # drop empty bins
    return np.where(b >= 0, remap[np.maximum(b, 0)], -1), counts


def _bin(values: np.ndarray, bins: np.ndarray, n_used: int) -> np.ndarray:
    sel = bins >= 0
    return np.bincount(bins[sel], weights=values[sel], minlength=n_used)


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else float("nan")}


def reconstruct(fit: Any, out: str | os.PathLike | None = None, grid: int = 256, realizations: int = 4,
                voxel: float | None = None, box: float | None = None, backend: str = "auto", seed: Any = None,
                data: Any = None, q_unit: str | None = None, images: bool = True, morph: bool = True,
                volumes: bool = True, progress: bool = True, max_memory: float | None = None,
                log: Any = None, pore_sizes: bool = False) -> Reconstruction:
    """Realizations of a fitted GRF structure, their I(q), morphology and pictures.

    Parameters
    ----------
    fit
        A :class:`FitSpec`, a ``FitResult``, its dict, or the path of a ``sasview-grf fit --json`` file.
    out
        Folder for the files (created); ``None`` writes nothing.
    grid
        Voxels per side N.
    realizations
        Number K of independent realizations (>= 1).
    voxel, box
        Voxel edge or box edge in Å instead of the automatic choice (:func:`choose_grid`).
    backend
        ``"auto"`` (the fastest available), ``"numpy"``, ``"cupy"`` or ``"opencl"``.
    seed
        ``None``, an int or a :class:`numpy.random.SeedSequence`; realization k uses the k-th child of
        ``SeedSequence(seed)``, so the same seed gives the same volumes on the same backend.
    data
        The measured curve (a path, or anything ``fitting.fit_curve`` takes) to plot beside the model.
    images, morph, volumes
        Write the PNGs; compute the morphology; write the volumes (.npy and .tif).
    max_memory
        Bytes the run may use; default: what the backend has free now. A grid that needs more is refused.
    log
        Callable taking one line of text (default: nothing).
    pore_sizes
        Also the continuous pore-size distribution (:func:`morphology.pore_size_distribution`) of the pore
        space of realization 0 (one distance transform per radius: several seconds per radius at 256^3).
    """
    from .simulator import get_backend
    from .simulator.backends import InsufficientMemoryError
    from .simulator.scattering import shell_intensity
    from .simulator.seeds import as_seed_sequence, child_seed

    _require_extra(images, volumes)
    say = log or (lambda _line: None)
    t_start, cpu_start = time.perf_counter(), time.process_time()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}

    class _Step:
        """Adds a step's wall and CPU (all threads) time to ``timings`` and ``cpu``."""

        def __init__(self, key: str) -> None:
            self.key = key

        def __enter__(self) -> None:
            self.t, self.c = time.perf_counter(), time.process_time()

        def __exit__(self, *_exc: object) -> None:
            timings[self.key] = timings.get(self.key, 0.0) + time.perf_counter() - self.t
            cpu[self.key] = cpu.get(self.key, 0.0) + time.process_time() - self.c

    spec = fit if isinstance(fit, FitSpec) else load_fit(fit)
    k = int(realizations)
    if k < 1:
        raise ValueError(f"realizations must be >= 1, got {realizations}")
    areas = model_interface_areas(spec)
    layer_t = (spec.porosity * spec.layer_fraction / areas["solid"]
               if spec.three_phase and math.isfinite(areas["solid"]) else None)
    g = choose_grid(spec, grid, voxel, box, layer_thickness=layer_t)
    for r in g.reasons:
        say(r)
    be = get_backend(backend)
    need = memory_estimate(g.grid)
    free = be.available_memory() if max_memory is None else float(max_memory)
    if need > free:
        raise InsufficientMemoryError(
            f"grid {g.grid}^3 needs about {need / 2**30:.2f} GiB per realization (simulation, labels, curve and "
            f"morphology) but {free / 2**30:.2f} GiB is {'free' if max_memory is None else 'allowed'} on "
            f"backend '{be.name}'; use a smaller --grid (memory grows as N^3) or allow more with --max-memory GIB")
    cfg, a_nm = _to_simulator(spec, g)
    say(f"box {g.box:.4g} Å = {g.box / spec.a:.3g} {spec.length_name}; smoothing {spec.smoothing:.4g} Å = "
        f"{cfg.smoothing_sigma:.3g} voxels; q window {g.q_window[0]:.4g}-{g.q_window[1]:.4g} 1/Å; backend {be.name}; "
        f"about {need / 2**30:.2f} GiB")
    root = as_seed_sequence(seed)
    if seed is None:
        say(f"seed: fresh entropy {root.entropy} (pass it as --seed / seed= to make the same structures again)")
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    bins, counts = _q_bins(g.grid, cfg.voxel_size)
    n_used = int(bins.max()) + 1
    bin_counts = _bin(counts, bins, n_used)
    dq_nm = 2 * math.pi / (g.grid * cfg.voxel_size)
    q_shell_nm = dq_nm * np.sqrt(np.arange(counts.size))
    per_real: list[np.ndarray] = []
    masks_stats: dict[str, dict[str, list[float]]] = {}
    chords: dict[str, list[np.ndarray]] = {}
    first = None
    psd: dict[str, Any] = {}
    files: dict[str, Any] = {"npy": [], "tif": []}
    dens = np.asarray(spec.densities, dtype=np.float32)
    for key in ("generate", "curve", "morphology", "write", "images"):
        timings[key], cpu[key] = 0.0, 0.0
    from tqdm.auto import tqdm

    for r in tqdm(range(k), desc="realizations", unit="box", disable=not progress):
        with _Step("generate"):
            labels = _generate(spec, cfg, a_nm, child_seed(root, r), be)
            be.synchronize()
        with _Step("curve"):
            rho = be.asarray(dens)[labels] if be.name != "opencl" else be.asarray(dens[be.to_numpy(labels)])
            sums, _ = shell_intensity(be, rho, cfg.voxel_size)
            del rho
            per_real.append(_bin(sums, bins, n_used) / bin_counts)
            labels = be.to_numpy(labels)
        if morph:
            with _Step("morphology"):
                for name, m in morphology.phase_masks(labels).items():
                    st = masks_stats.setdefault(name, {})
                    st.setdefault("volume_fraction", []).append(float(m.mean()))
                    st.setdefault("surface_area", []).append(morphology.surface_area_density(m, g.voxel))
                    c = morphology.chord_lengths(m, g.voxel)
                    chords.setdefault(name, []).append(c)
                    st.setdefault("mean_chord", []).append(float(c.mean()) if c.size else float("nan"))
                    for kk, vv in morphology.percolation(m).items():
                        st.setdefault(kk, []).append(float(vv))
        if out_dir is not None and volumes:
            with _Step("write"):
                p = out_dir / f"labels_{r:03d}.npy"
                np.save(p, labels)
                files["npy"].append(p.name)
                p = out_dir / f"labels_{r:03d}.tif"
                write_tiff(p, labels, g.voxel)
                files["tif"].append(p.name)
        if first is None:
            first = labels
            if morph and pore_sizes:
                with _Step("pore sizes"):
                    psd = _pore_sizes(labels, g.voxel, spec.three_phase)
        del labels
    # The curve: per-shell intensities binned in log q (no Eq. 4 window: that window is a resolution of the box,
    # pi/L wide, which would smear the low q). Standard error: the realizations' spread, floored by the
    # independent-mode estimate I / sqrt(K n_modes / 2) (n / 2 independent modes in a Hermitian shell).
    with _Step("curve"):
        stack = np.array(per_real)
        mean_nm3 = stack.mean(axis=0)
        q_bin_nm = _bin(counts * q_shell_nm, bins, n_used) / bin_counts
        q_model_sel = bins >= 0
        model_shell = np.zeros(counts.size)
        q_shell_a, _ = _from_simulator(q_shell_nm[q_model_sel], 0.0, spec)
        model_shell[q_model_sel] = model_intensity(spec, q_shell_a, background=0.0)
        model_bin = _bin(counts * model_shell, bins, n_used) / bin_counts  # the model at the box's own wave vectors
        q_a, mean_cm = _from_simulator(q_bin_nm, mean_nm3, spec)
        spread = stack.std(axis=0, ddof=1) / math.sqrt(k) if k > 1 else np.zeros_like(mean_nm3)
        se_cm = _from_simulator(q_bin_nm, spread, spec)[1] - spec.background
        signal = mean_cm - spec.background
        se_cm = np.maximum(se_cm, np.abs(model_bin) / np.sqrt(k * bin_counts / 2.0))
        lo, hi = g.q_window
        win = (q_a >= lo) & (q_a <= hi)
        z = (signal - model_bin) / se_cm
        agreement: dict[str, Any] = {"q_window": [lo, hi], "n_bins": int(win.sum())}
        if win.any():
            rel = signal[win] / model_bin[win] - 1.0
            rel_se = se_cm[win] / np.abs(model_bin[win])
            precise = rel_se < 0.05  # bins whose own noise is below 5 %
            w = 1.0 / rel_se**2  # the window's mean relative deviation, weighted by the bins' precision
            agreement.update(bias=float(np.sum(w * rel) / np.sum(w)), bias_se=float(1.0 / math.sqrt(np.sum(w))))
            agreement.update(rms_relative=float(np.sqrt(np.mean(rel**2))), max_abs_z=float(np.max(np.abs(z[win]))),
                             rms_relative_precise=float(np.sqrt(np.mean(rel[precise] ** 2))) if precise.any()
                             else float("nan"), n_precise=int(precise.sum()),
                             chi2_per_bin=float(np.mean(z[win] ** 2)), within_2se=float(np.mean(np.abs(z[win]) <= 2)))
        curve = {"q": q_a.tolist(), "mean": mean_cm.tolist(), "se": se_cm.tolist(),
                 "model": (model_bin + spec.background).tolist(), "n_modes": bin_counts.tolist()}
    morph_out: dict[str, Any] = {}
    if morph:
        phases = {name: {kk: _stats(vv) for kk, vv in st.items()} for name, st in masks_stats.items()}
        for name, st in phases.items():
            if name in areas and math.isfinite(areas[name]):
                st["surface_area_model"] = areas[name]
                st["surface_area_deviation"] = st["surface_area"]["mean"] / areas[name] - 1.0
        morph_out = {"phases": phases,
                     "surface_area_method": "stereological intercept count S_V = 2 P_L (voxel faces x 2/3), "
                                            "periodic box",
                     "connectivity": "face-connected clusters wrapping around the periodic box"}
        if psd:
            morph_out["pore_size"] = psd
    if out_dir is not None and images and first is not None:
        with _Step("images"):
            files.update(write_images(out_dir, first, g, spec, curve, agreement, chords, data=data, q_unit=q_unit,
                                      pore_sizes=psd))
    rec = Reconstruction(spec=spec, grid=g, seed_entropy=int(root.entropy) if isinstance(root.entropy, int) else 0,
                         backend=be.name, realizations=k, curve=curve, agreement=agreement, morphology=morph_out,
                         model_areas=areas, files=files, timings=timings, cpu_time=0.0, cpu_timings=cpu)
    rec.timings["total"] = time.perf_counter() - t_start
    rec.cpu_time = time.process_time() - cpu_start
    if out_dir is not None:
        # Strict JSON: a quantity that could not be computed (NaN, e.g. no precise bins) is written as null.
        (out_dir / "reconstruction.json").write_text(json.dumps(_json_safe(rec.to_dict()), indent=1, allow_nan=False),
                                                     encoding="utf-8")
        rec.files["json"] = "reconstruction.json"
    return rec


def _spectrum_kwargs(spec: FitSpec) -> dict[str, Any]:
    """The simulator's ``spectrum`` argument for a non-paper spectrum (none for the paper's)."""
    if spec.spectrum == "paper":
        return {}
    from .spectra import get_spectrum

    return {"spectrum": get_spectrum(spec.spectrum, **spec.shape)}


def _generate(spec: FitSpec, cfg: Any, a_nm: float, seed: np.random.SeedSequence, be: Any) -> Any:
    """Labels (0 pore, 1 layer, 2 solid) of one realization on the backend."""
    from .simulator.structure import _classify, gaussian_random_field, generate_labels

    kw = _spectrum_kwargs(spec)
    if not spec.band:
        return generate_labels(cfg, a_nm, spec.porosity, spec.layer_fraction, seed=seed, backend=be, **kw)
    # The band models: pore, layer and solid are the field's own quantiles (no smoothing), exact counts as in
    # the simulator's thresholds.
    psi = gaussian_random_field(cfg, a_nm, seed=seed, backend=be, **kw)
    n3 = cfg.grid_size**3
    k_pore = int(round(spec.porosity * (1.0 - spec.layer_fraction) * n3))
    return _classify(be, psi, k_pore, int(round(spec.porosity * n3)), (0, 1, 2), np.uint8)


def _pore_sizes(labels: np.ndarray, voxel: float, three_phase: bool) -> dict[str, Any]:
    """Continuous pore-size distribution (Å) of the pore (label 0)."""
    sets = {"pore": labels == 0}
    out = {}
    for name, m in sets.items():
        if not m.any():
            continue
        r, f = morphology.pore_size_distribution(m, voxel, n_radii=8)
        # Median diameter: 2 r where the covered fraction crosses 1/2 (linear in r between the radii).
        below = np.nonzero(f < 0.5)[0]
        med = float("nan")
        if below.size and below[0] > 0:
            i = below[0]
            med = 2 * float(np.interp(0.5, [f[i], f[i - 1]], [r[i], r[i - 1]]))
        out[name] = {"radius": r.tolist(), "covered": f.tolist(), "median_diameter": med}
    return out


def _require_extra(images: bool, volumes: bool) -> None:
    from importlib.util import find_spec

    missing = [m for m, needed in (("skimage", images), ("tifffile", volumes)) if needed and find_spec(m) is None]
    if missing:
        raise RuntimeError(f"{' and '.join(missing)} not installed: pip install 'sasview-grf-plugin[reconstruct]' "
                           "(or turn the images/volumes off: --no-images, --no-volumes)")


# -- files --------------------------------------------------------------------------------------------------
def write_tiff(path: str | os.PathLike, labels: np.ndarray, voxel: float) -> None:
    """ImageJ TIFF stack of uint8 labels (z slices), voxel size in Å (resolution and spacing)."""
    import tifffile

    tifffile.imwrite(path, np.ascontiguousarray(labels, dtype=np.uint8), imagej=True,
                     resolution=(1.0 / voxel, 1.0 / voxel),
                     metadata={"spacing": voxel, "unit": "angstrom", "axes": "ZYX",
                               "Info": "labels: 0 pore, 1 layer, 2 solid"})


def read_tiff(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Labels and voxel size (Å) of a TIFF written by :func:`write_tiff`."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        labels = tif.asarray()
        meta = tif.imagej_metadata or {}
        spacing = float(meta.get("spacing", float("nan")))
    return labels, spacing


_PHASE_COLORS = ("#f4f1de", "#e07a5f", "#3d405b")  # pore (light), layer (orange), solid (dark)


def write_images(out_dir: Path, labels: np.ndarray, g: GridChoice, spec: FitSpec, curve: dict[str, Any],
                 agreement: dict[str, Any], chords: dict[str, list[np.ndarray]], data: Any = None,
                 q_unit: str | None = None, pore_sizes: dict[str, Any] | None = None) -> dict[str, str]:
    """slices.png, render.png, intensity.png, chords.png (and pore_sizes.png) in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    files = {}
    cmap = ListedColormap(_PHASE_COLORS)
    n = labels.shape[0]
    ext = [0, g.box, 0, g.box]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    for ax, (title, sl) in zip(axes, (("z = L/2 (x-y)", labels[n // 2]), ("y = L/2 (x-z)", labels[:, n // 2]),
                                      ("x = L/2 (y-z)", labels[:, :, n // 2])), strict=True):
        ax.imshow(sl, cmap=cmap, vmin=0, vmax=2, origin="lower", extent=ext, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("Å")
    axes[0].set_ylabel("Å")
    names = ["pore", "layer", "solid"] if spec.three_phase else ["pore", None, "solid"]
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c, nm in zip(_PHASE_COLORS, names, strict=True) if nm]
    fig.legend(handles, [nm for nm in names if nm], loc="lower right", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{spec.name}: orthogonal slices through realization 0 ({n}^3, voxel {g.voxel:.3g} Å)", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out_dir / "slices.png", dpi=90)
    plt.close(fig)
    files["slices"] = "slices.png"
    files["render"] = render_png(out_dir / "render.png", labels, g, spec)
    if (out_dir / "render.html").exists():
        files["render_html"] = "render.html"
    # I(q)
    q = np.asarray(curve["q"])
    mean, se, model = (np.asarray(curve[k]) for k in ("mean", "se", "model"))
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    if data is not None:
        from .loaders import load_curves

        c = load_curves(data, q_unit=q_unit)[0] if isinstance(data, (str, os.PathLike)) else data
        ax.errorbar(c.q, c.intensity, yerr=c.data.dy, fmt=".", ms=2.5, color="0.45", elinewidth=0.4, ecolor="0.85",
                    label="data", zorder=1)
        qm = np.geomspace(max(float(np.min(c.q)), 1e-6), float(np.max(c.q)), 300)
        ax.loglog(qm, model_intensity(spec, qm), "-", color="tab:blue", lw=1.2, label="model (fitted, unsmeared)")
        smeared = _smeared_model(spec, c)
        if smeared is not None:
            ax.loglog(c.q, smeared, "-", color="tab:green", lw=1.0, label="model with the data's resolution (the fit)")
    ax.loglog(q, model, "--", color="tab:blue", lw=1.0, label="model at the box's wave vectors")
    ax.errorbar(q, mean, yerr=se, fmt="o", ms=2.5, color="tab:red", elinewidth=0.8,
                label="mean of the realizations (± 1 s.e.)")
    lo, hi = agreement["q_window"]
    for x, what in ((lo, "2π/L"), (hi, f"{Q_HIGH_FRACTION:g} π/dx")):
        ax.axvline(x, color="k", ls=":", lw=0.8)
        ax.text(x, 0.02, " " + what, transform=ax.get_xaxis_transform(), fontsize=8)
    ax.set_ylabel("I(q) [cm$^{-1}$]")
    ax.set_title(f"{spec.name}: realizations against the model", fontsize=10)
    ax.legend(fontsize=7.5)
    sig = mean - spec.background
    core = model - spec.background
    with np.errstate(divide="ignore", invalid="ignore"):
        axr.semilogx(q, (sig - core) / se, ".", color="tab:red", ms=3)
    axr.axhspan(-2, 2, color="0.9")
    axr.axhline(0, color="k", lw=0.7)
    axr.axvline(lo, color="k", ls=":", lw=0.8)
    axr.axvline(hi, color="k", ls=":", lw=0.8)
    axr.set_ylim(-6, 6)
    axr.set_ylabel("(mean - model)/s.e.")
    axr.set_xlabel("q [1/Å]")
    fig.tight_layout()
    fig.savefig(out_dir / "intensity.png", dpi=90)
    plt.close(fig)
    files["intensity"] = "intensity.png"
    # chord lengths
    if chords:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, arrs in chords.items():
            allc = np.concatenate(arrs)
            if allc.size == 0:
                continue
            # Log bins from one voxel (chords are whole voxels: 0.5 voxel margins keep each in one bin).
            bins = np.unique(np.round(np.geomspace(1, allc.max() / g.voxel + 1, 36))) * g.voxel - 0.5 * g.voxel
            h, e = np.histogram(allc, bins=bins)
            ax.semilogx(np.sqrt(e[1:] * e[:-1]), h / h.sum() / np.diff(np.log(e)), ".-", ms=3,
                        label=f"{name} (mean {allc.mean():.3g} Å)")
        ax.set_xlabel("chord length L [Å]")
        ax.set_ylabel("fraction of chords per ln L")
        ax.set_title("chord-length distributions (3 axes, all realizations)", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "chords.png", dpi=90)
        plt.close(fig)
        files["chords"] = "chords.png"
    if pore_sizes:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, d in pore_sizes.items():
            ax.semilogx(2 * np.asarray(d["radius"]), d["covered"], "o-", ms=3,
                        label=f"{name} (median diameter {d['median_diameter']:.3g} Å)")
        ax.set_xlabel("diameter 2r [Å]")
        ax.set_ylabel("volume fraction covered by spheres >= 2r")
        ax.set_title("continuous pore-size distribution (realization 0)", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "pore_sizes.png", dpi=90)
        plt.close(fig)
        files["pore_sizes"] = "pore_sizes.png"
    return files


def _smeared_model(spec: FitSpec, curve: Any) -> np.ndarray | None:
    """The fitted model with the data's resolution (pinhole or slit, as the fit used it), or None if the data
    carry none."""
    data = curve.data
    if getattr(data, "dx", None) is None and getattr(data, "dxl", None) is None:
        return None
    from sasmodels.direct_model import DirectModel

    model = _load_model(spec.model)
    return np.asarray(DirectModel(data, model)(**_model_pars(spec, model, {})), dtype=np.float64)


def _render_mesh(labels: np.ndarray, g: GridChoice, spec: FitSpec, max_side: int) -> dict[str, Any]:
    """Marching-cubes mesh (Å) of the minority of solid and pore space on a corner sub-cube, for the views.

    For the picture only, the indicator is smoothed by a Gaussian of one voxel before the isosurface (no
    staircase moire) and the mesh is taken at every second voxel (step 2), which keeps drawing to seconds.
    """
    from scipy.ndimage import gaussian_filter
    from skimage.measure import marching_cubes

    m = min(labels.shape[0], max_side)
    sub = labels[:m, :m, :m]
    show_solid = float(np.mean(sub == 2)) <= 0.5
    what = "solid" if show_solid else ("pore space (pore + layer)" if spec.three_phase else "pore space")
    color = _PHASE_COLORS[2] if show_solid else (_PHASE_COLORS[1] if spec.three_phase else "#81b29a")
    ind = ((sub == 2) if show_solid else (sub != 2)).astype(np.float32)
    ind = np.pad(gaussian_filter(ind, 1.0, mode="wrap"), 1)  # closed surfaces at the cut faces
    verts = faces = None
    if ind.min() < 0.5 < ind.max():
        verts, faces, _, _ = marching_cubes(ind, 0.5, spacing=(g.voxel,) * 3, step_size=2)
    return {"m": m, "what": what, "color": color, "verts": verts, "faces": faces, "side": (m + 2) * g.voxel}


def render_png(path: Path, labels: np.ndarray, g: GridChoice, spec: FitSpec, max_side: int = 96) -> str:
    """3-D view of a corner sub-cube (at most ``max_side`` voxels a side): the marching-cubes isosurface
    (scikit-image) of the minority of solid and pore space (pore + layer), drawn with Matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    mesh_d = _render_mesh(labels, g, spec, max_side)
    fig = plt.figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot(projection="3d")
    if mesh_d["verts"] is not None:
        tri = mesh_d["verts"][mesh_d["faces"]]
        mesh = Poly3DCollection(tri, linewidths=0, antialiased=False)
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-30
        light = np.array([0.45, 0.35, 0.82])
        shade = 0.3 + 0.7 * np.abs(n @ light)
        base = np.array(matplotlib.colors.to_rgb(mesh_d["color"]))
        mesh.set_facecolor(np.clip(base[None, :] * shade[:, None] + 0.08, 0, 1))
        ax.add_collection3d(mesh)
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(0, mesh_d["side"])
    ax.set_box_aspect((1, 1, 1))
    for setter in (ax.set_xlabel, ax.set_ylabel, ax.set_zlabel):
        setter("Å", fontsize=8)
    ax.tick_params(labelsize=7)
    m = mesh_d["m"]
    ax.set_title(f"{mesh_d['what']}: {m}^3 voxels ({m * g.voxel:.3g} Å) of realization 0", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    if mesh_d["verts"] is not None:
        _render_html(Path(path).with_suffix(".html"), mesh_d, g)
    return Path(path).name


def _render_html(path: Path, mesh_d: dict[str, Any], g: GridChoice) -> None:
    """The same mesh as an interactive Plotly page (Plotly comes with bumps; skipped if it is missing)."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        return
    v, f = mesh_d["verts"], mesh_d["faces"]
    fig = go.Figure(go.Mesh3d(x=v[:, 2], y=v[:, 1], z=v[:, 0], i=f[:, 0], j=f[:, 1], k=f[:, 2],
                              color=mesh_d["color"], flatshading=False,
                              lighting={"ambient": 0.4, "diffuse": 0.8, "specular": 0.2}))
    axis = {"title": "Å", "range": [0, mesh_d["side"]]}
    fig.update_layout(title=f"{mesh_d['what']}: {mesh_d['m']}^3 voxels of {g.voxel:.3g} Å (realization 0)",
                      scene={"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "cube"})
    fig.write_html(path, include_plotlyjs=True)  # self-contained: opens offline
