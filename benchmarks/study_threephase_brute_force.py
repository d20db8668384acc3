"""Format-1 vs format-2 table against brute force, on the accuracy study's 13 parameter sets.

Usage: python benchmarks/study_threephase_brute_force.py OLD_TABLE_DIR OLD_TABLE_PY [--realizations 24]
                                                         [--grid-size 160] [--out FILE.json]

OLD_TABLE_PY is the format-1 evaluator (``git show aeb2807:sasview_grf_plugin/ensemble/table.py``), OLD_TABLE_DIR
the format-1 table folder (``git show aeb2807:sasview_grf_plugin/ensemble/tables/...``). The reference is the
mean of R simulator boxes (voxels a/4, 40 a wide at the default 160^3), as in study_ensemble_accuracy.py, whose
functions this uses; both tables pass through the same Eq. 3-4 window. Reported per set: RMS and max relative
difference over q a below a quarter of the voxels' Nyquist wave number where the reference's SE < 1 %.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import study_ensemble_accuracy as st  # noqa: E402

from sasview_grf_plugin.ensemble.table import load_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old_table")
    ap.add_argument("old_evaluator")
    ap.add_argument("--realizations", type=int, default=24)
    ap.add_argument("--grid-size", type=int, default=160)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("table_format1", args.old_evaluator)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    tables = {"format 1": old.EnsembleTable(Path(args.old_table) / old.TABLE_FILE), "format 2": load_table()}
    rows = []
    for k, (eps, nu, s) in enumerate(st.SETS):
        row = {"set": f"{eps}/{nu}/{s}"}
        for name, t in tables.items():
            st.load_table = lambda t=t: t
            r = st.compare(args.grid_size, 0.25, 1.0, eps, nu, s, args.realizations, 1000 + k, args.cache)
            row[name] = {"rms": round(r["rms_low_q"], 4), "max": round(r["max_low_q"], 4)}
        row["reference_median_se"] = round(r["median_se"], 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"realizations": args.realizations, "grid": args.grid_size,
                                        "voxels_per_a": 4, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
