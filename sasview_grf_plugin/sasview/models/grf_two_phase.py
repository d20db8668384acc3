r"""
Two-phase porous material (pore and solid) modelled as a thresholded Gaussian
random field (GRF), after Röding et al. (2022): the **ensemble-mean** scattering
of that structure, i.e. what a macroscopic sample (billions of independent
regions) scatters. Deterministic, smooth in every parameter, valid for every
$q \ge 0$, and evaluated from a precomputed table in a fraction of a millisecond.

Definition
----------

A GRF $\psi$ has the spectral density

.. math::

    \Gamma(q) = \left(1 + (a q)^8\right)^{-2}.

The pore is where $\psi$ lies below its $\epsilon$ quantile (``porosity``). That
binary field is smoothed by a Gaussian of standard deviation
$\sigma = s\,a$ (``smoothing_ratio`` $s$) and thresholded again at its
$\epsilon$ quantile, so the pore fraction stays $\epsilon$ (the paper uses
$\sigma$ = 2 voxels of 5 Å = 10 Å, i.e. $s$ = 0.2 at $a$ = 50 Å).
With $\sigma = 0$ the structure is the classical level cut (clipped GRF), whose
two-point function is known in closed form (Berk 1987, Teubner 1991):

.. math::

    C(r) = \frac{1}{2\pi}\int_0^{\arcsin\rho(r)}
           \exp\!\left(-\frac{t^2}{1+\sin\theta}\right)d\theta,\qquad
    t = \Phi^{-1}(\epsilon),

with $\rho(r)$ the normalized Fourier transform of $\Gamma$. The intensity is

.. math::

    I(q) = \text{scale}\cdot 10^{-4}\,(\rho_\text{pore}-\rho_\text{solid})^2\;
           a^3 F(qa;\epsilon,s) + \text{background}
    \quad[\text{cm}^{-1}],

where $F = 4\pi\int r^2 C(r)\,\mathrm{sinc}(qr)\,dr$ per unit volume. For
$\sigma > 0$, $F$ comes from a table made by this package's own FFT simulator
(ratio estimators against the exact level cut on the same random fields, box
and voxel effects removed; see the package documentation for the accuracy).
Exact limits hold: a finite plateau at $q \to 0$, Porod's law
$I \to 2\pi S\,\Delta\rho^2\times10^{-4}/q^4$ at high $q$ ($S$ the interface area
per volume in Å$^{-1}$), and the Porod invariant
$\int_0^\infty q^2 I\,dq = 2\pi^2\epsilon(1-\epsilon)\Delta\rho^2\times10^{-4}$
(so ``scale`` is a volume fraction as for SasView's built-in models).

Parameters
----------

- ``a`` [Å]: scaling parameter of $\Gamma$, the structure's length scale
  (typical pore-to-pore distances are a few $a$).
- ``porosity``: pore volume fraction $\epsilon$. Babinet's principle makes
  $\epsilon$ and $1-\epsilon$ scatter identically, so the model's range stops at
  0.5: for a sample whose pores are the majority phase, the fitted value is the
  solid fraction (swap the two SLDs to read it as the pore fraction).
- ``smoothing_ratio``: $s = \sigma/a$, the Gaussian smoothing's $\sigma$ in
  units of $a$, from 0 (the exact level cut) to 1.25; the smoothing in Å is
  $s\,a$. A ratio, so that every value inside the limits of ``a`` and
  ``smoothing_ratio`` is a valid structure (fits move each freely).
- ``sld_pore``, ``sld_solid`` [$10^{-6}$/Å$^2$].

Which model to use
------------------

Use this model to fit measurements. ``grf_two_phase_sim`` simulates one
finite box (one realization) on a voxel grid, as in the paper: its curve
scatters between realizations and depends on the grid; use it to reproduce the
paper's voxel model or to study realizations.

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

# standalone-export: begin table
# `sasview-grf export-plugin --standalone` replaces this block with the evaluator's own source (ensemble/table.py,
# NumPy and SciPy only) and a _table() that reads the table file beside the exported model file.
from sasview_grf_plugin.ensemble.table import load_table as _table

# standalone-export: end table

__all__ = ["name", "title", "description", "category", "parameters", "Iq", "tests"]

name = "grf_two_phase"
title = "Two-phase porous structure from a thresholded Gaussian random field (ensemble mean)"
description = """\
Two-phase porous material (pore + solid), e.g. a pressed powder, a porous glass, a
gel or a bicontinuous mixture: a thresholded, smoothed Gaussian random field (GRF)
with spectral density (1 + (a q)^8)^-2 (Roding et al. 2022). Ensemble-mean
intensity of a macroscopic sample, absolute scale (cm^-1) from the SLDs: plateau at
low q, a broad shoulder near q ~ 1/a, Porod's law q^-4 at high q.
Use it to fit a disordered two-phase structure with one characteristic length.
Parameters:
  a [Ang]          length scale of the structure (pore-to-pore distances are a few a)
  porosity [-]     pore volume fraction, 0.02-0.5 (the minority phase: eps and 1-eps
                   scatter alike; for a majority pore phase the value is the solid's)
  smoothing_ratio [-]  Gaussian smoothing sigma / a, 0 (sharp level cut) to 1.25;
                   the smoothing in Ang is smoothing_ratio * a (paper: 10 Ang)
  sld_pore, sld_solid [1e-6/Ang^2]  scattering length densities
  scale [-]        volume fraction of the material in the beam (1 for a bulk sample)
Every value inside the parameter limits is valid: fit a, porosity and
smoothing_ratio freely. Add power_law (grf_two_phase+power_law) for a low-q upturn.
Help: sasview-grf-plugin docs, page "SasView models"; in a Python shell:
help("sasview_grf_plugin.sasview.models.grf_two_phase"); paper:
https://doi.org/10.3389/fmats.2022.956839
"""
category = "shape-independent"

# ["name", "units", default, [lower, upper], "type", "description"]
# Every point of this box is a valid structure (the table's domain is in q a and sigma / a): SasView's and
# bumps' fitters, whose ranges are per parameter, can move each parameter freely.
parameters = [
    ["a", "Ang", 50.0, [1.0, 1e5], "", "GRF length scale a [Ang]: pore-to-pore distances are a few a"],
    ["porosity", "", 0.3, [0.02, 0.5], "", "pore volume fraction (minority phase, 0.02-0.5; Babinet)"],
    ["smoothing_ratio", "", 0.2, [0.0, 1.25], "",
     "Gaussian smoothing sigma / a (0: sharp level cut); smoothing [Ang] = smoothing_ratio * a"],
    ["sld_pore", "1e-6/Ang^2", 0.0, [-inf, inf], "sld", "pore scattering length density [1e-6/Ang^2]"],
    ["sld_solid", "1e-6/Ang^2", 10.0, [-inf, inf], "sld", "solid scattering length density [1e-6/Ang^2]"],
]


def Iq(q, a, porosity, smoothing_ratio, sld_pore, sld_solid):
    """Absolute intensity (cm^-1) at q (1/Å)."""
    a = float(a)
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"a must be a finite length > 0 Å, got {a}")
    contrast = float(sld_pore) - float(sld_solid)
    if not (np.isfinite(contrast) and abs(contrast) <= 1e100):  # beyond 1e100 the intensity overflows to inf
        raise ValueError(f"SLDs must be finite with |sld_pore - sld_solid| <= 1e100 (1e-6/Å^2; physical SLDs are "
                         f"below ~1e3), got sld_pore={sld_pore}, sld_solid={sld_solid}")
    q = np.asarray(q, dtype=np.float64)
    if np.any(q < 0) or not np.all(np.isfinite(q)):
        raise ValueError("q must be finite and >= 0 (1/Å)")
    a_lo, a_hi = parameters[0][3]
    if not a_lo <= a <= a_hi:
        raise ValueError(f"a = {a:g} Å is outside the model's limits [{a_lo:g}, {a_hi:g}] Å")
    f = _table().intensity(q * a, float(porosity), 0.0, float(smoothing_ratio), contrast, 0.0)
    return 1e-4 * a**3 * f


Iq.vectorized = True

# Targets of the first test: the exact level cut (smoothing_ratio 0) from sasview_grf_plugin.ensemble.levelcut,
# a = 50 Å, porosity 0.3, contrast 10e-6/Å^2 (scale 1, background 0). Then: no contrast, no scattering;
# Babinet's symmetry of the SLDs; finite values far outside any measured range (resolution smearing).
tests = [
    [{"a": 50.0, "porosity": 0.3, "smoothing_ratio": 0.0, "sld_pore": 0.0, "sld_solid": 10.0, "background": 0.0},
     [1e-4, 0.005, 0.02, 0.05, 0.1, 0.3],
     [1.32314835e+04, 1.31195627e+04, 3.72459500e+03, 5.14295765e+01, 3.13916040e+00, 3.85239921e-02]],
    [{"sld_pore": 3.0, "sld_solid": 3.0, "background": 0.0}, [1e-6, 0.05, 0.3, 2.0], [0.0, 0.0, 0.0, 0.0]],
    [{}, [0.0, 1e-6, 0.001, 0.05, 0.3, 5.0, 100.0], [None] * 7],
]
