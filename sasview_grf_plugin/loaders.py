"""Reading measured curves: one entry point for the CLI, the predictor and the fitter.

sasdata reads most formats and gives q in 1/Å (SasView's unit). Its pitfalls are handled here:

- ASCII formats carry no unit that sasdata reads (it assumes 1/Å): the caller says which unit
  the file uses (``q_unit``), and a q range typical of the other unit raises a loud warning.
- Anton Paar ``.pdh`` files: sasdata's PDH reader fails and silently falls back to plain ASCII
  (q left in 1/nm but labelled 1/Å, slit length lost). Our own reader takes q in 1/nm as the
  format defines, converts to 1/Å and puts the header's slit length into ``dxl`` (``dx=None``, so
  sasmodels applies slit smearing).
- Loaders set ``dx`` to zeros where there is no pinhole resolution, which hides slit smearing
  from sasmodels: zeros become ``None``. ``qmin``/``qmax`` (needed by sasmodels' bumps
  ``Experiment``) are set to the data's range.
- Points with non-finite values, q <= 0, I <= 0 or dy <= 0 (an infinite weight) are removed,
  with a warning that says how many.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Curve", "load_curves", "read_pdh", "UnitWarning", "MaskWarning", "UNITLESS_EXTENSIONS",
           "Q_UNIT_FACTORS", "prepare_data1d", "unit_factor"]

# Formats read by sasdata's generic ASCII readers (no unit information is read from them).
UNITLESS_EXTENSIONS = {".csv", ".txt", ".dat", ".abs", ".asc"}
# unit name -> factor to 1/Å
Q_UNIT_FACTORS = {"1/A": 1.0, "1/Å": 1.0, "A^-1": 1.0, "Å^-1": 1.0, "1/nm": 0.1, "nm^-1": 0.1}


class UnitWarning(UserWarning):
    """The q range of a file looks like it is in another unit than the one used."""


class MaskWarning(UserWarning):
    """Unusable points were removed from a curve."""


@dataclass
class Curve:
    """One 1-D curve, q in 1/Å, with the sasdata ``Data1D`` ready for sasmodels."""

    data: Any  # sasdata.dataloader.data_info.Data1D
    name: str
    source: str
    q_unit_source: str
    masked: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def q(self) -> np.ndarray:
        return np.asarray(self.data.x)

    @property
    def intensity(self) -> np.ndarray:
        return np.asarray(self.data.y)

    @property
    def error(self) -> np.ndarray | None:
        return None if self.data.dy is None else np.asarray(self.data.dy)

    @property
    def slit_length(self) -> float | None:
        dxl = getattr(self.data, "dxl", None)
        return None if dxl is None else float(np.asarray(dxl)[0])


def unit_factor(q_unit: str) -> float:
    """Factor from ``q_unit`` (``"1/A"``, ``"1/nm"``, ...) to 1/Å."""
    try:
        return Q_UNIT_FACTORS[q_unit]
    except KeyError:
        raise ValueError(f"unknown q unit {q_unit!r}; allowed: {', '.join(Q_UNIT_FACTORS)}") from None


def _check_unit_plausibility(name: str, q_per_a: np.ndarray) -> list[str]:
    notes = []
    if q_per_a.size and q_per_a.max() > 2.0:
        notes.append(f"{name}: q reaches {q_per_a.max():.3g} 1/Å, more than SAXS data usually do; "
                     "if the file is in 1/nm, load it with q_unit='1/nm' (CLI: --q-unit 1/nm)")
    elif q_per_a.size and q_per_a.max() < 0.02:
        notes.append(f"{name}: q stops at {q_per_a.max():.3g} 1/Å; if the file is in 1/nm this is right, "
                     "but if it is in 1/Å the data hold almost no SAXS range: check q_unit")
    for n in notes:
        warnings.warn(n, UnitWarning, stacklevel=3)
    return notes


def read_pdh(path: str | os.PathLike) -> Any:
    """Read an Anton Paar / PCG ``.pdh`` file into a sasdata ``Data1D`` (q in 1/Å, slit length in ``dxl``).

    Layout: title, keywords, a line of 8 integers (the first is the number of points), two lines of
    5 reals (line 5's second is the slit length in 1/nm), then q [1/nm], I, dI per line; an XML
    footer may follow.
    """
    from sasdata.dataloader.data_info import Data1D

    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    try:
        n = int(lines[2].split()[0])
        header4 = [float(v) for v in lines[3].split()[:5]]
        header5 = [float(v) for v in lines[4].split()[:5]]
        rows = np.array([[float(v) for v in line.split()[:3]] for line in lines[5:5 + n]])
    except (IndexError, ValueError) as exc:
        raise ValueError(f"{path.name}: not a readable PDH file ({exc})") from None
    if rows.shape != (n, 3):
        raise ValueError(f"{path.name}: header announces {n} points, found {rows.shape[0]} rows of 3 numbers")
    q_nm, i, di = rows.T
    slit_nm = header5[1]
    data = Data1D(x=q_nm / 10.0, y=i, dy=di)
    data.dx = None
    data.dxl = np.full(n, slit_nm / 10.0) if slit_nm > 0 else None
    data.dxw = None
    data.filename = path.name
    data.title = lines[0].strip() or path.stem
    data.xaxis("\\rm{Q}", "A^{-1}")
    data.yaxis("\\rm{Intensity}", "a.u.")
    data.meta_data = {"pdh_header": {"n": n, "line4": header4, "line5": header5}, "q_unit_in_file": "1/nm"}
    return data


def prepare_data1d(data: Any, name: str) -> tuple[Any, int]:
    """Remove unusable points, fix ``dx`` zeros, set ``qmin``/``qmax``. Returns (data, number removed)."""
    q = np.atleast_1d(np.asarray(data.x, dtype=np.float64))
    i = np.atleast_1d(np.asarray(data.y, dtype=np.float64))
    if q.ndim != 1 or q.shape != i.shape:
        raise ValueError(f"{name}: q and I must be 1-D arrays of one length, got shapes {q.shape} and {i.shape}")
    data.x, data.y = q, i
    ok = np.isfinite(q) & np.isfinite(i) & (q > 0) & (i > 0)
    if data.dy is not None:
        dy = np.asarray(data.dy, dtype=np.float64)
        if np.all(dy == 0):
            data.dy = None  # no uncertainties at all: unweighted, not infinitely weighted
        else:
            ok &= np.isfinite(dy) & (dy > 0)
    masked = int(np.sum(~ok))
    order = np.argsort(q[ok], kind="stable")
    for attr in ("x", "y", "dy", "dx", "dxl", "dxw", "lam", "dlam"):
        v = getattr(data, attr, None)
        if v is not None and np.ndim(v) == 1 and len(v) == q.size:
            setattr(data, attr, np.asarray(v, dtype=np.float64)[ok][order])
    if getattr(data, "dx", None) is not None and not np.any(np.asarray(data.dx) > 0):
        data.dx = None  # zeros mean "no pinhole resolution"; leave the slit (dxl/dxw) visible
    if masked:
        warnings.warn(f"{name}: removed {masked} of {q.size} points (non-finite, q <= 0, I <= 0 or dy <= 0)",
                      MaskWarning, stacklevel=3)
    if np.size(data.x) < 2:
        raise ValueError(f"{name}: fewer than 2 usable points")
    data.qmin, data.qmax = float(np.min(data.x)), float(np.max(data.x))
    return data, masked


def load_curves(path: str | os.PathLike, q_unit: str | None = None) -> list[Curve]:
    """All 1-D curves of a data file, q in 1/Å, ready for prediction and for sasmodels.

    Parameters
    ----------
    path
        Data file: anything sasdata reads (canSAS XML, NXcanSAS HDF5, ASCII, ...) and Anton Paar
        ``.pdh`` (read here: q in 1/nm as the format defines, slit length into ``dxl``).
    q_unit
        Unit of q in an ASCII file, ``"1/A"`` or ``"1/nm"`` (required: such files carry none).
        For formats with units (XML, HDF5, PDH) it must be left out or agree with them.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such data file: {path}")
    ext = path.suffix.lower()
    if q_unit is not None:
        unit_factor(q_unit)
    if ext == ".pdh":
        if q_unit is not None and unit_factor(q_unit) != 0.1:
            raise ValueError(f"{path.name}: PDH files store q in 1/nm; q_unit={q_unit!r} contradicts the format")
        raw = [read_pdh(path)]
        unit_source = "1/nm (PDH format)"
    else:
        if ext in UNITLESS_EXTENSIONS and q_unit is None:
            raise ValueError(f"{path.name}: {ext} files carry no q unit that can be trusted; "
                             "say which one the file uses with q_unit='1/A' or '1/nm' (CLI: --q-unit)")
        try:
            from sasdata.dataloader.loader import Loader
        except ImportError:
            raise ValueError("reading data files needs sasdata (a dependency of this package): "
                             "pip install sasdata") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raw = Loader().load(str(path))
        except Exception as exc:  # sasdata raises many types for unreadable files
            raise ValueError(f"{path.name}: sasdata cannot read this file ({type(exc).__name__}: {exc})") from None
        if ext in UNITLESS_EXTENSIONS:
            factor = unit_factor(q_unit)
            for d in raw:
                d.x = np.asarray(d.x, dtype=np.float64) * factor
                for attr in ("dx", "dxl", "dxw"):
                    if getattr(d, attr, None) is not None:
                        setattr(d, attr, np.asarray(getattr(d, attr), dtype=np.float64) * factor)
            unit_source = f"{q_unit} (given)"
        else:
            if q_unit is not None and unit_factor(q_unit) != 1.0:
                raise ValueError(f"{path.name}: this format stores its own q unit (read as 1/Å); "
                                 f"q_unit={q_unit!r} contradicts it")
            unit_source = "1/Å (from the file)"
    curves = []
    for k, d in enumerate(raw):
        if type(d).__name__ != "Data1D" or getattr(d, "x", None) is None:
            raise ValueError(f"{path.name}: entry {k} is not 1-D data ({type(d).__name__}); only 1-D curves are "
                             "supported")
        name = path.stem + (f"[{k}]" if len(raw) > 1 else "")
        d, masked = prepare_data1d(d, name)
        notes = _check_unit_plausibility(name, np.asarray(d.x))
        curves.append(Curve(data=d, name=name, source=str(path), q_unit_source=unit_source, masked=masked,
                            notes=notes))
    if not curves:
        raise ValueError(f"{path.name}: no curves found")
    return curves
