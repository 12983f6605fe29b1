"""DBA written the way the frameworks write it: independent implementations to check the reference with.

- :mod:`dba_ref.frameworks.torch_dba`  PyTorch: per-sample gradients by ``torch.func.vmap(grad(...))``,
  Gram matrices ``G Gᵀ`` of the materialised gradients, the spec's metrics and searches on tensors,
  and DBA around any ``torch.optim`` optimizer.
- :mod:`dba_ref.frameworks.jax_dba`    JAX: per-sample gradients by ``jax.vmap(jax.grad(...))`` and a
  DBA(SGD) / DBA(Adam) step.
- :mod:`dba_ref.frameworks.torch_adapter`, :mod:`dba_ref.frameworks.jax_adapter`  your own DBA step, written on
  a PyTorch ``nn.Sequential`` or in JAX, as the step function that :func:`dba_ref.conformance.check_step`
  checks over whole trajectories.

They share nothing with the NumPy reference except constants of the definition
(``Q_EPS``, the metric and strategy names) and the ``min_size`` rule; the tests
compare the two (``tests/test_frameworks_*.py``) and the PyTorch version is the
worked example of the conformance check (``docs/verification.md``).

Importing :mod:`dba_ref` or this package imports neither framework; import the
module you want (it needs ``pip install dba-ref[torch]``, or ``jax``).
"""
