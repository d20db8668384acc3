"""Fit the one-realization ``grf_two_phase_sim`` SasView model to a simulated measurement with bumps.

(To fit measured data use the ensemble-mean ``grf_two_phase``: see docs/sasview.md. This example shows
what the finite-box simulation gives and why its fits scatter between realizations.)

The "measurement" is the model itself (a = 30 Å, porosity 0.3, 64^3 voxels of 5 Å,
two realizations, seed 11) with 3 % Gaussian noise. The fit starts from a = 22 Å,
porosity 0.4 and uses *other* random structures (``--model-seed``, default 1), as a fit
of real data would: the model never reproduces the measured structures, only their
statistics. ``scale`` and ``background`` stay fixed. Levenberg-Marquardt (bumps "lm")
fits ``a`` and ``porosity``; the script prints true, start and fitted values, chi^2 and
the wall time, and saves a figure of data, start curve, fit and normalized residuals.

Run (about ten seconds on two CPU cores)::

    python examples/fit_grf_two_phase.py --plot grf_fit_example.png

Needs the ``sasview`` extra: ``pip install ".[sasview]"`` in a checkout of the source.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

# The GRF engine would use a CUDA GPU through CuPy when one works; this example is
# meant to give the same numbers everywhere.
os.environ.setdefault("SASVIEW_GRF_BACKEND", "numpy")

from bumps.fitproblem import FitProblem  # noqa: E402
from bumps.fitters import fit  # noqa: E402
from sasmodels.bumps_model import Experiment, Model  # noqa: E402
from sasmodels.core import load_model  # noqa: E402
from sasmodels.data import Data1D, empty_data1D  # noqa: E402
from sasmodels.direct_model import DirectModel  # noqa: E402

from sasview_grf_plugin.sasview import model_path  # noqa: E402

TRUE = {"a": 30.0, "porosity": 0.3}
START = {"a": 22.0, "porosity": 0.4}
# Settings shared by the measurement and the fit model (SasView units: Å, 1e-6/Å^2, cm^-1).
FIXED = {"scale": 1.0, "background": 0.001, "sld_pore": 0.0, "sld_solid": 10.0,
         "voxel_size": 5.0, "grid_size": 64, "n_realizations": 2}
DATA_SEED = 11  # structures of the "measurement"
NOISE = 0.03  # relative Gaussian noise
NOISE_SEED = 2022


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--plot", default="grf_fit_example.png", help="PNG file for the figure")
    p.add_argument("--model-seed", type=int, default=1,
                   help=f"seed of the fit model's structures (not the data's, {DATA_SEED})")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    t_start = time.perf_counter()
    kernel = load_model(model_path("grf_two_phase_sim"))

    # Inside the simulated range 2 pi / (64 * 5 Å) = 0.0196 <= q <= pi / 5 Å = 0.628 1/Å, and up to
    # half of it, pi / (2 * 5 Å) = 0.314 1/Å, where the curve does not depend on the voxel size.
    q = np.geomspace(0.025, 0.3, 80)
    truth = DirectModel(empty_data1D(q), kernel)(**FIXED, **TRUE, seed=DATA_SEED)
    rng = np.random.default_rng(NOISE_SEED)
    dy = NOISE * truth
    data = Data1D(x=q, y=truth + dy * rng.standard_normal(q.size), dy=dy)
    data.dx = np.zeros_like(q)  # no instrumental smearing

    model = Model(kernel, **FIXED, **START, seed=args.model_seed)
    model.a.range(5.0, 200.0)
    model.porosity.range(0.02, 0.98)
    experiment = Experiment(data=data, model=model)
    problem = FitProblem(experiment)
    start_curve = experiment.theory().copy()
    chi2_start = problem.chisq()

    t_fit = time.perf_counter()
    result = fit(problem, method="lm")
    fit_seconds = time.perf_counter() - t_fit
    problem.setp(result.x)
    fit_curve = experiment.theory().copy()
    best = dict(zip(result.labels, result.x, strict=True))
    err = dict(zip(result.labels, result.dx, strict=True))

    print(f"grf_two_phase: {q.size} points, {q[0]:.3g}..{q[-1]:.3g} 1/Å, {NOISE:.0%} noise; "
          f"data seed {DATA_SEED}, model seed {args.model_seed}; "
          f"{FIXED['grid_size']}^3 voxels of {FIXED['voxel_size']:g} Å, "
          f"{FIXED['n_realizations']} realizations")
    print(f"{'parameter':<10} {'true':>8} {'start':>8} {'fitted':>9} {'+/-':>7} {'fit/true':>9}")
    for name in ("a", "porosity"):
        print(f"{name:<10} {TRUE[name]:8.3f} {START[name]:8.3f} {best[name]:9.3f} {err[name]:7.3f} "
              f"{best[name] / TRUE[name]:9.3f}")
    print(f"chi^2/dof: start {chi2_start:.1f}, fit {result.chisq:.2f} ({result.dof} degrees of freedom)")
    print(f"wall time: fit {fit_seconds:.1f} s, total {time.perf_counter() - t_start:.1f} s")

    plot(args.plot, data, start_curve, fit_curve, best, args.model_seed)
    print(f"wrote {args.plot}")
    return 0


def plot(path, data, start_curve, fit_curve, best, model_seed) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax, axr) = plt.subplots(2, 1, figsize=(7.5, 6.4), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.2]})
    ax.errorbar(data.x, data.y, yerr=data.dy, fmt="o", ms=3, color="0.25", elinewidth=0.8,
                label=f"simulated data: a = {TRUE['a']:g} Å, ε = {TRUE['porosity']:g} (seed {DATA_SEED})")
    ax.loglog(data.x, start_curve, "--", color="tab:orange",
              label=f"start: a = {START['a']:g} Å, ε = {START['porosity']:g}")
    ax.loglog(data.x, fit_curve, "-", color="tab:blue", lw=1.6,
              label=f"fit (seed {model_seed}): a = {best['a']:.1f} Å, ε = {best['porosity']:.3f}")
    ax.set_ylabel(r"$I(q)$ [cm$^{-1}$]")
    ax.set_title("grf_two_phase fitted with bumps (Levenberg-Marquardt)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9)
    axr.semilogx(data.x, (data.y - fit_curve) / data.dy, "o", ms=3, color="tab:blue")
    axr.axhline(0.0, color="0.3", lw=0.8)
    for level in (-2, 2):
        axr.axhline(level, color="0.6", lw=0.8, ls=":")
    axr.set_xlabel(r"$q$ [Å$^{-1}$]")
    axr.set_ylabel(r"$(I - I_\mathrm{fit})/\sigma$")
    axr.grid(True, which="both", alpha=0.3)
    ticks = [0.03, 0.05, 0.1, 0.2, 0.3]
    axr.set_xticks(ticks, [f"{t:g}" for t in ticks])
    axr.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
