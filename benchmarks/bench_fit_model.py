"""Time ``sasview-grf fit FILE --model M --plus power_law`` from the defaults on ~500-point files.

Usage: python benchmarks/bench_fit_model.py [--repeat 3]

For every model of the GRF family (``ENSEMBLE_MODELS``) and, as the reference in the same run,
``teubner_strey``: the wall time of ``fit_curve(path, model=M, plus=["power_law"])`` (3 data-driven
starts, LM) after a warm-up fit (kernels compiled and cached, as in a session that fits several
files), and the wall time of the whole console command once (Python start, imports, kernel build).
Target (issue 21): < 5 s per fit on a 500-point file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "examples" / "data" / "real" / "pyirena_PDMS750_usaxs.csv",  # 519 points, pinhole dq
         ROOT / "examples" / "data" / "real" / "pyirena_ZIF8_usaxs.csv"]  # 523 points


def main() -> None:
    from sasview_grf_plugin.fitting import fit_curve
    from sasview_grf_plugin.sasview.paths import ENSEMBLE_MODELS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    models = [*ENSEMBLE_MODELS, "teubner_strey"]
    print(f"{'file':<32}{'model':<34}{'points':>7}{'fit [s] (median)':>18}{'red. chi2':>11}{'CLI [s]':>9}")
    for path in FILES:
        for m in models:
            try:
                fit_curve(path, model=m, plus=["power_law"], q_unit="1/A")  # warm-up: kernel build
            except (ValueError, RuntimeError) as exc:
                print(f"{path.name:<32}{m + '+power_law':<34} failed: {exc}", flush=True)
                continue
            times, r = [], None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                r = fit_curve(path, model=m, plus=["power_law"], q_unit="1/A")
                times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "from sasview_grf_plugin.cli import main; import sys; sys.exit(main("
                            f"['fit', {str(path)!r}, '--model', {m!r}, '--plus', 'power_law', '--q-unit', '1/A', "
                            "'--no-progress']))"], check=True, capture_output=True, env={**os.environ,
                                                                                       "PYTHONPATH": str(ROOT)})
            cli = time.perf_counter() - t0
            print(f"{path.name:<32}{m + '+power_law':<34}{r.n_points:>7}{statistics.median(times):>18.2f}"
                  f"{r.chi2:>11.4g}{cli:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
