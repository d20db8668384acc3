"""The ML seed in SasView's real window: LM from the seeded project versus LM from the model's defaults.

Usage: python benchmarks/study_gui_seed.py [--out DIR] [--json results.json]

On the four sasdata porous files of benchmarks/study_gui_fits.py: ``sasview-grf seed`` writes one
project for all four; in SasView's main window (under Xvfb, driven by tests/gui_driver.py, in a
fresh HOME with the plugins installed) each file is then loaded and fitted with Levenberg-Marquardt
from the defaults of the model the seed chose, and the project is opened (File > Open Project) and
every page fitted with LM. Ticked in both: scale, background and the structure parameters
(``smoothing_ratio`` where the model has it; a smoothing in Å stays fixed). Printed per file: the
model, the chi^2 SasView reports for each start, and the fit's status. Needs Xvfb and SasView's GUI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FILES = [("Alumina_usaxs.csv", "1/A"), ("Anton-Paar.pdh", None), ("AOT_Microemulsion-Core_Contrast.xml", None),
         ("Lew_Sa3_DSM_QinA.h5", None)]
DRIVER = Path(__file__).resolve().parent.parent / "tests" / "gui_driver.py"


def main() -> int:
    import sasdata

    import sasview_grf_plugin
    from sasview_grf_plugin.cli import main as cli
    from sasview_grf_plugin.sasview.install import install_plugins

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("gui-artifacts/seed-study"), help="screenshots and result")
    ap.add_argument("--json", type=Path, default=None, help="write the table as JSON")
    args = ap.parse_args()
    example = Path(sasdata.__file__).parent / "example_data" / "1d_data"
    tmp = Path(tempfile.mkdtemp(prefix="gui-seed-"))
    home = tmp / "home"
    install_plugins(home / "data" / "SasView" / "plugin_models")
    project = tmp / "seed.json"
    paths = [str(example / f) for f, _ in FILES]
    # --q-unit applies to the ASCII file only (Alumina_usaxs.csv is in 1/Å).
    if cli(["seed", *paths, "--q-unit", "1/A", "-o", str(project)]) != 0:
        return 1
    pages = [v["fit_params"][0] for v in json.loads(project.read_text()).values()
             if isinstance(v, dict) and "fit_params" in v]
    models = {p["data_name"][0][0]: p["fitpage_model"][0] for p in pages}
    tick = ["scale", "background", "a", "porosity", "layer_fraction", "smoothing_ratio"]
    lm = {"id": "lm", "name": "Levenberg-Marquardt"}
    steps = [{"kind": "fit", "data": p, "model": models[Path(p).stem], "tick": tick, "optimizers": [lm]}
             for p in paths]
    steps.append({"kind": "project", "project": str(project), "pages": len(pages),
                  "fit_pages": list(range(len(pages))), "optimizer": lm})
    plan = tmp / "plan.json"
    plan.write_text(json.dumps({"out": str(args.out.resolve()), "timeout": 600, "steps": steps}))
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_STATE_HOME": str(home / "state"),
           "PYTHONPATH": str(Path(sasview_grf_plugin.__file__).resolve().parent.parent)}
    cmd = [sys.executable, str(DRIVER), str(plan)]
    if "DISPLAY" not in os.environ:
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *cmd]
    subprocess.run(cmd, env=env, cwd=tmp, check=False, timeout=900)
    result = json.loads((args.out / "result.json").read_text())
    if result["errors"]:
        print("\n".join(result["errors"]), file=sys.stderr)
        return 1
    defaults = {Path(s["data"]).stem: s["fits"][0] for s in result["steps"] if s["kind"] == "fit"}
    # The pages are fitted in the project's order (SasView may name a page's data by the file's title).
    fits = next(s["fits"] for s in result["steps"] if s["kind"] == "project")
    seeded = dict(zip(models, fits, strict=True))
    rows = []
    print(f"SasView {result['sasview_version']}; LM, chi^2 as SasView reports it")
    print(f"{'file':<40}{'model':<17}{'defaults':>12}{'seeded':>12}  seeded <= defaults")
    for name in models:
        d, s = defaults[name], seeded[name]
        ok = s["chi2"] <= d["chi2"] * (1 + 1e-6)
        rows.append({"file": name, "model": models[name], "chi2_defaults": d["chi2"], "chi2_seeded": s["chi2"],
                     "status_defaults": d["status"], "status_seeded": s["status"],
                     "values_defaults": {k: v["value"] for k, v in d["values"].items()},
                     "values_seeded": {k: v["value"] for k, v in s["values"].items()}})
        print(f"{name:<40}{models[name]:<17}{d['chi2']:>12.5g}{s['chi2']:>12.5g}  {'yes' if ok else 'NO'}")
        for label, f in (("defaults", d), ("seeded", s)):
            if not f["status"].startswith("Fitting completed successfully"):
                print(f"  {label}: {f['status']}")
    errors = [r for r in result["log"] if r["level"] in ("ERROR", "CRITICAL") or "Traceback" in r["message"]]
    print(f"log: {len(errors)} error record(s)")
    if args.json:
        args.json.write_text(json.dumps({"sasview": result["sasview_version"], "rows": rows,
                                         "log_errors": len(errors)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
