"""Mini-batches: epochs of consecutive batches from a seeded permutation; the batch size may change between steps."""
from __future__ import annotations

import numpy as np

from .._validation import check_positive


class BatchSampler:
    """Epochs of consecutive batches from a seeded permutation; the batch size may change between steps.

    Each epoch draws one permutation of ``range(n)`` from ``rng`` (or uses
    ``0..n-1`` when ``shuffle`` is false) and :meth:`epoch` yields index
    arrays of ``batch_size`` consecutive entries, reading ``batch_size`` anew
    before every batch; the last batch of an epoch takes what is left and may
    be smaller. Setting :attr:`batch_size` between two batches is how the
    size adapts; it is capped at n (the whole training set). The epoch in
    progress (its permutation and :attr:`position`) is part of the sampler:
    :meth:`epoch` called again after a pause continues it, and
    :meth:`state_dict` / :meth:`load_state_dict` save and restore it all.

    >>> import numpy as np
    >>> sampler = BatchSampler(10, 3, np.random.default_rng(0), shuffle=False)
    >>> sizes = []
    >>> for idx in sampler.epoch():
    ...     sizes.append(idx.size)
    ...     sampler.batch_size *= 2
    >>> sizes
    [3, 6, 1]
    """

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator, shuffle: bool = True):
        self.n = check_positive(n, "n", integer=True)
        self.rng = rng
        self.shuffle = bool(shuffle)
        self.batch_size = batch_size
        self._order: np.ndarray | None = None      # the permutation of the epoch in progress, None between epochs
        #: Samples of the epoch in progress already handed out.
        self.position = 0

    @property
    def batch_size(self) -> int:
        """Size of the next batch (1..n)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value) -> None:
        if isinstance(value, float) and np.isinf(value) and value > 0:
            value = self.n                       # "as large as possible"
        self._batch_size = min(check_positive(value, "batch_size", integer=True), self.n)

    def epoch(self):
        """Yield the index arrays of one epoch (or of the rest of the epoch in progress)."""
        if self._order is None:
            self._order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
            self.position = 0
        while self.position < self.n:
            idx = self._order[self.position:self.position + self.batch_size]
            self.position += idx.size
            yield idx
        self._order, self.position = None, 0

    def state_dict(self) -> dict:
        """Everything that decides the batches still to come: generator state, permutation, position, size."""
        return {"rng": self.rng.bit_generator.state, "order": self._order, "position": self.position,
                "batch_size": self._batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (of a sampler over the same ``n``)."""
        order = state["order"]
        if order is not None and (np.shape(order) != (self.n,) or not 0 <= state["position"] <= self.n):
            raise ValueError(f"sampler state is for another data set size (order of shape {np.shape(order)}, "
                             f"position {state['position']}; this sampler draws from n={self.n})")
        self.rng.bit_generator.state = state["rng"]
        self._order, self.position = order, int(state["position"])
        self.batch_size = state["batch_size"]
