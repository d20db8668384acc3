import numpy as np
import pytest

from sasview_grf_plugin.simulator import SimulationConfig


@pytest.fixture
def small_config() -> SimulationConfig:
    """A 32^3 float64 grid (16 nm box) for fast, precise tests."""
    return SimulationConfig(grid_size=32, voxel_size=0.5, q_min=0.2, q_max=3.0, n_q=60, dtype="float64",
                            a_range=(0.8, 2.0), n_train=8, n_val=4, n_test=4)


def brute_force_curve(rho: np.ndarray, dx: float, q: np.ndarray) -> np.ndarray:
    """Paper Eqs. 1-4 summed literally over every point of the full N^3 reciprocal grid."""
    n = rho.shape[0]
    intensity = dx**3 / n**3 * np.abs(np.fft.fftn(rho)) ** 2
    k = 2 * np.pi * np.fft.fftfreq(n, d=dx)
    qabs = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2).ravel()
    intensity = intensity.ravel()
    dq = 2 * np.pi / (n * dx)
    out = []
    for qq in q:
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.exp(-2 * ((qabs - qq) / dq) ** 2) / qabs**2
        w[qabs == 0] = 0.0
        out.append(np.sum(w * intensity) / np.sum(w))
    return np.array(out)


def assert_spectrum_follows_gamma(cfg, a, backend, floor=1e-6, seeds=range(4), spectrum=None):
    """The GRF's shell-averaged |F psi|^2 is proportional to Gamma(q), at the level dx^3 Gamma(q).

    Each mode's |F psi|^2 is Gamma(q) times an Exp(1) variable (two modes per +-q pair), so the ratio's
    average over m independent pairs has relative sd 1/sqrt(m/2). Shells are pooled into bins of
    >= 2000 modes and every bin must lie within 5 sd of the common level; shells where Gamma < floor
    are left out (round-off of tiny modes).
    """
    import math

    import pytest

    from sasview_grf_plugin.simulator import gaussian_random_field, radial_power_spectrum, spectral_density

    total = modes = None
    for s in seeds:
        psi = gaussian_random_field(cfg, a, seed=s, backend=backend, spectrum=spectrum)
        q_s, mean, counts = radial_power_spectrum(psi, cfg.voxel_size, backend=backend)
        ratio = mean * counts / spectral_density(q_s, a, spectrum)
        total = ratio if total is None else total + ratio
        modes = counts if modes is None else modes + counts
    ratio = total / modes
    keep = spectral_density(q_s, a, spectrum) > floor
    ratio, modes = ratio[keep], modes[keep]
    edges = np.searchsorted(np.cumsum(modes), np.arange(2000, modes.sum(), 2000))
    bins = [(np.sum(r * m) / np.sum(m), np.sum(m))
            for r, m in zip(np.split(ratio, edges), np.split(modes, edges), strict=True)]
    level = np.sum(ratio * modes) / np.sum(modes)
    assert len(bins) >= 5
    for value, m in bins:
        assert abs(value / level - 1) < 5 / math.sqrt(m / 2)
    # Absolute level: E|F psi|^2 = dx^3 Gamma(q) (intensity normalization dx^3/N^3, E|F W|^2 = N^3).
    assert level == pytest.approx(cfg.voxel_size**3, rel=0.02)
