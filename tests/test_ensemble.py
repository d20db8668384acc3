"""The ensemble-mean layer: exact level cut and band curves, the table build, the table evaluator."""

import json
import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from sasview_grf_plugin.ensemble import levelcut as lc
from sasview_grf_plugin.ensemble.build import EnsembleSpec, build_realizations, compute_realization, load_sums
from sasview_grf_plugin.ensemble.table import EnsembleTable, TableError, load_table
from sasview_grf_plugin.ensemble.tabulate import tabulate
from sasview_grf_plugin.simulator import SimulationConfig, generate_structure, radial_power_spectrum

Q_LOG = np.geomspace(1e-4, 1e5, 6000)


def porod_integral(q, f):
    """int_0^inf q^2 F dq on a log grid, plus the exact tails (flat below, q^-4 above)."""
    x = np.log(q)
    return np.trapezoid(q**3 * f, x) + q[0] ** 3 * f[0] / 3 + f[-1] * q[-1] ** 3


# -- exact level cut and bands ------------------------------------------------------------------------

# One level cut and one band in the fast suite; the other fractions (about 3 s of quadrature each) under 'slow'.
_SLOW = pytest.mark.slow


@pytest.mark.parametrize(("lo", "hi"), [pytest.param(0.0, 0.02, marks=_SLOW), (0.0, 0.3),
                                        pytest.param(0.0, 0.5, marks=_SLOW), pytest.param(0.0, 0.9, marks=_SLOW),
                                        (0.1, 0.3), pytest.param(0.5, 0.98, marks=_SLOW)])
def test_levelcut_and_band_invariant_porod_and_plateau(lo, hi):
    f = lc.band_curve(Q_LOG, lo, hi)
    phi = hi - lo
    assert porod_integral(Q_LOG, f) == pytest.approx(lc.porod_invariant(phi), rel=1e-4)
    # Porod's law with Rice's interface area, and a flat plateau at q -> 0.
    assert f[-1] * Q_LOG[-1] ** 4 == pytest.approx(2 * math.pi * lc.interface_area(lo, hi), rel=1e-4)
    assert f[0] > 0 and abs(f[1] / f[0] - 1) < 1e-6


def test_levelcut_babinet_and_two_thresholds_against_bivariate_normal():
    q = np.geomspace(0.01, 30, 50)
    # (1 - 0.8 is 0.2 only to within rounding: hence 1e-9, not exact equality)
    np.testing.assert_allclose(lc.levelcut_curve(q, 0.2), lc.levelcut_curve(q, 0.8), rtol=1e-9)
    # The band correlation equals the bivariate normal rectangle probability minus phi^2.
    lo, hi = 0.15, 0.45
    r = np.array([0.05, 0.3, 1.0, 2.5])
    rho = lc.grf_correlation(r)[0]
    c, _ = lc.band_correlation(r, lo, hi)
    t_lo, t_hi = norm.ppf(lo), norm.ppf(hi)
    for ri, ci, p in zip(r, c, rho, strict=True):
        mvn = multivariate_normal(mean=[0, 0], cov=[[1, p], [p, 1]])
        both = (mvn.cdf([t_hi, t_hi]) - 2 * mvn.cdf([t_hi, t_lo]) + mvn.cdf([t_lo, t_lo]))
        assert ci == pytest.approx(both - (hi - lo) ** 2, abs=2e-6), ri


@pytest.mark.slow  # 24 simulated boxes
def test_levelcut_equals_the_simulated_level_cut():
    # The simulator's own sigma = 0 two-phase structure, 24 boxes 16 a wide (a = 8 voxels), raw shells (no
    # Eq. 4 window): the mean per bin equals the exact curve within 4 standard errors of the mean, where
    # aliasing of the voxels is negligible (q a < 6).
    cfg = SimulationConfig(grid_size=128, voxel_size=0.125, q_min=0.1, q_max=1.0, smoothing_sigma=0.0,
                           densities=(1.0, 0.0, 0.0), dtype="float32")
    rows = []
    for s in range(24):
        q, i, n = radial_power_spectrum(generate_structure(cfg, 1.0, 0.3, seed=s), cfg.voxel_size)
        rows.append(i * n)
    rows = np.array(rows)
    exact = lc.levelcut_curve(q, 0.3)
    edges = np.geomspace(1.0, 6.0, 12)
    b = np.digitize(q, edges)
    for k in range(1, len(edges)):
        m = b == k
        ratio = rows[:, m].sum(1) / (exact[m] * n[m]).sum()
        se = ratio.std(ddof=1) / math.sqrt(len(ratio))
        assert abs(ratio.mean() - 1) < 4 * se + 0.005, (q[m].mean(), ratio.mean(), se)


# -- the shipped table --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def table():
    return load_table()


def test_table_two_phase_without_smoothing_is_the_level_cut(table):
    q = np.geomspace(0.05, 50, 400)
    for eps in (0.03, 0.12, 0.27, 0.44, 0.5, 0.73):  # mostly between the porosity nodes
        f = table.partials(q, eps, 0.0, 0.0)[0]
        np.testing.assert_allclose(f, lc.levelcut_curve(q, eps), rtol=0.01)


@pytest.mark.parametrize(("eps", "nu", "s", "sld", "tol"), [
    (0.3, 0.0, 0.0, (0.0, 0.0, 1.0), 0.01), (0.35, 0.0, 0.3, (2.0, 2.0, -1.0), 0.01),
    (0.5, 0.3, 0.3, (0.0, 0.65, 1.0), 0.01), (0.7, 0.4, 0.6, (3.0, -1.0, 0.5), 0.01),
    (0.2, 0.25, 0.5, (0.0, 0.65, 1.0), 0.01),
    # Heavy smoothing (sigma/a > 0.9): measured +0.9 to +1.4 % for two phases and up to +2.1 % for three
    # (docs/benchmarks.md): the part below the 18 a box's first wave number (q a < 0.35) is a
    # continuation, and these structures' correlations reach farthest. 2.5 % bounds it.
    (0.6, 0.0, 1.1, (0.0, 0.0, 5.0), 0.025), (0.4, 0.5, 1.0, (0.0, 1.0, 0.4), 0.025),
])
def test_table_porod_invariant_matches_volume_fractions(table, eps, nu, s, sld, tol):
    # int q^2 I dq = 2 pi^2 sum_{i<j} phi_i phi_j (rho_i - rho_j)^2 for every contrast, both signs.
    d_p, d_l = sld[0] - sld[2], sld[1] - sld[2]
    f = table.intensity(Q_LOG, eps, nu, s, d_p, d_l)
    phi = (eps * (1 - nu), eps * nu, 1 - eps)
    expected = 2 * math.pi**2 * sum(phi[i] * phi[j] * (sld[i] - sld[j]) ** 2
                                    for i in range(3) for j in range(i + 1, 3))
    assert porod_integral(Q_LOG, f) == pytest.approx(expected, rel=tol)


def test_table_porod_law_at_high_q(table):
    q = np.geomspace(30, 3000, 50)
    for eps, s in ((0.3, 0.0), (0.3, 0.4), (0.5, 1.2)):
        q4 = q**4 * table.partials(q, eps, 0.0, s)[0]
        assert np.ptp(q4) / np.mean(q4) < 0.02


def test_table_is_smooth_in_every_parameter_and_deterministic(table):
    rng = np.random.default_rng(5)
    q = np.geomspace(0.02, 20, 120)
    for _ in range(6):
        eps = rng.uniform(0.05, 0.95)
        nu = rng.uniform(0.05, 0.55)
        s = rng.uniform(0.15, 1.2)
        base = np.array([eps, nu, s])
        for k in range(3):
            slopes = []
            for h in (1e-3, 1e-5):
                step = np.zeros(3)
                step[k] = h * base[k]
                up = table.intensity(q, *(base + step), 1.0, 0.5)
                down = table.intensity(q, *(base - step), 1.0, 0.5)
                slopes.append((up - down) / (2 * step[k]))
            rel = np.abs(slopes[0] - slopes[1]) / np.maximum(np.abs(slopes[1]), 1e-300)
            assert np.median(rel) < 0.01, (base, k)
    a = table.intensity(q, 0.41, 0.23, 0.52, 1.0, 0.4)
    table._cache.clear()
    assert np.array_equal(a, table.intensity(q, 0.41, 0.23, 0.52, 1.0, 0.4))


def test_three_phase_formula_with_layer_as_dense_as_the_pore_is_the_two_phase_curve(table):
    # d_p = d_l: pore + layer is one phase; the combination must reduce to F_AA exactly.
    q = np.geomspace(0.01, 100, 200)
    two = table.intensity(q, 0.4, 0.0, 0.5, 1.0, 0.0)
    three = table.intensity(q, 0.4, 0.3, 0.5, 1.0, 1.0)
    np.testing.assert_allclose(three, two, rtol=1e-12)
    # d_l = 0: only the pore scatters against solid + layer.
    np.testing.assert_allclose(table.intensity(q, 0.4, 0.3, 0.5, 2.0, 0.0), 4.0 * table.partials(q, 0.4, 0.3, 0.5)[1],
                               rtol=1e-12)


def test_table_refuses_parameters_outside_its_domain(table):
    q = np.array([0.1, 1.0])
    with pytest.raises(ValueError, match="porosity 0.995 is outside"):
        table.partials(q, 0.995, 0.0, 0.2)
    with pytest.raises(ValueError, match=r"smoothing/a = 2 is outside the two-phase domain"):
        table.partials(q, 0.3, 0.0, 2.0)
    with pytest.raises(ValueError, match=r"smoothing/a = 0.05 is outside the three-phase domain"):
        table.partials(q, 0.3, 0.2, 0.05)
    with pytest.raises(ValueError, match="layer_fraction 0.8 is outside"):
        table.partials(q, 0.3, 0.8, 0.5)
    with pytest.raises(ValueError, match="q must be finite and >= 0"):
        table.partials(np.array([-0.1]), 0.3, 0.0, 0.5)
    with pytest.raises(ValueError, match="porosity must be finite"):
        table.partials(q, float("nan"), 0.0, 0.5)


def test_corrupt_or_missing_table_file_gives_a_clear_error(tmp_path):
    with pytest.raises(TableError, match="not found"):
        EnsembleTable(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(TableError, match="cannot read"):
        EnsembleTable(bad)
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_knots=np.arange(10.0))
    with pytest.raises(TableError, match="missing"):
        EnsembleTable(partial)
    # A pickled object array in an otherwise valid table must never be loaded (allow_pickle=False).
    with np.load(load_table().path) as z:
        arrays = {k: z[k] for k in z.files}
    hostile = tmp_path / "hostile.npz"
    np.savez(hostile, **{**arrays, "domain": np.array([object()] * 8, dtype=object)})
    with pytest.raises(TableError, match="Object arrays cannot be loaded"):
        EnsembleTable(hostile)
    # Knots and domain that disagree (the spline would be NaN there) are refused at load.
    wide = tmp_path / "wide.npz"
    np.savez(wide, **{**arrays, "domain": np.array([0.001, 0.999, *arrays["domain"][2:]])})
    with pytest.raises(TableError, match="porosity domain .* exceeds its knots"):
        EnsembleTable(wide)


def test_card_describes_the_shipped_table(table):
    import hashlib

    card = json.loads((table.path.parent / "card.json").read_text())
    assert card["sha256"] == hashlib.sha256(table.path.read_bytes()).hexdigest()
    # The domain the issue asks for, and the card's nodes are the table's domain.
    assert table.porosity_range == (0.02, 0.98) and table.layer_range == (0.02, 0.6)
    assert table.smoothing2_range == (0.0, 1.25) and table.smoothing3_range == (0.1, 1.25)
    nodes = card["nodes"]
    assert (nodes["porosity"][0], nodes["porosity"][-1]) == table.porosity_range
    assert (nodes["layer_fraction"][0], nodes["layer_fraction"][-1]) == table.layer_range
    assert (nodes["smoothing_three_phase"][0], nodes["smoothing_three_phase"][-1]) == table.smoothing3_range


# -- the build ----------------------------------------------------------------------------------------

TINY = EnsembleSpec(grid_size=32, voxels_per_a=4.0, porosity=(0.2, 0.4, 0.5, 0.6, 0.8),
                    smoothing=(0.25, 0.5, 0.8, 1.25), layer_fraction=(0.1, 0.25, 0.4, 0.6), n_bins=12, seed=3)


def test_build_is_resumable_and_reproducible(tmp_path):
    made = build_realizations(tmp_path / "b", 2, TINY, progress=False)
    assert made == [0, 1]
    made = build_realizations(tmp_path / "b", 3, progress=False)  # the stored spec is used
    assert made == [2]
    spec, sums = load_sums(tmp_path / "b")
    assert spec == TINY and sums["bb"].shape == (3, 5, 4, 4, 12)
    again = compute_realization(TINY, 1)
    for k, v in again.items():
        np.testing.assert_array_equal(sums[k][1], v)
    with pytest.raises(ValueError, match="another spec"):
        build_realizations(tmp_path / "b", 4, EnsembleSpec(grid_size=16), progress=False)


def test_build_sums_are_spectra_of_indicators_of_the_right_volume_fractions():
    # Parseval: the binned |FFT|^2 of an indicator of volume fraction phi sums to at most phi (1 - phi) V.
    # For smooth interfaces (level cuts LC, LB and the two-phase A) at most ~10 % of it lies outside the
    # binned sphere |k| <= N/2 or is lost to the one-voxel partial-volume ramp (measured 5-7 % here);
    # thin layers lose more (their variance lies at high q), so only the upper bound holds for them.
    out = compute_realization(TINY, 0)
    vol = TINY.box**3
    eps = np.array(TINY.porosity)[:, None]
    nu = np.array(TINY.layer_fraction)[None, :]
    phi_b, phi_l = eps * (1 - nu), eps * nu

    def share(key, phi):
        return out[key].sum(-1) / (phi * (1 - phi) * vol)

    for key, phi in (("lc", eps[:, 0]), ("aa", eps), ("lb", phi_b)):
        assert np.all((share(key, phi) > 0.9) & (share(key, phi) <= 1.0)), key
    for key, phi in (("bb", phi_b[:, None, :]), ("ll", phi_l[:, None, :]), ("band", phi_l)):
        assert np.all((share(key, phi) > 0.0) & (share(key, phi) <= 1.0)), key


def test_corrupt_chunks_and_specs_give_clear_errors(tmp_path):
    build_realizations(tmp_path / "b", 1, TINY, progress=False)
    (tmp_path / "b" / "r000001.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"r000001.npz is unreadable .* delete it and rerun"):
        load_sums(tmp_path / "b")
    # Lists and tuples make the same spec (a resumed build must not be refused for the type).
    assert EnsembleSpec(porosity=list(TINY.porosity)) == EnsembleSpec(porosity=TINY.porosity)
    with pytest.raises(ValueError, match="n_realizations must be >= 1"):
        build_realizations(tmp_path / "new", 0, TINY, progress=False)
    assert not (tmp_path / "new").exists()


def test_cli_ensemble_build_resumes_and_refuses_spec_changes(tmp_path, capsys):
    from sasview_grf_plugin.cli import main

    out = tmp_path / "cli"
    assert main(["ensemble", "build", "--out", str(out), "--realizations", "1", "--grid-size", "16",
                 "--voxels-per-a", "4", "--no-progress"]) == 0
    assert "made 1 realization(s)" in capsys.readouterr().out
    assert main(["ensemble", "build", "--out", str(out), "--realizations", "2", "--no-progress"]) == 0
    assert "made 1 realization(s)" in capsys.readouterr().out
    assert main(["ensemble", "build", "--out", str(out), "--realizations", "3", "--grid-size", "32"]) == 2
    assert "its spec is fixed" in capsys.readouterr().err
    assert main(["ensemble", "info"]) == 0
    assert '"kind": "grf-ensemble-table"' in capsys.readouterr().out


@pytest.mark.slow  # simulates and tabulates a small table
def test_tabulate_writes_a_loadable_table(tmp_path):
    build_realizations(tmp_path / "b", 8, TINY, progress=False)
    card = tabulate(tmp_path / "b", tmp_path / "t")
    t = EnsembleTable(tmp_path / "t" / card["file"])
    q = np.geomspace(1e-3, 1e3, 50)
    f = t.intensity(q, 0.5, 0.25, 0.5, 1.0, 0.5)
    assert np.all(np.isfinite(f)) and np.all(f > 0)
    # sigma = 0 nodes are the exact level cut.
    np.testing.assert_allclose(t.partials(q, 0.4, 0.0, 0.0)[0], lc.levelcut_curve(q, 0.4), rtol=1e-3)
