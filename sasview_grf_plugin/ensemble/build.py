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

__all__ = ["EnsembleSpec", "build_realizations", "compute_realization", "load_sums", "DEFAULT_SPEC"]


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
        if self.grid_size < 8 or self.voxels_per_a <= 0 or self.n_bins < 4:
            raise ValueError(f"grid_size >= 8, voxels_per_a > 0 and n_bins >= 4 needed, got {self.grid_size}, "
                             f"{self.voxels_per_a}, {self.n_bins}")

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


class _Store:
    """A build directory: spec.json plus one npz per realization."""

    def __init__(self, path: str | os.PathLike, spec: EnsembleSpec | None) -> None:
        self.path = Path(path)
        spec_file = self.path / "spec.json"
        if spec_file.exists():
            try:
                stored = EnsembleSpec.from_dict(json.loads(spec_file.read_text(encoding="utf-8")))
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"{spec_file} is not an ensemble build spec: {exc}") from None
            if spec is not None and stored != spec:
                raise ValueError(f"{self.path} holds a build with another spec; use a new folder or the same spec")
            self.spec = stored
        else:
            if spec is None:
                raise ValueError(f"{self.path} holds no ensemble build (no spec.json)")
            self.path.mkdir(parents=True, exist_ok=True)
            tmp = spec_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(spec.to_dict(), indent=1), encoding="utf-8")
            os.replace(tmp, spec_file)
            self.spec = spec

    def chunk(self, r: int) -> Path:
        return self.path / f"r{r:06d}.npz"

    def done(self) -> list[int]:
        out = []
        for p in self.path.glob("r*.npz"):
            try:
                out.append(int(p.stem[1:]))
            except ValueError:
                continue
        return sorted(out)

    def write(self, r: int, arrays: dict[str, np.ndarray]) -> None:
        tmp = self.path / f".r{r:06d}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, self.chunk(r))


def _compute_and_write(path: str, r: int, backend: str) -> int:
    store = _Store(path, None)
    store.write(r, compute_realization(store.spec, r, backend))
    return r


def build_realizations(path: str | os.PathLike, n_realizations: int, spec: EnsembleSpec | None = None,
                       backend: str = "numpy", client: Any = None, progress: bool = True) -> list[int]:
    """Make realizations 0 .. n_realizations-1 under ``path`` (resumable); returns those made now.

    With a ``dask.distributed.Client`` the realizations run as tasks on its workers (each writes
    its own chunk, so the folder must be shared); otherwise in this process.
    """
    if n_realizations < 1:
        raise ValueError(f"n_realizations must be >= 1, got {n_realizations}")
    store = _Store(path, spec if spec is not None else (None if (Path(path) / "spec.json").exists()
                                                        else DEFAULT_SPEC))
    pending = sorted(set(range(n_realizations)) - set(store.done()))
    from tqdm.auto import tqdm

    bar = tqdm(total=n_realizations, initial=n_realizations - len(pending), unit="box",
               desc="ensemble", disable=not progress)
    made = []
    if client is not None:
        from dask.distributed import as_completed

        futures = client.map(_compute_and_write, [str(store.path)] * len(pending), pending,
                             [backend] * len(pending), pure=False)
        for fut in as_completed(futures):
            made.append(fut.result())
            bar.update()
    else:
        for r in pending:
            store.write(r, compute_realization(store.spec, r, backend))
            made.append(r)
            bar.update()
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
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path} is unreadable ({exc}); delete it and rerun the build to remake it") from None
        bad = [k for k in _ARRAYS if arrays[k].shape != shapes[k]]
        if bad:
            raise ValueError(f"{path}: arrays {', '.join(bad)} do not match the build's spec; "
                             "delete the file and rerun")
        for k in _ARRAYS:
            stacks.setdefault(k, []).append(arrays[k])
    return spec, {k: np.stack(v) for k, v in stacks.items()}
