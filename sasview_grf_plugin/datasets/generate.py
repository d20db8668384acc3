"""Dataset generation: in-process, in local worker processes, or on a Dask cluster.

Every chunk of ``chunk_size`` curves is one task. Its randomness comes from
child ``c`` of the dataset's root :class:`~numpy.random.SeedSequence` (built from the
seed and the case and split), so a chunk's content does not depend on which
worker computes it, when, or how many workers there are. Tasks write their own
chunks; a chunk counts as done once its marker exists (see :mod:`.storage`), so
rerunning the same command after an interruption computes only what is missing.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._locks import writer_lock
from ..simulator.backends import BACKEND_NAMES, get_backend
from ..simulator.config import SimulationConfig, get_preset
from ..simulator.seeds import child_seed
from ..simulator.simulate import simulate_curve
from .cases import CASES, SPLITS, get_case, sample_parameters, split_size
from .noise import ALPHA_RANGE, PAPER_INTENSITY_SCALE, add_noise, normalize
from .storage import DatasetSpec, DatasetStore

__all__ = ["generate_dataset", "compute_chunk", "chunk_arrays", "root_seed", "check_resources", "MAX_CHUNKS"]


def root_seed(spec: DatasetSpec) -> np.random.SeedSequence:
    """Root seed of a dataset: the user's seed, branched by case and split."""
    case_index = list(CASES).index(spec.case)
    return np.random.SeedSequence(spec.seed, spawn_key=(case_index, SPLITS.index(spec.split)))


def chunk_arrays(spec: DatasetSpec, c: int, threads: int | None = None) -> dict[str, np.ndarray]:
    """Compute the arrays of chunk ``c`` (pure function of the spec and ``c``)."""
    lo, hi = spec.chunk_range(c)
    m = hi - lo
    ss = child_seed(root_seed(spec), c)
    params = sample_parameters(spec.config, spec.case, m, np.random.Generator(np.random.PCG64(child_seed(ss, 0))))
    structure_root = child_seed(ss, 2)
    backend = get_backend(spec.backend, threads=threads)
    intensity = simulate_curve(spec.config, params["a"], params["porosity"], params["layer_fraction"],
                               seed=[child_seed(structure_root, i) for i in range(m)], backend=backend)
    noise_rng = np.random.Generator(np.random.PCG64(child_seed(ss, 1)))
    noisy, alpha = add_noise(spec.intensity_scale * intensity, noise_rng, alpha_range=spec.alpha_range)
    return {**params, "alpha": alpha, "intensity": intensity.astype(np.float32),
            "noisy": normalize(spec.config.q, noisy).astype(np.float32)}


def compute_chunk(path: str, c: int, threads: int | None = None) -> int:
    """Task body: compute chunk ``c`` of the dataset at ``path`` and store it. Returns its size."""
    store = DatasetStore.open(path)
    if c in store.completed():  # a retried task whose first attempt finished
        lo, hi = store.spec.chunk_range(c)
        return hi - lo
    arrays = chunk_arrays(store.spec, c, threads)
    store.write_chunk(c, arrays)
    return len(arrays["a"])


# Bookkeeping of a run holds a few objects per chunk: more chunks than this need GBs before any work.
MAX_CHUNKS = 10**7


def check_resources(out: str | os.PathLike, config: SimulationConfig, n: int, chunk_size: int) -> None:
    """Refuse a dataset that cannot fit on the disk (or in the bookkeeping) before anything is written.

    Raises
    ------
    ValueError
        With the estimate and the limit.
    """
    import shutil

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    n_chunks = -(-int(n) // int(chunk_size))
    if n_chunks > MAX_CHUNKS:
        raise ValueError(f"n={n} curves in chunks of {chunk_size} are {n_chunks:.3g} chunks, more than the "
                         f"{MAX_CHUNKS:.0e} a run can keep track of; use fewer curves or a larger --chunk-size")
    out = Path(out)
    done = 0
    if (out / ".progress").is_dir():
        done = sum(1 for _ in (out / ".progress").glob("chunk-*")) * int(chunk_size)
    # Two float32 curves (clean and noisy) and four float64 parameters per curve; Zarr compresses noisy
    # curves little, so this is close to what lands on disk.
    per_curve = 2 * 4 * config.n_q + 4 * 8
    need = max(0, int(n) - done) * per_curve
    probe = out
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need > free:
        raise ValueError(f"{n} curves of {config.n_q} q points need about {need / 2**30:.3g} GiB on disk, but "
                         f"only {free / 2**30:.3g} GiB is free at {probe}; use fewer curves or another --out")


def _resolve_backend(backend: str, client: Any = None) -> str:
    if backend not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKEND_NAMES)}")
    if backend != "auto":
        if client is None:
            get_backend(backend)  # fail early and clearly if CuPy or OpenCL is missing here
        return backend
    if client is not None:
        return client.submit(lambda: get_backend("auto").name, pure=False).result()
    return get_backend("auto").name


def generate_dataset(out: str | os.PathLike, case: str, split: str, config: str | SimulationConfig = "compact",
                     n: int | None = None, chunk_size: int = 64, seed: int = 0, backend: str = "auto",
                     workers: int | None = None, scheduler: str | None = None, progress: bool = True,
                     intensity_scale: float = PAPER_INTENSITY_SCALE,
                     alpha_range: tuple[float, float] = ALPHA_RANGE,
                     on_chunk: Callable[[int], None] | None = None) -> DatasetStore:
    """Generate (or resume) one split of one case.

    Parameters
    ----------
    out
        Dataset directory (created; an existing one is resumed if its settings match, or grown
        if only ``n`` is larger and the stored size is a multiple of ``chunk_size``).
    case, split
        One of ``two_phase_low``, ``two_phase_high``, ``three_phase_low``, ``three_phase_high``,
        and ``train``, ``val`` or ``test``.
    config
        Preset name or :class:`SimulationConfig`; ``n`` overrides the split's size.
    chunk_size
        Curves per task and per stored chunk.
    seed
        Dataset seed (non-negative int); the same seed, case and split give the same data.
    backend
        ``"auto"``, ``"numpy"``, ``"cupy"`` or ``"opencl"`` (resolved once, stored with the dataset;
        ``"opencl"`` runs on the device that ``SAS_OPENCL``/``PYOPENCL_CTX`` name, else a GPU).
    workers
        Number of local worker processes (a Dask ``LocalCluster``); ``None`` computes in-process.
    scheduler
        Address of a Dask distributed scheduler (e.g. ``tcp://host:8786``); workers must see ``out``.
    progress
        Show a progress bar (curves/s and ETA).

    Returns
    -------
    DatasetStore
        The finished store; read it with ``.read()`` or :func:`load_dataset`.
    """
    cfg = get_preset(config)
    get_case(case)
    size = split_size(cfg, split) if n is None else n
    check_resources(out, cfg, size, chunk_size)
    if workers is not None and scheduler is not None:
        raise ValueError("give either workers (local processes) or scheduler (a Dask cluster), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")

    client = cluster = None
    try:
        if scheduler is not None or workers is not None:
            from dask.distributed import Client, LocalCluster

            if scheduler is not None:
                client = Client(scheduler)
            else:
                import dask

                threads = max(1, (os.cpu_count() or 1) // workers)
                # Dask starts workers with MALLOC_TRIM_THRESHOLD_=64 KiB, which also switches off glibc's
                # adaptive mmap threshold: every multi-MB temporary of a sample is then mapped and
                # page-faulted anew (measured: half the in-process speed). Keep freed memory for reuse.
                with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": str(2**30),
                                      "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": str(2**25)}):
                    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None,
                                           env={"SASVIEW_GRF_THREADS": str(threads)})
                client = Client(cluster)
        spec = DatasetSpec(config=cfg, case=case, split=split, n=size, chunk_size=chunk_size, seed=seed,
                           backend=_resolve_backend(backend, client), intensity_scale=float(intensity_scale),
                           alpha_range=(float(alpha_range[0]), float(alpha_range[1])))
        # One writer per folder: a concurrent run into the same folder is refused, not run twice.
        with writer_lock(out, what="dataset"):
            store = DatasetStore.create(out, spec)
            pending = store.pending()
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=spec.n, initial=spec.n - sum(np.diff(spec.chunk_range(c))[0] for c in pending),
                           unit="curve", desc=f"{case}/{split}", smoothing=0.1)
            try:
                _run(store, pending, client, bar, on_chunk)
            finally:
                if bar is not None:
                    bar.close()
        return store
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _run(store: DatasetStore, pending: list[int], client: Any, bar: Any,
         on_chunk: Callable[[int], None] | None) -> None:
    def done(c: int, m: int) -> None:
        if bar is not None:
            bar.update(m)
        if on_chunk is not None:
            on_chunk(c)

    if client is None:
        task = functools.partial(compute_chunk, str(store.path))
        for c in pending:
            done(c, task(c))
        return
    from dask.distributed import as_completed

    path = str(Path(store.path).resolve())
    futures = {client.submit(compute_chunk, path, c, pure=False, key=f"grf-chunk-{c}-{time.time_ns()}"): c
               for c in pending}
    for fut in as_completed(futures):
        done(futures[fut], fut.result())
