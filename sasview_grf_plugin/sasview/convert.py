"""Write curves as canSAS 1-D XML that SasView reads with the right units and resolution.

Why XML: sasdata's canSAS reader takes each point's ``Q`` with its unit attribute (written 1/Å) and
its slit length ``dQl`` and width ``dQw`` into ``dxl``/``dxw``, and leaves ``dx`` empty; SasView's
fit page then offers "Use dQ Data" and smears with the slit (``sas.sascalc.fit.qsmearing`` needs
``dxl`` and ``dxw`` of the data's length, with ``dx`` empty or zero). Anton Paar ``.pdh`` files read
by sasdata directly lose both the unit (1/nm shown as 1/Å) and the slit length.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_cansas_xml", "cansas_paths"]


def cansas_paths(out: str | os.PathLike, n: int) -> list[Path]:
    """The files written for ``n`` curves: ``out`` itself for one, ``<stem>_<k><suffix>`` for several."""
    out = Path(out)
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(n)]


def write_cansas_xml(out: str | os.PathLike, curves: Sequence[Any]) -> list[Path]:
    """Write ``curves`` (:class:`~sasview_grf_plugin.loaders.Curve`, q in 1/Å) as canSAS XML files.

    A slit length (``dxl``) is written with a zero slit width, the pinhole ``dx`` (if any) as ``Qdev``.
    Returns the paths written (see :func:`cansas_paths`).
    """
    from sasdata.dataloader.readers.cansas_reader import Reader

    from .install import write_atomic

    paths = cansas_paths(out, len(curves))
    for curve, path in zip(curves, paths, strict=True):
        d = copy.deepcopy(curve.data)
        n = len(np.asarray(d.x))
        d.x_unit = d._xunit = "A^{-1}"
        dxl = getattr(d, "dxl", None)
        if dxl is not None and np.any(np.asarray(dxl) > 0):
            # sasdata writes dQl and dQw only together; SasView needs both arrays for slit smearing.
            d.dxl = np.asarray(dxl, dtype=np.float64)
            d.dxw = np.zeros(n) if getattr(d, "dxw", None) is None else np.asarray(d.dxw, dtype=np.float64)
            d.dx = None
        else:
            d.dxl = d.dxw = None
        if not d.title:
            d.title = curve.name
        # Readers that set no run leave [None]: sasdata would write <Run name="None">None</Run>, which SasView
        # shows as the data's name; name the run after the curve instead.
        runs = [r for r in (getattr(d, "run", None) or []) if r not in (None, "None", "")]
        d.run = runs or [curve.name]
        d.run_name = {r: r for r in d.run}
        write_atomic(path, lambda tmp, d=d: Reader().write(tmp, d))
    return paths
