import numpy as np
import pytest

from sasview_grf_plugin.cli import main


def test_simulate_writes_curve_and_figure(tmp_path, capsys):
    out, png = tmp_path / "c.csv", tmp_path / "c.png"
    rc = main(["simulate", "--grid-size", "32", "--a", "1.5", "--porosity", "0.6", "--layer-fraction", "0.2",
               "--seed", "3", "--out", str(out), "--plot", str(png), "--backend", "numpy"])
    assert rc == 0
    data = np.loadtxt(out, delimiter=",")
    assert data.shape == (500, 2)
    np.testing.assert_allclose(data[:, 0], np.linspace(0.1, 3.0, 500), rtol=1e-9)
    assert np.all(data[:, 1] > 0)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "wrote" in capsys.readouterr().out


def test_bad_input_gives_one_clear_line(tmp_path, capsys):
    rc = main(["simulate", "--grid-size", "16", "--porosity", "1.5", "--out", str(tmp_path / "x.csv")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "porosity must lie in the open interval (0, 1)" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--help"], ["simulate", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: sasview-grf" in capsys.readouterr().out
