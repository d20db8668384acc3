"""``sasview-grf compare FILE``: the GRF family beside SasView's built-ins on one measured curve."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``compare`` verb."""
    from . import _Formatter

    p = sub.add_parser(
        "compare",
        help="fit the GRF family and the built-ins (teubner_strey, dab, broad_peak, each +power_law) to a curve "
             "and rank them by BIC",
        description="Fit every model of the GRF family and SasView's teubner_strey, dab and broad_peak, each "
                    "alone and with a power law, to one curve with the same weights (the data's errors), q range "
                    "and resolution (the data's dq or slit length), from several starts each. Prints one table "
                    "(reduced chi^2, BIC, parameters with errors and units, time) ranked by BIC and says which "
                    "model is best; writes a figure (data, fits, residuals) and JSON on request. q in 1/Å, "
                    "lengths in Å, intensities in the data's unit.",
        formatter_class=_Formatter,
    )
    p.add_argument("path", type=Path, help="data file (one curve)")
    p.add_argument("--q-unit", default=None, help="q unit of ASCII files: 1/A or 1/nm")
    p.add_argument("--q-min", type=float, default=None, help="lowest q of the fits in 1/Å (default: the data's)")
    p.add_argument("--q-max", type=float, default=None, help="highest q of the fits in 1/Å (default: the data's)")
    p.add_argument("--auto-qrange", action="store_true",
                   help="cut what no small-angle model describes (beam stop, a tail below its background, WAXS) "
                        "and print what was cut; without it such regions are only reported")
    p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help="models to compare (default: the GRF family and teubner_strey, dab, broad_peak)")
    p.add_argument("--plus", nargs="*", default=["power_law"], metavar="TERM",
                   help="additive terms: each model is fitted alone and with these terms added (give none for "
                        "alone only; default: power_law)")
    p.add_argument("--starts", type=int, default=3, help="starts per model (data length scale x 0.5, 1, 2.5, ...)")
    p.add_argument("--method", default="lm", help="bumps fitter")
    p.add_argument("--plot", type=Path, default=None, help="figure: data, the best fits, residuals")
    p.add_argument("--json", type=Path, default=None, help="write every fit (with its curves) as JSON")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..compare import compare_models

    q_range = None
    if args.q_min is not None or args.q_max is not None:
        q_range = (args.q_min if args.q_min is not None else 0.0,
                   args.q_max if args.q_max is not None else float("inf"))
    variants = [()] + ([tuple(args.plus)] if args.plus else [])
    result = compare_models(args.path, models=args.models, plus_variants=variants, q_range=q_range,
                            auto_qrange=args.auto_qrange, q_unit=args.q_unit, n_starts=args.starts,
                            method=args.method)
    messages = result.qcheck.get("messages", [])
    if messages and not result.cut:
        for m in messages:
            print(f"sasview-grf compare: warning: {m}", file=sys.stderr)
        if q_range is None:
            print("sasview-grf compare: warning: nothing was cut: give the suggested --q-min/--q-max, or "
                  "--auto-qrange", file=sys.stderr)
    print(result.table())
    if args.plot is not None:
        result.plot(args.plot)
        print(f"wrote {args.plot}")
    if args.json is not None:
        result.write_json(args.json)
        print(f"wrote {args.json}")
    return 0
