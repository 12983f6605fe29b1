"""One batch's DBA step kept on the GPU: :class:`DeviceStep`, and :class:`DeviceSignals` that carry it.

:class:`DeviceStep` holds the layers' ``(A, Δ)`` on the device (uploaded from
host arrays, or computed there by :meth:`DeviceStep.from_batch`), computes K
and its statistics there, runs the searches and the masked means there, and
copies back only what the caller needs (the statistics, the removal paths,
the mean gradients). ``prefix`` and ``exhaustive`` searches run the Numba
CPU kernels on host copies of K: the exhaustive search is for B ≤ 20, where K
has at most 400 entries.

Float32 and float64: as in the reference (:mod:`dba_ref.gram`), K is computed
in float64 whatever the signals' dtype; ``r``, ``T``, ``Q`` and the metric are
float64 too (spec §4). Mean gradients are accumulated in float64 on the
device and returned in the signals' dtype. The forward and backward passes
run in the model's dtype, as :func:`dba_ref.backprop.backprop` does.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from .._validation import check_choice, check_dtype, check_features, check_indices, check_labels
from . import cuda_launch, numba_cpu
from .cuda_backprop import device_backprop
from .cuda_products import ACTIVATION_IDS


class DeviceStep:
    """One batch's arrays on the GPU for a whole DBA step.

    Holds every layer's ``(A_{l-1}, Δ_l)`` on the device, computes the Gram
    matrices ``K_l`` (float64) and their statistics there and keeps them;
    the methods copy back only their results. All layers share the batch size B.

    From a batch, with the forward and backward passes on the device too
    (copies in: the parameters and the batch)::

        step = DeviceStep.from_batch(model.params, model.activation, X, y)
        losses = step.losses()                               # (B,), the model's dtype

    or from one batch's host :class:`~dba_ref.backprop.Signals`::

        step = DeviceStep(signals.layers)

    then::

        stats = step.totals()                                # (L, 2): T and Q of the whole batch
        paths = step.search("mean_variance", "greedy", 2, 0.0)   # [(removed, values)]
        grads = step.mean_grads(kept_indices_per_layer)      # [(gW, gb)]
    """

    def __init__(self, layers):
        layers = [(np.asarray(A), np.asarray(D)) for A, D in layers]
        if not layers:
            raise ValueError("DeviceStep needs at least one layer (A, D)")
        B = layers[0][0].shape[0]
        if any(A.shape[0] != B or D.shape[0] != B for A, D in layers):
            raise ValueError("every layer's A and D must have the same number of rows (the batch size)")
        dtype = cuda_launch.float_dtype(*(x for pair in layers for x in pair))
        self._attach([cuda_launch.upload(A, dtype) for A, _ in layers],
                     [cuda_launch.upload(D, dtype) for _, D in layers], None)

    @classmethod
    def from_batch(cls, params, activation: str, X, y) -> "DeviceStep":
        """The step of the batch ``(X, y)``, its forward and backward passes computed on the device.

        ``params`` is ``[(W_l, b_l)]`` (e.g. :attr:`dba_ref.MLP.params`), one
        float dtype; ``X`` ``(B, in)`` is converted to it; ``y`` ``(B,)`` holds
        class indices. The signals are those of :func:`dba_ref.backprop.backprop`
        to rounding. Checked here, once: the parameters' shapes, the activation,
        X (finite, ``in`` features) and y (labels of the output layer).
        """
        params = [(np.asarray(W), np.asarray(b)) for W, b in params]
        if not params:
            raise ValueError("params must list at least one layer (W, b)")
        dtype = check_dtype(params[0][0].dtype)
        n_in = params[0][0].shape[-1]
        for l, (W, b) in enumerate(params):
            if W.ndim != 2 or W.shape[1] != n_in or b.shape != (W.shape[0],) or {W.dtype, b.dtype} != {dtype}:
                raise ValueError(f"params[{l}] must be (W, b) of shapes (out, {n_in}) and (out,), dtype {dtype}; "
                                 f"got {W.shape} {W.dtype} and {b.shape} {b.dtype}")
            n_in = W.shape[0]
        check_choice(activation, ACTIVATION_IDS, "activation")
        X = check_features(X, params[0][0].shape[1], dtype)
        y = check_labels(y, X.shape[0], params[-1][0].shape[0])
        return cls.from_device(*device_backprop(params, activation, X, y))

    @classmethod
    def from_device(cls, inputs, deltas, losses=None) -> "DeviceStep":
        """The step of signals already on the device: ``A_{l-1}`` and ``Δ_l`` device arrays per layer
        (as :func:`dba_ref.backends.cuda_backprop.device_backprop` returns them), and optionally the losses."""
        step = cls.__new__(cls)
        step._attach(inputs, deltas, losses)
        return step

    def _attach(self, inputs, deltas, losses) -> None:
        """Keep the device arrays of the layers; their Gram matrices are computed when first needed."""
        self.batch_size = inputs[0].shape[0]
        self._A, self._D, self._losses = list(inputs), list(deltas), losses
        self._dtype = np.dtype(inputs[0].dtype)                       # of the returned gradients
        self._K = None

    def _grams(self):
        """The Gram matrices ``K_l`` (L, B, B) and their statistics ``r``, ``diag``, ``(T, Q)``, on the device."""
        if self._K is None:
            B = self.batch_size
            self._K = cuda.device_array((self.n_layers, B, B), np.float64)
            for l in range(self.n_layers):
                cuda_launch.launch_gram(self._A[l], self._D[l], self._K[l])
            self._r, self._diag, self._totals = cuda_launch.launch_stats(self._K)
        return self._K, self._r, self._diag, self._totals

    @property
    def n_layers(self) -> int:
        return len(self._A)

    def layers(self) -> list:
        """Host copies of every layer's ``(A_{l-1}, Δ_l)``."""
        return [(A.copy_to_host(), D.copy_to_host()) for A, D in zip(self._A, self._D)]

    def losses(self) -> np.ndarray:
        """Host copy of the per-sample losses ``(B,)`` (a step made :meth:`from_batch` only)."""
        if self._losses is None:
            raise ValueError("this DeviceStep was made from host signals, which carry no losses; "
                             "use DeviceStep.from_batch(params, activation, X, y)")
        return self._losses.copy_to_host()

    def gram(self, layer: int) -> np.ndarray:
        """A host copy of ``K`` of one layer."""
        return self._grams()[0][layer].copy_to_host()

    def totals(self) -> np.ndarray:
        """``(T, Q)`` of the whole batch for every layer, shape ``(L, 2)``, float64."""
        return self._grams()[3].copy_to_host()

    def search(self, metric: str, strategy: str, min_size: int, tol: float) -> list:
        """Every layer's raw search result, as the backend functions return it (None for ``"all"``).

        ``greedy`` runs on the device (every layer in one launch, on the layout
        :func:`dba_ref.backends.cuda_launch.greedy_plan` picks); ``prefix`` and
        ``exhaustive`` run the Numba CPU kernels on host copies of K.
        """
        if strategy == "all":
            return [None] * self.n_layers
        if strategy == "greedy":
            return cuda_launch.launch_greedy(*self._grams(), metric, min_size, tol)
        search = {"prefix": numba_cpu.prefix_path, "exhaustive": numba_cpu.exhaustive_search}[strategy]
        return [search(self.gram(l), metric, min_size) for l in range(self.n_layers)]

    def mean_grad(self, layer: int, indices=None) -> tuple:
        """``(gW, gb)`` of one layer, the mean over the samples ``indices`` (None: all), in the signals' dtype.

        ``indices`` is a selection as :func:`dba_ref.mean_grad` takes it
        (distinct integer indices in ``[0, B)`` in any order, or a boolean
        mask of length B; at least one), checked the same way.
        """
        rows = None if indices is None else np.sort(check_indices(indices, self.batch_size))
        return self.subset_mean_grad(layer, rows)

    def mean_grads(self, indices) -> list:
        """``(gW, gb)`` of every layer, the mean over the samples ``indices[l]`` (None: all), as :meth:`mean_grad`."""
        return [self.mean_grad(l, rows) for l, rows in enumerate(indices)]

    def subset_mean_grad(self, layer: int, rows=None) -> tuple:
        """:meth:`mean_grad` unchecked, over ``rows`` as NumPy indexing reads them
        (:func:`dba_ref.backends.cuda_launch.batch_rows`), as :func:`dba_ref.backprop.subset_mean_grad` does."""
        grads = cuda_launch.launch_mean(self._A[layer], self._D[layer], cuda_launch.batch_rows(self.batch_size, rows))
        return tuple(g.astype(self._dtype, copy=False) for g in grads)


class DeviceSignals:
    """A batch's signals left on the device by its forward and backward passes there.

    What the training loop hands the optimizer with ``backend="cuda"``; it
    reads like :class:`~dba_ref.backprop.Signals`: ``batch_size``, the host
    ``losses`` ``(B,)`` and ``layers``, host copies of every ``(A_{l-1}, Δ_l)``
    made on first use (only an optimizer that is not on the device needs
    them). ``step`` is the :class:`DeviceStep` that holds the arrays.
    """

    #: The backend that computed them: DBA's update computes with the same one.
    backend = "cuda"

    def __init__(self, step: DeviceStep):
        self.step = step
        self.losses = step.losses()
        self._layers = None

    def mean_grads(self) -> list:
        """The batch-mean gradient of every layer, computed on the device."""
        return [self.step.subset_mean_grad(l) for l in range(self.step.n_layers)]

    @property
    def batch_size(self) -> int:
        return self.step.batch_size

    @property
    def layers(self) -> list:
        if self._layers is None:
            self._layers = self.step.layers()
        return self._layers
