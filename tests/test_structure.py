import math

import numpy as np
import pytest
from conftest import assert_spectrum_follows_gamma

from sasview_grf_plugin.simulator import (
    InsufficientMemoryError,
    SimulationConfig,
    gaussian_random_field,
    generate_labels,
    generate_structure,
    get_backend,
)


@pytest.mark.parametrize("n", [20, 31, 32])
@pytest.mark.parametrize("eps, nu", [(0.3, 0.0), (0.7, 0.2), (0.55, 0.5), (0.1, 0.05), (0.9, 0.45)])
def test_phase_fractions_are_exact(small_config, n, eps, nu):
    cfg = small_config.replace(grid_size=n)
    labels = generate_labels(cfg, 1.5, eps, nu, seed=5)
    counts = np.bincount(labels.ravel(), minlength=3)
    n_pore = round(eps * (1 - nu) * n**3)
    n_nonsolid = round(eps * n**3)
    assert counts.tolist() == [n_pore, n_nonsolid - n_pore, n**3 - n_nonsolid]
    assert abs(counts[1] - eps * nu * n**3) <= 1  # "exact to one voxel"
    rho = generate_structure(cfg, 1.5, eps, nu, seed=5)
    np.testing.assert_array_equal(rho, np.asarray(cfg.densities)[labels])


def test_exact_fractions_with_ties_everywhere(small_config):
    # Without smoothing psi'' is binary: every threshold falls inside a block of equal values.
    cfg = small_config.replace(smoothing_sigma=0.0)
    labels = generate_labels(cfg, 1.5, 0.6, 0.3, seed=1)
    assert np.bincount(labels.ravel()).tolist() == [round(0.42 * 32**3), round(0.6 * 32**3) - round(0.42 * 32**3),
                                                    32**3 - round(0.6 * 32**3)]


def test_layer_is_carved_from_the_two_phase_pore(small_config):
    # Eqs. 9-10 threshold the same psi'': the three-phase pore plus layer is the two-phase pore
    # (same seed), and nu = 0 is the two-phase model.
    two = generate_labels(small_config, 2.0, 0.6, 0.0, seed=3)
    three = generate_labels(small_config, 2.0, 0.6, 0.3, seed=3)
    assert set(np.unique(two)) == {0, 2}
    np.testing.assert_array_equal(two == 0, three < 2)
    # The layer lies at the interface: it has more solid neighbours than the pore has.
    solid = three == 2
    near_solid = sum(np.roll(solid, s, axis=ax) for ax in range(3) for s in (-1, 1)) > 0
    assert near_solid[three == 1].mean() > 2 * near_solid[three == 0].mean()


def test_same_seed_same_field_and_different_seeds_differ(small_config):
    a = generate_structure(small_config, 1.2, 0.5, 0.2, seed=7)
    b = generate_structure(small_config, 1.2, 0.5, 0.2, seed=7)
    c = generate_structure(small_config, 1.2, 0.5, 0.2, seed=8)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.2
    ss = np.random.SeedSequence(42)
    f1 = gaussian_random_field(small_config, 1.0, seed=ss)
    f2 = gaussian_random_field(small_config, 1.0, seed=ss)  # the seed object is not consumed
    np.testing.assert_array_equal(f1, f2)


def test_result_does_not_depend_on_thread_count(small_config):
    from sasview_grf_plugin.simulator.backends import NumpyBackend

    one = generate_structure(small_config, 1.5, 0.6, 0.2, seed=9, backend=NumpyBackend(workers=1))
    three = generate_structure(small_config, 1.5, 0.6, 0.2, seed=9, backend=NumpyBackend(workers=3))
    np.testing.assert_array_equal(one, three)


def test_grf_power_spectrum_follows_gamma(small_config):
    # a = 1 nm on a 48^3 grid: Gamma spans 6 decades over the kept shells; a wrong exponent or q scale
    # shows at once.
    assert_spectrum_follows_gamma(small_config.replace(grid_size=48), 1.0, "numpy")


def test_white_noise_limit_is_flat_including_the_self_conjugate_planes(small_config):
    # With a -> 0, Gamma = 1: the field is white noise, and its spectrum must be flat on the k = 0 and
    # k = N/2 planes too (where Hermitian symmetry is imposed) and on the interior.
    n = 32
    cfg = small_config.replace(grid_size=n)
    edge, interior = [], []
    for s in range(6):
        psi = gaussian_random_field(cfg, 1e-6, seed=s)
        p = np.abs(np.fft.rfftn(psi)) ** 2 / n**3
        edge.append(np.concatenate([p[..., 0].ravel()[1:], p[..., -1].ravel()]))
        interior.append(p[..., 1:-1].ravel())
    edge, interior = np.concatenate(edge), np.concatenate(interior)
    # Means of Exp(1)-like variables: sd 1/sqrt(m/2) (pairs are duplicated in the edge planes).
    assert interior.mean() == pytest.approx(1.0, abs=5 / math.sqrt(interior.size))
    assert edge.mean() == pytest.approx(1.0, abs=5 / math.sqrt(edge.size / 2))
    # The field is N(0, 1) white noise in real space.
    values = np.concatenate([gaussian_random_field(cfg, 1e-6, seed=s).ravel() for s in range(3)])
    assert values.var() == pytest.approx(1.0, abs=0.02)
    assert abs(np.mean(values**3)) < 0.03 and np.mean(values**4) == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize(
    "a, eps, nu, message",
    [
        (0.0, 0.5, 0.0, "a \\(scaling parameter"),
        (-1.0, 0.5, 0.0, "a \\(scaling parameter"),
        (float("nan"), 0.5, 0.0, "a must be finite"),
        (1.0, 0.0, 0.0, "porosity"),
        (1.0, 1.0, 0.0, "porosity"),
        (1.0, -0.1, 0.0, "porosity"),
        (1.0, float("nan"), 0.0, "porosity"),
        (1.0, 0.5, 1.0, "layer_fraction"),
        (1.0, 0.5, -0.1, "layer_fraction"),
        (1.0, "half", 0.0, "porosity must be a number"),
    ],
)
def test_bad_parameters(small_config, a, eps, nu, message):
    with pytest.raises(ValueError, match=message):
        generate_structure(small_config, a, eps, nu, seed=0)


def test_grid_too_large_for_memory_is_refused_before_allocating():
    huge = SimulationConfig(grid_size=8192, voxel_size=0.5, q_min=0.1, q_max=3.0)
    with pytest.raises(InsufficientMemoryError, match=r"grid_size=8192 .* needs about .* GiB .* free"):
        generate_structure(huge, 2.0, 0.5, seed=0, backend="numpy")


def test_bad_seed_and_backend(small_config):
    with pytest.raises(ValueError, match="seed must be"):
        generate_structure(small_config, 1.0, 0.5, seed=-3)
    with pytest.raises(ValueError, match="unknown backend"):
        generate_structure(small_config, 1.0, 0.5, seed=0, backend="opencl-typo")


def test_cupy_request_without_cuda_says_what_to_do():
    from sasview_grf_plugin.simulator import available_backends

    if "cupy" in available_backends():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match=r"install the 'gpu' extra \(from a checkout: pip install '\.\[gpu\]'\)"):
        get_backend("cupy")
    assert get_backend("auto").name == "numpy"
