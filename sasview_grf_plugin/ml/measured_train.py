"""Make the "measured" booster family: synthetic measurements, boosters, calibrated intervals, domain test.

Steps (each resumable; ``sasview-grf zoo measured``):

1. ``generate``: synthetic measurements per case and split (:mod:`.measured_data`), in chunks of
   ``CHUNK`` curves written atomically as ``.npz`` (a rerun skips finished chunks). Chunk ``k`` of a
   split uses the ``k``-th child of the split's SeedSequence: the data do not depend on how often the
   job was interrupted. The calibration and test splits keep their curves (the pipeline is run on them).
2. ``train``: stage 1 (ln a from the absolute-q features, all cases pooled) and per case stage 2
   (ln r = ln a/a0, porosity, layer fraction, smoothing/a from the q a0 features), each with a 5 %/95 %
   quantile booster. XGBoost's own model format, gzip, in bundles with cards (:mod:`.bundle`).
3. ``calibrate``: the whole prediction pipeline on the calibration split; per output, conformal
   margins in each decile of the predicted value (Mondrian conformalized quantile regression, so the
   coverage holds across the range, not only on average) and the self-check threshold of the domain test.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .measured_data import EFFECTS, MEASURED_CASES, synthesize

__all__ = ["CHUNK", "SPLITS", "generate", "load_split", "split_chunks", "train_family", "calibrate_family",
           "slim_family", "MEASURED_PARAMS", "SHIPPED_ROUNDS"]

# Rounds kept in the shipped boosters (the wheel must stay under 100 MB with everything it ships). On the
# early-stopping split, cutting from ~2000 rounds to 700 raises the RMSE of ln(a/a0) by 3 % (0.0259 ->
# 0.0267, two phases) and of the porosity by 2-6 %; the smoothing (weakly determined by any curve) and
# the quantile boosters (whose widths the conformal margins calibrate afterwards) keep fewer.
SHIPPED_ROUNDS = {"point": 700, "smoothing": 400, "interval": 300}

# 2^18 curves per case on a 2-core machine: depth 8 and 128 bins train at ~0.03 s per round (depth 10 and
# 256 bins: 0.09 s); the quantile boosters only set interval widths and get a larger learning rate.
MEASURED_PARAMS: dict[str, Any] = dict(learning_rate=0.1, max_depth=8, min_child_weight=5, subsample=0.8,
                                       colsample_bytree=0.6, reg_lambda=1.0, max_bin=128)
INTERVAL_PARAMS: dict[str, Any] = {**MEASURED_PARAMS, "learning_rate": 0.15}

CHUNK = 4096
SPLITS = {"train": 2**18, "cal": 2**14, "test": 2**13}
_SPLIT_KEYS = {"train": 0, "cal": 1, "test": 2}
_CASE_KEYS = {"two_phase": 0, "three_phase_low": 1, "three_phase_high": 2}
_PARAMS = ("a", "porosity", "layer_fraction", "smoothing", "ln_r")


def split_chunks(n: int) -> list[tuple[int, int]]:
    return [(lo, min(n, lo + CHUNK)) for lo in range(0, n, CHUNK)]


def _chunk_path(work: Path, case: str, split: str, k: int) -> Path:
    return work / case / split / f"chunk-{k:05d}.npz"


def _make_chunk(work: str, case: str, split: str, k: int, n: int, seed: int, effects: str) -> str:
    path = _chunk_path(Path(work), case, split, k)
    if path.exists():
        return str(path)
    ss = np.random.SeedSequence([seed, _CASE_KEYS[case], _SPLIT_KEYS[split], k])
    keep = split != "train"
    d = synthesize(MEASURED_CASES[case], n, ss, EFFECTS[effects], keep_curves=keep)
    arrays = {name: d[name] for name in (*_PARAMS, "x1", "x2")}
    if keep:
        q, i, di = zip(*d["curves"], strict=True)
        arrays["offsets"] = np.cumsum([0, *[len(v) for v in q]])
        arrays["q"], arrays["I"], arrays["dI"] = np.concatenate(q), np.concatenate(i), np.concatenate(di)
        arrays["effects"] = np.array([json.dumps(e) for e in d["effects"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return str(path)


def generate(work: str | os.PathLike, cases: tuple[str, ...] = tuple(MEASURED_CASES), seed: int = 2026,
             sizes: dict[str, int] | None = None, effects: str = "instrument", workers: int = 1,
             progress: bool = True) -> None:
    """Write the synthetic splits of ``cases`` under ``work`` (resumable)."""
    from tqdm.auto import tqdm

    sizes = {**SPLITS, **(sizes or {})}
    work = Path(work)
    jobs = [(str(work), c, s, k, hi - lo, seed, effects) for c in cases for s, n in sizes.items()
            for k, (lo, hi) in enumerate(split_chunks(n))]
    todo = [j for j in jobs if not _chunk_path(work, j[1], j[2], j[3]).exists()]
    (work / "spec.json").parent.mkdir(parents=True, exist_ok=True)
    (work / "spec.json").write_text(json.dumps({"seed": seed, "sizes": sizes, "effects": effects,
                                                "cases": list(cases), "chunk": CHUNK}, indent=1))
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="chunk", disable=not progress,
               desc="synthetic measurements")
    if workers <= 1:
        for j in todo:
            _make_chunk(*j)
            bar.update()
    else:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_make_chunk, *zip(*todo, strict=True)) if todo else ():
                bar.update()
    bar.close()


def load_split(work: str | os.PathLike, case: str, split: str, curves: bool = False) -> dict[str, Any]:
    """Concatenate the chunks of one split (features, parameters and, with ``curves``, the curves)."""
    files = sorted((Path(work) / case / split).glob("chunk-?????.npz"))
    if not files:
        raise FileNotFoundError(f"no chunks of {case}/{split} under {work}; run the generate step first")
    parts: dict[str, list] = {}
    out_curves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    effects: list[dict] = []
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            for name in (*_PARAMS, "x1", "x2"):
                parts.setdefault(name, []).append(z[name])
            if curves:
                off = z["offsets"]
                q, i, di = z["q"], z["I"], z["dI"]
                out_curves += [(q[a:b], i[a:b], di[a:b]) for a, b in zip(off[:-1], off[1:], strict=True)]
                effects += [json.loads(str(e)) for e in z["effects"]]
    out: dict[str, Any] = {k: np.concatenate(v) for k, v in parts.items()}
    if curves:
        out["curves"], out["effects"] = out_curves, effects
    return out


def _envelope(x: np.ndarray) -> dict[str, list[float]]:
    """Feature envelope for the domain test: 0.5 % and 99.5 % quantiles per feature (NaN ignored)."""
    n = x.shape[1]
    seen = np.isfinite(x).any(axis=0)
    lo, hi = np.full(n, -100.0), np.full(n, 100.0)  # a grid point no training curve reached: no constraint
    if seen.any():
        lo[seen], hi[seen] = np.nanpercentile(x[:, seen], [0.5, 99.5], axis=0)
    return {"mean": [0.0] * n, "std": [1.0] * n, "low": lo.tolist(), "high": hi.tolist()}


def _targets(d: dict[str, Any], outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Stage-2 targets: ln r for a (a0 = a / r given), the structure parameters as they are."""
    return {o: (d["ln_r"] if o == "a" else d[o]) for o in outputs}


def train_family(work: str | os.PathLike, out: str | os.PathLike, cases: tuple[str, ...] = tuple(MEASURED_CASES),
                 params: dict[str, Any] | None = None, rounds: int = 2500, early: int = 40, nthread: int | None = None,
                 log: Callable[[str], None] = print) -> None:
    """Train stage 1 and the stage-2 boosters of ``cases`` on the data under ``work``; write bundles to ``out``.

    A bundle already written is skipped (resumable per bundle). Cards are completed by
    :func:`calibrate_family`.
    """
    from .bundle import write_bundle
    from .measured_data import A_RANGE, LAYER_RANGE, STAGE1_GRID, STAGE2_GRID, WINDOW_RULE
    from .training import TrainingSettings, train_interval, train_regressor

    work, out = Path(work), Path(out)
    settings = TrainingSettings(params=dict(params or MEASURED_PARAMS), num_boost_round=rounds,
                                early_stopping_rounds=early, nthread=nthread)
    interval_settings = TrainingSettings(params=dict(INTERVAL_PARAMS), num_boost_round=max(1, rounds // 2),
                                         early_stopping_rounds=early, nthread=nthread)
    spec = json.loads((work / "spec.json").read_text())

    def fit(name: str, x_tr, y_tr, x_va, y_va):
        t0 = time.perf_counter()
        point, rec = train_regressor(x_tr, y_tr, x_va, y_va, settings)
        interval, irec = train_interval(x_tr, y_tr, x_va, y_va, interval_settings)
        log(f"{name}: {rec['best_iteration'] + 1} + {irec['best_iteration'] + 1} rounds, val RMSE "
            f"{rec['val_mse'] ** 0.5:.4g}, {time.perf_counter() - t0:.0f} s")
        return point, interval, {"best_iteration": rec["best_iteration"], "val_rmse": rec["val_mse"] ** 0.5,
                                 "interval_best_iteration": irec["best_iteration"],
                                 # A negative CQR margin would narrow the quantiles: never below zero.
                                 "margin": max(0.0, irec["margin"])}

    common = {"family": "measured", "interval_level": settings.interval_level, "window_rule": WINDOW_RULE,
              "training": {"params": settings.params, "interval_params": interval_settings.params, "data": spec,
                           "rounds": rounds, "early_stopping": early},
              "made": time.strftime("%Y-%m-%d")}
    stage1 = out / "stage1"
    if not (stage1 / "card.json").exists():
        per = SPLITS["train"] // len(cases)
        tr = [load_split(work, c, "train") for c in cases]
        va = [load_split(work, c, "cal") for c in cases]
        x_tr = np.concatenate([d["x1"][:per] for d in tr])
        y_tr = np.log(np.concatenate([d["a"][:per] for d in tr]))
        x_va = np.concatenate([d["x1"][: _half(d)] for d in va])
        y_va = np.log(np.concatenate([d["a"][: _half(d)] for d in va]))
        point, interval, rec = fit("stage 1 (ln a)", x_tr, y_tr, x_va, y_va)
        card = {**common, "case": "stage1", "stage": 1, "outputs": ["a"], "targets": {"a": "ln(a / 1 Å)"},
                "q": {**STAGE1_GRID.to_dict(), "variable": "q [1/Å]"}, "scaler": _envelope(x_tr),
                "parameter_ranges": {"a": list(A_RANGE)},
                "intervals": {"a": {"margin": rec["margin"]}}, "metrics": {"a": rec}}
        write_bundle(stage1, card, {"a": point}, {"a": interval})
        del tr, va
    for c in cases:
        path = out / c
        if (path / "card.json").exists():
            continue
        case = MEASURED_CASES[c]
        tr, va = load_split(work, c, "train"), load_split(work, c, "cal")
        h = _half(va)
        y_tr, y_va = _targets(tr, case.outputs), _targets(va, case.outputs)
        boosters, intervals, metrics = {}, {}, {}
        for o in case.outputs:
            boosters[o], intervals[o], metrics[o] = fit(f"{c} {o}", tr["x2"], y_tr[o], va["x2"][:h], y_va[o][:h])
        ranges = {"a": list(A_RANGE), "porosity": list(case.porosity), "smoothing": list(case.smoothing)}
        if case.three_phase:
            ranges["layer_fraction"] = list(LAYER_RANGE)
        card = {**common, "case": c, "stage": 2, "outputs": list(case.outputs),
                "targets": {"a": "ln(a / a0)", "porosity": "porosity", "layer_fraction": "layer_fraction",
                            "smoothing": "smoothing / a"},
                "q": {**STAGE2_GRID.to_dict(), "variable": "q a0"}, "scaler": _envelope(tr["x2"]),
                "parameter_ranges": ranges, "intervals": {o: {"margin": metrics[o]["margin"]} for o in case.outputs},
                "metrics": metrics}
        write_bundle(path, card, boosters, intervals)
        del tr, va


def _half(d: dict[str, Any]) -> int:
    """The calibration split's first half stops the training early; its second half calibrates."""
    return len(d["a"]) // 2


def _resolution(effects: dict[str, Any], q: np.ndarray, a: float) -> tuple[Any, Any]:
    """The resolution a data file would carry for a synthetic curve: pinhole dq or slit length, in 1/Å."""
    if "pinhole" in effects:
        return effects["pinhole"] * q, None
    if "slit" in effects:
        return None, np.full(q.size, effects["slit"] / a)
    return None, None


def run_pipeline(predictor: Any, d: dict[str, Any], case: str, rows: Any, raw: bool = False) -> dict[str, Any]:
    """Predict the curves ``rows`` of a split with the case forced; raw (margin-free) intervals with ``raw``."""
    st = predictor.cases[case]
    saved = st.intervals
    if raw:
        st.intervals = {o: {"margin": 0.0} for o in st.outputs}
    try:
        out: dict[str, Any] = {"values": [], "intervals": [], "misfit": [], "outside": [], "flags": []}
        for k in rows:
            q, i, di = d["curves"][k]
            dq, slit = _resolution(d["effects"][k], q, float(d["a"][k]))
            a0 = predictor.coarse_a(q, i)
            r = predictor._case(case, q, i, a0)
            chk = predictor.self_check(q, i, di, {"layer_fraction": 0.0, **r["values"]}, dq, slit)
            out["values"].append(r["values"])
            out["intervals"].append(r["intervals"])
            out["misfit"].append(chk["misfit"])
            out["outside"].append(r["outside"])
        return out
    finally:
        st.intervals = saved


def calibrate_family(work: str | os.PathLike, out: str | os.PathLike, cases: tuple[str, ...] = tuple(MEASURED_CASES),
                     level: float = 0.9, bins: int = 10, misfit_quantile: float = 0.98,
                     log: Callable[[str], None] = print) -> None:
    """Mondrian conformal margins and the self-check threshold, from the calibration split's second half.

    Per output, the calibration curves are binned by deciles of the predicted value; in each bin the
    margin is the ceil((m+1) level)/m quantile of the CQR scores max(lo - y, y - hi) (a in ln a), so
    each bin covers at least ``level`` on new curves from the same distribution. The domain threshold
    is the ``misfit_quantile`` quantile of the self-check misfit of the same in-domain curves.
    """
    from .bundle import read_bundle, write_bundle
    from .measured import KAPPA, OUTSIDE_TOLERANCE, MeasuredPredictor, write_forests

    out = Path(out)
    predictor = MeasuredPredictor(out)  # calibrating one case leaves the others' boosters as they are
    for c in cases:
        bundle = read_bundle(out / c)
        d = load_split(work, c, "cal", curves=True)
        rows = range(_half(d), len(d["a"]))
        res = run_pipeline(predictor, d, c, rows, raw=True)
        card = {k: v for k, v in bundle.card.items() if k not in ("files", "integrity", "format", "format_version")}
        intervals = {}
        for o in bundle.card["outputs"]:
            truth = np.array([d[o][k] for k in rows])
            pred = np.array([v[o] for v in res["values"]])
            lo = np.array([v[o][0] for v in res["intervals"]])
            hi = np.array([v[o][1] for v in res["intervals"]])
            if o == "a":
                truth, pred, lo, hi = np.log(truth), np.log(pred), np.log(lo), np.log(hi)
            score = np.maximum(lo - truth, truth - hi)
            edges = np.quantile(pred, np.linspace(0, 1, bins + 1))
            which = np.clip(np.searchsorted(edges, pred, side="right") - 1, 0, bins - 1)
            margins = []
            for b in range(bins):
                sb = np.sort(score[which == b])
                m = sb.size
                margins.append(float(max(0.0, sb[min(m, math.ceil((m + 1) * level)) - 1])) if m else
                               float(np.max(score)))
            intervals[o] = {"margin": float(max(margins)), "bin_edges": edges.tolist(), "margins": margins,
                            "binned_by": "predicted ln a" if o == "a" else f"predicted {o}"}
            log(f"{c} {o}: margins {np.round(margins, 4).tolist()}")
        misfit = np.array(res["misfit"])
        card["intervals"] = intervals
        card["interval_level"] = level
        card["domain"] = {"threshold": float(np.quantile(misfit[np.isfinite(misfit)], misfit_quantile)),
                          "quantile": misfit_quantile, "kappa": KAPPA,
                          "outside_tolerance": OUTSIDE_TOLERANCE}
        log(f"{c}: self-check threshold {card['domain']['threshold']:.4g}")
        write_bundle(out / c, card, bundle.boosters, bundle.interval_boosters)
    # The cards are final now: each bundle gets its prebuilt flat forest, keyed by the card's digest.
    for f in write_forests(out):
        log(f"wrote {f}")


def slim_family(work: str | os.PathLike, out: str | os.PathLike, rounds: dict[str, int] | None = None,
                log: Callable[[str], None] = print) -> None:
    """Keep the first rounds of every booster (``SHIPPED_ROUNDS``) and record the RMSE that costs.

    Run :func:`calibrate_family` afterwards: margins and thresholds belong to the boosters shipped.
    """
    from .bundle import read_bundle, write_bundle

    rounds = {**SHIPPED_ROUNDS, **(rounds or {})}
    out = Path(out)
    for name in ("stage1", *MEASURED_CASES):
        if not (out / name / "card.json").is_file():
            continue
        bundle = read_bundle(out / name)
        card = {k: v for k, v in bundle.card.items() if k not in ("files", "integrity", "format", "format_version")}
        if name == "stage1":
            va = [load_split(work, c, "cal") for c in MEASURED_CASES]
            x = np.concatenate([d["x1"][: _half(d)] for d in va])
            ys = {"a": np.log(np.concatenate([d["a"][: _half(d)] for d in va]))}
        else:
            va = load_split(work, name, "cal")
            x, ys = va["x2"][: _half(va)], {k: v[: _half(va)] for k, v in _targets(va, tuple(card["outputs"])).items()}
        points, intervals = {}, {}
        for o in card["outputs"]:
            full = bundle.boosters[o]
            keep = min(full.num_boosted_rounds(), rounds["smoothing" if o == "smoothing" else "point"])
            points[o] = full[:keep]
            ikeep = min(bundle.interval_boosters[o].num_boosted_rounds(), rounds["interval"])
            intervals[o] = bundle.interval_boosters[o][:ikeep]
            before = float(np.sqrt(np.mean((full.inplace_predict(x) - ys[o]) ** 2)))
            after = float(np.sqrt(np.mean((points[o].inplace_predict(x) - ys[o]) ** 2)))
            card.setdefault("metrics", {}).setdefault(o, {}).update(
                rounds_trained=int(full.num_boosted_rounds()), rounds_shipped=int(keep),
                interval_rounds_shipped=int(ikeep), val_rmse_trained=before, val_rmse_shipped=after)
            log(f"{name} {o}: {full.num_boosted_rounds()} -> {keep} rounds, val RMSE {before:.4g} -> {after:.4g}")
        write_bundle(out / name, card, points, intervals)


def _log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def main(argv: list[str] | None = None, log: Callable[[str], None] = _log) -> None:  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser(description="generate the measured family's synthetic data")
    ap.add_argument("work")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--train", metavar="OUT", help="then train the bundles into OUT")
    ap.add_argument("--nthread", type=int, default=None)
    ap.add_argument("--slim", action="store_true", help="only cut the trained bundles to SHIPPED_ROUNDS, recalibrate")
    args = ap.parse_args(argv)
    if args.slim:
        slim_family(args.work, args.train, log=log)
        calibrate_family(args.work, args.train, log=log)
        log("slim and calibration done")
        return
    generate(args.work, workers=args.workers)
    log("data done")
    if args.train:
        train_family(args.work, args.train, nthread=args.nthread, log=log)
        log("training done")
        slim_family(args.work, args.train, log=log)
        calibrate_family(args.work, args.train, log=log)
        log("calibration done")


if __name__ == "__main__":  # pragma: no cover
    main()
