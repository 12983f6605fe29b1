"""The ``dba-ref`` command.

Each subcommand is a module of this package that defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; :func:`main` finds them
all, so adding a subcommand means adding one module. Errors a user can fix
(bad options, missing files, bad values) are printed as one line,
``dba-ref: error: ...``, with exit status 2, never as a traceback; set
``DBA_REF_DEBUG=1`` to see the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and exit with status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def subcommands() -> list:
    """The subcommand modules, sorted by name."""
    mods = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)
            if not info.name.startswith("_")]
    return sorted((m for m in mods if hasattr(m, "NAME")), key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = OneLineParser(prog="dba-ref", description="Dynamic Batch Adaptation, the reference implementation.")
    parser.add_argument("--version", action="version", version=f"dba-ref {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for mod in subcommands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:                  # e.g. `dba-ref ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
        return 0
    except (ValueError, TypeError, OSError) as exc:
        if os.environ.get("DBA_REF_DEBUG"):
            raise
        print(f"dba-ref {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dba-ref {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
