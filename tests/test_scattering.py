import math

import numpy as np
import pytest
from conftest import brute_force_curve

from sasview_grf_plugin.simulator import (
    SimulationConfig,
    gaussian_random_field,
    radial_power_spectrum,
    scattering_curve,
)


@pytest.mark.parametrize("n", [16, 21, 24, 32])
def test_equals_brute_force_sum_over_the_full_grid(n):
    rng = np.random.default_rng(n)
    rho = rng.random((n, n, n))  # no symmetry at all
    dx = 0.7
    dq = 2 * np.pi / (n * dx)
    corner = math.sqrt(3) * (n // 2) * dq
    # Zero, below one grid step, off-grid values, exact shell radii, and up to the corner.
    q = np.concatenate([[0.0, 0.3 * dq, dq, math.sqrt(2) * dq], rng.uniform(0, corner, 40), [corner]])
    expected = brute_force_curve(rho, dx, q)
    got = scattering_curve(rho, dx, q, backend="numpy")
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)


def test_symmetries_of_the_intensity():
    rng = np.random.default_rng(1)
    rho = rng.random((24, 24, 24))
    q = np.linspace(0.05, 4.0, 30)
    base = scattering_curve(rho, 0.5, q)
    # Periodic translation, a constant offset (only q = 0 changes, whose weight is zero), scaling.
    np.testing.assert_allclose(scattering_curve(np.roll(rho, (3, -5, 7), axis=(0, 1, 2)), 0.5, q), base, rtol=1e-10)
    np.testing.assert_allclose(scattering_curve(rho + 3.0, 0.5, q), base, rtol=1e-8)
    np.testing.assert_allclose(scattering_curve(2.5 * rho, 0.5, q), 6.25 * base, rtol=1e-10)
    # Unordered q gives the same values at the same points.
    perm = rng.permutation(q.size)
    np.testing.assert_allclose(scattering_curve(rho, 0.5, q[perm]), base[perm], rtol=1e-12)


def test_float32_agrees_with_float64():
    rho = np.random.default_rng(2).random((32, 32, 32))
    q = np.linspace(0.1, 5.0, 50)
    np.testing.assert_allclose(scattering_curve(rho.astype(np.float32), 0.5, q), scattering_curve(rho, 0.5, q),
                               rtol=2e-4)


def test_finite_beyond_the_grid_corner():
    rho = np.random.default_rng(3).random((16, 16, 16))
    dx = 0.5
    corner = math.sqrt(3) * 8 * 2 * np.pi / (16 * dx)
    far = scattering_curve(rho, dx, [corner, 2 * corner, 1e3, 1e9])
    assert np.all(np.isfinite(far)) and np.all(far > 0)
    # Far beyond, the average is the outermost shells' intensity: the same whatever q.
    assert far[2] == pytest.approx(far[3], rel=1e-12)


def test_porod_invariant_of_a_band_limited_field():
    # a = one voxel: Gamma(q) falls below 1e-8 before the Nyquist wave number, so all the variance
    # sits inside the sphere the spherical average covers.
    n, dx = 64, 0.5
    cfg = SimulationConfig(grid_size=n, voxel_size=dx, q_min=0.1, q_max=1.0, dtype="float64")
    psi = gaussian_random_field(cfg, a=dx, seed=11, backend="numpy")
    dq = 2 * np.pi / (n * dx)
    q = np.arange(0, math.sqrt(3) * (n // 2) * dq, dq / 8)
    integral = np.trapezoid(q**2 * scattering_curve(psi, dx, q), q)
    assert integral == pytest.approx(2 * np.pi**2 * np.var(psi), rel=0.02)


def test_radial_power_spectrum_counts_every_grid_point():
    n = 20
    q_s, mean, counts = radial_power_spectrum(np.random.default_rng(0).random((n, n, n)), 1.0)
    assert counts.sum() == n**3 - 1  # all points but q = 0
    assert np.all(np.diff(q_s) > 0) and np.all(mean >= 0)


@pytest.mark.parametrize(
    "rho, dx, q, message",
    [
        (np.zeros((8, 8, 9)), 0.5, [0.1], "cubic"),
        (np.zeros((8, 8)), 0.5, [0.1], "cubic"),
        (np.full((8, 8, 8), np.nan), 0.5, [0.1], "NaN"),
        (np.zeros((8, 8, 8), dtype=complex), 0.5, [0.1], "real"),
        (np.zeros((8, 8, 8)), 0.0, [0.1], "voxel_size"),
        (np.zeros((8, 8, 8)), -1.0, [0.1], "voxel_size"),
        (np.zeros((8, 8, 8)), 0.5, [-0.1, 0.2], "q must be >= 0"),
        (np.zeros((8, 8, 8)), 0.5, [np.nan], "NaN"),
        (np.zeros((8, 8, 8)), 0.5, [[0.1, 0.2]], "1-D"),
        (np.zeros((8, 8, 8)), 0.5, [], "empty"),
    ],
)
def test_bad_inputs_are_refused(rho, dx, q, message):
    with pytest.raises(ValueError, match=message):
        scattering_curve(rho, dx, q)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'metal'"):
        scattering_curve(np.zeros((8, 8, 8)), 0.5, [0.1], backend="metal")
