"""The GRF family beside SasView's built-ins on public real measurements: writes docs/comparison.md.

Usage::

    python benchmarks/compare_real.py [--out docs] [--prinsas DIR] [--starts 3]

Every file goes through :func:`sasview_grf_plugin.compare.compare_models` with ``auto_qrange=True``: the
GRF family (``ENSEMBLE_MODELS``) and ``teubner_strey``, ``dab``, ``broad_peak``, each alone and
``+power_law``, all with the same weights (the data's errors), q range (the suggested one: beam stop,
a tail below its background and WAXS cut, each cut listed) and resolution (the data's dq or slit
length). Files:

- sasdata's example data (installed with sasdata; BSD-3-Clause, SasView project);
- ``examples/data/real/`` (four APS USAXS curves from pyIrena's test data, MIT License);
- three coal SANS curves (NIST NG7, 2007) from the PyPRINSAS repository (GPL-3.0, so not shipped):
  ``git clone https://github.com/okmechak/PyPRINSAS`` and pass ``--prinsas PyPRINSAS``; files that
  are not found are listed as such.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# (label, how to find it, q unit for ASCII, what it is, provenance, licence)
SASDATA = [
    ("Alumina_usaxs.csv", "1/A", "pressed alumina powder, APS USAXS (porous solid)"),
    ("Anton-Paar.pdh", None, "Anton Paar SAXSess, slit-smeared; a broad correlation peak"),
    ("AOT_Microemulsion-Core_Contrast.xml", None, "AOT water-in-oil microemulsion droplets, ISIS LOQ SANS "
                                                   "(core contrast)"),
    ("ISIS_Polymer_Blend_TK49.xml", None, "polymer blend (h/d polystyrene-type blend), ISIS LOQ SANS"),
]
SHIPPED = [
    ("pyirena_ac_usaxs.csv", "sample 'ac' (a carbon, by its name), APS 12-ID-E USAXS, desmeared"),
    ("pyirena_PAN_co_AA_TC75C_116min.csv", "PAN-co-AA copolymer heated at 75 °C for 116 min, APS 12-ID-E "
                                           "USAXS+SAXS+WAXS merged (to q = 1.77 1/Å)"),
    ("pyirena_PDMS750_usaxs.csv", "sample 'PDMS750' (a PDMS-based material, by its name), APS 12-ID-E USAXS"),
    ("pyirena_ZIF8_usaxs.csv", "ZIF-8 powder (microporous MOF crystals), APS 12-ID-E USAXS"),
]
PRINSAS = [
    ("BULLI4/SANS_Bulli4_PAR_1bar_27C.txt", "Bulli 4 coal (Sydney Basin), SANS at NIST NG7, 1 bar, 27 °C"),
    ("BaralabaUQ6A/SANS_UQ6A_PAR_35C_1bar.txt", "Baralaba coal UQ6A (Bowen Basin), SANS at NIST NG7, 1 bar, 35 °C"),
    ("VIGO518/Maria_Vigo sample_SANS_1bar_16C.txt", "'Vigo' sample 518 (a coal or shale of the same study), "
                                                   "SANS at NIST NG7, 1 bar, 16 °C"),
]


def _prinsas_curve(path: Path, cache: Path) -> Path:
    """A NIST 6-column file (q, I, dI, sigma_q, mean q, shadow) as a 4-column text file (q, I, dI, dq)."""
    rows = np.loadtxt(path, skiprows=5)
    out = cache / (path.stem.replace(" ", "_") + ".csv")
    np.savetxt(out, rows[:, :4], fmt="%.8g",
               header=f"converted from {path.name} (PyPRINSAS, GPL-3.0): q [1/A], I [1/cm], dI [1/cm], sigma_q [1/A]")
    return out


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import sasdata

    from sasview_grf_plugin.compare import compare_models
    from sasview_grf_plugin.sasview.paths import ENSEMBLE_MODELS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--prinsas", type=Path, default=ROOT / ".cache" / "PyPRINSAS",
                    help="a clone of https://github.com/okmechak/PyPRINSAS (coal SANS, GPL-3.0, not shipped)")
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=None, help="labels (file names) to run, for a quick look")
    ap.add_argument("--from-json", action="store_true",
                    help="rewrite the page from the last run's .cache/compare_real/comparison.json (no fits; the "
                         "figures stay as they are)")
    args = ap.parse_args()
    if args.from_json:
        from sasview_grf_plugin.compare import Comparison, ModelFit

        rows = json.loads((ROOT / ".cache" / "compare_real" / "comparison.json").read_text())
        for r in rows:
            if "cmp" in r:
                d = dict(r["cmp"])
                fits = [ModelFit(**{k: v for k, v in f.items() if k != "family"}) for f in d["fits"]]
                r["cmp"] = Comparison(name=d["name"], q_range=tuple(d["q_range"]), n_points=d["n_points"],
                                      resolution=d["resolution"], fits=fits, failures=d["failures"],
                                      qcheck=d["qcheck"], cut=d["cut"])
        _write(args, rows, ENSEMBLE_MODELS, 0.0)
        return
    figs = args.out / "_static" / "comparison"
    figs.mkdir(parents=True, exist_ok=True)
    cache = ROOT / ".cache" / "compare_real"
    cache.mkdir(parents=True, exist_ok=True)
    examples = Path(os.path.dirname(sasdata.__file__)) / "example_data" / "1d_data"
    jobs = []  # (label, path or None, q_unit, description, source)
    for fname, unit, what in SASDATA:
        jobs.append((fname, examples / fname, unit, what, "sasdata example data (BSD-3-Clause)"))
    for fname, what in SHIPPED:
        jobs.append((fname, ROOT / "examples" / "data" / "real" / fname, "1/A", what,
                     "pyIrena test data (MIT), shipped in examples/data/real"))
    for rel, what in PRINSAS:
        src = args.prinsas / "PRINSAS-Program" / "PRINSAS Data" / rel
        path = _prinsas_curve(src, cache) if src.is_file() else None
        jobs.append((Path(rel).name, path, "1/A", what, f"PyPRINSAS (GPL-3.0, not shipped): PRINSAS-Program/"
                     f"PRINSAS Data/{rel}"))
    if args.only:
        jobs = [j for j in jobs if j[0] in args.only]
    t_all = time.perf_counter()
    results = []
    for label, path, unit, what, source in jobs:
        if path is None or not Path(path).is_file():
            results.append({"label": label, "missing": True, "what": what, "source": source})
            print(f"{label}: not found", flush=True)
            continue
        t0 = time.perf_counter()
        cmp = compare_models(path, q_unit=unit, auto_qrange=True, n_starts=args.starts)
        stem = Path(label).stem.replace(" ", "_")
        cmp.plot(figs / f"{stem}.png")
        results.append({"label": label, "what": what, "source": source, "cmp": cmp, "figure": f"{stem}.png",
                        "seconds": time.perf_counter() - t0})
        print(f"{label}: {cmp.verdict()} ({time.perf_counter() - t0:.0f} s)", flush=True)
    from sasview_grf_plugin.compare import _plain

    (cache / "comparison.json").write_text(json.dumps(
        [{k: (v.to_dict() if k == "cmp" else v) for k, v in r.items()} for r in results], indent=1, default=_plain))
    _write(args, results, ENSEMBLE_MODELS, time.perf_counter() - t_all)


def _write(args: argparse.Namespace, results: list[dict], grf_models: tuple[str, ...], seconds: float) -> None:
    done = [r for r in results if not r.get("missing")]
    wins = sum(1 for r in done
               if r["cmp"].best_of("grf", "chi2").chi2 <= 1.1 * r["cmp"].best_of("builtin", "chi2").chi2)
    lines = ["# GRF models beside SasView's built-in models on real data", "",
             f"Made by `python benchmarks/compare_real.py --out docs --prinsas PyPRINSAS --starts {args.starts}` "
             f"(PyPRINSAS: a clone of its repository, see {{doc}}`data`) on {date.today()} ({platform.machine()}, "
             f"{os.cpu_count()} cores{f', {seconds / 60:.0f} min under shared load' if seconds else ''}). GRF family: "
             f"{', '.join(f'`{m}`' for m in grf_models)}. Built-ins: `teubner_strey`, `dab`, `broad_peak`. Each "
             "model is fitted alone and `+power_law` with `sasview-grf compare`'s engine "
             "({py:func}`sasview_grf_plugin.compare.compare_models`): the same weights (the data's errors), the "
             "same q range and the same resolution (the data's dq or slit length, as sasmodels applies them) for "
             f"every model, {args.starts} starts per model from the data's length scale, the best kept; "
             "scale and flat background free; ranked by BIC = χ² + p ln n. Regions no small-angle model "
             "describes (beam stop, a tail below its background, WAXS) are cut with `auto_qrange`; each cut is "
             "listed. Data sources and licences: {doc}`data`.", "",
             "## Summary", "",
             f"The best GRF-family model is within 10 % of the best built-in's reduced χ² (or better) on "
             f"**{wins} of {len(done)}** files.", "",
             "| file | points | lowest-χ² built-in (χ²) | lowest-χ² GRF model (χ²) | χ² ratio GRF/built-in | "
             "best by BIC |",
             "|---|---|---|---|---|---|"]
    for r in results:
        if r.get("missing"):
            lines.append(f"| {r['label']} | not found | | | | |")
            continue
        c = r["cmp"]
        g, b = c.best_of("grf", "chi2"), c.best_of("builtin", "chi2")
        lines.append(f"| {r['label']} | {c.n_points} | `{b.model}` ({b.chi2:.3g}) | `{g.model}` ({g.chi2:.3g}) | "
                     f"{g.chi2 / b.chi2:.3g} | `{c.best.model}` |")
    lines.append("")
    # Hand-written reading of the figures (residuals), kept beside this script so that a rerun keeps it.
    notes = Path(__file__).with_name("compare_real_notes.md")
    if notes.is_file():
        lines += [notes.read_text().rstrip(), ""]
    for r in results:
        lines += [f"## {r['label']}", "", f"{r['what']}. Source: {r['source']}.", ""]
        if r.get("missing"):
            lines += ["Not found on the machine that made this page (see the source for how to get it).", ""]
            continue
        c = r["cmp"]
        lines.append(f"Fitted q range {c.q_range[0]:.4g}-{c.q_range[1]:.4g} 1/Å, {c.n_points} points; "
                     f"{c.resolution}.")
        if c.cut:
            lines += ["", "Cut before fitting:", ""] + [f"- {m}" for m in c.cut]
        other = [m for m in c.qcheck.get("messages", []) if not m.startswith("suggested")]
        if other and not c.cut:
            lines += ["", "Notes: " + "; ".join(other)]
        lines += ["", "| model | reduced χ² | ΔBIC | parameters (± 1σ) | time [s] |", "|---|---|---|---|---|"]
        for f in c.fits:
            lines.append(f"| `{f.model}` | {f.chi2:.4g} | {f.bic - c.best.bic:.1f} | {f.parameter_text()} | "
                         f"{f.wall_time:.1f} |")
        for k, v in c.failures.items():
            lines.append(f"| `{k}` | failed | | {v} | |")
        lines += ["", f"{c.verdict()}.", "", f"![{r['label']}](_static/comparison/{r['figure']})", ""]
    (args.out / "comparison.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'comparison.md'}")


if __name__ == "__main__":
    main()
