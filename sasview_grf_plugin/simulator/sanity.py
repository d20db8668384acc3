"""Limits of meaningful simulations, checked before any work starts.

Physics: a GRF structure is resolved only when a spans at least ~1.5 voxels (the spectral density
(1 + (a q)^8)^-2 must fall off well inside the grid's Nyquist wave number pi/dx), and it is a
statistical sample only when the box holds several a (otherwise one blob fills the periodic box).
Below 16 voxels per edge the spherical average has too few shells to be a curve. A phase that
gets less than one voxel on average is simply absent: its curve is all zero.

Work: the cost of ``simulate`` grows as realizations x N^3 (FFTs of N^3 voxels per realization);
:func:`check_work` refuses more than :data:`WORK_LIMIT` voxel-realizations unless explicitly allowed.
"""

from __future__ import annotations

from .config import SimulationConfig

__all__ = ["MIN_VOXELS_PER_A", "MIN_BOX_PER_A", "MIN_GRID", "MIN_PHASE_VOXELS", "WORK_LIMIT",
           "physical_warnings", "check_phases", "check_work"]

MIN_VOXELS_PER_A = 1.5
MIN_BOX_PER_A = 4.0
MIN_GRID = 16
# "A handful" of voxels: fewer give a curve of a few isolated specks, not of the structure.
MIN_PHASE_VOXELS = 8
# 2^34 voxel-realizations: 8192 realizations of 128^3 or 128 of 512^3 (tens of minutes on a CPU).
WORK_LIMIT = 2**34


def _phase_voxels(config: SimulationConfig, porosity: float, layer_fraction: float) -> dict[str, float]:
    n3 = float(config.grid_size) ** 3
    out = {"pore": porosity * (1.0 - layer_fraction) * n3, "solid": (1.0 - porosity) * n3}
    if layer_fraction > 0:
        out["layer"] = porosity * layer_fraction * n3
    return out


def check_phases(config: SimulationConfig, porosity: float, layer_fraction: float = 0.0) -> None:
    """Raise ``ValueError`` when a phase would get less than one voxel on average (an empty curve)."""
    for phase, count in _phase_voxels(config, porosity, layer_fraction).items():
        if count < 1.0:
            raise ValueError(
                f"porosity={porosity:g}, layer_fraction={layer_fraction:g} give the {phase} phase about "
                f"{count:.3g} of the {config.grid_size}^3 voxels: it is absent and the curve would be all zero; "
                f"each phase needs at least {MIN_PHASE_VOXELS} voxels (volume fraction >= "
                f"{MIN_PHASE_VOXELS / config.grid_size**3:.2g} at N={config.grid_size})")


def physical_warnings(config: SimulationConfig, a: float, porosity: float, layer_fraction: float = 0.0) -> list[str]:
    """Why a simulation with these settings would not be meaningful (empty list: nothing to say).

    Parameters
    ----------
    config
        Grid (N, voxel size in nm).
    a, porosity, layer_fraction
        Structure parameters (a in nm).
    """
    out = []
    dx, n = config.voxel_size, config.grid_size
    if a / dx < MIN_VOXELS_PER_A:
        out.append(f"a = {a:g} nm is {a / dx:.3g} voxels of {dx:g} nm; below {MIN_VOXELS_PER_A} voxels the grid does "
                   f"not resolve the structure (use a >= {MIN_VOXELS_PER_A * dx:g} nm or a smaller voxel)")
    if n * dx < MIN_BOX_PER_A * a:
        out.append(f"the box ({n} x {dx:g} nm = {n * dx:g} nm) is only {n * dx / a:.3g} a wide; below "
                   f"{MIN_BOX_PER_A:g} a it holds too few structures to be a sample (use a <= "
                   f"{n * dx / MIN_BOX_PER_A:g} nm or a larger grid)")
    if n < MIN_GRID:
        out.append(f"grid size {n} is below {MIN_GRID}: too few q shells for a meaningful curve")
    for phase, count in _phase_voxels(config, porosity, layer_fraction).items():
        if 1.0 <= count < MIN_PHASE_VOXELS:
            out.append(f"the {phase} phase gets only about {count:.3g} voxels; fewer than {MIN_PHASE_VOXELS} "
                       "give the scattering of isolated specks, not of the structure")
    return out


def check_work(config: SimulationConfig, n_realizations: int, n_curves: int = 1, allow_long: bool = False,
               option: str = "--allow-long") -> None:
    """Refuse more than :data:`WORK_LIMIT` voxel-realizations unless ``allow_long``.

    Raises
    ------
    ValueError
        With the requested work, the limit and the override (``option``).
    """
    work = float(n_realizations) * float(n_curves) * float(config.grid_size) ** 3
    if work > WORK_LIMIT and not allow_long:
        raise ValueError(
            f"{n_curves * n_realizations:.4g} realization(s) of {config.grid_size}^3 voxels is {work:.3g} "
            f"voxel-realizations, more than the limit of {WORK_LIMIT:.3g} (hours of computing); "
            f"use fewer realizations or a smaller grid, or pass {option} to run it anyway")
