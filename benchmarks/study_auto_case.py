"""How often ``predict --case auto`` picks the right number of phases: BIC alone against BIC with parsimony.

Usage: python benchmarks/study_auto_case.py [--n 40] [--sims 2] [--seed 0]

Curves: ``--n`` synthetic measurements per case of the measured family (ensemble model, the paper's noise),
clean and with instrument effects, and two-phase curves of the package's own simulator (compact preset,
a 2-5 nm, porosity 0.15-0.85, 1 and 4 realizations, ``--sims`` seeds), which differ from the ensemble mean by
finite-box and voxel effects. Each curve is predicted twice: with ``THREE_PHASE_GAIN`` as shipped and with
gains of 1 (BIC alone: a case BIC prefers always lowers the misfit). ``--seed 0`` gives the curves the
gains were chosen on; other seeds give fresh curves.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

import sasview_grf_plugin.ml.measured as measured
from sasview_grf_plugin.ml.measured_data import EFFECTS, MEASURED_CASES, Effects, synthesize
from sasview_grf_plugin.simulator import PRESETS, simulate_curve


def curves(n: int, sims: int, seed: int = 0):
    """(group, want, q, i, di, dq, slit) for every test curve."""
    for case in MEASURED_CASES:
        want = "two" if case == "two_phase" else "three"
        for tag, effects, key in (("clean", Effects(), 1), ("effects", EFFECTS["instrument"], 2)):
            d = synthesize(MEASURED_CASES[case], n, np.random.SeedSequence([77 + seed, key]), effects, keep_curves=True,
                           a_range=measured.STATED_A_RANGE)
            for k, (q, i, di) in enumerate(d["curves"]):
                e = d["effects"][k]
                dq = e["pinhole"] * q if "pinhole" in e else None
                slit = np.full(q.size, e["slit"] / d["a"][k]) if "slit" in e else None
                yield f"{case} {tag}", want, q, i, di, dq, slit
    cfg = PRESETS["compact"]
    for a, s, eps, r in itertools.product((2.0, 2.5, 3.0, 4.0, 5.0), range(11 + 2 * seed, 11 + 2 * seed + sims),
                                          (0.15, 0.3, 0.5, 0.7, 0.85), (1, 4)):
        yield "simulator two_phase", "two", cfg.q / 10.0, simulate_curve(cfg, a, eps, 0.0, seed=s,
                                                                          n_realizations=r), None, None, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--sims", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    family = measured.load_measured()
    shipped = dict(measured.THREE_PHASE_GAIN)
    tally: dict[str, list[int]] = {}
    for group, want, q, i, di, dq, slit in curves(args.n, args.sims, args.seed):
        row = tally.setdefault(group, [0, 0, 0])
        for j, gains in enumerate((shipped, {True: 1.0, False: 1.0})):
            measured.THREE_PHASE_GAIN = gains
            got = family.predict(q, i, di, dq, slit, case="auto").case
            row[j] += got.startswith(want)
        row[2] += 1
    measured.THREE_PHASE_GAIN = shipped
    print(f"| curves | n | BIC with parsimony {shipped} | BIC alone |")
    print("|---|---|---|---|")
    for group, (new, old, n) in tally.items():
        print(f"| {group} | {n} | {new} ({100 * new / n:.1f} %) | {old} ({100 * old / n:.1f} %) |")


if __name__ == "__main__":
    main()
