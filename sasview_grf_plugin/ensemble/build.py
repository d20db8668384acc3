"""Building the ensemble-mean table with the package's own simulator.

Units: dimensionless. Lengths are in units of the scaling parameter a, wave numbers in 1/a;
a structure with scaling parameter a scatters a^3 F(q a).

What one realization contributes
--------------------------------
One periodic box of ``grid_size`` voxels of a/``voxels_per_a`` holds one GRF psi (the
simulator's :func:`~sasview_grf_plugin.simulator.gaussian_random_field`). From it, for every
porosity node eps, smoothing node s = sigma/a and layer-fraction node nu, we form

* LC: the level cut {psi < t_eps}, the sigma = 0 structure whose ensemble mean is exact
  (:mod:`.levelcut`);
* A: pore + layer = {psi'' < t_eps}, psi'' the LC smoothed by a Gaussian of width sigma (the
  paper's steps 2-4; A alone is the two-phase structure);
* B: pore = {psi'' < t_eps(1-nu)};  L = A - B: the layer;
* LB: the level cut {psi < t_eps(1-nu)} and the band {t_eps(1-nu) <= psi < t_eps}, whose
  ensemble means are exact too (:func:`.levelcut.band_curve`): the controls of B and L.

and sums each indicator's |FFT|^2 over thin shells (bins) of |q|, without the Gaussian window
of the paper's Eqs. 3-4 (a resolution of the finite box, not a property of the structure).

Two choices make the estimate converge to the continuum, infinite-box limit:

* Ratio estimator (control variate): the table stores E[X] / E[control] per bin (A against LC,
  B against LB, L against the band), multiplied later by the control's exact curve. X and its
  control come from the same field, so realization scatter, the box's per-bin wave-vector
  sampling, the per-box quantile and most of the voxel aliasing cancel in the ratio.
* Partial-volume indicators: a voxel at level f with gradient |grad f| is filled by
  clip(1/2 + (t - f) / |grad f|, 0, 1) (a linear ramp one voxel wide across the interface)
  instead of 0/1. Interfaces are then not staircases, and a layer thinner than a voxel keeps
  its volume (the paper's voxel model loses such layers to sampling). The thresholds t are
  the exact quantiles of f, as in the simulator.

Chunks
------
Each realization is one ``.npz`` file written atomically under the build directory, next to
``spec.json``; a rerun skips what exists (resumable, nothing lost on interruption). Realization
r uses child r of ``SeedSequence(seed)``, so chunks made anywhere (GPU, Dask workers) combine.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..simulator.backends import get_backend
from ..simulator.config import SimulationConfig
from ..simulator.grid import fourier_grid
from ..simulator.seeds import child_seed
from ..simulator.structure import gaussian_random_field

__all__ = ["EnsembleSpec", "build_realizations", "compute_realization", "load_sums", "DEFAULT_SPEC", "check_build",
           "read_spec", "BUILD_WORK_LIMIT"]


@dataclass(frozen=True)
class EnsembleSpec:
    """Everything that defines the Monte-Carlo part of the table (dimensionless units)."""

    grid_size: int = 144
    voxels_per_a: float = 8.0
    porosity: tuple[float, ...] = (0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                                   0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.96, 0.98)
    smoothing: tuple[float, ...] = (0.1, 0.14, 0.2, 0.3, 0.45, 0.65, 0.9, 1.25)
    layer_fraction: tuple[float, ...] = (0.02, 0.05, 0.1, 0.18, 0.3, 0.45, 0.6)
    n_bins: int = 60
    seed: int = 20261201
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lists or numpy numbers as given by a caller compare equal to the spec read back from JSON.
        for k in ("porosity", "smoothing", "layer_fraction"):
            object.__setattr__(self, k, tuple(float(v) for v in getattr(self, k)))
        for k in ("grid_size", "n_bins", "seed", "version"):
            object.__setattr__(self, k, int(getattr(self, k)))
        object.__setattr__(self, "voxels_per_a", float(self.voxels_per_a))
        if self.grid_size < 8 or not (math.isfinite(self.voxels_per_a) and self.voxels_per_a > 0) or self.n_bins < 4:
            raise ValueError(f"grid_size >= 8, a finite voxels_per_a > 0 and n_bins >= 4 needed, got {self.grid_size}, "
                             f"{self.voxels_per_a}, {self.n_bins}")
        if self.seed < 0:
            raise ValueError(f"the seed must be a non-negative integer, got {self.seed}")
        for k in ("porosity", "smoothing", "layer_fraction"):
            v = getattr(self, k)
            lo, hi = (0.0, 1.0) if k != "smoothing" else (0.0, math.inf)
            if not v or not all(math.isfinite(x) and lo < x < hi for x in v) or list(v) != sorted(set(v)):
                raise ValueError(f"{k} nodes must be distinct, increasing and inside ({lo:g}, {hi:g}), got {list(v)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("porosity", "smoothing", "layer_fraction"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnsembleSpec:
        d = dict(d)
        for k in ("porosity", "smoothing", "layer_fraction"):
            d[k] = tuple(float(v) for v in d[k])
        return cls(**d)

    @property
    def box(self) -> float:
        """Box edge in units of a."""
        return self.grid_size / self.voxels_per_a


DEFAULT_SPEC = EnsembleSpec()
_ARRAYS = ("lc", "aa", "lb", "band", "bb", "ll")


def _bins(spec: EnsembleSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-shell bin index (-1: unused) and the bin edges in |k| (index units) up to the axis Nyquist."""
    n = spec.grid_size
    s = np.arange(3 * (n // 2) ** 2 + 1)
    k = np.sqrt(s)
    edges = np.geomspace(0.99, n / 2 + 1e-9, spec.n_bins + 1)
    idx = np.searchsorted(edges, k, side="right") - 1
    idx[(k < edges[0]) | (k > edges[-1])] = -1
    return idx, edges


def bin_geometry(spec: EnsembleSpec) -> tuple[np.ndarray, np.ndarray]:
    """Wave-vector counts per bin and their mean |q| a (empty bins have count 0)."""
    from ..simulator.grid import shell_counts

    idx, _ = _bins(spec)
    counts = shell_counts(spec.grid_size)
    use = idx >= 0
    n_b = np.bincount(idx[use], weights=counts[use], minlength=spec.n_bins)
    k = np.sqrt(np.arange(counts.size))
    qk = np.bincount(idx[use], weights=(counts * k)[use], minlength=spec.n_bins)
    dq = 2.0 * math.pi / spec.box
    with np.errstate(invalid="ignore", divide="ignore"):
        return n_b, dq * qk / n_b


def _soft_indicator(xp: Any, f: Any, grad: Any, t: Any, dtype: Any = np.float32) -> Any:
    # Partial volume of a one-voxel linear ramp across the level set f = t (f below t is "inside"). The
    # levels need float64 (see _threshold_kernel); an indicator whose spectrum is only binned does not,
    # and float32 halves the cost of its FFT.
    out = (t - f) / grad
    out += 0.5
    xp.clip(out, 0.0, 1.0, out=out)
    return out.astype(dtype, copy=False)


def _grad_norm(xp: Any, f: Any) -> Any:
    # Periodic central differences, per voxel; floored so flat regions give hard 0/1 values.
    g = xp.zeros_like(f)
    for axis in range(3):
        d = xp.roll(f, -1, axis=axis) - xp.roll(f, 1, axis=axis)
        d *= 0.5
        g += d * d
    xp.sqrt(g, out=g)
    xp.maximum(g, f.dtype.type(1e-300), out=g)
    return g


#: Tie-breaking levels of the thresholded field: primary smoothing sigma, then 4 sigma and 16 sigma with
#: these weights (see :func:`_threshold_kernel`).
_TIE_LEVELS = ((1.0, 1.0), (4.0, 1e-6), (16.0, 1e-12))


def _sampled_gaussian(be: Any, n: int, sigma_vox: float) -> Any:
    """Half-space spectrum of the sampled periodic 3D Gaussian exp(-|m|^2 / (2 sigma^2)), normalized.

    Unlike exp(-sigma^2 k^2 / 2) cut off at the Nyquist frequency (the simulator's kernel, exact to
    1e-26 at its sigma = 2 voxels), this kernel has no ringing in real space for sigma below ~1.5
    voxels: its tails are the Gaussian's own, which the tie-breaking below relies on.
    """
    m = np.fft.fftfreq(n, 1.0 / n)
    g = np.exp(-0.5 * (m / sigma_vox) ** 2)
    k1 = np.fft.fft(g).real / g.sum()
    xp = be.xp
    k = xp.asarray(k1)
    kh = xp.asarray(k1[: n // 2 + 1])
    return k[:, None, None] * k[None, :, None] * kh[None, None, :]


def _threshold_kernel(be: Any, n: int, sigma_vox: float) -> Any:
    """Half-space kernel that turns the pore indicator's spectrum into the float64 field whose quantiles
    are pore, layer and solid.

    The simulator thresholds psi'' = G_sigma * (binary that is 0 on the pore), lowest values = pore. Deep
    inside the pore psi'' is a Gaussian tail that float32 (the simulator) or float64 round-off flattens
    beyond ~6 or ~8 sigma from the solid: there the quantiles, hence thick layers, would be set by
    round-off noise. In exact arithmetic the tail orders points by their distance from the solid; we
    keep that order by adding the same binary smoothed at 4 sigma and 16 sigma with weights 1e-6 and
    1e-12, below the primary field's resolved variation and above the round-off of the level before.
    Smoothing is linear, so the three levels are one kernel and one inverse FFT. The sign makes the
    lowest values the pore, as in the simulator.
    """
    kernel = None
    for factor, weight in _TIE_LEVELS:
        part = (-weight) * _sampled_gaussian(be, n, factor * sigma_vox)
        kernel = part if kernel is None else kernel + part
    return kernel


def compute_realization(spec: EnsembleSpec, r: int, backend: str = "numpy") -> dict[str, np.ndarray]:
    """Bin sums of |FFT|^2 (intensity per unit volume, units a^3) for realization ``r``.

    Returns arrays ``lc`` (eps, bin), ``aa`` (eps, s, bin), ``lb`` and ``band`` (eps, nu, bin) and
    ``bb`` and ``ll`` (eps, s, nu, bin).
    """
    be = get_backend(backend)
    xp = be.xp
    n = spec.grid_size
    dx = 1.0 / spec.voxels_per_a
    cfg = SimulationConfig(grid_size=n, voxel_size=dx, q_min=0.1, q_max=1.0, dtype="float32")
    grid = fourier_grid(be, n)
    idx, _ = _bins(spec)
    use = idx >= 0
    to_bin = np.zeros((spec.n_bins, idx.size))
    to_bin[idx[use], np.flatnonzero(use)] = 1.0
    norm = dx**3 / n**3

    def binned(spectrum: Any) -> np.ndarray:
        return to_bin @ (grid.shell_sums(spectrum, squared_magnitude=True) * norm)

    psi = gaussian_random_field(cfg, 1.0, seed=child_seed(np.random.SeedSequence(spec.seed), r), backend=be)
    # float64 from here: the smoothed fields resolve Gaussian tails down to ~1e-13 (see _threshold_kernel).
    psi = psi.astype(np.float64)
    grad_psi = _grad_norm(xp, psi)
    sorted_psi = xp.sort(psi.ravel())
    n3 = n**3
    ne, ns, nn = len(spec.porosity), len(spec.smoothing), len(spec.layer_fraction)
    lc = np.zeros((ne, spec.n_bins))
    aa = np.zeros((ne, ns, spec.n_bins))
    bb = np.zeros((ne, ns, nn, spec.n_bins))
    ll = np.zeros_like(bb)
    lb = np.zeros((ne, nn, spec.n_bins))
    band = np.zeros_like(lb)

    def quantile(sorted_values: Any, frac: float) -> Any:
        k = min(max(int(round(frac * n3)), 1), n3 - 1)
        return 0.5 * (sorted_values[k - 1] + sorted_values[k])

    # The thresholding kernels depend on the smoothing only: made once per realization.
    kernels = [_threshold_kernel(be, n, s * spec.voxels_per_a) for s in spec.smoothing]
    for i, eps in enumerate(spec.porosity):
        # The level cut in float64: its smoothed spectrum defines the thresholded field's deep tails.
        f_lc64 = be.rfftn(_soft_indicator(xp, psi, grad_psi, quantile(sorted_psi, eps), np.float64))
        lc[i] = binned(f_lc64)
        f_lc = f_lc64.astype(np.complex64)
        for m, nu in enumerate(spec.layer_fraction):
            f_lb = be.rfftn(_soft_indicator(xp, psi, grad_psi, quantile(sorted_psi, eps * (1.0 - nu))))
            lb[i, m] = binned(f_lb)
            f_lb -= f_lc
            band[i, m] = binned(f_lb)
            del f_lb
        for j, kernel in enumerate(kernels):
            smooth = be.irfftn(f_lc64 * kernel, n)
            grad = _grad_norm(xp, smooth)
            srt = xp.sort(smooth.ravel())
            chi_a = _soft_indicator(xp, smooth, grad, quantile(srt, eps))
            f_a = be.rfftn(chi_a)
            del chi_a
            aa[i, j] = binned(f_a)
            for m, nu in enumerate(spec.layer_fraction):
                chi_b = _soft_indicator(xp, smooth, grad, quantile(srt, eps * (1.0 - nu)))
                f_b = be.rfftn(chi_b)
                del chi_b
                bb[i, j, m] = binned(f_b)
                f_b -= f_a
                ll[i, j, m] = binned(f_b)  # |F_A - F_B|^2 = |F_L|^2
            del smooth, grad, srt, f_a
    return {"lc": lc, "aa": aa, "lb": lb, "band": band, "bb": bb, "ll": ll}


BUILD_FORMAT = "sasview-grf-ensemble-build"
_CHUNK_NAME = re.compile(r"r(\d{6,})\.npz")
#: A realization costs FFTS_PER_FIELD FFT-sized passes per indicator field (forward FFT, gradient, clip);
#: the work limit is simulate's (2^34 voxel-realizations of ~5 FFTs each), in voxel-FFTs.
BUILD_WORK_LIMIT = 5 * 2**34
#: Realization files a build folder may hold.
MAX_REALIZATIONS = 10**6


def read_spec(path: str | os.PathLike) -> EnsembleSpec | None:
    """The spec of the build at ``path`` (None: no build there)."""
    spec_file = Path(path) / "spec.json"
    if not spec_file.exists():
        return None
    try:
        d = json.loads(spec_file.read_text(encoding="utf-8"))
        if not isinstance(d, dict) or d.pop("format", BUILD_FORMAT) != BUILD_FORMAT:
            raise ValueError("not written by sasview-grf ensemble build")
        return EnsembleSpec.from_dict(d)
    except (OSError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise ValueError(f"{spec_file} is not an ensemble build spec ({exc}); use another folder") from None


def spec_digest(spec: EnsembleSpec) -> str:
    """SHA-256 of the spec: every realization file carries it (a file of another build is never adopted)."""
    import hashlib

    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()


def field_count(spec: EnsembleSpec) -> int:
    """Indicator fields per realization: level cuts and their layer bands, then per smoothing node the
    smoothed field, A and one B per layer node."""
    ne, ns, nn = len(spec.porosity), len(spec.smoothing), len(spec.layer_fraction)
    return ne * (1 + nn) + ne * ns * (2 + nn)


def realization_memory(spec: EnsembleSpec) -> int:
    """Peak bytes of one realization in :func:`compute_realization` (estimate, NumPy backend)."""
    n3 = float(spec.grid_size) ** 3
    half = float(spec.grid_size) ** 2 * (spec.grid_size // 2 + 1)
    shells = 3 * (spec.grid_size // 2) ** 2 + 1
    # float64 fields (psi, its gradient and sorted copy, the smoothed field, its gradient and sorted copy,
    # a soft indicator), complex spectra (one complex128, three complex64), the thresholding kernels
    # (float64 half spectra, one per smoothing node) and the shell-to-bin matrix.
    return int(8 * 7 * n3 + (16 + 3 * 8) * half + 8 * half * len(spec.smoothing) + 8 * shells * (spec.n_bins + 2))


def check_build(spec: EnsembleSpec, n_realizations: int, allow_long: bool = False, check_memory: bool = True) -> None:
    """Refuse a build beyond the work limit (unless ``allow_long``) or one realization beyond free memory.

    Raises
    ------
    ValueError
        With the estimate, the limit and the way out.
    """
    if isinstance(n_realizations, bool) or not isinstance(n_realizations, (int, np.integer)) or n_realizations < 1:
        raise ValueError(f"n_realizations must be >= 1 (--realizations: a positive integer), got {n_realizations!r}")
    if n_realizations > MAX_REALIZATIONS:
        raise ValueError(f"--realizations {n_realizations} is more than the {MAX_REALIZATIONS:.0e} realization files "
                         "a build folder holds; tables converge long before (see docs)")
    work = float(n_realizations) * field_count(spec) * float(spec.grid_size) ** 3
    if work > BUILD_WORK_LIMIT and not allow_long:
        raise ValueError(f"{n_realizations} realization(s) of {field_count(spec)} fields on {spec.grid_size}^3 voxels "
                         f"is {work:.3g} voxel-FFTs, more than the limit of {BUILD_WORK_LIMIT:.3g} (hours of "
                         "computing); use fewer realizations or a smaller --grid-size, or pass --allow-long to run "
                         "it anyway")
    if check_memory:
        import psutil

        need, free = realization_memory(spec), int(psutil.virtual_memory().available)
        if need > free:
            raise ValueError(f"one realization of {spec.grid_size}^3 voxels needs about {need / 2**30:.3g} GiB of "
                             f"memory, but only {free / 2**30:.3g} GiB is available; use a smaller --grid-size (memory "
                             "grows as N^3), or --scheduler to run on workers with more memory")


class _Store:
    """A build directory: spec.json plus one npz per realization (written only by this class)."""

    def __init__(self, path: str | os.PathLike, spec: EnsembleSpec | None) -> None:
        from .._locks import LOCK_NAME

        self.path = Path(path)
        stored = read_spec(self.path)
        if stored is not None:
            if spec is not None and stored != spec:
                raise ValueError(f"{self.path} holds a build with another spec; use a new folder or the same spec")
            self.spec = stored
        else:
            if spec is None:
                raise ValueError(f"{self.path} holds no ensemble build (no spec.json)")
            # A new build starts in an empty folder: files this package did not write are never adopted.
            if self.path.exists() and any(p.name != LOCK_NAME for p in self.path.iterdir()):
                raise ValueError(f"{self.path} exists, is not empty and holds no ensemble build; give a new or "
                                 "empty folder")
            self.path.mkdir(parents=True, exist_ok=True)
            spec_file = self.path / "spec.json"
            tmp = self.path / ".spec.json.tmp"
            tmp.write_text(json.dumps({"format": BUILD_FORMAT, **spec.to_dict()}, indent=1), encoding="utf-8")
            os.replace(tmp, spec_file)
            self.spec = spec
        self.digest = spec_digest(self.spec)

    def chunk(self, r: int) -> Path:
        return self.path / f"r{r:06d}.npz"

    def done(self) -> list[int]:
        out = []
        for p in self.path.glob("r*.npz"):
            m = _CHUNK_NAME.fullmatch(p.name)
            if m and p.is_file() and not p.is_symlink():
                out.append(int(m.group(1)))
        return sorted(out)

    def write(self, r: int, arrays: dict[str, np.ndarray]) -> None:
        tmp = self.path / f".r{r:06d}.{os.getpid()}.tmp.npz"
        np.savez(tmp, **arrays, spec_sha256=np.array(self.digest))
        os.replace(tmp, self.chunk(r))


def _compute_and_write(path: str, r: int, backend: str) -> int:
    store = _Store(path, None)
    store.write(r, compute_realization(store.spec, r, backend))
    return r


def build_realizations(path: str | os.PathLike, n_realizations: int, spec: EnsembleSpec | None = None,
                       backend: str = "numpy", client: Any = None, progress: bool = True,
                       allow_long: bool = False) -> list[int]:
    """Make realizations 0 .. n_realizations-1 under ``path`` (resumable); returns those made now.

    Everything that can be refused (the spec, the backend, the work and memory guards of
    :func:`check_build`, another run writing to the folder) is refused before anything is written,
    so a corrected rerun is never blocked by a refused one. With a ``dask.distributed.Client`` the
    realizations run as tasks on its workers (each writes its own chunk, so the folder must be
    shared); otherwise in this process.
    """
    from .._locks import writer_lock

    stored = read_spec(path)
    if stored is not None and spec is not None and stored != spec:
        raise ValueError(f"{path} holds a build with another spec; use a new folder or the same spec")
    use = stored or spec or DEFAULT_SPEC
    check_build(use, n_realizations, allow_long=allow_long, check_memory=client is None)
    if client is None:
        get_backend(backend)  # a missing CuPy is refused here, before the folder exists
    with writer_lock(path, what="ensemble build"):
        store = _Store(path, use)
        done = set(store.done())
        # Pending realizations one at a time: no set or list of all n indices (n may be large).
        pending = (r for r in range(n_realizations) if r not in done)
        n_pending = n_realizations - sum(1 for r in done if r < n_realizations)
        from tqdm.auto import tqdm

        bar = tqdm(total=n_realizations, initial=n_realizations - n_pending, unit="box",
                   desc="ensemble", disable=not progress)
        made = []
        try:
            if client is not None:
                from dask.distributed import as_completed

                # Submitted in windows, so the scheduler never holds all n tasks at once.
                window = max(1, 4 * len(client.scheduler_info().get("workers", {})) or 4)
                running = as_completed([])
                for r in pending:
                    running.add(client.submit(_compute_and_write, str(store.path), r, backend, pure=False))
                    if running.count() >= window:
                        made.append(next(running).result())
                        bar.update()
                for fut in running:
                    made.append(fut.result())
                    bar.update()
            else:
                for r in pending:
                    store.write(r, compute_realization(store.spec, r, backend))
                    made.append(r)
                    bar.update()
        finally:
            bar.close()
    return made


def load_sums(path: str | os.PathLike) -> tuple[EnsembleSpec, dict[str, np.ndarray]]:
    """The spec and per-realization arrays (stacked along a leading axis) of a build folder."""
    store = _Store(path, None)
    done = store.done()
    if not done:
        raise ValueError(f"{store.path} holds no realizations yet")
    stacks: dict[str, list[np.ndarray]] = {}
    spec = store.spec
    ne, ns, nn, nb = len(spec.porosity), len(spec.smoothing), len(spec.layer_fraction), spec.n_bins
    shapes = {"lc": (ne, nb), "aa": (ne, ns, nb), "lb": (ne, nn, nb), "band": (ne, nn, nb), "bb": (ne, ns, nn, nb),
              "ll": (ne, ns, nn, nb)}
    for r in done:
        path = store.chunk(r)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in _ARRAYS}
                digest = str(z["spec_sha256"]) if "spec_sha256" in z.files else None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path} is unreadable ({exc}); delete it and rerun the build to remake it") from None
        if digest is not None and digest != store.digest:
            raise ValueError(f"{path} was written by a build with another spec, not this one; delete it and rerun")
        bad = [k for k in _ARRAYS if arrays[k].shape != shapes[k] or arrays[k].dtype != np.float64
               or not np.all(np.isfinite(arrays[k]))]
        if bad:
            raise ValueError(f"{path}: arrays {', '.join(bad)} do not match the build's spec (shape, float64, "
                             "finite); delete the file and rerun")
        for k in _ARRAYS:
            stacks.setdefault(k, []).append(arrays[k])
    return spec, {k: np.stack(v) for k, v in stacks.items()}
