"""Verbs for SasView GUI users: ``seed`` (a SasView project seeded by the ML initializer) and
``convert`` (Anton Paar ``.pdh`` to a file SasView reads with the right units and slit length)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``seed`` and ``convert``."""
    s = sub.add_parser(
        "seed",
        help="write a SasView project: the data, the GRF model and the ML-predicted start values",
        description="Predict the GRF parameters of every curve in the data files (measured family, as 'predict') "
                    "and write one SasView project file with one fit page per curve: the data loaded, the "
                    "GRF plugin model chosen, the predicted values set, scale and background solved at them, and "
                    "scale, background and the structure parameters ticked. In SasView: File > Open Project, "
                    "then Fit. The plugin models must be installed ('sasview-grf install-plugins').",
    )
    s.add_argument("files", type=Path, nargs="+", help="data files (any format 'predict' reads)")
    s.add_argument("-o", "--out", type=Path, required=True, help="SasView project file to write (.json)")
    s.add_argument("--case", default="auto",
                   choices=["auto", "two_phase", "two_phase_low", "two_phase_high", "three_phase_low",
                            "three_phase_high"],
                   help="case of the measured family (auto: the number of phases chosen per curve)")
    s.add_argument("--bundle", type=Path, default=None, help="measured-family folder instead of the shipped one")
    s.add_argument("--q-unit", default=None,
                   help="q unit of the ASCII files among them (.csv, .txt, .dat, .abs, .asc): 1/A or 1/nm")
    s.add_argument("--skip-refused", action="store_true",
                   help="leave out curves the initializer refuses (default: stop with the reason)")
    s.set_defaults(func=_cmd_seed)

    c = sub.add_parser(
        "convert",
        help="convert a data file (e.g. Anton Paar .pdh) to canSAS XML that SasView reads correctly",
        description="Read a data file as this package does (Anton Paar .pdh: q in 1/nm converted to 1/Å, the "
                    "header's slit length kept) and write it as canSAS 1-D XML (.xml): SasView and sasdata "
                    "read it with q in 1/Å and apply the slit length (Fitting > Resolution: 'Use dQ Data').",
    )
    c.add_argument("file", type=Path, help="data file")
    c.add_argument("out", type=Path, help="output file (.xml)")
    c.add_argument("--q-unit", default=None, help="q unit of ASCII files: 1/A or 1/nm")
    c.add_argument("--force", action="store_true", help="overwrite an existing output file")
    c.set_defaults(func=_cmd_convert)


def _cmd_seed(args: argparse.Namespace) -> int:
    from ..loaders import UNITLESS_EXTENSIONS, load_curves
    from ..ml.measured import load_measured
    from ..sasview.project import ProjectEntry, model_for_case, seed_values, write_project

    if args.out.suffix.lower() != ".json":
        raise ValueError(f"--out {args.out}: a SasView project file ends in .json")
    family = load_measured(args.bundle)
    entries, refused = [], []
    for path in args.files:
        # --q-unit is for the files that carry no unit; the others state their own.
        q_unit = args.q_unit if path.suffix.lower() in UNITLESS_EXTENSIONS else None
        for curve in load_curves(path, q_unit=q_unit):
            d = curve.data
            slit = None if not curve.slit_length else [curve.slit_length] * curve.q.size
            try:
                pred = family.predict(curve.q, curve.intensity, curve.error, d.dx, slit, case=args.case)
            except ValueError as exc:
                if not args.skip_refused:
                    raise ValueError(f"{curve.name}: {exc} (--skip-refused leaves such curves out)") from None
                refused.append(curve.name)
                print(f"{curve.name}: REFUSED, left out: {exc}")
                continue
            model = model_for_case(pred.case)
            values = seed_values(model, pred.values)
            note = (f"sasview-grf seed: {model} from the ML initializer (case {pred.case}); "
                    + ", ".join(f"{k} {v:.4g}" for k, v in values.items())
                    + ("" if pred.in_domain else "; FLAGGED: " + "; ".join(pred.flags)))
            entries.append(ProjectEntry(data=d, name=curve.name, model=model, values=values, notes=[note]))
            shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
            print(f"{curve.name}: {model} ({pred.case}): {shown}"
                  + ("" if pred.in_domain else "  [flagged: " + "; ".join(pred.flags) + "]"))
    if not entries:
        raise ValueError("no curve could be predicted; nothing to write")
    write_project(args.out, entries)
    print(f"wrote {args.out}: {len(entries)} fit page(s)" + (f", {len(refused)} curve(s) left out" if refused else "")
          + ". In SasView: File > Open Project, choose this file, then Fit (the plugin models must be installed: "
          "sasview-grf install-plugins).")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from ..loaders import load_curves
    from ..sasview.convert import write_cansas_xml

    if args.out.suffix.lower() != ".xml":
        raise ValueError(f"{args.out}: the output must be canSAS XML (.xml)")
    if args.out.exists() and not args.force:
        raise ValueError(f"{args.out} exists; pass --force to overwrite it")
    curves = load_curves(args.file, q_unit=args.q_unit)
    paths = write_cansas_xml(args.out, curves)
    for c in curves:
        slit = f", slit length {c.slit_length:.4g} 1/Å" if c.slit_length else ""
        print(f"{c.name}: {c.q.size} points, q = {c.q.min():.4g}-{c.q.max():.4g} 1/Å{slit}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
