"""No stalls: the first and every later prediction of one process against the steady state, and a cold CLI run.

Usage: python benchmarks/bench_first_prediction.py [--file PATH] [--predictions 8] [--cold 3]

In one process: loading the measured family (``load_measured``), then ``--predictions`` predictions of the
same curve (case auto), each timed in CPU and wall time; the reference is the median of the predictions
after the first (the steady state), and the figures are the first's and the slowest's ratio to it (the
target: both within 2x). Then ``--cold`` runs of ``sasview-grf predict FILE`` in fresh processes, their
CPU time (user + system of the child) and wall time. Default file: sasdata's
``AOT_Microemulsion-Core_Contrast.xml``. On a shared machine the wall times are upper bounds; CPU times
are the figures to compare.
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from datetime import date
from pathlib import Path


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    import sasdata

    default = Path(sasdata.__file__).parent / "example_data" / "1d_data" / "AOT_Microemulsion-Core_Contrast.xml"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=default)
    ap.add_argument("--predictions", type=int, default=8)
    ap.add_argument("--cold", type=int, default=3)
    args = ap.parse_args()
    print(f"{date.today()}  {platform.node()}  {platform.processor() or platform.machine()}  "
          f"python {platform.python_version()}  file {args.file.name}")

    c0, w0 = time.process_time(), time.perf_counter()
    from sasview_grf_plugin.loaders import load_curves
    from sasview_grf_plugin.ml.measured import load_measured

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curve = load_curves(args.file)[0]
    print(f"imports + reading the file: {time.process_time() - c0:.3f} s CPU, {time.perf_counter() - w0:.3f} s wall")
    c0, w0 = time.process_time(), time.perf_counter()
    family = load_measured()
    print(f"load_measured():            {time.process_time() - c0:.3f} s CPU, {time.perf_counter() - w0:.3f} s wall")
    cpu, wall = [], []
    slit = None if not curve.slit_length else [curve.slit_length] * curve.q.size
    for _ in range(args.predictions):
        c0, w0 = time.process_time(), time.perf_counter()
        family.predict(curve.q, curve.intensity, curve.error, curve.data.dx, slit)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    steady = statistics.median(cpu[1:])
    print("predictions, CPU ms:  " + " ".join(f"{1e3 * c:.1f}" for c in cpu))
    print("predictions, wall ms: " + " ".join(f"{1e3 * w:.1f}" for w in wall))
    print(f"steady state (median after the first): {1e3 * steady:.1f} ms CPU; first / steady = {cpu[0] / steady:.2f}, "
          f"slowest / steady = {max(cpu) / steady:.2f} (target <= 2)")

    # The console script, as a user runs it (it imports the package PYTHONPATH or the environment gives).
    script = shutil.which("sasview-grf") or shutil.which("sasview-grf", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "sasview_grf_plugin.cli"]
    cold_cpu, cold_wall = [], []
    for _ in range(args.cold):
        c0, w0 = _children_cpu(), time.perf_counter()
        subprocess.run([*command, "predict", str(args.file)], check=True, capture_output=True)
        cold_cpu.append(_children_cpu() - c0)
        cold_wall.append(time.perf_counter() - w0)
    print("cold 'sasview-grf predict FILE', CPU s:  " + " ".join(f"{c:.2f}" for c in cold_cpu) + "  (target <= 2 s)")
    print("cold 'sasview-grf predict FILE', wall s: " + " ".join(f"{w:.2f}" for w in cold_wall))


if __name__ == "__main__":
    main()
