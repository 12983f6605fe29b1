"""Progress of long runs: a bar where it can be redrawn, one plain line per step where it cannot.

Every progress report of the package (the epochs of :func:`dba_ref.training.train`, the runs of
``dba-ref reproduce``) is a :class:`Progress`. A tqdm bar redraws itself with carriage returns: on
a terminal, or as a widget in a Jupyter notebook, that is a bar; written to a file
(``dba-ref train 2> log``) it is a stream of ``\\r`` updates, about 44 KB per training run. So
where the stream is neither, :class:`Progress` writes one line each time the count advances::

    dba(adam): epoch 3/100 (1.2 s) train_loss=0.4012 test_acc=0.8710
"""
from __future__ import annotations

import sys
import time


def draws_bars(stream) -> bool:
    """Whether a bar on ``stream`` is redrawn in place: ``stream`` is a terminal, or this is a Jupyter kernel."""
    import tqdm.auto  # noqa: F401  (first: it imports tqdm.autonotebook with its warning silenced)
    from tqdm.autonotebook import tqdm as chosen
    from tqdm.std import tqdm as console

    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or chosen is not console


class Progress:
    """``total`` units (epochs, runs) to do, ``initial`` of them done; reported on ``stream`` (default: stderr).

    ``enabled=False`` reports nothing (``--quiet``). :meth:`update` advances the count; :meth:`close`
    ends the bar.
    """

    def __init__(self, total: int, *, desc: str, unit: str, initial: int = 0, enabled: bool = True, stream=None):
        self.total, self.desc, self.unit, self.n, self.enabled = total, desc, unit, initial, enabled
        self.stream = sys.stderr if stream is None else stream
        self._started = time.perf_counter()
        self._bar = None
        if enabled and draws_bars(self.stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=True, file=self.stream)

    def update(self, n: int = 1, **status) -> None:
        """``n`` more units are done (0: none, the status alone changes); ``status`` is shown after the count."""
        self.n += n
        if self._bar is not None:
            if status:
                self._bar.set_postfix(status, refresh=n == 0)
            self._bar.update(n)
        elif self.enabled and n:
            words = "".join(f" {key}={value}" for key, value in status.items())
            print(f"{self.desc}: {self.unit} {self.n}/{self.total} ({time.perf_counter() - self._started:.1f} s)"
                  + words, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
