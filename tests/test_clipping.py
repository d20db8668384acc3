"""Non-parametric route: inverting the clipping relation of a level cut."""

from __future__ import annotations

import numpy as np
import pytest

from sasview_grf_plugin.clipping import clipping_inversion, correlation_function, spectrum_from_correlation
from sasview_grf_plugin.ensemble.levelcut import grf_correlation, levelcut_correlation
from sasview_grf_plugin.ensemble.table import load_table


def levelcut_curve(qa, porosity):
    # The shipped table at smoothing 0 is the exact level cut (Berk), to 1e-6, and fast to evaluate.
    return load_table().intensity(qa, porosity, 0.0, 0.0, 1.0, 0.0)


@pytest.mark.parametrize("porosity", [0.15, 0.3, 0.5])
def test_inversion_recovers_the_grf_correlation_of_an_exact_level_cut(porosity):
    # The exact level-cut curve (a = 40 Å) on q a = 0.02-20: the inversion must give back the GRF's own
    # correlation rho(r), which no step of it was told.
    a = 40.0
    q = np.geomspace(0.02, 20.0, 400) / a
    intensity = a**3 * levelcut_curve(q * a, porosity)
    r = np.linspace(0.5, 600.0, 300)
    gamma, rho = clipping_inversion(q, intensity, porosity, r)
    c, _ = levelcut_correlation(r / a, porosity)
    np.testing.assert_allclose(gamma, c / (porosity * (1 - porosity)), atol=2e-3)
    np.testing.assert_allclose(rho, grf_correlation(r / a)[0], atol=2e-3)


def test_a_narrow_q_window_still_gives_the_correlation_to_a_few_per_cent():
    a = 40.0
    q = np.geomspace(0.2, 8.0, 150) / a  # a data-like window: no plateau, Porod only from q a ~ 3
    gamma, rho = clipping_inversion(q, a**3 * levelcut_curve(q * a, 0.3), 0.3, np.linspace(5.0, 300.0, 60))
    assert np.max(np.abs(rho - grf_correlation(np.linspace(5.0, 300.0, 60) / a)[0])) < 0.05


def test_bad_input():
    q = np.linspace(0.01, 0.3, 50)
    with pytest.raises(ValueError, match="porosity must lie in"):
        clipping_inversion(q, 1 / (1 + q**4), 1.2, [10.0])
    with pytest.raises(ValueError, match="positive everywhere"):
        correlation_function(q, np.where(q > 0.2, -1.0, 1.0), [10.0])


def test_spectrum_from_the_correlation_is_the_papers_density():
    r = np.linspace(0.0, 40.0, 4001)  # units of a
    k = np.array([0.01, 0.3, 0.6, 0.9, 1.0, 1.2, 1.5])
    g = spectrum_from_correlation(r, grf_correlation(r)[0], k)
    np.testing.assert_allclose(g / g[0], 1 / (1 + k**8) ** 2, rtol=2e-3, atol=1e-6)
