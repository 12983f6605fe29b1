"""Readings of the paper that differ from the reference definition (spec §6), for the reproduction.

The abstract leaves open how the selected samples form the update. The
reference (spec §6) takes the **mean over the selection**::

    ḡ_l = (1/|S_l|) Σ_{i∈S_l} g_i

so a smaller selection gives a noisier step of the same magnitude. The paper
motivates DBA by "the inverse relation between batch size and learning rate
on update step magnitudes", which also admits the **sum over the selection,
divided by the whole batch**::

    g̃_l = (1/B) Σ_{i∈S_l} g_i = (|S_l| / B) · ḡ_l

i.e. the usual batch-mean gradient with the rejected samples' terms dropped:
a layer that keeps fewer samples takes a proportionally shorter step.

:func:`sum_over_batch` builds that reading from the reference DBA optimizer by
rescaling each layer's update by ``|S_l| / B``. For plain SGD, whose update
is linear in the gradient and keeps no state, rescaling the update is exactly
rescaling the gradient handed to it; for a base optimizer with state (momentum,
Adam) it is not, so only SGD is accepted.
"""
from __future__ import annotations

from ..optimizers import Optimizer
from ..optimizers.tree import tree_map


def sum_over_batch(optimizer: Optimizer) -> Optimizer:
    """DBA(SGD) whose layer-l update is ``−η (1/B) Σ_{i∈S_l} g_i`` instead of ``−η ḡ_l``.

    Parameters
    ----------
    optimizer : Optimizer
        A DBA optimizer built by :func:`dba_ref.dba` around plain SGD.

    Returns
    -------
    Optimizer
        Named ``"dba(sgd)/B"`` and called like DBA, ``update(None, state, params, signals=signals)``;
        its state is DBA's, so the trainer records the selections as usual.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a dba_ref Optimizer, got {type(optimizer).__name__}")
    if not optimizer.name.startswith("dba(") or optimizer.hyperparams.get("base") != "sgd":
        raise ValueError(
            f"sum_over_batch needs DBA around plain SGD (e.g. dba(sgd(0.1))), got {optimizer.name!r}: "
            "for a base optimizer with state, rescaling its update is not rescaling its gradient"
        )

    def update(grads, state, params=None, *, signals):
        updates, state = optimizer.update(grads, state, params, signals=signals)
        B = signals.batch_size
        scaled = [tree_map(lambda u, f=step.size / B: u * f, layer) for layer, step in zip(updates, state.last)]
        return scaled, state._replace(last=tuple(step._replace(update=u) for step, u in zip(state.last, scaled)))

    return Optimizer(optimizer.init, update, f"{optimizer.name}/B", {**optimizer.hyperparams, "normalise": "batch"})
