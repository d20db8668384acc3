r"""
Two-phase porous or phase-separated material (pore and solid) modelled as the
level cut of a Gaussian random field (GRF) with a **broad** (Matérn)
spectral density: one shape parameter sets how gradually the curve crosses
over from its plateau to its high-$q$ law, and whether the interfaces are
smooth (Porod's $q^{-4}$) or rough (a surface-fractal $q^{-(3+\alpha)}$).
The **exact ensemble mean** (a macroscopic sample), deterministic, smooth in
every parameter, valid for every $q \ge 0$; no table, no smoothing.

Definition
----------

A GRF $\psi$ with the spectral density (Matérn)

.. math::

    \Gamma(q) = \left(1 + (a q)^2\right)^{-(\alpha + 3/2)},\qquad
    \rho(r) = \frac{2^{1-\alpha}}{\Gamma(\alpha)}\left(\frac{r}{a}\right)^{\alpha}
              K_\alpha\!\left(\frac{r}{a}\right)

is cut at its $\epsilon$ quantile $t = \Phi^{-1}(\epsilon)$: the pore is
$\{\psi < t\}$. The two-point function of the pore indicator is
(Berk 1987, Teubner 1991)

.. math::

    C(r) = \frac{1}{2\pi}\int_0^{\arcsin\rho(r)}
           \exp\!\left(-\frac{t^2}{1+\sin\theta}\right)d\theta,

and the intensity

.. math::

    I(q) = \text{scale}\cdot 10^{-4}\,(\rho_\text{pore}-\rho_\text{solid})^2\;
           a^3 F(qa;\alpha,\epsilon) + \text{background}
    \quad[\text{cm}^{-1}],\qquad F = 4\pi\int_0^\infty r^2 C(r)\,\frac{\sin qr}{qr}\,dr.

Limits (exact): a finite plateau at $q\to0$; the Porod invariant
$\int_0^\infty q^2 I\,dq = 2\pi^2\epsilon(1-\epsilon)\Delta\rho^2\times10^{-4}$
(so ``scale`` is a volume fraction as for SasView's built-in models); at high $q$:

* $\alpha > 1$ (smooth interfaces): Porod's law $I \to 2\pi S\Delta\rho^2\times10^{-4}/q^4$
  with Rice's interface area $S = (2/\pi)\sqrt{\lambda}\,e^{-t^2/2}$,
  $\lambda = 1/(2(\alpha-1)a^2)$;
* $\alpha < 1$ (rough, surface-fractal interfaces, $D_s = 3-\alpha$):
  $1-\rho \approx c\,(r/a)^{2\alpha}$, $c = \Gamma(1-\alpha)/(\Gamma(1+\alpha)4^\alpha)$,
  so $C(0)-C(r) \approx (e^{-t^2/2}/\pi)\sqrt{c/2}\,(r/a)^\alpha$ and
  $F \to 4\pi\,\Gamma(\alpha+2)\sin(\pi\alpha/2)\,(e^{-t^2/2}/\pi)\sqrt{c/2}\,(qa)^{-(3+\alpha)}$;
* $\alpha = 1$: $q^{-4}$ with a logarithmic correction; the model is smooth
  across $\alpha = 1$ (the asymptotic laws on either side only set in at ever
  larger $qa$ as $\alpha \to 1$).

Larger $\alpha$ also sharpens the knee (the spectrum falls as $q^{-(2\alpha+3)}$).

Parameters
----------

- ``a`` [Å]: Matérn range, the length scale of the structure.
- ``alpha``: smoothness, 0.1 to 4. Below 1: rough, fractal interfaces
  ($I\sim q^{-(3+\alpha)}$); above 1: smooth interfaces (Porod), a sharper knee
  as $\alpha$ grows.
- ``porosity``: pore volume fraction $\epsilon$. Babinet's principle makes
  $\epsilon$ and $1-\epsilon$ scatter identically, so the range stops at 0.5:
  for a majority pore phase the fitted value is the solid fraction.
- ``sld_pore``, ``sld_solid`` [$10^{-6}$/Å$^2$].

Which model to use
------------------

Porous solids and phase-separated materials without a correlation peak whose
curve crosses over gradually (where ``grf_two_phase``'s knee is too sharp, and
``dab`` fits), or whose high-$q$ tail is a power law between $q^{-3}$ and
$q^{-4}$ (coal, shale, cement, carbons). For a correlation peak use
``grf_two_phase_peaked``; for a third (interfacial) phase
``grf_three_phase_broad``.

Numerics: exact up to quadrature (relative error below $10^{-4}$ for $qa$ in
[$10^{-4}$, $3\times10^3$]), continued by the local power law beyond
(see the package documentation, "Spectral densities").

References
----------

#. M. Röding, P. Tomaszewski, S. Yu, M. Borg, J. Rönnols, *Machine
   learning-accelerated small-angle X-ray scattering analysis of disordered two-
   and three-phase materials*, Frontiers in Materials 9 (2022) 956839,
   doi:10.3389/fmats.2022.956839
#. N. F. Berk, *Scattering properties of the leveled-wave model of random
   morphologies*, Phys. Rev. A 44 (1991) 5069
#. M. Teubner, *Level surfaces of Gaussian random fields and microemulsions*,
   Europhys. Lett. 14 (1991) 403
#. S. O. Rice, *Mathematical analysis of random noise*, Bell Syst. Tech. J. 24
   (1945) 46
#. M. L. Stein, *Interpolation of Spatial Data: Some Theory for Kriging*,
   Springer (1999) (the Matérn class)

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
from sasview_grf_plugin.spectra import BroadSpectrum as _Spectrum

# standalone-export: end exact

__all__ = ["name", "title", "description", "category", "parameters", "Iq", "tests"]

name = "grf_two_phase_broad"
title = "Two-phase structure, level cut of a GRF with a broad (Matérn) spectrum: smooth or fractal interfaces"
description = """\
Pore and solid phases from the level cut of a Gaussian random field with the
Matern spectral density (1 + (a q)^2)^-(alpha + 3/2): exact ensemble mean,
absolute scale (cm^-1) from the SLDs. alpha < 1: rough (surface fractal,
I ~ q^-(3 + alpha)); alpha > 1: smooth (Porod).
"""
category = "shape-independent"

# ["name", "units", default, [lower, upper], "type", "description"]
parameters = [
    ["a", "Ang", 50.0, [1.0, 1e5], "", "Matern range (length scale)"],
    ["alpha", "", 1.5, [0.1, 4.0], "", "smoothness: < 1 rough (fractal D_s = 3 - alpha), > 1 smooth (Porod)"],
    ["porosity", "", 0.3, [0.005, 0.5], "", "pore volume fraction (minority phase; Babinet)"],
    ["sld_pore", "1e-6/Ang^2", 0.0, [-inf, inf], "sld", "pore scattering length density"],
    ["sld_solid", "1e-6/Ang^2", 10.0, [-inf, inf], "sld", "solid scattering length density"],
]


def Iq(q, a, alpha, porosity, sld_pore, sld_solid):
    """Absolute intensity (cm^-1) at q (1/Å)."""
    a = float(a)
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"a must be a finite length > 0 Å, got {a}")
    contrast = float(sld_pore) - float(sld_solid)
    _check_contrasts(**{"sld_pore - sld_solid": contrast})
    q = np.asarray(q, dtype=np.float64)
    if np.any(q < 0) or not np.all(np.isfinite(q)):
        raise ValueError("q must be finite and >= 0 (1/Å)")
    f = _two_phase_curve(q * a, _Spectrum(float(alpha)), float(porosity))
    return 1e-4 * contrast**2 * a**3 * f


Iq.vectorized = True

# Targets of the first two tests: the exact level cut by direct quadrature (sasview_grf_plugin.ensemble.levelcut,
# independent of this model's FFTLog evaluator), a = 50 Å, contrast 10e-6/Å^2, smooth (alpha 2.5, porosity 0.3)
# and rough (alpha 0.4, porosity 0.15). Then: no contrast, no scattering; finite values far outside any
# measured range (resolution smearing).
tests = [
    [{"a": 50.0, "alpha": 2.5, "porosity": 0.3, "sld_pore": 0.0, "sld_solid": 10.0, "background": 0.0},
     [1e-4, 0.005, 0.02, 0.05, 0.1, 0.2, 0.4],
     [3.21328518e+04, 2.54752656e+04, 2.57720609e+03, 7.08190230e+01,
      4.19469412e+00, 2.54799359e-01, 1.57775376e-02]],
    [{"a": 50.0, "alpha": 0.4, "porosity": 0.15, "sld_pore": 0.0, "sld_solid": 10.0, "background": 0.0},
     [1e-4, 0.005, 0.02, 0.05, 0.1, 0.2, 0.4],
     [1.39151738e+03, 1.24664541e+03, 4.05093855e+02, 4.59528496e+01,
      5.46979761e+00, 5.60465761e-01, 5.46913537e-02]],
    [{"sld_pore": 3.0, "sld_solid": 3.0, "background": 0.0}, [1e-6, 0.05, 0.3, 2.0], [0.0, 0.0, 0.0, 0.0]],
    [{}, [0.0, 1e-6, 0.001, 0.05, 0.3, 5.0, 100.0], [None] * 7],
]
