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
from .table import CARD_FILE, FORMAT_VERSION, TABLE_FILE, continuation_ramp, layer_shift

__all__ = ["tabulate", "write_table", "convert_format1", "ratio_curve", "X_NODES", "Q_FIT_MAX"]

#: ln(q a) nodes of the table: q a from 1e-3 (F flat to 1e-5 there) to 1e3 (Porod's law to 1e-4).
X_NODES = np.linspace(math.log(1e-3), math.log(1e3), 361)
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


def _normalized_shape(f: np.ndarray, phi: np.ndarray, xq: np.ndarray, on_ramp: bool) -> np.ndarray:
    """ln g with int q^2 g dq = 1 from F / (2 pi^2 phi (1 - phi)) (last axis: samples at ln(q a) = xq).

    With ``on_ramp`` (the layer), as the evaluator does between nodes, a node's invariant is corrected on the
    continuations (factor 1 + kappa continuation_ramp, kappa in [-1/2, 1]: the build did not simulate those
    q) and only what remains by a uniform factor; otherwise (A, off by at most 2.3 %) by a uniform factor.
    """
    log_g = np.log(f / (2.0 * math.pi**2 * phi * (1.0 - phi)))
    ramp = continuation_ramp(xq)
    m0 = _node_moment(log_g, xq)
    mr = _node_moment(log_g + np.log(ramp), xq)
    kappa = np.clip((1.0 - m0) / mr, -0.5, 1.0) if on_ramp else np.zeros_like(m0)
    factor = m0 + kappa * mr
    return log_g + np.log1p(kappa[..., None] * ramp) - np.log(factor)[..., None]


def _node_moment(log_f: np.ndarray, xq: np.ndarray) -> np.ndarray:
    """int q^2 exp(log_f) dq over samples at ln(q a) = xq (last axis, uniform spacing) by Simpson's rule,
    plus the continuations' tails (flat below the grid, q^-4 above), as the evaluator normalizes."""
    from scipy.integrate import simpson

    xq = np.broadcast_to(xq, log_f.shape)
    f = np.exp(log_f)
    dx = float(xq.reshape(-1, xq.shape[-1])[0, 1] - xq.reshape(-1, xq.shape[-1])[0, 0])
    return (simpson(f * np.exp(3.0 * xq), dx=dx, axis=-1) + f[..., 0] * np.exp(3.0 * xq[..., 0]) / 3.0
            + f[..., -1] * np.exp(3.0 * xq[..., -1]))


def _continue_log(x_new: np.ndarray, x: np.ndarray, log_f: np.ndarray) -> np.ndarray:
    """ln F at x_new from samples on x (last axis): linear in between, flat below, q^-4 above."""
    out = np.interp(np.clip(x_new, x[0], x[-1]), x, log_f)
    return out + 4.0 * np.minimum(x[-1] - x_new, 0.0)


def layer_grid(eps: np.ndarray, nus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The layer grid over ln(q d) (covering X_NODES for every node) and the nodes' shifts ln(d / a)."""
    shifts = np.array([[layer_shift(e, v, LAMBDA) for v in nus] for e in eps])
    dx = float(X_NODES[1] - X_NODES[0])
    xl = np.arange(X_NODES[0] + shifts.min(), X_NODES[-1] + shifts.max() + dx / 2, dx)
    return xl, shifts


#: Largest abs(coherence) stored at a node. A Monte-Carlo estimate of F_AL = (F_AA + F_LL - F_BB) / 2 can come out
#: beyond +-1 (mostly at low q, continued below the box): there the node's F_BB and F_LL are moved to this
#: bound (:func:`_project_psd`, counted on the card), and the evaluator's exact invariants fix the levels.
COHERENCE_BOUND = 0.995


def _project_psd(f_aa: np.ndarray, f_bb: np.ndarray, f_ll: np.ndarray,
                 bound: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Make the node curves consistent where their Monte-Carlo estimates are not: (F_BB, F_LL, c_AL, fixed).

    The amplitudes sqrt(F) of chi_A = chi_B + chi_L form a triangle; abs(c_AL) > 1 means one side exceeds the
    other two. F_AA is kept (it is the two-phase curve); the longest of B and L is shrunk and the other grown
    by the same factor (or both grown when A is the longest), the smallest factor that gives abs(c_AL) <= bound.
    Which curve is off is not known, so the change is shared equally in relative terms. Where no factor up
    to e^3 helps (none in the shipped table), c is clipped.
    """
    def coh(b: np.ndarray, l_: np.ndarray, a: np.ndarray) -> np.ndarray:
        return (a + l_ - b) / (2.0 * np.sqrt(a * l_))

    fa = np.broadcast_to(f_aa, f_bb.shape)
    c = coh(f_bb, f_ll, fa)
    bad = np.abs(c) > bound
    f_bb, f_ll = f_bb.copy(), f_ll.copy()
    a, b, l_ = fa[bad], f_bb[bad], f_ll[bad]
    sa, sb, sl = np.sqrt(a), np.sqrt(b), np.sqrt(l_)
    # Amplitude factors g(tau) for B and L: case B longest: B / g, L * g; A longest: both * g; L longest: B * g, L / g.
    b_long = sb > sa + sl
    l_long = sl > sa + sb
    p_b = np.where(b_long, -1.0, 1.0)
    p_l = np.where(l_long, -1.0, 1.0)
    taus = np.linspace(0.0, 3.0, 601)[1:]
    best = np.full(a.shape, np.nan)
    for tau in taus:  # the smallest factor that closes the triangle
        g2 = np.exp(2.0 * tau)
        ok = np.isnan(best) & (np.abs(coh(b * g2**p_b, l_ * g2**p_l, a)) <= bound)
        best[ok] = tau
        if not np.isnan(best).any():
            break
    found = ~np.isnan(best)
    g2 = np.exp(2.0 * np.where(found, best, 0.0))
    b_new, l_new = b * g2**p_b, l_ * g2**p_l
    f_bb[bad], f_ll[bad] = b_new, l_new
    c = coh(f_bb, f_ll, fa)
    return f_bb, f_ll, np.clip(c, -bound, bound), bad


def write_table(out: str | os.PathLike, eps: np.ndarray, nus: np.ndarray, s2: np.ndarray, s3: np.ndarray,
                f_aa: np.ndarray, f_bb: np.ndarray, f_ll: np.ndarray, meta: dict[str, Any],
                card: dict[str, Any]) -> dict[str, Any]:
    """Write a format-2 table (see :mod:`.table`) and its card from partial curves at the nodes.

    Parameters
    ----------
    f_aa
        F_AA on (eps, s2, X_NODES). Dimensionless (a = 1).
    f_bb, f_ll
        F_BB and F_LL on (eps, nu, s3, xl) with xl the grid of :func:`layer_grid` over ln(q d): node
        (eps, nu) is sampled at ln(q a) = xl - layer_shift(eps, nu).
    meta, card
        Provenance stored in the file, and the card's fields besides the computed ones.
    """
    two_pi2 = 2.0 * math.pi**2
    e4 = eps[:, None, None, None]
    phi_l = e4 * nus[None, :, None, None]
    xl, shifts = layer_grid(eps, nus)
    xq = xl[None, None, None, :] - shifts[:, :, None, None]  # ln(q a) of the layer grid, per node
    # F_AA of three phases is the two-phase curve at the same (eps, s): s3 must be among the s2 nodes.
    idx = [int(np.flatnonzero(np.isclose(s2, v))[0]) for v in s3]
    log_fa = np.log(f_aa[:, idx, :])
    f_aa_l = np.exp(np.stack([[[_continue_log(xq[i, m, 0], X_NODES, log_fa[i, j]) for j in range(len(s3))]
                               for m in range(len(nus))] for i in range(len(eps))]))
    f_bb_raw, f_ll_raw = f_bb, f_ll
    f_bb, f_ll, coherence, clipped = _project_psd(f_aa_l, f_bb, f_ll, COHERENCE_BOUND)
    log_aa = _normalized_shape(f_aa, eps[:, None, None], X_NODES, False)  # ln g_A, int q^2 g_A dq = 1 at every node
    log_ll = _normalized_shape(f_ll, phi_l, xq, True)
    # The coherence over y = ln(q (a + d)) on the X_NODES grid: like A for thin layers (d << a), like the layer
    # for thick ones (fringes aligned). Continued flat beyond.
    u_l = np.arctanh(coherence)
    u_cx = np.empty(u_l.shape[:-1] + X_NODES.shape)
    for i, m, j in np.ndindex(*u_cx.shape[:-1]):
        u_cx[i, m, j] = np.interp(X_NODES - np.log1p(np.exp(shifts[i, m])), xq[i, m, 0], u_l[i, m, j])
    # Porosity enters as the level t = Phi^-1(eps): the curves are far smoother in t than in eps
    # (interpolating the exact level cut between the nodes: 2e-4 in t, 4e-3 in eps).
    t_nodes = ndtri(eps)
    (te, ts2, tx), c_aa = _interp_coefficients(log_aa, [t_nodes, s2, X_NODES])
    (_, tnu, ts3, txl), c_ll = _interp_coefficients(log_ll, [t_nodes, nus, s3, xl])
    _, c_cx = _interp_coefficients(u_cx, [t_nodes, nus, s3, X_NODES])
    domain = np.array([eps[0], eps[-1], nus[0], nus[-1], s2[0], s2[-1], s3[0], s3[-1]])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table_path = out / TABLE_FILE
    tmp = out / (TABLE_FILE + ".tmp.npz")
    np.savez_compressed(tmp, version=np.array(float(FORMAT_VERSION)), x_knots=tx, t_knots=te, s2_knots=ts2,
                        s3_knots=ts3, nu_knots=tnu, coef_aa=c_aa, coef_ll=c_ll, coef_cx=c_cx, domain=domain,
                        x_range=np.array([X_NODES[0], X_NODES[-1]]), xl_knots=txl, xl_range=np.array([xl[0], xl[-1]]),
                        spectral_moment=np.array(LAMBDA), meta=np.array(json.dumps(meta)))
    os.replace(tmp, table_path)
    phi_b = e4 * (1.0 - nus[None, :, None, None])
    raw = {"aa": _node_moment(np.log(f_aa), X_NODES) / (two_pi2 * eps * (1 - eps))[:, None],
           "bb": _node_moment(np.log(f_bb_raw), xq) / (two_pi2 * phi_b * (1 - phi_b))[..., 0],
           "ll": _node_moment(np.log(f_ll_raw), xq) / (two_pi2 * phi_l * (1 - phi_l))[..., 0]}
    full = {
        "kind": "grf-ensemble-table",
        "file": TABLE_FILE,
        "sha256": hashlib.sha256(table_path.read_bytes()).hexdigest(),
        "format": FORMAT_VERSION,
        "made": date.today().isoformat(),
        **card,
        "representation": ("normalized shapes g_A, g_L (invariants exact at every point), coherence "
                           "c = tanh(atanh-spline + delta) of pore+layer and layer (|c| < 1, cross invariant "
                           "exact); see sasview_grf_plugin.ensemble.table"),
        "variables": ("ln(q a) (A), ln(q d) with d = porosity layer_fraction / S (L and the coherence); "
                      "t = Phi^-1(porosity); layer_fraction; smoothing/a (sigma over a)"),
        "nodes": {"porosity": [float(v) for v in eps], "layer_fraction": [float(v) for v in nus],
                  "smoothing_two_phase": [float(v) for v in s2], "smoothing_three_phase": [float(v) for v in s3],
                  "q_a": [float(math.exp(X_NODES[0])), float(math.exp(X_NODES[-1])), int(X_NODES.size)]},
        "node_data": {
            "invariant_ratio_before_normalization": {k: [float(v.min()), float(v.max())] for k, v in raw.items()},
            "coherence_beyond_bound": {"bound": COHERENCE_BOUND, "share_of_node_values": float(clipped.mean()),
                                       "fix": "F_BB and F_LL moved by equal relative factors (see _project_psd)",
                                       "nodes_with_any": int(clipped.any(-1).sum()),
                                       "nodes": int(np.prod(clipped.shape[:-1]))},
        },
    }
    (out / CARD_FILE).write_text(json.dumps(full, indent=1) + "\n", encoding="utf-8")
    return full


def _check_out(out: Path) -> None:
    """Refuse to replace a table file or card.json in ``out`` that tabulate did not write."""
    table, card_file = out / TABLE_FILE, out / CARD_FILE
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
                ours = {"meta", "x_knots"} <= set(z.files)
    except (OSError, ValueError, RecursionError, EOFError, zipfile.BadZipFile):
        ours = False
    if not ours:
        raise ValueError(f"{out} holds {TABLE_FILE} or {CARD_FILE} that tabulate did not write; give another --out, "
                         "or move those files away")


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
    f_aa = np.empty((ne, s2.size, X_NODES.size))
    r_high_a = np.empty((ne, ns))  # high-q ratio of A to its level cut, per node
    for i in range(ne):
        i_mirror = ne - 1 - i
        f_aa[i, 0] = f_lc[i]
        for j in range(ns):
            # eps and 1 - eps come from the same fields: pooled per realization (not as independent
            # samples), and only once at eps = 0.5.
            num = aa[:, i, j] + (aa[:, i_mirror, j] if i_mirror != i else 0.0)
            den = lc[:, i] + (lc[:, i_mirror] if i_mirror != i else 0.0)
            log_r, st = ratio_curve(xb, num, den, X_NODES, x_fit)
            stats["aa"].append(st["rel_se_median"])
            bar.update()
            r_high_a[i, j] = math.exp(log_r[-1])
            f_aa[i, j + 1] = np.exp(log_r) * f_lc[i]
    xl, shifts = layer_grid(eps, nus)
    f_bb = np.empty((ne, nn, ns, xl.size))
    f_ll = np.empty_like(f_bb)
    for i in range(ne):
        for m in range(nn):
            phi_b = eps[i] * (1 - nus[m])
            x_layer = xl - shifts[i, m]  # ln(q a) of the layer grid at this node
            f_lb = levelcut_curve(np.exp(x_layer), phi_b)
            f_band = band_curve(np.exp(x_layer), phi_b, eps[i])
            for j in range(ns):
                log_r, st = ratio_curve(xb, bb[:, i, j, m], lb[:, i, m], x_layer, x_fit)
                stats["bb"].append(st["rel_se_median"])
                r_high_b = math.exp(log_r[-1])
                f_bb[i, m, j] = np.exp(log_r) * f_lb
                log_r, st = ratio_curve(xb, ll[:, i, j, m], band[:, i, m], x_layer, x_fit)
                stats["ll"].append(st["rel_se_median"])
                f_ll[i, m, j] = np.exp(_layer_high_q(x_layer, log_r, r_high_a[i, j], r_high_b, x_fit, eps[i],
                                                     phi_b)) * f_band
                bar.update(2)
        if log is not None:
            done = {k: float(np.median(v[-ns * (nn if k != "aa" else 1):])) for k, v in stats.items()}
            (bar.write if progress else log)(
                f"porosity {eps[i]:g}: median relative Monte-Carlo error " +
                ", ".join(f"{k} {v:.2%}" for k, v in done.items()))
    bar.close()
    meta = {"spec": spec.to_dict(), "realizations": n_real, "q_fit_max": Q_FIT_MAX}
    card = {
        "how": ("ratio estimators against exact level cuts and bands of the same GRF, partial-volume indicators, "
                f"{n_real} realizations of a {spec.grid_size}^3 box of a/{spec.voxels_per_a:g} voxels "
                f"({spec.box:g} a wide), seed {spec.seed}; see sasview_grf_plugin.ensemble.build"),
        "simulated_q_a": [float(q_bins[keep][0]), Q_FIT_MAX],
        "monte_carlo_rel_se_median": {k: float(np.median(v)) for k, v in stats.items()},
        "monte_carlo_rel_se_worst_node": {k: float(np.max(v)) for k, v in stats.items()},
    }
    return write_table(out, eps, nus, s2, s3, f_aa, f_bb, f_ll, meta, card)


def convert_format1(old: str | os.PathLike, out: str | os.PathLike) -> dict[str, Any]:
    """Re-tabulate a format-1 table (log partial curves F_AA, F_BB, F_LL) into the current format.

    The format-1 splines interpolate their nodes, so evaluating them at the nodes recovers the node
    curves exactly; those are written as :func:`write_table` does for a build. The old card's
    Monte-Carlo and accuracy fields are carried over (the accuracy is re-measured separately).
    """
    from scipy.interpolate import BSpline, NdBSpline

    old = Path(old)
    with np.load(old, allow_pickle=False) as z:
        arr = {k: z[k] for k in z.files}
    meta = json.loads(str(arr["meta"]))
    spec = meta["spec"]
    eps, nus, s3 = (np.asarray(spec[k], dtype=float) for k in ("porosity", "layer_fraction", "smoothing"))
    s2 = np.concatenate([[0.0], s3])
    lam = float(arr["spectral_moment"])
    k = 3
    x_rng, xl_rng = arr["x_range"], arr["xl_range"]

    def continued(tk: np.ndarray, c: np.ndarray, x: np.ndarray, rng: np.ndarray) -> np.ndarray:
        v = BSpline(tk, c, k, extrapolate=False)(np.clip(x, rng[0], rng[1]))
        return v + 4.0 * np.minimum(rng[1] - x, 0.0)  # flat below, q^-4 above

    aa = NdBSpline((arr["t_knots"], arr["s2_knots"]), arr["coef_aa"], k)
    bb = NdBSpline((arr["t_knots"], arr["nu_knots"], arr["s3_knots"]), arr["coef_bb"], k)
    ll = NdBSpline((arr["t_knots"], arr["nu_knots"], arr["s3_knots"]), arr["coef_ll"], k)
    t_nodes = ndtri(eps)
    xl, shifts = layer_grid(eps, nus)
    f_aa = np.empty((eps.size, s2.size, X_NODES.size))
    f_bb = np.empty((eps.size, nus.size, s3.size, xl.size))
    f_ll = np.empty_like(f_bb)
    for i, e in enumerate(eps):
        for j, s in enumerate(s2):
            f_aa[i, j] = np.exp(continued(arr["x_knots"], aa([[t_nodes[i], s]])[0], X_NODES, x_rng)) * e * (1 - e)
        for m, nu in enumerate(nus):
            phi_b, phi_l = e * (1 - nu), e * nu
            area = 2.0 / math.pi * math.sqrt(lam) * math.exp(-0.5 * t_nodes[i] ** 2)
            shift = math.log(e * nu / area)  # format 1 held F_LL against ln(q d), d = eps nu / S, too
            x_a = xl - shifts[i, m]
            for j, s in enumerate(s3):
                p = [[t_nodes[i], nu, s]]
                f_bb[i, m, j] = np.exp(continued(arr["x_knots"], bb(p)[0], x_a, x_rng)) * phi_b * (1 - phi_b)
                f_ll[i, m, j] = np.exp(continued(arr["xl_knots"], ll(p)[0], x_a + shift, xl_rng)) * phi_l * (
                    1 - phi_l)
    card = {}
    old_card = old.parent / CARD_FILE
    if old_card.is_file():
        prev = json.loads(old_card.read_text(encoding="utf-8"))
        card = {k: prev[k] for k in ("how", "simulated_q_a", "monte_carlo_rel_se_median",
                                     "monte_carlo_rel_se_worst_node", "accuracy") if k in prev}
        card["converted_from"] = {"format": 1, "sha256": prev.get("sha256"), "made": prev.get("made")}
    return write_table(out, eps, nus, s2, s3, f_aa, f_bb, f_ll, {**meta, "converted_from_format": 1}, card)
