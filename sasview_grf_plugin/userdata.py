"""Where this package writes by default: a per-user data folder, never the installed package.

The installed package can be read-only (system Python, pipx, uv tool, containers) and is replaced by the next
upgrade, so files a user makes (boosters built with ``sasview-grf zoo build``) go to
``platformdirs.user_data_dir("sasview-grf-plugin")``:

=======  ==============================================================================
Linux    ``$XDG_DATA_HOME/sasview-grf-plugin`` (by default ``~/.local/share/sasview-grf-plugin``)
macOS    ``~/Library/Application Support/sasview-grf-plugin``
Windows  ``%LOCALAPPDATA%\\sasview-grf-plugin``
=======  ==============================================================================
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["APP_NAME", "user_data_dir", "user_bundle_dir"]

APP_NAME = "sasview-grf-plugin"


def user_data_dir() -> Path:
    """This package's per-user data folder (not created here).

    Returns
    -------
    Path
        ``platformdirs.user_data_dir("sasview-grf-plugin")``; read anew on each call, so a changed
        ``XDG_DATA_HOME`` (Linux) takes effect.
    """
    from platformdirs import user_data_dir as _user_data_dir

    # appauthor=False: no vendor level on Windows (%LOCALAPPDATA%\sasview-grf-plugin).
    return Path(_user_data_dir(APP_NAME, appauthor=False))


def user_bundle_dir() -> Path:
    """Folder of user-built booster bundles: ``user_data_dir() / "bundles"``, one sub-folder per case.

    ``sasview-grf zoo build`` writes there by default, and
    :func:`~sasview_grf_plugin.ml.load_predictor` finds bundles there by name, before the shipped ones.
    """
    return user_data_dir() / "bundles"
