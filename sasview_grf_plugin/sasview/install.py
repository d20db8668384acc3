"""Install thin plugin files into SasView's plugin folder (and remove them again).

SasView loads every top-level ``*.py`` in its plugin folder with
``sasmodels.sasview_model.load_custom_model``; sibling imports there fail, so each
installed file only re-exports a model module of this (installed) package. A marker
line identifies our files: we overwrite or remove only those.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .paths import MODEL_NAMES

__all__ = ["sasview_plugin_dir", "install_plugins", "uninstall_plugins", "MARKER"]

MARKER = "# sasview-grf-plugin: generated plugin file"

_TEMPLATE = '''{marker} (sasview-grf-plugin {version}).
# It re-exports the model {name!r} of the installed Python package; edit that package, not this file.
# Remove with: sasview-grf install-plugins --uninstall
from sasview_grf_plugin.sasview.models.{name} import *  # noqa: F401,F403
from sasview_grf_plugin.sasview.models.{name} import __doc__  # noqa: F401
'''


def sasview_plugin_dir() -> Path:
    """SasView's plugin folder, found as SasView finds it.

    ``platformdirs.PlatformDirs("SasView", "sasview").user_data_dir / "plugin_models"``
    (Linux: ``$XDG_DATA_HOME/SasView/plugin_models``, by default ``~/.local/share/...``).
    """
    from platformdirs import PlatformDirs

    return Path(PlatformDirs("SasView", "sasview").user_data_dir) / "plugin_models"


def _is_ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().startswith(MARKER)
    except (OSError, UnicodeDecodeError):
        return False


def install_plugins(directory: str | os.PathLike | None = None, force: bool = False) -> list[Path]:
    """Write the model files (``MODEL_NAMES``) into ``directory`` (default: SasView's).

    Files of ours are overwritten; a foreign file of the same name is left alone and
    reported, unless ``force``. Returns the paths written.
    """
    from .. import __version__

    target = Path(directory) if directory is not None else sasview_plugin_dir()
    prepare_folder(target, MODEL_NAMES, force, "the plugin folder")
    written = []
    for name in MODEL_NAMES:
        path = target / f"{name}.py"
        write_atomic(path, lambda tmp, name=name: Path(tmp).write_text(
            _TEMPLATE.format(marker=MARKER, version=__version__, name=name), encoding="utf-8"))
        written.append(path)
    return written


def prepare_folder(target: Path, names: tuple[str, ...], force: bool, what: str) -> None:
    """Create ``target`` and refuse to overwrite model files ``<name>.py`` there that we did not write."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create {what} {target}: {exc.strerror or exc}") from None
    foreign = [target / f"{n}.py" for n in names
               if (target / f"{n}.py").exists() and not _is_ours(target / f"{n}.py")]
    if foreign and not force:
        raise ValueError(
            f"not overwriting {', '.join(str(p) for p in foreign)}: not written by sasview-grf-plugin; "
            "move it away or pass --force to overwrite"
        )


def write_atomic(path: Path, fill: Callable[[str], object]) -> None:
    """Write ``path`` through ``fill(temporary_name)`` and an atomic rename.

    The temporary file has a fresh name of our own (never a user's file) in the same folder.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".sasview-grf.tmp", dir=path.parent)
    os.close(fd)
    try:
        fill(tmp_name)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; a plugin file is an ordinary readable file
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def uninstall_plugins(directory: str | os.PathLike | None = None) -> list[Path]:
    """Remove our plugin files from ``directory`` (default: SasView's). Returns the paths removed."""
    target = Path(directory) if directory is not None else sasview_plugin_dir()
    removed = []
    for name in MODEL_NAMES:
        path = target / f"{name}.py"
        if path.exists() and _is_ours(path):
            path.unlink()
            removed.append(path)
    return removed
