"""Check another DBA implementation against the reference on the golden cases, on what it declares it implements.

  1. dba-ref conformance export DIR --metric mean_variance --strategy greedy --base sgd --steps 20
       writes DIR/<case>.npz (the inputs of the declared cases: model, weights,
       the batches of every step, min_size, hyper-parameters), DIR/OUTPUTS.txt
       (what to compute) and DIR/DECLARATION.json (what you declared).
  2. Run your implementation on each case and save one RESULTS.npz holding
     <case>/<key> for every key of OUTPUTS.txt (docs/golden_schema.md).
  3. dba-ref conformance check RESULTS.npz --inputs DIR
       prints what was checked (the declaration, one screen), then per quantity
       the max relative error against the reference and its tolerance; lists
       missing keys, wrong shapes, failures and near-ties (ambiguous, not
       failures) by name, and where each DBA trajectory first diverges (step,
       layer, sample, the reference's decision margin); exits with status 1 on
       failure. Keys outside the declaration are neither missing nor unexpected.

The filters (--case, --only, --metric, --strategy, --base, each repeatable,
and --steps) declare what your implementation implements; check takes them
too, or reads export's with --inputs DIR (a filter given replaces that part).
From a test suite: dba_ref.conformance.check_step. Worked example with the
PyTorch version in dba_ref.frameworks: docs/verification.md.
"""
from __future__ import annotations

import argparse

NAME = "conformance"
HELP = "export the golden cases' inputs, or check another implementation's outputs"


def _add_declaration(p: argparse.ArgumentParser) -> None:
    """The options that declare what an implementation implements (the fields of Declaration)."""
    from ..conformance import CASE_NAMES, QUANTITIES, STEP_BASES
    from ..metrics import METRIC_NAMES
    from ..search import STRATEGIES

    for option, dest, choices, what in (("--case", "cases", CASE_NAMES, "case"),
                                        ("--only", "quantities", QUANTITIES, "quantity"),
                                        ("--metric", "metrics", METRIC_NAMES, "metric"),
                                        ("--strategy", "strategies", STRATEGIES, "strategy"),
                                        ("--base", "bases", tuple(STEP_BASES), "base optimizer of the DBA steps")):
        p.add_argument(option, action="append", choices=choices, default=None, dest=dest,
                       metavar=what.split()[0].upper(),
                       help=f"declare this {what} (repeatable): {', '.join(choices)} (default: every one)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="length of every DBA trajectory: N consecutive steps from each case's weights (default: 1)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    e = actions.add_parser("export", help="write the inputs of the declared golden cases to a folder",
                           description="Write DIR/<case>.npz (inputs only), DIR/OUTPUTS.txt and DIR/DECLARATION.json "
                                       "for the declared cases, quantities, metrics, strategies, bases and steps.")
    e.add_argument("directory", metavar="DIR", help="output folder (created if needed)")
    e.add_argument("--golden", default=None, metavar="GOLDEN_DIR",
                   help="golden cases to read (default: those shipped with dba-ref)")
    _add_declaration(e)
    c = actions.add_parser("check", help="compare RESULTS.npz with the reference",
                           description="Compare another implementation's outputs with the reference, on what it "
                                       "declares it implements.")
    c.add_argument("results", metavar="RESULTS.npz", help="<case>/<key> arrays of your implementation")
    c.add_argument("--golden", default=None, metavar="GOLDEN_DIR",
                   help="golden cases to compare with (default: those shipped with dba-ref)")
    c.add_argument("--inputs", default=None, metavar="DIR",
                   help="read the declaration `dba-ref conformance export DIR` recorded (DIR/DECLARATION.json); "
                        "the options below replace its parts (default: none, the options alone declare)")
    _add_declaration(c)
    c.add_argument("--max-listed", type=int, default=20, help="problems listed per section (default: %(default)s)")
    p.set_defaults(_parser=p)


def declaration_of(args):
    """The declaration the options give (over the one of ``--inputs DIR``, if given), and where it came from."""
    from ..conformance import Declaration

    inputs = getattr(args, "inputs", None)
    base = Declaration.read(inputs) if inputs else Declaration()
    changes = {name: getattr(args, name) for name in ("cases", "quantities", "metrics", "strategies", "bases", "steps")}
    source = f"{inputs}/DECLARATION.json" if inputs else ""
    if inputs and any(v is not None for v in changes.values()):
        source += " and the command line"
    return base.replace(**changes), source


def run(args) -> int:
    from ..conformance import check_results, export_inputs, format_report, load_golden, load_npz

    if args.action is None:
        args._parser.print_help()
        return 2
    if args.action == "check" and args.max_listed < 0:
        raise ValueError(f"--max-listed must be >= 0, got {args.max_listed}")
    declaration, source = declaration_of(args)
    golden = load_golden(args.golden)
    if args.action == "export":
        paths = export_inputs(args.directory, golden, declaration)
        for path in paths:
            print(f"wrote {path}")
        print(f"wrote {paths[0].parent / 'OUTPUTS.txt'} (the expected output keys) and "
              f"{paths[0].parent / 'DECLARATION.json'} ({declaration.flags() or 'everything declared'})")
        return 0
    results = load_npz(args.results)
    report = check_results(results, golden, declaration)
    report.coverage.source = source
    print(format_report(report, max_listed=args.max_listed))
    return 0 if report.passed else 1
