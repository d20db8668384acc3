r"""
Three-phase porous material in which one phase is a **layer between the other
two**: coated or lined pores, an interphase or oxide layer between pore and
solid, a binder film, with smooth or rough (surface-fractal) interfaces.
Modelled as the band between two levels of a Gaussian random field (GRF) with
a **broad** (Matérn) spectral density whose shape parameter $\alpha$ sets the
crossover width and the interface roughness: the **exact ensemble mean**,
deterministic, smooth in every parameter, valid for every $q \ge 0$.

The GRF's spectral density and correlation function are those of
``grf_two_phase_broad``:

.. math::

    \Gamma(q) = \left(1 + (a q)^2\right)^{-(\alpha + 3/2)},\qquad
    \rho(r) = \frac{2^{1-\alpha}}{\Gamma(\alpha)}\left(\frac{r}{a}\right)^{\alpha}
              K_\alpha\!\left(\frac{r}{a}\right).

For $\alpha > 1$ the interfaces are smooth (Porod's law); for $\alpha < 1$
rough, with $I \sim q^{-(3+\alpha)}$ at high $q$.

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

    I(q) = \text{scale}\cdot10^{-4}\,a^3 F(qa) + \text{background}
    \quad[\text{cm}^{-1}],\qquad F = 4\pi\int_0^\infty r^2C(r)\frac{\sin qr}{qr}dr,

exact sum rule (Porod invariant)
$\int_0^\infty q^2I\,dq = 2\pi^2\times10^{-4}\sum_{i<j}\phi_i\phi_j(\rho_i-\rho_j)^2$.
With ``sld_layer = sld_pore`` (or ``= sld_solid``) the curve is exactly the
two-phase level cut of porosity $\phi_p+\phi_l$ (or $\phi_p$). Swapping pore and
solid (``pore_share`` $\to 1-$ ``pore_share`` with their SLDs) leaves the curve
unchanged ($\psi \to -\psi$).

Parameters
----------

- ``a`` [Å]: Matérn range, the length scale of the structure.
- ``alpha``: smoothness, 0.1 to 4 (below 1 rough, fractal interfaces; above 1
  smooth, a sharper knee as it grows).

- ``layer_volume``: volume fraction $\phi_l$ of the layer, 0.001 to 0.9.
- ``pore_share``: the pore's share of the rest, $\phi_p/(1-\phi_l)$, 0.005 to
  0.995 (0.5: a layer centred between two equal volumes, e.g. a symmetric
  sponge phase). Every point of the box of limits is a valid structure.
- ``sld_pore``, ``sld_layer``, ``sld_solid`` [$10^{-6}$/Å$^2$].

Which model to use
------------------

Porous solids with a third phase along the pore walls (coatings, adsorbed or
condensed layers, interphases), without a correlation peak, where
``grf_three_phase`` (paper spectrum, smoothing-defined layer) is too sharp or
the tail is fractal. For a peak use ``grf_three_phase_peaked``.

Numerics: exact up to quadrature (relative error below $10^{-4}$ for $qa$ in
[$10^{-4}$, $3\times10^3$]), continued by the local power law beyond.

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
from sasview_grf_plugin.spectra import BroadSpectrum as _Spectrum

# standalone-export: end exact

__all__ = ["name", "title", "description", "category", "parameters", "Iq", "tests"]

name = "grf_three_phase_broad"
title = "Pore, layer and solid, the layer between pore and solid: band of a GRF with a broad (Matérn) spectrum"
description = """\
Pore, layer (coating, interphase) and solid: the band between two levels of a
Gaussian random field with the Matern spectrum (1 + (a q)^2)^-(alpha + 3/2).
Exact ensemble mean, absolute scale (cm^-1) from the SLDs; alpha < 1 rough
(fractal), alpha > 1 smooth (Porod) interfaces.
"""
category = "shape-independent"

# ["name", "units", default, [lower, upper], "type", "description"]
parameters = [
    ["a", "Ang", 50.0, [1.0, 1e5], "", "Matern range (length scale)"],
    ["alpha", "", 1.5, [0.1, 4.0], "", "smoothness: < 1 rough (fractal D_s = 3 - alpha), > 1 smooth (Porod)"],
    ["layer_volume", "", 0.1, [0.001, 0.9], "", "layer volume fraction"],
    ["pore_share", "", 0.4, [0.005, 0.995], "", "pore share of the non-layer volume, pore/(pore + solid)"],
    ["sld_pore", "1e-6/Ang^2", 0.0, [-inf, inf], "sld", "pore scattering length density"],
    ["sld_layer", "1e-6/Ang^2", 5.0, [-inf, inf], "sld", "layer scattering length density"],
    ["sld_solid", "1e-6/Ang^2", 10.0, [-inf, inf], "sld", "solid scattering length density"],
]


def Iq(q, a, alpha, layer_volume, pore_share, sld_pore, sld_layer, sld_solid):
    """Absolute intensity (cm^-1) at q (1/Å)."""
    a = float(a)
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"a must be a finite length > 0 Å, got {a}")
    d_pore = float(sld_pore) - float(sld_solid)
    d_layer = float(sld_layer) - float(sld_solid)
    _check_contrasts(**{"sld_pore - sld_solid": d_pore, "sld_layer - sld_solid": d_layer})
    phi_l, share = float(layer_volume), float(pore_share)
    if not (0.0 < phi_l < 1.0 and 0.0 < share < 1.0):
        raise ValueError(f"layer_volume and pore_share must lie in (0, 1), got {phi_l}, {share}")
    q = np.asarray(q, dtype=np.float64)
    if np.any(q < 0) or not np.all(np.isfinite(q)):
        raise ValueError("q must be finite and >= 0 (1/Å)")
    f = _three_phase_curve(q * a, _Spectrum(float(alpha)), share * (1.0 - phi_l), phi_l, d_pore, d_layer)
    return 1e-4 * a**3 * f


Iq.vectorized = True

# Targets of the first two tests: the exact curves by direct quadrature (sasview_grf_plugin.ensemble.levelcut,
# independent of this model's FFTLog evaluator), combined from the level cuts of the pore and of pore + layer and
# the band: I = 1e-4 a^3 [d_p^2 F_pore + d_l^2 F_band + d_p d_l (F_pore+layer - F_pore - F_band)]. Then: one
# SLD everywhere, no scattering; finite values far outside any measured range (resolution smearing).
tests = [
    [{"a": 50.0, "alpha": 1.5, "layer_volume": 0.1, "pore_share": 0.4, "sld_pore": 0.0, "sld_layer": 5.0,
      "sld_solid": 10.0, "background": 0.0},
     [1e-4, 0.005, 0.02, 0.05, 0.1, 0.15, 0.25],
     [1.91219867e+04, 1.60021197e+04, 2.60522666e+03, 1.02952295e+02,
      6.15455911e+00, 1.02892283e+00, 8.49927676e-02]],
    [{"a": 80.0, "alpha": 0.6, "layer_volume": 0.05, "pore_share": 0.6, "sld_pore": 1.0, "sld_layer": 4.0,
      "sld_solid": -2.0, "background": 0.0},
     [1e-4, 0.005, 0.02, 0.05, 0.1, 0.15, 0.25],
     [2.00306916e+03, 1.47545515e+03, 1.55106167e+02, 8.48869042e+00,
      8.17064267e-01, 2.08963342e-01, 3.86479380e-02]],
    [{"sld_pore": 2.0, "sld_layer": 2.0, "sld_solid": 2.0, "background": 0.0}, [1e-6, 0.05, 0.3, 2.0],
     [0.0, 0.0, 0.0, 0.0]],
    [{}, [0.0, 1e-6, 0.001, 0.05, 0.3, 5.0, 100.0], [None] * 7],
]
