"""Check another DBA implementation against the reference on the golden cases.

  1. dba-ref conformance export DIR
       writes DIR/<case>.npz (the inputs of every golden case: model, weights,
       batch, min_size, hyper-parameters) and DIR/OUTPUTS.txt (what to compute).
  2. Run your implementation on each case and save one RESULTS.npz holding
     <case>/<key> for every key of OUTPUTS.txt (docs/golden_schema.md).
  3. dba-ref conformance check RESULTS.npz
       prints, per quantity, the max relative error against the reference and
       its tolerance, lists missing keys, wrong shapes, failures and near-ties
       (ambiguous, not failures) by name, and exits with status 1 on failure.

Worked example with the PyTorch version in dba_ref.frameworks: docs/verification.md.
"""
from __future__ import annotations

import argparse

NAME = "conformance"
HELP = "export the golden cases' inputs, or check another implementation's outputs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..conformance import CASES, QUANTITIES

    actions = p.add_subparsers(dest="action", metavar="ACTION")
    e = actions.add_parser("export", help="write the inputs of every golden case to a folder",
                           description="Write DIR/<case>.npz (inputs only) and DIR/OUTPUTS.txt.")
    e.add_argument("directory", metavar="DIR", help="output folder (created if needed)")
    e.add_argument("--golden", default=None, metavar="GOLDEN_DIR",
                   help="golden cases to read (default: those shipped with dba-ref)")
    c = actions.add_parser("check", help="compare RESULTS.npz with the reference",
                           description="Compare another implementation's outputs with the golden cases.")
    c.add_argument("results", metavar="RESULTS.npz", help="<case>/<key> arrays of your implementation")
    c.add_argument("--golden", default=None, metavar="GOLDEN_DIR",
                   help="golden cases to compare with (default: those shipped with dba-ref)")
    c.add_argument("--only", action="append", choices=QUANTITIES, default=None, metavar="QUANTITY",
                   help=f"check only this quantity (repeatable): {', '.join(QUANTITIES)} (default: every quantity)")
    c.add_argument("--case", action="append", choices=[case.name for case in CASES], default=None, dest="cases",
                   metavar="CASE", help=f"check only this case (repeatable): {', '.join(c.name for c in CASES)} "
                        "(default: every case)")
    c.add_argument("--max-listed", type=int, default=20, help="problems listed per section (default: %(default)s)")
    p.set_defaults(_parser=p)


def run(args) -> int:
    from ..conformance import QUANTITIES, check_results, export_inputs, format_report, load_golden, load_npz

    if args.action is None:
        args._parser.print_help()
        return 2
    if args.action == "check" and args.max_listed < 0:
        raise ValueError(f"--max-listed must be >= 0, got {args.max_listed}")
    golden = load_golden(args.golden)
    if args.action == "export":
        paths = export_inputs(args.directory, golden)
        for path in paths:
            print(f"wrote {path}")
        print(f"wrote {paths[0].parent / 'OUTPUTS.txt'} (the {sum(1 for _ in paths)} cases' expected output keys)")
        return 0
    results = load_npz(args.results)
    report = check_results(results, golden, quantities=args.only or QUANTITIES, cases=args.cases)
    print(format_report(report, max_listed=args.max_listed))
    return 0 if report.passed else 1
