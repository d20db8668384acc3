"""CuPy backend tests: run on a machine with CUDA (``pytest -m gpu``); skipped elsewhere."""

import numpy as np
import pytest

from sasview_grf_plugin.simulator import (
    available_backends,
    generate_labels,
    generate_structure,
    scattering_curve,
    simulate_curve,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif("cupy" not in available_backends(), reason="CuPy with a CUDA device is not available"),
]


def test_curve_matches_numpy_on_the_same_field(small_config):
    import cupy

    rho = np.random.default_rng(0).random((64, 64, 64)).astype(np.float32)
    q = np.linspace(0.05, 5.0, 200)
    on_gpu = scattering_curve(cupy.asarray(rho), 0.5, q)
    np.testing.assert_allclose(on_gpu, scattering_curve(rho, 0.5, q, backend="numpy"), rtol=2e-5)
    np.testing.assert_allclose(scattering_curve(rho.astype(np.float64), 0.5, q, backend="cupy"),
                               scattering_curve(rho.astype(np.float64), 0.5, q, backend="numpy"), rtol=1e-10)


@pytest.mark.parametrize("eps, nu", [(0.3, 0.0), (0.7, 0.2)])
def test_exact_fractions_and_reproducible(small_config, eps, nu):
    cfg = small_config.replace(grid_size=64, dtype="float32")
    labels = generate_labels(cfg, 1.5, eps, nu, seed=2, backend="cupy").get()
    n3 = 64**3
    assert np.bincount(labels.ravel(), minlength=3).tolist() == [
        round(eps * (1 - nu) * n3), round(eps * n3) - round(eps * (1 - nu) * n3), n3 - round(eps * n3)]
    a = generate_structure(cfg, 1.5, eps, nu, seed=2, backend="cupy").get()
    np.testing.assert_array_equal(a, generate_structure(cfg, 1.5, eps, nu, seed=2, backend="cupy").get())


def test_simulated_curves_agree_statistically_with_numpy(small_config):
    # Different random streams, same model: averages over realizations agree within sampling error.
    cfg = small_config.replace(grid_size=64, dtype="float32")
    gpu = simulate_curve(cfg, 1.5, 0.5, seed=1, n_realizations=16, backend="cupy")
    cpu = simulate_curve(cfg, 1.5, 0.5, seed=1, n_realizations=16, backend="numpy")
    np.testing.assert_allclose(gpu[cfg.q > 1.0], cpu[cfg.q > 1.0], rtol=0.1)
