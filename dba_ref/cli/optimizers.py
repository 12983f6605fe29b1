"""List the optimizers that --optimizer and --base accept, with a one-line description each.

Examples:
  dba-ref optimizers                  # name and description
  dba-ref optimizers --defaults       # also every hyper-parameter and its default
  dba-ref optimizers adan dba         # some optimizers, with their defaults

Each has a page in docs/optimizers/ (update equations, source paper, defaults,
what it was cross-checked against). Optimizers marked "per-sample" read every
sample's gradient statistics (DBA's selection, AdAdaGrad's batch-size test); they
cannot be DBA's base. The defaults listed are those of the library's functions
(dba_ref.dba, dba_ref.adam, ...); the train command sets its own, validated
ones (see its --help).
"""
from __future__ import annotations

import argparse
import inspect

NAME = "optimizers"
HELP = "list the optimizers with a one-line description"


#: How ``dba`` is listed: it wraps another optimizer, so it is not in the registry of ``--base`` choices.
DBA_DESCRIPTION = ("Dynamic Batch Adaptation: per layer, the update of a base optimizer (--base) uses the mean "
                   "over the subset of the batch that minimises a metric of the gradients (Simionescu et al., 2022)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="only these optimizers (default: all)")
    p.add_argument("--defaults", action="store_true",
                   help="also list every hyper-parameter with its default (default: only with NAMEs)")


def defaults(factory) -> str:
    """``name=default`` for every hyper-parameter of an optimizer factory (``name`` alone where it has none)."""
    return ", ".join(name if param.default is inspect.Parameter.empty else f"{name}={param.default!r}"
                     for name, param in inspect.signature(factory).parameters.items())


def run(args) -> int:
    from .._validation import check_choice
    from ..optimizers import OPTIMIZERS, WRAPPABLE, dba

    listed = {"dba": (dba, DBA_DESCRIPTION, True)}
    listed.update((name, (factory, description, name not in WRAPPABLE))
                  for name, (factory, description) in OPTIMIZERS.items())
    names = [check_choice(name, listed, "optimizer") for name in args.names] or list(listed)
    width = max(len(name) for name in names)
    for name in names:
        factory, description, per_sample = listed[name]
        print(f"{name:<{width}}  {description}{' [per-sample]' if per_sample else ''}")
        if args.defaults or args.names:
            print(f"{'':<{width}}  defaults: {defaults(factory)}")
    return 0
