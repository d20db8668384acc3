"""Chunked, resumable on-disk datasets (Zarr v3).

Layout of a dataset directory (a Zarr group):

- attributes: the :class:`DatasetSpec` (configuration, case, split, size, chunking,
  seed, backend, noise settings), the format version and the package version;
- arrays ``a``, ``porosity``, ``layer_fraction``, ``alpha`` (n,), ``q`` (n_q,),
  ``intensity`` (n, n_q: noiseless curves per unit volume, rho^2 nm^3) and
  ``noisy`` (n, n_q: noisy curves normalized by Eq. 12), chunked by ``chunk_size``
  curves so that every work chunk owns whole Zarr chunks;
- ``.progress/chunk-XXXXXXXX``: one marker per finished chunk, written (atomically,
  by rename) only after all of that chunk's arrays are stored. A chunk without a
  marker is recomputed; its content is deterministic, so rewriting is harmless.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._locks import LOCK_NAME
from ..simulator.config import SimulationConfig
from .cases import SPLITS, get_case

__all__ = ["DatasetSpec", "DatasetStore", "Dataset", "load_dataset", "FORMAT", "FORMAT_VERSION"]

FORMAT = "sasview-grf-dataset"
FORMAT_VERSION = 1
_PARAMS = ("a", "porosity", "layer_fraction", "alpha")
_CURVES = ("intensity", "noisy")


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that determines a dataset's content."""

    config: SimulationConfig
    case: str
    split: str
    n: int
    chunk_size: int
    seed: int
    backend: str
    intensity_scale: float
    alpha_range: tuple[float, float]

    def __post_init__(self) -> None:
        get_case(self.case)
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; allowed: {', '.join(SPLITS)}")
        for name in ("n", "chunk_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.backend not in ("numpy", "cupy", "opencl"):
            raise ValueError(f"a dataset's backend must be resolved to 'numpy', 'cupy' or 'opencl', "
                             f"got {self.backend!r}")

    @property
    def n_chunks(self) -> int:
        return -(-self.n // self.chunk_size)

    def chunk_range(self, c: int) -> tuple[int, int]:
        lo = c * self.chunk_size
        return lo, min(lo + self.chunk_size, self.n)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["config"] = self.config.to_dict()
        d["alpha_range"] = list(self.alpha_range)
        return json.loads(json.dumps(d))  # plain JSON types

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetSpec:
        kw = dict(d)
        kw["config"] = SimulationConfig.from_dict(d["config"])
        kw["alpha_range"] = tuple(d["alpha_range"])
        return cls(**kw)


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb and key != "name":
            out.append(f"{prefix}{key}: existing {va!r}, requested {vb!r}")
    return out


# Present while create() builds a store: an interrupted creation is redone by the identical rerun.
_CREATING = ".creating"


class DatasetStore:
    """A dataset directory being written or read. Use :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, spec: DatasetSpec) -> None:
        self.path = Path(path)
        self.spec = spec

    # -- creation and opening -------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, spec: DatasetSpec) -> DatasetStore:
        """Create a new store, or reopen an existing one made with exactly the same spec."""
        import zarr

        from .. import __version__

        path = Path(path)
        creating = path / _CREATING
        if (path / "zarr.json").exists() and not creating.exists():
            existing = cls.open(path)
            only_n = dataclasses.replace(existing.spec, n=spec.n) == spec
            if only_n and spec.n > existing.spec.n:
                return existing._grow(spec)
            diffs = _differences(existing.spec.to_dict(), spec.to_dict())
            if diffs:
                grow = " (a dataset can grow to a larger n, not shrink)" if only_n else ""
                raise ValueError(
                    f"{path} already holds a dataset made with other settings ({'; '.join(diffs)}){grow}; "
                    "rerun with the original settings to resume it, or choose another output path"
                )
            return existing
        # Only an empty folder (or one holding the writer lock, or this package's interrupted creation) is used:
        # files this package did not write are never adopted or overwritten.
        if path.exists() and not creating.exists() and any(p.name != LOCK_NAME for p in path.iterdir()):
            raise ValueError(f"{path} exists and is not a sasview-grf dataset; choose an empty or new directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
            creating.write_bytes(b"")
        except OSError as exc:
            raise ValueError(f"cannot write the dataset to {path}: {exc.strerror or exc}") from None
        n, n_q, c = spec.n, spec.config.n_q, spec.chunk_size
        # mode "a", not "w": "w" would delete the folder's writer lock.
        group = zarr.open_group(str(path), mode="a")
        for name in _PARAMS:
            group.create_array(name, shape=(n,), chunks=(c,), dtype="float64", fill_value=np.nan, overwrite=True)
        for name in _CURVES:
            group.create_array(name, shape=(n, n_q), chunks=(c, n_q), dtype="float32", fill_value=np.nan,
                               overwrite=True)
        group.create_array("q", shape=(n_q,), chunks=(n_q,), dtype="float64", overwrite=True)
        group["q"][:] = spec.config.q
        group.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "spec": spec.to_dict(),
                            "package_version": __version__,
                            "units": {"q": "1/nm", "a": "nm", "intensity": "rho^2 nm^3 (per unit volume)",
                                      "noisy": "1 (normalized by Eq. 12)"}})
        (path / ".progress").mkdir(exist_ok=True)
        creating.unlink()  # the store is complete: from now on it is opened, never recreated
        return cls(path, spec)

    def _grow(self, spec: DatasetSpec) -> DatasetStore:
        """Extend the store to ``spec.n`` curves, keeping every stored chunk.

        A chunk's content depends only on the dataset's seed, case, split and the chunk's index (see
        :mod:`.generate`), so the grown dataset equals one generated at the larger size from the
        start, provided the old size filled its last chunk.
        """
        import zarr

        old = self.spec
        if old.n % old.chunk_size:
            raise ValueError(f"{self.path} holds {old.n} curves, not a multiple of its chunk size "
                             f"{old.chunk_size}: its last chunk would change, so it cannot grow to {spec.n}; "
                             "generate the larger dataset in another directory")
        group = zarr.open_group(str(self.path), mode="r+")
        # Arrays first, then the spec: an interruption in between leaves the old, complete spec (readers take
        # its first n rows) and rerunning grows again.
        for name in _PARAMS:
            group[name].resize((spec.n,))
        for name in _CURVES:
            group[name].resize((spec.n, spec.config.n_q))
        from .. import __version__

        group.attrs.update({"spec": spec.to_dict(), "package_version": __version__})
        return DatasetStore(self.path, spec)

    @classmethod
    def open(cls, path: str | os.PathLike) -> DatasetStore:
        """Open an existing dataset directory (complete or not)."""
        import zarr

        path = Path(path)
        if not (path / "zarr.json").exists():
            raise ValueError(f"{path} is not a sasview-grf dataset (no zarr.json found)")
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
        if attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is a Zarr store but not a sasview-grf dataset")
        if attrs.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path} has dataset format version {attrs.get('format_version')}, "
                             f"this package reads version {FORMAT_VERSION}")
        return cls(path, DatasetSpec.from_dict(attrs["spec"]))

    # -- progress ---------------------------------------------------------------
    def _marker(self, c: int) -> Path:
        return self.path / ".progress" / f"chunk-{c:08d}"

    def completed(self) -> set[int]:
        """Indices of the chunks that are fully written."""
        out = set()
        for p in (self.path / ".progress").glob("chunk-*"):
            if p.name[6:].isdigit():
                out.add(int(p.name[6:]))
        return {c for c in out if c < self.spec.n_chunks}

    def pending(self) -> list[int]:
        done = self.completed()
        return [c for c in range(self.spec.n_chunks) if c not in done]

    @property
    def is_complete(self) -> bool:
        return not self.pending()

    def write_chunk(self, c: int, arrays: dict[str, np.ndarray]) -> None:
        """Store the arrays of chunk ``c``, then its marker (so a crash leaves no marker)."""
        import zarr

        lo, hi = self.spec.chunk_range(c)
        group = zarr.open_group(str(self.path), mode="r+")
        for name in (*_PARAMS, *_CURVES):
            group[name][lo:hi] = arrays[name]
        tmp = self._marker(c).with_suffix(".tmp")
        tmp.write_text(json.dumps({"rows": [lo, hi]}))
        os.replace(tmp, self._marker(c))

    # -- reading ----------------------------------------------------------------
    def read(self, lazy: bool = False) -> Dataset:
        """The dataset's arrays (NumPy, or Dask with ``lazy``); refuses an incomplete dataset."""
        import zarr

        missing = self.pending()
        if missing:
            raise ValueError(
                f"dataset {self.path} is incomplete: {len(missing)} of {self.spec.n_chunks} chunks missing; "
                "rerun the command that made it to finish it"
            )
        group = zarr.open_group(str(self.path), mode="r")
        # [:n]: after an interrupted grow the arrays are already longer than the (old, complete) spec.
        n = self.spec.n
        if lazy:
            import dask.array as da

            arrays = {name: da.from_zarr(group[name])[:n] for name in (*_PARAMS, *_CURVES)}
        else:
            arrays = {name: group[name][:n] for name in (*_PARAMS, *_CURVES)}
        return Dataset(path=self.path, spec=self.spec, q=group["q"][:], **arrays)


@dataclass
class Dataset:
    """A complete dataset in memory (or as Dask arrays)."""

    path: Path
    spec: DatasetSpec
    q: np.ndarray
    a: Any
    porosity: Any
    layer_fraction: Any
    alpha: Any
    intensity: Any
    noisy: Any

    def targets(self, outputs: tuple[str, ...] | None = None) -> Any:
        """(n, k) array of the parameters ``outputs`` (default: the case's outputs)."""
        names = outputs or get_case(self.spec.case).outputs
        cols = [getattr(self, name) for name in names]
        if isinstance(cols[0], np.ndarray):
            return np.column_stack(cols)
        import dask.array as da

        return da.stack(cols, axis=1)


def load_dataset(path: str | os.PathLike, lazy: bool = False) -> Dataset:
    """Read a complete dataset written by :func:`~sasview_grf_plugin.datasets.generate_dataset`."""
    return DatasetStore.open(path).read(lazy=lazy)
