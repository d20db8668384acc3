"""OpenCL backend: the simulator's stages as OpenCL kernels (pyopencl) with VkFFT's FFTs (pyvkfft).

For GPUs that are not NVIDIA (AMD, Intel, Apple through PoCL or vendor drivers), and for testing on
PoCL's CPU device. ``pyopencl.array`` is not a NumPy-compatible namespace (no partition, take or
bincount), so this backend implements the stages itself (``native_stages``) and the generic code in
:mod:`.structure`, :mod:`.grid` and :mod:`.scattering` calls them:

- **GRF** (:meth:`OpenCLBackend.grf`): one kernel draws F W in Fourier space from a counter-based
  Philox4x32-10 generator keyed by the :class:`numpy.random.SeedSequence` (the counter is the flat
  index of the half-space entry), multiplies by sqrt(N^3 Gamma) per shell and pairs q with -q in the
  self-conjugate planes k = 0 and k = N/2 (it recomputes the mirror's draw from its counter); then one
  inverse real FFT. The same seed on the same device gives the same field; the random stream differs
  from the NumPy and CuPy backends' (same distribution).
- **Quantiles** (:meth:`OpenCLBackend.classify`): radix selection without a sort. Values map to
  order-preserving unsigned keys; a device histogram (local-memory atomics) of 10-11 key bits per pass
  finds the bin that holds the k-th smallest, and the next pass refines inside it, for both thresholds
  at once: 3 passes in float32, 6 in float64. The k-th value is exact. Ties across a threshold are
  broken by flat index (per-row counts of equal keys, the cut row read back), exactly as the NumPy path
  does, so the phase counts are exact and the labels equal NumPy's on the same field.
- **Smoothing**: real FFT, one kernel multiplying by the Gaussian per shell, inverse FFT.
- **Shell sums** (:meth:`OpenCLBackend.shell_sums`): no float atomics (not portable in OpenCL 1.2).
  The sums of ``|F|^2`` over the shells s = i^2 + j^2 + k^2 are computed in two gather passes that need no atomics:
  first, for every k column and every a = i^2 + j^2, the sum over the (i, j) with that a (a host-made
  table of the (i, j) sorted by a); then, for every s, the sum over k of the first pass's entry at
  a = s - k^2, k = 0 and k = N/2 weighted 1, other k 2 (they stand for -k too). Accumulation is in
  float64 when the device has ``cl_khr_fp64`` (then the sums equal NumPy's ``bincount`` up to the
  summation order, relative 1e-15), else in float32 with Kahan compensation (relative error ~1e-7).
  The reduction to I(q) then uses the host sparse matrix of :func:`.scattering.reduce_shells`.

Device choice follows sasmodels' convention: ``SAS_OPENCL`` (``platform[:device]``, each an index or a
case-insensitive part of the name, as ``PYOPENCL_CTX``) selects the device, else ``PYOPENCL_CTX``,
else the first GPU or accelerator, else a CPU device. ``backend="auto"`` uses OpenCL only for a
non-CPU device and never when ``SAS_OPENCL`` is ``none`` or ``cuda...`` (see :func:`auto_device`).

Memory: :meth:`OpenCLBackend.available_memory` is the device's global memory less what this backend
holds (AMD's free-memory query where the driver has it; for CPU devices at most the host's free
memory), and no single buffer may exceed ``CL_DEVICE_MAX_MEM_ALLOC_SIZE``; both raise
:class:`~.backends.InsufficientMemoryError` before allocating.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from typing import Any

import numpy as np

from .backends import Backend, InsufficientMemoryError
from .grid import max_shell

__all__ = ["OpenCLBackend", "PhiloxGenerator", "select_device", "auto_device", "list_devices", "INSTALL_HINT"]

INSTALL_HINT = (
    'pip install "sasview-grf-plugin[opencl]" (pyopencl and pyvkfft) plus an OpenCL driver for the device: '
    "the GPU vendor's driver, or PoCL for CPUs (Debian/Ubuntu: apt-get install pocl-opencl-icd; "
    "or pip install pocl-binary-distribution)"
)

# Radix selection: (shift, bits) of the key bits refined per histogram pass, most significant first.
_LEVELS = {4: ((21, 11), (10, 11), (0, 10)), 8: ((53, 11), (42, 11), (31, 11), (20, 11), (10, 10), (0, 10))}
_NBINS = 2048
# Byte budget of the first shell-sum pass's buffer (k columns are processed in blocks that fit).
_PLANE_BUDGET = 64 * 2**20

_SOURCE = r"""
#pragma OPENCL FP_CONTRACT OFF
#if defined(REAL_IS_DOUBLE) || defined(HAVE_FP64)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#ifdef REAL_IS_DOUBLE
typedef double real;
typedef double2 real2;
typedef ulong skey;
#define KEY_SIGN 0x8000000000000000UL
#define KEY_BITS(v) as_ulong(v)
#else
typedef float real;
typedef float2 real2;
typedef uint skey;
#define KEY_SIGN 0x80000000u
#define KEY_BITS(v) as_uint(v)
#endif

#ifdef HAVE_FP64
typedef double acc_t;
#define ACC_ADD(acc, comp, v) (acc) += (v)
#else
/* Kahan compensated summation in float32 when the device has no double precision. */
typedef float acc_t;
#define ACC_ADD(acc, comp, v) do { float y_ = (v) - (comp); float t_ = (acc) + y_; \
                                   (comp) = (t_ - (acc)) - y_; (acc) = t_; } while (0)
#endif

/* Order-preserving unsigned key of a float (-0.0 counts as +0.0, as in comparisons). */
inline skey to_key(real v) {
    skey b = KEY_BITS(v);
    if (b == KEY_SIGN) b = 0;
    return (b & KEY_SIGN) ? ~b : (b | KEY_SIGN);
}

/* Signed FFT frequency squared of index i on an n-point axis. */
inline int fsq(int i, int n) { int f = min(i, n - i); return f * f; }

/* Philox4x32-10 (Salmon et al., SC'11), unrolled. */
/* The 32x32 -> 64-bit products as ulong multiplications: CPU compilers vectorize these, not mul_hi. */
#define PHILOX_ROUND(c, k) do { \
        const ulong p0_ = (ulong)0xD2511F53u * c.x, p1_ = (ulong)0xCD9E8D57u * c.z; \
        c = (uint4)((uint)(p1_ >> 32) ^ c.y ^ k.x, (uint)p1_, (uint)(p0_ >> 32) ^ c.w ^ k.y, (uint)p0_); } while (0)
#define PHILOX_BUMP(k) do { k.x += 0x9E3779B9u; k.y += 0xBB67AE85u; } while (0)
inline uint4 philox(uint4 c, uint2 k) {
    PHILOX_ROUND(c, k); PHILOX_BUMP(k); PHILOX_ROUND(c, k); PHILOX_BUMP(k);
    PHILOX_ROUND(c, k); PHILOX_BUMP(k); PHILOX_ROUND(c, k); PHILOX_BUMP(k);
    PHILOX_ROUND(c, k); PHILOX_BUMP(k); PHILOX_ROUND(c, k); PHILOX_BUMP(k);
    PHILOX_ROUND(c, k); PHILOX_BUMP(k); PHILOX_ROUND(c, k); PHILOX_BUMP(k);
    PHILOX_ROUND(c, k); PHILOX_BUMP(k); PHILOX_ROUND(c, k);
    return c;
}

__kernel void philox_raw(__global uint4 *out, const uint c0, const uint c1, const uint c2, const uint c3,
                         const uint k0, const uint k1) {
    out[0] = philox((uint4)(c0, c1, c2, c3), (uint2)(k0, k1));
}

/* Two uniforms in [0, 1) from one Philox draw (24 bits each in float32, 53 in float64). */
inline real2 uniform2(ulong idx, uint s0, uint s1, uint s2, uint s3) {
    const uint4 r = philox((uint4)((uint)idx, (uint)(idx >> 32), s2, s3), (uint2)(s0, s1));
#ifdef REAL_IS_DOUBLE
    return (real2)(((double)(r.x >> 5) * 67108864.0 + (double)(r.y >> 6)) * (1.0 / 9007199254740992.0),
                   ((double)(r.z >> 5) * 67108864.0 + (double)(r.w >> 6)) * (1.0 / 9007199254740992.0));
#else
    return (real2)((float)(r.x >> 8) * (1.0f / 16777216.0f), (float)(r.y >> 8) * (1.0f / 16777216.0f));
#endif
}

/* Exp(1) from a uniform in [0, 1): log2 and sinpi/cospi below are exact built-ins like log and sincos,
   and several times faster on PoCL's CPU device. */
inline real exponential(real u) { return (real)-0.693147180559945309417 * log2((real)1 - u); }

/* Circular complex normal with E|z|^2 = 1: sqrt(Exp(1)) exp(2 pi i U). */
inline real2 circular_normal(ulong idx, uint s0, uint s1, uint s2, uint s3) {
    const real2 u = uniform2(idx, s0, s1, s2, s3);
    const real amp = sqrt(exponential(u.x));
    return (real2)(amp * cospi(2 * u.y), amp * sinpi(2 * u.y));
}

/* Fill `size` values: uniform in [0, 1) (mode 0) or standard exponential (mode 1). */
__kernel void philox_fill(__global real *out, const ulong size, const int mode,
                          const uint s0, const uint s1, const uint s2, const uint s3) {
    const size_t g = get_global_id(0);
    if (g >= size) return;
    const real u = uniform2(g, s0, s1, s2, s3).x;
    out[g] = mode ? exponential(u) : u;
}

/* F W Gamma^1/2 on the rfft half space (n, n, m), Hermitian in the planes k = 0 and k = n/2. */
__kernel void grf_fill(__global real2 *f, const int n, const int m, __global const real *amp,
                       const uint s0, const uint s1, const uint s2, const uint s3) {
    const uint g = get_global_id(0);
    if (g >= (uint)n * n * m) return;
    const uint row = g / m;
    const int k = g - row * m, i = row / n, j = row - i * n;
    real2 z = circular_normal(g, s0, s1, s2, s3);
    if (k == 0 || 2 * k == n) {
        const int ni = (n - i) % n, nj = (n - j) % n;
        const real2 zm = circular_normal(((uint)ni * n + nj) * m + k, s0, s1, s2, s3);
        z = (real2)(z.x + zm.x, z.y - zm.y) * (real)0.70710678118654752440;
    }
    f[g] = amp[fsq(i, n) + fsq(j, n) + k * k] * z;
}

/* Multiply a half-space spectrum by a per-shell table (Gaussian smoothing). */
__kernel void mul_shell(__global real2 *f, const int n, const int m, __global const real *table) {
    const uint g = get_global_id(0);
    if (g >= (uint)n * n * m) return;
    const uint row = g / m;
    const int k = g - row * m, i = row / n, j = row - i * n;
    f[g] *= table[fsq(i, n) + fsq(j, n) + k * k];
}

/* Histograms of key bits [shift, shift + bits) of the keys whose bits above match prefix0 and, if dual,
   prefix1 (integer atomics in local memory, then one global atomic add per non-empty bin and group). */
__kernel void key_histogram(__global const real *x, const ulong size, const int shift, const uint bmask,
                            const skey pmask, const skey prefix0, const skey prefix1, const int dual,
                            __global uint *hist, __local uint *lh) {
    const int lid = get_local_id(0), lsz = get_local_size(0), nb = dual ? 2 * NBINS : NBINS;
    for (int b = lid; b < nb; b += lsz) lh[b] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t g = get_global_id(0); g < size; g += get_global_size(0)) {
        const skey key = to_key(x[g]);
        const uint bin = (uint)(key >> shift) & bmask;
        if ((key & pmask) == prefix0) atomic_inc(&lh[bin]);
        if (dual && (key & pmask) == prefix1) atomic_inc(&lh[NBINS + bin]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int b = lid; b < nb; b += lsz)
        if (lh[b]) atomic_add(&hist[b], lh[b]);
}

/* Number of keys equal to t in each row of `len` values. */
__kernel void count_equal_rows(__global const real *x, const int len, const ulong rows, const skey t,
                               __global uint *counts) {
    const size_t r = get_global_id(0);
    if (r >= rows) return;
    uint c = 0;
    for (int q = 0; q < len; q++) c += to_key(x[r * len + q]) == t;
    counts[r] = c;
}

/* values v0 on entries below both thresholds, v1 below the second only, v2 elsewhere; entry g is below
   threshold (t, c) if key < t, or key == t and g < c (ties by flat index). */
#define CLASSIFY(NAME, OUT)                                                                                    \
__kernel void NAME(__global const real *x, const ulong size, const skey t1, const ulong c1, const skey t2,     \
                   const ulong c2, const OUT v0, const OUT v1, const OUT v2, __global OUT *out) {            \
    const size_t g = get_global_id(0);                                                                         \
    if (g >= size) return;                                                                                     \
    const skey key = to_key(x[g]);                                                                             \
    const int b = (key < t1 || (key == t1 && g < c1)) + (key < t2 || (key == t2 && g < c2));                   \
    out[g] = b == 2 ? v0 : (b == 1 ? v1 : v2);                                                                 \
}
CLASSIFY(classify_uint8, uchar)
CLASSIFY(classify_float32, float)
#ifdef HAVE_FP64
CLASSIFY(classify_float64, double)
#endif

/* Pass 1 of the shell sums: p[a, kk] = sum over (i, j) with i^2 + j^2 = a of value(i, j, k0 + kk). */
#define PLANE_SUMS(NAME, IN, VALUE)                                                                            \
__kernel void NAME(__global const IN *f, const int m, const int k0, const int kb, __global const int *order, \
                   __global const int *offsets, const int n_a, __global acc_t *p) {                           \
    const size_t g = get_global_id(0);                                                                         \
    if (g >= (size_t)n_a * kb) return;                                                                         \
    const int kk = g % kb, a = g / kb, k = k0 + kk;                                                            \
    acc_t acc = 0, comp = 0;                                                                                   \
    if (k < m)                                                                                                 \
        for (int q = offsets[a]; q < offsets[a + 1]; q++) {                                                    \
            const IN v = f[(size_t)order[q] * m + k];                                                          \
            const real w = VALUE;                                                                              \
            ACC_ADD(acc, comp, (acc_t)w);                                                                      \
        }                                                                                                      \
    p[g] = acc;                                                                                                \
}
PLANE_SUMS(plane_sums_sq, real2, v.x * v.x + v.y * v.y)
PLANE_SUMS(plane_sums_real, real, v)

/* Pass 2: out[s] += sum over the block's k of w_k p[s - k^2, k - k0]; w = 1 for k = 0 and k = n/2. */
__kernel void gather_shells(__global const acc_t *p, const int k0, const int kb, const int m, const int n_a,
                            const int nyquist, const int s_count, __global acc_t *out) {
    const int s = get_global_id(0);
    if (s >= s_count) return;
    acc_t acc = 0, comp = 0;
    for (int kk = 0; kk < kb; kk++) {
        const int k = k0 + kk;
        const int a = s - k * k;
        if (k >= m || a < 0) break;
        if (a < n_a) {
            const acc_t w = (k == 0 || k == nyquist) ? 1 : 2;
            ACC_ADD(acc, comp, w * p[(size_t)a * kb + kk]);
        }
    }
    out[s] += acc;
}
"""


# -- pyopencl, platforms and devices ----------------------------------------------------------------------
def _cl() -> Any:
    try:
        import pyopencl
    except ImportError as exc:
        raise RuntimeError(f"the OpenCL backend needs pyopencl ({exc}); {INSTALL_HINT}") from None
    return pyopencl


def list_devices() -> list[Any]:
    """All OpenCL devices of all platforms, in platform order. Raises ``RuntimeError`` if there are none."""
    cl = _cl()
    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:  # PLATFORM_NOT_FOUND_KHR from the ICD loader
        raise RuntimeError(f"no OpenCL platform found ({exc}); {INSTALL_HINT}") from None
    devices = []
    for p in platforms:
        try:
            devices.extend(p.get_devices())
        except cl.Error:  # DEVICE_NOT_FOUND on a platform without devices
            continue
    if not devices:
        raise RuntimeError(f"no OpenCL device found on the platforms {[p.name for p in platforms]}; {INSTALL_HINT}")
    return devices


def _env_selector() -> str | None:
    # sasmodels' SAS_OPENCL: "none", "opencl" (any OpenCL device), "cuda[:n]", or a PYOPENCL_CTX-style selector.
    sas = os.environ.get("SAS_OPENCL", "").strip()
    if sas and sas.lower() not in ("none", "opencl") and not sas.lower().startswith("cuda"):
        return sas
    return os.environ.get("PYOPENCL_CTX", "").strip() or None


def _pick(items: list[Any], key: str, what: str, spec: str) -> list[Any]:
    if key == "":
        return items
    if key.isdigit():
        i = int(key)
        if i >= len(items):
            raise RuntimeError(f"OpenCL selector {spec!r}: no {what} #{i} (there are {len(items)})")
        return [items[i]]
    hits = [it for it in items if key.lower() in it.name.lower()]
    if not hits:
        raise RuntimeError(f"OpenCL selector {spec!r}: no {what} named like {key!r} in "
                           f"{[it.name for it in items]}")
    return hits


def _rank(device: Any) -> int:
    cl = _cl()
    t = device.type
    if t & cl.device_type.GPU:
        return 0
    if t & cl.device_type.CPU:
        return 2
    return 1  # accelerators and custom devices: the user installed them to use them


def select_device(spec: str | None = None) -> Any:
    """The OpenCL device for ``spec``, ``platform[:device]`` with indices or name parts (as ``PYOPENCL_CTX``).

    Without ``spec``: ``SAS_OPENCL`` when it names a device, else ``PYOPENCL_CTX``, else the first GPU,
    then accelerator, then CPU device. Raises ``RuntimeError`` saying what to install or fix.
    """
    devices = list_devices()
    if spec is None:
        spec = _env_selector()
    if spec is None:
        return min(devices, key=_rank)
    parts = spec.split(":")
    platforms = []
    for d in devices:
        if all(d.platform != p for p in platforms):
            platforms.append(d.platform)
    chosen = _pick(platforms, parts[0].strip(), "platform", spec)
    candidates = [d for p in chosen for d in devices if d.platform == p]
    if len(parts) > 1:
        candidates = _pick(candidates, parts[1].strip(), "device", spec)
    return min(candidates, key=_rank)


def auto_device() -> Any | None:
    """The device ``backend="auto"`` may use: the selected device if it is not a CPU, else ``None``.

    ``None`` also when pyopencl or pyvkfft is missing, no platform exists, or ``SAS_OPENCL`` is ``none``
    or ``cuda...`` (sasmodels' settings for "no OpenCL"). PoCL's CPU device is never chosen here: the
    NumPy backend is the better CPU backend.
    """
    sas = os.environ.get("SAS_OPENCL", "").strip().lower()
    if sas == "none" or sas.startswith("cuda"):
        return None
    try:
        cl = _cl()
        device = select_device()
        if device.type & cl.device_type.CPU:
            return None
        import pyvkfft.opencl  # noqa: F401
    except Exception:  # missing library, no platform, bad selector: all mean "no OpenCL GPU for auto"
        return None
    return device


# -- the backend ------------------------------------------------------------------------------------------
def _device_errors(method: Any) -> Any:
    """Serialize device work (kernel arguments are not thread-safe) and name out-of-memory errors."""

    @functools.wraps(method)
    def wrapper(self: OpenCLBackend, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except self._clmod.MemoryError as exc:
                raise InsufficientMemoryError(
                    f"the OpenCL device '{self.device_name}' ran out of memory ({exc}); use a smaller grid_size "
                    f"(memory grows as N^3) or another device (SAS_OPENCL)") from None

    return wrapper


class OpenCLBackend(Backend):
    """OpenCL backend: pyopencl arrays, VkFFT transforms (pyvkfft) and the stages as kernels.

    Use :meth:`for_device` to share one backend (context, compiled kernels, FFT plans) per device.

    Parameters
    ----------
    device
        A ``pyopencl.Device``, a selector string ``platform[:device]`` (see :func:`select_device`), or
        ``None`` for the default device (``SAS_OPENCL``, ``PYOPENCL_CTX``, else GPU before CPU).
    """

    name = "opencl"
    native_stages = True

    def __init__(self, device: Any = None) -> None:
        cl = _cl()
        try:
            import pyopencl.array as cla
            import pyopencl.tools as clt
            from pyvkfft.opencl import VkFFTApp
        except ImportError as exc:
            raise RuntimeError(f"the OpenCL backend needs pyvkfft for its FFTs ({exc}); {INSTALL_HINT}") from None
        if device is None or isinstance(device, str):
            device = select_device(device)
        self._clmod = cl
        self._cla = cla
        self._app_cls = VkFFTApp
        self.device = device
        self.device_name = f"{device.name.strip()} ({device.platform.name.strip()})"
        self.xp = cla  # informational: pyopencl.array is not NumPy-compatible, hence native_stages
        self.context = cl.Context([device])
        self.queue = cl.CommandQueue(self.context)
        self.pool = clt.MemoryPool(clt.ImmediateAllocator(self.queue))
        self.fp64 = "cl_khr_fp64" in device.extensions
        self.is_cpu = bool(device.type & cl.device_type.CPU)
        self.global_memory = int(device.global_mem_size)
        self.max_alloc = int(device.max_mem_alloc_size)
        self._lock = threading.RLock()
        self._programs: dict[str, Any] = {}
        self._kernels: dict[tuple[str, str], tuple[Any, int]] = {}
        self._apps: dict[tuple[int, str], Any] = {}
        self._tables: dict[Any, Any] = {}
        self._finite: dict[str, Any] = {}

    @classmethod
    def for_device(cls, device: Any = None) -> OpenCLBackend:
        """The shared backend of ``device`` (a ``pyopencl.Device``, a selector string or ``None``)."""
        if device is None or isinstance(device, str):
            device = select_device(device)
        return _shared_backend(device)

    def __repr__(self) -> str:
        return f"<OpenCLBackend {self.device_name!r}>"

    # -- memory and arrays ------------------------------------------------------------------------------
    def available_memory(self) -> int:
        held = int(self.pool.managed_bytes) - int(self.pool.active_bytes)  # reusable by this backend
        free = self.global_memory - int(self.pool.active_bytes)
        if "cl_amd_device_attribute_query" in self.device.extensions:
            try:
                free_kb = self.device.get_info(self._clmod.device_info.GLOBAL_FREE_MEMORY_AMD)
                free = min(free, int(free_kb[0]) * 1024 + held)
            except Exception:  # driver without the query: keep the estimate
                pass
        if self.is_cpu:
            import psutil

            free = min(free, int(psutil.virtual_memory().available) + held)
        return max(free, 0)

    def _empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes > self.max_alloc:
            raise InsufficientMemoryError(
                f"an array of shape {tuple(shape)} ({dtype.name}, {nbytes / 2**30:.2f} GiB) exceeds the largest "
                f"buffer the OpenCL device '{self.device_name}' allows (CL_DEVICE_MAX_MEM_ALLOC_SIZE = "
                f"{self.max_alloc / 2**30:.2f} GiB); use a smaller grid_size")
        return self._cla.empty(self.queue, shape, dtype, allocator=self.pool)

    def _check_dtype(self, dtype: Any) -> np.dtype:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"the OpenCL backend computes in float32 or float64, got {dtype.name}")
        if dtype == np.float64 and not self.fp64:
            raise ValueError(f"the OpenCL device '{self.device_name}' has no double precision (cl_khr_fp64); "
                             "use dtype='float32'")
        return dtype

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        cla = self._cla
        if isinstance(x, cla.Array):
            if x.context != self.context:
                x = x.get()
            elif dtype is None or x.dtype == np.dtype(dtype):
                return x
            else:
                return x.astype(dtype)
        host = np.ascontiguousarray(np.asarray(x, dtype=dtype))
        out = self._empty(host.shape, host.dtype)
        out.set(host)
        return out

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.get() if isinstance(x, self._cla.Array) else np.asarray(x)

    def synchronize(self) -> None:
        self.queue.finish()

    @_device_errors
    def all_finite(self, x: Any) -> bool:
        from pyopencl.reduction import ReductionKernel

        x = self.asarray(x)
        key = x.dtype.name
        if key not in self._finite:
            ctype = "double" if x.dtype == np.float64 else "float"
            self._finite[key] = ReductionKernel(self.context, np.int64, neutral="0", reduce_expr="a+b",
                                                map_expr="isfinite(x[i]) ? 0 : 1",
                                                arguments=f"__global const {ctype} *x")
        return int(self._finite[key](x, queue=self.queue).get()) == 0

    # -- kernels ----------------------------------------------------------------------------------------
    def _kernel(self, dtype: Any, name: str) -> tuple[Any, int]:
        """Kernel ``name`` of the program for real type ``dtype`` (built once) and its work-group size."""
        key = (np.dtype(dtype).name, name)
        hit = self._kernels.get(key)
        if hit is None:
            prg = self._programs.get(key[0])
            if prg is None:
                options = [f"-DNBINS={_NBINS}"]
                if key[0] == "float64":
                    options.append("-DREAL_IS_DOUBLE")
                if self.fp64:
                    options.append("-DHAVE_FP64")
                prg = self._programs[key[0]] = self._clmod.Program(self.context, _SOURCE).build(options=options)
            kernel = getattr(prg, name)
            wg = kernel.get_work_group_info(self._clmod.kernel_work_group_info.WORK_GROUP_SIZE, self.device)
            hit = self._kernels[key] = (kernel, min(256, int(wg)))
        return hit

    def _launch(self, dtype: Any, name: str, total: int, *args: Any, local_bytes: int = 0,
                groups: int | None = None) -> None:
        """Run kernel ``name`` over ``total`` work items (rounded up to whole work groups) or ``groups`` groups."""
        kernel, wg = self._kernel(dtype, name)
        if groups is None:
            groups = max(1, -(-int(total) // wg))
        if local_bytes:
            args = (*args, self._clmod.LocalMemory(local_bytes))
        kernel(self.queue, (groups * wg,), (wg,), *args)

    def _keys(self, dtype: np.dtype) -> tuple[type, int]:
        return (np.uint64, 2**64 - 1) if dtype == np.float64 else (np.uint32, 2**32 - 1)

    # -- FFTs -------------------------------------------------------------------------------------------
    def _app(self, n: int, dtype: np.dtype) -> Any:
        key = (n, dtype.name)
        app = self._apps.get(key)
        if app is None:
            app = self._app_cls((n, n, n), dtype, self.queue, ndim=3, inplace=False, r2c=True)
            self._apps[key] = app
        return app

    @staticmethod
    def _cube(shape: tuple[int, ...]) -> int:
        if len(shape) != 3 or len(set(shape)) != 1:
            raise ValueError(f"the OpenCL backend transforms (N, N, N) cubes, got shape {tuple(shape)}")
        n = int(shape[0])
        if n * n * (n // 2 + 1) >= 2**32:
            raise ValueError(f"grid_size={n} is too large for the OpenCL kernels' 32-bit indices (N <= 1290)")
        return n

    @_device_errors
    def rfftn(self, x: Any) -> Any:
        x = self.asarray(x)
        dtype = self._check_dtype(x.dtype)
        n = self._cube(x.shape)
        if not x.flags.c_contiguous:
            raise ValueError("the OpenCL backend transforms C-contiguous arrays only")
        out = self._empty((n, n, n // 2 + 1), np.result_type(dtype, np.complex64))
        self._app(n, dtype).fft(x, out)
        return out

    @_device_errors
    def irfftn(self, f: Any, n: int) -> Any:
        f = self.asarray(f)
        dtype = self._check_dtype(np.finfo(f.dtype).dtype)
        if tuple(f.shape) != (n, n, n // 2 + 1):
            raise ValueError(f"expected a half spectrum of shape {(n, n, n // 2 + 1)}, got {tuple(f.shape)}")
        out = self._empty((n, n, n), dtype)
        self._app(n, dtype).ifft(f, out)  # overwrites f (C2R), as CuPy's overwrite_x=True may
        return out

    def generator(self, seed: np.random.SeedSequence) -> PhiloxGenerator:
        return PhiloxGenerator(self, seed)

    # -- the simulator's stages -------------------------------------------------------------------------
    def _shell_table(self, values: np.ndarray, dtype: np.dtype) -> Any:
        return self.asarray(np.asarray(values, dtype=dtype))

    @_device_errors
    def grf(self, config: Any, a: float, seed: np.random.SeedSequence, spectrum: Any = None) -> Any:
        """The Gaussian random field of :func:`.structure._grf`, drawn by Philox from ``seed``.

        Any spectrum of :mod:`sasview_grf_plugin.spectra`: its filter sqrt(N^3 Gamma) per shell is a host
        table (:func:`.structure.shell_amplitudes`), the kernel is the same.
        """
        from .structure import shell_amplitudes

        n = self._cube((config.grid_size,) * 3)
        rdtype = self._check_dtype(config.dtype)
        m = n // 2 + 1
        amp = self._shell_table(shell_amplitudes(n, a, config.dq, max_shell(n), spectrum), rdtype)
        f = self._empty((n, n, m), np.result_type(rdtype, np.complex64))
        state = [np.uint32(v) for v in seed.generate_state(4, np.uint32)]
        self._launch(rdtype, "grf_fill", n * n * m, f.data, np.int32(n), np.int32(m), amp.data, *state)
        return self.irfftn(f, n)

    @_device_errors
    def smooth(self, config: Any, field: Any) -> Any:
        """Periodic Gaussian smoothing of :func:`.structure._smooth`."""
        field = self.asarray(field)
        dtype = self._check_dtype(field.dtype)
        n = self._cube(field.shape)
        key = ("smooth", n, float(config.smoothing_sigma), dtype.name)
        table = self._tables.get(key)
        if table is None:
            s = np.arange(max_shell(n) + 1, dtype=np.float64)
            table = self._shell_table(np.exp(-0.5 * config.smoothing_sigma**2 * (2 * math.pi / n) ** 2 * s), dtype)
            self._tables[key] = table
        spec = self.rfftn(field)
        m = n // 2 + 1
        self._launch(dtype, "mul_shell", n * n * m, spec.data, np.int32(n), np.int32(m), table.data)
        return self.irfftn(spec, n)

    def _select(self, x: Any, ranks: list[int]) -> dict[int, tuple[int, int, int]]:
        """Radix selection: for each rank k (1-based), (key of the k-th smallest, #keys below it, #equal)."""
        ktype, _ = self._keys(x.dtype)
        size = x.size
        ranks = sorted(set(ranks))
        pair = (ranks + ranks)[:2]  # the kernel histograms two prefixes per pass
        prefix = [0, 0]
        below = [0, 0]
        equal = [0, 0]
        pmask = 0
        wg = self._kernel(x.dtype, "key_histogram")[1]
        groups = max(1, min(-(-size // (wg * 16)), 8 * int(self.device.max_compute_units)))
        hist = self._empty((2 * _NBINS,), np.uint32)
        for shift, bits in _LEVELS[x.dtype.itemsize]:
            hist.fill(0)
            bmask = (1 << bits) - 1
            dual = prefix[0] != prefix[1]
            self._launch(x.dtype, "key_histogram", 0, x.data, np.uint64(size), np.int32(shift), np.uint32(bmask),
                         ktype(pmask), ktype(prefix[0]), ktype(prefix[1]), np.int32(dual), hist.data,
                         local_bytes=2 * _NBINS * 4, groups=groups)
            h = hist.get().reshape(2, _NBINS)[:, : bmask + 1].astype(np.int64)
            if not dual:
                h[1] = h[0]
            for j in range(2):
                cum = np.cumsum(h[j])
                b = int(np.searchsorted(cum, pair[j] - below[j]))  # first bin reaching the rank
                below[j] += int(cum[b] - h[j, b])
                equal[j] = int(h[j, b])
                prefix[j] |= b << shift
            pmask |= bmask << shift
        return {pair[j]: (prefix[j], below[j], equal[j]) for j in range(2)}

    def _tie_cutoff(self, x: Any, key: int, need: int) -> int:
        """Flat index c such that exactly ``need`` entries with this key lie before c."""
        ktype, _ = self._keys(x.dtype)
        length = int(x.shape[-1]) if x.ndim else 1
        rows = x.size // length
        counts = self._empty((rows,), np.uint32)
        self._launch(x.dtype, "count_equal_rows", rows, x.data, np.int32(length), np.uint64(rows), ktype(key),
                     counts.data)
        per_row = counts.get().astype(np.int64)
        cum = np.cumsum(per_row)
        r = int(np.searchsorted(cum, need))  # the row holding the need-th equal entry
        before = int(cum[r] - per_row[r])
        row = x.ravel()[r * length:(r + 1) * length].get()
        hits = np.flatnonzero(_host_keys(row) == key)
        return r * length + int(hits[need - before - 1]) + 1

    @_device_errors
    def classify(self, x: Any, k1: int, k2: int, values: tuple[Any, Any, Any], dtype: Any) -> Any:
        """:func:`.structure._classify`: values[0] on the k1 smallest, values[1] on the next k2 - k1, values[2] else.

        Exactly the labels of the NumPy path on the same field (ties by flat index).
        """
        x = self.asarray(x)
        self._check_dtype(x.dtype)
        if not x.flags.c_contiguous:
            raise ValueError("classify needs a C-contiguous array")
        out_dtype = np.dtype(dtype)
        kernel_name = {"uint8": "classify_uint8", "float32": "classify_float32", "float64": "classify_float64"}.get(
            out_dtype.name)
        if kernel_name is None:
            raise ValueError(f"the OpenCL backend classifies into uint8, float32 or float64, got {out_dtype.name}")
        if out_dtype == np.float64:
            self._check_dtype(out_dtype)
        size = x.size
        ktype, kmax = self._keys(x.dtype)
        inside = [k for k in (k1, k2) if 0 < k < size]
        selected = self._select(x, inside) if inside else {}

        def rule(k: int) -> tuple[int, int]:
            if k <= 0:
                return 0, 0  # nothing is below
            if k >= size:
                return kmax, size  # everything is below
            key, below, equal = selected[k]
            need = k - below
            return key, (size if need == equal else self._tie_cutoff(x, key, need))

        (t1, c1), (t2, c2) = rule(k1), rule(k2)
        out = self._empty(x.shape, out_dtype)
        vals = [out_dtype.type(values[i]) for i in range(3)]
        self._launch(x.dtype, kernel_name, size, x.data, np.uint64(size), ktype(t1),
                     np.uint64(c1), ktype(t2), np.uint64(c2), *vals, out.data)
        return out

    def _plane_geometry(self, n: int) -> tuple[Any, Any, int]:
        key = ("planes", n)
        hit = self._tables.get(key)
        if hit is None:
            f2 = np.minimum(np.arange(n), n - np.arange(n)) ** 2
            a = (f2[:, None] + f2[None, :]).ravel()
            order = np.argsort(a, kind="stable").astype(np.int32)
            n_a = 2 * (n // 2) ** 2 + 1
            offsets = np.concatenate([[0], np.cumsum(np.bincount(a, minlength=n_a))]).astype(np.int32)
            hit = (self.asarray(order), self.asarray(offsets), n_a)
            self._tables[key] = hit
        return hit

    @_device_errors
    def shell_sums(self, values: Any, squared_magnitude: bool = False) -> np.ndarray:
        """:meth:`.grid.FourierGrid.shell_sums` without atomics (see the module docstring); NumPy float64."""
        values = self.asarray(values)
        shape = tuple(values.shape)
        if len(shape) != 3 or shape != (shape[0], shape[0], shape[0] // 2 + 1):
            raise ValueError(f"expected a half-space array of shape (N, N, N//2+1), got {shape}")
        n, m = shape[0], shape[2]
        complex_input = values.dtype.kind == "c"
        if complex_input and not squared_magnitude:
            raise ValueError("shell sums of complex values need squared_magnitude=True")
        rdtype = self._check_dtype(np.finfo(values.dtype).dtype if complex_input else values.dtype)
        order, offsets, n_a = self._plane_geometry(n)
        acc = np.float64 if self.fp64 else np.float32
        s_count = max_shell(n) + 1
        kb = max(1, min(m, _PLANE_BUDGET // (n_a * np.dtype(acc).itemsize)))
        out = self._empty((s_count,), acc)
        out.fill(0)
        p = self._empty((n_a * kb,), acc)
        plane = "plane_sums_sq" if complex_input else "plane_sums_real"
        nyquist = n // 2 if n % 2 == 0 else -1
        for k0 in range(0, m, kb):
            self._launch(rdtype, plane, n_a * kb, values.data, np.int32(m), np.int32(k0), np.int32(kb), order.data,
                         offsets.data, np.int32(n_a), p.data)
            self._launch(rdtype, "gather_shells", s_count, p.data, np.int32(k0), np.int32(kb), np.int32(m),
                         np.int32(n_a), np.int32(nyquist), np.int32(s_count), out.data)
        return out.get().astype(np.float64, copy=False)

    @_device_errors
    def philox(self, counter: tuple[int, int, int, int], key: tuple[int, int]) -> np.ndarray:
        """One Philox4x32-10 block on the device (for known-answer tests)."""
        out = self._empty((4,), np.uint32)
        args = [np.uint32(v) for v in (*counter, *key)]
        self._kernel(np.float32, "philox_raw")[0](self.queue, (1,), None, out.data, *args)
        return out.get()


@functools.cache
def _shared_backend(device: Any) -> OpenCLBackend:
    return OpenCLBackend(device)


def _host_keys(v: np.ndarray) -> np.ndarray:
    """The kernels' order-preserving keys of a float32/float64 NumPy array."""
    utype = np.uint64 if v.dtype == np.float64 else np.uint32
    sign = utype(1) << utype(8 * v.dtype.itemsize - 1)
    b = np.ascontiguousarray(v).view(utype).copy()
    b[b == sign] = 0
    return np.where(b & sign, ~b, b | sign)


class PhiloxGenerator:
    """NumPy-``Generator``-like source of device random numbers (``random``, ``standard_exponential``).

    Counter-based (Philox4x32-10) and keyed by the :class:`numpy.random.SeedSequence`: the same seed gives
    the same numbers; each call draws a fresh stream.
    """

    def __init__(self, backend: OpenCLBackend, seed: np.random.SeedSequence) -> None:
        self._backend = backend
        self._state = [int(v) for v in seed.generate_state(4, np.uint32)]
        self._calls = 0

    def _fill(self, size: Any, dtype: Any, mode: int) -> Any:
        be = self._backend
        dtype = be._check_dtype(dtype)
        shape = tuple(np.atleast_1d(size).tolist()) if size is not None else (1,)
        out = be._empty(shape, dtype)
        self._calls += 1
        s0, s1, s2, s3 = self._state
        state = [np.uint32(v) for v in (s0, s1, (s2 + self._calls) % 2**32, s3 ^ 0x5EED5EED)]
        with be._lock:
            be._launch(dtype, "philox_fill", out.size, out.data, np.uint64(out.size), np.int32(mode),
                       *state)
        return out

    def random(self, size: Any = None, dtype: Any = np.float64) -> Any:
        """Uniform values in [0, 1)."""
        return self._fill(size, dtype, 0)

    def standard_exponential(self, size: Any = None, dtype: Any = np.float64) -> Any:
        """Exp(1) values."""
        return self._fill(size, dtype, 1)
