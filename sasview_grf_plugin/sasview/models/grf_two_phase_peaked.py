r"""
Bicontinuous or phase-separated two-phase structure (microemulsion, spinodal
or polymer blend, interpenetrating porous network) modelled as the level cut
of a Gaussian random field (GRF) with a **peaked** spectral density: a domain
spacing $d$ and a correlation length $\xi$, as in Teubner-Strey; the level cut
of such a field is Berk's model of microemulsions (Berk 1987).
The **exact ensemble mean** (a macroscopic sample), deterministic, smooth in
every parameter, valid for every $q \ge 0$; no table, no smoothing.

Definition
----------

A GRF $\psi$ with the spectral density (the square of Teubner-Strey's)

.. math::

    \Gamma(q) \propto \left[\left(q^2 - k^2 + \kappa^2\right)^2 + 4k^2\kappa^2\right]^{-2},
    \qquad k = 2\pi/d,\quad \kappa = 1/\xi,

whose normalized correlation function is, in closed form,

.. math::

    \rho(r) = e^{-r/\xi}\left[\left(1+\frac{\kappa^2}{k^2}\right)\frac{\sin kr}{kr}
               + \frac{\kappa}{k}\sin kr - \frac{\kappa^2}{k^2}\cos kr\right],

is cut at its $\epsilon$ quantile $t = \Phi^{-1}(\epsilon)$: the pore is
$\{\psi < t\}$. The two-point function of the pore indicator is
(Berk 1987, Teubner 1991)

.. math::

    C(r) = \frac{1}{2\pi}\int_0^{\arcsin\rho(r)}
           \exp\!\left(-\frac{t^2}{1+\sin\theta}\right)d\theta,

and the intensity

.. math::

    I(q) = \text{scale}\cdot 10^{-4}\,(\rho_\text{pore}-\rho_\text{solid})^2\;
           d^3 F(qd;\xi/d,\epsilon) + \text{background}
    \quad[\text{cm}^{-1}],\qquad F = 4\pi\int_0^\infty r^2 C(r)\,\frac{\sin qr}{qr}\,dr.

Squaring Teubner-Strey's spectrum keeps its poles ($\rho$ oscillates with
period $d$ and decays over $\xi$) but makes $\Gamma \sim q^{-8}$, so the
field's fourth moment is finite: the level surfaces are smooth and Porod's law
holds with Rice's interface area $S = (2/\pi)\sqrt{\lambda}\,e^{-t^2/2}$,
$\lambda = (k^2+\kappa^2)/3$. (With Teubner-Strey's own $q^{-4}$ spectrum,
$\lambda$ is infinite and a level cut has no finite interface area.)

Limits (exact): a finite plateau at $q \to 0$; the Porod invariant
$\int_0^\infty q^2 I\,dq = 2\pi^2\epsilon(1-\epsilon)\Delta\rho^2\times10^{-4}$
(so ``scale`` is a volume fraction); Porod's law
$I \to 2\pi S\Delta\rho^2\times10^{-4}/q^4$. The spectrum peaks at
$q^* = \sqrt{k^2 - \kappa^2}$ (for $\xi/d > 1/2\pi$); the intensity peaks
within 1 % of $q^*$ for $\xi/d \ge 0.5$ and $0.3 \le \epsilon \le 0.5$, a little
below it for weaker order or very unequal phases.

Parameters
----------

- ``d`` [Å]: domain spacing (period of the correlation function; the peak is
  near $2\pi/d$ for well-ordered structures).
- ``xi_over_d``: correlation length over spacing, $\xi/d$, 0.05 to 2 (a
  dimensionless ratio so that the two limits are independent; $\xi$ = ``xi_over_d`` $\cdot$ ``d``).
  Below $1/2\pi \approx 0.16$ the spectrum has no peak (a DAB-like curve).
- ``porosity``: volume fraction $\epsilon$ of the pore (or of one of the two
  phases). Babinet: $\epsilon$ and $1-\epsilon$ scatter identically, so the
  range stops at 0.5.
- ``sld_pore``, ``sld_solid`` [$10^{-6}$/Å$^2$].

Which model to use
------------------

Samples with a correlation peak: bicontinuous microemulsions (bulk contrast),
spinodally decomposed blends and glasses, microphase-separated polymers, porous
networks with a preferred spacing, where ``teubner_strey`` is the built-in
alternative. Unlike Teubner-Strey, this is the scattering of an actual
two-phase structure: sharp interfaces, Porod's $q^{-4}$ tail, the invariant
fixed by the volume fractions, and any composition. For a film (membrane) contrast
use ``grf_three_phase_peaked``.

Numerics: exact up to quadrature (relative error below $10^{-4}$ for $qd$ in
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
from sasview_grf_plugin.ensemble.fastcut import two_phase_curve as _two_phase_curve
from sasview_grf_plugin.spectra import PeakedSpectrum as _Spectrum

# standalone-export: end exact

__all__ = ["name", "title", "description", "category", "parameters", "Iq", "tests"]

name = "grf_two_phase_peaked"
title = "Bicontinuous two-phase structure with a correlation peak: level cut of a GRF (Berk, Teubner-Strey)"
description = """\
Two phases from the level cut of a Gaussian random field with a peaked
(squared Teubner-Strey) spectrum: domain spacing d, correlation length
xi = xi_over_d * d (Berk's microemulsion model). Exact ensemble mean, sharp
interfaces (Porod), absolute scale (cm^-1) from the SLDs.
"""
category = "shape-independent"

# ["name", "units", default, [lower, upper], "type", "description"]
parameters = [
    ["d", "Ang", 200.0, [1.0, 1e5], "", "domain spacing (period of the correlations)"],
    ["xi_over_d", "", 0.5, [0.05, 2.0], "", "correlation length over domain spacing, xi/d"],
    ["porosity", "", 0.3, [0.005, 0.5], "", "pore volume fraction (minority phase; Babinet)"],
    ["sld_pore", "1e-6/Ang^2", 0.0, [-inf, inf], "sld", "pore scattering length density"],
    ["sld_solid", "1e-6/Ang^2", 10.0, [-inf, inf], "sld", "solid scattering length density"],
]


def Iq(q, d, xi_over_d, porosity, sld_pore, sld_solid):
    """Absolute intensity (cm^-1) at q (1/Å)."""
    a = float(d)
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"d must be a finite length > 0 Å, got {a}")
    contrast = float(sld_pore) - float(sld_solid)
    _check_contrasts(**{"sld_pore - sld_solid": contrast})
    q = np.asarray(q, dtype=np.float64)
    if np.any(q < 0) or not np.all(np.isfinite(q)):
        raise ValueError("q must be finite and >= 0 (1/Å)")
    f = _two_phase_curve(q * a, _Spectrum(float(xi_over_d)), float(porosity))
    return 1e-4 * contrast**2 * a**3 * f


Iq.vectorized = True

# Targets of the first two tests: the exact level cut by direct quadrature (sasview_grf_plugin.ensemble.levelcut,
# independent of this model's FFTLog evaluator), d = 200 Å, contrast 10e-6/Å^2: xi/d = 0.5, porosity 0.5 (peak
# near 2 pi/d = 0.0314/Å) and xi/d = 0.2, porosity 0.2. Then: no contrast, no scattering; finite values far
# outside any measured range (resolution smearing).
tests = [
    [{"d": 200.0, "xi_over_d": 0.5, "porosity": 0.5, "sld_pore": 0.0, "sld_solid": 10.0, "background": 0.0},
     [1e-4, 0.01, 0.025, 0.03, 0.035, 0.06, 0.1],
     [3.83390009e+02, 4.69797734e+02, 1.73531846e+03, 2.33633649e+03,
      1.43822376e+03, 5.06548098e+01, 7.79084906e+00]],
    [{"d": 200.0, "xi_over_d": 0.2, "porosity": 0.2, "sld_pore": 0.0, "sld_solid": 10.0, "background": 0.0},
     [1e-4, 0.01, 0.025, 0.03, 0.035, 0.06, 0.1],
     [7.53401307e+02, 7.75409776e+02, 7.43622443e+02, 6.35726832e+02,
      4.84556195e+02, 6.39257378e+01, 7.05795765e+00]],
    [{"sld_pore": 3.0, "sld_solid": 3.0, "background": 0.0}, [1e-6, 0.05, 0.3, 2.0], [0.0, 0.0, 0.0, 0.0]],
    [{}, [0.0, 1e-6, 0.001, 0.05, 0.3, 5.0, 100.0], [None] * 7],
]
