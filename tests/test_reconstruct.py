"""Reconstruction (sasview-grf reconstruct) and the morphology of periodic voxel structures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sasview_grf_plugin import morphology
from sasview_grf_plugin.cli import main
from sasview_grf_plugin.ensemble.levelcut import interface_area
from sasview_grf_plugin.reconstruct import (
    BOX_PER_A,
    RES_VOXELS_PER_A,
    FitSpec,
    choose_grid,
    load_fit,
    model_interface_areas,
    read_tiff,
    reconstruct,
    write_tiff,
)
from sasview_grf_plugin.simulator import InsufficientMemoryError, SimulationConfig, generate_labels


def _spec(porosity=0.3, layer_fraction=0.0, smoothing=20.0, a=50.0, **kw):
    model = "grf_three_phase" if layer_fraction > 0 else "grf_two_phase"
    return FitSpec(name="test", model=model, a=a, porosity=porosity, layer_fraction=layer_fraction,
                   smoothing=smoothing, scale=1.0, background=0.0, **kw)


# -- morphology on hand-made structures ---------------------------------------------------------------------
def test_chord_lengths_match_a_brute_force_walk_with_periodic_wrap():
    rng = np.random.default_rng(0)
    m = rng.random((9, 9, 9)) < 0.55
    m[0, 0, :] = True  # one line entirely inside: no finite chord
    expected = []
    for ax in range(3):
        rows = np.moveaxis(m, ax, -1).reshape(-1, 9)
        for row in rows:
            if row.all() or not row.any():
                continue
            start = int(np.argmin(row))  # a point outside: walk once around from there
            run = 0
            for i in range(1, 10):
                if row[(start + i) % 9]:
                    run += 1
                elif run:
                    expected.append(run)
                    run = 0
    got = morphology.chord_lengths(m, 2.0)
    np.testing.assert_array_equal(np.sort(got), 2.0 * np.sort(expected))


def test_surface_area_of_a_cube_is_its_face_count_times_two_thirds():
    m = np.zeros((20, 20, 20), dtype=bool)
    m[3:9, 5:11, 14:20] = True  # a 6^3 cube touching the box's face z = 19 (periodic: not a boundary)
    m[:, :, 0] = False
    s = morphology.surface_area_density(m, 0.5)
    faces = 6 * 36
    assert s == pytest.approx(faces * 0.25 * (2.0 / 3.0) / (20**3 * 0.125), rel=1e-12)


def test_percolation_follows_the_periodic_box():
    n = 12
    rod = np.zeros((n, n, n), dtype=bool)
    rod[:, 4, 4] = True  # wraps around x: an infinite rod
    assert morphology.percolation(rod) == {"percolating_fraction": 1.0, "largest_fraction": 1.0, "n_clusters": 1}
    short = rod.copy()
    short[n - 1, 4, 4] = False  # one gap: a finite rod
    assert morphology.percolation(short)["percolating_fraction"] == 0.0
    corner = np.zeros((n, n, n), dtype=bool)
    for x in (0, 1, n - 1):  # a blob split by the box faces in all three directions: one finite cluster
        for y in (0, n - 1):
            for z in (0, 1, n - 1):
                corner[x, y, z] = True
    p = morphology.percolation(corner)
    assert p["n_clusters"] == 1 and p["percolating_fraction"] == 0.0 and p["largest_fraction"] == 1.0
    both = rod | corner
    both[:, 4, 4] = True
    p = morphology.percolation(both)
    assert p["n_clusters"] == 2
    assert p["percolating_fraction"] == pytest.approx(n / (n + corner.sum()))


def test_volume_fractions_are_exact_counts():
    cfg = SimulationConfig(grid_size=48, voxel_size=0.5, q_min=0.1, q_max=1.0, smoothing_sigma=1.5)
    lab = generate_labels(cfg, 2.0, 0.37, 0.3, seed=4, backend="numpy")
    n3 = 48**3
    pore = round(0.37 * 0.7 * n3)
    np.testing.assert_allclose(morphology.volume_fractions(lab) * n3,
                               [pore, round(0.37 * n3) - pore, n3 - round(0.37 * n3)], rtol=0, atol=1e-9)


# -- interface area against the model -----------------------------------------------------------------------
def test_voxel_area_of_the_level_cut_is_rices_formula():
    # sigma = 0: the exact interface area per volume is Rice's S = (2/pi) sqrt(lambda) exp(-t^2/2) / a.
    # a = 10 voxels; 4 boxes of 128^3 give a spread of the mean well below 1 %.
    a = 10.0
    cfg = SimulationConfig(grid_size=128, voxel_size=1.0, q_min=0.1, q_max=1.0, smoothing_sigma=0.0)
    s = [morphology.surface_area_density(generate_labels(cfg, a, 0.3, seed=k, backend="numpy") == 0, 1.0)
         for k in range(4)]
    assert np.mean(s) == pytest.approx(interface_area(0.3) / a, rel=0.05)
    # The intercept estimator is no voxel-face count: that one is 3/2 too large for an isotropic surface.
    assert np.mean(s) * 1.5 > 1.3 * interface_area(0.3) / a


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known shortfall of the format-2 three-phase table (issue 22, open): its "
                   "invariant correction scales the layer curve's high-q continuation, which moves the pore's "
                   "Porod constant: the voxel pore area is 10 % above the model's here (format 1: within 5 %)")
def test_voxel_areas_of_smoothed_three_phases_match_the_models_porod_constant():
    spec = _spec(porosity=0.33, layer_fraction=0.22, smoothing=20.0)  # sigma/a = 0.4, a table-accurate set
    rec = reconstruct(spec, grid=128, realizations=2, voxel=spec.a / 8, seed=5, progress=False, images=False)
    phases = rec.morphology["phases"]
    assert set(rec.model_areas) == {"pore", "layer", "solid", "pore+layer"}
    # The solid's boundary (the first threshold) and the pore's (the second): within 5 % at a = 8 voxels.
    assert abs(phases["solid"]["surface_area_deviation"]) < 0.05
    assert abs(phases["pore"]["surface_area_deviation"]) < 0.05


def test_model_interface_area_without_smoothing_is_rices_formula():
    spec = _spec(porosity=0.3, smoothing=0.0, a=40.0)
    assert model_interface_areas(spec)["solid"] == pytest.approx(interface_area(0.3) / 40.0, rel=1e-3)


# -- the grid -----------------------------------------------------------------------------------------------
def test_grid_choice_respects_the_structure_and_centres_the_data():
    spec = _spec(a=50.0, q_range=(0.002, 0.3))
    g = choose_grid(spec, 256)
    assert BOX_PER_A * 50.0 / 256 <= g.voxel <= 50.0 / RES_VOXELS_PER_A
    lo, hi = g.q_window
    assert lo == pytest.approx(2 * math.pi / (256 * g.voxel)) and hi == pytest.approx(0.25 * math.pi / g.voxel)
    # Narrow data inside what the box can hold: the window is centred on it (geometric means agree).
    narrow = choose_grid(_spec(a=50.0, q_range=(0.01, 0.05)), 256)
    assert math.sqrt(narrow.q_window[0] * narrow.q_window[1]) / math.sqrt(0.01 * 0.05) == pytest.approx(1, rel=0.3)
    assert choose_grid(spec, 256, voxel=3.0).voxel == 3.0
    assert choose_grid(spec, 256, box=1024.0).voxel == 4.0
    with pytest.raises(ValueError, match="not both"):
        choose_grid(spec, 256, voxel=3.0, box=1024.0)
    small = choose_grid(spec, 64)  # 64 voxels cannot hold 20 a at a / 5: it says so
    assert small.voxel == pytest.approx(10.0) and "warning" in small.reasons[0]
    # A thin three-phase layer (mean thickness 4 Å) asks for voxels of 2 Å, before the box rule.
    thin = choose_grid(_spec(a=50.0, porosity=0.3, layer_fraction=0.05, q_range=(0.002, 0.3)), 256,
                       layer_thickness=4.0)
    assert thin.voxel == pytest.approx(2.0) and "layer" in thin.reasons[0] and "warning" in thin.reasons[0]


# -- realizations' mean I(q) against the model --------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("layer_fraction", "grid"), [(0.0, 100), (0.22, 144)])
def test_mean_intensity_agrees_with_the_model_inside_the_window(layer_fraction, grid):
    # 12 boxes of at least 20 a (a = 5 voxels; the three-phase layer asks for a finer voxel, hence the larger
    # grid). Inside the window (2 pi/L to pi/(4 dx)) the binned mean must scatter around the model as its standard
    # error says: chi^2 per bin about 1 and few bins beyond 2 s.e.; its precision-weighted mean deviation must be
    # zero within 3 of its standard errors plus the table's documented accuracy at this set (2 %). A wrong
    # intensity unit, a q off by a factor or the box's Eq. 4 smearing each fail this by far.
    spec = _spec(porosity=0.33, layer_fraction=layer_fraction, smoothing=20.0, a=50.0)
    rec = reconstruct(spec, grid=grid, realizations=12, seed=11, progress=False, images=False, morph=False)
    ag = rec.agreement
    assert rec.grid.box >= BOX_PER_A * spec.a * (1 - 1e-9)
    assert ag["n_bins"] >= 35
    assert ag["chi2_per_bin"] < 1.8
    assert ag["within_2se"] >= 0.85
    assert abs(ag["bias"]) < 3 * ag["bias_se"] + 0.02


def test_intensity_is_in_absolute_units_with_scale_and_background():
    spec = _spec(porosity=0.3, smoothing=15.0, a=40.0)
    base = reconstruct(spec, grid=40, realizations=1, seed=2, progress=False, images=False, morph=False,
                       voxel=8.0)
    spec2 = _spec(porosity=0.3, smoothing=15.0, a=40.0)
    spec2.scale, spec2.background = 3.0, 0.5
    other = reconstruct(spec2, grid=40, realizations=1, seed=2, progress=False, images=False, morph=False, voxel=8.0)
    np.testing.assert_allclose(np.asarray(other.curve["mean"]), 3.0 * np.asarray(base.curve["mean"]) + 0.5,
                               rtol=1e-10)
    np.testing.assert_allclose(np.asarray(other.curve["model"]), 3.0 * np.asarray(base.curve["model"]) + 0.5,
                               rtol=1e-10)


# -- seeds, memory, files, CLI ------------------------------------------------------------------------------
def test_same_seed_same_volumes_and_curves(tmp_path):
    spec = _spec(porosity=0.4, layer_fraction=0.2, smoothing=12.0, a=30.0)
    kw = dict(grid=32, realizations=2, voxel=6.0, progress=False, images=False)
    r1 = reconstruct(spec, out=tmp_path / "a", seed=7, **kw)
    r2 = reconstruct(spec, out=tmp_path / "b", seed=7, **kw)
    r3 = reconstruct(spec, out=tmp_path / "c", seed=8, **kw)
    for k in range(2):
        name = f"labels_{k:03d}.npy"
        np.testing.assert_array_equal(np.load(tmp_path / "a" / name), np.load(tmp_path / "b" / name))
        assert not np.array_equal(np.load(tmp_path / "a" / name), np.load(tmp_path / "c" / name))
    assert not np.array_equal(np.load(tmp_path / "a" / "labels_000.npy"), np.load(tmp_path / "a" / "labels_001.npy"))
    assert r1.curve["mean"] == r2.curve["mean"] and r1.curve["mean"] != r3.curve["mean"]
    assert r1.morphology == r2.morphology


def test_memory_is_checked_before_a_large_grid_starts(tmp_path):
    spec = _spec()
    with pytest.raises(InsufficientMemoryError, match=r"grid 512\^3 needs about .* GiB .*--max-memory"):
        reconstruct(spec, out=tmp_path / "x", grid=512, realizations=1, max_memory=2**30, progress=False)
    assert not (tmp_path / "x").exists()  # refused before anything was made


def test_tiff_round_trip_keeps_labels_and_voxel_size(tmp_path):
    lab = np.random.default_rng(1).integers(0, 3, size=(8, 9, 10), dtype=np.uint8)
    write_tiff(tmp_path / "v.tif", lab, 4.25)
    back, voxel = read_tiff(tmp_path / "v.tif")
    np.testing.assert_array_equal(back, lab)
    assert voxel == 4.25
    import tifffile

    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        assert tif.imagej_metadata["unit"] == "angstrom"
        x_res = tif.pages[0].tags["XResolution"].value
        assert x_res[1] / x_res[0] == pytest.approx(4.25, rel=1e-6)  # pixel width in Å for ImageJ


def test_load_fit_reads_smoothing_in_angstrom_or_as_a_ratio():
    base = {"name": "s", "case": "three_phase_low", "q_range": [0.01, 0.3],
            "values": {"a": 60.0, "porosity": 0.3, "layer_fraction": 0.2, "scale": 2.0, "background": 0.1}}
    a = load_fit({**base, "values": {**base["values"], "smoothing": 18.0}})
    b = load_fit([{**base, "values": {**base["values"], "smoothing_ratio": 0.3}}])
    c = load_fit({**base, "fixed": {"smoothing": 18.0}})
    assert a.smoothing == pytest.approx(18.0) and b.smoothing == pytest.approx(18.0) and c.smoothing == 18.0
    assert a.model == "grf_three_phase" and a.densities == (0.0, 0.65, 1.0) and a.q_range == (0.01, 0.3)
    with pytest.raises(ValueError, match="no 'smoothing'"):
        load_fit(base)
    with pytest.raises(ValueError, match="not a fit result"):
        load_fit({"a": 1})


def test_cli_reconstructs_a_fit_json(tmp_path, capsys):
    fit = [{"name": "sample", "case": "two_phase_high", "mode": "seed", "q_range": [0.005, 0.2],
            "values": {"a": 40.0, "porosity": 0.7, "smoothing": 12.0, "scale": 5.0, "background": 0.02}}]
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(fit))
    out = tmp_path / "rec"
    rc = main(["reconstruct", str(path), "--grid", "32", "--realizations", "2", "--out", str(out), "--seed", "1",
               "--backend", "numpy", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "voxel" in text and "q window" in text and "wrote" in text
    for name in ("labels_000.npy", "labels_001.tif", "slices.png", "render.png", "render.html", "intensity.png",
                 "chords.png"):
        assert (out / name).stat().st_size > 0
    rec = json.loads((out / "reconstruction.json").read_text())
    frac = rec["morphology"]["phases"]["pore"]["volume_fraction"]["mean"]
    assert frac == pytest.approx(round(0.7 * 32**3) / 32**3)  # the pore fraction of the fit, not its mirror
    labels = np.load(out / "labels_000.npy")
    assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 2}
    back, voxel = read_tiff(out / "labels_001.tif")
    np.testing.assert_array_equal(back, np.load(out / "labels_001.npy"))
    assert voxel == pytest.approx(rec["grid"]["voxel_A"])


def test_cli_refuses_a_non_fit_json(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"something": 1}))
    rc = main(["reconstruct", str(path), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_fits_a_data_file_first(tmp_path, capsys):
    import os

    import sasdata

    path = os.path.join(os.path.dirname(sasdata.__file__), "example_data", "1d_data",
                        "AOT_Microemulsion-Core_Contrast.xml")
    out = tmp_path / "rec"
    rc = main(["reconstruct", path, "--grid", "32", "--realizations", "1", "--out", str(out), "--seed", "2",
               "--no-progress", "--no-volumes"])
    assert rc == 0
    fit = json.loads((out / "fit.json").read_text())[0]
    rec = json.loads((out / "reconstruction.json").read_text())
    assert rec["spec"]["a"] == pytest.approx(fit["values"]["a"])
    assert rec["spec"]["porosity"] == pytest.approx(fit["values"]["porosity"])
    assert (out / "intensity.png").stat().st_size > 0 and not list(out.glob("*.npy"))


def test_pore_size_distribution_of_a_slab_and_a_ball():
    n = 40
    slab = np.zeros((n, n, n), dtype=bool)
    slab[:, :, 3:13] = True  # a periodic slab 10 voxels thick: spheres up to radius 5 fit, none larger
    r, f = morphology.pore_size_distribution(slab, 2.0, radii=[1, 3, 4.5, 5, 6])
    np.testing.assert_array_equal(r, [2, 6, 9, 10, 12])
    np.testing.assert_array_equal(f, [1, 1, 1, 0, 0])
    z, y, x = np.mgrid[:n, :n, :n]
    def wrap(u, c):  # periodic distance along one axis
        return (u - c + n // 2) % n - n // 2

    ball = wrap(x, 38) ** 2 + wrap(y, 20) ** 2 + wrap(z, 1) ** 2 <= 6.0**2  # radius 6, across two periodic faces
    r, f = morphology.pore_size_distribution(ball, 1.0, radii=[0.5, 2, 4, 5.5, 6, 7])
    assert f[0] == 1.0 and np.all(f[1:4] > 0.75) and np.all(f[4:] == 0)  # to within a voxel of the radius


# -- the spectral families (broad, peaked; level cuts and bands) ------------------------------------------------
_FAMILIES = [
    # box >= the k = 0 variance rule (22 a for alpha = 1.5), a resolved by 8 voxels
    ("grf_two_phase_broad", {"a": 50.0, "alpha": 1.5, "porosity": 0.3}, 176, 6.25),
    ("grf_two_phase_peaked", {"d": 200.0, "xi_over_d": 0.5, "porosity": 0.3}, 120, None),
    ("grf_three_phase_broad", {"a": 50.0, "alpha": 1.5, "layer_volume": 0.2, "pore_share": 0.4}, 176, 6.25),
    ("grf_three_phase_peaked", {"d": 200.0, "xi_over_d": 0.5, "layer_volume": 0.3, "pore_share": 0.4}, 160, 12.5),
]


def test_band_models_read_back_their_volumes():
    spec = load_fit({"model": "grf_three_phase_peaked",
                     "values": {"d": 200.0, "xi_over_d": 0.5, "layer_volume": 0.3, "pore_share": 0.4}})
    assert spec.spectrum == "peaked" and spec.band and spec.length_name == "d" and spec.smoothing == 0
    assert spec.porosity * (1 - spec.layer_fraction) == pytest.approx(0.7 * 0.4)  # the pore
    assert spec.porosity * spec.layer_fraction == pytest.approx(0.3)  # the layer
    from sasview_grf_plugin.reconstruct import _load_model, _model_pars

    pars = _model_pars(spec, _load_model(spec.model), {})
    assert pars["layer_volume"] == pytest.approx(0.3) and pars["pore_share"] == pytest.approx(0.4)
    assert pars["d"] == 200.0 and pars["xi_over_d"] == 0.5
    rough = load_fit({"model": "grf_two_phase_broad", "values": {"a": 50.0, "alpha": 0.6, "porosity": 0.3}})
    assert all(math.isnan(v) for v in model_interface_areas(rough).values())  # a fractal surface: no area


def test_band_labels_are_the_fields_own_quantiles():
    spec = load_fit({"model": "grf_three_phase_broad",
                     "values": {"a": 30.0, "alpha": 2.0, "layer_volume": 0.2, "pore_share": 0.4}})
    rec = reconstruct(spec, grid=40, realizations=1, voxel=6.0, seed=3, progress=False, images=False)
    phases = rec.morphology["phases"]
    n3 = 40**3
    assert phases["layer"]["volume_fraction"]["mean"] * n3 == pytest.approx(round(0.2 * n3), abs=1)
    assert phases["pore"]["volume_fraction"]["mean"] * n3 == pytest.approx(round(0.8 * 0.4 * n3), abs=1)
    # A band: the layer separates pore from solid (no face contact between them).
    from sasview_grf_plugin.reconstruct import _generate, _to_simulator
    from sasview_grf_plugin.simulator import get_backend
    from sasview_grf_plugin.simulator.seeds import as_seed_sequence

    cfg, a_nm = _to_simulator(spec, rec.grid)
    lab = _generate(spec, cfg, a_nm, as_seed_sequence(3), get_backend("numpy"))
    for ax in range(3):
        pair = {tuple(x) for x in np.stack([lab.ravel(), np.roll(lab, 1, axis=ax).ravel()], 1)}
        assert (0, 2) not in pair and (2, 0) not in pair


@pytest.mark.slow
@pytest.mark.parametrize(("model", "values", "grid", "voxel"), _FAMILIES)
def test_mean_intensity_agrees_for_every_spectrum(model, values, grid, voxel):
    # As for the paper's spectrum: chi^2 per bin about 1 inside the window, and no bias beyond the statistical
    # error plus 2 % (the exact models' own accuracy is far better; 2 % covers the box's k = 0 cell, < 1 %).
    spec = load_fit({"name": model, "model": model, "values": {**values, "scale": 1.0, "background": 0.0}})
    rec = reconstruct(spec, grid=grid, realizations=6, voxel=voxel, seed=11, progress=False, images=False,
                      morph=False)
    ag = rec.agreement
    assert ag["n_bins"] >= 35
    assert ag["chi2_per_bin"] < 1.8
    assert ag["within_2se"] >= 0.85
    assert abs(ag["bias"]) < 3 * ag["bias_se"] + 0.02


@pytest.mark.slow
def test_voxel_areas_of_a_broad_band_are_rices_formula():
    # alpha = 2 (smooth: Rice's lambda finite), automatic grid: a / 5, box 25.6 a.
    spec = load_fit({"model": "grf_three_phase_broad",
                     "values": {"a": 50.0, "alpha": 2.0, "layer_volume": 0.2, "pore_share": 0.4}})
    rec = reconstruct(spec, grid=128, realizations=2, seed=5, progress=False, images=False)
    for phase in ("pore", "layer", "solid"):
        assert abs(rec.morphology["phases"][phase]["surface_area_deviation"]) < 0.05, phase


@pytest.mark.opencl
@pytest.mark.parametrize("model, values", [
    ("grf_three_phase", {"a": 40.0, "porosity": 0.4, "layer_fraction": 0.25, "smoothing": 12.0}),
    ("grf_three_phase_peaked", {"d": 200.0, "xi_over_d": 0.5, "layer_volume": 0.3, "pore_share": 0.4}),
])
def test_reconstruct_runs_on_the_opencl_backend(model, values):
    pytest.importorskip("pyopencl")
    pytest.importorskip("pyvkfft.opencl")
    from sasview_grf_plugin.simulator.opencl import OpenCLBackend, list_devices

    try:
        devices = list_devices()
    except RuntimeError as exc:
        pytest.skip(f"no OpenCL platform or device: {exc}")
    pocl = [d for d in devices if "portable computing language" in d.platform.name.lower()]
    be = OpenCLBackend.for_device(pocl[0] if pocl else None)
    spec = load_fit({"model": model, "values": values})
    rec = reconstruct(spec, grid=32, realizations=2, seed=1, backend=be, progress=False, images=False)
    assert rec.backend == "opencl"
    n3 = 32**3
    pore = rec.morphology["phases"]["pore"]["volume_fraction"]
    assert pore["std"] == 0.0
    assert pore["mean"] * n3 == pytest.approx(round(spec.porosity * (1 - spec.layer_fraction) * n3), abs=1)
    assert np.all(np.isfinite(rec.curve["mean"])) and np.all(np.asarray(rec.curve["mean"]) > 0)


def test_fit_json_of_any_model_and_of_a_sum_model_is_read():
    # `fit --model NAME --plus power_law` writes the sum model as the case and its parameters with A_/B_
    # prefixes; the structure is the A part (regression: read as grf_two_phase, "has no 'a'").
    from sasview_grf_plugin.reconstruct import load_fit

    result = {"case": "grf_two_phase_peaked+power_law", "values": {
        "scale": 1.0, "background": 0.01, "A_scale": 0.05, "A_d": 94.0, "A_xi_over_d": 0.17, "A_porosity": 0.4,
        "B_scale": 1e-5, "B_power": 4.0}, "fixed": {"A_sld_pore": 0.0, "A_sld_solid": 10.0}}
    spec = load_fit(result)
    assert spec.model == "grf_two_phase_peaked" and spec.spectrum == "peaked"
    assert spec.a == 94.0 and spec.porosity == 0.4 and spec.scale == 0.05
    assert spec.slds == {"sld_pore": 0.0, "sld_solid": 10.0}
    broad = load_fit({"case": "grf_two_phase_broad", "values": {"a": 30.0, "alpha": 0.7, "porosity": 0.2,
                                                               "scale": 1.0, "background": 0.0}})
    assert broad.model == "grf_two_phase_broad" and broad.shape == {"alpha": 0.7} and broad.smoothing == 0.0


def test_reconstruction_json_is_strict_json(tmp_path):
    out = tmp_path / "rec"
    spec = _spec(porosity=0.3, smoothing=20.0)
    reconstruct(spec, grid=32, realizations=1, voxel=spec.a / 5, seed=1, progress=False, images=False, out=out)
    json.loads((out / "reconstruction.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
