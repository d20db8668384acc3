r"""
Three-phase porous material (pore, interfacial layer and solid) modelled as a
thresholded Gaussian random field (GRF), after Röding et al. (2022). The
intensity is not a closed formula: each evaluation simulates the microstructure
on a periodic voxel grid and computes its SAXS curve by 3D FFT.

**Which model to use.** This is the paper-exact simulation of finite boxes: use it to reproduce
the paper's voxel model or to study single realizations. To fit measured data use
``grf_three_phase``: the ensemble mean of the same structure (what a macroscopic sample scatters),
deterministic, smooth, valid at every q and a thousand times faster.


Definition
----------

A GRF $\psi$ with spectral density

.. math::

    \Gamma(q) = \left(1 + (a q)^8\right)^{-2}

is made by filtering white noise in Fourier space and thresholded at its
$\epsilon$ quantile ($\epsilon$ = ``porosity``). The binary field is smoothed by
a periodic Gaussian of $\sigma = 2$ voxels, $\psi''$, and thresholded at its
quantiles $\epsilon(1-\nu)$ and $\epsilon$ ($\nu$ = ``layer_fraction``):

.. math::

    \rho(\mathbf{x}) = \begin{cases}
    \rho_\text{pore}, & \psi'' \le T_1 \\
    \rho_\text{layer}, & T_1 < \psi'' \le T_2 \\
    \rho_\text{solid}, & \psi'' > T_2
    \end{cases}

The volume fractions are exactly $\epsilon(1-\nu)$, $\epsilon\nu$ and
$1-\epsilon$ (to one voxel), and the layer lies at the pore-solid interface,
like a liquid or adsorbate condensed on the solid. The intensity per unit volume
is

.. math::

    I(\mathbf{q}) = \frac{\Delta x^3}{N^3}\,\left|\mathrm{FFT}[\rho](\mathbf{q})\right|^2
    \times 10^{-4}\ \text{cm}^{-1},

averaged over orientations with Gaussian weights
$w_q(\mathbf{q}_{ijk}) \propto \exp[-2((|\mathbf{q}_{ijk}| - q)/\Delta q)^2] / |\mathbf{q}_{ijk}|^2$,
$\Delta q = 2\pi/(N\Delta x)$, and over ``n_realizations`` structures. It is on an
absolute scale: $\int_0^\infty q^2 I(q)\,dq = 2\pi^2\,\mathrm{var}(\rho) \times 10^{-4}$
(up to the grid's resolution), so ``scale`` is a volume fraction as for SasView's
built-in models. The two-phase model ``grf_two_phase_sim`` is the case $\nu = 0$.
The SLDs enter only through the partial intensities of the phases, so changing
them does not re-simulate.

Parameters
----------

- ``a`` [Å]: scaling parameter of $\Gamma$; the length scale is roughly
  proportional to it.
- ``porosity``: pore plus layer volume fraction $\epsilon$.
- ``layer_fraction``: fraction $\nu$ of the pore space filled by the layer.
- ``sld_pore``, ``sld_layer``, ``sld_solid`` [$10^{-6}$/Å$^2$]; the defaults
  0 / 6.5 / 10 give the paper's 0 / 0.65 / 1 contrast (water on carbon or
  cellulose for X-rays).
- ``voxel_size`` [Å], ``grid_size`` (voxels per edge): the simulation box,
  ``grid_size * voxel_size`` Å wide.
- ``n_realizations``: structures averaged (less noise at low $q$, slower).
- ``seed``: the random structure; the same parameters and seed always give the
  same curve.

Domain of validity and extrapolation
------------------------------------

The simulation covers $2\pi/(N\Delta x) \le q \le \pi/\Delta x$; the voxels
themselves shape the curve in the upper half of that range, so use data up to
about $\pi/(2\Delta x)$ (as the paper's 0.5 nm voxels and $q \le 3$ nm$^{-1}$ do). Below that
range the curve continues flat at its value at $2\pi/(N\Delta x)$; above it as
Porod's law $q^{-4}$; both finite. Choose ``voxel_size`` and ``grid_size`` so
that the data's $q$ range lies inside the simulated one. The defaults (64
voxels of 5 Å) suit $0.02 \le q \le 0.3$ Å$^{-1}$. The smoothing is 2 voxels
wide, so for three phases ``voxel_size`` also sets the layer's thickness scale. Results are cached; a CUDA
GPU is used through CuPy when available (``SASVIEW_GRF_BACKEND=numpy`` prevents
it).

References
----------

#. M. Röding, P. Tomaszewski, S. Yu, M. Borg, J. Rönnols, *Machine
   learning-accelerated small-angle X-ray scattering analysis of disordered two-
   and three-phase materials*, Frontiers in Materials 9 (2022) 956839,
   doi:10.3389/fmats.2022.956839

Authorship and Verification
---------------------------

* **Author:** sasview-grf-plugin developers
* **Last Modified by:** sasview-grf-plugin developers
* **Last Reviewed by:** not yet reviewed
"""

from numpy import inf

from sasview_grf_plugin.sasview.engine import SIMULATION_CONTROLS, check_inputs, intensity

__all__ = ["name", "title", "description", "category", "parameters", "Iq", "tests"]

name = "grf_three_phase_sim"
title = "Three-phase GRF porous structure (pore, layer, solid), one simulated realization"
description = """\
Pore, interfacial layer and solid from a thresholded, smoothed Gaussian random
field with spectral density (1 + (a q)^8)^-2 (Roding et al. 2022); I(q)
simulated by 3D FFT on a periodic grid, absolute scale (cm^-1) from the SLDs.
"""
category = "shape-independent"

# ["name", "units", default, [lower, upper], "type", "description"]
parameters = [
    ["a", "Ang", 25.0, [1.0, 10000.0], "", "GRF scaling parameter (length scale)"],
    ["porosity", "", 0.7, [0.01, 0.99], "", "pore plus layer volume fraction"],
    ["layer_fraction", "", 0.2, [0.0, 0.99], "", "fraction of the pore space filled by the layer"],
    ["sld_pore", "1e-6/Ang^2", 0.0, [-inf, inf], "sld", "pore scattering length density"],
    ["sld_layer", "1e-6/Ang^2", 6.5, [-inf, inf], "sld", "layer scattering length density"],
    ["sld_solid", "1e-6/Ang^2", 10.0, [-inf, inf], "sld", "solid scattering length density"],
    *SIMULATION_CONTROLS,
]


def Iq(q, a, porosity, layer_fraction, sld_pore, sld_layer, sld_solid, voxel_size, grid_size, n_realizations,
       seed):
    """Absolute intensity (cm^-1) at q (1/Å)."""
    check_inputs(q, a, parameters)
    return intensity(q, a, porosity, layer_fraction, sld_pore, sld_layer, sld_solid, voxel_size, grid_size,
                     n_realizations, seed)


Iq.vectorized = True

# Exact for any realization: with no contrast anywhere there is no scattering; elsewhere
# finite (None = "not NaN"), down to the tiny q of resolution smearing and beyond the range.
tests = [
    [{"sld_pore": 2.0, "sld_layer": 2.0, "sld_solid": 2.0, "background": 0.0},
     [1e-6, 0.05, 0.3, 2.0], [0.0, 0.0, 0.0, 0.0]],
    [{}, [1e-6, 0.001, 0.05, 0.3, 0.63, 5.0], [None] * 6],
    [{"layer_fraction": 0.0, "grid_size": 48}, [0.01, 0.1], [None, None]],
]
