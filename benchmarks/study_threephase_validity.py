"""Physical validity of the three-phase ensemble table over a dense scan of its domain (not only nodes).

Usage: python benchmarks/study_threephase_validity.py [--table DIR] [--evaluator table.py] [--points 504]
                                                       [--out benchmarks/results/threephase_validity.json]

``--evaluator`` loads another version of ``ensemble/table.py`` from a file (e.g. the format-1 evaluator
from ``git show <rev>:sasview_grf_plugin/ensemble/table.py``) to measure an older table the same way.
For every point of a seeded uniform scan of (porosity, layer_fraction, smoothing/a) over the three-phase
domain it reports:

* the Porod invariant int q^2 I dq against 2 pi^2 sum phi_i phi_j (rho_i - rho_j)^2, for the paper's
  densities (0, 0.65, 1) and 3 random SLD triples, from the *unclipped* combination of the partial curves;
* each partial curve's own invariant against 2 pi^2 phi (1 - phi);
* the coherence c_BL = F_BL / sqrt(F_BB F_LL) (F_BL = (F_AA - F_BB - F_LL) / 2) on 241 q a in [1e-3, 1e3]:
  |c| > 1 means the 2x2 matrix of partial curves is not positive semi-definite, i.e. some layer SLD
  makes the intensity negative there;
* midpoint ringing: for adjacent nodes along each axis, max over q a in [0.3, 5] of
  |ln X(mid) - (ln X(lo) + ln X(hi)) / 2| for the total (paper's densities) and for F_LL.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy.special import ndtr, ndtri

Q_INV = np.geomspace(1e-4, 1e5, 4000)
Q_PSD = np.geomspace(1e-3, 1e3, 241)
Q_MID = np.geomspace(0.3, 5.0, 60)
PAPER = (0.0, 0.65, 1.0)


def porod_integral(q: np.ndarray, f: np.ndarray) -> float:
    x = np.log(q)
    return float(np.trapezoid(q**3 * f, x) + q[0] ** 3 * f[0] / 3 + f[-1] * q[-1] ** 3)


def total(parts: tuple[np.ndarray, np.ndarray, np.ndarray], sld: tuple[float, float, float]) -> np.ndarray:
    """Unclipped I from F_AA, F_BB, F_LL."""
    f_aa, f_bb, f_ll = parts
    d_p, d_l = sld[0] - sld[2], sld[1] - sld[2]
    return d_p * d_p * f_bb + d_l * d_l * f_ll + d_p * d_l * (f_aa - f_bb - f_ll)


def exact_invariant(eps: float, nu: float, sld: tuple[float, float, float]) -> float:
    phi = (eps * (1 - nu), eps * nu, 1 - eps)
    return 2 * math.pi**2 * sum(phi[i] * phi[j] * (sld[i] - sld[j]) ** 2 for i in range(3) for j in range(i + 1, 3))


def load(evaluator: str | None, table: str | None):
    if evaluator:
        spec = importlib.util.spec_from_file_location("table_under_test", evaluator)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    else:
        from sasview_grf_plugin.ensemble import table as mod
    path = None if table is None else Path(table) / mod.TABLE_FILE
    return mod.EnsembleTable(path)


def scan(t, n_points: int, seed: int = 22) -> dict:
    rng = np.random.default_rng(seed)
    (e_lo, e_hi), (n_lo, n_hi), (s_lo, s_hi) = t.porosity_range, t.layer_range, t.smoothing3_range
    inv_paper, inv_rand, inv_part, c_min, c_max, psd_bad, neg_paper = [], [], [], [], [], 0, 0
    for _ in range(n_points):
        eps, nu, s = rng.uniform(e_lo, e_hi), rng.uniform(n_lo, n_hi), rng.uniform(s_lo, s_hi)
        parts = t.partials(Q_INV, eps, nu, s)
        inv_paper.append(porod_integral(Q_INV, total(parts, PAPER)) / exact_invariant(eps, nu, PAPER) - 1)
        for _ in range(3):
            sld = tuple(rng.uniform(-1, 1, 3))
            inv_rand.append(porod_integral(Q_INV, total(parts, sld)) / exact_invariant(eps, nu, sld) - 1)
        for f, phi in zip(parts, (eps, eps * (1 - nu), eps * nu), strict=True):
            inv_part.append(porod_integral(Q_INV, f) / (2 * math.pi**2 * phi * (1 - phi)) - 1)
        f_aa, f_bb, f_ll = t.partials(Q_PSD, eps, nu, s)
        c = (f_aa - f_bb - f_ll) / (2 * np.sqrt(f_bb * f_ll))
        c_min.append(float(c.min()))
        c_max.append(float(c.max()))
        psd_bad += bool(np.any(np.abs(c) > 1.0))
        neg_paper += bool(np.any(total((f_aa, f_bb, f_ll), PAPER) <= 0))

    def dist(v: list[float]) -> dict:
        a = np.abs(np.array(v))
        return {"min": float(np.min(v)), "max": float(np.max(v)), "p95_abs": float(np.quantile(a, 0.95)),
                "share_above_1pct": float(np.mean(a > 0.01)), "share_above_2pct": float(np.mean(a > 0.02))}

    return {"points": n_points, "invariant_paper_densities": dist(inv_paper), "invariant_random_slds": dist(inv_rand),
            "invariant_partials": dist(inv_part), "coherence_bl": [min(c_min), max(c_max)],
            "share_not_psd": psd_bad / n_points, "share_paper_densities_nonpositive": neg_paper / n_points}


def ringing(t, nodes: dict, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    eps_n, nu_n, s_n = (np.array(nodes[k]) for k in ("porosity", "layer_fraction", "smoothing_three_phase"))
    out = {}
    for axis, grid in (("porosity", eps_n), ("layer_fraction", nu_n), ("smoothing", s_n)):
        worst_total, worst_layer, rows = [], [], []
        for k in range(grid.size - 1):
            for _ in range(3):
                p = [rng.choice(eps_n), rng.choice(nu_n), rng.choice(s_n)]
                ax = ("porosity", "layer_fraction", "smoothing").index(axis)
                lo, hi = grid[k], grid[k + 1]
                mid = float(ndtr(0.5 * (ndtri(lo) + ndtri(hi)))) if axis == "porosity" else 0.5 * (lo + hi)
                vals = []
                for v in (lo, mid, hi):
                    p[ax] = v
                    f = t.partials(Q_MID, *p)
                    vals.append((np.log(np.abs(total(f, PAPER))), np.log(f[2])))
                dt = np.max(np.abs(vals[1][0] - 0.5 * (vals[0][0] + vals[2][0])))
                dl = np.max(np.abs(vals[1][1] - 0.5 * (vals[0][1] + vals[2][1])))
                worst_total.append(float(np.expm1(dt)))
                worst_layer.append(float(np.expm1(dl)))
                rows.append((float(dt), float(lo), float(hi), [float(x) for x in p]))
        out[axis] = {"total_max": max(worst_total), "total_median": float(np.median(worst_total)),
                     "layer_max": max(worst_layer), "layer_median": float(np.median(worst_layer)),
                     "worst": max(rows)[1:]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=None, help="table folder (default: the shipped table)")
    ap.add_argument("--evaluator", default=None, help="a table.py to evaluate it with (default: the package's)")
    ap.add_argument("--points", type=int, default=504)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    t = load(args.evaluator, args.table)
    card = json.loads((t.path.parent / "card.json").read_text())
    t0 = time.perf_counter()
    res = {"table": str(t.path), "evaluator": args.evaluator or "package", "scan": scan(t, args.points),
           "ringing": ringing(t, card["nodes"])}
    res["seconds"] = time.perf_counter() - t0
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
