"""Reading measured curves: sasdata first, with explicit q units where the format carries none.

SasView's convention is q in 1/Å. sasdata's XML (canSAS) and HDF5 (NXcanSAS) readers convert
to it; its ASCII readers assume 1/Å without reading any unit, so for those formats the
caller must say which unit the file uses (``q_unit``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Curve", "load_curves", "UNITLESS_EXTENSIONS", "Q_UNIT_FACTORS"]

# Formats read by sasdata's generic ASCII readers (no unit information is read from them).
UNITLESS_EXTENSIONS = {".csv", ".txt", ".dat", ".pdh", ".abs", ".asc"}
# unit name -> factor to 1/Å
Q_UNIT_FACTORS = {"1/A": 1.0, "1/Å": 1.0, "A^-1": 1.0, "Å^-1": 1.0, "1/nm": 0.1, "nm^-1": 0.1}


@dataclass
class Curve:
    """One 1-D curve with q in 1/Å (SasView's unit)."""

    q: np.ndarray
    intensity: np.ndarray
    error: np.ndarray | None
    dq: np.ndarray | None
    name: str
    source: str
    masked: int = 0

    def q_per_nm(self) -> np.ndarray:
        return self.q * 10.0


def _unit_factor(q_unit: str) -> float:
    try:
        return Q_UNIT_FACTORS[q_unit]
    except KeyError:
        raise ValueError(f"unknown q unit {q_unit!r}; allowed: {', '.join(Q_UNIT_FACTORS)}") from None


def load_curves(path: str | os.PathLike, q_unit: str | None = None) -> list[Curve]:
    """All 1-D curves in a file sasdata reads, with q in 1/Å.

    Parameters
    ----------
    path
        Data file (canSAS XML, NXcanSAS HDF5, ASCII, ...).
    q_unit
        Unit of q in the file, ``"1/A"`` or ``"1/nm"``: required for ASCII formats, which
        carry no unit; for XML/HDF5 it overrides what sasdata reports only if given.

    Points with non-finite values or I <= 0 are removed, with a warning that says how many.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such data file: {path}")
    ext = path.suffix.lower()
    if ext in UNITLESS_EXTENSIONS and q_unit is None:
        raise ValueError(f"{path.name}: {ext} files carry no q unit that can be trusted; "
                         "say which one the file uses with q_unit='1/A' or '1/nm' (CLI: --q-unit)")
    factor = _unit_factor(q_unit) if q_unit is not None else 1.0
    try:
        from sasdata.dataloader.loader import Loader

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = Loader().load(str(path))
    except ImportError:
        raise ValueError("reading data files needs sasdata: pip install 'sasview-grf-plugin[sasview]'") from None
    except Exception as exc:  # sasdata raises many types for unreadable files
        raise ValueError(f"{path.name}: sasdata cannot read this file ({type(exc).__name__}: {exc})") from None
    curves = []
    for k, d in enumerate(data):
        if type(d).__name__ != "Data1D" or getattr(d, "x", None) is None:
            raise ValueError(f"{path.name}: entry {k} is not 1-D data ({type(d).__name__}); only 1-D curves are "
                             "supported")
        q = np.asarray(d.x, dtype=np.float64) * factor
        i = np.asarray(d.y, dtype=np.float64)
        err = None if d.dy is None else np.asarray(d.dy, dtype=np.float64)
        dq = None if d.dx is None else np.asarray(d.dx, dtype=np.float64) * factor
        ok = np.isfinite(q) & np.isfinite(i) & (i > 0) & (q > 0)
        if err is not None:
            ok &= np.isfinite(err)
        masked = int(np.sum(~ok))
        if masked:
            warnings.warn(f"{path.name}: masked {masked} of {q.size} points (non-finite, q <= 0 or I <= 0)",
                          stacklevel=2)
        order = np.argsort(q[ok], kind="stable")

        def sel(a: np.ndarray | None, ok: np.ndarray = ok, order: np.ndarray = order) -> np.ndarray | None:
            return None if a is None else a[ok][order]

        curves.append(Curve(q=q[ok][order], intensity=i[ok][order], error=sel(err), dq=sel(dq),
                            name=f"{path.stem}" + (f"[{k}]" if len(data) > 1 else ""), source=str(path),
                            masked=masked))
    if not curves:
        raise ValueError(f"{path.name}: no curves found")
    return curves
