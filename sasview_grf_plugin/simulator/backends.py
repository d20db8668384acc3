"""Array backends: NumPy/SciPy on the CPU, CuPy on NVIDIA GPUs, OpenCL (pyopencl) on other GPUs.

The numerics are written once against an ``xp`` namespace; a :class:`Backend`
adds what the array libraries do not share: FFTs, random numbers drawn from a
:class:`numpy.random.SeedSequence`, device transfers and free-memory queries.
``pyopencl.array`` is no NumPy-like namespace, so the OpenCL backend
(:mod:`.opencl`) runs the simulator's stages itself (:attr:`Backend.native_stages`).
CuPy and pyopencl are imported lazily, only when their backend is asked for.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "Backend",
    "NumpyBackend",
    "CupyBackend",
    "get_backend",
    "available_backends",
    "InsufficientMemoryError",
    "BACKEND_NAMES",
]

BACKEND_NAMES = ("auto", "numpy", "cupy", "opencl")

T = TypeVar("T")


class InsufficientMemoryError(MemoryError):
    """A requested simulation does not fit in the backend's free memory."""


class Backend:
    """Common interface of the array backends (see :func:`get_backend`)."""

    name: str = ""
    xp: ModuleType
    #: True for a backend whose arrays have no NumPy-like namespace (OpenCL): the stage functions of
    #: structure.py, grid.py and scattering.py then call its :meth:`grf`, :meth:`classify`,
    #: :meth:`smooth` and :meth:`shell_sums` instead of their generic ``xp`` code.
    native_stages: bool = False

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        return self.xp.asarray(x, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def rfftn(self, x: Any) -> Any:
        """Real FFT over the last three axes (unnormalized forward)."""
        raise NotImplementedError

    def irfftn(self, f: Any, n: int) -> Any:
        """Inverse of :meth:`rfftn` for an ``n``-point cube (1/N^3 normalization)."""
        raise NotImplementedError

    def generator(self, seed: np.random.SeedSequence) -> Any:
        """A random generator of the backend's array type seeded by ``seed``.

        NumPy's and CuPy's ``Generator`` share ``random`` and ``standard_exponential``
        with ``size`` and ``dtype``.
        """
        raise NotImplementedError

    def slab_edges(self, n0: int) -> list[tuple[int, int]]:
        """Split range(n0) into the slabs that :meth:`map_slabs` works on."""
        return [(0, n0)]

    def map_slabs(self, fn: Callable[[int, int, int], T], n0: int) -> list[T]:
        """Call ``fn(k, lo, hi)`` for each slab ``[lo, hi)`` of axis 0, in parallel where it helps.

        The slabs depend on ``n0`` only, never on the number of threads, so results that
        use per-slab random streams are reproducible.
        """
        return [fn(k, lo, hi) for k, (lo, hi) in enumerate(self.slab_edges(n0))]

    def available_memory(self) -> int:
        """Bytes that a new allocation may use now."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on the CPU)."""

    def all_finite(self, x: Any) -> bool:
        """Whether every entry of ``x`` is finite."""
        return bool(self.xp.isfinite(x).all())

    # Stages of native backends (``native_stages``), same contracts as the generic functions.
    def grf(self, config: Any, a: float, seed: np.random.SeedSequence, spectrum: Any = None) -> Any:
        """The real (N, N, N) Gaussian random field of ``structure._grf`` (``spectrum``: default the paper's)."""
        raise NotImplementedError

    def classify(self, x: Any, k1: int, k2: int, values: tuple[Any, Any, Any], dtype: Any) -> Any:
        """``structure._classify``: exact counts, ties by flat index."""
        raise NotImplementedError

    def smooth(self, config: Any, field: Any) -> Any:
        """``structure._smooth``: periodic Gaussian smoothing."""
        raise NotImplementedError

    def shell_sums(self, values: Any, squared_magnitude: bool = False) -> np.ndarray:
        """``FourierGrid.shell_sums``: per-shell sums over the full grid, NumPy float64."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class NumpyBackend(Backend):
    """CPU backend: NumPy arrays, ``scipy.fft`` on all cores, threaded random numbers."""

    name = "numpy"

    # Fixed number of slabs for threaded elementwise work and per-slab random streams:
    # results do not depend on the number of threads.
    slabs = 8

    def __init__(self, workers: int | None = None) -> None:
        import scipy.fft

        self.xp = np
        self._fft = scipy.fft
        self.workers = workers or _default_threads()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="grf-slab")
            return self._pool

    def rfftn(self, x: np.ndarray) -> np.ndarray:
        return self._fft.rfftn(x, axes=(-3, -2, -1), workers=self.workers)

    def irfftn(self, f: np.ndarray, n: int) -> np.ndarray:
        # Two passes (complex over the first two axes in place, then c2r) run about 1.5x
        # faster in pocketfft than irfftn's own route for cubes; the result is identical.
        g = self._fft.ifftn(f, axes=(-3, -2), workers=self.workers, overwrite_x=True)
        return self._fft.irfft(g, n=n, axis=-1, workers=self.workers, overwrite_x=True)

    def generator(self, seed):
        return np.random.Generator(np.random.PCG64(seed))

    def slab_edges(self, n0):
        edges = np.linspace(0, n0, min(self.slabs, n0) + 1).astype(int)
        return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=False))

    def map_slabs(self, fn, n0):
        # NumPy releases the GIL in ufuncs, bincount and random fills, so threads scale.
        edges = self.slab_edges(n0)
        if self.workers == 1:
            return [fn(k, lo, hi) for k, (lo, hi) in enumerate(edges)]
        return list(self._executor().map(lambda k: fn(k, *edges[k]), range(len(edges))))

    def available_memory(self) -> int:
        import psutil

        return int(psutil.virtual_memory().available)


class CupyBackend(Backend):
    """CUDA backend: CuPy arrays and ``cupyx.scipy.fft`` (cuFFT, plans cached by CuPy)."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy
        import cupyx.scipy.fft

        cupy.cuda.runtime.getDeviceCount()  # raises when no device or driver is present
        self.xp = cupy
        self._fft = cupyx.scipy.fft

    def to_numpy(self, x: Any) -> np.ndarray:
        return self.xp.asnumpy(x)

    def rfftn(self, x):
        return self._fft.rfftn(x, axes=(-3, -2, -1))

    def irfftn(self, f, n):
        return self._fft.irfftn(f, s=(n, n, n), axes=(-3, -2, -1), overwrite_x=True)

    def generator(self, seed):
        return self.xp.random.default_rng(seed)

    def available_memory(self) -> int:
        free, _total = self.xp.cuda.Device().mem_info
        pool = self.xp.get_default_memory_pool()
        return int(free + pool.free_bytes())

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()


def _default_threads() -> int:
    # SASVIEW_GRF_THREADS caps the CPU threads per process, e.g. for several worker processes.
    env = os.environ.get("SASVIEW_GRF_THREADS", "")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"SASVIEW_GRF_THREADS must be a positive integer, got {env!r}") from None
        if value < 1:
            raise ValueError(f"SASVIEW_GRF_THREADS must be a positive integer, got {env!r}")
        return value
    return os.cpu_count() or 1


@functools.cache
def _make(name: str, threads: int | None = None) -> Backend:
    if name == "numpy":
        return NumpyBackend(threads)
    if name == "cupy":
        return CupyBackend()
    if name == "opencl":
        from .opencl import OpenCLBackend

        return OpenCLBackend.for_device()  # SAS_OPENCL / PYOPENCL_CTX, else a GPU before a CPU device
    raise AssertionError(name)


@functools.cache
def _cupy_usable() -> bool:
    try:
        _make("cupy")
    except Exception:  # ImportError, CUDARuntimeError, missing driver: all mean "no CUDA here"
        return False
    return True


@functools.cache
def _opencl_auto_usable() -> bool:
    # "auto" takes OpenCL only on a non-CPU device (never PoCL's CPU device: NumPy is the better CPU backend).
    if importlib.util.find_spec("pyopencl") is None:
        return False
    try:
        from .opencl import auto_device

        if auto_device() is None:
            return False
        _make("opencl")
    except Exception:  # a driver that fails to build or run our kernels: "auto" moves on
        return False
    return True


def _opencl_present() -> bool:
    if importlib.util.find_spec("pyopencl") is None or importlib.util.find_spec("pyvkfft") is None:
        return False
    try:
        from .opencl import select_device

        select_device()
    except Exception:  # no platform, no device, bad selector
        return False
    return True


def available_backends() -> list[str]:
    """Names of the backends that work on this machine (``opencl``: pyopencl, pyvkfft and a device, CPU too)."""
    names = ["numpy"]
    if _cupy_usable():
        names.append("cupy")
    if _opencl_present():
        names.append("opencl")
    return names


def get_backend(backend: str | Backend | None = None, threads: int | None = None) -> Backend:
    """Resolve a backend name.

    Parameters
    ----------
    backend
        ``"numpy"``, ``"cupy"``, ``"opencl"``, ``"auto"`` or ``None`` (CuPy when a CUDA device
        works, else OpenCL on a GPU or accelerator, never on a CPU device, else NumPy), or a
        :class:`Backend` instance (returned as is). ``"opencl"`` takes the device named by
        ``SAS_OPENCL`` or ``PYOPENCL_CTX`` (sasmodels' convention), else a GPU before a CPU device.
    threads
        CPU threads of the NumPy backend (default: ``SASVIEW_GRF_THREADS`` or all cores).
    """
    if isinstance(backend, Backend):
        return backend
    if backend is None or backend == "auto":
        if _cupy_usable():
            return _make("cupy")
        if _opencl_auto_usable():
            return _make("opencl")
        return _make("numpy", threads)
    if backend not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKEND_NAMES)}")
    if backend == "cupy" and not _cupy_usable():
        raise RuntimeError(
            "backend 'cupy' was requested but CuPy or a CUDA device is not available; "
            "install the 'gpu' extra (pip install 'sasview-grf-plugin[gpu]') on a machine with an "
            "NVIDIA GPU, or use backend='numpy'"
        )
    if backend == "opencl":
        return _make("opencl")  # RuntimeError saying what to install when pyopencl, pyvkfft or a device is missing
    return _make(backend, threads if backend == "numpy" else None)
