"""A DBA step written in JAX, as the step function of :mod:`dba_ref.conformance.testing`.

Your DBA step, a function of JAX arrays in the JAX way (parameters a list of
``(W_l, b_l)`` in PyTorch's ``(out, in)`` layout, the same pytree as
:attr:`dba_ref.MLP.params`)::

    def my_dba_step(params, state, X, y, hyperparams):
        ...
        return selections, new_params, new_state     # selections: per layer (indices, removed)

``state`` is ``None`` at a trajectory's first step unless ``init_state`` makes
it (e.g. ``lambda params, hp: my_adam(hp["learning_rate"]).init(params)``), and
then what the previous call returned. :func:`jax_step` makes the step function
the check runs::

    from dba_ref.conformance import Declaration, assert_step_conforms
    from dba_ref.frameworks.jax_adapter import jax_step

    assert_step_conforms(jax_step(my_dba_step), Declaration(metrics="mean_variance", bases="sgd", steps=20))

Float64 cases need JAX's float64 switch (``jax.config.update("jax_enable_x64",
True)``); without it :func:`jax_step` refuses a float64 case with that advice
rather than let JAX compute it in float32. Needs ``pip install dba-ref[jax]``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _pair(selection) -> tuple:
    """``(indices, removed)`` of one layer's selection as NumPy arrays: a pair, or an object with ``indices`` and
    ``removed`` (such as :class:`dba_ref.frameworks.jax_dba.JaxSelection`)."""
    if hasattr(selection, "indices"):
        selection = (selection.indices, getattr(selection, "removed", None))
    if isinstance(selection, (tuple, list)) and len(selection) == 2:
        return tuple(None if v is None else np.asarray(v) for v in selection)
    return selection                      # not a selection: the check reports what it is


def jax_step(dba_step, init_state=None, dtype=None):
    """The step function ``step(weights, X, y, hyperparams, state)`` of a DBA step written in JAX.

    Parameters
    ----------
    dba_step : callable
        ``dba_step(params, state, X, y, hyperparams) -> (selections, new_params, new_state)``.
    init_state : callable or None
        ``init_state(params, hyperparams)``, the state of a trajectory's first step (default: ``None``).
    dtype : None, "float32" or "float64"
        The parameters' and the batch's dtype: ``None`` keeps the case's; ``"float64"`` checks a float32
        model in float64 (the check is still judged at the case's precision).
    """
    def step(weights, X, y, hyperparams, state):
        wanted = np.dtype(dtype or hyperparams["dtype"])
        if wanted == np.float64 and not jax.config.jax_enable_x64:
            raise RuntimeError("JAX computes in float32 unless its float64 switch is on: call "
                               "jax.config.update('jax_enable_x64', True) first, or check the float32 cases alone")
        params = [(jnp.asarray(W, wanted), jnp.asarray(b, wanted)) for W, b in weights]
        if state is None and init_state is not None:
            state = init_state(params, hyperparams)
        returned = dba_step(params, state, jnp.asarray(X, wanted), jnp.asarray(y), hyperparams)
        if not isinstance(returned, (tuple, list)) or len(returned) != 3:
            return returned                           # the check says what it got
        selections, params, state = returned
        if isinstance(selections, (tuple, list)):
            selections = [_pair(s) for s in selections]
        if isinstance(params, (tuple, list)):
            params = [tuple(np.asarray(a) for a in pair) if isinstance(pair, (tuple, list)) else pair
                      for pair in params]
        return selections, params, state

    step.__qualname__ = f"jax_step({getattr(dba_step, '__qualname__', type(dba_step).__name__)})"
    return step
