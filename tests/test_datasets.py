import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy import stats

from sasview_grf_plugin.datasets import (
    CASES,
    DatasetStore,
    add_noise,
    generate_dataset,
    load_dataset,
    normalize,
    parameter_ranges,
    sample_parameters,
)
from sasview_grf_plugin.simulator import PRESETS

ARRAYS = ("a", "porosity", "layer_fraction", "alpha", "intensity", "noisy")
TINY = PRESETS["compact"].replace(grid_size=24, n_q=60)


def assert_same_data(d1, d2):
    np.testing.assert_array_equal(d1.q, d2.q)
    for name in ARRAYS:
        x, y = np.asarray(getattr(d1, name)), np.asarray(getattr(d2, name))
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


# -- noise and normalization ---------------------------------------------------------------
def test_lognormal_noise_has_mean_i_and_variance_alpha_i():
    rng = np.random.default_rng(0)
    intensity = np.geomspace(10.0, 1e5, 12)
    alpha = 3e3
    draws = np.stack([add_noise(intensity, rng, alpha=alpha)[0] for _ in range(20000)])
    assert np.all(draws > 0)
    n = draws.shape[0]
    mean, var = draws.mean(0), draws.var(0, ddof=1)
    # Standard errors estimated from the draws themselves: 5 sigma, for 12 points x 2 statistics.
    assert np.all(np.abs(mean - intensity) < 5 * np.sqrt(var / n))
    se_var = np.sqrt(np.var((draws - mean) ** 2, axis=0, ddof=1) / n)
    assert np.all(np.abs(var - alpha * intensity) < 5 * se_var)


def test_alpha_is_log_uniform_per_curve():
    rng = np.random.default_rng(1)
    noisy, alpha = add_noise(np.full((4000, 5), 1e4), rng)
    assert alpha.shape == (4000,) and noisy.shape == (4000, 5)
    u = (np.log10(alpha) - 2.0) / 3.5
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert alpha.min() >= 1e2 and alpha.max() <= 10**5.5


def test_normalized_curves_have_unit_shell_integral():
    q = np.linspace(0.1, 3.0, 500)
    curves = np.random.default_rng(2).random((3, 500)) * 1e4
    out = normalize(q, curves)
    np.testing.assert_allclose(np.sum(out * q**2 * 4 * np.pi * (q[1] - q[0]), axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(out[0] / out[0, 0], curves[0] / curves[0, 0])  # shape kept


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: add_noise([1.0, np.nan], np.random.default_rng()), "NaN"),
        (lambda: add_noise([1.0, -2.0], np.random.default_rng()), "> 0"),
        (lambda: add_noise(np.ones((2, 2, 2)), np.random.default_rng()), "shape"),
        (lambda: add_noise([1.0, 2.0], np.random.default_rng(), alpha=-1), "alpha"),
        (lambda: normalize([0.2, 0.1, 0.3], [1.0, 1.0, 1.0]), "increasing"),
        (lambda: normalize([-0.1, 0.1, 0.3], [1.0, 1.0, 1.0]), ">= 0"),
        (lambda: normalize([0.1, 0.2], [1.0, 1.0, 1.0]), "points"),
    ],
)
def test_noise_and_normalization_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- cases --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_parameter_distributions_of_each_case(case):
    cfg = PRESETS["compact"]
    params = sample_parameters(cfg, case, 5000, np.random.default_rng(3))
    for name, (lo, hi) in parameter_ranges(cfg, case).items():
        v = params[name]
        assert v.min() >= lo and v.max() <= hi
        if hi > lo:
            assert stats.kstest((v - lo) / (hi - lo), "uniform").pvalue > 1e-3
    if case.startswith("two"):
        assert np.all(params["layer_fraction"] == 0)
    low = case.endswith("low")
    assert (params["porosity"].max() <= 0.5) == low and (params["porosity"].min() >= 0.5) == (not low)


# -- generation, storage, reproducibility ---------------------------------------------------
def test_generated_dataset_is_consistent_and_reproducible(tmp_path):
    s1 = generate_dataset(tmp_path / "a", "three_phase_low", "test", config=TINY, n=30, chunk_size=7, seed=5,
                          progress=False)
    d = s1.read()
    assert d.noisy.shape == (30, 60) and d.intensity.dtype == np.float32
    np.testing.assert_allclose(d.noisy.astype(float) @ (4 * np.pi * d.q**2 * np.gradient(d.q)), 1.0, rtol=1e-5)
    assert np.all((d.layer_fraction >= 0.05) & (d.layer_fraction <= 0.5))
    # Same command again: identical bytes. Another seed or split: other data.
    assert_same_data(d, generate_dataset(tmp_path / "b", "three_phase_low", "test", config=TINY, n=30,
                                         chunk_size=7, seed=5, progress=False).read())
    other = generate_dataset(tmp_path / "c", "three_phase_low", "val", config=TINY, n=30, chunk_size=7, seed=5,
                             progress=False).read()
    assert not np.array_equal(other.a, d.a)
    lazy = load_dataset(tmp_path / "a", lazy=True)
    np.testing.assert_array_equal(lazy.noisy.compute(), d.noisy)
    np.testing.assert_array_equal(lazy.targets().compute(), d.targets())


def test_incomplete_dataset_is_not_read(tmp_path):
    store = generate_dataset(tmp_path / "d", "two_phase_high", "train", config=TINY, n=20, chunk_size=5,
                             progress=False, on_chunk=lambda c: None)
    (store.path / ".progress" / "chunk-00000002").unlink()
    with pytest.raises(ValueError, match="incomplete: 1 of 4 chunks missing"):
        load_dataset(store.path)
    again = generate_dataset(tmp_path / "d", "two_phase_high", "train", config=TINY, n=20, chunk_size=5,
                             progress=False)
    assert again.is_complete


@pytest.mark.slow  # a generation process killed and resumed
def test_sigkill_midway_then_resume_gives_identical_data(tmp_path):
    args = ["--grid-size", "64", "--case", "three_phase_high", "--split", "train", "--n", "300",
            "--chunk-size", "6", "--seed", "7", "--backend", "numpy", "--no-progress"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sasview_grf_plugin.cli", "dataset", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    progress = killed / ".progress"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        # Count finished markers only: a "chunk-N.tmp" is a marker still being written.
        if progress.exists() and len([m for m in progress.glob("chunk-*") if not m.suffix]) >= 5:
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"generation ended before it could be killed: {proc.stderr.read().decode()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(DatasetStore.open(killed).completed())
    assert 5 <= done < 50
    generate_dataset(killed, "three_phase_high", "train", config=PRESETS["compact"].replace(grid_size=64), n=300,
                     chunk_size=6, seed=7, backend="numpy", progress=False)
    fresh = generate_dataset(tmp_path / "fresh", "three_phase_high", "train",
                             config=PRESETS["compact"].replace(grid_size=64), n=300, chunk_size=6, seed=7,
                             backend="numpy", progress=False)
    assert_same_data(load_dataset(killed), fresh.read())


@pytest.mark.slow  # starts a local Dask cluster
def test_dask_local_cluster_gives_the_in_process_dataset(tmp_path):
    from dask.distributed import LocalCluster

    kw = dict(config=TINY, n=40, chunk_size=8, seed=3, backend="numpy", progress=False)
    local = generate_dataset(tmp_path / "local", "two_phase_low", "train", **kw).read()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        remote = generate_dataset(tmp_path / "dask", "two_phase_low", "train", scheduler=cluster.scheduler_address,
                                  **kw).read()
    assert_same_data(local, remote)
    procs = generate_dataset(tmp_path / "procs", "two_phase_low", "train", workers=2, **kw).read()
    assert_same_data(local, procs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"case": "four_phase"}, "unknown case 'four_phase'"),
        ({"split": "holdout"}, "unknown split 'holdout'"),
        ({"n": 0}, "n must be a positive integer"),
        ({"chunk_size": -1}, "chunk_size must be a positive integer"),
        ({"workers": 0}, "workers must be a positive integer"),
        ({"backend": "tpu"}, "unknown backend"),
    ],
)
def test_bad_generation_requests(tmp_path, kwargs, message):
    args = {"case": "two_phase_low", "split": "train", "config": TINY, "n": 4, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path / "x", **args)


def test_growing_a_dataset_equals_generating_it_at_the_larger_size(tmp_path):
    small = generate_dataset(tmp_path / "g", "three_phase_high", "train", config=TINY, n=14, chunk_size=7, seed=3,
                             progress=False)
    before = small.read()
    grown = generate_dataset(tmp_path / "g", "three_phase_high", "train", config=TINY, n=28, chunk_size=7, seed=3,
                             progress=False)
    fresh = generate_dataset(tmp_path / "f", "three_phase_high", "train", config=TINY, n=28, chunk_size=7, seed=3,
                             progress=False)
    assert grown.spec.n == 28 and load_dataset(tmp_path / "g").spec.n == 28
    assert_same_data(grown.read(), fresh.read())
    np.testing.assert_array_equal(grown.read().noisy[:14], before.noisy)
    # A grow interrupted after resizing the arrays, before the new spec was written: the old dataset reads.
    import zarr

    half = generate_dataset(tmp_path / "i", "three_phase_high", "train", config=TINY, n=14, chunk_size=7, seed=3,
                            progress=False)
    for name in ARRAYS:
        arr = zarr.open_group(str(half.path), mode="r+")[name]
        arr.resize((28, *arr.shape[1:]))
    assert_same_data(load_dataset(half.path), before)
    np.testing.assert_array_equal(load_dataset(half.path, lazy=True).noisy.compute(), before.noisy)
    with pytest.raises(ValueError, match=r"n: existing 28, requested 21\) \(a dataset can grow"):
        generate_dataset(tmp_path / "g", "three_phase_high", "train", config=TINY, n=21, chunk_size=7, seed=3,
                         progress=False)
    # A partly filled last chunk would change when the dataset grows: refused.
    generate_dataset(tmp_path / "h", "two_phase_low", "train", config=TINY, n=10, chunk_size=7, progress=False)
    with pytest.raises(ValueError, match="not a multiple of its chunk size 7"):
        generate_dataset(tmp_path / "h", "two_phase_low", "train", config=TINY, n=14, chunk_size=7, progress=False)


def test_unwritable_path_and_mismatching_store(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="cannot write the dataset"):
        generate_dataset(blocker / "ds", "two_phase_low", "train", config=TINY, n=4, progress=False)
    generate_dataset(tmp_path / "ds", "two_phase_low", "train", config=TINY, n=4, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(config.grid_size: existing 24, requested 32"):
        generate_dataset(tmp_path / "ds", "two_phase_low", "train", config=TINY.replace(grid_size=32), n=4,
                         progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("")
    with pytest.raises(ValueError, match="not a sasview-grf dataset"):
        generate_dataset(tmp_path / "junk", "two_phase_low", "train", config=TINY, n=4, progress=False)


def test_cli_info(tmp_path, capsys):
    from sasview_grf_plugin.cli import main

    assert main(["dataset", "--grid-size", "24", "--case", "two_phase_high", "--split", "val", "--n", "6",
                 "--chunk-size", "4", "--out", str(tmp_path / "ds"), "--no-progress"]) == 0
    assert main(["dataset", "info", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "two_phase_high / val" in out and "2 chunks done (complete)" in out
    assert main(["dataset", "info", str(tmp_path)]) == 2
    assert "is not a sasview-grf dataset" in capsys.readouterr().err
