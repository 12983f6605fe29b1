"""Weights in and out of an :class:`~dba_ref.model.MLP`: a list of arrays, and a PyTorch ``nn.Sequential``.

For checking another implementation against this one, the parameters travel
as ``[W_1, b_1, ..., W_L, b_L]`` with ``W_l`` of shape ``(out_l, in_l)``,
which is PyTorch's ``nn.Linear.weight`` layout, or as an ``nn.Sequential``
``Linear, φ, Linear, ..., Linear``. The model's own methods are the user's
entry points (:meth:`MLP.from_arrays <dba_ref.model.MLP.from_arrays>`,
``to_arrays``, ``from_torch``, ``to_torch``); this module holds what they
delegate to, with no reference to the model class:

- :func:`layer_pairs` checks a list of arrays and pairs it up as ``[(W_l, b_l)]``;
- :func:`read_sequential` reads a Sequential's arrays and its one activation;
- :func:`build_sequential` builds a Sequential from ``[(W_l, b_l)]`` and an activation.

Round trips are exact, bit for bit. PyTorch is imported only by the two
torch functions, and a missing PyTorch is a one-line ``ImportError`` saying
how to install it.

Example
-------
>>> import numpy as np
>>> from dba_ref import MLP
>>> model = MLP([4, 8, 3], seed=0)
>>> [a.shape for a in model.to_arrays()]
[(8, 4), (8,), (3, 8), (3,)]
>>> twin = MLP.from_arrays(model.to_arrays(), activation="relu")
>>> all(np.array_equal(a, b) for a, b in zip(twin.to_arrays(), model.to_arrays()))
True
"""
from __future__ import annotations

import numpy as np

from ._validation import check_dtype

#: The ``torch.nn`` module of each activation of :data:`dba_ref.model.ACTIVATIONS`.
#: ``nn.Identity`` is a no-op wherever it stands; two ``Linear`` layers with nothing between them
#: have the identity activation.
TORCH_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "identity": "Identity"}


def layer_pairs(arrays) -> list[tuple[np.ndarray, np.ndarray]]:
    """Check ``[W_1, b_1, ..., W_L, b_L]`` (shapes chained, real numbers) and pair them up as ``[(W_l, b_l)]``."""
    if isinstance(arrays, (str, bytes, np.ndarray)) or not hasattr(arrays, "__iter__"):
        raise TypeError(f"arrays must be a list [W1, b1, W2, b2, ...], got {type(arrays).__name__}")
    arrays = list(arrays)
    if not arrays or len(arrays) % 2:
        raise ValueError(f"arrays must alternate weights and biases [W1, b1, W2, b2, ...]; got {len(arrays)} arrays")
    pairs = []
    for i in range(0, len(arrays), 2):
        W, b = np.asarray(arrays[i]), np.asarray(arrays[i + 1])
        for j, a in ((i, W), (i + 1, b)):
            if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                raise TypeError(f"arrays[{j}] must hold real numbers, got dtype {a.dtype}")
        if W.ndim != 2:
            raise ValueError(f"arrays[{i}] must be a weight matrix (out, in), got shape {W.shape}")
        if b.shape != (W.shape[0],):
            raise ValueError(f"arrays[{i + 1}] must be the bias ({W.shape[0]},) of the weights arrays[{i}] "
                             f"{W.shape}, got shape {b.shape}")
        if pairs and W.shape[1] != pairs[-1][0].shape[0]:
            raise ValueError(f"arrays[{i}] has {W.shape[1]} inputs but the layer before it (arrays[{i - 2}]) "
                             f"has {pairs[-1][0].shape[0]} outputs")
        pairs.append((W, b))
    return pairs


def arrays_dtype(pairs) -> np.dtype:
    """The one float dtype of ``[(W_l, b_l)]`` (float32 or float64), or a ``TypeError`` saying to pass one."""
    dtype = np.result_type(*(a for pair in pairs for a in pair))
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"the arrays have dtype {dtype}; pass dtype=np.float32 or dtype=np.float64")
    return dtype


def read_sequential(sequential) -> tuple[list[np.ndarray], str]:
    """``([W_1, b_1, ..., W_L, b_L], activation)`` of a PyTorch ``nn.Sequential`` (host copies of its parameters).

    The Sequential holds ``nn.Linear`` layers (with biases) and, between them,
    one activation module, the same everywhere: ``nn.ReLU``, ``nn.Tanh`` or
    ``nn.Sigmoid``; nothing between two ``Linear`` layers means the identity,
    and ``nn.Identity`` may stand anywhere. It ends with a ``Linear``: the
    logits. One ``Linear`` alone has the identity activation. Anything else
    is a ``ValueError`` or ``TypeError`` naming the module and its position.
    """
    torch = import_torch("MLP.from_torch")
    if not isinstance(sequential, torch.nn.Sequential):
        raise TypeError("MLP.from_torch takes a torch.nn.Sequential of Linear layers and activations, "
                        f"got {type(sequential).__name__}")
    activation_of = {getattr(torch.nn, module): name for name, module in TORCH_ACTIVATIONS.items()
                     if name != "identity"}
    arrays, found, between = [], {}, []     # found: activation -> where first seen; between: since the last Linear
    for position, module in enumerate(sequential):
        kind = type(module)
        if kind is torch.nn.Identity:
            continue
        if kind in activation_of:
            if not arrays:
                raise ValueError(f"position {position} of the Sequential holds {kind.__name__} before the first "
                                 "Linear; start with the Linear of the first layer")
            between.append((position, kind))
            continue
        if kind is not torch.nn.Linear:
            raise ValueError(f"position {position} of the Sequential holds {kind.__name__}; MLP.from_torch takes "
                             "Linear layers with ReLU, Tanh, Sigmoid or Identity between them")
        if module.bias is None:
            raise ValueError(f"position {position} of the Sequential is a Linear without bias; "
                             "the MLP's layers all have one (build it with bias=True)")
        if module.weight.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"position {position} of the Sequential is a Linear of {module.weight.dtype}; "
                            "convert the Sequential with .float() or .double()")
        if len(between) > 1:
            raise ValueError(f"positions {between[0][0]} and {between[1][0]} of the Sequential both hold an "
                             "activation between the same two Linear layers; keep one")
        if arrays and between:
            where, act = between[0]
            found.setdefault(activation_of[act], f"{act.__name__} at position {where}")
        elif arrays:
            found.setdefault("identity", f"no activation before position {position}")
        arrays += [module.weight.detach().cpu().numpy(), module.bias.detach().cpu().numpy()]
        between = []
    if not arrays:
        raise ValueError("the Sequential holds no Linear layer")
    if between:
        raise ValueError(f"position {between[0][0]} of the Sequential holds {between[0][1].__name__} after the "
                         "last Linear; end with the Linear of the logits (the MLP's loss applies the softmax)")
    if len(found) > 1:
        raise ValueError(f"the Sequential mixes activations ({', '.join(found.values())}); "
                         "the MLP has one for every hidden layer")
    return arrays, next(iter(found), "identity")


def build_sequential(params, activation: str, dtype):
    """A PyTorch ``nn.Sequential`` ``Linear, φ, Linear, ..., Linear`` holding a copy of ``[(W_l, b_l)]`` in ``dtype``.

    φ is the ``torch.nn`` module of ``activation`` (:data:`TORCH_ACTIVATIONS`).
    """
    torch = import_torch("MLP.to_torch")
    dtype = numpy_dtype(dtype)
    layers = []
    for l, (W, b) in enumerate(params):
        if l > 0:
            layers.append(getattr(torch.nn, TORCH_ACTIVATIONS[activation])())
        linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=getattr(torch, dtype.name))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.astype(dtype)))
            linear.bias.copy_(torch.from_numpy(b.astype(dtype)))
        layers.append(linear)
    return torch.nn.Sequential(*layers)


def import_torch(caller: str):
    """``torch``, or a one-line ImportError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError(f"{caller} needs PyTorch, which is not installed: pip install torch "
                          "(or pip install -e '.[torch]')") from None
    return torch


def numpy_dtype(dtype) -> np.dtype:
    """float32 or float64 as a NumPy dtype, from a NumPy dtype, a string or a torch dtype (``torch.float64``)."""
    text = str(dtype)
    return check_dtype(text.removeprefix("torch.") if text.startswith("torch.") else dtype)
