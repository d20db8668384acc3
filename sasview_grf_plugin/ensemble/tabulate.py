"""Turning a build folder's realizations into the shipped table (see :mod:`.table` for the format).

Per node (eps, s[, nu]) and indicator X the ratio estimator R_X(q) = sum_r X_r / sum_r K_r against its
control K (A: the level cut LC at eps; B: the level cut at eps (1 - nu); L: the band between the two) is formed
per |q| bin (its standard error by the delta method over realizations), smoothed over ln q by a
weighted smoothing spline (weights 1/SE^2, smoothing chosen by generalized cross-validation), and
multiplied by the control's exact curve: F_X(q) = R_X(q) F_K(q). Outside the bins the ratio is
continued by the structure's limits:

* below the first bin, ln R(q) = l0 + l2 q^2 (even in q, as every isotropic curve with an integrable
  correlation function), matched in value and slope;
* above ``q_fit_max`` (where the voxels start to alias) R is constant for A and B: both curves follow
  Porod's law, and R is the ratio of interface areas; for the layer L it tends to the ratio of its two
  interfaces' areas (see :func:`_layer_high_q`).

The two-phase structure is symmetric under eps -> 1 - eps (Babinet, exact for smoothing followed by
re-thresholding at the complementary quantile), so nodes eps and 1 - eps are pooled for F_AA.
At s = 0, F_AA is the level cut itself (R = 1 exactly).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtri

from .build import bin_geometry, load_sums
from .levelcut import band_curve, interface_area, levelcut_curve, spectral_moment
from .table import TABLE_FILE, layer_shift

__all__ = ["tabulate", "ratio_curve", "X_NODES", "Q_FIT_MAX"]

#: ln(q a) nodes of the table: q a from 1e-3 (F flat to 1e-5 there) to 1e3 (Porod's law to 1e-4).
X_NODES = np.linspace(math.log(1e-3), math.log(1e3), 361)
#: Node spacing of the layer's grid in ln(q d) (d = the layer's thickness scale, see layer_shift).
DX = float(X_NODES[1] - X_NODES[0])
#: Above this q a the voxels of the default build (a/8) alias; the ratio is continued as a constant.
Q_FIT_MAX = 10.0


LAMBDA = spectral_moment()


def ratio_curve(x_bins: np.ndarray, num: np.ndarray, den: np.ndarray, x_nodes: np.ndarray,
                x_fit_max: float) -> tuple[np.ndarray, dict[str, float]]:
    """Smoothed ln of the ratio sum(num)/sum(den) over realizations (axis 0) per bin, on ``x_nodes`` (ln q a).

    Returns ln R on the nodes and statistics of its Monte-Carlo error.
    """
    from scipy.interpolate import make_smoothing_spline

    n = num.shape[0]
    use = x_bins <= x_fit_max
    xb, nb, db = x_bins[use], num[:, use], den[:, use]
    r = nb.sum(0) / db.sum(0)
    resid = nb - r * db
    se = np.sqrt(resid.var(0, ddof=1) / n) / db.mean(0) if n > 1 else np.full_like(r, np.nan)
    se = np.maximum(se, 1e-4 * r)  # a floor keeps the weights finite where X = LC exactly
    # Smoothed in ln R (R > 0 per bin: sums of |FFT|^2): positive however small, as for a thin layer.
    spline = make_smoothing_spline(xb, np.log(r), w=(r / se) ** 2)
    x_lo, x_hi = xb[0], xb[-1]
    out = np.empty_like(x_nodes)
    mid = (x_nodes >= x_lo) & (x_nodes <= x_hi)
    out[mid] = spline(x_nodes[mid])
    l_lo = float(spline(x_lo))
    slope = float(spline.derivative()(x_lo))  # d ln R / d ln q at the first bin
    low = x_nodes < x_lo
    out[low] = l_lo + 0.5 * slope * (np.exp(2.0 * (x_nodes[low] - x_lo)) - 1.0)
    out[x_nodes > x_hi] = float(spline(x_hi))
    stats = {"rel_se_median": float(np.median(se / r)), "rel_se_max": float(np.max(se / r))}
    return out, stats


def _layer_high_q(x_nodes: np.ndarray, log_r: np.ndarray, r_a: float, r_b: float, x_fit: float, eps: float,
                  phi_b: float) -> np.ndarray:
    """ln R of the layer (against the band) with its high-q continuation.

    At high q the layer's two interfaces scatter independently (the cross term of A and B decays):
    F_LL -> F_AA + F_BB. Against its control (the band between the same two levels, whose own curve has
    that limit) the ratio therefore tends to the interface-area ratio (R_A S_A + R_B S_B) / (S_A + S_B),
    with R_A, R_B the high-q ratios of A and B to their level cuts and S the level cuts' interface areas.
    Beyond ``x_fit`` the ratio goes from its last measured value to that limit as q^-2, instead of
    staying at the value it happens to have at one phase of the layer's thickness oscillation.
    """
    s_a, s_b = interface_area(eps), interface_area(phi_b)
    r_inf = (r_a * s_a + r_b * s_b) / (s_a + s_b)
    high = x_nodes > x_fit
    r_fit = math.exp(float(np.interp(x_fit, x_nodes, log_r)))
    out = log_r.copy()
    out[high] = np.log(r_inf + (r_fit - r_inf) * np.exp(2.0 * (x_fit - x_nodes[high])))
    return out


def _interp_coefficients(values: np.ndarray, axes_nodes: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    from scipy.interpolate import make_interp_spline

    knots = []
    c = np.asarray(values, dtype=np.float64)
    for axis, nodes in enumerate(axes_nodes):
        c_moved = np.moveaxis(c, axis, 0)
        spl = make_interp_spline(nodes, c_moved, k=3, axis=0)
        c = np.moveaxis(spl.c, 0, axis)
        knots.append(np.asarray(spl.t))
    return knots, c


def _check_out(out: Path) -> None:
    """Refuse to replace a table file or card.json in ``out`` that tabulate did not write."""
    table, card_file = out / TABLE_FILE, out / "card.json"
    if not (table.exists() or card_file.exists()):
        return
    # Ours: a card of kind grf-ensemble-table (its table may be newer: a run interrupted between writing the
    # table and its card), or, without a card, a table file with this package's arrays.
    try:
        if card_file.exists():
            card = json.loads(card_file.read_text(encoding="utf-8"))
            ours = isinstance(card, dict) and card.get("kind") == "grf-ensemble-table"
        else:
            with np.load(table, allow_pickle=False) as z:
                ours = {"meta", "coef_aa", "x_knots"} <= set(z.files)
    except (OSError, ValueError, RecursionError, EOFError, zipfile.BadZipFile):
        ours = False
    if not ours:
        raise ValueError(f"{out} holds {TABLE_FILE} or card.json that tabulate did not write; give another --out, or "
                         "move those files away")


def tabulate(build: str | os.PathLike, out: str | os.PathLike, max_realizations: int | None = None,
             progress: bool = False, log: Any = None) -> dict[str, Any]:
    """Write ``TABLE_FILE`` and ``card.json`` into ``out`` from the realizations in ``build``.

    ``progress`` shows a bar over the table's nodes; ``log(line)`` receives each porosity node's
    Monte-Carlo error as it is done. Returns the card (a dict).
    """
    _check_out(Path(out))  # before the work: a folder holding files of others is refused at once
    spec, sums = load_sums(build)
    if max_realizations is not None:
        sums = {k: v[:max_realizations] for k, v in sums.items()}
    n_real = sums["lc"].shape[0]
    if n_real < 8:
        raise ValueError(f"{build} holds {n_real} realizations; at least 8 are needed for error estimates")
    counts, q_bins = bin_geometry(spec)
    keep = counts > 0
    xb = np.log(q_bins[keep])
    lc, aa, lb, band, bb, ll = (sums[k][..., keep] for k in ("lc", "aa", "lb", "band", "bb", "ll"))
    eps = np.asarray(spec.porosity)
    s3 = np.asarray(spec.smoothing)
    nus = np.asarray(spec.layer_fraction)
    ne, ns, nn = eps.size, s3.size, nus.size
    if not np.allclose(eps, 1.0 - eps[::-1]):
        raise ValueError("the porosity nodes must be symmetric about 0.5 (eps and 1 - eps)")
    x_fit = math.log(Q_FIT_MAX)
    q_nodes = np.exp(X_NODES)
    f_lc = np.stack([levelcut_curve(q_nodes, e) for e in eps])  # (ne, nx)
    stats: dict[str, list[float]] = {"aa": [], "bb": [], "ll": []}
    from tqdm.auto import tqdm

    bar = tqdm(total=ne * ns * (1 + 2 * nn), unit="node", desc="tabulate", disable=not progress)

    # Two phases (and A of three phases): s = 0 exact, pooled eps <-> 1 - eps.
    s2 = np.concatenate([[0.0], s3])
    log_aa = np.empty((ne, s2.size, X_NODES.size))
    r_high_a = np.empty((ne, ns))  # high-q ratio of A to its level cut, per node
    for i in range(ne):
        i_mirror = ne - 1 - i
        log_aa[i, 0] = np.log(f_lc[i] / (eps[i] * (1 - eps[i])))
        for j in range(ns):
            # eps and 1 - eps come from the same fields: pooled per realization (not as independent
            # samples), and only once at eps = 0.5.
            num = aa[:, i, j] + (aa[:, i_mirror, j] if i_mirror != i else 0.0)
            den = lc[:, i] + (lc[:, i_mirror] if i_mirror != i else 0.0)
            log_r, st = ratio_curve(xb, num, den, X_NODES, x_fit)
            stats["aa"].append(st["rel_se_median"])
            bar.update()
            r_high_a[i, j] = math.exp(log_r[-1])
            log_aa[i, j + 1] = log_r + np.log(f_lc[i] / (eps[i] * (1 - eps[i])))
    log_bb = np.empty((ne, nn, ns, X_NODES.size))
    shifts = [layer_shift(e, v, LAMBDA) for e in eps for v in nus]
    xl_nodes = np.arange(X_NODES[0] + min(shifts), X_NODES[-1] + max(shifts) + DX / 2, DX)
    log_ll = np.empty((ne, nn, ns, xl_nodes.size))
    for i in range(ne):
        for m in range(nn):
            phi_b = eps[i] * (1 - nus[m])
            phi_l = eps[i] * nus[m]
            log_fb = np.log(levelcut_curve(q_nodes, phi_b) / (phi_b * (1 - phi_b)))
            # The layer's curve on ln(q d) nodes: its thickness fringes line up between nodes.
            x_layer = xl_nodes - layer_shift(eps[i], nus[m], LAMBDA)
            log_fl = np.log(band_curve(np.exp(x_layer), phi_b, eps[i]) / (phi_l * (1 - phi_l)))
            for j in range(ns):
                log_r, st = ratio_curve(xb, bb[:, i, j, m], lb[:, i, m], X_NODES, x_fit)
                stats["bb"].append(st["rel_se_median"])
                r_high_b = math.exp(log_r[-1])
                log_bb[i, m, j] = log_r + log_fb
                log_r, st = ratio_curve(xb, ll[:, i, j, m], band[:, i, m], x_layer, x_fit)
                stats["ll"].append(st["rel_se_median"])
                log_ll[i, m, j] = _layer_high_q(x_layer, log_r, r_high_a[i, j], r_high_b, x_fit, eps[i],
                                                phi_b) + log_fl
                bar.update(2)
        if log is not None:
            done = {k: float(np.median(v[-ns * (nn if k != "aa" else 1):])) for k, v in stats.items()}
            (bar.write if progress else log)(
                f"porosity {eps[i]:g}: median relative Monte-Carlo error " +
                ", ".join(f"{k} {v:.2%}" for k, v in done.items()))
    bar.close()

    # Porosity enters as the level t = Phi^-1(eps): the curves are far smoother in t than in eps
    # (interpolating the exact level cut between the nodes: 2e-4 in t, 4e-3 in eps).
    t_nodes = ndtri(eps)
    (te, ts2, tx), c_aa = _interp_coefficients(log_aa, [t_nodes, s2, X_NODES])
    (_, tnu, ts3, _), c_bb = _interp_coefficients(log_bb, [t_nodes, nus, s3, X_NODES])
    (_, _, _, txl), c_ll = _interp_coefficients(log_ll, [t_nodes, nus, s3, xl_nodes])
    domain = np.array([eps[0], eps[-1], nus[0], nus[-1], 0.0, s3[-1], s3[0], s3[-1]])
    meta = {"spec": spec.to_dict(), "realizations": n_real, "q_fit_max": Q_FIT_MAX}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table_path = out / TABLE_FILE
    tmp = out / (TABLE_FILE + ".tmp.npz")
    np.savez_compressed(tmp, x_knots=tx, t_knots=te, s2_knots=ts2, s3_knots=ts3, nu_knots=tnu,
                        coef_aa=c_aa, coef_bb=c_bb, coef_ll=c_ll, domain=domain,
                        x_range=np.array([X_NODES[0], X_NODES[-1]]), xl_knots=txl,
                        xl_range=np.array([xl_nodes[0], xl_nodes[-1]]), spectral_moment=np.array(LAMBDA),
                        meta=np.array(json.dumps(meta)))
    os.replace(tmp, table_path)
    digest = hashlib.sha256(table_path.read_bytes()).hexdigest()
    card = {
        "kind": "grf-ensemble-table",
        "file": TABLE_FILE,
        "sha256": digest,
        "made": date.today().isoformat(),
        "how": ("ratio estimators against exact level cuts and bands of the same GRF, partial-volume indicators, "
                f"{n_real} realizations of a {spec.grid_size}^3 box of a/{spec.voxels_per_a:g} voxels "
                f"({spec.box:g} a wide), seed {spec.seed}; see sasview_grf_plugin.ensemble.build"),
        "variables": "ln(q a); t = Phi^-1(porosity); layer_fraction; smoothing/a (sigma over a)",
        "nodes": {"porosity": list(spec.porosity), "layer_fraction": list(spec.layer_fraction),
                  "smoothing_two_phase": [0.0, *spec.smoothing], "smoothing_three_phase": list(spec.smoothing),
                  "q_a": [float(q_nodes[0]), float(q_nodes[-1]), int(q_nodes.size)]},
        "simulated_q_a": [float(q_bins[keep][0]), Q_FIT_MAX],
        "monte_carlo_rel_se_median": {k: float(np.median(v)) for k, v in stats.items()},
        "monte_carlo_rel_se_worst_node": {k: float(np.max(v)) for k, v in stats.items()},
    }
    (out / "card.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return card

