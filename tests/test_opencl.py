"""OpenCL backend tests (``pytest -m opencl``): run on PoCL's CPU device in CI, or any OpenCL device.

They select PoCL explicitly when it is installed (``backend="auto"`` never picks a CPU device), else the
default OpenCL device, and are skipped with the reason when pyopencl, pyvkfft or a platform is missing.
"""

import math
import sys

import numpy as np
import pytest
from conftest import assert_spectrum_follows_gamma, brute_force_curve

from sasview_grf_plugin.simulator import (
    InsufficientMemoryError,
    SimulationConfig,
    gaussian_random_field,
    generate_labels,
    generate_structure,
    get_backend,
    scattering_curve,
    simulate_curve,
)
from sasview_grf_plugin.simulator import backends as backends_module
from sasview_grf_plugin.simulator.grid import fourier_grid, shell_counts
from sasview_grf_plugin.simulator.structure import _classify, _smooth

pytestmark = pytest.mark.opencl


def _opencl_or_skip():
    pytest.importorskip("pyopencl", reason="pyopencl is not installed (pip install 'sasview-grf-plugin[opencl]')")
    pytest.importorskip("pyvkfft.opencl", reason="pyvkfft is not installed (pip install 'sasview-grf-plugin[opencl]')")
    from sasview_grf_plugin.simulator.opencl import OpenCLBackend, list_devices

    try:
        devices = list_devices()
    except RuntimeError as exc:
        pytest.skip(f"no OpenCL platform or device: {exc}")
    pocl = [d for d in devices if "portable computing language" in d.platform.name.lower()]
    return OpenCLBackend.for_device(pocl[0] if pocl else None)


@pytest.fixture(scope="module")
def ocl():
    return _opencl_or_skip()


@pytest.fixture
def cfg(ocl):
    dtype = "float64" if ocl.fp64 else "float32"
    return SimulationConfig(grid_size=32, voxel_size=0.5, q_min=0.2, q_max=3.0, n_q=60, dtype=dtype)


def test_philox_known_answers(ocl):
    # Random123's known-answer vectors of Philox4x32-10.
    assert ocl.philox((0, 0, 0, 0), (0, 0)).tolist() == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert ocl.philox((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2).tolist() == [0x408F276D, 0x41C83B0E, 0xA20BC7C6,
                                                                         0x6D5451FD]
    assert ocl.philox((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)).tolist() == [
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


# -- the same field on both backends ------------------------------------------------------------------------
def test_curve_matches_numpy_on_the_same_field(ocl):
    rng = np.random.default_rng(0)
    rho = rng.random((48, 48, 48)).astype(np.float32)
    q = np.linspace(0.05, 5.0, 200)
    on_device = scattering_curve(ocl.asarray(rho), 0.5, q, backend=ocl)
    np.testing.assert_allclose(on_device, scattering_curve(rho, 0.5, q, backend="numpy"), rtol=2e-5)
    # A pyopencl array alone selects the OpenCL backend.
    np.testing.assert_allclose(scattering_curve(ocl.asarray(rho), 0.5, q), on_device, rtol=2e-5)
    if ocl.fp64:
        rho64 = rng.random((16, 16, 16))
        q16 = np.linspace(0.0, 12.0, 40)
        got = scattering_curve(rho64, 0.7, q16, backend=ocl)
        np.testing.assert_allclose(got, scattering_curve(rho64, 0.7, q16, backend="numpy"), rtol=1e-10)
        np.testing.assert_allclose(got, brute_force_curve(rho64, 0.7, q16), rtol=1e-6)


@pytest.mark.parametrize("n", [16, 21, 32])
def test_shell_sums_equal_numpy(ocl, n):
    np.testing.assert_array_equal(shell_counts(n), fourier_grid(get_backend("numpy"), n).counts)
    assert fourier_grid(ocl, n).counts.sum() == n**3
    spec = np.fft.rfftn(np.random.default_rng(n).standard_normal((n, n, n)))
    if not ocl.fp64:
        spec = spec.astype(np.complex64)
    expected = fourier_grid(get_backend("numpy"), n).shell_sums(spec, squared_magnitude=True)
    got = ocl.shell_sums(ocl.asarray(spec), squared_magnitude=True)
    np.testing.assert_allclose(got, expected, rtol=1e-12 if ocl.fp64 else 1e-6)
    real = np.abs(spec).astype(spec.real.dtype)
    np.testing.assert_allclose(ocl.shell_sums(ocl.asarray(real)),
                               fourier_grid(get_backend("numpy"), n).shell_sums(real), rtol=1e-12 if ocl.fp64 else 1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_classification_and_smoothing_equal_numpy_on_the_same_field(ocl, dtype):
    if dtype == "float64" and not ocl.fp64:
        pytest.skip("the device has no double precision")
    numpy_be = get_backend("numpy")
    n = 32
    n3 = n**3
    x = np.random.default_rng(1).standard_normal((n, n, n)).astype(dtype)
    binary = (x > 0.4).astype(dtype)  # every threshold falls in a block of ties
    x[3, 4, 5] = -0.0
    x[3, 4, 6] = 0.0
    for field in (x, binary):
        dev = ocl.asarray(field)
        for k1, k2 in ((round(0.3 * n3), round(0.7 * n3)), (0, 5), (n3, n3), (17, 17), (100, n3 - 1)):
            for values, out in (((0, 1, 2), np.uint8), ((0.0, 0.65, 1.0), dtype)):
                got = ocl.to_numpy(_classify(ocl, dev, k1, k2, values, out))
                np.testing.assert_array_equal(got, _classify(numpy_be, field, k1, k2, values, out))
    cfg = SimulationConfig(grid_size=n, voxel_size=0.5, q_min=0.2, q_max=3.0, dtype=dtype)
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(ocl.to_numpy(_smooth(ocl, cfg, ocl.asarray(binary))), _smooth(numpy_be, cfg, binary),
                               atol=tol)


# -- the statistical tests of the CPU backend (tests/test_structure.py), on the device ----------------------
@pytest.mark.parametrize("n", [31, 32])
@pytest.mark.parametrize("eps, nu", [(0.3, 0.0), (0.7, 0.2), (0.1, 0.05), (0.9, 0.45)])
def test_phase_fractions_are_exact(ocl, cfg, n, eps, nu):
    cfg = cfg.replace(grid_size=n)
    labels = ocl.to_numpy(generate_labels(cfg, 1.5, eps, nu, seed=5, backend=ocl))
    n_pore, n_nonsolid = round(eps * (1 - nu) * n**3), round(eps * n**3)
    assert np.bincount(labels.ravel(), minlength=3).tolist() == [n_pore, n_nonsolid - n_pore, n**3 - n_nonsolid]
    rho = ocl.to_numpy(generate_structure(cfg, 1.5, eps, nu, seed=5, backend=ocl))
    np.testing.assert_array_equal(rho, np.asarray(cfg.densities, dtype=cfg.dtype)[labels])


def test_exact_fractions_with_ties_everywhere(ocl, cfg):
    labels = ocl.to_numpy(generate_labels(cfg.replace(smoothing_sigma=0.0), 1.5, 0.6, 0.3, seed=1, backend=ocl))
    n3 = 32**3
    assert np.bincount(labels.ravel()).tolist() == [round(0.42 * n3), round(0.6 * n3) - round(0.42 * n3),
                                                    n3 - round(0.6 * n3)]


def test_layer_is_carved_from_the_two_phase_pore(ocl, cfg):
    two = ocl.to_numpy(generate_labels(cfg, 2.0, 0.6, 0.0, seed=3, backend=ocl))
    three = ocl.to_numpy(generate_labels(cfg, 2.0, 0.6, 0.3, seed=3, backend=ocl))
    assert set(np.unique(two)) == {0, 2}
    np.testing.assert_array_equal(two == 0, three < 2)
    solid = three == 2
    near_solid = sum(np.roll(solid, s, axis=ax) for ax in range(3) for s in (-1, 1)) > 0
    assert near_solid[three == 1].mean() > 2 * near_solid[three == 0].mean()


def test_same_seed_same_structure_and_different_seeds_differ(ocl, cfg):
    a = ocl.to_numpy(generate_structure(cfg, 1.2, 0.5, 0.2, seed=7, backend=ocl))
    b = ocl.to_numpy(generate_structure(cfg, 1.2, 0.5, 0.2, seed=7, backend=ocl))
    c = ocl.to_numpy(generate_structure(cfg, 1.2, 0.5, 0.2, seed=8, backend=ocl))
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.2
    ss = np.random.SeedSequence(42)
    np.testing.assert_array_equal(ocl.to_numpy(gaussian_random_field(cfg, 1.0, seed=ss, backend=ocl)),
                                  ocl.to_numpy(gaussian_random_field(cfg, 1.0, seed=ss, backend=ocl)))
    g = ocl.generator(ss)
    u, e = ocl.to_numpy(g.random(1000)), ocl.to_numpy(g.standard_exponential(1000, dtype=np.float32))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.05 and abs(e.mean() - 1) < 0.15
    np.testing.assert_array_equal(u, ocl.to_numpy(ocl.generator(ss).random(1000)))


def test_grf_power_spectrum_follows_gamma(ocl, cfg):
    # As in test_structure.py; without fp64 the device's float32 round-off needs a higher Gamma floor.
    assert_spectrum_follows_gamma(cfg.replace(grid_size=48), 1.0, ocl, floor=1e-6 if ocl.fp64 else 1e-3)


@pytest.mark.parametrize("spectrum", ["broad", "peaked"])
def test_grf_follows_any_spectrum(ocl, cfg, spectrum):
    from sasview_grf_plugin.spectra import BroadSpectrum, PeakedSpectrum

    spec, a = (BroadSpectrum(0.7), 1.0) if spectrum == "broad" else (PeakedSpectrum(0.5), 4.0)
    assert_spectrum_follows_gamma(cfg.replace(grid_size=48), a, ocl, floor=1e-6 if ocl.fp64 else 1e-3, spectrum=spec)


def test_white_noise_limit_is_flat_including_the_self_conjugate_planes(ocl, cfg):
    n = 32
    edge, interior, values = [], [], []
    for s in range(6):
        psi = ocl.to_numpy(gaussian_random_field(cfg, 1e-6, seed=s, backend=ocl)).astype(np.float64)
        p = np.abs(np.fft.rfftn(psi)) ** 2 / n**3
        edge.append(np.concatenate([p[..., 0].ravel()[1:], p[..., -1].ravel()]))
        interior.append(p[..., 1:-1].ravel())
        values.append(psi.ravel())
    edge, interior, values = np.concatenate(edge), np.concatenate(interior), np.concatenate(values)
    assert interior.mean() == pytest.approx(1.0, abs=5 / math.sqrt(interior.size))
    assert edge.mean() == pytest.approx(1.0, abs=5 / math.sqrt(edge.size / 2))
    assert values.var() == pytest.approx(1.0, abs=0.02)
    assert abs(np.mean(values**3)) < 0.03 and np.mean(values**4) == pytest.approx(3.0, abs=0.1)


def test_simulated_curves_agree_statistically_with_numpy(ocl):
    # Different random streams, same model: averages over realizations agree within sampling error.
    cfg = SimulationConfig(grid_size=48, voxel_size=0.5, q_min=0.2, q_max=3.0, n_q=60, dtype="float32")
    dev = simulate_curve(cfg, 1.5, 0.5, seed=1, n_realizations=16, backend=ocl)
    cpu = simulate_curve(cfg, 1.5, 0.5, seed=1, n_realizations=16, backend="numpy")
    np.testing.assert_allclose(dev[cfg.q > 1.0], cpu[cfg.q > 1.0], rtol=0.1)


# -- errors and device choice -------------------------------------------------------------------------------
def test_memory_is_checked_before_allocating(ocl, cfg, monkeypatch):
    huge = SimulationConfig(grid_size=8192, voxel_size=0.5, q_min=0.1, q_max=3.0)
    with pytest.raises(InsufficientMemoryError, match=r"grid_size=8192 .* on backend 'opencl'"):
        generate_structure(huge, 2.0, 0.5, seed=0, backend=ocl)
    monkeypatch.setattr(ocl, "max_alloc", 4096)
    with pytest.raises(InsufficientMemoryError, match="CL_DEVICE_MAX_MEM_ALLOC_SIZE"):
        generate_structure(cfg, 2.0, 0.5, seed=0, backend=ocl)


def test_missing_pyopencl_or_platform_says_what_to_install(ocl, monkeypatch):
    import pyopencl

    from sasview_grf_plugin.simulator import opencl

    def no_platform():
        raise pyopencl.LogicError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

    monkeypatch.setattr(pyopencl, "get_platforms", no_platform)
    with pytest.raises(RuntimeError, match=r"no OpenCL platform found .*pip install \"sasview-grf-plugin\[opencl\]\""):
        opencl.OpenCLBackend()
    assert opencl.auto_device() is None
    monkeypatch.setitem(sys.modules, "pyopencl", None)
    with pytest.raises(RuntimeError, match=r"needs pyopencl .*pocl"):
        opencl.select_device()


def test_device_choice_follows_sas_opencl_and_auto_never_takes_a_cpu(ocl, monkeypatch):
    from sasview_grf_plugin.simulator.opencl import auto_device, select_device

    monkeypatch.delenv("PYOPENCL_CTX", raising=False)
    monkeypatch.setenv("SAS_OPENCL", "none")
    assert auto_device() is None
    monkeypatch.setenv("SAS_OPENCL", f"{ocl.device.platform.name[:8]}:{ocl.device.name[:8]}")
    assert select_device() == ocl.device
    monkeypatch.setenv("SAS_OPENCL", "no-such-platform")
    with pytest.raises(RuntimeError, match="no platform named like 'no-such-platform'"):
        select_device()
    monkeypatch.setenv("SAS_OPENCL", "opencl")
    device = auto_device()
    assert device is None or not device.type & __import__("pyopencl").device_type.CPU
    if ocl.is_cpu:  # selecting the CPU device explicitly works, but auto never takes it
        monkeypatch.setenv("SAS_OPENCL", f"{ocl.device.platform.name[:8]}:{ocl.device.name[:8]}")
        assert auto_device() is None
        assert not backends_module._opencl_auto_usable.__wrapped__()
    assert "opencl" in backends_module.available_backends()


def test_plugin_engine_dataset_and_cli_accept_opencl(ocl, tmp_path, monkeypatch):
    from sasview_grf_plugin.cli import main
    from sasview_grf_plugin.datasets import generate_dataset
    from sasview_grf_plugin.sasview import engine

    make = backends_module._make  # "opencl" means the device under test
    monkeypatch.setattr(backends_module, "_make", lambda name, threads=None: ocl if name == "opencl"
                        else make(name, threads))
    monkeypatch.setenv("SASVIEW_GRF_BACKEND", "opencl")
    engine.clear_cache()
    q = np.linspace(0.005, 0.5, 50)
    args = (40.0, 0.6, 0.3, 0.0, 1.0, 2.0, 5.0, 16, 1, 7)  # a (Å), eps, nu, SLDs, voxel (Å), N, realizations, seed
    iq = engine.intensity(q, *args)
    assert np.all(np.isfinite(iq)) and np.all(iq > 0)
    assert engine.partial_curves(engine.make_key(*args[:3], *args[6:])).backend == "opencl"
    np.testing.assert_array_equal(engine.intensity(q, *args), iq)
    engine.clear_cache()

    tiny = SimulationConfig(grid_size=16, voxel_size=0.5, q_min=0.2, q_max=3.0, n_q=30, a_range=(0.8, 2.0))
    kw = dict(config=tiny, n=6, chunk_size=3, seed=3, backend="opencl", progress=False)
    first = generate_dataset(tmp_path / "a", "three_phase_high", "train", **kw)
    second = generate_dataset(tmp_path / "b", "three_phase_high", "train", **kw)
    assert first.spec.backend == "opencl"
    a, b = first.read(), second.read()
    assert np.all(np.isfinite(a.intensity)) and np.all(a.intensity > 0)
    np.testing.assert_array_equal(a.intensity, b.intensity)

    out = tmp_path / "c.csv"
    assert main(["simulate", "--grid-size", "16", "--seed", "3", "--out", str(out), "--backend", "opencl"]) == 0
    assert np.all(np.loadtxt(out, delimiter=",")[:, 1] > 0)
