"""Low-latency evaluation of XGBoost tree ensembles for a few curves at a time.

XGBoost (and Treelite's GTIL) walk one tree after another: each level of each tree is a dependent
load and a hard-to-predict branch. For one curve through a three-phase bundle (6,100-7,700 trees in
six boosters) that costs 2-7 ms on a 2-core EPYC once the trees no longer fit in L2, although each
booster alone, warm in cache, takes 0.1-0.4 ms (see docs/benchmarks.md). :class:`FlatForest` instead
stores the nodes of all boosters in flat arrays and advances *every* tree one level per step with
NumPy gathers (no branches, independent loads), so one curve costs ``max_depth`` vectorized steps:
0.2-0.4 ms for the same trees. Batches of many curves stay with XGBoost's own multithreaded
``inplace_predict``, which is faster there.

The arrays are read from XGBoost's documented JSON model schema and follow its prediction rule, so
every sample reaches the same leaf in every tree: a sample goes left when ``x < split_condition``
(float32) and follows ``default_left`` when the feature is missing (NaN); a leaf's value is its
``split_condition``; outputs add the intercept (``base_score``). The sums are taken in float64
(XGBoost adds in float32), so values agree to float32 rounding (about 1e-6 relative). Only what the
bundles use is supported (``gbtree``, numerical splits, scalar leaves, identity-link objectives);
anything else is refused with a ``ValueError`` naming it, and callers fall back to XGBoost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FlatForest", "IDENTITY_OBJECTIVES"]

# Objectives whose prediction is the raw sum of leaves plus the intercept.
IDENTITY_OBJECTIVES = ("reg:squarederror", "reg:quantileerror", "reg:absoluteerror", "reg:pseudohubererror")


def _base_scores(text: str | float, n: int) -> np.ndarray:
    # XGBoost >= 3 writes a vector "[v1,v2]", older versions a scalar "5E-1".
    values = np.array([float(v) for v in str(text).strip("[]").split(",") if v.strip()], dtype=np.float64)
    if values.size == 1 and n > 1:
        values = np.repeat(values, n)
    if values.size != n:
        raise ValueError(f"base_score has {values.size} values for {n} targets")
    return values


def _booster_trees(doc: dict[str, Any], label: str) -> tuple[list[dict[str, Any]], list[int], np.ndarray, int]:
    """Trees, their target index, intercepts and the feature count of one booster's JSON model."""
    learner = doc["learner"]
    objective = learner["objective"]["name"]
    if objective not in IDENTITY_OBJECTIVES:
        raise ValueError(f"{label}: objective {objective!r} is not supported "
                         f"(allowed: {', '.join(IDENTITY_OBJECTIVES)})")
    gb = learner["gradient_booster"]
    if gb.get("name") != "gbtree":
        raise ValueError(f"{label}: booster type {gb.get('name')!r} is not supported (only 'gbtree')")
    model = gb["model"]
    if int(model["gbtree_model_param"].get("num_parallel_tree", 1)) != 1:
        raise ValueError(f"{label}: random-forest boosters (num_parallel_tree > 1) are not supported")
    params = learner["learner_model_param"]
    n_targets = max(int(params.get("num_target", 1)), int(params.get("num_class", 0)), 1)
    trees = model["trees"]
    for t in trees:
        if int(t["tree_param"].get("size_leaf_vector", 1)) > 1:
            raise ValueError(f"{label}: vector-leaf (multi_output_tree) models are not supported")
        if any(t.get("split_type", [])):
            raise ValueError(f"{label}: categorical splits are not supported")
    return trees, [int(i) for i in model["tree_info"]], _base_scores(params["base_score"], n_targets), \
        int(params["num_feature"])


@dataclass(frozen=True)
class FlatForest:
    """Trees of several boosters in flat arrays, outputs concatenated in booster order.

    Build with :meth:`from_boosters`; evaluate with :meth:`predict`.
    """

    feature: np.ndarray  # (nodes,) split feature; 0 at leaves
    threshold: np.ndarray  # (nodes,) float32 split condition; the leaf value at leaves
    children: np.ndarray  # (nodes, 2) left, right; a leaf points to itself
    default_left: np.ndarray  # (nodes,) bool
    roots: np.ndarray  # (trees,) root node of each tree, trees sorted by output
    starts: np.ndarray  # (outputs + 1,) tree range of each output
    intercept: np.ndarray  # (outputs,)
    depth: int
    n_features: int
    origin: np.ndarray  # (trees, 2): booster index and tree index within it

    @classmethod
    def from_boosters(cls, boosters: Sequence[Any], labels: Sequence[str] | None = None) -> FlatForest:
        """Flatten XGBoost boosters (their JSON models); outputs follow the boosters' order and targets."""
        labels = list(labels) if labels is not None else [f"booster {i}" for i in range(len(boosters))]
        if len(labels) != len(boosters):
            raise ValueError(f"{len(labels)} labels for {len(boosters)} boosters")
        per_tree, intercepts, n_features = [], [], None
        for b, (booster, label) in enumerate(zip(boosters, labels, strict=True)):
            doc = json.loads(bytes(booster.save_raw("json")))
            trees, info, base, nf = _booster_trees(doc, label)
            if len(info) != len(trees):
                raise ValueError(f"{label}: tree_info lists {len(info)} trees, the model has {len(trees)}")
            if info and not 0 <= min(info) <= max(info) < base.size:
                raise ValueError(f"{label}: tree_info names outputs outside 0-{base.size - 1}")
            if n_features is not None and nf != n_features:
                raise ValueError(f"{label} has {nf} features, the other boosters {n_features}")
            n_features = nf
            offset = len(intercepts)
            intercepts.extend(base)
            per_tree += [(offset + t, b, i, tree) for i, (tree, t) in enumerate(zip(trees, info, strict=True))]
        if not per_tree:
            raise ValueError("no trees to flatten")
        per_tree.sort(key=lambda r: r[0])  # stable: keeps each booster's tree order within an output

        def column(key: str, dtype: Any) -> np.ndarray:
            return np.concatenate([np.asarray(r[3][key], dtype=dtype) for r in per_tree])

        left, right = column("left_children", np.int64), column("right_children", np.int64)
        sizes = np.array([len(r[3]["left_children"]) for r in per_tree])
        base = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        offsets = np.repeat(base, sizes)
        leaf = left < 0
        own = np.arange(left.size)
        children = np.stack([np.where(leaf, own, left + offsets), np.where(leaf, own, right + offsets)], axis=1)
        feature = np.where(leaf, 0, column("split_indices", np.int64))
        if feature.max() >= n_features:
            raise ValueError(f"a split uses feature {int(feature.max())} of {n_features}")
        threshold = column("split_conditions", np.float32)
        default_left = column("default_left", bool)
        targets = np.array([r[0] for r in per_tree])
        starts = np.searchsorted(targets, np.arange(len(intercepts) + 1))
        # Depth: advance all trees level by level from the roots until every walk has reached a leaf.
        depth, frontier = 0, base[~leaf[base]]
        while frontier.size:
            depth += 1
            frontier = children[frontier].ravel()
            frontier = frontier[~leaf[frontier]]
        return cls(feature=feature.astype(np.intp), threshold=threshold, children=children.astype(np.intp),
                   default_left=default_left, roots=base.astype(np.intp), starts=starts,
                   intercept=np.asarray(intercepts, dtype=np.float64), depth=depth, n_features=int(n_features),
                   origin=np.array([(r[1], r[2]) for r in per_tree], dtype=np.int64))

    @property
    def n_outputs(self) -> int:
        return self.intercept.size

    def _output_range(self, outputs: slice) -> tuple[int, int]:
        first, last, step = outputs.indices(self.n_outputs)
        if step != 1:
            raise ValueError(f"outputs must be a contiguous slice (step 1), got {outputs}")
        return first, max(first, last)

    def _features(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected features of shape (n, {self.n_features}), got {x.shape}")
        return x

    def leaves(self, x: np.ndarray, outputs: slice = slice(None)) -> np.ndarray:
        """Leaf node (global index) reached in each tree of ``outputs``: shape (n, trees)."""
        x = self._features(x)
        first, last = self._output_range(outputs)
        roots = self.roots[self.starts[first]:self.starts[last]]
        # One flat gather per array and level: x.ravel()[row * n_features + feature], children.ravel()[2 node + right].
        flat_x = np.ascontiguousarray(x).ravel()
        row_offset = (np.arange(x.shape[0], dtype=np.intp) * self.n_features)[:, None]
        node = np.repeat(roots[None, :], x.shape[0], axis=0)
        missing = bool(np.isnan(flat_x).any())
        kids = self.children.ravel()
        for _ in range(self.depth):
            index = self.feature.take(node)
            if x.shape[0] > 1:
                index += row_offset
            value = flat_x.take(index)
            go_right = ~(value < self.threshold.take(node))  # NaN compares False: handled below
            if missing:
                go_right = np.where(np.isnan(value), ~self.default_left.take(node), go_right)
            node = kids.take(2 * node + go_right)
        return node

    def predict(self, x: np.ndarray, outputs: slice = slice(None), block: int = 64) -> np.ndarray:
        """Predictions of shape (n, number of selected outputs), float64.

        Rows are evaluated ``block`` at a time, which bounds the temporary (rows, trees) arrays.
        """
        x = self._features(x)
        first, last = self._output_range(outputs)
        starts = self.starts[first:last + 1] - self.starts[first]
        nonempty = starts[:-1] < starts[1:]
        sums = np.zeros((x.shape[0], last - first))
        if nonempty.any():
            for lo in range(0, x.shape[0], block):
                values = self.threshold.take(self.leaves(x[lo:lo + block], outputs)).astype(np.float64)
                sums[lo:lo + block, nonempty] = np.add.reduceat(values, starts[:-1][nonempty], axis=1)
        return sums + self.intercept[first:last]
