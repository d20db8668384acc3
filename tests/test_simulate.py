import numpy as np
import pytest

from sasview_grf_plugin.simulator import generate_structure, scattering_curve, simulate_curve
from sasview_grf_plugin.simulator.seeds import child_seed, realization_seeds


def test_curve_is_the_structures_curve(small_config):
    rho = generate_structure(small_config, 1.5, 0.6, 0.2, seed=4)
    expected = scattering_curve(rho, small_config.voxel_size, small_config.q)
    np.testing.assert_allclose(simulate_curve(small_config, 1.5, 0.6, 0.2, seed=4), expected, rtol=1e-12)


def test_realizations_are_averaged(small_config):
    seeds = realization_seeds(np.random.SeedSequence(4), 3)
    curves = [scattering_curve(generate_structure(small_config, 1.5, 0.6, 0.2, seed=s), 0.5, small_config.q)
              for s in seeds]
    got = simulate_curve(small_config, 1.5, 0.6, 0.2, seed=4, n_realizations=3)
    np.testing.assert_allclose(got, np.mean(curves, axis=0), rtol=1e-12)
    assert not np.allclose(curves[0], curves[1])


def test_batches_use_child_seeds_and_broadcast(small_config):
    a = np.array([1.0, 1.5, 2.0])
    batch = simulate_curve(small_config, a, 0.4, 0.0, seed=9)
    assert batch.shape == (3, small_config.n_q)
    root = np.random.SeedSequence(9)
    for i in range(3):
        np.testing.assert_array_equal(batch[i], simulate_curve(small_config, a[i], 0.4, seed=child_seed(root, i)))
    explicit = simulate_curve(small_config, a, [0.3, 0.4, 0.5], seed=[1, 2, 3])
    np.testing.assert_array_equal(explicit[1], simulate_curve(small_config, 1.5, 0.4, seed=2))


def test_deterministic_and_seed_sensitive(small_config):
    one = simulate_curve(small_config, 1.5, 0.6, seed=1)
    np.testing.assert_array_equal(one, simulate_curve(small_config, 1.5, 0.6, seed=1))
    assert not np.allclose(one, simulate_curve(small_config, 1.5, 0.6, seed=2))


def test_porod_invariant_tracks_the_phase_contrast(small_config):
    # Two phases of contrast 1: var(rho) = eps (1 - eps). Babinet: eps and 1 - eps give the same variance.
    cfg = small_config.replace(grid_size=40)
    low = generate_structure(cfg, 2.0, 0.3, seed=1)
    high = generate_structure(cfg, 2.0, 0.7, seed=1)
    assert np.var(low) == pytest.approx(0.21, abs=1e-4) and np.var(high) == pytest.approx(0.21, abs=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_realizations": 0}, "n_realizations"),
        ({"seed": [1, 2]}, "2 seeds for 1 parameter sets"),
        ({"porosity": [0.2, 0.3], "a": [1.0, 2.0, 3.0]}, "broadcast"),
        ({"porosity": 1.2}, "porosity"),
    ],
)
def test_bad_calls(small_config, kwargs, message):
    args = {"a": 1.0, "porosity": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate_curve(small_config, **args)
