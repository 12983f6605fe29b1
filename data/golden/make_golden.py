"""Regenerate the golden cases of the conformance check.

    python data/golden/make_golden.py            # rewrites data/golden/*.npz
    python data/golden/make_golden.py --out DIR  # writes them elsewhere

The cases are defined in ``dba_ref.conformance.CASES`` (seeded: the same code
gives the same arrays); ``docs/golden_schema.md`` lists every key.
``tests/test_golden.py`` regenerates them and checks that nothing changed.
"""
import argparse
from pathlib import Path

import numpy as np

from dba_ref.conformance import CASES, min_margin, write_golden, load_npz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=Path(__file__).resolve().parent, type=Path, help="output folder")
    args = parser.parse_args()
    for case, path in zip(CASES, write_golden(args.out)):
        data = load_npz(path)
        print(f"{path.name:24s} {path.stat().st_size:7d} bytes  {len(data):4d} keys  "
              f"min margin {min_margin(data):.2g}  {case.description}")
    print(f"numpy {np.__version__}")


if __name__ == "__main__":
    main()
