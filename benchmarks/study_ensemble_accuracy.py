"""Accuracy of the ensemble table against brute force: the mean of many realizations of the simulator.

Usage: python benchmarks/study_ensemble_accuracy.py [--realizations 64] [--out benchmarks/results]

For each parameter set (not on the table's nodes), the package's own simulator (generate_structure +
scattering_curve, the paper's voxel model with hard thresholds) makes R independent boxes at least
40 a wide; their mean curve (Eqs. 3-4) and its standard error are the reference. The table's curve
(the infinite-box limit) is passed through the same box's Eq. 3-4 window before comparing. Reported:
RMS and maximum relative difference over the q where the reference's standard error is below 1 %,
and separately over those q below a quarter of the voxels' Nyquist wave number pi/(4 dx), where the
voxel model's aliasing and staircase interfaces (absent from the table's continuum limit) are small.

A second part compares the table with the paper's own voxel settings (dx = 0.5 nm, sigma = 2 voxels)
at a = 0.8, 2 and 4 nm: the difference between the paper's voxel model and the continuum limit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np

from sasview_grf_plugin.ensemble.table import load_table
from sasview_grf_plugin.simulator import SimulationConfig, generate_structure, scattering_curve
from sasview_grf_plugin.simulator.grid import shell_counts
from sasview_grf_plugin.simulator.scattering import reduce_shells

DENSITIES = (0.0, 0.65, 1.0)
# (porosity, layer_fraction, smoothing/a): two phases first, then three; none on the table's nodes.
SETS = [
    (0.12, 0.0, 0.35), (0.27, 0.0, 0.75), (0.45, 0.0, 1.1), (0.63, 0.0, 0.55), (0.06, 0.0, 0.6),
    (0.33, 0.22, 0.4), (0.55, 0.4, 0.8), (0.76, 0.13, 0.5), (0.5, 0.55, 1.05), (0.88, 0.33, 0.6),
    (0.23, 0.35, 0.7), (0.66, 0.08, 1.0), (0.95, 0.2, 0.55),
]


def windowed_table(n: int, dx: float, a: float, q: np.ndarray, eps: float, nu: float, s: float) -> np.ndarray:
    """The table's curve (nm^3) through the Eq. 3-4 window of an n^3 box of voxel dx (nm)."""
    counts = shell_counts(n)
    q_shell = 2 * math.pi / (n * dx) * np.sqrt(np.arange(counts.size))
    d_p, d_l = DENSITIES[0] - DENSITIES[2], DENSITIES[1] - DENSITIES[2]
    i_shell = a**3 * load_table().intensity(q_shell * a, eps, nu, s, d_p, d_l)
    return reduce_shells(n, dx, q, counts * i_shell, counts)


def reference(n: int, dx: float, a: float, q: np.ndarray, eps: float, nu: float, s: float,
              realizations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    cfg = SimulationConfig(grid_size=n, voxel_size=dx, q_min=float(q[0]), q_max=float(q[-1]), n_q=q.size,
                           smoothing_sigma=s * a / dx, densities=DENSITIES, dtype="float32")
    curves = []
    root = np.random.SeedSequence(seed)
    for child in root.spawn(realizations):
        curves.append(scattering_curve(generate_structure(cfg, a, eps, nu, seed=child), dx, q))
    curves = np.array(curves)
    return curves.mean(0), curves.std(0, ddof=1) / math.sqrt(realizations)


def cached_reference(cache: Path | None, n, dx, a, q, eps, nu, s, realizations, seed):
    """The reference, from ``cache`` (a folder of npz files) when it holds it: the table can change,
    the simulations need not be redone."""
    if cache is None:
        return reference(n, dx, a, q, eps, nu, s, realizations, seed)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"ref-n{n}-dx{dx:g}-a{a:g}-e{eps:g}-nu{nu:g}-s{s:g}-r{realizations}-seed{seed}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["mean"], z["se"]
    mean, se = reference(n, dx, a, q, eps, nu, s, realizations, seed)
    np.savez(path, mean=mean, se=se)
    return mean, se


def compare(n, dx, a, eps, nu, s, realizations, seed, cache: Path | None = None) -> dict:
    q = np.linspace(2 * math.pi / (n * dx), math.pi / dx, 200)
    t0 = time.perf_counter()
    ref, se = cached_reference(cache, n, dx, a, q, eps, nu, s, realizations, seed)
    tab = windowed_table(n, dx, a, q, eps, nu, s)
    rel = tab / ref - 1
    good = se / ref < 0.01
    low = good & (q <= math.pi / (4 * dx))  # a quarter of the voxels' Nyquist: little aliasing
    return {"porosity": eps, "layer_fraction": nu, "smoothing_over_a": s, "a_nm": a, "voxel_nm": dx, "grid": n,
            "box_over_a": n * dx / a, "realizations": realizations, "points": int(good.sum()),
            "rms": float(np.sqrt(np.mean(rel[good] ** 2))) if good.any() else float("nan"),
            "max": float(np.max(np.abs(rel[good]))) if good.any() else float("nan"),
            "rms_low_q": float(np.sqrt(np.mean(rel[low] ** 2))) if low.any() else float("nan"),
            "max_low_q": float(np.max(np.abs(rel[low]))) if low.any() else float("nan"),
            "q_a_compared": [float(q[good].min() * a), float(q[good].max() * a)] if good.any() else None,
            "median_se": float(np.median(se / ref)), "seconds": time.perf_counter() - t0}


def partial_curves(n: int, dx: float, eps: float, nu: float, s: float, realizations: int, seed: int) -> list[dict]:
    """Simulated partial curves (A = pore + layer, B = pore, L = layer) and the paper's total against the
    table, per |q| bin of raw shells (no window: the box is 40 a wide), a = 1."""
    from sasview_grf_plugin.simulator import generate_labels, radial_power_spectrum

    cfg = SimulationConfig(grid_size=n, voxel_size=dx, q_min=0.1, q_max=1.0, smoothing_sigma=s / dx,
                           dtype="float32")
    acc: dict[str, np.ndarray] = {}
    for r in range(realizations):
        lab = generate_labels(cfg, 1.0, eps, nu, seed=seed + r)
        dens = np.choose(lab, list(DENSITIES)).astype(np.float32)
        for k, field in (("A", lab <= 1), ("B", lab == 0), ("L", lab == 1), ("total", dens)):
            q, i, cnt = radial_power_spectrum(field.astype(np.float32), dx)
            acc[k] = acc.get(k, 0) + i * cnt / realizations
    f_aa, f_bb, f_ll = load_table().partials(q, eps, nu, s)
    total = load_table().intensity(q, eps, nu, s, DENSITIES[0] - DENSITIES[2], DENSITIES[1] - DENSITIES[2])
    edges = np.geomspace(0.3, math.pi / (2 * dx), 20)
    b = np.digitize(q, edges)
    rows = []
    for k in range(1, len(edges)):
        m = b == k
        if m.any():
            rows.append({"q_a": float(q[m].mean()), **{name: float(acc[name][m].sum() / (f[m] * cnt[m]).sum())
                                                        for name, f in (("A", f_aa), ("B", f_bb), ("L", f_ll),
                                                                        ("total", total))}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realizations", type=int, default=64)
    ap.add_argument("--grid-size", type=int, default=192)
    ap.add_argument("--voxels-per-a", type=float, default=4.8)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--cache", type=Path, default=None, help="folder keeping the simulated references")
    ap.add_argument("--partials", action="store_true",
                    help="also compare the partial curves A, B, L of three thick-layer sets (16 boxes each)")
    ap.add_argument("--update-card", type=Path, default=None,
                    help="card.json of the table: write the measured accuracy into it")
    args = ap.parse_args()
    head = f"{date.today()} {platform.machine()} cores={os.cpu_count()}"
    print(head)
    rows = []
    n = args.grid_size
    a, dx = 1.0, 1.0 / args.voxels_per_a  # box of n dx = 40 a by default
    print(f"{'eps':>5}{'nu':>6}{'s/a':>6}{'box/a':>7}{'pts':>5}{'RMS':>8}{'max':>8}{'RMS q<Nyq/4':>13}"
          f"{'max q<Nyq/4':>13}{'SE':>8}")
    for k, (eps, nu, s) in enumerate(SETS):
        r = compare(n, dx, a, eps, nu, s, args.realizations, 1000 + k, args.cache)
        rows.append({"part": "brute force", **r})
        print(f"{eps:>5}{nu:>6}{s:>6}{r['box_over_a']:>7.0f}{r['points']:>5}{r['rms']:>8.2%}{r['max']:>8.2%}"
              f"{r['rms_low_q']:>13.2%}{r['max_low_q']:>13.2%}{r['median_se']:>8.2%}", flush=True)
    print("\npaper's voxel model (dx = 0.5 nm, sigma = 2 voxels = 1 nm) against the table")
    for a_nm, grid in ((0.8, 96), (2.0, 192), (4.0, 256)):
        for eps, nu in ((0.3, 0.0), (0.7, 0.3)):
            r = compare(grid, 0.5, a_nm, eps, nu, 1.0 / a_nm, max(16, args.realizations // 4), 77, args.cache)
            rows.append({"part": "paper voxels", **r})
            print(f"a={a_nm} nm eps={eps} nu={nu}: box {r['box_over_a']:.0f} a, RMS {r['rms']:.2%}, "
                  f"max {r['max']:.2%} (q < Nyquist/4: RMS {r['rms_low_q']:.2%}, max {r['max_low_q']:.2%})",
                  flush=True)
    if args.partials:
        print("\npartial curves, simulated / table (16 boxes, 40 a, raw shells), and the total with densities "
              f"{DENSITIES}")
        for k, (eps, nu, s) in enumerate(((0.5, 0.45, 0.9), (0.55, 0.4, 0.8), (0.95, 0.2, 0.55))):
            parts = partial_curves(n, dx, eps, nu, s, 16, 5000 + 100 * k)
            rows.append({"part": "partials", "porosity": eps, "layer_fraction": nu, "smoothing_over_a": s,
                         "bins": parts})
            inner = [p for p in parts if 0.4 < p["q_a"] < math.pi / (4 * dx)]
            print(f"{eps}/{nu}/{s}, 0.4 < q a < {math.pi / (4 * dx):.2g}, RMS / max |ratio - 1|: " + ", ".join(
                f"{name} {math.sqrt(np.mean([(p[name] - 1) ** 2 for p in inner])):.1%} / "
                f"{max(abs(p[name] - 1) for p in inner):.1%}" for name in ("A", "B", "L", "total")), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ensemble_accuracy-{date.today()}.json"
    path.write_text(json.dumps({"machine": head, "rows": rows}, indent=1))
    print(f"wrote {path}")
    if args.update_card is not None:
        card = json.loads(args.update_card.read_text())
        brute = [r for r in rows if r["part"] == "brute force"]
        card["accuracy"] = {
            "command": "python benchmarks/study_ensemble_accuracy.py",
            "date": str(date.today()),
            "reference": f"mean of {args.realizations} boxes of the simulator, {n}^3 voxels of a/{args.voxels_per_a:g} "
                         "(40 a wide), Eq. 3-4 window applied to the table",
            "rel_rms_below_quarter_nyquist": {f"{r['porosity']}/{r['layer_fraction']}/{r['smoothing_over_a']}":
                                              round(r["rms_low_q"], 4) for r in brute},
            "rel_max_below_quarter_nyquist": {f"{r['porosity']}/{r['layer_fraction']}/{r['smoothing_over_a']}":
                                              round(r["max_low_q"], 4) for r in brute},
            "note": "keys porosity/layer_fraction/smoothing_over_a; full-range figures and the paper's voxel model "
                    "in docs/benchmarks.md",
        }
        args.update_card.write_text(json.dumps(card, indent=1) + "\n")
        print(f"updated {args.update_card}")


if __name__ == "__main__":
    main()
