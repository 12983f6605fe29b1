"""Exercise 11 — Adam, in the style of optax.

Task
----
DBA hands its update direction (exercise 10) to an ordinary optimizer. In
the style of optax (and of dba_ref.optimizers), an optimizer is a pair of
pure functions and a state that is a NamedTuple::

    state          = init(params)
    updates, state = update(grads, state, params)
    params         = [p + u for p, u in zip(params, updates)]

``params``, ``grads`` and ``updates`` are lists of NumPy arrays, one per
parameter array. Write ``adam(learning_rate, b1, b2, eps)`` returning the
pair ``(init, update)`` of Adam (Kingma & Ba, 2015) with bias correction:

- ``init(params)`` returns ``AdamState(count=0, m=zeros, v=zeros)``, the
  moments being lists of zero arrays shaped like ``params``;
- ``update(grads, state, params=None)`` computes, with t = count + 1 and for
  every array::

      m ← b1·m + (1 − b1)·g             v ← b2·v + (1 − b2)·g²
      m̂ = m / (1 − b1^t)                v̂ = v / (1 − b2^t)
      update = −learning_rate · m̂ / (√v̂ + eps)

  and returns ``(updates, AdamState(count=t, m=new m, v=new v))``.

Functions are pure: ``update`` returns a new state and never changes the
state (or the gradients, or the parameters) it was given. Use NumPy only;
do not call dba_ref.

Hints
-----
1. ``AdamState`` is defined for you below; ``state.count``, ``state.m`` and
   ``state.v`` read it, ``AdamState(t, m, v)`` builds a new one.
2. The bias correction undoes the start at zero: after one step m = (1 − b1)·g,
   so m̂ = g exactly. t starts at 1 for the first update.
3. eps is added to √v̂, outside the square root.
4. Updates are *added* to the parameters, so they point downhill: a minus sign.
5. ``m = [b1 * m_ + (1 - b1) * g for m_, g in zip(state.m, grads)]`` builds
   new arrays; ``m_ *= b1`` would change the old state in place.
"""
from typing import NamedTuple

import numpy as np


class AdamState(NamedTuple):
    """Adam's state: the number of updates so far and the two moments (lists of arrays like the parameters)."""

    count: int
    m: list
    v: list


def adam(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Adam with bias correction, as the pair ``(init, update)``."""

    def init(params):
        # BEGIN SOLUTION
        return AdamState(0, [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params])
        # END SOLUTION

    def update(grads, state, params=None):
        # BEGIN SOLUTION
        t = state.count + 1
        m = [b1 * m_ + (1 - b1) * g for m_, g in zip(state.m, grads)]
        v = [b2 * v_ + (1 - b2) * g * g for v_, g in zip(state.v, grads)]
        updates = [-learning_rate * (m_ / (1 - b1 ** t)) / (np.sqrt(v_ / (1 - b2 ** t)) + eps)
                   for m_, v_ in zip(m, v)]
        return updates, AdamState(t, m, v)
        # END SOLUTION

    return init, update
