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
