"""Progress reports: a bar on a terminal, one line per step (no carriage returns) where the output is a file."""
import io

from dba_ref import MLP, sgd
from dba_ref._progress import Progress, draws_bars
from dba_ref.training import train


class Terminal(io.StringIO):
    def isatty(self):
        return True


def report(stream, enabled=True):
    bar = Progress(3, desc="dba(adam)", unit="epoch", initial=1, enabled=enabled, stream=stream)
    bar.update(0, cell="first")                 # a status alone: no line
    bar.update(1, train_loss="0.5000")
    bar.update(1, train_loss="0.2500")
    bar.close()
    return stream.getvalue()


def test_a_file_gets_one_line_per_step_and_no_carriage_return():
    lines = report(io.StringIO()).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("dba(adam): epoch 2/3 (") and lines[0].endswith(" s) train_loss=0.5000")
    assert lines[1].startswith("dba(adam): epoch 3/3 (") and lines[1].endswith(" s) train_loss=0.2500")


def test_a_terminal_gets_a_bar():
    assert draws_bars(Terminal()) and not draws_bars(io.StringIO())
    text = report(Terminal())
    assert "\r" in text and "3/3" in text and "train_loss=0.2500" in text


def test_disabled_reports_nothing():
    assert report(io.StringIO(), enabled=False) == "" and report(Terminal(), enabled=False) == ""


def test_training_to_a_file_writes_one_line_per_epoch(rng, capsys):
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    train(MLP([4, 3], seed=0), sgd(0.1), X, y, X[:10], y[:10], epochs=4, batch_size=20)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert [line.split(" (")[0] for line in err.splitlines()] == [f"sgd: epoch {e}/4" for e in range(1, 5)]
    assert all("train_loss=" in line and "test_acc=" in line for line in err.splitlines())
