"""Element rules: an optimizer's per-coordinate arithmetic, stated once, run vectorised (NumPy) or fused (Numba).

Most of an optimizer's update is the same few lines for every coordinate. Adam's, with
``c1 = 1 − β1^t`` and ``c2 = 1 − β2^t``, is::

    m ← β1 m + (1 − β1) g        v ← β2 v + (1 − β2) g²        Δθ = −η (m / c1) / (√(v / c2) + ε)

An optimizer states these lines once, as a Python function of numbers, its **element rule**
(:class:`ElementRule`, made with :func:`element_rule`): ``fn(*arrays, *scalars)``, the
coordinates of some arrays alike in shape (the gradient, the moments, ...) and numbers shared by
all coordinates (the learning rate, the bias corrections, ...), returning the new coordinates
(the update, the new moments). What is not one coordinate at a time (a norm over all
parameters, a projection on a weight's direction, a mean) stays outside the rule, explicit in
the optimizer, and reaches it as a scalar.

A rule runs in one of two ways, with the same numbers:

**vectorised**
    ``fn`` called with whole arrays: NumPy applies each operation to every coordinate in
    turn, a pass over memory and a temporary array each (Adam: 13 passes). This is how the
    code reads, and the reference.
**fused**
    ``fn`` compiled by Numba into one loop over the coordinates: each coordinate's inputs are
    read once and its outputs written once, all operations in registers between: one pass
    over each parameter array, at memory speed (``docs/performance.md``).

**Bit for bit.** The two evaluate the same operations in the same order. IEEE 754 rounds
``+ − × ÷`` and ``√`` exactly (the nearest float to the true result), in NumPy's loops and in
the compiled one alike, and Numba compiles without fast-math, so nothing is reassociated or
contracted into a fused multiply-add: on float64 arrays the fused loop gives the vectorised
rule's bits whenever the rule is made of these operations (and ``min``, ``max``, ``abs``,
comparisons). Such a rule is *exact* (the default of :func:`element_rule`); the tests check it
for every optimizer. A rule with ``exp`` or ``log`` (diffGrad's) is not: NumPy's ``exp`` and
the compiled one may differ in the last bit, so the two agree to rounding. On float32 arrays the
fused loop works in float64 (the scalars are Python floats) and rounds once per output, where
NumPy rounds to float32 after every operation: they agree to float32 rounding.

**Which runs** (:class:`Elementwise`, chosen by :func:`elementwise_for` from the backend that
computed the batch's signals):

- backends ``numba`` and ``cuda``: every rule fused;
- backend ``numpy`` (and a call without signals): the vectorised rule, always. The NumPy
  backend is the reference: every line of its step is NumPy, and nothing waits for a compilation.

A fused loop is compiled on first use, once per rule, number of arrays and dtypes in a process
(well under a second each; not cached on disk, since a cache would not notice a change in a rule's
module). Functions a rule calls must be compilable too: mark them :func:`element_function`.

>>> import numpy as np
>>> @element_rule(n_out=2)
... def heavy_ball(g, v, lr, mu):
...     v = mu * v + g
...     return -lr * v, v
>>> update, velocity = elementwise_for(None)(heavy_ball, ([np.ones(3)], [np.zeros(3)]), (0.1, 0.9))
>>> update[0], velocity[0]
(array([-0.1, -0.1, -0.1]), array([1., 1., 1.]))
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .tree import tree_leaves, tree_unflatten

_HELPERS: list = []          # functions rules call: made callable from compiled code on the first compilation
_KERNELS: dict = {}          # (rule, number of arrays, number of scalars) -> compiled loop


class ElementRule(NamedTuple):
    """An optimizer's per-coordinate arithmetic: ``fn(*arrays, *scalars)`` returns ``n_out`` new coordinates
    (one value, or a tuple of ``n_out``); ``exact``: made only of correctly rounded operations, so fused and
    vectorised agree bit for bit on float64 (see the module docstring)."""

    fn: Callable
    n_out: int
    exact: bool = True


def element_rule(n_out: int, exact: bool = True) -> Callable[[Callable], ElementRule]:
    """Decorator: the function becomes an :class:`ElementRule` with ``n_out`` outputs."""

    def make(fn: Callable) -> ElementRule:
        _HELPERS.append(fn)
        return ElementRule(fn, n_out, exact)

    return make


def element_function(fn: Callable) -> Callable:
    """Decorator for a function of numbers that element rules call (a moment, Adam's direction, ...).

    It stays a plain Python function (working on arrays too); the first fused compilation makes it
    callable from compiled code as well.
    """
    _HELPERS.append(fn)
    return fn


def _fused_kernel(rule: ElementRule, n_arrays: int, n_scalars: int):
    """The compiled loop ``kernel(outputs..., arrays..., scalars...)`` applying ``rule`` at every index of flat arrays.

    The loop's text depends on the numbers of arrays, outputs and scalars only; the rule is compiled
    into it (Numba inlines it), so each rule gets its own kernel, compiled on first use.
    """
    key = (rule, n_arrays, n_scalars)
    if key not in _KERNELS:
        from numba import njit
        from numba.extending import register_jitable

        options = {"error_model": "numpy"}        # x / 0 gives ±inf or NaN as in NumPy, not an exception
        while _HELPERS:
            register_jitable(**options)(_HELPERS.pop())
        outs = [f"out{k}" for k in range(rule.n_out)]
        arrays = [f"a{k}" for k in range(n_arrays)]
        scalars = [f"s{k}" for k in range(n_scalars)]
        source = (f"def kernel({', '.join(outs + arrays + scalars)}):\n"
                  f"    for i in range(a0.size):\n"
                  f"        {', '.join(f'{o}[i]' for o in outs)} = rule({', '.join([f'{a}[i]' for a in arrays] + scalars)})\n")
        namespace = {"rule": njit(**options)(rule.fn)}
        exec(compile(source, f"<fused loop of {rule.fn.__qualname__}>", "exec"), namespace)
        _KERNELS[key] = njit(**options)(namespace["kernel"])
    return _KERNELS[key]


def run_fused(rule: ElementRule, arrays, scalars=()) -> tuple:
    """``rule`` over arrays of one shape in one compiled pass: the tuple of its ``n_out`` outputs (new arrays).

    The outputs have the arrays' shape and common dtype; the inputs are not modified.
    """
    shape = arrays[0].shape
    dtype = np.result_type(*arrays)
    outs = tuple(np.empty(shape, dtype) for _ in range(rule.n_out))
    flat = [np.ravel(a) for a in arrays]                   # views of contiguous arrays
    _fused_kernel(rule, len(arrays), len(scalars))(*(o.reshape(-1) for o in outs), *flat, *scalars)
    return outs


class Elementwise(NamedTuple):
    """How element rules run: ``fused`` (backends numba and cuda) in one compiled pass per array; otherwise (numpy)
    vectorised by NumPy.

    Called as ``elementwise(rule, trees, scalars)``, it applies ``rule`` leaf by leaf to the
    pytrees ``trees`` (alike in structure, e.g. the gradient and the moments) and returns
    ``rule.n_out`` pytrees of that structure (one pytree when ``n_out`` is 1).
    """

    fused: bool = False

    def leaf(self, rule: ElementRule, arrays, scalars=()):
        """``rule`` on the arrays of one leaf: one output array, or a tuple of ``n_out``."""
        if self.fused:
            outs = run_fused(rule, arrays, scalars)
            return outs[0] if rule.n_out == 1 else outs
        return rule.fn(*arrays, *scalars)

    def __call__(self, rule: ElementRule, trees, scalars=()):
        results = [self.leaf(rule, arrays, scalars) for arrays in zip(*map(tree_leaves, trees))]
        if rule.n_out == 1:
            return tree_unflatten(trees[0], results)
        return tuple(tree_unflatten(trees[0], [r[k] for r in results]) for k in range(rule.n_out))


def elementwise_for(signals) -> Elementwise:
    """The :class:`Elementwise` of an update whose batch's signals are ``signals`` (None: the numpy backend's)."""
    return Elementwise(fused=signals is not None and signals.backend != "numpy")
