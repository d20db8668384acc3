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
- Plain text columns (``.csv``, ``.txt``, ``.dat``) are read here, as sasdata's ASCII reader reads
  them (the first run of at least 5 rows of 2-4 numbers), but a UTF-8 byte-order mark is skipped
  (sasdata loses the first row to it) and decimal commas (``0,1;5`` or ``0,1<tab>5``) are read as
  such (sasdata misreads or refuses them).
- Every bad file gets one line naming the file, the problem and what is accepted; sasdata's own
  messages (it logs kilobytes of escaped bytes for binary files) are captured, not printed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Curve", "load_curves", "read_pdh", "read_ascii", "UnitWarning", "MaskWarning", "UNITLESS_EXTENSIONS",
           "TEXT_EXTENSIONS", "Q_UNIT_FACTORS", "prepare_data1d", "unit_factor", "MAX_FILE_BYTES"]

# Formats read by sasdata's generic ASCII readers (no unit information is read from them).
UNITLESS_EXTENSIONS = {".csv", ".txt", ".dat", ".abs", ".asc"}
# Plain text columns, read by read_ascii (the others go to sasdata).
TEXT_EXTENSIONS = {".csv", ".txt", ".dat"}
TEXT_ACCEPTED = ("accepted: text with 2-4 columns q, I[, dI[, dq]] separated by commas, semicolons, tabs or "
                 "spaces, at least 5 rows")
HDF5_EXTENSIONS = {".h5", ".hdf5", ".hdf", ".nxs"}
# A data file larger than this is refused before it is read (a 10^6-point curve is ~50 MB of text).
MAX_FILE_BYTES = 2 * 2**30
# Minimum rows of a text block, as in sasdata's ASCII reader.
MIN_TEXT_ROWS = 5
_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?")
# unit name -> factor to 1/Å
Q_UNIT_FACTORS = {"1/A": 1.0, "1/Å": 1.0, "A^-1": 1.0, "Å^-1": 1.0, "1/nm": 0.1, "nm^-1": 0.1}


# A pinhole resolution dq/q above this is not a resolution: instruments give 1-30 %.
MAX_RELATIVE_DQ = 2.0


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


def _splitline(line: str) -> list[str]:
    # sasdata's FileReader.splitline: commas first, then semicolons, then whitespace.
    toks = line.split(",")
    if len(toks) < 2:
        toks = line.split(";")
    if len(toks) < 2:
        toks = line.split()
    return toks


def _is_decimal_comma_row(line: str) -> bool:
    """A row like ``0,1;5`` or ``0,1<tab>1,5``: fields separated by ';' or blanks, ',' as decimal mark."""
    if "," not in line:
        return False
    fields = line.split(";") if ";" in line else line.split()
    if len(fields) < 2:
        return False
    fields = [f.strip() for f in fields]
    return all(_DECIMAL_COMMA.fullmatch(f) or _is_float(f) for f in fields) and \
        any(_DECIMAL_COMMA.fullmatch(f) for f in fields)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _text_of(path: Path) -> str:
    """The file's text (UTF-8 with or without a byte-order mark, else Latin-1); refuses binary files."""
    raw = path.read_bytes()
    if not raw.strip():
        raise ValueError(f"{path.name}: the file is empty; {TEXT_ACCEPTED}")
    head = raw[:65536]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    sample = text[:65536]
    # Control characters other than tab/newline/CR (and NUL) do not occur in text files.
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if b"\x00" in head or control > 0.01 * len(sample):
        raise ValueError(f"{path.name}: binary content, not a text file of numbers; {TEXT_ACCEPTED}")
    return text


def read_ascii(path: str | os.PathLike) -> tuple[Any, list[str]]:
    """Read a text file of columns into a sasdata ``Data1D`` (q as written: the caller scales it).

    The data are the first run of at least 5 rows with the same number (2-7) of numeric fields, as
    sasdata's ASCII reader finds them; columns are q, I, dI, dq (fields beyond the fourth ignored).
    A UTF-8 byte-order mark is skipped and decimal commas are read. Returns the data and notes.

    Raises
    ------
    ValueError
        One line naming the file and the problem: empty, binary, one column, fewer than 5 rows.
    """
    from sasdata.dataloader.data_info import Data1D

    path = Path(path)
    lines = _text_of(path).splitlines()
    notes = []
    comma_rows = sum(_is_decimal_comma_row(line.strip()) for line in lines)
    if comma_rows >= MIN_TEXT_ROWS:
        lines = [line.replace(",", ".") if _is_decimal_comma_row(line.strip()) else line for line in lines]
        notes.append(f"{path.name}: read with decimal commas ({comma_rows} rows)")
    block: list[list[float]] = []
    best: list[list[float]] = []
    ncol = None
    is_data = False
    single = longest_single = 0
    for line in lines:
        toks = _splitline(line.strip())
        if not toks or toks == [""]:
            continue
        n = len(toks)
        if is_data and n != ncol:
            break
        try:
            vals = [float(t) for t in toks[:4]]
        except ValueError:
            vals = None
        if vals is not None and n == 1:
            # A single number per row: remember it for the message, it is no data block.
            single += 1
            longest_single = max(longest_single, single)
            vals = None
        else:
            single = 0
        if vals is None:
            if is_data:
                break
            block, ncol = [], None
            continue
        if n != ncol:
            block, ncol = [], n
        block.append(vals)
        if len(block) > len(best):
            best = block
        if len(block) >= MIN_TEXT_ROWS:
            is_data = True
        if is_data and n >= 8:
            raise ValueError(f"{path.name}: rows of {n} numbers look like 2-D data; only 1-D curves are supported "
                             f"({TEXT_ACCEPTED})")
    if not is_data:
        if not best and longest_single >= 2:
            raise ValueError(f"{path.name}: only one column of numbers; need q and I at least ({TEXT_ACCEPTED})")
        if not best:
            raise ValueError(f"{path.name}: no rows of numbers found; {TEXT_ACCEPTED}")
        raise ValueError(f"{path.name}: only {len(best)} row(s) of numbers found, at least {MIN_TEXT_ROWS} are needed "
                         f"({TEXT_ACCEPTED})")
    width = min(ncol or 2, 4)
    arr = np.array([row[:width] for row in block], dtype=np.float64)
    keep = arr[:, 0] != 0  # sasdata drops q = 0 rows silently (the direct beam position)
    arr = arr[keep]
    data = Data1D(x=arr[:, 0], y=arr[:, 1], dy=arr[:, 2] if width > 2 else None,
                  dx=arr[:, 3] if width > 3 else None)
    if width <= 3:
        data.dx = None
    data.filename = path.name
    data.xaxis("\\rm{Q}", "1/A")
    data.yaxis("\\rm{Intensity}", "1/cm")
    data.meta_data = {"loader": "sasview-grf text columns"}
    return data, notes


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Capture what sasdata prints or logs while it tries its readers (kilobytes for binary files)."""
    sink = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield sink
    finally:
        logging.disable(previous)


def prepare_data1d(data: Any, name: str, label: str | None = None) -> tuple[Any, int]:
    """Remove unusable points, fix ``dx`` zeros, set ``qmin``/``qmax``. Returns (data, number removed).

    ``label`` names the data in messages (default ``name``), e.g. the file name.
    """
    name = label or name
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
    if getattr(data, "dx", None) is not None and np.size(data.x):
        rel = np.asarray(data.dx, dtype=np.float64) / np.asarray(data.x, dtype=np.float64)
        if not np.all(np.isfinite(rel)) or np.max(rel) > MAX_RELATIVE_DQ:
            # Not a q resolution (e.g. a fourth column of another meaning): as a pinhole width it would
            # smear the curve flat and make sasmodels' resolution matrix enormous.
            warnings.warn(f"{name}: its dq column is not a q resolution (dq/q up to {np.nanmax(rel):.3g}, more than "
                          f"{MAX_RELATIVE_DQ:g}); it is ignored (no pinhole smearing)", MaskWarning, stacklevel=3)
            data.dx = None
    usable = int(np.size(data.x))
    if usable < 2:
        raise ValueError(f"{name}: {usable} of its {q.size} points usable (the others have non-finite values, "
                         "q <= 0, I <= 0 or dy <= 0); at least 2 points with finite q > 0, I > 0 and dy > 0 are needed")
    if masked:
        warnings.warn(f"{name}: removed {masked} of {q.size} points (non-finite, q <= 0, I <= 0 or dy <= 0)",
                      MaskWarning, stacklevel=3)
    data.qmin, data.qmax = float(np.min(data.x)), float(np.max(data.x))
    return data, masked


_FORMATS = {".xml": "canSAS 1-D XML", ".h5": "NXcanSAS HDF5", ".hdf5": "NXcanSAS HDF5", ".hdf": "NXcanSAS HDF5",
            ".nxs": "NXcanSAS HDF5"}


def _load_with_sasdata(path: Path, ext: str, size: int) -> list[Any]:
    """sasdata's readers, quietly; one clear line for an empty, foreign or unreadable file."""
    fmt = _FORMATS.get(ext, f"a format sasdata reads ({ext})")
    accepted = f"accepted: {fmt}" if ext in _FORMATS else "accepted: the formats sasdata reads"
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if size == 0 or not head.strip():
        raise ValueError(f"{path.name}: the file is empty; {accepted}")
    if ext in HDF5_EXTENSIONS and b"\x89HDF\r\n\x1a\n" not in head[:1024] and not _hdf5_user_block(path):
        raise ValueError(f"{path.name}: not an HDF5 file (no HDF5 signature); {accepted}")
    if ext == ".xml" and not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise ValueError(f"{path.name}: not an XML file (it does not start with '<'); {accepted}")
    try:
        from sasdata.dataloader.loader import Loader
    except ImportError:
        raise ValueError("reading data files needs sasdata (a dependency of this package): "
                         "pip install sasdata") from None
    try:
        with _quiet():
            raw = Loader().load(str(path))
    except Exception as exc:  # sasdata raises many types for unreadable files
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ValueError(f"{path.name}: sasdata cannot read this file ({text}); {accepted}") from None
    # sasdata falls back to other readers for a file its own reader refuses: empty shells come back (x None,
    # or a 0-d array holding None).
    usable = [d for d in raw if type(d).__name__ == "Data2D" or _numeric_1d(getattr(d, "x", None))]
    if not usable:
        raise ValueError(f"{path.name}: sasdata found no data in it; {accepted}")
    return usable


def _numeric_1d(x: Any) -> bool:
    if x is None:
        return False
    arr = np.asarray(x)
    return arr.ndim == 1 and arr.size > 0 and arr.dtype.kind in "fiu"


def _hdf5_user_block(path: Path) -> bool:
    # HDF5 allows a user block: the signature may sit at 512, 1024, 2048, ... bytes.
    with open(path, "rb") as fh:
        offset = 512
        while offset < min(path.stat().st_size, 2**20):
            fh.seek(offset)
            if fh.read(8) == b"\x89HDF\r\n\x1a\n":
                return True
            offset *= 2
    return False


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
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path.name}: {size / 2**30:.1f} GiB is more than the {MAX_FILE_BYTES / 2**30:.0f} GiB a "
                         "data file may have; reduce or split it")
    notes: list[str] = []
    if ext == ".pdh":
        if q_unit is not None and unit_factor(q_unit) != 0.1:
            raise ValueError(f"{path.name}: PDH files store q in 1/nm; q_unit={q_unit!r} contradicts the format")
        if size == 0:
            raise ValueError(f"{path.name}: the file is empty; accepted: an Anton Paar PDH file")
        raw = [read_pdh(path)]
        unit_source = "1/nm (PDH format)"
    else:
        if ext in UNITLESS_EXTENSIONS and q_unit is None:
            raise ValueError(f"{path.name}: {ext} files carry no q unit that can be trusted; "
                             "say which one the file uses with q_unit='1/A' or '1/nm' (CLI: --q-unit)")
        if ext in TEXT_EXTENSIONS:
            data, notes = read_ascii(path)
            raw = [data]
        else:
            raw = _load_with_sasdata(path, ext, size)
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
        d, masked = prepare_data1d(d, name, label=path.name + (f" entry {k}" if len(raw) > 1 else ""))
        curve_notes = notes + _check_unit_plausibility(name, np.asarray(d.x))
        curves.append(Curve(data=d, name=name, source=str(path), q_unit_source=unit_source, masked=masked,
                            notes=curve_notes))
    if not curves:
        raise ValueError(f"{path.name}: no curves found")
    return curves


def intensity_unit(curve: Any) -> str:
    """The curve's intensity unit as a plot label shows it ("cm^-1", "a.u.", ...; "" when the file names none)."""
    unit = str(getattr(getattr(curve, "data", None), "_yunit", "") or "").strip()
    if unit.replace(" ", "").lower() in ("cm^{-1}", "cm^-1", "1/cm", "cm-1", "cm^{-1}sr^{-1}"):
        return "cm^-1"
    return unit
