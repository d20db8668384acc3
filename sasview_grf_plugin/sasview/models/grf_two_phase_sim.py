r"""
Two-phase porous material (pore and solid) modelled as a thresholded Gaussian
random field (GRF), after Röding et al. (2022). The intensity is not a closed
formula: each evaluation simulates the microstructure on a periodic voxel grid
and computes its SAXS curve by 3D FFT.

**Which model to use.** This is the paper-exact simulation of finite boxes: use it to reproduce
the paper's voxel model or to study single realizations. To fit measured data use
``grf_two_phase``: the ensemble mean of the same structure (what a macroscopic sample scatters),
deterministic, smooth, valid at every q and a thousand times faster.


Definition
----------

A GRF $\psi$ with spectral density

.. math::

    \Gamma(q) = \left(1 + (a q)^8\right)^{-2}

is made by filtering white noise in Fourier space. The pore is the fraction
$\epsilon$ (``porosity``) of the box where $\psi$ is lowest; the binary field is
smoothed by a periodic Gaussian of $\sigma = 2$ voxels and thresholded again at
its $\epsilon$ quantile, so the pore fraction is exactly $\epsilon$ (to one voxel).
The scattering length density is ``sld_pore`` in the pore and ``sld_solid`` in the
solid. The intensity per unit volume is

.. math::

    I(\mathbf{q}) = \frac{\Delta x^3}{N^3}\,\left|\mathrm{FFT}[\rho](\mathbf{q})\right|^2
    \times 10^{-4}\ \text{cm}^{-1},

averaged over orientations with Gaussian weights
$w_q(\mathbf{q}_{ijk}) \propto \exp[-2((|\mathbf{q}_{ijk}| - q)/\Delta q)^2] / |\mathbf{q}_{ijk}|^2$,
$\Delta q = 2\pi/(N\Delta x)$, and averaged over ``n_realizations`` structures.
It is on an absolute scale: the Porod invariant is
$\int_0^\infty q^2 I(q)\,dq = 2\pi^2 \epsilon(1-\epsilon)\,\Delta\rho^2 \times 10^{-4}$
(cm$^{-1}$ Å$^{-3}$, up to the grid's resolution), so ``scale`` is a volume
fraction as for SasView's built-in models.

Parameters
----------

- ``a`` [Å]: scaling parameter of $\Gamma$; the structure's length scale is
  roughly proportional to it.
- ``porosity``: pore volume fraction $\epsilon$. Babinet's principle makes
  $\epsilon$ and $1-\epsilon$ indistinguishable for two phases (swap the SLDs).
- ``sld_pore``, ``sld_solid`` [$10^{-6}$/Å$^2$].
- ``voxel_size`` [Å], ``grid_size`` (voxels per edge): the simulation box,
  ``grid_size * voxel_size`` Å wide. Keep ``a`` above ~1.5 voxels and the box
  several times the structure's length scale.
- ``n_realizations``: structures averaged (less noise at low $q$, slower).
- ``seed``: the random structure. The same parameters and seed always give the
  same curve (a fit's finite differences see the model, not new noise).

Domain of validity and extrapolation
------------------------------------

The simulation covers $2\pi/(N\Delta x) \le q \le \pi/\Delta x$; the voxels
themselves shape the curve in the upper half of that range, so use data up to
about $\pi/(2\Delta x)$ (as the paper's 0.5 nm voxels and $q \le 3$ nm$^{-1}$ do). Below that
range the curve continues flat at its value at $2\pi/(N\Delta x)$; above it as
Porod's law $q^{-4}$; both finite (resolution smearing asks for such $q$).
Choose ``voxel_size`` and ``grid_size`` so that the data's $q$ range lies
inside the simulated one. The defaults (64 voxels of 5 Å) suit
$0.02 \le q \le 0.3$ Å$^{-1}$ and take a few tens of milliseconds on a laptop
CPU; results are cached, so repeated evaluations are instant. A CUDA GPU is used
through CuPy when available (set ``SASVIEW_GRF_BACKEND=numpy`` to prevent it).

References
----------

#. M. Röding, P. Tomaszewski, S. Yu, M. Borg, J. Rönnols, *Machine
   learning-accelerated small-angle X-ray scattering analysis of disordered two-
   and three-phase materials*, Frontiers in Materials 9 (2022) 956839,
   doi:10.3389/fmats.2022.956839
#. J. W. Cahn, J. E. Hilliard, *Free energy of a nonuniform system. I.
   Interfacial free energy*, J. Chem. Phys. 28 (1958) 258

Authorship and Verification
---------------------------

* **Author:** sasview-grf-plugin developers
* **Last Modified by:** sasview-grf-plugin developers
* **Last Reviewed by:** not yet reviewed
"""

from numpy import inf

from sasview_grf_plugin.sasview.engine import SIMULATION_CONTROLS, check_inputs, intensity

__all__ = ["name", "title", "description", "category", "parameters", "Iq", "tests"]

name = "grf_two_phase_sim"
title = "Two-phase GRF porous structure, one simulated realization (FFT on a voxel grid)"
description = """\
Pore and solid phases from a thresholded, smoothed Gaussian random field with
spectral density (1 + (a q)^8)^-2 (Roding et al. 2022); I(q) simulated by 3D FFT
on a periodic grid, absolute scale (cm^-1) from the SLDs.
"""
category = "shape-independent"

# ["name", "units", default, [lower, upper], "type", "description"]
parameters = [
    ["a", "Ang", 25.0, [1.0, 10000.0], "", "GRF scaling parameter (length scale)"],
    ["porosity", "", 0.3, [0.01, 0.99], "", "pore volume fraction"],
    ["sld_pore", "1e-6/Ang^2", 0.0, [-inf, inf], "sld", "pore scattering length density"],
    ["sld_solid", "1e-6/Ang^2", 10.0, [-inf, inf], "sld", "solid scattering length density"],
    *SIMULATION_CONTROLS,
]


def Iq(q, a, porosity, sld_pore, sld_solid, voxel_size, grid_size, n_realizations, seed):
    """Absolute intensity (cm^-1) at q (1/Å)."""
    check_inputs(q, a, parameters)
    return intensity(q, a, porosity, 0.0, sld_pore, sld_pore, sld_solid, voxel_size, grid_size,
                     n_realizations, seed)


Iq.vectorized = True

# Exact for any realization: no contrast, no scattering; elsewhere finite (None = "not NaN"),
# down to the tiny q of resolution smearing and beyond the simulated range.
tests = [
    [{"sld_pore": 3.0, "sld_solid": 3.0, "background": 0.0}, [1e-6, 0.05, 0.3, 2.0], [0.0, 0.0, 0.0, 0.0]],
    [{}, [1e-6, 0.001, 0.05, 0.3, 0.63, 5.0], [None] * 6],
    [{"a": 60.0, "porosity": 0.7, "grid_size": 48}, [0.01, 0.1], [None, None]],
]
