"""Morphology of labelled periodic voxel structures: volume fractions, interface area, chords, connectivity.

Every function takes a NumPy array on a periodic cubic grid (the simulator's boxes are periodic, so the
box faces are no interfaces and clusters continue across them) and a voxel edge ``voxel`` in any length
unit; results come in that unit (areas per volume in 1/unit, lengths in unit).

Choices (well-kept libraries first):

- **Interface area per volume** by the stereological intercept estimator S_V = 2 P_L (Crofton; Underwood
  1970): P_L is the number of phase changes per unit length of test line, here the three grid axes over
  the whole box. This is the voxel-face count with the usual isotropy correction 2/3 (a face count
  alone overestimates an isotropic surface by 3/2, the mean of ``|n_x| + |n_y| + |n_z|`` over directions).
  Unbiased for isotropic structures once the voxel resolves the interfaces, exact in periodic boxes,
  and a single vectorized pass. :func:`surface_area_marching_cubes` (scikit-image's marching cubes and
  mesh area) is the mesh-based alternative, for comparison.
- **Chord lengths** along the three axes (periodic run lengths, vectorized NumPy): their distribution
  is the classic stereological size measure of porous media (mean chord 4 phi / S_V).
- **Pore sizes** (opt-in, :func:`pore_size_distribution`): the continuous pore-size distribution of Münch and
  Holzer (2008), the volume fraction that spheres of radius >= r fitting inside the phase can cover
  (morphological opening), from SciPy's Euclidean distance transforms: one transform per radius, so it costs
  seconds per radius at 256^3 and is not part of the default run.
- **Connectivity** by :func:`scipy.ndimage.label` (face connectivity) and a union-find across the
  periodic faces that tracks the winding of each cluster: a cluster *percolates* when it wraps around
  the periodic box, i.e. it connects to its own periodic image (an infinite cluster of the periodic
  medium). PoreSpy offers such measures too, but pulls in VTK and PyVista (hundreds of MB) for what
  SciPy does here in a few lines.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "PHASE_NAMES",
    "volume_fractions",
    "surface_area_density",
    "surface_area_marching_cubes",
    "chord_lengths",
    "percolation",
    "phase_masks",
    "pore_size_distribution",
]

#: Labels of the simulator: 0 pore, 1 layer, 2 solid.
PHASE_NAMES = ("pore", "layer", "solid")


def _check_volume(volume: Any, what: str = "volume") -> np.ndarray:
    arr = np.asarray(volume)
    if arr.ndim != 3 or len(set(arr.shape)) != 1 or arr.shape[0] < 2:
        raise ValueError(f"{what} must be a cubic 3-D array (N, N, N) with N >= 2, got shape {arr.shape}")
    return arr


def _check_voxel(voxel: float) -> float:
    v = float(voxel)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"voxel must be a finite length > 0, got {voxel!r}")
    return v


def phase_masks(labels: Any) -> dict[str, np.ndarray]:
    """Boolean masks of the phases present in ``labels`` (0 pore, 1 layer, 2 solid), and of the two
    interfaces' indicators: ``"pore+layer"`` (its boundary is the solid's) for three phases."""
    lab = _check_volume(labels, "labels")
    out = {name: lab == k for k, name in enumerate(PHASE_NAMES)}
    if out["layer"].any():
        out["pore+layer"] = out["pore"] | out["layer"]
    else:
        out.pop("layer")
    return out


def volume_fractions(labels: Any, n_labels: int = 3) -> np.ndarray:
    """Fraction of voxels with each label 0 .. n_labels - 1 (exact counts)."""
    lab = _check_volume(labels, "labels")
    counts = np.bincount(lab.ravel(), minlength=n_labels)
    if counts.size > n_labels:
        raise ValueError(f"labels must lie in 0..{n_labels - 1}, found {int(lab.max())}")
    return counts / lab.size


def _transitions(mask: np.ndarray, axis: int) -> int:
    # Periodic: the pair (last, first) along the axis is a neighbour pair like any other.
    a = np.moveaxis(mask, axis, 0)
    n = int(np.count_nonzero(a[1:] != a[:-1]))
    return n + int(np.count_nonzero(a[0] != a[-1]))


def surface_area_density(mask: Any, voxel: float) -> float:
    """Interface area per unit volume of the set ``mask`` (1/length), S_V = 2 P_L over the three axes.

    P_L = (phase changes counted along all grid lines of one axis) / (total line length), averaged over
    the axes; equal to (number of voxel faces between the set and its complement) x (2/3) / volume.
    """
    m = _check_volume(mask, "mask").astype(bool, copy=False)
    dx = _check_voxel(voxel)
    n3 = m.size
    p_l = sum(_transitions(m, ax) for ax in range(3)) / (3.0 * n3 * dx)
    return 2.0 * p_l


def surface_area_marching_cubes(mask: Any, voxel: float) -> float:
    """Interface area per unit volume of ``mask`` from a marching-cubes mesh (scikit-image), periodic.

    The mask is padded by one periodic layer so that the mesh covers exactly the box's N^3 cells; the
    level 0.5 of the binary indicator puts vertices on edge midpoints. Slower than
    :func:`surface_area_density` and biased high on binary voxels (the mesh follows the staircase),
    kept as the mesh-based comparison.
    """
    from skimage.measure import marching_cubes, mesh_surface_area

    m = _check_volume(mask, "mask").astype(np.float32)
    dx = _check_voxel(voxel)
    if m.min() == m.max():
        return 0.0
    padded = np.pad(m, ((0, 1), (0, 1), (0, 1)), mode="wrap")
    verts, faces, _, _ = marching_cubes(padded, level=0.5, spacing=(dx, dx, dx))
    return float(mesh_surface_area(verts, faces)) / (m.size * dx**3)


def chord_lengths(mask: Any, voxel: float) -> np.ndarray:
    """Lengths of all chords of ``mask`` along the three grid axes (periodic), in units of ``voxel``.

    A grid line that lies entirely inside the set has no finite chord and is left out (its chord is
    longer than the box).
    """
    m = _check_volume(mask, "mask").astype(bool, copy=False)
    dx = _check_voxel(voxel)
    n = m.shape[0]
    out = []
    for ax in range(3):
        rows = np.moveaxis(m, ax, -1).reshape(-1, n)
        prev = np.roll(rows, 1, axis=1)
        nxt = np.roll(rows, -1, axis=1)
        sr, sc = np.nonzero(rows & ~prev)  # chord starts, row-major: sorted by row, then column
        er, ec = np.nonzero(rows & ~nxt)  # chord ends, same order; each row has as many as starts
        if sr.size == 0:
            continue
        # Per row: if the first end lies before the first start, the row's last chord wraps around,
        # and start i pairs with end i + 1 (cyclically within the row).
        row_ids, first, counts = np.unique(sr, return_index=True, return_counts=True)
        wraps = ec[first] < sc[first]
        shift = np.repeat(wraps.astype(np.int64), counts)
        offset = np.repeat(first, counts)
        local = np.arange(sr.size) - offset
        partner = offset + (local + shift) % np.repeat(counts, counts)
        out.append(((ec[partner] - sc) % n + 1).astype(np.float64))
    if not out:
        return np.zeros(0)
    return np.concatenate(out) * dx


class _WindingUnionFind:
    """Union-find over cluster labels with an integer 3-vector offset per node (its periodic image)."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)
        self.offset = np.zeros((n, 3), dtype=np.int64)
        self.wraps = np.zeros(n, dtype=bool)

    def find(self, x: int) -> tuple[int, np.ndarray]:
        path = []
        while self.parent[x] != x:
            path.append(x)
            x = int(self.parent[x])
        root = x
        # Compress: offsets become relative to the root (sum along the path, from the root down).
        total = np.zeros(3, dtype=np.int64)
        for node in reversed(path):
            total = total + self.offset[node]
            self.offset[node] = total
            self.parent[node] = root
        return root, (self.offset[path[0]].copy() if path else np.zeros(3, dtype=np.int64))

    def union(self, a: int, b: int, shift: np.ndarray) -> None:
        """Join a and b, with b's position = a's position + shift (in box lengths)."""
        ra, oa = self.find(a)
        rb, ob = self.find(b)
        if ra == rb:
            if np.any(ob - oa != shift):
                self.wraps[ra] = True  # a loop through the periodic images: the cluster is infinite
            return
        # pos(b) = pos(rb) + ob = pos(a) + shift = pos(ra) + oa + shift  ->  pos(rb) = pos(ra) + oa + shift - ob
        self.parent[rb] = ra
        self.offset[rb] = oa + shift - ob
        self.wraps[ra] |= self.wraps[rb]


def percolation(mask: Any) -> dict[str, float]:
    """Connectivity of a set in the periodic box (face-connected voxels).

    Returns
    -------
    dict
        ``percolating_fraction``: fraction of the set's voxels in clusters that wrap around the periodic
        box (the infinite, percolating clusters of the periodic medium); ``largest_fraction``: fraction in
        the largest cluster; ``n_clusters``: number of clusters after joining across the periodic faces.
    """
    from scipy import ndimage

    m = _check_volume(mask, "mask").astype(bool, copy=False)
    total = int(np.count_nonzero(m))
    if total == 0:
        return {"percolating_fraction": 0.0, "largest_fraction": 0.0, "n_clusters": 0}
    lab, n = ndimage.label(m)  # face connectivity (6 neighbours)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    uf = _WindingUnionFind(n + 1)
    for ax in range(3):
        last = np.take(lab, -1, axis=ax).ravel()
        first = np.take(lab, 0, axis=ax).ravel()
        both = (last > 0) & (first > 0)
        if not both.any():
            continue
        pairs = np.unique(np.stack([last[both], first[both]], axis=1), axis=0)
        shift = np.zeros(3, dtype=np.int64)
        shift[ax] = 1  # the cell at index 0 of the next box follows the cell at index N-1
        for a, b in pairs:
            uf.union(int(a), int(b), shift)
    roots = uf.parent.copy()
    while True:  # pointer jumping to the roots (offsets are not needed any more)
        nxt = roots[roots]
        if np.array_equal(nxt, roots):
            break
        roots = nxt
    cluster_sizes = np.bincount(roots[1:], weights=sizes[1:], minlength=n + 1)
    wrapping = uf.wraps[roots[1:]]
    perc = float(np.sum(sizes[1:][wrapping])) / total
    return {"percolating_fraction": perc, "largest_fraction": float(cluster_sizes.max()) / total,
            "n_clusters": int(np.count_nonzero(cluster_sizes))}


def pore_size_distribution(mask: Any, voxel: float, radii: Any = None,
                           n_radii: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Continuous pore-size distribution (Münch & Holzer 2008) of the set ``mask``, periodic.

    For each radius r, the opening of the set by a ball of radius r (the union of all balls of radius r
    inside the set) is ``{y : dist(y, {x : d(x) >= r + 1/2}) <= r + 1/2}`` with d the distance (voxel centres)
    to the set's complement;
    the fraction of the set it covers, F(r), falls from 1 to 0. The pore (phase) diameter distribution is
    -dF/d(2r); the median diameter is 2r where F = 1/2.

    Parameters
    ----------
    mask
        Boolean (N, N, N) set.
    voxel
        Voxel edge (length unit of the result).
    radii
        Radii in voxels (default: ``n_radii`` geometric steps from 1 voxel to the largest distance).

    Returns
    -------
    (radii, covered)
        Radii in length units and F(r).
    """
    from scipy import ndimage

    m = _check_volume(mask, "mask").astype(bool, copy=False)
    dx = _check_voxel(voxel)
    total = int(np.count_nonzero(m))
    if total == 0:
        raise ValueError("the set is empty: no pore sizes")
    n = m.shape[0]
    pad = n // 4
    # Periodic: pad by wrapping, far enough that the distances of the box's own voxels are exact (up to n/4).
    d_full = ndimage.distance_transform_edt(np.pad(m, pad, mode="wrap"))
    c = slice(pad, pad + n)
    d = d_full[c, c, c]
    if radii is None:
        r_max = float(d.max())
        radii = np.unique(np.geomspace(1.0, max(r_max, 1.0), int(n_radii)))
    radii = np.asarray(radii, dtype=np.float64)
    if radii.max() > pad - 2:
        raise ValueError(f"radii up to {radii.max():g} voxels exceed a quarter of the box less 2 ({pad - 2} voxels)")
    covered = []
    for r in radii:
        # Voxel centres: a ball of radius r fits at x when x's distance to the nearest outside voxel centre is
        # at least r + 1/2 (the set's boundary lies half a voxel before it), and it covers the voxels whose
        # centres lie within r + 1/2 of x. At r -> 0 every voxel of the set is covered. Only centres within
        # r + 1/2 of the box matter: the transform runs on a margin of ceil(r) + 2 voxels.
        w = int(math.ceil(r)) + 2
        sub = slice(pad - w, pad + n + w)
        centres = d_full[sub, sub, sub] >= r + 0.5
        if not centres.any():
            covered.append(0.0)
            continue
        inner = slice(w, w + n)
        opened = ndimage.distance_transform_edt(~centres)[inner, inner, inner] <= r + 0.5
        covered.append(float(np.count_nonzero(opened & m)) / total)
    return radii * dx, np.asarray(covered)
