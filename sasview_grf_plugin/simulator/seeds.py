"""Reproducible randomness through :class:`numpy.random.SeedSequence`.

Children are derived without mutating the parent (unlike ``SeedSequence.spawn``),
so the same seed object gives the same numbers however often it is used: child
``i`` of a sequence is exactly what its ``spawn`` would return as the i-th child
of a fresh copy.
"""

from __future__ import annotations

from typing import Union

import numpy as np

__all__ = ["SeedLike", "as_seed_sequence", "child_seed", "realization_seeds"]

SeedLike = Union[None, int, np.integer, np.random.SeedSequence]


def as_seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """A :class:`~numpy.random.SeedSequence` from ``None`` (fresh entropy), an int >= 0, or a sequence."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be None, a non-negative integer or a numpy SeedSequence, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def child_seed(parent: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """The ``index``-th child of ``parent``, as ``parent.spawn`` would make it, without side effects."""
    return np.random.SeedSequence(
        parent.entropy, spawn_key=(*parent.spawn_key, int(index)), pool_size=parent.pool_size
    )


def realization_seeds(seed: np.random.SeedSequence, n_realizations: int) -> list[np.random.SeedSequence]:
    """Seeds of ``n_realizations`` independent structures for one parameter set.

    Realization 0 uses ``seed`` itself (so one realization equals
    ``generate_structure(..., seed=seed)``); realization r >= 1 uses child r.
    """
    return [seed] + [child_seed(seed, r) for r in range(1, n_realizations)]
