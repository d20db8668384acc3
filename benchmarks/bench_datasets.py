"""Dataset generation throughput (curves/s) at a preset, in-process and with K local worker processes.

Usage: python benchmarks/bench_datasets.py [--preset compact] [--n 256] [--chunk-size 16] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from datetime import date

from sasview_grf_plugin.datasets import generate_dataset
from sasview_grf_plugin.simulator import get_preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="compact")
    ap.add_argument("--case", default="three_phase_high")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--chunk-size", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    cfg = get_preset(args.preset)
    print(f"{date.today()} {platform.processor() or platform.machine()} cores={os.cpu_count()} "
          f"preset={args.preset} N={cfg.grid_size} n={args.n} chunk={args.chunk_size} backend={args.backend}")
    runs = [("in-process", None)] + [(f"{k} worker process(es)", k) for k in args.workers]
    base = None
    print(f"{'mode':<24}{'seconds':>10}{'curves/s':>12}{'vs in-process':>15}")
    for label, workers in runs:
        tmp = tempfile.mkdtemp(prefix="grf-bench-")
        try:
            t0 = time.perf_counter()
            generate_dataset(f"{tmp}/ds", args.case, "train", config=cfg, n=args.n, chunk_size=args.chunk_size,
                             backend=args.backend, workers=workers, progress=False)
            dt = time.perf_counter() - t0
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rate = args.n / dt
        base = base or rate
        print(f"{label:<24}{dt:>10.2f}{rate:>12.1f}{rate / base:>15.2f}")


if __name__ == "__main__":
    main()
