"""``sasview-grf reconstruct``: 3-D realizations of a fitted GRF structure, with pictures and morphology."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parser"]



def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``reconstruct`` verb."""
    from . import _CASE_CHOICES, _Formatter

    r = sub.add_parser(
        "reconstruct",
        help="3-D structures (volumes, pictures, morphology) of a fitted GRF model",
        description="Generate K realizations of the structure of a fit (the JSON of `sasview-grf fit --json`, or "
                    "a data file fitted first) on a voxel grid chosen from a and the data's q range, and write the "
                    "labelled volumes (0 pore, 1 layer, 2 solid; .npy and ImageJ TIFF with the voxel size in Å), "
                    "slices, a 3-D view, the mean I(q) against the model and the morphology (reconstruction.json). "
                    "Lengths in Å, q in 1/Å, I in cm^-1.",
        formatter_class=_Formatter,
    )
    r.add_argument("source", type=Path, help="a fit result (.json of `sasview-grf fit --json`) or a data file to fit")
    r.add_argument("--out", type=Path, required=True, help="output folder (created)")
    r.add_argument("--grid", type=int, default=256, help="voxels per side N")
    r.add_argument("--realizations", type=int, default=4, help="number K of independent realizations")
    r.add_argument("--voxel", type=float, default=None, help="voxel edge in Å (default: chosen, see the output)")
    r.add_argument("--box", type=float, default=None, help="box edge in Å instead of --voxel (voxel = box / N)")
    r.add_argument("--backend", default="auto", choices=["auto", "numpy", "cupy", "opencl"],
                   help="simulator backend; auto: the fastest available")
    r.add_argument("--seed", type=int, default=None, help="seed (realization k uses SeedSequence(seed) child k)")
    r.add_argument("--index", type=int, default=0, help="which result of a JSON list of fit results")
    r.add_argument("--data", type=Path, default=None, help="the measured curve to plot beside the model "
                   "(default: SOURCE when it is a data file)")
    r.add_argument("--case", default="auto", choices=_CASE_CHOICES,
                   help="when SOURCE is a data file: the case (model) to fit, as in `sasview-grf fit`: auto (the "
                        "measured family picks two or three phases), two_phase[_low|_high], three_phase_low|_high")
    r.add_argument("--q-unit", default=None, help="q unit of ASCII data files: 1/A or 1/nm")
    r.add_argument("--max-memory", type=float, default=None, metavar="GIB",
                   help="memory the run may use, in GiB (default: what is free now); a grid needing more is refused")
    r.add_argument("--pore-size", action="store_true",
                   help="also the continuous pore-size distribution of realization 0 (one distance transform per "
                        "radius: about 3 s CPU each at 256^3)")
    r.add_argument("--no-images", action="store_true", help="write no PNGs")
    r.add_argument("--no-morphology", action="store_true", help="skip the morphology numbers")
    r.add_argument("--no-volumes", action="store_true", help="write no .npy/.tif volumes")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_reconstruct)


def _is_fit_json(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if isinstance(data, dict) and "results" in data:
        data = data["results"]
    first = data[0] if isinstance(data, list) and data else data
    return isinstance(first, dict) and "values" in first


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from ..reconstruct import load_fit, reconstruct

    if not args.source.exists():
        raise ValueError(f"{args.source}: no such file")
    data = args.data
    if _is_fit_json(args.source):
        spec = load_fit(args.source, index=args.index)
        print(f"fit {args.source}: {spec.name}, {spec.model}")
    else:
        from ..fitting import fit_curve

        print(f"fitting {args.source} (case {args.case}) ...")
        result = fit_curve(args.source, case=args.case, q_unit=args.q_unit)
        print(result.table())
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "fit.json").write_text(json.dumps([result.to_dict()], indent=1), encoding="utf-8")
        spec = load_fit(result)
        data = data if data is not None else args.source
    max_memory = None if args.max_memory is None else args.max_memory * 2**30
    rec = reconstruct(spec, out=args.out, grid=args.grid, realizations=args.realizations, voxel=args.voxel,
                      box=args.box, backend=args.backend, seed=args.seed, data=data, q_unit=args.q_unit,
                      images=not args.no_images, morph=not args.no_morphology, volumes=not args.no_volumes,
                      progress=not args.no_progress, max_memory=max_memory, log=print,
                      pore_sizes=args.pore_size)
    print(rec.summary())
    print(f"wrote {args.out} ({', '.join(_flat(rec.files))})")
    return 0


def _flat(files: dict) -> list[str]:
    out = []
    for v in files.values():
        out.extend(v if isinstance(v, list) else [v])
    return out
