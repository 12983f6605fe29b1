"""List the optimizers that --optimizer and --base accept, with a one-line description each.

Examples:
  dba-ref optimizers                  # name and description
  dba-ref optimizers --defaults       # also every hyper-parameter and its default
  dba-ref optimizers adan             # one optimizer, with its defaults

Each has a page in docs/optimizers/ (update equations, source paper, defaults,
what it was cross-checked against). Optimizers marked "per-sample" read every
sample's gradient statistics (AdAdaGrad's batch-size test) and cannot be DBA's base.
"""
from __future__ import annotations

import argparse
import inspect

NAME = "optimizers"
HELP = "list the optimizers with a one-line description"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="only these optimizers (default: all)")
    p.add_argument("--defaults", action="store_true", help="also list every hyper-parameter with its default")


def defaults(factory) -> str:
    """``name=default`` for every hyper-parameter of an optimizer factory."""
    return ", ".join(f"{name}={param.default!r}" for name, param in inspect.signature(factory).parameters.items())


def run(args) -> int:
    from .._validation import check_choice
    from ..optimizers import OPTIMIZERS

    names = [check_choice(name, OPTIMIZERS, "optimizer") for name in args.names] or list(OPTIMIZERS)
    width = max(len(name) for name in names)
    for name in names:
        factory, description = OPTIMIZERS[name]
        tag = " [per-sample]" if factory().takes_signals else ""
        print(f"{name:<{width}}  {description}{tag}")
        if args.defaults or args.names:
            print(f"{'':<{width}}  defaults: {defaults(factory)}")
    return 0
