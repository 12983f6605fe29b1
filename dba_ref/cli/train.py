"""Train DBA next to its base optimizer, or one optimizer alone; write the results, a figure and a summary.

By default DBA(Adam) with the mean_variance metric and the prefix search trains on 60 MNIST-5k digits
per class (784-256-10 ReLU, batch 64, 100 epochs), then Adam alone on the same split, initial weights,
batches and budget. That DBA is the best on validation in the cell "main — mnist5k, 60 per class" of
docs/reproduction.md, and each run uses the learning rate validated there; over seeds 0-4 the cell
measured 89.48 ± 0.58% test accuracy for it and 88.20 ± 0.44% for Adam (the paper's 97.79% is not
reproduced). The summary compares the runs: test accuracy, samples DBA kept per layer, time.

Examples:
  dba-ref train                                        # DBA(Adam) next to Adam, as above
  dba-ref train --epochs 20 --strategy greedy          # the greedy search, 20 epochs
  dba-ref train --base sgd                             # DBA(SGD) next to SGD, validated rates 0.0316 and 0.316
  dba-ref train --metric normalized_variance --strategy greedy --min-size 0.5
  dba-ref train --base momentum --hparam momentum=0.8 --lr 0.01   # both runs: momentum 0.8, rate 0.01
  dba-ref train --optimizer adam --lr 1e-3             # one optimizer alone
  # Fashion-MNIST is not bundled: apt-get install dataset-fashion-mnist (Debian, Ubuntu), or --data-dir
  dba-ref train --dataset fashion-mnist --hidden 256,128 --epochs 50 --lr 0.00316 --no-compare
  dba-ref train --epochs 50 --checkpoint-every 100 --out runs/a             # killed? continue it with:
  dba-ref train --epochs 50 --checkpoint-every 100 --out runs/a --resume

Learning rates: --lr is DBA's (or the single optimizer's), --base-lr the comparison run's. Left out,
each is the rate validated for that method in the cell above when the data, model and batch are the
cell's and no --hparam is given; otherwise --lr is the optimizer's own default and --base-lr DBA's rate.
The summary says which rate came from where.

Output: OUT/results.json (the run the options describe), OUT/base/results.json (its base optimizer
alone), OUT/training.png (both). The training set is evaluated after every epoch; the test set, seven
times larger on MNIST-5k (4,400 images), before training, every --test-every epochs (about ten times a
run by default) and after the last: those are its points in the results and the figure.
While a run trains, its results go to OUT/results.jsonl, one line per epoch, and results.json is
written when it ends. OUT defaults to runs/DATASET-OPTIMIZER-sSEED with OPTION=VALUE added
for every option that changes the results and is not at its default. A folder that holds a run is
never replaced without --overwrite (or continued, with --resume).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._text import plural
from . import _checkpointing, _run_folder, _validated
from ._types import batch_size, count_or_fraction, hparam, positive_int, widths

if TYPE_CHECKING:
    from ..optimizers import Optimizer

NAME = "train"
HELP = "train DBA next to its base optimizer, or one optimizer alone"
#: Subfolder of the output folder that holds the comparison run (the base optimizer alone).
BASE_SUBFOLDER = "base"
#: Options that only DBA reads: refused with another --optimizer rather than silently ignored.
DBA_ONLY = ("base", "base_lr", "metric", "strategy", "min_size", "tol", "no_compare")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..backends import BACKENDS
    from ..data import DATASETS, FASHION_MNIST_DIR, FASHION_MNIST_DIR_VARIABLE
    from ..metrics import METRIC_NAMES
    from ..model import ACTIVATIONS
    from ..optimizers import OPTIMIZERS, WRAPPABLE
    from ..search import STRATEGIES

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="mnist5k", choices=DATASETS, help="data set (default: %(default)s, bundled)")
    g.add_argument("--data-dir", default=None,
                   help=f"folder of the IDX files (default for fashion-mnist: ${FASHION_MNIST_DIR_VARIABLE}, else "
                        f"Debian's {FASHION_MNIST_DIR}; mnist needs it)")
    g.add_argument("--per-class", type=positive_int, default=60,
                   help="training images per class (default: %(default)s)")
    g.add_argument("--fraction", type=float, default=None,
                   help="training fraction of each class instead of --per-class, e.g. 0.01 (default: unused)")
    g = p.add_argument_group("model")
    g.add_argument("--hidden", type=widths, default=[256],
                   help="hidden widths, comma-separated, e.g. 256,128; '' for none (default: 256)")
    g.add_argument("--activation", default="relu", choices=sorted(ACTIVATIONS),
                   help="hidden activation (default: %(default)s)")
    g.add_argument("--dtype", default="float64", choices=["float32", "float64"],
                   help="model dtype (default: %(default)s)")
    g = p.add_argument_group("optimizer")
    g.add_argument("--optimizer", default="dba", choices=["dba", *OPTIMIZERS],
                   help="'dba' wraps --base; any other name trains alone (default: %(default)s)")
    g.add_argument("--base", default="adam", choices=WRAPPABLE,
                   help="DBA's base optimizer (default: %(default)s, that of the best DBA method on validation in "
                        "the cell above; the library has no default base)")
    g.add_argument("--lr", type=float, default=None,
                   help="learning rate of DBA's base or of --optimizer (default: the validated one, else the "
                        "optimizer's own; see above)")
    g.add_argument("--base-lr", type=float, default=None,
                   help="learning rate of the comparison run, the base alone (default: the validated one, else "
                        "DBA's)")
    g.add_argument("--hparam", type=hparam, action="append", default=[], metavar="NAME=VALUE",
                   help="another hyper-parameter of the (base) optimizer, for both runs, e.g. --base momentum "
                        "--hparam momentum=0.8; repeatable (default: the optimizer's own)")
    g.add_argument("--no-compare", action="store_true", help="train DBA only, not its base optimizer alone too")
    g = p.add_argument_group("DBA selection")
    g.add_argument("--metric", default="mean_variance", choices=METRIC_NAMES,
                   help="metric to minimise (default: %(default)s)")
    g.add_argument("--strategy", default="prefix", choices=STRATEGIES,
                   help="subset search (default: %(default)s, the best DBA method's on validation in the cell above; "
                        "the library's dba() defaults to greedy, the paper's algorithm)")
    g.add_argument("--min-size", type=count_or_fraction, default=2,
                   help="smallest subset: a count, or a fraction of the batch (default: %(default)s)")
    g.add_argument("--tol", type=float, default=0.0, help="greedy: minimum relative improvement (default: 0)")
    g.add_argument("--backend", default="numpy", choices=BACKENDS,
                   help="who computes: the forward and backward passes, the Gram matrices, the searches, the "
                        "mean gradients; 'cuda' keeps a batch on the GPU (default: %(default)s)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, default=100, help="epochs (default: %(default)s)")
    g.add_argument("--batch-size", type=batch_size, default=64,
                   help="batch size, or 'full'; for adadagrad/adadagrad_norm the initial size (default: %(default)s)")
    g.add_argument("--test-every", type=positive_int, default=None, metavar="N",
                   help="evaluate the test set every N epochs and after the last (default: epochs/10 rounded up, "
                        "10 for 100 epochs; 1 for every epoch, as the training set always is)")
    g.add_argument("--seed", type=int, default=0,
                   help="seed of the data draw, initialisation and shuffling (default: %(default)s)")
    g.add_argument("--out", default=None,
                   help="output folder (default: runs/DATASET-OPTIMIZER[-OPTION=VALUE...]-sSEED)")
    g.add_argument("--overwrite", action="store_true", help="replace the run already in the output folder")
    g.add_argument("--quiet", action="store_true",
                   help="no progress report (a bar on a terminal; elsewhere, as in a log file, a line per epoch)")
    g.add_argument("--no-plot", action="store_true", help="do not write training.png")
    _checkpointing.add_arguments(g)


def defaults() -> argparse.Namespace:
    """Every option at its default."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args([])


@dataclass
class Run:
    """One training run of the command: what trains, at which rate and why, and where it writes."""

    label: str
    optimizer: Optimizer
    learning_rate: float
    rate_source: str            # where the rate comes from, for the summary
    validated: _validated.Validated | None
    out: Path


def plan_runs(args, out: Path) -> list[Run]:
    """The run the options describe and, for DBA unless --no-compare, its base alone; rates resolved."""
    from ..reproduction.protocol import Method, default_learning_rate

    hyperparams = dict(args.hparam)
    given = hyperparams.pop("learning_rate", args.lr)
    settings = {"dataset": args.dataset, "per_class": None if args.fraction is not None else args.per_class,
                "fraction": args.fraction, "hidden": args.hidden, "activation": args.activation,
                "batch_size": args.batch_size}
    dba = args.optimizer == "dba"
    method = Method(args.base if dba else args.optimizer, dba=dba, metric=args.metric, strategy=args.strategy,
                    min_size=args.min_size, tol=args.tol)
    known = _validated.validated(method.key, settings, hyperparams)
    if given is not None:
        rate, source = given, "--lr"
    elif known:
        rate, source = known.learning_rate, "validated"
    else:
        rate, source = default_learning_rate(method.optimizer), "the optimizer's default"
    runs = [Run(method.label, method.build(rate, hyperparams), rate, source, known, out)]
    if dba and not args.no_compare:
        base = Method(args.base)
        base_known = _validated.validated(base.key, settings, hyperparams)
        if args.base_lr is not None:
            base_rate, base_source = args.base_lr, "--base-lr"
        elif base_known:
            base_rate, base_source = base_known.learning_rate, "validated"
        else:
            base_rate, base_source = rate, "DBA's"
        runs.append(Run(base.label, base.build(base_rate, hyperparams), base_rate, base_source, base_known,
                        out / BASE_SUBFOLDER))
    return runs


def test_every(args) -> int:
    """Epochs between two evaluations of the test set: ``--test-every``, or about ten evaluations a run."""
    return args.test_every if args.test_every is not None else -(-args.epochs // 10)


def _check_options(args, defaults: argparse.Namespace, n_train: int) -> None:
    """Refuse option combinations that would do something other than what they say."""
    if args.optimizer != "dba":
        ignored = [f"--{dest.replace('_', '-')}" for dest in DBA_ONLY if getattr(args, dest) != getattr(defaults, dest)]
        if ignored:
            raise ValueError(f"{', '.join(ignored)} {'applies' if len(ignored) == 1 else 'apply'} only to "
                             f"--optimizer dba; drop {'it' if len(ignored) == 1 else 'them'}, or train "
                             f"--optimizer dba --base {args.optimizer}")
        return
    batch = min(args.batch_size or n_train, n_train)
    if isinstance(args.min_size, int) and args.min_size > batch:
        raise ValueError(f"--min-size {args.min_size} is larger than the batch ({batch} samples): DBA would keep "
                         f"every sample, i.e. train {args.base} alone; give a count up to {batch} or a fraction "
                         "such as 0.25")


def run(args) -> int:
    from ..data import load_dataset, make_split
    from ..model import MLP
    from ..training import CHECKPOINT_FILE, train
    from ..training.history import HistoryLog
    from ._summary import summary

    # Everything that can be refused is checked before the output folder is touched.
    data = load_dataset(args.dataset, args.data_dir, dtype=args.dtype)
    if args.fraction is not None:
        split = make_split(data, fraction=args.fraction, seed=args.seed)
    else:
        split = make_split(data, per_class=args.per_class, seed=args.seed)
    default_options = defaults()
    _check_options(args, default_options, len(split.y_train))
    out = Path(args.out or Path("runs") / _run_folder.default_name(args, default_options))
    runs = plan_runs(args, out)
    sizes = [data.n_features, *args.hidden, data.n_classes]
    models = [MLP(sizes, activation=args.activation, seed=args.seed, dtype=args.dtype) for _ in runs]
    kwargs = [_checkpointing.train_kwargs(args, r.out, None if r.out == out else BASE_SUBFOLDER) for r in runs]
    checkpoints = [None if k["checkpoint_dir"] is None else Path(k["checkpoint_dir"]) / CHECKPOINT_FILE
                   for k in kwargs]
    results = [r.out / "results.json" for r in runs]
    logs = [p.with_suffix(HistoryLog.SUFFIX) for p in results]     # what a run killed while training leaves
    figure = out / "training.png"
    _run_folder.check_folder(out, results, logs, [figure], checkpoints, args.overwrite, args.resume)
    if args.overwrite:
        _run_folder.clear([*results, *logs, figure, *checkpoints])

    # --resume of a run that has trained every epoch: train() checks that its checkpoints are of these options
    # and trains nothing; the command says so and writes nothing (the figure only if it is missing).
    complete = args.resume and _checkpointing.finished(checkpoints, args.epochs)
    if not complete:
        print(f"{args.dataset}: {len(split.y_train)} training / {len(split.y_test)} test images; model "
              f"{'-'.join(map(str, sizes))} {args.activation} {args.dtype}; batch {args.batch_size or 'full'}; "
              f"{plural(args.epochs, 'epoch')}; seed {args.seed}; writing to {out}", file=sys.stderr)
    histories = []
    for r, model, extra in zip(runs, models, kwargs):
        if not complete:
            print(f"training {r.label} at learning rate {r.learning_rate:g} ({r.rate_source})", file=sys.stderr)
        histories.append(train(model, r.optimizer, split.X_train, split.y_train, split.X_test, split.y_test,
                               epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                               progress=not (args.quiet or complete), results_path=r.out / "results.json",
                               config={"dataset": args.dataset, "per_class": None if args.fraction else args.per_class,
                                       "fraction": args.fraction},
                               backend=args.backend, test_every=test_every(args), **extra))
    if complete:
        print(f"{out}: complete, {'each run has' if len(runs) > 1 else 'the run has'} trained all "
              f"{plural(args.epochs, 'epoch')} already; nothing to train, nothing rewritten (a larger --epochs "
              "with --resume continues it, --overwrite trains it again)", file=sys.stderr)
    print(summary(runs, histories, epochs=args.epochs))
    written = [] if complete else results
    if not args.no_plot and not (complete and figure.exists()):
        from ..plots import plot_runs

        plot_runs({r.label: h for r, h in zip(runs, histories)}, figure,
                  title=f"{' next to '.join(r.label for r in runs)} on {args.dataset} "
                        f"({len(split.y_train)} training images, seed {args.seed})")
        written = [*written, figure]
    if written:
        print("wrote " + ", ".join(map(str, written)))
    return 0
