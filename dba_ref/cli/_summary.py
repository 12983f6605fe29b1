"""The one-screen summary ``dba-ref train`` prints: the runs side by side, and what to expect of them."""
from __future__ import annotations

from .._text import columns, plural
from . import _validated


def _per_update(history) -> str:
    """Samples in an update, averaged over the steps: per layer for DBA, else the batch."""
    if "selected" in history.steps:
        return ", ".join(f"layer {l + 1}: {sum(s) / len(s):.1f}" for l, s in enumerate(history.steps["selected"]))
    batches = history.steps["batch_size"]
    return f"{sum(batches) / len(batches):.1f} (all)"


def _batches(history) -> str:
    """How the training set was cut into batches, e.g. ``batches of 64 (each epoch's last holds the 24 left)``."""
    n, batch = history.config["n_train"], history.config["batch_size"]
    if history.config.get("adaptive_batch"):
        return f"batches starting at {batch} (the optimizer grows them)"
    if batch >= n:
        return "one batch of all of them"
    last = n % batch
    return f"batches of {batch}" + (f" (each epoch's last holds the {last} left)" if last else "")


def _expectation(runs, epochs: int) -> str:
    """What the reproduction measured for these runs, or why there is no measured expectation."""
    claim = (f"the paper's {_validated.PAPER_ACCURACY}% for DBA on 60 MNIST digits per class is not reproduced "
             "there")
    if not all(r.validated for r in runs):
        return ("These are not settings the reproduction validated, so there is no measured expectation: "
                "docs/reproduction.md compares DBA with 14 optimizers, each at a learning rate tuned on "
                f"validation, and {claim}.")
    measured = " and ".join(f"{r.label} {r.validated.test_mean:.2f} ± {r.validated.test_std:.2f}%" for r in runs)
    ahead = runs[0].validated.test_mean - runs[1].validated.test_mean if len(runs) == 2 else None
    return (f"What to expect: over seeds 0-4 that cell measured {measured} (mean ± std over seeds"
            + (f"; DBA {ahead:+.2f} points" if ahead is not None else "")
            + f"). This run is one seed, tested on every image it did not train on (the cell set 500 of them "
              "aside for validation)"
            + (f", and {plural(epochs, 'epoch')}, not {_validated.EPOCHS}" if epochs != _validated.EPOCHS else "")
            + f". The full comparison, with 14 optimizers: docs/reproduction.md; {claim}.")


def summary(runs, histories, epochs: int) -> str:
    """The runs' test accuracy and loss, samples per update, learning rate (and its source) and time."""
    rows = [("", "learning rate", "test acc", "test loss", "samples per update", "time")]
    for r, h in zip(runs, histories):
        final = h.final
        rows.append((r.label, f"{r.learning_rate:g} ({r.rate_source})", f"{100 * final['test_acc']:.2f}%",
                     f"{final['test_loss']:.4f}", _per_update(h), f"{final['seconds']:.1f} s"))
    lines = columns(rows)
    first = histories[0]
    lines.append(f"{plural(first.final['epoch'], 'epoch')} of {first.config['n_train']} training images in "
                 f"{_batches(first)}; samples per update: the mean over the steps"
                 + (" (DBA: of those it kept, per layer)" if "selected" in first.steps else "") + ".")
    if any(r.rate_source == "validated" for r in runs):
        lines.append(f"validated: the learning rate chosen for the method on a validation slice in the cell "
                     f"\"{_validated.CELL}\" of docs/reproduction.md.")
    lines.append(_expectation(runs, epochs))
    return "\n".join(lines)
