"""Installs for each kind of user: dependency metadata, the XGBoost guard, the standalone plugin export,
user-data defaults and bundle names, and SasView's discovery in a pipx/uv-style layout."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from sasview_grf_plugin._deps import check_xgboost, xgboost_distributions
from sasview_grf_plugin.cli import main
from sasview_grf_plugin.ensemble.table import TABLE_FILE
from sasview_grf_plugin.sasview import model_path
from sasview_grf_plugin.sasview.standalone import STANDALONE_MODELS, export_standalone, standalone_source

ROOT = Path(__file__).resolve().parents[1]

# Parameter sets (SasView units) the standalone files must reproduce, inside and at the edges of the domain.
CASES = {
    "grf_two_phase": [dict(a=50.0, porosity=0.3, smoothing=10.0), dict(a=8.0, porosity=0.02, smoothing=10.0),
                      dict(a=400.0, porosity=0.5, smoothing=0.0, sld_pore=2.0, sld_solid=-1.0, scale=0.3)],
    "grf_three_phase": [dict(a=50.0, porosity=0.7, layer_fraction=0.2, smoothing=10.0),
                        dict(a=25.0, porosity=0.33, layer_fraction=0.22, smoothing=10.0, sld_layer=3.0),
                        dict(a=100.0, porosity=0.98, layer_fraction=0.6, smoothing=12.5, background=0.0)],
    "grf_two_phase_broad": [dict(a=50.0, alpha=1.5, porosity=0.3), dict(a=1.0, alpha=0.1, porosity=0.005),
                            dict(a=1e5, alpha=4.0, porosity=0.5, sld_pore=2.0, sld_solid=-1.0)],
    "grf_two_phase_peaked": [dict(d=200.0, xi_over_d=0.5, porosity=0.3), dict(d=1.0, xi_over_d=0.05, porosity=0.005),
                             dict(d=1e5, xi_over_d=2.0, porosity=0.5, scale=0.3)],
    "grf_three_phase_broad": [dict(a=50.0, alpha=1.5, layer_volume=0.1, pore_share=0.4),
                              dict(a=1.0, alpha=0.1, layer_volume=0.001, pore_share=0.005),
                              dict(a=1e5, alpha=4.0, layer_volume=0.9, pore_share=0.995, sld_layer=-3.0)],
    "grf_three_phase_peaked": [dict(d=200.0, xi_over_d=0.5, layer_volume=0.1, pore_share=0.5),
                               dict(d=1.0, xi_over_d=0.05, layer_volume=0.001, pore_share=0.005),
                               dict(d=1e5, xi_over_d=2.0, layer_volume=0.9, pore_share=0.995, sld_pore=1.0)],
}
Q = np.concatenate([[0.0], np.geomspace(1e-5, 10.0, 120)])


# -- dependency metadata ---------------------------------------------------------------------------------

def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.mark.parametrize("system, machine, wanted", [
    ("Linux", "x86_64", "xgboost-cpu"), ("Linux", "aarch64", "xgboost-cpu"), ("Windows", "AMD64", "xgboost-cpu"),
    ("Darwin", "arm64", "xgboost"), ("Darwin", "x86_64", "xgboost"), ("Linux", "ppc64le", "xgboost"),
    ("Windows", "ARM64", "xgboost"), ("FreeBSD", "amd64", "xgboost"),
])
def test_default_dependencies_pick_exactly_one_xgboost(system, machine, wanted):
    # xgboost-cpu has wheels for manylinux x86_64/aarch64 and win_amd64 only (PyPI, 3.2.0); plain xgboost
    # elsewhere (its macOS wheels have no CUDA parts). Exactly one, so the two never meet.
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = {**default_environment(), "platform_system": system, "platform_machine": machine, "extra": ""}
    project = _pyproject()
    chosen = [r.name for r in map(Requirement, project["dependencies"])
              if r.name in ("xgboost", "xgboost-cpu") and (r.marker is None or r.marker.evaluate(env))]
    assert chosen == [wanted]
    # No extra may add the other distribution (an extra cannot take a dependency away), and nothing in the
    # default install pulls CUDA libraries.
    for extra, reqs in project["optional-dependencies"].items():
        assert not [r for r in reqs if Requirement(r).name in ("xgboost", "xgboost-cpu")], extra
    assert not [r for r in project["dependencies"] if Requirement(r).name.startswith(("nvidia", "cupy"))]


def test_every_extra_names_what_its_feature_imports():
    project = _pyproject()
    extras = {k: {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip() for r in v}
              for k, v in project["optional-dependencies"].items()}
    assert {"pyopencl", "pyvkfft", "mako"} <= extras["opencl"]  # mako: pyopencl's reductions need it
    assert extras["gpu"] == {"cupy-cuda12x"} and "[ctk]" in project["optional-dependencies"]["gpu"][0]
    assert {"sphinx", "myst-parser", "furo"} <= extras["docs"]
    assert {"pytest", "ruff", "packaging"} <= extras["test"]
    assert extras["sasview"] == {"sasview"}


def _fake_dist(root: Path, name: str, version: str) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_xgboost_guard_names_both_distributions_and_the_fix(tmp_path):
    _fake_dist(tmp_path, "xgboost", "3.2.0")
    _fake_dist(tmp_path, "xgboost-cpu", "3.1.0")
    assert xgboost_distributions([tmp_path]) == {"xgboost": "3.2.0", "xgboost-cpu": "3.1.0"}
    with pytest.raises(RuntimeError, match=r"xgboost 3\.2\.0 and xgboost-cpu 3\.1\.0.*"
                                           r"pip uninstall -y xgboost xgboost-cpu"):
        check_xgboost(path=[tmp_path])
    # The same environment, seen by a new process: importing the ML layer stops with the message.
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", "import sasview_grf_plugin.ml"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode != 0 and "two XGBoost distributions are installed" in run.stderr


def test_xgboost_guard_on_cuda_wants_the_cuda_build(tmp_path):
    cpu, full = tmp_path / "cpu", tmp_path / "full"
    _fake_dist(cpu, "xgboost-cpu", "3.2.0")
    _fake_dist(full, "xgboost", "3.2.0")
    check_xgboost("cpu", path=[cpu])
    check_xgboost("cuda", path=[full])
    with pytest.raises(RuntimeError, match="pip uninstall -y xgboost-cpu && pip install xgboost"):
        check_xgboost("cuda", path=[cpu])
    check_xgboost("cpu", path=[tmp_path / "empty"])  # none found: XGBoost's own import error says it


def test_this_environment_has_exactly_one_xgboost():
    found = xgboost_distributions()
    assert len(found) == 1, found
    check_xgboost()


# -- standalone export ---------------------------------------------------------------------------------

def test_standalone_files_are_made_from_the_package_sources():
    import ast
    import inspect

    from sasview_grf_plugin import spectra
    from sasview_grf_plugin.ensemble import fastcut, table

    for name in STANDALONE_MODELS:
        src = standalone_source(name)
        tree = ast.parse(src)
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "sasview_grf_plugin" not in imported
        assert imported - set(sys.stdlib_module_names) == {"numpy", "scipy"}
        # Verbatim: the evaluator's classes and functions, and the model's parameters and Iq.
        exact = "begin exact" in Path(model_path(name)).read_text(encoding="utf-8")
        objs = ((spectra.BroadSpectrum, spectra.PeakedSpectrum, spectra.matern_one_minus, fastcut.level_set_curve,
                 fastcut._Grid) if exact else (table.EnsembleTable, table.load_table, table.layer_shift))
        for obj in objs:
            assert inspect.getsource(obj) in src
        model = Path(model_path(name)).read_text(encoding="utf-8")
        for part in ("parameters = [", "def Iq(", "tests = ["):
            start = model.index(part)
            chunk = model[start:model.index("\n\n\n", start) if "\n\n\n" in model[start:] else None]
            assert chunk in src, part
        assert ast.get_docstring(tree) == ast.get_docstring(ast.parse(model))
        assert src.splitlines()[0].startswith("# sasview-grf-plugin: generated plugin file")


def test_standalone_table_lookup_beside_the_file_then_the_export_folder(tmp_path):
    from sasmodels.core import load_model
    from sasmodels.data import empty_data1D
    from sasmodels.direct_model import DirectModel

    export = tmp_path / "export"
    written = export_standalone(export)
    assert sorted(p.name for p in written) == sorted([*(f"{n}.py" for n in STANDALONE_MODELS), TABLE_FILE])
    # SasView's "Add file..." copies only the .py into its plugin folder: the table is found in the export folder.
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(export / "grf_two_phase.py", plugins)
    q = np.geomspace(1e-3, 0.5, 30)
    ref = DirectModel(empty_data1D(q), load_model(model_path("grf_two_phase")))(a=40.0)
    got = DirectModel(empty_data1D(q), load_model(str(plugins / "grf_two_phase.py")))(a=40.0)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # Without it there either, the model says what to copy where.
    (export / TABLE_FILE).unlink()
    shutil.copy(export / "grf_three_phase.py", plugins)
    with pytest.raises(ValueError, match=rf"{TABLE_FILE} not found in {plugins} or {export}: copy it"):
        DirectModel(empty_data1D(q), load_model(str(plugins / "grf_three_phase.py")))()


def test_export_cli_keeps_foreign_files_and_shares_the_installer_marker(tmp_path, capsys):
    (tmp_path / "grf_three_phase.py").write_text("# a user's own model\n")
    assert main(["export-plugin", "--standalone", str(tmp_path)]) == 2
    assert "not overwriting" in capsys.readouterr().err
    assert (tmp_path / "grf_three_phase.py").read_text() == "# a user's own model\n"
    assert main(["export-plugin", "--standalone", str(tmp_path), "--force"]) == 0
    assert "Manage Custom Models > Add file" in capsys.readouterr().out
    # install-plugins treats the standalone files as its own: it replaces and removes them.
    assert main(["install-plugins", "--dir", str(tmp_path), "--uninstall"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [TABLE_FILE]


def _dependency_closure(roots: list[str]) -> list[metadata.Distribution]:
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = metadata.distribution(name)
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def _site_of(dists: list[metadata.Distribution], target: Path) -> Path:
    """A site folder holding only ``dists``: links to each one's top-level files (from its RECORD)."""
    target.mkdir()
    for dist in dists:
        if dist.files is None:
            pytest.skip(f"{dist.metadata['Name']} has no RECORD to copy its files from")
        for top in {f.parts[0] for f in dist.files if f.parts and f.parts[0] not in ("..", "__pycache__")}:
            src = Path(dist.locate_file(top))
            if src.exists() and not (target / top).exists():
                (target / top).symlink_to(src, target_is_directory=src.is_dir())
    return target


def test_standalone_export_runs_without_the_package(tmp_path):
    """The exported files load, pass sasmodels' model tests and equal the installed models, in a Python
    that has NumPy, SciPy, sasmodels and bumps (and their dependencies) but not this package.

    That Python is this interpreter started with ``-I -S`` (no site-packages, no current folder, no
    PYTHONPATH) and one folder on ``sys.path`` that links exactly the files of those distributions and of
    their dependency closure, taken from their RECORDs: what ``pip install numpy scipy sasmodels bumps``
    puts into a fresh venv, without downloading it (CI has no guaranteed network; a real venv took ~30 s).
    The child checks that neither this package nor its other dependencies (XGBoost, Dask, Zarr) can be
    imported.
    """
    export = tmp_path / "export"
    export_standalone(export)
    site = _site_of(_dependency_closure(["numpy", "scipy", "sasmodels", "bumps"]), tmp_path / "site")
    params = {n: [dict(p) for p in CASES[n]] for n in STANDALONE_MODELS}
    script = textwrap.dedent(f"""
        import importlib.util, json, runpy, sys
        sys.path.insert(0, {str(site)!r})
        hidden = [m for m in ("sasview_grf_plugin", "xgboost", "dask", "zarr", "sasdata")
                  if importlib.util.find_spec(m) is not None]
        assert not hidden, hidden
        import numpy as np
        from sasmodels.core import load_model
        from sasmodels.data import empty_data1D
        from sasmodels.direct_model import DirectModel
        q = np.array({Q.tolist()!r})
        out = {{}}
        for name, sets in {params!r}.items():
            kernel = load_model({str(export)!r} + "/" + name + ".py")
            out[name] = [DirectModel(empty_data1D(q), kernel)(**p).tolist() for p in sets]
        print("RESULT " + json.dumps(out), flush=True)
        # sasmodels' own test runner on both files (its exit code is 1 on any failure)
        sys.argv = ["model_test"] + [{str(export)!r} + "/" + n + ".py" for n in {list(params)!r}]
        runpy.run_module("sasmodels.model_test", run_name="__main__")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SAS"))}
    env.update(HOME=str(tmp_path / "home"), SAS_OPENCL="none", MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "OK" in run.stdout + run.stderr
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("RESULT "))
    got = json.loads(line[len("RESULT "):])

    from sasmodels.core import load_model
    from sasmodels.data import empty_data1D
    from sasmodels.direct_model import DirectModel

    for name in STANDALONE_MODELS:
        kernel = load_model(model_path(name))
        for p, values in zip(params[name], got[name], strict=True):
            ref = DirectModel(empty_data1D(Q), kernel)(**p)
            np.testing.assert_allclose(values, ref, rtol=1e-6, atol=0, err_msg=f"{name} {p}")


# -- user data folder and bundle names -------------------------------------------------------------------

@pytest.fixture
def user_home(tmp_path, monkeypatch):
    """A fresh user data folder (XDG_DATA_HOME; platformdirs reads it on every call) and current folder."""
    if sys.platform != "linux":
        pytest.skip("XDG_DATA_HOME decides the user data folder on Linux only")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_writers_default_to_the_user_data_folder_not_the_package(user_home):
    import sasview_grf_plugin
    from sasview_grf_plugin.ml.zoo import default_bundle_dir
    from sasview_grf_plugin.userdata import user_bundle_dir

    assert user_bundle_dir() == user_home / "data" / "sasview-grf-plugin" / "bundles"
    assert default_bundle_dir() == user_bundle_dir()
    package = Path(sasview_grf_plugin.__file__).parent
    assert package not in default_bundle_dir().parents


def test_bundle_names_user_built_before_shipped_paths_always_paths(user_home):
    from sasview_grf_plugin.ml import BundleError, load_predictor, shipped_bundles
    from sasview_grf_plugin.ml.predictor import resolve_bundle
    from sasview_grf_plugin.userdata import user_bundle_dir

    shipped = shipped_bundles()["two_phase_low"]
    assert resolve_bundle("two_phase_low") == shipped
    user = user_bundle_dir() / "two_phase_low"
    shutil.copytree(shipped, user)
    assert resolve_bundle("two_phase_low") == user
    assert load_predictor("two_phase_low").bundle.path == user
    # A folder of that name here makes the bare name ambiguous: refused, both named.
    local = Path("two_phase_low")
    shutil.copytree(shipped, local)
    with pytest.raises(BundleError, match=r"ambiguous: the directory .*work/two_phase_low and the user-built "
                                          r"bundle .*data/sasview-grf-plugin/bundles/two_phase_low"):
        load_predictor("two_phase_low")
    # ... while a path is always a path.
    for spelled in ("./two_phase_low", os.path.abspath("two_phase_low"), Path("two_phase_low")):
        assert Path(resolve_bundle(spelled)).resolve() == local.resolve()
    assert load_predictor("./two_phase_low").bundle.path.resolve() == local.resolve()
    # Without a user bundle the shipped one is the other candidate.
    shutil.rmtree(user)
    with pytest.raises(BundleError, match="ambiguous: .* and the shipped bundle"):
        resolve_bundle("two_phase_low")
    # A bare name that is only a folder here is that folder; an unknown name lists the known ones.
    shutil.move("two_phase_low", "mine")
    assert resolve_bundle("mine") == Path("mine")
    with pytest.raises(BundleError, match=r"'nothing' is neither .* known: .*three_phase_high"):
        resolve_bundle("nothing")
    with pytest.raises(BundleError, match="does not exist"):
        resolve_bundle("./nothing")


# -- SasView in a pipx / uv tool environment -------------------------------------------------------------

def test_sasview_discovers_the_plugins_in_a_pipx_style_layout(tmp_path):
    """pipx and ``uv tool`` install SasView into a venv of its own, inject this package into that venv, and
    put links to the venv's commands on PATH (``pipx inject --include-apps``, ``uv tool install
    --with-executables-from``). Here this test's own environment plays that venv: only links to its
    ``sasview`` and ``sasview-grf`` commands are on PATH, HOME is empty, no VIRTUAL_ENV and no PYTHONPATH.
    ``sasview-grf install-plugins`` runs through its link; SasView's plugin discovery runs in the interpreter
    that the ``sasview`` command starts (its shebang), as the GUI would. Building a real pipx venv needs the
    network and ~1 GB of SasView's GUI wheels, too slow for CI; the layout is what differs, not the files.
    """
    pytest.importorskip("sas.sascalc.fit.models", reason="SasView is not installed")
    venv_bin = Path(sys.executable).parent
    launcher, ours = venv_bin / "sasview", venv_bin / "sasview-grf"
    if not (launcher.is_file() and ours.is_file()):
        pytest.skip("the sasview and sasview-grf commands are not installed beside this interpreter")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for cmd in (launcher, ours):
        (bin_dir / cmd.name).symlink_to(cmd)
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(("PYTHON", "SAS", "XDG_")) or k in ("VIRTUAL_ENV", "HOME", "PATH"))}
    env.update(HOME=str(tmp_path / "home"), PATH=f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    run = subprocess.run(["sasview-grf", "install-plugins"], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    plugin_dir = tmp_path / "home" / ".local" / "share" / "SasView" / "plugin_models"
    assert f"installed {plugin_dir}/grf_two_phase.py" in run.stdout
    interpreter = launcher.read_text(encoding="utf-8").splitlines()[0][2:].strip()
    script = textwrap.dedent("""
        import json, os
        from sas.sascalc.fit import models
        from sas.system.user import get_plugin_dir
        plugins = models.find_plugin_models()
        model = plugins["grf_three_phase"]()
        y = model.evalDistribution(__import__("numpy").geomspace(0.01, 0.3, 5))
        log = os.path.join(get_plugin_dir(), "plugins.log")
        print(json.dumps({"plugins": sorted(plugins), "dir": str(get_plugin_dir()), "y": [float(v) for v in y],
                          "log": open(log).read() if os.path.exists(log) else None}))
    """)
    run = subprocess.run([interpreter, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(out["dir"]) == plugin_dir
    assert {"grf_two_phase", "grf_three_phase", "grf_two_phase_sim", "grf_three_phase_sim"} <= set(out["plugins"])
    assert out["log"] is not None and "looking for models in" in out["log"]
    assert "Traceback" not in out["log"] and "Error" not in out["log"]
    assert all(np.isfinite(out["y"])) and out["y"][0] > out["y"][-1] > 0


def test_sasview_discovers_the_standalone_files_without_the_package(tmp_path):
    """The SasView installer app's case: its Python has no sasview_grf_plugin. SasView's discovery runs here
    with the package blocked from import, on a plugin folder holding only the exported files."""
    pytest.importorskip("sas.sascalc.fit.models", reason="SasView is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SAS", "XDG_"))}
    env["HOME"] = str(tmp_path / "home")
    plugin_dir = tmp_path / "home" / ".local" / "share" / "SasView" / "plugin_models"
    export_standalone(plugin_dir)
    script = textwrap.dedent("""
        import json, os, sys

        class Block:  # the installer app's Python: this package cannot be imported
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "sasview_grf_plugin":
                    raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        from sas.sascalc.fit import models
        from sas.system.user import get_plugin_dir
        plugins = models.find_plugin_models()
        y = plugins["grf_two_phase"]().evalDistribution(np.geomspace(0.01, 0.3, 5))
        log = os.path.join(get_plugin_dir(), "plugins.log")
        print(json.dumps({"plugins": sorted(plugins), "y": [float(v) for v in y],
                          "loaded": "sasview_grf_plugin" in sys.modules,
                          "log": open(log).read() if os.path.exists(log) else None}))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"grf_two_phase", "grf_three_phase"} <= set(out["plugins"]) and not out["loaded"]
    assert out["log"] is not None and "Traceback" not in out["log"]
    assert all(np.isfinite(out["y"])) and out["y"][0] > out["y"][-1] > 0
