import os
import warnings

import numpy as np
import pytest
import sasdata

from sasview_grf_plugin.loaders import MaskWarning, UnitWarning, load_curves

EXAMPLES = os.path.join(os.path.dirname(sasdata.__file__), "example_data", "1d_data")


def example(name):
    path = os.path.join(EXAMPLES, name)
    if not os.path.exists(path):
        pytest.skip(f"sasdata example file {name} not present")
    return path


def test_anton_paar_pdh_is_read_in_its_own_units_with_the_slit_length():
    (c,) = load_curves(example("Anton-Paar.pdh"))
    # The file: 673 points, q from 0.06604 to 4.5017 1/nm; header line 5 gives the slit length 1.557578 1/nm.
    assert c.q.size == 673
    assert c.q[0] == pytest.approx(0.06604 / 10) and c.q[-1] == pytest.approx(4.5017 / 10)
    assert c.intensity[0] == pytest.approx(0.1822409) and c.error[0] == pytest.approx(7.518356e-03)
    assert c.slit_length == pytest.approx(0.1557578)
    assert c.data.dx is None  # so that sasmodels applies the slit
    assert c.q_unit_source.startswith("1/nm (PDH")
    assert c.data.qmin == pytest.approx(c.q[0]) and c.data.qmax == pytest.approx(c.q[-1])
    with pytest.raises(ValueError, match="PDH files store q in 1/nm"):
        load_curves(example("Anton-Paar.pdh"), q_unit="1/A")


def test_ascii_needs_a_unit_and_a_wrong_one_is_flagged(tmp_path):
    with pytest.raises(ValueError, match="carry no q unit"):
        load_curves(example("Alumina_usaxs.csv"))
    (c,) = load_curves(example("Alumina_usaxs.csv"), q_unit="1/A")
    assert c.q[-1] == pytest.approx(0.675764)
    f = tmp_path / "nm.csv"
    q_nm = np.linspace(0.1, 4.0, 50)
    np.savetxt(f, np.column_stack([q_nm, 1 / q_nm**3, 0.05 / q_nm**3]), delimiter=",")
    with pytest.warns(UnitWarning, match="q reaches 4 1/Å"):
        load_curves(f, q_unit="1/A")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitWarning)
        (good,) = load_curves(f, q_unit="1/nm")
    np.testing.assert_allclose(good.q, q_nm / 10)


def test_unusable_points_are_removed_with_a_count(tmp_path):
    f = tmp_path / "bad.csv"
    q = np.linspace(0.01, 0.3, 10)
    i, di = np.ones(10), np.full(10, 0.1)
    i[2], di[5], i[7] = -1.0, 0.0, 0.0
    np.savetxt(f, np.column_stack([q, i, di]), delimiter=",")
    with pytest.warns(MaskWarning, match="removed 3 of 10 points"):
        (c,) = load_curves(f, q_unit="1/A")
    assert c.q.size == 7 and c.masked == 3 and np.all(c.error > 0)


def test_xml_and_hdf5_keep_their_units_and_resolution():
    (h5,) = load_curves(example("Lew_Sa3_DSM_QinA.h5"))
    assert h5.data.dx is not None and np.all(h5.data.dx > 0)
    (xml,) = load_curves(example("AOT_Microemulsion-Core_Contrast.xml"))
    assert xml.data.dx is None  # all-zero dx means "no pinhole resolution"
    with pytest.raises(ValueError, match="contradicts"):
        load_curves(example("AOT_Microemulsion-Core_Contrast.xml"), q_unit="1/nm")


@pytest.mark.parametrize("name, message", [("nope.xml", "no such data file")])
def test_unreadable(name, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        load_curves(tmp_path / name)


def test_slit_smearing_moves_a_fitted_peak_the_way_physics_says():
    # Slit smearing moves a peak towards lower measured q; a fit that models the slit must therefore put
    # the true peak higher than a fit that ignores it.
    from bumps.fitters import fit
    from bumps.names import FitProblem
    from sasmodels.bumps_model import Experiment, Model
    from sasmodels.core import load_model

    kernel = load_model("broad_peak")

    def peak(smeared: bool) -> float:
        (c,) = load_curves(example("Anton-Paar.pdh"))
        d = c.data
        if not smeared:
            d.dxl = None
        d.qmin, d.qmax = 0.02, 0.2
        m = Model(kernel, peak_pos=0.07, correlation_length=30.0, width_exp=2.0, shape_exp=1.0, porod_scale=1e-5,
                  porod_exp=3.0, peak_scale=10.0, background=0.01)
        for name, lo, hi in (("peak_pos", 0.02, 0.15), ("correlation_length", 1, 500), ("peak_scale", 0, 1e4),
                             ("porod_scale", 0, 1), ("background", 0, 10)):
            getattr(m, name).range(lo, hi)
        problem = FitProblem(Experiment(data=d, model=m))
        res = fit(problem, method="lm", steps=300, verbose=False)
        return float(dict(zip(problem.labels(), res.x, strict=True))["peak_pos"])

    unsmeared, smeared = peak(False), peak(True)
    assert smeared > unsmeared * 1.02, (smeared, unsmeared)


def test_the_intensity_unit_of_a_curve_is_read_from_the_file():
    from sasview_grf_plugin.loaders import intensity_unit

    (xml,) = load_curves(example("AOT_Microemulsion-Core_Contrast.xml"))  # canSAS XML: I in 1/cm
    assert intensity_unit(xml) == "cm^-1"
    (pdh,) = load_curves(example("Anton-Paar.pdh"))  # relative intensities: not absolute
    assert intensity_unit(pdh) != "cm^-1"
