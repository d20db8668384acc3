"""Wall and CPU time of `reconstruct`: 256^3, 4 realizations, with images and morphology (the issue's target).

Usage: python benchmarks/bench_reconstruct.py [--fit FIT.json] [--grid 256] [--realizations 4] [--out DIR]
       [--backend auto]

Default structure: the fit of sasdata's 10wtAOT_Reline_120_reduced.pdh (three phases, a = 57.6 Å), given
inline so that the benchmark needs no fit. Reference in the same run: the bare generation of the same K
structures (generate_labels alone), so the ratio says what the curve, morphology, files and pictures add.
Reports each step's share, the CPU time of the whole process (on a shared machine wall time is an upper
bound) and the numbers of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date

from sasview_grf_plugin.reconstruct import _to_simulator, choose_grid, load_fit, reconstruct
from sasview_grf_plugin.simulator import generate_labels, get_backend
from sasview_grf_plugin.simulator.seeds import as_seed_sequence, child_seed

AOT_FIT = {"name": "10wtAOT_Reline_120_reduced", "case": "three_phase_low", "q_range": [0.007264, 0.5003],
           "values": {"a": 57.592, "porosity": 0.26938, "layer_fraction": 0.45167, "smoothing": 14.096,
                      "scale": 1.2449e5, "background": 11674.0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit", default=None, help="fit JSON (default: the AOT reline fit above)")
    ap.add_argument("--grid", type=int, default=256)
    ap.add_argument("--realizations", type=int, default=4)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    args = ap.parse_args()
    spec = load_fit(args.fit if args.fit else AOT_FIT)
    out = args.out or tempfile.mkdtemp(prefix="bench_reconstruct_")
    be = get_backend(args.backend)
    # Reference: the bare generation of the same structures.
    from sasview_grf_plugin.reconstruct import model_interface_areas

    areas = model_interface_areas(spec)
    g = choose_grid(spec, args.grid, layer_thickness=spec.porosity * spec.layer_fraction / areas["solid"]
                    if spec.three_phase else None)
    cfg, a_nm = _to_simulator(spec, g)
    root = as_seed_sequence(1)
    t0, c0 = time.perf_counter(), time.process_time()
    for r in range(args.realizations):
        generate_labels(cfg, a_nm, spec.porosity, spec.layer_fraction, seed=child_seed(root, r), backend=be)
    be.synchronize()
    ref_wall, ref_cpu = time.perf_counter() - t0, time.process_time() - c0
    rec = reconstruct(spec, out=out, grid=args.grid, realizations=args.realizations, backend=args.backend, seed=1,
                      progress=False)
    total = rec.timings["total"]
    print(f"# bench_reconstruct {date.today()} {platform.machine()} {os.cpu_count()} cores, backend {rec.backend}")
    print(rec.summary())
    print(f"total {total:.2f} s wall, {rec.cpu_time:.2f} s CPU; bare generation of the same {args.realizations} "
          f"structures {ref_wall:.2f} s wall ({ref_cpu:.2f} s CPU): ratio {total / ref_wall:.2f}")
    for k, v in rec.timings.items():
        if k != "total":
            print(f"  {k:<11}{v:7.2f} s  {100 * v / total:5.1f} %")
    print(json.dumps({"agreement": rec.agreement,
                      "surface_area_deviation": {k: v.get("surface_area_deviation")
                                                 for k, v in rec.morphology["phases"].items()}}, indent=1))
    print(f"files in {out}")


if __name__ == "__main__":
    main()
