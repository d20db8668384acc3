"""The shipped default boosters ("model zoo"): one reproducible, resumable build for all four cases,
and the report behind ``docs/model-zoo.md`` (Table 2 metrics, parity plots, coverage, the case study).

``build_zoo`` generates the datasets (resuming any that exist), trains each case whose bundle
is missing or fails verification, and writes bundles into ``out`` (by default the user's data folder,
:func:`~sasview_grf_plugin.userdata.user_bundle_dir`, from which :func:`~sasview_grf_plugin.ml.load_predictor`
loads them by case name before the shipped ones; never into the installed package, which may be read-only
and is replaced by an upgrade). The shipped bundles are remade with ``out`` set to the source tree's
``sasview_grf_plugin/ml/bundles``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.cases import CASES, SPLITS, split_size
from ..datasets.generate import generate_dataset
from ..datasets.storage import load_dataset
from ..simulator.config import PRESETS, get_preset
from .bundle import BundleError, read_bundle
from .training import TrainingSettings, settings_for

__all__ = ["ZOO_TRAINING", "ZOO_TRAIN_SIZES", "zoo_train_size", "build_zoo", "default_bundle_dir", "zoo_settings",
           "case_study"]

# Compact-preset training for the shipped boosters: 16-32k curves per case on 2 CPU cores. Depth-6 trees
# and a learning rate of 0.1 keep each case's bundle to a few MB (all four under 25 MB) and the whole
# training within minutes; the validation split stops each booster.
ZOO_TRAINING: dict[str, Any] = dict(params=dict(learning_rate=0.1, max_depth=6, min_child_weight=3, subsample=0.7,
                                                colsample_bytree=0.3, reg_lambda=1.0, max_bin=256),
                                    num_boost_round=1500, early_stopping_rounds=50, restarts=1)


# Training curves per case for the shipped boosters, above the preset's 2^13: the three-phase porosity and
# layer-fraction errors still fall by a fifth to a quarter per doubling (benchmarks/study_learning_curve.py).
ZOO_TRAIN_SIZES: dict[str, dict[str, int]] = {
    "compact": {"two_phase_low": 2**14, "two_phase_high": 2**14, "three_phase_low": 2**15, "three_phase_high": 2**15},
}


def zoo_train_size(config: Any, case: str) -> int:
    """Training-split size of ``case`` in the zoo: ``ZOO_TRAIN_SIZES`` for an unmodified preset, else the config's."""
    cfg = get_preset(config)
    if cfg.name in ZOO_TRAIN_SIZES and cfg.name in PRESETS and cfg == PRESETS[cfg.name]:
        return ZOO_TRAIN_SIZES[cfg.name][case]
    return cfg.n_train


def default_bundle_dir() -> Path:
    """Where ``build_zoo`` writes by default: the user's bundle folder (see :mod:`sasview_grf_plugin.userdata`)."""
    from ..userdata import user_bundle_dir

    return user_bundle_dir()


def zoo_settings(preset: str, device: str = "cpu", seed: int = 0) -> TrainingSettings:
    if preset == "compact":
        return TrainingSettings(**ZOO_TRAINING, device=device, seed=seed)
    return settings_for(preset, device=device, seed=seed)


def _bundle_ok(path: Path, preset: str, n_train: int) -> bool:
    try:
        card = read_bundle(path).card
    except BundleError:
        return False
    n = card.get("datasets", {}).get("train", {}).get("n")
    return card.get("preset") == preset and "metrics" in card and n == n_train


def build_zoo(preset: str = "compact", work: str | os.PathLike = "zoo-work", out: str | os.PathLike | None = None,
              cases: list[str] | None = None, workers: int | None = None, scheduler: str | None = None,
              backend: str = "auto", device: str = "cpu", seed: int = 0, chunk_size: int = 64,
              n_train: int | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> dict[str, Path]:
    """Generate, train and evaluate the bundles of ``cases`` (default: all four). Resumable.

    ``n_train`` overrides the training-split size (default: :func:`zoo_train_size`; an existing
    training set grows to it, a bundle trained on another size is retrained). Returns {case: bundle path}.
    """
    from .._deps import check_xgboost
    from .pipeline import train_bundle

    check_xgboost(device)  # before hours of simulation: --device cuda needs the CUDA-enabled XGBoost
    cfg = get_preset(preset)
    if n_train is not None and (isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 2):
        raise ValueError(f"n_train must be an integer >= 2, got {n_train!r}")
    out_dir = Path(out) if out is not None else default_bundle_dir()
    cases = list(cases or CASES)
    for c in cases:
        if c not in CASES:
            raise ValueError(f"unknown case {c!r}; allowed: {', '.join(CASES)}")
    done = {}
    for case in cases:
        bundle = out_dir / case
        sizes = {split: split_size(cfg, split) for split in SPLITS}
        sizes["train"] = n_train if n_train is not None else zoo_train_size(cfg, case)
        if _bundle_ok(bundle, cfg.name, sizes["train"]):
            log(f"{case}: bundle {bundle} is complete and verified; skipping")
            done[case] = bundle
            continue
        paths = {}
        for split in SPLITS:
            paths[split] = Path(work) / cfg.name / case / split
            t0 = time.perf_counter()
            generate_dataset(paths[split], case, split, config=cfg, n=sizes[split], chunk_size=chunk_size, seed=seed,
                             backend=backend, workers=workers, scheduler=scheduler, progress=progress)
            log(f"{case}/{split}: dataset ready ({time.perf_counter() - t0:.0f} s)")
        data = {s: load_dataset(p) for s, p in paths.items()}
        log(f"{case}: training")
        command = (f"sasview-grf zoo build --preset {cfg.name} --work {work} --seed {seed}"
                   + (f" --n-train {n_train}" if n_train is not None else "")
                   + (f" --out {out}" if out is not None else ""))
        done[case] = train_bundle(bundle, data["train"], data["val"], data["test"],
                                  zoo_settings(cfg.name, device, seed), log=log, command=command)
    return done


def case_study(predictor: Any, preset: str, a: float, porosity: float, layer_fraction: float, n: int = 500,
               seed: int = 2022, backend: str = "auto") -> dict[str, Any]:
    """The paper's section 2.5: ``n`` replicate noisy curves (new structures) of one parameter set, predicted.

    Returns the predictions per output, their mean and sd, and the noise levels used.
    """
    from ..datasets.noise import ALPHA_RANGE, PAPER_INTENSITY_SCALE, add_noise, normalize
    from ..simulator.seeds import child_seed
    from ..simulator.simulate import simulate_curve

    cfg = get_preset(preset)
    root = np.random.SeedSequence(seed)
    curves = simulate_curve(cfg, np.full(n, a), porosity, layer_fraction, seed=child_seed(root, 0), backend=backend,
                            progress=True)
    noisy, alpha = add_noise(PAPER_INTENSITY_SCALE * curves, np.random.default_rng(child_seed(root, 1)),
                             alpha_range=ALPHA_RANGE)
    pred = predictor.predict_normalized(normalize(cfg.q, noisy))
    stats = {o: (float(np.mean(v)), float(np.std(v, ddof=1))) for o, v in pred.values.items()}
    return {"values": pred.values, "stats": stats, "alpha": alpha, "in_domain": float(np.mean(pred.in_domain)),
            "truth": {"a": a, "porosity": porosity, "layer_fraction": layer_fraction}}


def card_summary(bundle: Path) -> dict[str, Any]:
    card = json.loads((Path(bundle) / "card.json").read_text())
    size = sum(f.stat().st_size for f in Path(bundle).iterdir())
    return {"case": card["case"], "metrics": card["metrics"], "bytes": size,
            "best_iterations": card["training"]["best_iterations"], "seconds": card["training"]["seconds"]}


# Röding et al. 2022, Table 2, test split: (MSE, MAPE %).
PAPER_TABLE2_TEST = {
    "two_phase_low": {"a": (4.215e-3, 0.707), "porosity": (3.766e-4, 4.190)},
    "two_phase_high": {"a": (4.195e-3, 0.702), "porosity": (3.736e-4, 2.026)},
    "three_phase_low": {"a": (4.324e-3, 0.727), "porosity": (1.171e-4, 2.793), "layer_fraction": (1.317e-5, 1.280)},
    "three_phase_high": {"a": (3.199e-3, 0.617), "porosity": (2.606e-4, 1.583), "layer_fraction": (8.144e-5, 2.879)},
}


ZOO_INTRO = """\
**How they were made.** `sasview-grf zoo build --preset compact` on this project's 2-core CPU
machine: per case 2^14 (two phases) or 2^15 (three phases) training curves (`ZOO_TRAIN_SIZES`), 2^11
validation and 2^11 test curves of the compact preset (128^3 voxels of 0.5 nm, a in [0.8, 4] nm, 500
q values in 0.1-3 1/nm), generated at 20-27 curves/s, then one booster per output and one interval
booster per output with the `ZOO_TRAINING` settings (learning rate 0.1, depth 6, subsample 0.7,
column sample 0.3, up to 1500 trees, early stopping after 50 rounds on the validation split),
1.2-6.4 minutes per case. The training splits were first made with the brief's minimum of 2^13
curves and grown (`--n-train`), which keeps the stored curves and gives the same data as generating
the larger split at once; every doubling lowered every test MAPE (three_phase_high layer fraction:
10.9 % at 2^13, 9.8 % at 2^14, 8.7 % at 2^15 curves). The settings keep all four bundles at 18 MiB
(gzip-compressed UBJSON) against a 25 MB budget; deeper trees (depth 8) and/or half the learning
rate changed the validation MSE by -2 to +3 % with 2-4x larger boosters (two_phase_low, 2^13
curves).

**Test MAPE against the targets** (a under 2 %, porosity and layer fraction under 6 %; the paper's
Table 2 test values at 512^3 and 2^19 training curves in brackets):"""

ZOO_TARGETS = """\
Where they miss, and why. **a** (2.0-2.5 %) misses 2 % narrowly (three_phase_high: 2.01 %), and
more training curves barely help: on three_phase_high its validation MSE fell by only 4 % and 6 %
per doubling of the training set (2^12 -> 2^13 -> 2^14 curves; `python
benchmarks/study_learning_curve.py`, output in `benchmarks/results/`). The compact box is 64 nm
against the paper's 256 nm, so the low-q plateau that carries a is sampled by few shells and a
single realization scatters by 10-30 % there (the paper reaches 0.6-0.7 %). **Porosity** meets 6 %
for the high-porosity cases (4.7-5.5 %) but not for the low ones (9.5-11.9 %): the same absolute
error (RMSE 0.034-0.048) weighs twice as much in a MAPE when the porosity is 0.1-0.5 rather than
0.5-0.9, and porosity is the hardest output in the paper too. The **layer fraction** meets 6 % at
low porosity (4.6 %) and misses at high porosity (8.7 %), where the layer is a thin shell around a
large pore space on a 0.5 nm grid. Unlike a, these two are still limited by the training set: on
three_phase_high their validation MSE fell by 18-20 % (porosity) and 26-28 % (layer fraction) per
doubling, and the three_phase_high layer-fraction booster stops at the 1500-tree cap, so the
paper's 16-32x larger set would help them; the same command with `--preset paper` on a GPU box
makes the paper-scale set. The 90 % intervals hold their nominal coverage on every test split
(0.886-0.917, 2,048 curves each: the sampling sd is 0.007)."""


def two_families_section(docs: str | os.PathLike) -> list[str]:
    """Markdown lines: the paper family beside the measured family (figures from measured-family.json)."""
    import json

    out = ["## Two families", "",
           "This page is the **paper family**: the paper's boosters on its fixed q grid (0.01-0.3 1/Å), trained "
           "on simulated boxes, the reproduction of Table 2 (`--family paper`). The **measured family** "
           "({doc}`measured-family`, the default of `predict` and `fit`) is trained on the ensemble-mean model "
           "with instrument effects and takes any q window and a from 8 to 500 Å."]
    f = Path(docs) / "measured-family.json"
    if f.is_file():
        clean = json.loads(f.read_text()).get("clean", {})
        out += ["", "Test MAPE in the paper's setting (noise only; paper family: its own test split of simulated "
                "boxes, q 0.01-0.3 1/Å; measured family: ensemble-model curves, q a from 0.1 to 10):", "",
                "| case | measured: a | measured: porosity | measured: layer fraction |", "|---|---|---|---|"]
        for case, m in clean.items():
            layer = f"{m['layer_fraction']:.2f} %" if "layer_fraction" in m else "–"
            out.append(f"| {case} | {m['a']:.2f} % | {m['porosity']:.2f} % | {layer} |")
        out += ["", "The paper family's figures for the same cases are in the next table."]
    return out


def write_report(bundles: dict[str, Path], work: str | os.PathLike, docs: str | os.PathLike, preset: str = "compact",
                 study: tuple[float, float, float] = (2.5, 0.7, 0.2), study_n: int = 500,
                 log: Callable[[str], None] = print) -> Path:
    """Figures and ``model-zoo.md`` for the bundles: metrics beside Table 2, parity plots, coverage, case study."""
    from ..simulator.config import get_preset
    from .evaluation import parity_plot, replicate_histogram
    from .predictor import load_predictor

    docs = Path(docs)
    fig_dir = docs / "_static" / "zoo"
    fig_dir.mkdir(parents=True, exist_ok=True)
    cfg = get_preset(preset)
    lines = ["# Model zoo: the shipped boosters", "",
             "Generated by `sasview-grf zoo report` from the bundles in `sasview_grf_plugin/ml/bundles/`.", "",
             *two_families_section(docs), "",
             ZOO_INTRO, "", "| case | a | porosity | layer fraction |", "|---|---|---|---|"]
    summaries = {case: card_summary(path) for case, path in bundles.items()}
    for case, summary in summaries.items():
        m = summary["metrics"]
        cell = {o: f"{m[o]['test']['mape']:.2f} % (paper {PAPER_TABLE2_TEST[case][o][1]:.2f} %)" for o in m}
        lines.append(f"| {case} | {cell.get('a', '')} | {cell.get('porosity', '')} | "
                     f"{cell.get('layer_fraction', '–')} |")
    lines += ["", ZOO_TARGETS, ""]
    for case, path in bundles.items():
        pred = load_predictor(path)
        card = pred.card
        test = load_dataset(Path(work) / cfg.name / case / "test")
        p = pred.predict_normalized(test.noisy)
        png = fig_dir / f"parity_{case}.png"
        parity_plot({o: getattr(test, o) for o in pred.outputs}, p.values, png,
                    title=f"{case}: test split, {test.spec.n} curves")
        summary = summaries[case]
        lines += [f"## {case}", "",
                  f"Bundle: {summary['bytes'] / 2**20:.1f} MiB; trees per output "
                  f"{', '.join(f'{o} {n + 1}' for o, n in summary['best_iterations'].items())}; "
                  f"training {summary['seconds'] / 60:.1f} min.", "",
                  "| output | split | MSE | MAPE % | paper test MSE | paper test MAPE % | 90 % interval coverage | "
                  "mean interval width |",
                  "|---|---|---|---|---|---|---|---|"]
        for o in pred.outputs:
            for split in ("train", "val", "test"):
                m = card["metrics"][o][split]
                paper = PAPER_TABLE2_TEST[case][o] if split == "test" else None
                lines.append(f"| {o} | {split} | {m['mse']:.3e} | {m['mape']:.2f} | "
                             f"{'' if paper is None else f'{paper[0]:.3e}'} | "
                             f"{'' if paper is None else f'{paper[1]:.3f}'} | {m['coverage']:.3f} | "
                             f"{m['mean_width']:.3g} |")
        ranges = ", ".join(f"{k} in [{v[0]:g}, {v[1]:g}]" for k, v in card["parameter_ranges"].items())
        lines += ["", f"Domain of applicability: q = {card['q']['min']:g}-{card['q']['max']:g} 1/nm "
                      f"({card['q']['n']} points; {card['q']['min'] / 10:g}-{card['q']['max'] / 10:g} 1/Å), {ranges}, "
                      f"structures of the `{card['preset']}` preset (N = {card['config']['grid_size']}, "
                      f"dx = {card['config']['voxel_size']} nm), noise alpha in "
                      f"[{card['noise']['alpha_range'][0]:g}, {card['noise']['alpha_range'][1]:.3g}].", "",
                  f"Made by: `{card['command']}`", "",
                  f"![parity plot {case}](_static/zoo/parity_{case}.png)", ""]
        log(f"report: {case} done")
    if "three_phase_high" in bundles:
        a, eps, nu = study
        pred = load_predictor(bundles["three_phase_high"])
        res = case_study(pred, preset, a, eps, nu, n=study_n)
        stats = replicate_histogram(res["values"], res["truth"], fig_dir / "case_study_histogram.png",
                                    title=f"{study_n} replicate curves, three_phase_high")
        fig7 = _figure7(pred, cfg, a, eps, nu, fig_dir / "case_study_reconstruction.png")
        lines += ["## Case study (paper section 2.5, Figs. 6-7)", "",
                  f"{study_n} replicate noisy curves (new structure and noise each) of a = {a} nm, porosity {eps}, "
                  f"layer fraction {nu}, predicted with the `three_phase_high` bundle:", "",
                  "| output | true | mean ± sd of predictions |", "|---|---|---|"]
        for o, (m, s) in stats.items():
            lines.append(f"| {o} | {res['truth'][o]:g} | {m:.4g} ± {s:.2g} |")
        lines += ["", f"{100 * res['in_domain']:.1f} % of the replicates were flagged inside the domain.", "",
                  "![replicate histograms](_static/zoo/case_study_histogram.png)", "",
                  f"One structure, its curve, and the structure rebuilt from the parameters predicted from its noisy "
                  f"curve ({fig7}):", "", "![reconstruction](_static/zoo/case_study_reconstruction.png)", ""]
    md = docs / "model-zoo.md"
    md.write_text("\n".join(lines) + "\n")
    return md


def _figure7(pred: Any, cfg: Any, a: float, eps: float, nu: float, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..datasets.noise import PAPER_INTENSITY_SCALE, add_noise, normalize
    from ..simulator.scattering import scattering_curve
    from ..simulator.structure import generate_structure

    rho = np.asarray(generate_structure(cfg, a, eps, nu, seed=7, backend="numpy"))
    curve = scattering_curve(rho, cfg.voxel_size, cfg.q)
    noisy, _ = add_noise(PAPER_INTENSITY_SCALE * curve, np.random.default_rng(7), alpha=10**3.5)
    p = pred.predict_normalized(normalize(cfg.q, noisy[None]))
    est = {o: float(v[0]) for o, v in p.values.items()}
    rho2 = np.asarray(generate_structure(cfg, est["a"], est["porosity"], est.get("layer_fraction", 0.0), seed=8,
                                         backend="numpy"))
    curve2 = scattering_curve(rho2, cfg.voxel_size, cfg.q)
    fig = plt.figure(figsize=(12, 4))
    ax = fig.add_subplot(1, 3, 1)
    ax.loglog(cfg.q, noisy / PAPER_INTENSITY_SCALE, ".", ms=2, color="0.6", label="noisy (input)")
    ax.loglog(cfg.q, curve, "k-", lw=1.2, label="true structure")
    ax.loglog(cfg.q, curve2, "r--", lw=1.2, label="rebuilt structure")
    ax.set_xlabel("q [1/nm]")
    ax.set_ylabel("I(q) [ρ² nm³]")
    ax.legend(fontsize=8)
    n = cfg.grid_size
    for k, (r, title) in enumerate(((rho, f"true: a={a}, ε={eps}, ν={nu}"),
                                    (rho2, "rebuilt: a={a:.3g}, ε={porosity:.3g}, ν={layer_fraction:.3g}".format(
                                        **{"layer_fraction": 0.0, **est})))):
        ax = fig.add_subplot(1, 3, k + 2)
        ax.imshow(r[n // 2], cmap="gray", vmin=0, vmax=1, extent=(0, cfg.box_size, 0, cfg.box_size), origin="lower")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x [nm]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ", ".join(f"{o} = {v:.4g}" for o, v in est.items())
