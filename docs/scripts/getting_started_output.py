"""What the README's first command prints, for the Getting started page.

    python docs/scripts/getting_started_output.py      # one to two minutes on 2 cores

Runs ``dba-ref train`` exactly as the README does (the command installed beside
this Python, else the one on ``PATH``), in a fresh temporary folder, and writes
``docs/getting_started/train.md``: the command, the date, what it printed on
standard output, and every figure it wrote (copied beside the fragment, at the
path the command wrote it to). The page includes that fragment, so what it
shows is what the command printed when this script last ran; rerun it after
changing the command. The times it prints depend on the machine and its load,
which the fragment states. Nothing is replaced unless the command succeeds.
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
    beside = Path(sys.executable).parent / COMMAND[0]
    executable = str(beside) if beside.is_file() else COMMAND[0]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        run = subprocess.run([executable, *COMMAND[1:]], cwd=work, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            print(f"`{' '.join(COMMAND)}` failed with exit status {run.returncode}", file=sys.stderr)
            return 1
        shown = sorted(f.relative_to(work).as_posix() for f in Path(work).rglob("*.png"))
        shutil.rmtree(OUT, ignore_errors=True)        # replaced only once the command has succeeded
        for path in shown:                            # at the same place under docs/getting_started/
            (OUT / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(work) / path, OUT / path)
    lines = [f"Output of `{' '.join(COMMAND)}` in an empty folder, recorded by "
             f"`python docs/scripts/getting_started_output.py` on {datetime.date.today().isoformat()} "
             f"({platform.machine()}, {os.cpu_count()} logical CPUs, load average {load:.1f} when it started, "
             f"Python {platform.python_version()}; "
             "the progress bar, printed on standard error, is left out):", "",
             "```text", run.stdout.rstrip(), "```", ""]
    for path in shown:
        lines += [f"`{path}`:", "", f"![{path}]({path})", ""]
    (OUT / "train.md").write_text("\n".join(lines))
    print(f"wrote {OUT / 'train.md'} and {len(shown)} figure(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
