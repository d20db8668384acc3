"""Validation figure of the ensemble-mean plugin models (docs/_static/grf_model_validation.png).

Left: ``grf_two_phase`` at smoothing 0 against the exact level-cut curve (Berk/Teubner, computed by
``sasview_grf_plugin.ensemble.levelcut``), with the targets of its ``tests`` list. Right: ``grf_three_phase``
at the point of its ``tests`` list (a = 25 Å, porosity 0.33, layer fraction 0.22, smoothing 10 Å) against
the mean of fixed-seed simulations of the package's voxel simulator (128^3 voxels of a/4.8, densities
0 / 0.65 / 1 = SLDs 0 / 6.5 / 10), up to a quarter of the voxels' Nyquist wave number, where the voxel model
is close to its continuum limit; the model is also shown through the box's shell window (Eqs. 3-4), which
is what the simulated curve is, and the RMS difference is taken there. The models are evaluated from the
files `sasview-grf export-plugin --standalone` writes, so the figure validates what a SasView installer-app
user loads.

    python benchmarks/validation_figure.py [--realizations 16] [--out docs/_static/grf_model_validation.png]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sasmodels.core import load_model  # noqa: E402
from sasmodels.data import empty_data1D  # noqa: E402
from sasmodels.direct_model import DirectModel  # noqa: E402

from sasview_grf_plugin.ensemble.levelcut import levelcut_curve  # noqa: E402
from sasview_grf_plugin.sasview.standalone import export_standalone  # noqa: E402
from sasview_grf_plugin.simulator import SimulationConfig, generate_structure, scattering_curve  # noqa: E402
from sasview_grf_plugin.simulator.grid import shell_counts  # noqa: E402
from sasview_grf_plugin.simulator.scattering import reduce_shells  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realizations", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("docs/_static/grf_model_validation.png"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export_standalone(tmp)
        two = load_model(str(Path(tmp) / "grf_two_phase.py"))
        three = load_model(str(Path(tmp) / "grf_three_phase.py"))
        tests2 = two.info.tests[0]
        tests3 = three.info.tests[0]

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
        # Left: level cut (exact) vs the model, a = 50 Å, porosity 0.3, contrast 10e-6/Å^2.
        a, eps, d = 50.0, 0.3, 10.0
        q = np.geomspace(1e-4, 1.0, 300)
        model = DirectModel(empty_data1D(q), two)(a=a, porosity=eps, smoothing_ratio=0.0, background=0.0)
        exact = 1e-4 * a**3 * d**2 * levelcut_curve(q * a, eps)
        ax1.loglog(q, exact, "k-", lw=3, alpha=0.35, label="exact level cut (Berk, Teubner)")
        ax1.loglog(q, model, "C0--", label="grf_two_phase, smoothing 0")
        ax1.loglog(tests2[1], tests2[2], "C3o", mfc="none", label="targets of its tests list")
        rel = np.max(np.abs(model / exact - 1))
        ax1.set(xlabel="q (1/Å)", ylabel="I (1/cm)")
        ax1.set_title(f"two phases: max |model/exact - 1| = {rel:.1e}", fontsize=10)
        ax1.legend(fontsize=8)

        # Right: seeded simulations vs the model.
        p = dict(tests3[0])
        a, eps, nu = p["a"], p["porosity"], p["layer_fraction"]
        sigma = p["smoothing_ratio"] * a  # Å
        n, dx_nm = 128, a / 10.0 / 4.8
        q_nm = np.linspace(3 * 2 * math.pi / (n * dx_nm), math.pi / (4 * dx_nm), 60)
        cfg = SimulationConfig(grid_size=n, voxel_size=dx_nm, q_min=float(q_nm[0]), q_max=float(q_nm[-1]),
                               n_q=q_nm.size, smoothing_sigma=sigma / 10.0 / dx_nm, densities=(0.0, 0.65, 1.0),
                               dtype="float32")
        curves = [scattering_curve(generate_structure(cfg, a / 10.0, eps, nu, seed=s), dx_nm, q_nm)
                  for s in np.random.SeedSequence(20261201).spawn(args.realizations)]
        curves = 10.0 * np.array(curves)  # nm^3 x density^2 -> cm^-1 with SLD = 10 x density (1e-6/Å^2)
        mean, se = curves.mean(0), curves.std(0, ddof=1) / math.sqrt(len(curves))
        q_a = q_nm / 10.0
        qq = np.geomspace(2e-3, 0.3, 300)
        m3 = DirectModel(empty_data1D(qq), three)(**p)
        ax2.loglog(qq, m3, "C0-", label="grf_three_phase")
        ax2.errorbar(q_a, mean, yerr=2 * se, fmt="k.", ms=3, lw=0.8,
                     label=f"mean of {len(curves)} seeded simulations (±2 s.e.)")
        ax2.loglog(tests3[1], tests3[2], "C3o", mfc="none", label="targets of its tests list")
        # The simulated curve is the box's Gaussian-weighted shell average (Eqs. 3-4), which rounds the knee:
        # compare with the model passed through the same window, as the accuracy study does.
        counts = shell_counts(n)
        q_shell = 2 * math.pi / (n * dx_nm) * np.sqrt(np.arange(counts.size)) / 10.0
        i_shell = DirectModel(empty_data1D(q_shell), three)(**p)
        at = reduce_shells(n, dx_nm, q_nm, counts * i_shell, counts)
        ax2.loglog(q_a, at, "C1-", lw=1, label="grf_three_phase through the box's shell window")
        rms = float(np.sqrt(np.mean((at / mean - 1) ** 2)))
        ax2.set(xlabel="q (1/Å)", ylabel="I (1/cm)")
        ax2.set_title(f"three phases (a 25 Å, ε 0.33, ν 0.22): RMS windowed/sim - 1 = {rms:.1%}", fontsize=10)
        ax2.legend(fontsize=8)
        fig.tight_layout()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out, dpi=120)
        print(f"wrote {args.out}; two phases max rel. {rel:.2e}; three phases RMS {rms:.2%} over "
              f"{q_a[0]:.3f}-{q_a[-1]:.3f} 1/Å")


if __name__ == "__main__":
    main()
