"""A multilayer perceptron with a softmax cross-entropy loss (spec §2).

Layer l = 1..L has weights ``W_l`` of shape ``(out_l, in_l)`` and bias ``b_l``
of shape ``(out_l,)``. For a batch ``X`` of B rows::

    Z_l = A_{l-1} W_lᵀ + b_l,    A_0 = X,    A_l = φ(Z_l) for l < L

and the logits are ``Z_L``. The loss of sample i is the cross-entropy
``ℓ_i = logsumexp(Z_L[i]) - Z_L[i, y_i]``.

Initialisation (documented choice): biases are zero; weights are drawn from a
uniform distribution ``U(-a, a)`` with ``a = sqrt(6 / in)`` (He) for ReLU
layers and ``a = sqrt(6 / (in + out))`` (Glorot) otherwise. The layer after
the last hidden layer uses the rule of the hidden activation; a network with no
hidden layer uses Glorot.

Weights in and out, for checking another implementation: ``MLP.from_arrays``
/ ``to_arrays`` (``[W_1, b_1, ..., W_L, b_L]``) and ``MLP.from_torch`` /
``to_torch`` (a PyTorch ``nn.Sequential``), exact both ways
(:mod:`dba_ref.model_io`).

Example
-------
>>> import numpy as np
>>> from dba_ref import MLP
>>> model = MLP([4, 8, 3], seed=0)
>>> model.forward(np.ones((2, 4))).shape
(2, 3)
"""
from __future__ import annotations

import numbers
from typing import Callable, NamedTuple

import numpy as np

from . import model_io
from ._validation import check_choice, check_dtype, check_features, check_labels


class Activation(NamedTuple):
    """An elementwise nonlinearity φ and its derivative written in terms of Z."""

    fn: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]


def _sigmoid(z):
    # exp of a non-positive number never overflows.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(z.dtype)),
    "tanh": Activation(np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "sigmoid": Activation(_sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
    "identity": Activation(lambda z: z, np.ones_like),
}


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise ``Z - logsumexp(Z)``, stable: the row maximum is subtracted first."""
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, ``exp(log_softmax(Z))``."""
    return np.exp(log_softmax(Z))


def cross_entropy(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy ``ℓ_i = -log softmax(Z)[i, y_i]``, shape ``(B,)``."""
    return -log_softmax(Z)[np.arange(Z.shape[0]), y]


class MLP:
    """A fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths including input and output, e.g. ``[784, 256, 10]``.
        At least two entries (input and output), each >= 1; the output width
        is the number of classes.
    activation : {"relu", "tanh", "sigmoid", "identity"}
        Nonlinearity of every hidden layer; the output layer is linear (logits).
    seed : int
        Seed of the initialisation (``numpy.random.default_rng``).
    dtype : float32 or float64
        Dtype of parameters and of every computation of the model.

    Attributes
    ----------
    weights : list of ndarray, ``weights[l]`` has shape ``(sizes[l+1], sizes[l])``
    biases : list of ndarray, ``biases[l]`` has shape ``(sizes[l+1],)``
    """

    def __init__(self, sizes, activation: str = "relu", seed: int = 0, dtype=np.float64):
        sizes = list(sizes) if not isinstance(sizes, (str, bytes)) else sizes
        if not isinstance(sizes, list) or len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output width, got {sizes!r}")
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(f"every layer width must be an integer >= 1, got {sizes!r}")
        if sizes[-1] < 2:
            raise ValueError(f"the output layer needs at least 2 classes, got {sizes[-1]}")
        self.sizes = [int(s) for s in sizes]
        self.activation = check_choice(activation, ACTIVATIONS, "activation")
        self.dtype = check_dtype(dtype)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            fan = n_in if activation == "relu" and len(self.sizes) > 2 else n_in + n_out
            bound = np.sqrt(6.0 / fan)
            self.weights.append(rng.uniform(-bound, bound, size=(n_out, n_in)).astype(self.dtype))
            self.biases.append(np.zeros(n_out, dtype=self.dtype))

    # -- the forward pass -------------------------------------------------------
    def check_batch(self, X, y=None):
        """Validate and convert a batch: ``X`` to the model dtype, ``y`` to int64."""
        X = check_features(X, self.sizes[0], self.dtype)
        if y is None:
            return X
        return X, check_labels(y, X.shape[0], self.n_classes)

    def forward_all(self, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Pre-activations ``[Z_1..Z_L]`` and layer inputs ``[A_0..A_{L-1}]`` (X already validated)."""
        phi = ACTIVATIONS[self.activation].fn
        inputs, pre = [X], []
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            Z = inputs[-1] @ W.T + b
            pre.append(Z)
            if l < self.n_layers - 1:
                inputs.append(phi(Z))
        return pre, inputs

    def forward(self, X) -> np.ndarray:
        """Logits ``Z_L``, shape ``(B, n_classes)``."""
        pre, _ = self.forward_all(self.check_batch(X))
        return pre[-1]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``softmax(Z_L)``, shape ``(B, n_classes)``."""
        return softmax(self.forward(X))

    def predict(self, X) -> np.ndarray:
        """Predicted classes ``argmax Z_L``, shape ``(B,)``."""
        return self.forward(X).argmax(axis=1)

    def losses(self, X, y) -> np.ndarray:
        """Per-sample cross-entropy losses, shape ``(B,)``."""
        X, y = self.check_batch(X, y)
        return cross_entropy(self.forward_all(X)[0][-1], y)

    def evaluate(self, X, y, check_input: bool = True) -> tuple[float, float]:
        """Mean loss and accuracy on ``(X, y)``; ``check_input=False`` for data already validated (:meth:`check_batch`)."""
        if check_input:
            X, y = self.check_batch(X, y)
        Z = self.forward_all(X)[0][-1]
        return float(cross_entropy(Z, y).mean()), float((Z.argmax(axis=1) == y).mean())

    # -- parameters ---------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of weight layers L."""
        return len(self.weights)

    @property
    def n_classes(self) -> int:
        return self.sizes[-1]

    @property
    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The parameters as a list of ``(W_l, b_l)`` pairs: the pytree optimizers act on."""
        return list(zip(self.weights, self.biases))

    def set_params(self, params) -> None:
        """Replace every ``(W_l, b_l)``; shapes must match the architecture."""
        params = list(params)
        if len(params) != self.n_layers:
            raise ValueError(f"expected {self.n_layers} (W, b) pairs, got {len(params)}")
        weights, biases = [], []
        for l, (W, b) in enumerate(params):
            W, b = np.asarray(W), np.asarray(b)
            if W.shape != self.weights[l].shape or b.shape != self.biases[l].shape:
                raise ValueError(
                    f"layer {l}: expected shapes {self.weights[l].shape} and {self.biases[l].shape}, "
                    f"got {W.shape} and {b.shape}"
                )
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ValueError(f"layer {l}: parameters contain NaN or inf")
            weights.append(W.astype(self.dtype, copy=True))
            biases.append(b.astype(self.dtype, copy=True))
        self.weights, self.biases = weights, biases

    def assign_params(self, params) -> None:
        """Take ``params`` (a list of ``(W_l, b_l)`` of this model's shapes) unchecked and uncopied.

        For the training loop, whose new parameters are fresh arrays it has
        checked already; anywhere else use :meth:`set_params`. Arrays of
        another dtype are converted to the model's.
        """
        self.weights = [W.astype(self.dtype, copy=False) for W, _ in params]
        self.biases = [b.astype(self.dtype, copy=False) for _, b in params]

    def copy(self) -> "MLP":
        """An independent copy (same architecture, parameters copied)."""
        twin = object.__new__(MLP)
        twin.__dict__.update(self.__dict__)
        twin.weights = [W.copy() for W in self.weights]
        twin.biases = [b.copy() for b in self.biases]
        return twin

    # -- weights in and out (dba_ref.model_io) --------------------------------
    @classmethod
    def from_arrays(cls, arrays, activation: str = "relu", dtype=None) -> "MLP":
        """A model holding the parameters ``[W_1, b_1, W_2, b_2, ..., W_L, b_L]`` (copied).

        ``W_l`` has shape ``(out_l, in_l)`` (PyTorch's ``nn.Linear.weight``
        layout) and ``b_l`` shape ``(out_l,)``; the widths are read from the
        shapes. ``dtype=None`` keeps the arrays' dtype (float32 or float64);
        a dtype given converts them. The model's ``seed`` is ``None``: its
        weights come from the arrays, not from an initialisation.
        """
        pairs = model_io.layer_pairs(arrays)
        dtype = model_io.arrays_dtype(pairs) if dtype is None else dtype
        model = cls([pairs[0][0].shape[1]] + [W.shape[0] for W, _ in pairs], activation, seed=0, dtype=dtype)
        model.set_params(pairs)
        model.seed = None
        return model

    def to_arrays(self) -> list[np.ndarray]:
        """The parameters as ``[W_1, b_1, ..., W_L, b_L]`` (copies), the input of :meth:`from_arrays`."""
        return [a.copy() for pair in self.params for a in pair]

    @classmethod
    def from_torch(cls, sequential, dtype=None) -> "MLP":
        """A model holding the weights of a PyTorch ``nn.Sequential`` (copied; the module is not changed).

        The Sequential is ``Linear, φ, Linear, ..., Linear`` with one activation
        φ (``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``, or nothing, i.e. the
        identity; ``nn.Identity`` may stand anywhere); the rules and errors are
        :func:`dba_ref.model_io.read_sequential`'s. ``dtype=None`` keeps the
        parameters' dtype; a NumPy or torch dtype converts them. Parameters on
        a GPU are copied to the host.
        """
        arrays, activation = model_io.read_sequential(sequential)
        return cls.from_arrays(arrays, activation, None if dtype is None else model_io.numpy_dtype(dtype))

    def to_torch(self, dtype=None):
        """A PyTorch ``nn.Sequential`` ``Linear, φ, Linear, ..., Linear`` holding a copy of the parameters.

        φ is ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid`` or ``nn.Identity``.
        ``dtype=None`` keeps the model's dtype; a NumPy or torch dtype
        converts the parameters (float32 or float64). :meth:`from_torch`
        reads it back bit for bit.
        """
        return model_io.build_sequential(self.params, self.activation, self.dtype if dtype is None else dtype)

    def __repr__(self) -> str:
        return f"MLP(sizes={self.sizes}, activation={self.activation!r}, seed={self.seed}, dtype={self.dtype.name})"
