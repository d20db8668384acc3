r"""
Three-phase structure with a correlation peak in which one phase is a
**membrane or layer** between the other two: sponge (L3) phases and
bicontinuous microemulsions seen in film contrast (a surfactant film between
two solvent domains), lipid or polymer membranes in bicontinuous phases,
coated bicontinuous networks. Modelled as the band between two levels of a
Gaussian random field (GRF) with a **peaked** spectral density (domain spacing
$d$, correlation length $\xi$; Berk, Teubner-Strey): the **exact ensemble
mean**, deterministic, smooth in every parameter, valid for every $q \ge 0$.

The GRF's spectral density and correlation function are those of
``grf_two_phase_peaked``:

.. math::

    \Gamma(q) \propto \left[\left(q^2 - k^2 + \kappa^2\right)^2 + 4k^2\kappa^2\right]^{-2},
    \quad k = 2\pi/d,\ \kappa = 1/\xi,\qquad
    \rho(r) = e^{-r/\xi}\left[\left(1+\frac{\kappa^2}{k^2}\right)\frac{\sin kr}{kr}
               + \frac{\kappa}{k}\sin kr - \frac{\kappa^2}{k^2}\cos kr\right].

Definition
----------

Two levels $t_1 < t_2$ of a GRF $\psi$ cut space into three phases: the pore
$\{\psi < t_1\}$ (volume fraction $\phi_p$), the layer $\{t_1 \le \psi < t_2\}$
($\phi_l$) and the solid $\{\psi \ge t_2\}$ ($\phi_s = 1-\phi_p-\phi_l$), with
$t_1 = \Phi^{-1}(\phi_p)$, $t_2 = \Phi^{-1}(\phi_p+\phi_l)$. The layer is the
band between two level surfaces: a sheet that separates pore from solid
everywhere, about $\phi_l/S$ thick ($S$ the interface area per volume). With
the densities $d_p = \rho_\text{pore}-\rho_\text{solid}$ and
$d_l = \rho_\text{layer}-\rho_\text{solid}$, the density is
$f(\psi) = (d_p-d_l)\,\mathbf 1\{\psi<t_1\} + d_l\,\mathbf 1\{\psi<t_2\}$ (plus a
constant) and its covariance, for a pair of values of $\psi$ with correlation
$\rho(r)$, follows from the bivariate normal integral

.. math::

    C(0)-C(r) = \frac{1}{2\pi}\sum_{i,j} w_iw_j\int_0^{\arccos\rho(r)}
        \exp\!\left(-\frac{(t_i-t_j)^2}{2\sin^2v}-\frac{t_it_j}{2\cos^2(v/2)}\right)dv,

$w_1 = d_p-d_l$, $w_2 = d_l$ (for one level this is Berk's formula). The
intensity is

.. math::

    I(q) = \text{scale}\cdot10^{-4}\,d^3 F(qd) + \text{background}
    \quad[\text{cm}^{-1}],\qquad F = 4\pi\int_0^\infty r^2C(r)\frac{\sin qr}{qr}dr,

exact sum rule (Porod invariant)
$\int_0^\infty q^2I\,dq = 2\pi^2\times10^{-4}\sum_{i<j}\phi_i\phi_j(\rho_i-\rho_j)^2$.
With ``sld_layer = sld_pore`` (or ``= sld_solid``) the curve is exactly the
two-phase level cut of porosity $\phi_p+\phi_l$ (or $\phi_p$). Swapping pore and
solid (``pore_share`` $\to 1-$ ``pore_share`` with their SLDs) leaves the curve
unchanged ($\psi \to -\psi$).

Parameters
----------

- ``d`` [Å]: domain spacing of the field (period of its correlations).
- ``xi_over_d``: correlation length over spacing $\xi/d$, 0.05 to 2.

- ``layer_volume``: volume fraction $\phi_l$ of the layer, 0.001 to 0.9.
- ``pore_share``: the pore's share of the rest, $\phi_p/(1-\phi_l)$, 0.005 to
  0.995 (0.5: a layer centred between two equal volumes, e.g. a symmetric
  sponge phase). Every point of the box of limits is a valid structure.
- ``sld_pore``, ``sld_layer``, ``sld_solid`` [$10^{-6}$/Å$^2$].

Which model to use
------------------

Sponge phases and membrane (film) contrast of microemulsions: a broad peak
near $2\pi/d$ from the bicontinuous arrangement, modulated by the membrane's
thickness at higher $q$, and Porod's law at the highest $q$. With a symmetric
membrane (``pore_share`` 0.5, ``sld_pore = sld_solid``) only the membrane
scatters. For two phases use ``grf_two_phase_peaked``; for structures without
a peak ``grf_three_phase_broad``.

Numerics: exact up to quadrature (relative error below $10^{-4}$ for $qd$ in
[$10^{-4}$, $3\times10^3$]), continued by the local power law beyond. A layer
much thinner than $d/1000$ reaches its thin-sheet regime only beyond that range.

References
----------

#. M. Röding, P. Tomaszewski, S. Yu, M. Borg, J. Rönnols, *Machine
   learning-accelerated small-angle X-ray scattering analysis of disordered two-
   and three-phase materials*, Frontiers in Materials 9 (2022) 956839,
   doi:10.3389/fmats.2022.956839
#. M. Teubner, *Level surfaces of Gaussian random fields and microemulsions*,
   Europhys. Lett. 14 (1991) 403
#. N. F. Berk, *Scattering properties of a model bicontinuous structure with a
   well defined length scale*, Phys. Rev. Lett. 58 (1987) 2718
#. M. Teubner, R. Strey, *Origin of the scattering peak in microemulsions*,
   J. Chem. Phys. 87 (1987) 3195

Authorship and Verification
---------------------------

* **Author:** sasview-grf-plugin developers
* **Last Modified by:** sasview-grf-plugin developers
* **Last Reviewed by:** not yet reviewed
"""

import numpy as np
from numpy import inf

# standalone-export: begin exact
# `sasview-grf export-plugin --standalone` replaces this block with the evaluator's own source (spectra.py and
# ensemble/fastcut.py, NumPy and SciPy only).
from sasview_grf_plugin.ensemble.fastcut import check_contrasts as _check_contrasts
from sasview_grf_plugin.ensemble.fastcut import three_phase_curve as _three_phase_curve
from sasview_grf_plugin.spectra import PeakedSpectrum as _Spectrum

# standalone-export: end exact

__all__ = ["name", "title", "description", "category", "parameters", "Iq", "tests"]

name = "grf_three_phase_peaked"
title = "Membrane (sponge, film contrast) between two phases, with a correlation peak: band of a GRF (Berk)"
description = """\
Three phases, the middle one a membrane or layer: the band between two levels
of a Gaussian random field with a peaked (squared Teubner-Strey) spectrum
(sponge phases, film contrast of microemulsions). Exact ensemble mean,
absolute scale (cm^-1) from the SLDs.
"""
category = "shape-independent"

# ["name", "units", default, [lower, upper], "type", "description"]
parameters = [
    ["d", "Ang", 200.0, [1.0, 1e5], "", "domain spacing (period of the correlations)"],
    ["xi_over_d", "", 0.5, [0.05, 2.0], "", "correlation length over domain spacing, xi/d"],
    ["layer_volume", "", 0.1, [0.001, 0.9], "", "layer volume fraction"],
    ["pore_share", "", 0.5, [0.005, 0.995], "", "pore share of the non-layer volume, pore/(pore + solid)"],
    ["sld_pore", "1e-6/Ang^2", 6.4, [-inf, inf], "sld", "pore scattering length density"],
    ["sld_layer", "1e-6/Ang^2", 0.3, [-inf, inf], "sld", "layer scattering length density"],
    ["sld_solid", "1e-6/Ang^2", 6.4, [-inf, inf], "sld", "solid scattering length density"],
]


def Iq(q, d, xi_over_d, layer_volume, pore_share, sld_pore, sld_layer, sld_solid):
    """Absolute intensity (cm^-1) at q (1/Å)."""
    a = float(d)
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"d must be a finite length > 0 Å, got {a}")
    d_pore = float(sld_pore) - float(sld_solid)
    d_layer = float(sld_layer) - float(sld_solid)
    _check_contrasts(**{"sld_pore - sld_solid": d_pore, "sld_layer - sld_solid": d_layer})
    phi_l, share = float(layer_volume), float(pore_share)
    if not (0.0 < phi_l < 1.0 and 0.0 < share < 1.0):
        raise ValueError(f"layer_volume and pore_share must lie in (0, 1), got {phi_l}, {share}")
    q = np.asarray(q, dtype=np.float64)
    if np.any(q < 0) or not np.all(np.isfinite(q)):
        raise ValueError("q must be finite and >= 0 (1/Å)")
    f = _three_phase_curve(q * a, _Spectrum(float(xi_over_d)), share * (1.0 - phi_l), phi_l, d_pore, d_layer)
    return 1e-4 * a**3 * f


Iq.vectorized = True

# Targets of the first two tests: the exact curves by direct quadrature (sasview_grf_plugin.ensemble.levelcut,
# independent of this model's FFTLog evaluator), combined from the level cuts of the pore and of pore + layer and
# the band: I = 1e-4 d^3 [d_p^2 F_pore + d_l^2 F_band + d_p d_l (F_pore+layer - F_pore - F_band)]. Then: one
# SLD everywhere, no scattering; finite values far outside any measured range (resolution smearing).
tests = [
    [{"d": 200.0, "xi_over_d": 0.6, "layer_volume": 0.1, "pore_share": 0.5, "sld_pore": 6.4, "sld_layer": 0.3,
      "sld_solid": 6.4, "background": 0.0},
     [1e-4, 0.01, 0.025, 0.03, 0.04, 0.06, 0.1],
     [2.85714546e+01, 2.38467476e+01, 1.60172268e+01, 1.43632751e+01,
      1.16957543e+01, 6.59170323e+00, 1.96655771e+00]],
    [{"d": 150.0, "xi_over_d": 0.3, "layer_volume": 0.2, "pore_share": 0.3, "sld_pore": 0.0, "sld_layer": 3.0,
      "sld_solid": 6.0, "background": 0.0},
     [1e-4, 0.01, 0.025, 0.03, 0.04, 0.06, 0.1],
     [1.06055600e+02, 1.14425809e+02, 1.64331309e+02, 1.86743899e+02,
      1.85997100e+02, 3.62343822e+01, 2.51242531e+00]],
    [{"sld_pore": 2.0, "sld_layer": 2.0, "sld_solid": 2.0, "background": 0.0}, [1e-6, 0.05, 0.3, 2.0],
     [0.0, 0.0, 0.0, 0.0]],
    [{}, [0.0, 1e-6, 0.001, 0.05, 0.3, 5.0, 100.0], [None] * 7],
]
