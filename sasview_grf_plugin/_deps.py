"""Checks of optional and conflicting dependencies, with the command that fixes each problem.

XGBoost comes from PyPI as two distributions that install the same ``xgboost`` module: ``xgboost-cpu``
(no CUDA, what this package depends on where that wheel exists) and ``xgboost`` (CUDA-enabled on Linux and
Windows, with the 469 MB ``nvidia-nccl-cu12`` on Linux). With both installed, the files of the one installed
last win, and uninstalling either deletes the module files of both: the environment breaks on the next
change. pip cannot prevent that (an extra cannot remove a dependency), so the check runs where this package
first needs XGBoost (importing :mod:`sasview_grf_plugin.ml`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import metadata

__all__ = ["XGBOOST_DISTRIBUTIONS", "xgboost_distributions", "check_xgboost"]

#: The PyPI distributions that provide the ``xgboost`` module.
XGBOOST_DISTRIBUTIONS = ("xgboost", "xgboost-cpu")


def xgboost_distributions(path: Sequence[str | os.PathLike] | None = None) -> dict[str, str]:
    """Installed XGBoost distributions and their versions.

    Parameters
    ----------
    path
        Folders to search (default: ``sys.path``, as ``import xgboost`` would).

    Returns
    -------
    dict
        ``{distribution name: version}`` for each of ``XGBOOST_DISTRIBUTIONS`` found.
    """
    found = {}
    kwargs = {} if path is None else {"path": [str(p) for p in path]}
    for name in XGBOOST_DISTRIBUTIONS:
        for dist in metadata.distributions(name=name, **kwargs):
            found[name] = dist.version
            break  # the first on the path is the one that counts for its name
    return found


def check_xgboost(device: str = "cpu", path: Sequence[str | os.PathLike] | None = None) -> None:
    """Stop with the fix if the XGBoost install cannot work or will break.

    Parameters
    ----------
    device
        ``"cpu"`` or ``"cuda"``: the XGBoost device about to be used. ``"cuda"`` needs the
        CUDA-enabled ``xgboost`` distribution, not ``xgboost-cpu``.
    path
        Folders to search (default: ``sys.path``).

    Raises
    ------
    RuntimeError
        If both distributions are installed, or ``device == "cuda"`` with only ``xgboost-cpu``.
    """
    found = xgboost_distributions(path)
    if len(found) == 2:
        both = " and ".join(f"{n} {v}" for n, v in found.items())
        # Uninstall both: removing one of them deletes the module files the other one needs.
        raise RuntimeError(
            f"two XGBoost distributions are installed, {both}; they provide the same 'xgboost' module and "
            "removing either one breaks the other. Keep one: 'pip uninstall -y xgboost xgboost-cpu', then "
            "'pip install xgboost-cpu' (CPU only, the default) or 'pip install xgboost' (for training on CUDA)")
    if device == "cuda" and "xgboost-cpu" in found:
        raise RuntimeError(
            f"training on CUDA needs the CUDA-enabled XGBoost, but this environment has xgboost-cpu "
            f"{found['xgboost-cpu']} (no CUDA). Swap it: 'pip uninstall -y xgboost-cpu && pip install xgboost'")
