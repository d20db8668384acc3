"""Benchmark of the SAXS simulator: one compact-preset sample against its FFT floor and a plain NumPy baseline.

Usage::

    python benchmarks/bench_simulator.py [--sizes 64 128 256] [--repeats R] [--backend numpy|cupy|opencl|auto]
                                         [--plain-max N] [--plain-repeats R] [--json out.json]

For each grid size N the configuration is ``PRESETS['compact'].replace(grid_size=N)`` (dx = 0.5 nm,
q = linspace(0.1, 3.0, 500) nm^-1, float32) with a = 2.5 nm, eps = 0.7, nu = 0.2 and a fresh seed per
repeat. Measured, all in the same run and interleaved repeat by repeat (so that drifts in clock speed or
load hit all of them alike), each the median over the repeats after a warm-up:

- ``sample``: ``simulate_curve(config, a, eps, nu, seed=i, backend=...)``, structure plus curve;
- the stages of one sample, calling the package's internal functions in order (GRF, threshold, smoothing,
  three-phase classification, FFT plus shell sums, reduction to I(q));
- ``floor``: five real FFTs of an N^3 cube of the same dtype with the backend's own ``rfftn``;
- ``plain``: :func:`plain_numpy.plain_simulate_curve`, a literal NumPy/SciPy implementation (N <= --plain-max).

Before timing, the plain reduction (paper Eqs. 3-4 on the folded octant) is checked against the package's
``scattering_curve`` on the same float64 density field (relative difference < 1e-6).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy

ROOT = Path(__file__).resolve().parents[1]
# Benchmark the checkout this file lives in, installed or not.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plain_numpy import plain_reduce, plain_simulate_curve  # noqa: E402

from sasview_grf_plugin.simulator import (  # noqa: E402
    PRESETS,
    generate_structure,
    get_backend,
    scattering_curve,
    simulate_curve,
)
from sasview_grf_plugin.simulator.backends import Backend  # noqa: E402
from sasview_grf_plugin.simulator.scattering import reduce_shells, shell_intensity  # noqa: E402
from sasview_grf_plugin.simulator.structure import _classify, _grf, _smooth  # noqa: E402

A, EPS, NU = 2.5, 0.7, 0.2
N_FLOOR_FFTS = 5
CHECK_RTOL = 1e-6
STAGES = ("grf", "threshold", "smooth", "classify", "shell_fft_sums", "reduce")
STAGE_HEADERS = ("GRF", "thresh", "smooth", "classify", "FFT+shells", "reduce")


# -- machine ---------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(backend: Backend) -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "backend": backend.name,
    }
    if backend.name == "numpy":
        info["fft_workers"] = getattr(backend, "workers", None)
    elif backend.name == "opencl":
        import pyopencl
        from pyvkfft.version import __version__ as pyvkfft_version

        info["pyopencl"] = pyopencl.VERSION_TEXT
        info["pyvkfft"] = pyvkfft_version
        info["device"] = backend.device_name
        info["device_version"] = backend.device.version
        info["device_compute_units"] = backend.device.max_compute_units
    else:
        xp = backend.xp
        info["cupy"] = xp.__version__
        try:
            props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
            name = props["name"]
            info["device"] = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:  # informational only
            info["device"] = "CUDA device"
    return info


def _cpu_ticks() -> list[int] | None:
    """Aggregate CPU time counters of /proc/stat (user, nice, system, idle, iowait, irq, softirq, steal...)."""
    try:
        with open("/proc/stat", encoding="utf-8") as fh:
            return [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def _steal_fraction(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of CPU time the hypervisor gave to others between two :func:`_cpu_ticks` readings (VMs only)."""
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    total = sum(after[:8]) - sum(before[:8])
    return (after[7] - before[7]) / total if total > 0 else None


# -- self-check --------------------------------------------------------------------------------------------
def self_check(sizes: tuple[int, ...] = (32, 48)) -> float:
    """Largest relative difference between the plain and the package reduction on the same float64 field."""
    worst = 0.0
    for n in sizes:
        config = PRESETS["compact"].replace(grid_size=n)
        rho = np.asarray(generate_structure(config, A, EPS, NU, seed=12345, backend="numpy"), dtype=np.float64)
        ref = scattering_curve(rho, config.voxel_size, config.q, backend="numpy")
        plain = plain_reduce(rho, config.voxel_size, config.q)
        worst = max(worst, float(np.max(np.abs(plain / ref - 1.0))))
    return worst


# -- timing ------------------------------------------------------------------------------------------------
def _timed(backend: Backend, fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Seconds that ``fn(*args)`` takes, device work included, and its result."""
    backend.synchronize()
    t0 = time.perf_counter()
    out = fn(*args)
    backend.synchronize()
    return time.perf_counter() - t0, out


def time_stages(backend: Backend, config: Any, seed: int) -> dict[str, float]:
    """Seconds per stage of one sample, the package's internal functions called in order."""
    n3 = config.grid_size**3
    k = int(round(EPS * n3))
    k1 = int(round(EPS * (1.0 - NU) * n3))
    rdtype = np.dtype(config.dtype)
    dx = config.voxel_size
    t: dict[str, float] = {}
    t["grf"], psi = _timed(backend, _grf, backend, config, A, np.random.SeedSequence(seed))
    t["threshold"], binary = _timed(backend, _classify, backend, psi, k, k, (0, 0, 1), rdtype)
    del psi
    t["smooth"], smooth = _timed(backend, _smooth, backend, config, binary)
    del binary
    t["classify"], rho = _timed(backend, _classify, backend, smooth, k1, k, config.densities, config.dtype)
    del smooth
    t["shell_fft_sums"], (sums, grid) = _timed(backend, shell_intensity, backend, rho, dx)
    del rho
    t["reduce"], _ = _timed(backend, reduce_shells, config.grid_size, dx, config.q, sums, grid.counts)
    return t


def time_floor(backend: Backend, cube: Any) -> float:
    def five() -> None:
        for _ in range(N_FLOOR_FFTS):
            backend.rfftn(cube)

    return _timed(backend, five)[0]


def bench_size(backend: Backend, n: int, repeats: int, plain: bool, plain_repeats: int) -> dict[str, Any]:
    config = PRESETS["compact"].replace(grid_size=n)
    cube = backend.generator(np.random.SeedSequence(2026)).random((n, n, n), dtype=np.dtype(config.dtype))

    def sample(seed: int) -> tuple[float, float]:
        sys0 = os.times().system
        wall = _timed(backend, lambda: simulate_curve(config, A, EPS, NU, seed=seed, backend=backend))[0]
        return wall, os.times().system - sys0

    # Warm-up: FFT plans, cached Fourier grid and shell weights, thread pool, device kernels.
    sample(10**6)
    time_stages(backend, config, 10**6 + 1)
    time_floor(backend, cube)

    samples, sys_times, floors, stages = [], [], [], []
    for i in range(repeats):
        floors.append(time_floor(backend, cube))
        wall, kernel = sample(i)
        samples.append(wall)
        sys_times.append(kernel)
        stages.append(time_stages(backend, config, repeats + i))
    del cube

    plains = []
    if plain:
        for i in range(plain_repeats):
            t0 = time.perf_counter()
            plain_simulate_curve(n, config.voxel_size, config.q, A, EPS, NU, seed=i)
            plains.append(time.perf_counter() - t0)

    ms = 1e3
    res: dict[str, Any] = {
        "N": n,
        "sample_ms": statistics.median(samples) * ms,
        "sample_sys_ms": statistics.median(sys_times) * ms,
        "floor_ms": statistics.median(floors) * ms,
        "best_sample_ms": min(samples) * ms,
        "best_floor_ms": min(floors) * ms,
        "stages_ms": {s: statistics.median(st[s] for st in stages) * ms for s in STAGES},
        "plain_ms": statistics.median(plains) * ms if plains else None,
        "raw_ms": {
            "sample": [x * ms for x in samples],
            "sample_sys": [x * ms for x in sys_times],
            "floor": [x * ms for x in floors],
            "plain": [x * ms for x in plains],
        },
    }
    res["ratio_sample_floor"] = res["sample_ms"] / res["floor_ms"]
    res["ratio_best_sample_floor"] = res["best_sample_ms"] / res["best_floor_ms"]
    res["speedup_plain_sample"] = res["plain_ms"] / res["sample_ms"] if plains else None
    res["stages_sum_ms"] = sum(res["stages_ms"].values())
    return res


# -- output ------------------------------------------------------------------------------------------------
def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(results: list[dict[str, Any]]) -> str:
    head = ("N", "sample ms", "sys ms", "floor ms", "sample/floor", "best s/f", "plain ms", "plain/sample",
            *STAGE_HEADERS, "stages sum")
    rows = [head]
    for r in results:
        rows.append((
            str(r["N"]),
            _fmt(r["sample_ms"], ".1f"),
            _fmt(r["sample_sys_ms"], ".0f"),
            _fmt(r["floor_ms"], ".1f"),
            _fmt(r["ratio_sample_floor"], ".2f"),
            _fmt(r["ratio_best_sample_floor"], ".2f"),
            _fmt(r["plain_ms"], ".0f"),
            _fmt(r["speedup_plain_sample"], ".1f"),
            *(_fmt(r["stages_ms"][s], ".1f") for s in STAGES),
            _fmt(r["stages_sum_ms"], ".1f"),
        ))
    widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
    lines = ["| " + " | ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="grid sizes N (default: 64 128 256 on the CPU, 256 512 on a GPU)")
    p.add_argument("--repeats", type=int, default=9, help="timed repeats per size after a warm-up (default 9)")
    p.add_argument("--backend", choices=("numpy", "cupy", "opencl", "auto"), default="numpy",
                   help="simulator backend (default numpy)")
    p.add_argument("--plain-max", type=int, default=128,
                   help="largest N for the plain NumPy reference, which is slow (default 128)")
    p.add_argument("--plain-repeats", type=int, default=3, help="repeats of the plain reference (default 3)")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.plain_repeats < 1:
        p.error("--repeats and --plain-repeats must be >= 1")
    if args.sizes is not None and any(n < 8 or n % 2 for n in args.sizes):
        p.error("--sizes must be even integers >= 8")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        backend = get_backend(args.backend)
    except RuntimeError as exc:  # CuPy, pyopencl/pyvkfft or a device missing
        print(f"error: {exc}", file=sys.stderr)
        return 2
    on_gpu = backend.name == "cupy" or (backend.name == "opencl" and not backend.is_cpu)
    sizes = args.sizes or ([256, 512] if on_gpu else [64, 128, 256])
    date = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    info = machine_info(backend)

    print(f"date: {date}")
    for key, val in info.items():
        print(f"{key}: {val}")
    if argv is None:
        print("command: python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]))
    print(f"config: PRESETS['compact'] with grid_size=N (dx=0.5 nm, 500 q in [0.1, 3.0] nm^-1, float32); "
          f"a={A} nm, eps={EPS}, nu={NU}; repeats={args.repeats}, plain repeats={args.plain_repeats}")

    err = self_check()
    print(f"self-check: plain_reduce vs scattering_curve (float64, N=32, 48): max rel. diff {err:.2e}")
    if not err < CHECK_RTOL:
        print(f"self-check FAILED (tolerance {CHECK_RTOL:g})", file=sys.stderr)
        return 1

    results = []
    t_start = time.perf_counter()
    ticks = _cpu_ticks()
    for n in sizes:
        res = bench_size(backend, n, args.repeats, n <= args.plain_max, args.plain_repeats)
        results.append(res)
        print(f"  N={n}: sample {res['sample_ms']:.1f} ms, floor {res['floor_ms']:.1f} ms", flush=True)
    steal = _steal_fraction(ticks, _cpu_ticks())
    info["cpu_steal_during_run"] = steal
    steal_txt = "" if steal is None else f"; CPU steal time during the run {100 * steal:.1f} %"
    print(f"total benchmark time {time.perf_counter() - t_start:.0f} s{steal_txt}\n")
    print(table(results))
    print(f"\nmedians over the repeats; sys = kernel CPU time of the process during a sample (page faults); "
          f"floor = {N_FLOOR_FFTS} real FFTs ({backend.name} backend rfftn) of an N^3 float32 cube; "
          "best s/f = fastest sample / fastest floor; stage columns in ms; plain = literal NumPy/SciPy "
          "float64 implementation (benchmarks/plain_numpy.py)")

    if args.json is not None:
        payload = {
            "date": date,
            "machine": info,
            "argv": sys.argv[1:] if argv is None else list(argv),
            "parameters": {"a": A, "porosity": EPS, "layer_fraction": NU, "preset": "compact",
                           "repeats": args.repeats, "plain_repeats": args.plain_repeats,
                           "floor_ffts": N_FLOOR_FFTS},
            "self_check_max_rel_diff": err,
            "results": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
