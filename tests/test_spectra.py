"""Spectral densities (sasview_grf_plugin.spectra), the exact level sets of any spectrum (levelcut, fastcut) and
the exact SasView models built on them (grf_two_phase_broad/peaked, grf_three_phase_broad/peaked)."""

import math

import numpy as np
import pytest
from conftest import assert_spectrum_follows_gamma
from scipy.integrate import quad
from scipy.special import gamma, ndtri

from sasview_grf_plugin.ensemble import fastcut as fc
from sasview_grf_plugin.ensemble import levelcut as lc
from sasview_grf_plugin.sasview import model_path
from sasview_grf_plugin.simulator import SimulationConfig, spectral_density
from sasview_grf_plugin.spectra import (
    BroadSpectrum,
    PaperSpectrum,
    PeakedSpectrum,
    as_spectrum,
    get_spectrum,
    matern_one_minus,
)

Q_LOG = np.geomspace(1e-4, 3e3, 4000)
SPECS = [BroadSpectrum(0.3), BroadSpectrum(1.0), BroadSpectrum(2.5), PeakedSpectrum(0.2), PeakedSpectrum(1.0)]


def _hankel(spec, r):
    """rho(r) by adaptive quadrature of (1/2 pi^2) int q^2 Gamma sinc(q r) dq (QUADPACK's Fourier rule)."""
    g0 = quad(lambda q: q * q * spec.density(q, 1.0), 0, np.inf, limit=400)[0]
    gr = quad(lambda q: q * spec.density(q, 1.0) / r, 0, np.inf, weight="sin", wvar=r, limlst=200)[0]
    return gr / g0


def _invariant(q, f):
    """int_0^inf q^2 F dq on a log grid, flat below, the local power law above."""
    slope = math.log(f[-1] / f[-2]) / math.log(q[-1] / q[-2])
    x = np.log(q)
    return np.trapezoid(q**3 * f, x) + q[0] ** 3 * f[0] / 3 + f[-1] * q[-1] ** 3 / (-slope - 3)


# -- the spectra ----------------------------------------------------------------------------------------------

def test_names_parameters_and_errors():
    assert get_spectrum("broad", alpha=0.5) == BroadSpectrum(0.5)
    assert hash(BroadSpectrum(0.5)) == hash(BroadSpectrum(0.5)) and BroadSpectrum(0.5) != PeakedSpectrum(0.5)
    assert as_spectrum(None) == PaperSpectrum() and as_spectrum("peaked") == PeakedSpectrum()
    with pytest.raises(ValueError, match="unknown spectrum 'matern'; available: paper, broad, peaked"):
        get_spectrum("matern")
    with pytest.raises(ValueError, match="spectrum 'broad' takes alpha; got nu"):
        get_spectrum("broad", nu=1.0)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0.1, 4.0\], got 5"):
        BroadSpectrum(5)
    with pytest.raises(ValueError, match=r"xi_over_d must lie in \[0.05, 2.0\], got nan"):
        PeakedSpectrum(float("nan"))
    with pytest.raises(AttributeError, match="immutable"):
        BroadSpectrum(1.5).alpha = 2.0


def test_paper_spectrum_is_the_simulators_and_unchanged():
    q = np.geomspace(1e-3, 10, 50)
    np.testing.assert_array_equal(spectral_density(q, 1.7), 1.0 / (1.0 + (1.7 * q) ** 8) ** 2)
    np.testing.assert_array_equal(PaperSpectrum().density(q, 1.7), spectral_density(q, 1.7, "paper"))
    assert lc.spectral_moment() == PaperSpectrum().spectral_moment


@pytest.mark.parametrize("spec", SPECS + [PaperSpectrum()], ids=repr)
def test_correlation_closed_forms_against_the_hankel_transform(spec):
    rho, om = spec.correlation(np.array([0.0, 1e-9]))
    assert rho[0] == 1.0 and om[0] == 0.0 and 0 < om[1] < 1e-2 and rho[1] == 1.0 - om[1]
    for r in (0.05, 0.4, 1.3, 3.0):
        assert spec.correlation(np.array([r]))[0][0] == pytest.approx(_hankel(spec, r), abs=2e-7), r


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.999, 1.0, 1.001, 2.5, 4.0])
def test_matern_small_r_without_cancellation(alpha):
    from scipy.special import kv

    x = np.geomspace(1e-6, 0.99, 40)
    om = matern_one_minus(x, alpha)
    direct = 1 - 2 ** (1 - alpha) / gamma(alpha) * x**alpha * kv(alpha, x)
    big = direct > 1e-4  # where the direct formula keeps its digits
    np.testing.assert_allclose(om[big], direct[big], rtol=1e-10)
    # The exact small-r laws: c x^(2 alpha) (alpha < 1), x^2 / (4 (alpha - 1)) (alpha > 1).
    spec = BroadSpectrum(alpha)
    if alpha < 0.9:
        assert om[0] / (spec.rough_coefficient * x[0] ** (2 * alpha)) == pytest.approx(1, rel=1e-3)
    elif alpha > 1.1:
        assert om[0] / (spec.spectral_moment * x[0] ** 2 / 2) == pytest.approx(1, rel=1e-6)
    assert np.all(np.diff(om) > 0)


@pytest.mark.parametrize("spec", [BroadSpectrum(1.5), BroadSpectrum(3.0), PeakedSpectrum(0.2), PeakedSpectrum(2.0),
                                  PaperSpectrum()], ids=repr)
def test_spectral_moment_is_the_ratio_of_moments(spec):
    m2 = quad(lambda q: q**2 * spec.density(q, 1.0), 0, np.inf, limit=400)[0]
    m4 = quad(lambda q: q**4 * spec.density(q, 1.0), 0, np.inf, limit=400)[0]
    assert spec.spectral_moment == pytest.approx(m4 / (3 * m2), rel=1e-6)
    assert spec.second_moment == pytest.approx(m2, rel=1e-6)
    assert BroadSpectrum(0.8).spectral_moment == math.inf and BroadSpectrum(0.8).small_r_exponent == 1.6


@pytest.mark.parametrize("ratio", [0.2, 0.5, 2.0])
def test_peak_of_the_peaked_spectrum(ratio):
    spec = PeakedSpectrum(ratio)
    q = np.linspace(0.01, 12, 200001)
    assert q[np.argmax(spec.density(q, 1.0))] == pytest.approx(spec.peak_position, abs=1e-4)
    assert PeakedSpectrum(0.1).peak_position is None  # xi / d < 1 / (2 pi): maximum at q = 0


# -- exact level sets: the fast evaluator against direct quadrature --------------------------------------------

@pytest.mark.parametrize(("spec", "lo", "hi"), [
    (BroadSpectrum(0.3), 0.0, 0.4), (BroadSpectrum(1.0), 0.0, 0.1), (BroadSpectrum(2.5), 0.0, 0.02),
    (PeakedSpectrum(0.05), 0.0, 0.2), (PeakedSpectrum(0.6), 0.45, 0.55), (BroadSpectrum(1.5), 0.36, 0.46),
    (PeakedSpectrum(2.0), 0.2, 0.5), (PaperSpectrum(), 0.0, 0.3)], ids=str)
def test_fast_evaluator_equals_direct_quadrature(spec, lo, hi):
    q = np.geomspace(1e-4, 50, 40)  # the direct quadrature's own error reaches 1e-4 near q a = 100
    slow = lc.band_curve(q, lo, hi, spec)
    fast = fc.level_set_curve(q, spec, [hi], [1.0]) if lo == 0 else fc.level_set_curve(q, spec, [lo, hi], [-1, 1])
    np.testing.assert_allclose(fast, slow, rtol=1e-4)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@pytest.mark.parametrize(("fractions", "weights"), [([0.3], [1.0]), ([0.02], [1.0]), ([0.2, 0.3], [2.0, -0.7]),
                                                    ([0.4, 0.9], [1.0, 1.0])])
def test_porod_invariant_plateau_and_finiteness(spec, fractions, weights):
    f = fc.level_set_curve(Q_LOG, spec, fractions, weights)
    p, w = np.array(fractions), np.array(weights)
    var = sum(w[i] * w[j] * (p[min(i, j)] - p[i] * p[j]) for i in range(p.size) for j in range(p.size))
    if len(p) == 2 and spec.small_r_exponent < 1:
        # A thin band of a rough field (alpha < 1/2) has not reached its fractal law q^-(3+alpha) by q a = 3e3,
        # where the exact range ends, and q^2 F decays so slowly that the continued tail carries a large part
        # of the invariant: there only the exact range is checked (it holds less than the whole).
        assert np.trapezoid(Q_LOG**3 * f, np.log(Q_LOG)) < 2 * math.pi**2 * var
    else:
        assert _invariant(Q_LOG, f) == pytest.approx(2 * math.pi**2 * var, rel=5e-3)
    assert abs(f[1] / f[0] - 1) < 1e-5
    extreme = fc.level_set_curve(np.array([0.0, 1e-12, 1e6, 1e12]), spec, fractions, weights)
    assert np.all(np.isfinite(extreme)) and np.all(extreme > 0) and extreme[0] == pytest.approx(f[0], rel=1e-6)


@pytest.mark.parametrize("spec", [BroadSpectrum(1.5), BroadSpectrum(3.0), PeakedSpectrum(0.3), PeakedSpectrum(1.5)],
                         ids=repr)
@pytest.mark.parametrize(("lo", "hi"), [(0.0, 0.3), (0.0, 0.05), (0.3, 0.5)])
def test_porod_constant_is_rices_area(spec, lo, hi):
    q = np.array([1e3, 3e3])
    f = fc.level_set_curve(q, spec, [hi], [1.0]) if lo == 0 else fc.level_set_curve(q, spec, [lo, hi], [-1, 1])
    np.testing.assert_allclose(f * q**4, 2 * math.pi * lc.interface_area(lo, hi, spec), rtol=1e-2)


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("eps", [0.1, 0.3, 0.5])
def test_surface_fractal_exponent_and_amplitude(alpha, eps):
    # C(0) - C(r) ~ (e^(-t^2/2) / pi) sqrt(c/2) r^alpha  =>  F ~ 4 pi K Gamma(alpha + 2) sin(pi alpha / 2) q^-(3+alpha)
    spec = BroadSpectrum(alpha)
    t = ndtri(eps)
    k = math.exp(-t * t / 2) / math.pi * math.sqrt(spec.rough_coefficient / 2)
    amp = 4 * math.pi * k * gamma(alpha + 2) * math.sin(math.pi * alpha / 2)
    q = np.array([3e3, 3e3 * 1.001])
    f = fc.two_phase_curve(q, spec, eps)
    assert f[0] * q[0] ** (3 + alpha) == pytest.approx(amp, rel=1e-2)
    assert math.log(f[1] / f[0]) / math.log(1.001) == pytest.approx(-(3 + alpha), rel=1e-2)


@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("eps", [0.3, 0.5])
def test_intensity_peak_is_the_spectrums(ratio, eps):
    spec = PeakedSpectrum(ratio)
    q = np.linspace(3.0, 9.0, 60001)
    f = fc.two_phase_curve(q, spec, eps)
    assert q[np.argmax(f)] == pytest.approx(spec.peak_position, rel=1e-2)


def test_babinet_and_the_bands_sum_rules():
    q = np.geomspace(1e-3, 300, 200)
    for spec in (BroadSpectrum(0.6), PeakedSpectrum(0.4)):
        # (1 - 0.77 is 0.23 only to rounding: hence 1e-9, not equality)
        np.testing.assert_allclose(fc.two_phase_curve(q, spec, 0.23), fc.two_phase_curve(q, spec, 0.77), rtol=1e-9)
        # Layer as pore: the level cut at phi_p + phi_l; layer as solid: the level cut at phi_p (exact identities).
        np.testing.assert_allclose(fc.three_phase_curve(q, spec, 0.2, 0.15, 3.0, 3.0),
                                   9.0 * fc.two_phase_curve(q, spec, 0.35), rtol=1e-9)
        np.testing.assert_allclose(fc.three_phase_curve(q, spec, 0.2, 0.15, 3.0, 0.0),
                                   9.0 * fc.two_phase_curve(q, spec, 0.2), rtol=1e-9)
        # psi -> -psi: pore and solid swap places (and SLDs).
        a = fc.three_phase_curve(q, spec, 0.2, 0.15, 2.0, 0.5)  # densities pore 2, layer 0.5, solid 0
        b = fc.three_phase_curve(q, spec, 0.65, 0.15, -2.0, -1.5)  # pore 0 (was solid), layer 0.5, solid 2
        np.testing.assert_allclose(a, b, rtol=1e-7)


def test_model_is_c1_in_every_parameter_across_the_switches():
    from sasmodels.core import load_model
    from sasmodels.direct_model import call_kernel

    q = np.geomspace(1e-4, 2.0, 150)
    cases = [("grf_two_phase_broad", dict(a=40.0, alpha=1.0, porosity=0.3), ["a", "alpha", "porosity"]),
             ("grf_two_phase_broad", dict(a=40.0, alpha=0.55, porosity=0.5), ["alpha", "porosity"]),
             ("grf_two_phase_peaked", dict(d=150.0, xi_over_d=1 / (2 * math.pi), porosity=0.2),
              ["d", "xi_over_d", "porosity"]),
             ("grf_three_phase_peaked", dict(d=150.0, xi_over_d=0.5, layer_volume=0.05, pore_share=0.5),
              ["layer_volume", "pore_share"]),
             ("grf_three_phase_broad", dict(a=40.0, alpha=1.0, layer_volume=0.1, pore_share=0.3),
              ["alpha", "layer_volume"])]
    for name, p, names in cases:
        kernel = load_model(model_path(name)).make_kernel([q])
        for k in names:
            # Second differences: ~ h^2 f'' for a C1 (and piecewise C2) function, so doubling h multiplies them
            # by 4; a kink (a jump of f') makes them ~ h |jump|, and doubling h only doubles them.
            h = 2e-4 * p[k]
            f = {s: call_kernel(kernel, {**p, k: p[k] + s * h, "background": 0.0}) for s in (-2, -1, 0, 1, 2)}
            d1 = np.linalg.norm((f[1] - 2 * f[0] + f[-1]) / f[0])
            d2 = np.linalg.norm((f[2] - 2 * f[0] + f[-2]) / f[0])
            assert 3.0 < d2 / d1 < 5.0, (name, k, d1, d2)


def test_simulated_fields_follow_the_requested_spectra():
    cfg = SimulationConfig(grid_size=48, voxel_size=0.5, q_min=0.2, q_max=3.0, n_q=60, dtype="float64")
    assert_spectrum_follows_gamma(cfg, 1.0, "numpy", spectrum=BroadSpectrum(0.7))
    assert_spectrum_follows_gamma(cfg, 4.0, "numpy", spectrum=PeakedSpectrum(0.5))


# -- brute force: the package's own simulator, same spectrum ---------------------------------------------------

def _boxes_against_exact(spec, fractions, densities, n_boxes, grid=160, per_unit=4, qa_max=3.0):
    """Mean raw shell spectrum of simulated boxes (40 length units wide) against the exact curve on the same
    shells, in bins of q: (RMS, max) of the relative deviation, and the bin standard errors."""
    from sasview_grf_plugin.simulator import generate_structure, radial_power_spectrum

    dx = 1.0 / per_unit
    cfg = SimulationConfig(grid_size=grid, voxel_size=dx, q_min=0.1, q_max=1.0, smoothing_sigma=0.0,
                           densities=densities, dtype="float32")
    phi_p, phi_l = fractions
    rows = []
    for s in range(n_boxes):
        rho = generate_structure(cfg, 1.0, phi_p + phi_l, phi_l / (phi_p + phi_l), seed=100 + s, spectrum=spec)
        q, i, n = radial_power_spectrum(rho, dx)
        rows.append(i * n)
    rows = np.array(rows)
    keep = (q > 0) & (q <= qa_max)
    q, n, rows = q[keep], n[keep], rows[:, keep]
    w = np.array(densities, dtype=float) - densities[2]
    exact = fc.three_phase_curve(q, spec, phi_p, phi_l, w[0], w[1]) if phi_l > 0 else \
        w[0] ** 2 * fc.two_phase_curve(q, spec, phi_p)
    edges = np.geomspace(2 * math.pi / (grid * dx) * 1.5, qa_max, 16)
    b = np.digitize(q, edges)
    dev, se = [], []
    for k in range(1, len(edges)):
        m = b == k
        if m.sum() == 0:
            continue
        ratio = rows[:, m].sum(1) / (exact[m] * n[m]).sum()
        dev.append(ratio.mean() - 1)
        se.append(ratio.std(ddof=1) / math.sqrt(len(ratio)))
    dev, se = np.array(dev), np.array(se)
    return float(np.sqrt(np.mean(dev**2))), float(np.max(np.abs(dev))), dev, se


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "fractions", "densities"), [
    (BroadSpectrum(1.5), (0.3, 0.0), (1.0, 0.0, 0.0)),
    (BroadSpectrum(0.5), (0.2, 0.0), (1.0, 0.0, 0.0)),
    (PeakedSpectrum(0.5), (0.5, 0.0), (1.0, 0.0, 0.0)),
    (BroadSpectrum(2.0), (0.3, 0.3), (1.0, 0.4, 0.0)),
], ids=str)
def test_models_equal_the_mean_of_simulated_boxes(spec, fractions, densities):
    # Boxes 40 length units wide (a, or d for the peaked spectrum: 80 xi), 4 voxels per unit, q a <= 3 (a
    # quarter of the voxel Nyquist wave number: aliasing of the voxelized interfaces stays below 1 %). Targets
    # of issue 21: <= 2 % RMS, <= 5 % max per curve; each bin must also agree within 4 standard errors + 1 %.
    per_unit = 8 if isinstance(spec, PeakedSpectrum) else 4
    grid = 160 if per_unit == 4 else 192
    rms, worst, dev, se = _boxes_against_exact(spec, fractions, densities, n_boxes=12, grid=grid, per_unit=per_unit,
                                               qa_max=3.0 if per_unit == 4 else 12.0)
    print(f"{spec} {fractions}: RMS {rms:.4f}, max {worst:.4f}")
    assert rms <= 0.02 and worst <= 0.05, (rms, worst, dev)
    assert np.all(np.abs(dev) < 4 * se + 0.01), (dev, se)
