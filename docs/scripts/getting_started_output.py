"""What the README's first command prints, for the Getting started page.

    python docs/scripts/getting_started_output.py      # about half a minute on 2 cores

Runs ``dba-ref train`` exactly as the README does, in a fresh temporary folder,
and writes ``docs/getting_started/train.md``: the command, the date, what it
printed on standard output, and every figure it wrote (copied beside the
fragment). The page includes that fragment, so what it shows is what the
command printed when this script last ran; rerun it after changing the command.
"""
from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "getting_started"
COMMAND = ["dba-ref", "train"]


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        run = subprocess.run(COMMAND, cwd=work, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            print(f"`{' '.join(COMMAND)}` failed with exit status {run.returncode}", file=sys.stderr)
            return 1
        figures = sorted(Path(work).rglob("*.png"))
        for figure in figures:
            shutil.copy2(figure, OUT / figure.name)
        shown = [f.relative_to(work).as_posix() for f in figures]
    lines = [f"Output of `{' '.join(COMMAND)}` in an empty folder, recorded by "
             f"`python docs/scripts/getting_started_output.py` on {datetime.date.today().isoformat()} "
             f"({platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}; "
             "the progress bar, printed on standard error, is left out):", "",
             "```text", run.stdout.rstrip(), "```", ""]
    for path in shown:
        lines += [f"`{path}`:", "", f"![{path}]({Path(path).name})", ""]
    (OUT / "train.md").write_text("\n".join(lines))
    print(f"wrote {OUT / 'train.md'} and {len(shown)} figure(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
