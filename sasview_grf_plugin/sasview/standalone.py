"""Standalone plugin files for SasView installs that cannot import this package.

The SasView installer apps (Windows, macOS) bring their own Python with NumPy, SciPy and sasmodels but
without this package, and cannot pip-install into it; their plugin files cannot import sibling files
either. :func:`export_standalone` therefore writes, for each ensemble-mean model, one self-contained
model file plus the shared table file beside it. The exact models (broad and peaked spectra, no table)
mark their import block ``# standalone-export: begin exact`` ... ``end exact``: it is replaced by the
sources of ``spectra.py`` and ``ensemble/fastcut.py`` (NumPy and SciPy only; the import between them
dropped) and one ``alias = name`` line per imported name. The table models:

* the model's own file (``sasview/models/<name>.py``: docstring, parameters, ``Iq``, ``tests``), in
  which the block between ``# standalone-export: begin table`` and ``# standalone-export: end table``
  (the import of the table evaluator) is replaced by
* the evaluator's own source, ``ensemble/table.py``, copied verbatim (it imports only NumPy and SciPy
  for exactly this purpose), and a ``_table()`` that reads ``grf_ensemble_table.npz`` beside the model
  file (sasmodels loads plugin files with their ``__file__`` set), else in the folder it was exported to.

Both pieces are read from the installed package when the files are written, so the standalone files
are the package's models, never a hand-kept copy.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import sys
from pathlib import Path

from .install import MARKER, prepare_folder, write_atomic
from .paths import ENSEMBLE_MODELS, model_path

__all__ = ["STANDALONE_MODELS", "standalone_source", "export_standalone"]

#: The models that can run without this package (the ``_sim`` models need its simulator).
STANDALONE_MODELS = ENSEMBLE_MODELS

_BEGIN = "# standalone-export: begin table\n"
_END = "# standalone-export: end table\n"
_BEGIN_EXACT = "# standalone-export: begin exact\n"
_END_EXACT = "# standalone-export: end exact\n"
# The exact models' evaluator: these modules, inlined in this order (each may import the ones before it).
_EXACT_MODULES = ("sasview_grf_plugin.spectra", "sasview_grf_plugin.ensemble.fastcut")
# What the evaluator may import: the standard library, NumPy and SciPy. Checked on every export, so a
# package import slipped into table.py fails here rather than in a user's SasView.
_ALLOWED_ROOTS = {"numpy", "scipy", "__future__"}

_TABLE_BLOCK = '''\
# The table file: beside this file (sasmodels sets __file__ to the plugin file's path), else in the folder
# the files were exported to (SasView's "Add file" copies only the .py file into its plugin folder).
_EXPORT_DIR = {export_dir!r}
_TABLE_DIRS = tuple(dict.fromkeys(d for d in (os.path.dirname(os.path.abspath(__file__)), _EXPORT_DIR) if d))
_TABLE_LOADED: list = []


def _table():
    """The ensemble table, read once from the first folder of _TABLE_DIRS that holds it."""
    if not _TABLE_LOADED:
        for folder in _TABLE_DIRS:
            path = os.path.join(folder, TABLE_FILE)
            if os.path.isfile(path):
                _TABLE_LOADED.append(EnsembleTable(path))
                break
        else:
            raise TableError(f"{{TABLE_FILE}} not found in {{' or '.join(_TABLE_DIRS)}}: copy it from the folder "
                             "'sasview-grf export-plugin --standalone' wrote, next to this model file")
    return _TABLE_LOADED[0]


'''


def _docstring_end(source: str, where: str) -> tuple[ast.Module, int]:
    """The parsed module and the line after its docstring."""
    tree = ast.parse(source)
    first = tree.body[0] if tree.body else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        raise RuntimeError(f"{where} has no module docstring")
    return tree, first.end_lineno


def _evaluator_source(module: str = "sasview_grf_plugin.ensemble.table",
                      inlined: tuple[str, ...] = ()) -> tuple[str, Path]:
    """A module's source without its docstring and ``from __future__`` line, its docstring as comments.

    Relative imports of modules in ``inlined`` (inlined before this one) are dropped; any other import
    outside the standard library, NumPy and SciPy is an error.
    """
    import importlib

    mod = importlib.import_module(module)
    path = Path(mod.__file__)
    source = path.read_text(encoding="utf-8")
    tree, end = _docstring_end(source, str(path))
    drop: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            package = module.rsplit(".", node.level)[0]
            target = f"{package}.{node.module}" if node.module else package
            if target not in inlined:
                raise RuntimeError(f"{path} imports {target!r}, which the standalone export does not inline")
            drop.update(range(node.lineno, node.end_lineno + 1))
            continue
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or "."] if isinstance(node, ast.ImportFrom) else [])
        for n in names:
            root = n.split(".")[0]
            if not (root in _ALLOWED_ROOTS or root in sys.stdlib_module_names):
                raise RuntimeError(f"{path} imports {n!r}: the standalone models may need only NumPy and SciPy")
    lines = source.splitlines(keepends=True)
    doc = ast.get_docstring(tree) or ""
    body = [ln for i, ln in enumerate(lines[end:], start=end + 1)
            if ln.strip() != "from __future__ import annotations" and i not in drop]
    comment = "".join(f"# {ln}".rstrip() + "\n" for ln in doc.splitlines())
    return comment + "".join(body).lstrip("\n"), path


def _exact_block(block: str, where: str) -> str:
    """The inlined exact evaluator, then ``alias = name`` for each ``from ... import name as alias`` in ``block``."""
    aliases = []
    for node in ast.parse(block).body:
        if not (isinstance(node, ast.ImportFrom) and node.module in _EXACT_MODULES):
            raise RuntimeError(f"{where}: the exact block may only import from {', '.join(_EXACT_MODULES)}")
        aliases += [f"{a.asname or a.name} = {a.name}\n" for a in node.names]
    parts = []
    for i, module in enumerate(_EXACT_MODULES):
        src, path = _evaluator_source(module, _EXACT_MODULES[:i])
        rel = "/".join(path.parts[-2:]) if path.parent.name != "sasview_grf_plugin" else path.name
        parts.append(f"# ---- verbatim copy of {rel} (without its docstring) ----\n" + src.rstrip("\n") + "\n")
    return "\n\n".join(parts) + "\n# ---- end of the exact evaluator ----\n" + "".join(aliases)


def standalone_source(name: str, export_dir: str | os.PathLike | None = None) -> str:
    """Source of the standalone model file ``name`` (one of ``STANDALONE_MODELS``).

    Parameters
    ----------
    name
        ``"grf_two_phase"`` or ``"grf_three_phase"``.
    export_dir
        Folder that will hold the table file; the model looks there when the table is not beside it.
        Default: none (beside the model file only).

    Returns
    -------
    str
        Python source that needs NumPy, SciPy (>= 1.12) and sasmodels, and ``grf_ensemble_table.npz``.
    """
    from .. import __version__

    if name not in STANDALONE_MODELS:
        raise ValueError(f"no standalone form of {name!r}; available: {', '.join(STANDALONE_MODELS)}")
    model_file = Path(model_path(name))
    model = model_file.read_text(encoding="utf-8")
    if _BEGIN_EXACT in model:
        return _exact_source(name, model, model_file, __version__)
    if model.count(_BEGIN) != 1 or model.count(_END) != 1 or model.index(_BEGIN) > model.index(_END):
        raise RuntimeError(f"{model_file}: expected one '{_BEGIN.strip()}' ... '{_END.strip()}' block")
    _, doc_end = _docstring_end(model, str(model_file))
    lines = model.splitlines(keepends=True)
    doc, rest = "".join(lines[:doc_end]), "".join(lines[doc_end:])
    head, tail = rest.split(_BEGIN)
    _, tail = tail.split(_END)
    evaluator, table_py = _evaluator_source()
    folder = "" if export_dir is None else str(Path(export_dir).resolve())
    header = (
        f"{MARKER} (sasview-grf-plugin {__version__}, standalone).\n"
        f"# Model {name!r} for SasView and sasmodels without the sasview-grf-plugin package: it needs NumPy,\n"
        "# SciPy >= 1.12 and the table file grf_ensemble_table.npz beside it (or in the folder it was exported to).\n"
        "# Generated by 'sasview-grf export-plugin --standalone' from the package's model file and its table\n"
        "# evaluator (sasview_grf_plugin/ensemble/table.py); edit those, not this file.\n"
    )
    return (
        header + doc + "\nfrom __future__ import annotations\n\n"
        + f"# ---- table evaluator: verbatim copy of {table_py.parent.name}/{table_py.name} ----\n"
        + evaluator.rstrip("\n") + "\n\n# ---- end of the table evaluator ----\n"
        + head.rstrip("\n") + "\n\n" + _TABLE_BLOCK.format(export_dir=folder) + tail.lstrip("\n")
    )


def _exact_source(name: str, model: str, model_file: Path, version: str) -> str:
    if model.count(_BEGIN_EXACT) != 1 or model.count(_END_EXACT) != 1 or model.index(_BEGIN_EXACT) > model.index(
            _END_EXACT):
        raise RuntimeError(f"{model_file}: expected one '{_BEGIN_EXACT.strip()}' ... '{_END_EXACT.strip()}' block")
    _, doc_end = _docstring_end(model, str(model_file))
    lines = model.splitlines(keepends=True)
    doc, rest = "".join(lines[:doc_end]), "".join(lines[doc_end:])
    head, tail = rest.split(_BEGIN_EXACT)
    block, tail = tail.split(_END_EXACT)
    header = (
        f"{MARKER} (sasview-grf-plugin {version}, standalone).\n"
        f"# Model {name!r} for SasView and sasmodels without the sasview-grf-plugin package: it needs NumPy and\n"
        "# SciPy >= 1.12, no other file. Generated by 'sasview-grf export-plugin --standalone' from the package's\n"
        "# model file and its exact evaluator (sasview_grf_plugin/spectra.py, ensemble/fastcut.py); edit those.\n"
    )
    return (header + doc + "\nfrom __future__ import annotations\n\n" + _exact_block(block, str(model_file)) + "\n"
            + head.strip("\n") + "\n\n" + tail.lstrip("\n"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_standalone(directory: str | os.PathLike, force: bool = False) -> list[Path]:
    """Write the standalone model files and the table file into ``directory``.

    Parameters
    ----------
    directory
        Target folder (created if needed): SasView's plugin folder, or any folder to add the models
        from with SasView's plugin manager.
    force
        Overwrite model files of the same name that this package did not write.

    Returns
    -------
    list of Path
        The files written: one ``.py`` per model of ``STANDALONE_MODELS``, then ``grf_ensemble_table.npz``.
    """
    from ..ensemble.table import TABLE_FILE, default_table_path

    target = Path(directory)
    prepare_folder(target, STANDALONE_MODELS, force, "the export folder")
    written = []
    table_src, table_dst = default_table_path(), target / TABLE_FILE
    # Copy only when different: the table is 6.6 MB and an unchanged file keeps its time stamp.
    if not (table_dst.is_file() and table_dst.stat().st_size == table_src.stat().st_size
            and _sha256(table_dst) == _sha256(table_src)):
        write_atomic(table_dst, lambda tmp: shutil.copyfile(table_src, tmp))
    for name in STANDALONE_MODELS:
        path = target / f"{name}.py"
        source = standalone_source(name, target)
        write_atomic(path, lambda tmp, source=source: Path(tmp).write_text(source, encoding="utf-8"))
        written.append(path)
    written.append(table_dst)
    return written
