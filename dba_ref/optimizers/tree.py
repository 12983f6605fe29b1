"""Pytrees: the per-layer ``[(W, b), ...]`` lists of parameters, gradients, updates and moments.

Every optimizer reads and writes them through these few functions, leaf by leaf
(a leaf is one array), never modifying their inputs.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np


def tree_map(fn: Callable, *trees):
    """Apply ``fn`` leaf-wise over lists/tuples of arrays with the same structure."""
    first = trees[0]
    if isinstance(first, (list, tuple)):
        return type(first)(tree_map(fn, *parts) for parts in zip(*trees))
    return fn(*trees)


def tree_leaves(tree) -> list:
    """The arrays of a pytree, in order."""
    if isinstance(tree, (list, tuple)):
        return [leaf for part in tree for leaf in tree_leaves(part)]
    return [tree]


def tree_unflatten(like, leaves):
    """The pytree shaped like ``like`` whose leaves are ``leaves``, in the order of :func:`tree_leaves`."""
    leaves = iter(leaves)
    return tree_map(lambda _: next(leaves), like)


def tree_norm(tree) -> float:
    """Euclidean norm of all leaves together, summed in float64 (one pass over each leaf, no temporary array)."""
    flat = [np.ravel(leaf) for leaf in tree_leaves(tree)]
    return math.sqrt(sum(float(np.einsum("i,i->", x, x, dtype=np.float64)) for x in flat))


def apply_updates(params, updates):
    """``params + updates``, leaf by leaf (new arrays)."""
    return tree_map(lambda p, u: p + u, params, updates)


def tree_zeros_like(tree):
    """A pytree of zeros shaped like ``tree``: the start of every moment."""
    return tree_map(np.zeros_like, tree)
