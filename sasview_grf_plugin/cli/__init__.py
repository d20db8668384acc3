"""Command-line interface: ``sasview-grf VERB ...`` (run ``sasview-grf --help``).

One module per group of verbs: each ``cli/<group>.py`` has ``add_parser(sub)``, registered in
:func:`build_parser`; the verbs that predate the package layout still live here.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import compare as compare_verbs
from . import reconstruct as reconstruct_verbs
from . import sasview as sasview_verbs

__all__ = ["main", "build_parser"]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except empty ones and where the help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False) or "default" in text:
            return text
        return super()._get_help_string(action)


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate one GRF structure (or an average of several) and its SAXS curve",
        description=(
            "Simulate a two- or three-phase GRF microstructure and its SAXS curve I(q) on the preset's q grid "
            "(paper units: q in 1/nm, intensity per unit volume in rho^2 nm^3). Writes the curve as CSV and, "
            "optionally, a PNG of the curve beside a central slice of the structure."
        ),
        formatter_class=_Formatter,
    )
    p.add_argument("--preset", default="compact", help="simulation preset: 'compact' (CPU) or 'paper' (GPU)")
    p.add_argument("--a", type=float, default=2.5, help="scaling parameter a in nm")
    p.add_argument("--porosity", type=float, default=0.7, help="porosity eps in (0, 1)")
    p.add_argument("--layer-fraction", type=float, default=0.0,
                   help="fraction nu in [0, 1) of the pore space filled by the layer (0: two phases)")
    p.add_argument("--seed", type=int, default=0, help="random seed (non-negative integer)")
    p.add_argument("--realizations", type=int, default=1, help="number of structures averaged")
    p.add_argument("--grid-size", type=int, default=None, help="override the preset's grid size N")
    p.add_argument("--backend", default="auto", choices=["auto", "numpy", "cupy", "opencl"], help="array backend")
    p.add_argument("--out", type=Path, default=Path("curve.csv"), help="CSV file for q and I(q)")
    p.add_argument("--plot", type=Path, default=None, help="optional PNG: curve and central slice (paper Fig. 1)")
    p.add_argument("--allow-long", action="store_true",
                   help="run even when realizations x N^3 exceeds the work limit (2^34 voxel-realizations)")
    p.set_defaults(func=_cmd_simulate)


def _config(args: argparse.Namespace):
    """The preset, with ``--grid-size`` applied (then named so that it is not taken for the preset)."""
    from ..simulator import get_preset

    cfg = get_preset(args.preset)
    if args.grid_size is not None and args.grid_size != cfg.grid_size:
        cfg = cfg.replace(grid_size=args.grid_size, name=f"{cfg.name}-N{args.grid_size}")
    return cfg


def _cmd_simulate(args: argparse.Namespace) -> int:
    import numpy as np

    from ..simulator import generate_structure, get_backend, simulate_curve, validate_parameters
    from ..simulator.sanity import check_phases, check_work, physical_warnings

    cfg = _config(args)
    # Everything that can be refused is refused before any work starts.
    validate_parameters(args.a, args.porosity, args.layer_fraction)
    if args.realizations < 1:
        raise ValueError(f"--realizations must be >= 1, got {args.realizations}")
    check_work(cfg, args.realizations, allow_long=args.allow_long)
    check_phases(cfg, args.porosity, args.layer_fraction)
    for w in physical_warnings(cfg, args.a, args.porosity, args.layer_fraction):
        print(f"sasview-grf simulate: warning: {w}", file=sys.stderr)
    backend = get_backend(args.backend)
    t0 = time.perf_counter()
    curve = simulate_curve(cfg, args.a, args.porosity, args.layer_fraction, seed=args.seed,
                           n_realizations=args.realizations, backend=backend)
    elapsed = time.perf_counter() - t0
    if not np.any(curve > 0):
        raise ValueError("the simulated curve is zero everywhere: a phase came out empty on this grid; raise the "
                         "smaller volume fraction or the grid size")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"sasview-grf simulate: preset={cfg.name} N={cfg.grid_size} dx={cfg.voxel_size} nm "
        f"a={args.a} nm porosity={args.porosity} layer_fraction={args.layer_fraction} seed={args.seed} "
        f"realizations={args.realizations} backend={backend.name}\n"
        "q [1/nm], I [rho^2 nm^3, per unit volume]"
    )
    np.savetxt(args.out, np.column_stack([cfg.q, curve]), delimiter=",", header=header, fmt="%.10g")
    print(f"wrote {args.out} ({cfg.n_q} points, q = {cfg.q_min:g}..{cfg.q_max:g} 1/nm) in {elapsed:.2f} s "
          f"on backend '{backend.name}'")
    if args.plot is not None:
        # Realization 0 of the seed: the structure behind the curve (or the first of those averaged).
        rho = backend.to_numpy(generate_structure(cfg, args.a, args.porosity, args.layer_fraction,
                                                  seed=args.seed, backend=backend))
        _plot_curve_and_slice(args.plot, cfg, curve, rho, args)
        print(f"wrote {args.plot}")
    return 0


def _plot_curve_and_slice(path: Path, cfg, curve, rho, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
    ax0.loglog(cfg.q, curve, lw=1.5)
    ax0.set_xlabel(r"$q$ [nm$^{-1}$]")
    ax0.set_ylabel(r"$I(q)$ [$\rho^2$ nm$^3$]")
    ax0.set_title(f"a = {args.a:g} nm, ε = {args.porosity:g}, ν = {args.layer_fraction:g}")
    ax0.grid(True, which="both", alpha=0.3)
    extent = (0, cfg.box_size, 0, cfg.box_size)
    im = ax1.imshow(rho[cfg.grid_size // 2], cmap="gray", vmin=min(cfg.densities), vmax=max(cfg.densities),
                    extent=extent, origin="lower")
    ax1.set_xlabel("x [nm]")
    ax1.set_ylabel("y [nm]")
    ax1.set_title("central slice (pore dark, solid light)")
    fig.colorbar(im, ax=ax1, label=r"density $\rho$")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _add_dataset(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dataset",
        help="generate a dataset split (resumable, parallel) or describe one",
        description="Generate one split of one case as a chunked Zarr dataset, or describe an existing one "
                    "('sasview-grf dataset info PATH'). Generation resumes where it stopped when rerun.",
    )
    dsub = p.add_subparsers(dest="dataset_command", metavar="{generate,info}")
    g = dsub.add_parser(
        "generate",
        help="generate (or resume) a dataset split (the default action of 'dataset')",
        description="Generate (or resume) one split of one case. 'sasview-grf dataset --preset ...' is short for "
                    "'sasview-grf dataset generate --preset ...'.",
        formatter_class=_Formatter,
    )
    g.add_argument("--preset", default="compact", help="simulation preset: 'compact' or 'paper'")
    g.add_argument("--grid-size", type=int, default=None, help="override the preset's grid size N")
    g.add_argument("--case", required=True,
                   help="two_phase_low, two_phase_high, three_phase_low or three_phase_high")
    g.add_argument("--split", required=True, help="train, val or test")
    g.add_argument("--n", type=int, default=None, help="number of curves (default: the preset's split size)")
    g.add_argument("--out", type=Path, required=True, help="dataset directory (Zarr)")
    g.add_argument("--chunk-size", type=int, default=64, help="curves per task and per stored chunk")
    g.add_argument("--seed", type=int, default=0, help="dataset seed")
    g.add_argument("--workers", type=int, default=None, help="local worker processes (Dask LocalCluster)")
    g.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    g.add_argument("--backend", default="auto", choices=["auto", "numpy", "cupy", "opencl"], help="array backend")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=_cmd_dataset_generate)
    i = dsub.add_parser("info", help="describe a dataset directory",
                        description="Print a dataset's settings, size and completion.")
    i.add_argument("path", type=Path, help="dataset directory")
    i.set_defaults(func=_cmd_dataset_info)


def _cmd_dataset_generate(args: argparse.Namespace) -> int:
    from ..datasets import generate_dataset

    cfg = _config(args)
    _check_workers(args.workers)
    t0 = time.perf_counter()
    try:
        store = generate_dataset(args.out, args.case, args.split, config=cfg, n=args.n, chunk_size=args.chunk_size,
                                 seed=args.seed, backend=args.backend, workers=args.workers,
                                 scheduler=args.scheduler, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"interrupted: rerun the same command to continue where it stopped ({args.out})", file=sys.stderr)
        return 130
    print(f"dataset {store.path}: {store.spec.n} curves of {store.spec.case}/{store.spec.split} complete "
          f"({time.perf_counter() - t0:.1f} s in this run)")
    return 0


def _cmd_dataset_info(args: argparse.Namespace) -> int:
    from ..datasets import DatasetStore

    store = DatasetStore.open(args.path)
    spec = store.spec
    cfg = spec.config
    done = len(store.completed())
    size = sum(f.stat().st_size for f in Path(args.path).rglob("*") if f.is_file())
    print(f"path           {store.path}")
    print(f"case / split   {spec.case} / {spec.split}")
    print(f"curves         {spec.n} in {spec.n_chunks} chunks of {spec.chunk_size}; "
          f"{done} chunks done{' (complete)' if done == spec.n_chunks else ' (incomplete: rerun to resume)'}")
    print(f"grid           N = {cfg.grid_size}, dx = {cfg.voxel_size} nm, sigma = {cfg.smoothing_sigma} voxels, "
          f"densities {cfg.densities}, {cfg.dtype}")
    print(f"q grid         {cfg.n_q} points, {cfg.q_min:g}..{cfg.q_max:g} 1/nm")
    print(f"parameters     a {cfg.a_range} nm, porosity low {cfg.porosity_low} / high {cfg.porosity_high}, "
          f"layer fraction {cfg.layer_fraction_range}")
    print(f"noise          alpha log-uniform in {spec.alpha_range}, intensity scale {spec.intensity_scale:g}")
    print(f"seed / backend {spec.seed} / {spec.backend}")
    print(f"size on disk   {size / 2**20:.1f} MiB")
    return 0


def _add_install_plugins(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install-plugins",
        help="install the GRF models into SasView's plugin folder",
        description="Write thin plugin files for the GRF ensemble-mean models (for fitting: grf_two_phase, "
                    "grf_three_phase and the broad/peaked-spectrum models) and grf_two_phase_sim and "
                    "grf_three_phase_sim (one simulated realization) into SasView's plugin folder "
                    "(found as SasView finds it) or --dir. Only files written by this command are overwritten "
                    "or removed. Restart SasView afterwards.",
    )
    p.add_argument("--dir", type=Path, default=None, help="plugin folder (default: SasView's)")
    p.add_argument("--uninstall", action="store_true", help="remove the files this command installed")
    p.add_argument("--force", action="store_true", help="overwrite foreign files of the same name")
    p.set_defaults(func=_cmd_install_plugins)


def _cmd_install_plugins(args: argparse.Namespace) -> int:
    from ..sasview.install import install_plugins, sasview_plugin_dir, uninstall_plugins

    target = args.dir or sasview_plugin_dir()
    if args.uninstall:
        removed = uninstall_plugins(target)
        print(f"removed {len(removed)} plugin file(s) from {target}" +
              "".join(f"\n  {p.name}" for p in removed))
        return 0
    for path in install_plugins(target, force=args.force):
        print(f"installed {path}")
    print("Restart SasView to load them: Fitting perspective, category 'Plugin Models'.")
    return 0


def _add_export_plugin(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-plugin",
        help="write standalone model files for SasView installs without this package",
        description="Write grf_two_phase.py and grf_three_phase.py (the ensemble-mean models) as self-contained "
                    "model files that need only NumPy, SciPy and sasmodels, with their table file "
                    "grf_ensemble_table.npz beside them: for the SasView installer apps, which cannot import "
                    "this package. Add them with SasView's plugin manager, or write straight into SasView's "
                    "plugin folder (--standalone with that folder). The _sim models need the package and are not "
                    "exported.",
        formatter_class=_Formatter,
    )
    p.add_argument("--standalone", type=Path, required=True, metavar="DIR",
                   help="folder to write the two model files and the table file into (created if needed)")
    p.add_argument("--force", action="store_true", help="overwrite foreign files of the same name")
    p.set_defaults(func=_cmd_export_plugin)


def _cmd_export_plugin(args: argparse.Namespace) -> int:
    from ..sasview.install import sasview_plugin_dir
    from ..sasview.standalone import export_standalone

    written = export_standalone(args.standalone, force=args.force)
    for path in written:
        print(f"wrote {path}")
    plugin_dir = sasview_plugin_dir()
    if args.standalone.resolve() != plugin_dir.resolve():
        print(f"In SasView: Fitting > Manage Custom Models > Add file..., choose {written[0].name} and "
              f"{written[1].name} from {args.standalone}; or copy all three files into {plugin_dir}. "
              "Keep the table file where it is (or beside the models). Then restart SasView.")
    else:
        print("Restart SasView to load them: Fitting perspective, category 'Plugin Models'.")
    return 0


def _add_ml(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "train",
        help="train the boosters of one case from dataset splits and write a model bundle",
        description="Train one XGBoost booster per output (a, porosity, layer fraction) with early stopping on the "
                    "validation split, calibrate prediction intervals, evaluate on all splits, and write a bundle.",
        formatter_class=_Formatter,
    )
    t.add_argument("--train", type=Path, required=True, help="training dataset directory")
    t.add_argument("--val", type=Path, required=True, help="validation dataset directory")
    t.add_argument("--test", type=Path, default=None, help="test dataset directory (metrics only)")
    t.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    t.add_argument("--defaults", choices=["compact", "paper"], default=None,
                   help="hyperparameter defaults (default: the datasets' preset)")
    t.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="XGBoost device")
    t.add_argument("--rounds", type=int, default=None, help="maximum number of trees")
    t.add_argument("--early-stopping", type=int, default=None, help="rounds without improvement before stopping")
    t.add_argument("--restarts", type=int, default=None, help="training runs per output; the best is kept")
    t.add_argument("--random-search", type=int, default=0, help="trials of random search over the paper's Table 1")
    t.add_argument("--interval-level", type=float, default=0.9, help="nominal coverage of prediction intervals")
    t.add_argument("--seed", type=int, default=0, help="training seed")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="Table 2 metrics, interval coverage and parity plots of a bundle",
                       description="Evaluate a bundle on dataset splits: MSE and MAPE per output (the paper's "
                                   "Table 2), interval coverage, and parity plots (Figs. 4-5).")
    e.add_argument("bundle", help="bundle directory or shipped case name")
    e.add_argument("--data", type=Path, nargs="+", required=True, help="dataset directories to evaluate on")
    e.add_argument("--plots", type=Path, default=None, help="folder for parity plots (PNG)")
    e.add_argument("--json", type=Path, default=None, help="write the metrics as JSON")
    e.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="predict a, porosity (and layer fraction) from a measured curve",
                       description="Predict the GRF parameters of every curve in a data file (any format sasdata "
                                   "reads; ASCII formats need --q-unit).")
    p.add_argument("file", type=Path, help="data file")
    p.add_argument("--case", default=None, choices=_CASE_CHOICES,
                   help="measured family: auto (default), two_phase, two_phase_low, two_phase_high, three_phase_low "
                        "or three_phase_high; paper family: one of the four cases")
    p.add_argument("--family", default="measured", choices=["measured", "paper"],
                   help="'measured': any q window in 0.001-1 1/Å, a 8-500 Å, instrument effects, self-check; "
                        "'paper': the paper's boosters (q exactly 0.01-0.3 1/Å, a 8-40 Å, Table 2)")
    p.add_argument("--bundle", type=Path, default=None,
                   help="bundle directory (paper family) or measured-family folder instead of the shipped one")
    p.add_argument("--q-unit", default=None, help="q unit of the file: 1/A or 1/nm (required for ASCII files)")
    p.add_argument("--json", type=Path, default=None, help="write the predictions as JSON")
    p.set_defaults(func=_cmd_predict)


def _cmd_train(args: argparse.Namespace) -> int:
    from .._deps import check_xgboost
    from ..datasets import load_dataset
    from ..ml import settings_for
    from ..ml.pipeline import train_bundle

    check_xgboost(args.device)
    _check_distinct_splits(args.train, args.val, args.test)
    _check_dataset_memory([p for p in (args.train, args.val, args.test) if p is not None], "train")
    train, val = load_dataset(args.train), load_dataset(args.val)
    test = load_dataset(args.test) if args.test else None
    _check_same_setup({"--train": train, "--val": val, **({"--test": test} if test is not None else {})})
    preset = args.defaults or (train.spec.config.name if train.spec.config.name in ("compact", "paper") else "compact")
    settings = settings_for(preset, device=args.device, num_boost_round=args.rounds,
                            early_stopping_rounds=args.early_stopping, restarts=args.restarts,
                            random_search_trials=args.random_search, interval_level=args.interval_level,
                            seed=args.seed)
    print(f"training {train.spec.case}: {train.spec.n} training / {val.spec.n} validation curves, "
          f"{preset} hyperparameters on {args.device}")
    path = train_bundle(args.out, train, val, test, settings, command="sasview-grf " + " ".join(sys.argv[1:]))
    _print_metrics(_load_card(path)["metrics"])
    print(f"wrote bundle {path}")
    return 0


def _load_card(path: Path) -> dict:
    import json

    return json.loads((Path(path) / "card.json").read_text())


def _print_metrics(metrics: dict) -> None:
    print(f"{'output':<16}{'split':<7}{'MSE':>11}{'MAPE %':>9}{'coverage':>10}{'n':>8}")
    for out, per_split in metrics.items():
        for split, m in per_split.items():
            print(f"{out:<16}{split:<7}{m['mse']:>11.3e}{m['mape']:>9.3f}{m.get('coverage', float('nan')):>10.3f}"
                  f"{m['n']:>8d}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from ..datasets import load_dataset
    from ..ml import load_predictor
    from ..ml.evaluation import evaluate_predictions, parity_plot

    predictor = load_predictor(args.bundle)
    _check_dataset_memory(args.data, "evaluate")
    datasets = {}
    for path in args.data:
        ds = load_dataset(path)
        if ds.spec.case != predictor.case:
            raise ValueError(f"{path} holds case {ds.spec.case!r}; the bundle predicts {predictor.case!r}")
        _check_bundle_grid(predictor.card, ds, path)
        datasets[f"{ds.spec.split}" if ds.spec.split not in datasets else str(path)] = ds
    metrics = evaluate_predictions(predictor, datasets)
    _print_metrics(metrics)
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        for name, ds in datasets.items():
            pred = predictor.predict_normalized(ds.noisy)
            out = args.plots / f"parity_{predictor.case}_{name}.png"
            parity_plot({o: getattr(ds, o) for o in predictor.outputs}, pred.values, out,
                        title=f"{predictor.case}, {name} split ({ds.spec.n} curves)")
            print(f"wrote {out}")
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=1))
    return 0


# The cases of both families (the measured family's plus the paper's four), for argparse.
_CASE_CHOICES = ("auto", "two_phase", "two_phase_low", "two_phase_high", "three_phase_low", "three_phase_high")


def _cmd_predict(args: argparse.Namespace) -> int:
    import json

    from ..loaders import load_curves

    measured = args.family == "measured"
    if args.bundle is not None:
        measured = (args.bundle / "stage1" / "card.json").is_file()
    if not measured:
        return _predict_paper(args)
    from ..ml.measured import load_measured

    family = load_measured(args.bundle)
    case = args.case or "auto"
    rows, refused = [], []
    curves = load_curves(args.file, q_unit=args.q_unit)
    for curve in curves:
        t0 = time.perf_counter()
        try:
            slit = None if not curve.slit_length else [curve.slit_length] * curve.q.size
            pred = family.predict(curve.q, curve.intensity, curve.error, curve.data.dx, slit, case=case)
        except ValueError as exc:
            refused.append(f"{curve.name}: {exc}")
            if len(curves) > 1:  # one curve: the error line says it
                print(f"{curve.name}  REFUSED: {exc}")
            continue
        row = {"curve": curve.name, **pred.to_dict(), "seconds": time.perf_counter() - t0}
        rows.append(row)
        chi = "n/a (no errors in the file)" if pred.chi2r is None else f"{pred.chi2r:.3g}"
        print(f"{curve.name}  (case {pred.case}, {pred.level:.0%} intervals; self-check chi^2_r {chi}; "
              f"{'in the domain' if pred.in_domain else 'FLAGGED: outside the domain'})")
        for k, v in pred.values.items():
            lo, hi = pred.intervals[k]
            unit = {"a": "[Å]", "smoothing": "[Å]"}.get(k, "")
            print(f"  {k + ' ' + unit:<18}{v:>10.4g}   [{lo:.4g}, {hi:.4g}]")
        for f in pred.flags:
            print(f"  flag: {f}")
        for n in pred.notes:
            print(f"  note: {n}")
    if args.json:
        args.json.write_text(json.dumps({"family": "measured", "predictions": rows, "refused": refused}, indent=1))
    if not rows:
        raise ValueError(refused[0] if len(refused) == 1 else f"no curve could be predicted ({len(refused)} refused)")
    return 0


def _predict_paper(args: argparse.Namespace) -> int:
    import json

    from ..loaders import load_curves
    from ..ml import load_predictor

    if args.case in ("auto", "two_phase"):
        raise ValueError(f"case {args.case!r} needs the measured family; the paper family needs one of "
                         "two_phase_low, two_phase_high, three_phase_low, three_phase_high")
    if (args.case is None) == (args.bundle is None):
        raise ValueError("the paper family needs exactly one of --case or --bundle")
    predictor = load_predictor(args.bundle if args.bundle is not None else args.case)
    rows = []
    for curve in load_curves(args.file, q_unit=args.q_unit):
        t0 = time.perf_counter()
        pred = predictor.predict(curve.q, curve.intensity, q_unit="1/A")
        row = pred.row(0)
        # SasView units: a in Å (the paper family's boosters work in nm).
        row["values"]["a"] *= 10.0
        row["interval"]["a"] = [10.0 * x for x in row["interval"]["a"]]
        row = {"curve": curve.name, **row, "units": {"a": "Å"}, "seconds": time.perf_counter() - t0,
               "warnings": pred.warnings}
        rows.append(row)
        print(f"{curve.name}  (paper family, case {predictor.case}, {pred.level:.0%} intervals"
              f"{'' if row['in_domain'] else ', OUTSIDE the training domain'})")
        for k, v in row["values"].items():
            lo, hi = row["interval"][k]
            print(f"  {k + (' [Å]' if k == 'a' else ''):<18}{v:>10.4g}   [{lo:.4g}, {hi:.4g}]")
        for w in pred.warnings:
            print(f"  warning: {w}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def _add_zoo(sub: argparse._SubParsersAction) -> None:
    z = sub.add_parser("zoo", help="build the shipped default boosters, or their report",
                       description="'zoo build' generates the four cases' datasets, trains and evaluates their "
                                   "boosters and writes the bundles (resumable: rerun to continue). 'zoo report' "
                                   "writes docs/model-zoo.md with metrics, parity plots and the case study.")
    zsub = z.add_subparsers(dest="zoo_command", metavar="{build,report}")
    zsub.required = True
    b = zsub.add_parser("build", help="generate, train, evaluate and write the bundles",
                        description="Generate the datasets of every case (resuming those that exist), train and "
                                    "evaluate each case whose bundle is missing or fails verification, and write "
                                    "the bundles. Rerun the same command after an interruption.",
                        formatter_class=_Formatter)
    b.add_argument("--preset", default="compact", help="simulation preset")
    b.add_argument("--work", type=Path, default=Path("zoo-work"), help="folder for the datasets")
    b.add_argument("--out", type=Path, default=None,
                   help="bundle folder (default: the user's data folder, where 'predict --case' finds them)")
    b.add_argument("--cases", nargs="+", default=None, help="subset of cases (default: all four)")
    b.add_argument("--workers", type=int, default=None, help="local worker processes for dataset generation")
    b.add_argument("--scheduler", default=None, help="Dask scheduler address for dataset generation")
    b.add_argument("--backend", default="auto", choices=["auto", "numpy", "cupy", "opencl"], help="simulation backend")
    b.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="XGBoost device")
    b.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    b.add_argument("--n-train", type=int, default=None,
                   help="training curves per case (default: the preset's; an existing training set grows to it)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    b.set_defaults(func=_cmd_zoo_build)
    r = zsub.add_parser("report", help="write docs/model-zoo.md and its figures",
                        description="Evaluate the bundles on their test splits, draw parity plots, run the paper's "
                                    "case study (replicate curves, Figs. 6-7) and write docs/model-zoo.md.",
                        formatter_class=_Formatter)
    r.add_argument("--preset", default="compact", help="simulation preset of the bundles")
    r.add_argument("--work", type=Path, default=Path("zoo-work"), help="folder with the datasets")
    r.add_argument("--bundles", type=Path, default=None, help="bundle folder (default: the shipped bundles)")
    r.add_argument("--docs", type=Path, default=Path("docs"), help="docs folder to write into")
    r.add_argument("--replicates", type=int, default=500, help="replicate curves of the case study")
    r.set_defaults(func=_cmd_zoo_report)


def _cmd_zoo_build(args: argparse.Namespace) -> int:
    from ..ml.zoo import build_zoo

    _check_workers(args.workers)
    done = build_zoo(args.preset, work=args.work, out=args.out, cases=args.cases, workers=args.workers,
                     scheduler=args.scheduler, backend=args.backend, device=args.device, seed=args.seed,
                     n_train=args.n_train, progress=not args.no_progress)
    for case, path in done.items():
        print(f"{case}: {path}")
    return 0


def _cmd_zoo_report(args: argparse.Namespace) -> int:
    from ..ml.predictor import shipped_bundles
    from ..ml.zoo import write_report

    if args.bundles is None:
        bundles = shipped_bundles()
    else:
        bundles = {p.name: p for p in sorted(args.bundles.iterdir()) if (p / "card.json").is_file()}
    if not bundles:
        raise ValueError("no bundles found; run 'sasview-grf zoo build' first")
    print(f"wrote {write_report(bundles, args.work, args.docs, args.preset, study_n=args.replicates)}")
    return 0


def _add_fit(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser(
        "fit",
        help="fit GRF parameters to measured curves, seeded (or replaced) by the boosters",
        description="Fit the GRF plugin model of a case to every curve of FILE (or of every file in a folder): "
                    "'seed' starts a bumps fit at the boosters' prediction, 'replace' returns the prediction, "
                    "'conventional' fits from the model defaults. q in 1/Å on output, a in Å.",
        formatter_class=_Formatter,
    )
    f.add_argument("paths", type=Path, nargs="+", help="data file(s) or folder(s)")
    f.add_argument("--case", default="auto", choices=_CASE_CHOICES,
                   help="auto (the measured family picks two or three phases), two_phase_low, two_phase_high, "
                        "three_phase_low or three_phase_high")
    f.add_argument("--family", default="measured", choices=["measured", "paper"],
                   help="ML initializer: 'measured' (any q window, a 8-500 Å) or 'paper' (the paper's boosters: "
                        "q 0.01-0.3 1/Å, a 8-40 Å)")
    f.add_argument("--mode", default="seed", choices=["seed", "replace", "conventional"], help="how to fit")
    f.add_argument("--method", default="lm", help="bumps fitter: lm, amoeba, newton, de, dream, ...")
    f.add_argument("--q-unit", default=None, help="q unit of ASCII files: 1/A or 1/nm")
    f.add_argument("--bundle", type=Path, default=None,
                   help="bundle directory (paper family) or measured-family folder instead of the shipped one")
    f.add_argument("--q-min", type=float, default=None, help="lowest q of the fit in 1/Å (default: the data's)")
    f.add_argument("--q-max", type=float, default=None, help="highest q of the fit in 1/Å (default: the data's)")
    f.add_argument("--smoothing-ratio", type=float, default=None,
                   help="the model's smoothing_ratio (sigma / a), fixed in the fit (default: the measured family's "
                        "prediction, free in a seeded fit; with --family paper the paper's 10 Å at the predicted a; "
                        "else the model's default 0.2)")
    f.add_argument("--free-smoothing", action=argparse.BooleanOptionalAction, default=None,
                   help="fit smoothing_ratio too (default: free in an ML-seeded fit of the measured family, fixed "
                        "otherwise)")
    f.add_argument("--smoothing", type=float, default=None,
                   help="deprecated: smoothing sigma in Å, converted to smoothing_ratio at the start value of a")
    f.add_argument("--steps", type=int, default=200, help="fitter steps (DREAM: generations after burn-in)")
    f.add_argument("--plot", type=Path, default=None,
                   help="PNG of data, start, fit and residuals (a folder when several curves are fitted)")
    f.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    f.add_argument("--summary", type=Path, default=None,
                   help="batch summary: a .csv or .json file (other extensions are refused)")
    f.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="stop each curve's fitter after this many seconds and report the best point so far "
                        "(DREAM, DE, amoeba; LM fits take about a second)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_model_options(f)
    f.set_defaults(func=_cmd_fit)


def _smoothing_options(args: argparse.Namespace) -> dict[str, float]:
    if args.smoothing is not None and args.smoothing_ratio is not None:
        raise ValueError("give --smoothing-ratio (sigma / a) or the deprecated --smoothing (sigma in Å), not both")
    if args.smoothing is not None:
        print("note: --smoothing (sigma in Å) is deprecated; the models take --smoothing-ratio = sigma / a after "
              "version 0.1 (converted at the start value of a)", file=sys.stderr)
        return {"smoothing": args.smoothing}
    return {} if args.smoothing_ratio is None else {"smoothing_ratio": args.smoothing_ratio}


def _add_model_options(f: argparse.ArgumentParser) -> None:
    """fit --model/--plus/--auto-qrange/--starts (any GRF model, additive terms, the q-range cut)."""
    from ..compare import BUILTIN_MODELS, PLUS_TERMS
    from ..sasview.paths import ENSEMBLE_MODELS

    f.add_argument("--model", default=None, choices=[*ENSEMBLE_MODELS, *BUILTIN_MODELS], metavar="MODEL",
                   help="model to fit: " + ", ".join([*ENSEMBLE_MODELS, *BUILTIN_MODELS]) + " (default: the case's "
                        "GRF model, ML-seeded); a model the ML cannot seed, or any model with --plus, is fitted "
                        "from --starts starts taken from the data")
    f.add_argument("--plus", action="append", default=None, choices=list(PLUS_TERMS), metavar="TERM",
                   help="additive term, repeatable: " + "; ".join(f"{k}: {v}" for k, v in PLUS_TERMS.items()))
    f.add_argument("--auto-qrange", action="store_true",
                   help="cut what no small-angle model describes (beam stop, a tail that drops below its "
                        "background, WAXS) and print what was cut; without it such regions are only reported")
    f.add_argument("--starts", type=int, default=3, help="starts of a multi-start fit (data length scale x "
                                                         "0.5, 1, 2.5, ...)")


def _cmd_fit(args: argparse.Namespace) -> int:
    import json

    from ..fitting import fit_many, plot_fit, write_summary

    q_range = None
    if args.q_min is not None or args.q_max is not None:
        q_range = (args.q_min if args.q_min is not None else 0.0,
                   args.q_max if args.q_max is not None else float("inf"))
    # DREAM and the other iterative fitters run thousands of evaluations: bumps' progress monitor shows them
    # (one curve at a time); LM takes about a second.
    def show(result, failure) -> None:  # noqa: ANN001
        # As each curve finishes: a long batch shows its results while it runs.
        if result is not None:
            print(result.table(), flush=True)
        else:
            print(f"FAILED {failure['source']}: {failure['error']}", file=sys.stderr, flush=True)

    results, failures = fit_many(args.paths, args.case, mode=args.mode, method=args.method, q_unit=args.q_unit,
                                 progress=not args.no_progress, on_result=show,
                                 fit_progress=args.method != "lm" and not args.no_progress,
                                 steps=args.steps, q_range=q_range, time_budget=args.time_budget,
                                 model_options=_smoothing_options(args), free_smoothing=args.free_smoothing,
                                 family=args.family, model=args.model, plus=tuple(args.plus or ()),
                                 auto_qrange=args.auto_qrange, n_starts=args.starts,
                                 **({"bundle": args.bundle} if args.bundle else {}))
    if args.plot is not None and results:
        if len(results) == 1 and args.plot.suffix.lower() in _IMAGE_SUFFIXES:
            plot_fit(results[0], args.plot)
            print(f"wrote {args.plot}")
        else:
            args.plot.mkdir(parents=True, exist_ok=True)
            for r in results:
                plot_fit(r, args.plot / f"{r.name}.png")
            print(f"wrote {len(results)} figures to {args.plot}")
    if args.json is not None:
        args.json.write_text(json.dumps([r.to_dict() for r in results], indent=1))
    if args.summary is not None:
        write_summary(results, failures, args.summary)
    if not results:
        return 2
    return 1 if failures else 0


def _add_ensemble(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "ensemble",
        help="build or inspect the ensemble-mean table behind grf_two_phase / grf_three_phase",
        description="The ensemble-mean models evaluate a table made by this package's simulator: 'build' "
                    "simulates realizations into a folder (resumable: rerun to continue), 'tabulate' turns them "
                    "into a table file and card, 'info' shows a table's card.",
    )
    esub = e.add_subparsers(dest="ensemble_command", metavar="ACTION")
    esub.required = True
    b = esub.add_parser("build", help="simulate realizations (resumable)", formatter_class=_Formatter)
    b.add_argument("--out", type=Path, required=True, help="build folder (created; an existing one is continued)")
    b.add_argument("--realizations", type=int, required=True, help="total number of realizations wanted")
    b.add_argument("--grid-size", type=int, default=None, help="voxels per box edge (default 144 for a new build)")
    b.add_argument("--voxels-per-a", type=float, default=None, help="voxels per a (default 8 for a new build)")
    b.add_argument("--seed", type=int, default=None, help="root seed (default 20261201 for a new build)")
    b.add_argument("--backend", default="numpy", choices=["numpy", "cupy"], help="array backend")
    b.add_argument("--scheduler", default=None,
                   help="address of a Dask scheduler: realizations run on its workers (shared folder needed)")
    b.add_argument("--allow-long", action="store_true",
                   help="run even when realizations x fields x N^3 exceeds the work limit (5 x 2^34 voxel-FFTs)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_ensemble_build)
    t = esub.add_parser("tabulate", help="turn a build folder into a table file and card", formatter_class=_Formatter)
    t.add_argument("build", type=Path, help="build folder")
    t.add_argument("--out", type=Path, required=True, help="folder for grf_ensemble_table.npz and card.json")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_ensemble_tabulate)
    i = esub.add_parser("info", help="show a table's card", formatter_class=_Formatter)
    i.add_argument("table", type=Path, nargs="?", default=None, help="table folder (default: the shipped table)")
    i.set_defaults(func=_cmd_ensemble_info)


def _cmd_ensemble_build(args: argparse.Namespace) -> int:
    from ..ensemble.build import DEFAULT_SPEC, build_realizations, check_build, read_spec

    changes = {k: v for k, v in (("grid_size", args.grid_size), ("voxels_per_a", args.voxels_per_a),
                                 ("seed", args.seed)) if v is not None}
    spec = read_spec(args.out)
    if spec is None:
        import dataclasses

        spec = dataclasses.replace(DEFAULT_SPEC, **changes)
    elif changes:
        raise ValueError(f"{args.out} is an existing build: its spec is fixed (omit --grid-size/--voxels-per-a/--seed)")
    # Refused before anything is written or a cluster is contacted.
    check_build(spec, args.realizations, allow_long=args.allow_long, check_memory=not args.scheduler)
    if args.scheduler:
        from dask.distributed import Client

        with Client(args.scheduler) as client:
            made = build_realizations(args.out, args.realizations, spec, backend=args.backend, client=client,
                                      progress=not args.no_progress, allow_long=args.allow_long)
    else:
        made = build_realizations(args.out, args.realizations, spec, backend=args.backend,
                                  progress=not args.no_progress, allow_long=args.allow_long)
    print(f"made {len(made)} realization(s) in {args.out}")
    return 0


def _cmd_ensemble_tabulate(args: argparse.Namespace) -> int:
    from ..ensemble.tabulate import tabulate

    card = tabulate(args.build, args.out, progress=not args.no_progress, log=print)
    print(f"wrote {args.out / card['file']} ({card['how']})")
    print("median relative Monte-Carlo error per bin: " +
          ", ".join(f"{k} {v:.2%}" for k, v in card["monte_carlo_rel_se_median"].items()))
    return 0


def _cmd_ensemble_info(args: argparse.Namespace) -> int:
    import json

    from ..ensemble.table import EnsembleTable, default_table_path, read_card

    folder = args.table if args.table is not None else default_table_path().parent
    card = read_card(folder)
    # The whole table is checked (digest, arrays) before its card is shown: a card that does not describe its
    # table is refused, never printed.
    EnsembleTable(folder / card["file"], require_card=True)
    print(json.dumps(card, indent=1))
    return 0


# Output files are written in the format their extension names; any other extension is refused.
_IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")
_OUTPUT_SUFFIXES = {
    ("simulate", "out"): (".csv", ".txt", ".dat"),
    ("simulate", "plot"): _IMAGE_SUFFIXES,
    ("fit", "summary"): (".csv", ".json"),
    ("fit", "json"): (".json",),
    ("fit", "plot"): ("",) + _IMAGE_SUFFIXES,  # no extension: a folder of figures
    ("predict", "json"): (".json",),
    ("compare", "json"): (".json",),
    ("compare", "plot"): _IMAGE_SUFFIXES,
    ("evaluate", "json"): (".json",),
}


def _check_output_suffixes(args: argparse.Namespace) -> None:
    for (command, attr), allowed in _OUTPUT_SUFFIXES.items():
        value = getattr(args, attr, None) if args.command == command else None
        if value is not None and Path(value).suffix.lower() not in allowed:
            shown = ", ".join(a or "none (a folder)" for a in allowed)
            raise ValueError(f"--{attr} {value}: the extension must be one of {shown} (the file is written in the "
                             "format its extension names)")


def _check_workers(workers: int | None) -> None:
    """Refuse more local worker processes than this machine has cores (they would only compete)."""
    import os

    if workers is None:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if workers > cores:
        raise ValueError(f"--workers {workers} is more than the {cores} CPU core(s) this process may use; give at "
                         f"most {cores}, or --scheduler to run on a Dask cluster")


def _check_distinct_splits(train: Path, val: Path, test: Path | None) -> None:
    named = {"--train": train, "--val": val, **({"--test": test} if test is not None else {})}
    seen: dict[Path, str] = {}
    for option, path in named.items():
        real = Path(path).resolve()
        if real in seen:
            raise ValueError(f"{option} and {seen[real]} are the same dataset ({path}): validation and test curves "
                             "must not be training curves; give different splits")
        seen[real] = option


def _check_same_setup(datasets: dict) -> None:
    """Refuse two splits that hold the same curves (same case, split, seed and grid)."""
    items = list(datasets.items())
    for i, (name_a, a) in enumerate(items):
        for name_b, b in items[i + 1:]:
            sa, sb = a.spec, b.spec
            if (sa.case, sa.split, sa.seed, sa.config.to_dict()) == (sb.case, sb.split, sb.seed, sb.config.to_dict()):
                raise ValueError(f"{name_a} and {name_b} hold the same curves (case {sa.case}, split {sa.split}, "
                                 f"seed {sa.seed}): give splits generated with different --split or --seed")


# Bytes per stored curve value while training or evaluating: the clean and noisy float32 curves, their
# float64 log features and float32 standardized copy, XGBoost's own matrix.
_BYTES_PER_VALUE = 24


def _check_dataset_memory(paths: list, verb: str) -> None:
    """Refuse datasets that cannot be held in memory, before reading them."""
    import psutil

    from ..datasets import DatasetStore

    specs = [DatasetStore.open(p).spec for p in paths]
    need = sum(s.n * s.config.n_q for s in specs) * _BYTES_PER_VALUE
    free = psutil.virtual_memory().available
    if need > free:
        raise ValueError(f"{verb} needs about {need / 2**30:.3g} GiB of memory for {sum(s.n for s in specs)} curves "
                         f"of {specs[0].config.n_q} q points, but only {free / 2**30:.3g} GiB is available; use "
                         "smaller datasets")


def _check_bundle_grid(card: dict, ds, path: Path) -> None:
    """Refuse a dataset simulated on another grid or q range than the bundle's training data."""
    want = card.get("config")
    if not isinstance(want, dict):
        return
    have = ds.spec.config.to_dict()
    keys = ("grid_size", "voxel_size", "q_min", "q_max", "n_q", "smoothing_sigma", "densities")
    diffs = [f"{k} {have.get(k)} (bundle: {want.get(k)})" for k in keys if k in want and have.get(k) != want.get(k)]
    if diffs:
        raise ValueError(f"{path} was simulated with {', '.join(diffs)}: the bundle's metrics on it would be "
                         "meaningless; evaluate on datasets made like the bundle's training data")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="sasview-grf",
        description="GRF microstructures, their SAXS curves, and SasView models (Röding et al. 2022).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="VERB")
    sub.required = True
    _add_simulate(sub)
    _add_dataset(sub)
    _add_install_plugins(sub)
    _add_export_plugin(sub)
    _add_ml(sub)
    _add_zoo(sub)
    _add_fit(sub)
    _add_ensemble(sub)
    sasview_verbs.add_parser(sub)
    reconstruct_verbs.add_parser(sub)
    compare_verbs.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sasview-grf`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # 'dataset' without a sub-verb means 'dataset generate'.
    if argv[:1] == ["dataset"] and (len(argv) == 1 or argv[1] not in ("generate", "info", "-h", "--help")):
        argv.insert(1, "generate")
    args = parser.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        # File names that are not UTF-8 arrive as surrogate escapes: print them as their own bytes.
        try:
            stream.reconfigure(errors="surrogateescape")
        except (AttributeError, ValueError, OSError):
            pass
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        # Warnings are for people: one line with the verb, no Python source line.
        print(f"sasview-grf {args.command}: warning: {message}", file=sys.stderr if file is None else file)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        _check_output_suffixes(args)
        return int(args.func(args))
    except (ValueError, RuntimeError, MemoryError, OSError) as exc:
        # Bad input and resource problems are the user's to fix: one clear line, no traceback.
        print(f"sasview-grf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # A bug, not the user's doing: still one line, with the way to the traceback for a report.
        import os

        if os.environ.get("SASVIEW_GRF_DEBUG"):
            raise
        print(f"sasview-grf {args.command}: internal error: {type(exc).__name__}: {exc} (rerun with "
              "SASVIEW_GRF_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 3
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
