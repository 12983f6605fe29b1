"""A DBA step written on a PyTorch ``nn.Sequential``, as the step function of :mod:`dba_ref.conformance.testing`.

Your DBA step, on a model and a ``torch.optim`` optimizer::

    def my_dba_step(net, opt, X, y, hyperparams):
        ...                                    # per layer: a selection, the layer's .grad = the mean over it
        opt.step()
        return selections                      # per layer (indices, removed): tensors, arrays or lists

``net`` is an ``nn.Sequential`` of ``Linear`` layers with the case's activation
between them (``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid`` or ``nn.Identity``; the
layout of :meth:`dba_ref.MLP.to_torch`), holding the weights before the step;
``opt`` is an optimizer over ``net.parameters()``, the same object from one step
of a trajectory to the next (so its state carries over); ``X``, ``y`` are
tensors; ``hyperparams`` is the dictionary of :mod:`dba_ref.conformance.testing`.
The step leaves ``net`` holding the weights after it. :func:`sequential_step`
makes the step function the check runs::

    from dba_ref.conformance import Declaration, assert_step_conforms
    from dba_ref.frameworks.torch_adapter import sequential_step

    assert_step_conforms(sequential_step(my_dba_step),
                         Declaration(metrics="mean_variance", strategies="greedy", bases="sgd", steps=20))

Weights go in and out in PyTorch's own ``(out, in)`` layout. Needs
``pip install dba-ref[torch]``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..model import MLP
from .torch_dba import TORCH_BASES


def _numpy(value) -> np.ndarray | None:
    """A tensor, array or list as a NumPy array (None stays None)."""
    if value is None:
        return None
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _pair(selection) -> tuple:
    """``(indices, removed)`` of one layer's selection: a pair, or an object with ``indices`` and ``removed``
    (such as :class:`dba_ref.frameworks.torch_dba.TorchSelection`)."""
    if hasattr(selection, "indices"):
        return _numpy(selection.indices), _numpy(getattr(selection, "removed", None))
    if isinstance(selection, (tuple, list)) and len(selection) == 2:
        return _numpy(selection[0]), _numpy(selection[1])
    return selection                      # not a selection: the check reports what it is


def sequential_step(dba_step, optimizer=None, dtype=None):
    """The step function ``step(weights, X, y, hyperparams, state)`` of a DBA step on an ``nn.Sequential``.

    Parameters
    ----------
    dba_step : callable
        ``dba_step(net, opt, X, y, hyperparams) -> selections`` (see the module docstring).
    optimizer : callable or None
        ``optimizer(params, hyperparams) -> torch.optim.Optimizer``; by default
        the base of ``hyperparams["base"]`` in PyTorch: ``SGD``, ``SGD`` with
        ``momentum`` or ``Adam`` (:data:`dba_ref.frameworks.torch_dba.TORCH_BASES`).
    dtype : None, "float32", "float64" or a torch dtype
        The model's and the batch's dtype: ``None`` keeps the case's; ``"float64"``
        checks a float32 model in float64 (the weights are converted when
        they go in; the check is still judged at the case's precision).
    """
    dtype = str(dtype).replace("torch.", "") if dtype is not None else None

    def step(weights, X, y, hyperparams, state):
        if state is None:
            net = MLP.from_arrays([a for pair in weights for a in pair], hyperparams["activation"],
                                  dtype).to_torch()
            opt = (optimizer or TORCH_BASES[hyperparams["base"]])(net.parameters(), hyperparams)
        else:
            net, opt = state
        linears = [module for module in net if isinstance(module, torch.nn.Linear)]
        param_dtype = linears[0].weight.dtype
        with torch.no_grad():
            for linear, (W, b) in zip(linears, weights):
                linear.weight.copy_(torch.as_tensor(W, dtype=param_dtype))
                linear.bias.copy_(torch.as_tensor(b, dtype=param_dtype))
        selections = dba_step(net, opt, torch.as_tensor(X, dtype=param_dtype), torch.as_tensor(y), hyperparams)
        if not isinstance(selections, (tuple, list)):
            return selections, None, (net, opt)        # the check says what it got
        new = [(_numpy(linear.weight).copy(), _numpy(linear.bias).copy()) for linear in linears]
        return [_pair(s) for s in selections], new, (net, opt)

    step.__qualname__ = f"sequential_step({getattr(dba_step, '__qualname__', type(dba_step).__name__)})"
    return step
