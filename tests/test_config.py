import numpy as np
import pytest

from sasview_grf_plugin.simulator import PRESETS, SimulationConfig, get_preset


def test_presets_match_the_design_brief():
    p, c = PRESETS["paper"], PRESETS["compact"]
    assert (p.grid_size, p.voxel_size, p.n_q, p.q_min, p.q_max) == (512, 0.5, 500, 0.04, 3.0)
    assert (c.grid_size, c.voxel_size, c.n_q, c.q_min, c.q_max) == (128, 0.5, 500, 0.1, 3.0)
    assert p.a_range == (0.8, 8.0) and c.a_range == (0.8, 4.0)
    for cfg in (p, c):
        assert cfg.porosity_low == (0.1, 0.5) and cfg.porosity_high == (0.5, 0.9)
        assert cfg.layer_fraction_range == (0.05, 0.5)
        assert cfg.smoothing_sigma == 2.0 and cfg.densities == (0.0, 0.65, 1.0)
    assert (p.n_train, p.n_val, p.n_test) == (2**19, 2**18, 2**17)
    assert c.n_train >= 2**13 and c.n_val >= 2**11 and c.n_test >= 2**11
    np.testing.assert_array_equal(p.q, np.linspace(0.04, 3.0, 500))
    assert c.dq == pytest.approx(2 * np.pi / 64)


def test_roundtrip_through_dict_and_json():
    cfg = PRESETS["compact"].replace(grid_size=64, dtype="float64")
    again = SimulationConfig.from_dict(__import__("json").loads(cfg.to_json()))
    assert again == cfg


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"grid_size": 2}, "grid_size"),
        ({"grid_size": 32.5}, "grid_size"),
        ({"voxel_size": 0}, "voxel_size"),
        ({"voxel_size": -1}, "voxel_size"),
        ({"voxel_size": float("nan")}, "voxel_size"),
        ({"q_min": -0.1}, "q_min"),
        ({"q_max": 0.05}, "q_max"),
        ({"n_q": 1}, "n_q"),
        ({"smoothing_sigma": -1}, "smoothing_sigma"),
        ({"densities": (0, 1)}, "densities"),
        ({"a_range": (0, 4)}, "a_range"),
        ({"porosity_low": (0.0, 0.5)}, "porosity_low"),
        ({"porosity_high": (0.5, 1.0)}, "porosity_high"),
        ({"layer_fraction_range": (0.2, 0.1)}, "layer_fraction_range"),
        ({"n_train": 0}, "n_train"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_invalid_configs_are_refused_with_the_field_named(changes, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["compact"].replace(**changes)


def test_unknown_preset_and_fields():
    with pytest.raises(ValueError, match="available: \\['compact', 'paper'\\]"):
        get_preset("huge")
    with pytest.raises(ValueError, match="unknown SimulationConfig fields"):
        SimulationConfig.from_dict({**PRESETS["compact"].to_dict(), "bogus": 1})
