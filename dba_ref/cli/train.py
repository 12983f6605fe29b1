"""Train an MLP with DBA or a plain optimizer, and write results.json and training.png.

Examples:
  dba-ref train                                   # DBA(SGD) on 60 MNIST-5k digits per class
  dba-ref train --optimizer adam --lr 1e-3
  dba-ref train --optimizer dba --base adam --metric variance --min-size 0.25
  dba-ref train --dataset fashion-mnist --per-class 10 --hidden 256,128 --epochs 50
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import _checkpointing

NAME = "train"
HELP = "train an MLP with DBA or a plain optimizer"


def _int_or_fraction(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer count or a fraction, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _batch_size(text: str):
    if text == "full":
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}") from None


def _widths(text: str) -> list[int]:
    try:
        widths = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    return widths


def _hparam(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    return key, value


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..backends import BACKENDS
    from ..data import DATASETS
    from ..metrics import METRIC_NAMES
    from ..model import ACTIVATIONS
    from ..optimizers import OPTIMIZERS
    from ..search import STRATEGIES

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="mnist5k", choices=DATASETS, help="data set (default: %(default)s, bundled)")
    g.add_argument("--data-dir", default=None, help="folder of the IDX files for fashion-mnist / mnist")
    g.add_argument("--per-class", type=_positive_int, default=60, help="training images per class (default: %(default)s)")
    g.add_argument("--fraction", type=float, default=None,
                   help="training fraction of each class instead of --per-class, e.g. 0.01")
    g = p.add_argument_group("model")
    g.add_argument("--hidden", type=_widths, default=[256], help="hidden widths, comma-separated (default: 256)")
    g.add_argument("--activation", default="relu", choices=sorted(ACTIVATIONS), help="hidden activation")
    g.add_argument("--dtype", default="float64", choices=["float32", "float64"], help="model dtype")
    g = p.add_argument_group("optimizer")
    g.add_argument("--optimizer", default="dba", choices=["dba", *OPTIMIZERS],
                   help="'dba' wraps --base; any other name trains plainly (default: %(default)s)")
    wrappable = [name for name, (factory, _) in OPTIMIZERS.items() if not factory().takes_signals]
    g.add_argument("--base", default="sgd", choices=wrappable, help="DBA's base optimizer (default: %(default)s)")
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: the optimizer's own)")
    g.add_argument("--hparam", type=_hparam, action="append", default=[], metavar="NAME=VALUE",
                   help="another hyper-parameter of the (base) optimizer, e.g. --hparam momentum=0.8; repeatable")
    g = p.add_argument_group("DBA selection")
    g.add_argument("--metric", default="mean_variance", choices=METRIC_NAMES, help="metric to minimise")
    g.add_argument("--strategy", default="greedy", choices=STRATEGIES, help="subset search")
    g.add_argument("--min-size", type=_int_or_fraction, default=2,
                   help="smallest subset: a count, or a fraction of the batch (default: %(default)s)")
    g.add_argument("--tol", type=float, default=0.0, help="greedy: minimum relative improvement (default: 0)")
    g.add_argument("--backend", default="numpy", choices=BACKENDS, help="kernels for the selection")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=_positive_int, default=20, help="epochs (default: %(default)s)")
    g.add_argument("--batch-size", type=_batch_size, default=64,
                   help="batch size, or 'full'; for adadagrad/adadagrad_norm the initial size (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed of the data draw, initialisation and shuffling")
    g.add_argument("--out", default=None, help="output folder (default: runs/DATASET-OPTIMIZER-sSEED)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--no-plot", action="store_true", help="do not write training.png")
    _checkpointing.add_arguments(g)


def build_optimizer(args):
    """The optimizer the options describe."""
    from ..optimizers import build_optimizer as build

    return build(args.optimizer, dict(args.hparam), learning_rate=args.lr, base=args.base, metric=args.metric,
                 strategy=args.strategy, min_size=args.min_size, tol=args.tol, backend=args.backend)


def run(args) -> int:
    from ..data import load_dataset, make_split
    from ..model import MLP
    from ..training import train

    optimizer = build_optimizer(args)
    data = load_dataset(args.dataset, args.data_dir, dtype=args.dtype)
    if args.fraction is not None:
        split = make_split(data, fraction=args.fraction, seed=args.seed)
    else:
        split = make_split(data, per_class=args.per_class, seed=args.seed)
    model = MLP([data.n_features, *args.hidden, data.n_classes], activation=args.activation, seed=args.seed,
                dtype=args.dtype)
    tag = optimizer.name.replace("(", "-").replace(")", "")
    out = Path(args.out or os.path.join("runs", f"{args.dataset}-{tag}-s{args.seed}"))
    print(f"{args.dataset}: {len(split.y_train)} training / {len(split.y_test)} test images; "
          f"model {model.sizes}; optimizer {optimizer.name} {optimizer.hyperparams}", file=sys.stderr)
    history = train(model, optimizer, split.X_train, split.y_train, split.X_test, split.y_test,
                    epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, progress=not args.quiet,
                    results_path=out / "results.json",
                    config={"dataset": args.dataset, "per_class": None if args.fraction else args.per_class,
                            "fraction": args.fraction}, **_checkpointing.train_kwargs(args, out))
    final = history.final
    print(f"final: train loss {final['train_loss']:.4f}, train acc {final['train_acc']:.4f}, "
          f"test loss {final['test_loss']:.4f}, test acc {final['test_acc']:.4f} "
          f"after {final['step']} steps in {final['seconds']:.1f} s")
    if "selected" in history.steps:
        sizes = ", ".join(f"layer {l + 1}: {sum(s) / len(s):.1f}" for l, s in enumerate(history.steps["selected"]))
        print(f"mean selected batch size: {sizes} (batches of {args.batch_size or len(split.y_train)})")
    if history.config.get("adaptive_batch"):
        sizes = history.steps["batch_size"]
        print(f"batch size grew from {sizes[0]} to {max(sizes)} over {len(sizes)} steps")
    print(f"wrote {out / 'results.json'}")
    if not args.no_plot:
        from ..plots import plot_history

        plot_history(history, out / "training.png", title=f"{optimizer.name} on {args.dataset}")
        print(f"wrote {out / 'training.png'}")
    return 0
