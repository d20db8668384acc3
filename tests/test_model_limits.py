"""Every parameter set inside the ensemble models' limits is a valid structure.

SasView's fit ranges are per parameter (by default the model's limits), and LM, DREAM and every other bumps
fitter may propose any point of that box: the models must evaluate there, through sasmodels and with the
resolution a fit applies (pinhole and slit), to finite, non-negative intensities.
"""

import itertools

import numpy as np
import pytest
from sasmodels.core import build_model, load_model, load_model_info
from sasmodels.data import Data1D, empty_data1D
from sasmodels.direct_model import DirectModel

from sasview_grf_plugin.ensemble.table import load_table
from sasview_grf_plugin.sasview import model_path
from sasview_grf_plugin.sasview.models import grf_three_phase, grf_two_phase

MODULES = {"grf_two_phase": grf_two_phase, "grf_three_phase": grf_three_phase}
# Structure parameters: the ones a fit moves (the SLDs are fixed by the chemistry).
SHAPE = {"grf_two_phase": ("a", "porosity", "smoothing_ratio"),
         "grf_three_phase": ("a", "porosity", "layer_fraction", "smoothing_ratio")}
# A USAXS-to-WAXS q range, as resolution smearing extends it (1/Å).
Q = np.geomspace(1e-4, 1.0, 60)


def _limits(name: str) -> dict[str, tuple[float, float]]:
    return {p[0]: tuple(p[3]) for p in MODULES[name].parameters}


def _box_points(name: str, n_random: int, seed: int) -> list[dict[str, float]]:
    """Every corner of the box of shape-parameter limits, and random points (a log-uniform: its box spans
    five decades)."""
    lim = _limits(name)
    keys = SHAPE[name]
    points = [dict(zip(keys, corner, strict=True)) for corner in itertools.product(*(lim[k] for k in keys))]
    rng = np.random.default_rng(seed)
    for _ in range(n_random):
        p = {k: float(rng.uniform(*lim[k])) for k in keys}
        p["a"] = float(np.exp(rng.uniform(*np.log(lim["a"]))))
        points.append(p)
    return points


def _data(kind: str) -> Data1D:
    if kind == "pinhole":
        return empty_data1D(Q, resolution=0.1)  # dq/q = 10 %, a coarse SAXS instrument
    d = empty_data1D(Q)
    d.dx, d.dxl, d.dxw = None, np.full(Q.size, 0.02), np.zeros(Q.size)  # slit: sasmodels uses dxl when dx is None
    return d


def test_limits_are_the_tables_domain_and_the_defaults_lie_strictly_inside():
    table = load_table()
    two, three = _limits("grf_two_phase"), _limits("grf_three_phase")
    assert two["smoothing_ratio"] == table.smoothing2_range
    assert three["smoothing_ratio"] == table.smoothing3_range
    assert three["porosity"] == table.porosity_range and three["layer_fraction"] == table.layer_range
    assert two["porosity"] == (table.porosity_range[0], 0.5)  # Babinet: the minority phase
    assert two["a"][0] == three["a"][0] == 1.0
    for name, mod in MODULES.items():
        for pname, _unit, default, (lo, hi), *_ in mod.parameters:
            if np.isfinite(lo) and np.isfinite(hi):
                assert lo < default < hi, (name, pname)


@pytest.mark.parametrize("kind", ["pinhole", "slit"])
@pytest.mark.parametrize("name", list(MODULES))
def test_every_point_of_the_box_of_limits_evaluates(name, kind):
    model = DirectModel(_data(kind), load_model(model_path(name)))
    points = _box_points(name, n_random=12, seed=20261206)
    for p in points:
        i = model(**p, scale=1.0, background=0.0)
        assert i.shape == Q.shape and np.all(np.isfinite(i)) and np.all(i >= 0), (name, kind, p)
        # Not trivially zero: the default contrast scatters at every point of the box.
        assert np.all(i[:10] > 0), (name, kind, p)


@pytest.mark.parametrize("kind", ["pinhole", "slit"])
def test_the_sum_model_with_a_power_law_evaluates_on_the_box(kind):
    info = load_model_info(model_path("grf_two_phase") + "+power_law")
    model = DirectModel(_data(kind), build_model(info))
    rng = np.random.default_rng(7)
    for p in _box_points("grf_two_phase", n_random=6, seed=11):
        pars = {f"A_{k}": v for k, v in p.items()}
        pars.update(A_scale=float(rng.uniform(0, 1)), B_scale=float(rng.uniform(0, 1e-6)),
                    B_power=float(rng.uniform(0, 6)), background=0.0)
        i = model(**pars)
        assert np.all(np.isfinite(i)) and np.all(i >= 0), (kind, pars)


def test_a_value_typed_on_a_limit_is_evaluated_exactly_there():
    # bumps' FitDriver.clip (what SasView calls before every fit) keeps a value equal to a limit; the model must
    # then evaluate on the limit itself. The table's edge tolerance must not move it: on the lower porosity
    # limit the curve differs from the one just inside it.
    kernel = load_model(model_path("grf_two_phase"))
    model = DirectModel(empty_data1D(Q), kernel)
    on = model(a=50.0, porosity=0.02, smoothing_ratio=1.25)
    inside = model(a=50.0, porosity=0.021, smoothing_ratio=1.25)
    assert np.all(np.isfinite(on)) and np.all(on > 0)
    assert not np.allclose(on, inside, rtol=1e-3)


def test_old_smoothing_in_angstrom_is_no_model_parameter():
    # The rename is visible: an old script passing `smoothing` gets sasmodels' unknown-parameter error, not a
    # silently ignored value (the fitting API converts old values; see test_fitting).
    names = [p.name for p in load_model_info(model_path("grf_two_phase")).parameters.kernel_parameters]
    assert "smoothing_ratio" in names and "smoothing" not in names
