"""Where the runs of a reproduction train: here, in worker processes, or on a Dask cluster.

:func:`~dba_ref.reproduction.runner.run_protocol` hands each run to a *pool*
and writes the record that comes back; the pool only trains. Every pool
gives the same run files but for their wall times (a run depends on its
seed alone, and trains with the same number of BLAS threads everywhere):

- :class:`InProcess`   one run at a time, in this process (``dba-ref reproduce``)
- :class:`Processes`   N worker processes of this machine (``--jobs N``), the
  standard library's :class:`~concurrent.futures.ProcessPoolExecutor`
- :class:`Dask`        the workers of a Dask distributed scheduler
  (``--scheduler tcp://HOST:PORT``), through its ``concurrent.futures``
  executor; needs ``pip install "dba-ref[cluster]"``

A pool has ``capacity()`` (how many runs to keep in flight), ``submit(fn,
*args)`` (a :class:`concurrent.futures.Future`), ``close(cancel)``, and two
tuples of exception types: ``lost_errors``, a run lost with its worker that
``run_protocol`` hands out again, and ``failed_errors``, a run the pool gave
up on, recorded as failed like a run that raised. Use it in a ``with`` block:
leaving the block closes it (cancelling what is still queued if the block
raised)::

    with Processes(jobs=2) as pool:
        run_protocol(quick_protocol(), "reproduction-quick", pool=pool)
"""
from __future__ import annotations

import os
from concurrent.futures import Future


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else every core)."""
    if hasattr(os, "process_cpu_count"):                # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Pool:
    """``with pool:`` closes it on the way out, cancelling what is queued when the block raised."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        self.close(cancel=kind is not None)


class InProcess(_Pool):
    """Runs train here, one at a time: ``submit`` returns once the run has finished."""

    lost_errors: tuple = ()
    failed_errors: tuple = ()

    def capacity(self) -> int:
        return 1

    def submit(self, fn, *args) -> Future:
        future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:            # the caller decides: a failed run, or a bug to raise
            future.set_exception(exc)
        return future

    def close(self, cancel: bool = False) -> None:
        pass


class Processes(_Pool):
    """``jobs`` worker processes of this machine (``jobs=0``: one per available core).

    Workers are started with ``spawn`` (a fresh interpreter: no lock or thread
    of this process is copied into them) and each keeps its data sets between
    runs. When a worker dies (killed, out of memory) the standard library's
    pool breaks and every run in flight fails with ``BrokenProcessPool``: those
    runs are handed out again, to a new pool started on the next submit.
    """

    def __init__(self, jobs: int):
        from concurrent.futures.process import BrokenProcessPool

        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
            raise ValueError(f"jobs must be an integer >= 0 (0: one per core), got {jobs!r}")
        self.jobs = jobs or available_cores()
        self.lost_errors, self.failed_errors = (BrokenProcessPool,), ()
        self._executor = None

    def _start(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"))

    def capacity(self) -> int:
        return self.jobs

    def submit(self, fn, *args) -> Future:
        if self._executor is None:
            self._executor = self._start()
        try:
            return self._executor.submit(fn, *args)
        except self.lost_errors:            # a worker died: this pool is broken, start another
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start()
            return self._executor.submit(fn, *args)

    def worker_pids(self) -> list[int]:
        """The process ids of the running workers (none before the first submit)."""
        return [] if self._executor is None else list(self._executor._processes)

    def close(self, cancel: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=not cancel, cancel_futures=cancel)
            self._executor = None


class Dask(_Pool):
    """The workers of the Dask distributed scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``).

    Runs are Dask tasks; their records come back to this process, which alone
    writes run files. A worker that dies takes no file with it: the scheduler
    gives its task to another worker, up to its ``allowed-failures`` (Dask's
    setting, 3 by default), after which the run is recorded as failed
    (``KilledWorker``) and retried by the next invocation. Every worker needs
    the same dba-ref (and, for Fashion-MNIST, its files at ``--data-dir``).
    ``capacity()`` is the number of worker threads connected, read from the
    scheduler at each call, so workers may join or leave while it runs.
    """

    def __init__(self, address: str):
        try:
            from distributed import Client
            from distributed.scheduler import KilledWorker
        except ImportError:
            raise ImportError('--scheduler needs Dask distributed: pip install "dba-ref[cluster]"') from None
        if not isinstance(address, str) or "://" not in address:
            raise ValueError(f"the scheduler address must look like tcp://HOST:PORT, got {address!r}")
        self.address = address
        self.client = Client(address, set_as_default=False)
        self._executor = self.client.get_executor(pure=False)
        self.lost_errors, self.failed_errors = (), (KilledWorker,)

    def capacity(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn, *args) -> Future:
        return self._executor.submit(fn, *args)

    def close(self, cancel: bool = False) -> None:
        self._executor.shutdown(wait=not cancel)
        self.client.close()


def make_pool(jobs: int = 1, scheduler: str | None = None):
    """The pool ``dba-ref reproduce`` asks for: ``--scheduler`` if given, else ``--jobs`` (1: this process)."""
    if scheduler is not None:
        return Dask(scheduler)
    return InProcess() if jobs == 1 else Processes(jobs)
