"""Regenerate the golden cases of the conformance check.

    python data/golden/make_golden.py            # rewrites dba_ref/conformance/golden/*.npz of this checkout
    python data/golden/make_golden.py --out DIR  # writes them elsewhere

The golden cases are package data, in ``dba_ref/conformance/golden/``, so
that an installed wheel has them. The cases are defined in
``dba_ref.conformance.CASES`` (seeded: the same code gives the same arrays);
``docs/golden_schema.md`` lists every key. ``tests/test_golden.py``
regenerates them and checks that nothing changed.
"""
import argparse
from pathlib import Path

import numpy as np

from dba_ref.conformance import CASES, min_margin, write_golden, load_npz

#: The package data folder of the checkout this script belongs to.
CHECKOUT_GOLDEN_DIR = Path(__file__).resolve().parents[2] / "dba_ref" / "conformance" / "golden"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=CHECKOUT_GOLDEN_DIR, type=Path,
                        help="output folder (default: dba_ref/conformance/golden/ of this checkout)")
    args = parser.parse_args()
    for case, path in zip(CASES, write_golden(args.out)):
        data = load_npz(path)
        print(f"{path.name:24s} {path.stat().st_size:7d} bytes  {len(data):4d} keys  "
              f"min margin {min_margin(data):.2g}  {case.description}")
    print(f"numpy {np.__version__}")


if __name__ == "__main__":
    main()
