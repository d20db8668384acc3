"""Conversions between the simulator's units (nm, 1/nm) and SasView's (Å, 1/Å, 1e-6/Å^2, cm^-1).

The only place where units change.
"""

from __future__ import annotations

ANGSTROM_PER_NM = 10.0

# Intensity per unit volume with densities in 1e-6/Å^2 and lengths in nm is in
# (1e-6 Å^-2)^2 nm^3 = 1e-12 Å^-4 * 1e3 Å^3 = 1e-9 Å^-1 = 1e-9 * 1e8 cm^-1 = 0.1 cm^-1.
CM_PER_SLD2_NM3 = 0.1


def length_to_nm(length_angstrom: float) -> float:
    """Å -> nm."""
    return length_angstrom / ANGSTROM_PER_NM


def q_to_per_nm(q_per_angstrom):
    """1/Å -> 1/nm."""
    return q_per_angstrom * ANGSTROM_PER_NM
