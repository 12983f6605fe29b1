"""Every example in the README, the docs and the ``--help`` texts runs, and no training example diverges.

The examples are discovered, not listed, so an example added anywhere is run:

- ``dba-ref ...`` commands in README.md, ``docs/**/*.md``, tutorials/README.md and the Markdown
  cells of the notebooks (their sources, ``tutorials/_src/*.py``): the lines of fenced shell blocks
  (```bash, ```sh, ```console after ``$ ``; the ``dba-ref`` part of a line such as
  ``pip install ... && dba-ref train``) and inline code spans;
- every line of a subcommand's ``--help`` description that starts with ``dba-ref``;
- every ```python block of README.md.

Each command is first checked at the ``--help`` level: its subcommands and options exist. It then
runs, with the other examples of the same page, in order, in a temporary folder (files of the
source checkout it names are copied there first; ``python -m dba_ref...`` lines of the page run
too, as they make the inputs of later commands). ``dba-ref train`` gets ``--epochs 2``, ``--quiet``
and, unless the example names one, a folder of its own for ``--out``; a README Python block gets
``epochs=2``. A command must end with exit status 0 (or the one :data:`EXIT_STATUS` gives), and every
training run it wrote must end without divergence: finite losses, and a last training loss below the
first. The slow test :func:`test_training_examples_do_not_diverge_at_full_length` runs the training
examples with their own epochs.

An example that reads a data set the package does not ship (``--dataset fashion-mnist``: the Debian
package ``dataset-fashion-mnist``) is run where that data set is on the machine; where it is not, the
page's other examples run and the test then skips, naming what was not run and why. Such pages carry
the ``optional_data`` mark (CI runs them again once the data are installed).

Not run, and checked at the ``--help`` level only: commands with a placeholder (an upper-case word
such as ``N``, ``FILE``, ``RESULTS.npz``, or an ellipsis), mentions of a subcommand without options
or arguments (``dba-ref conformance check`` in a sentence), and the commands of :data:`NOT_RUN`,
each with the reason.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dba_ref import cli
from dba_ref.data import load_dataset

REPO = Path(__file__).resolve().parents[1]

#: Examples that cannot run in a test: (regular expression matched against the command, reason).
NOT_RUN = [
    (r"^dba-ref reproduce --full(?!.*--report-only)", "the paper's protocol: 1,820 training runs, hours on 2 cores"),
    (r"^dba-ref reproduce --full --report-only$", "rewrites the report from a reproduction's runs folder, which an "
                                                "empty folder does not hold (tests/test_reproduce.py re-derives "
                                                "the committed report)"),
    (r"buggy_results\.npz", "needs the buggy_results.npz that the reader's make_buggy.py writes"),
    (r"my_results\.npz", "the reader's own results file"),
    (r"my_greedy\.ipynb", "the reader's own notebook"),
]
#: Examples whose documented outcome is a non-zero exit status: (regular expression, status, why).
EXIT_STATUS = [
    (r"^dba-ref exercises check ", 1, "grading a stub that is not filled in yet: NOT ATTEMPTED, exit status 1"),
]
#: Data sets that neither the package nor its dependencies ship: their files come from elsewhere.
NOT_SHIPPED = ("fashion-mnist", "mnist")
#: Epochs a training example gets in the default run.
TEST_EPOCHS = "2"
_PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]*\b|…|\.\.\.")      # N, FILE, RESULTS.npz, an ellipsis
_SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}


@dataclass(frozen=True)
class Example:
    """A command (or a Python block) of one source, in the order the source shows them."""

    source: str          # e.g. "README.md" or "--help of train"
    kind: str            # "dba-ref" (a command), "python -m" (a module run that prepares inputs), "python" (a block)
    text: str
    inline: bool = False


# ---------------------------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------------------------
#: Pages whose commands are not examples: the changelog quotes options as they were and as they became.
NOT_EXAMPLES = ("docs/CHANGELOG.md",)


def markdown_files() -> list[Path]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), REPO / "tutorials" / "README.md",
             *sorted((REPO / "tutorials" / "_src").glob("*.py"))]
    return [page for page in pages if page.relative_to(REPO).as_posix() not in NOT_EXAMPLES]


def _shell_commands(language: str, body: str):
    """The commands of a fenced shell block: one per line (backslash continuations joined), comments cut."""
    body = re.sub(r"\\\n\s*", " ", body)
    for line in body.splitlines():
        line = line.strip()
        if language == "console":
            if not line.startswith("$ "):
                continue                                        # output, not a command
            line = line[2:]
        line = re.split(r"\s#", line, maxsplit=1)[0].strip()
        yield from (part.strip() for part in line.split("&&"))


def notebook_markdown(path: Path) -> str:
    """The Markdown cells of a notebook source in the percent format (``# `` lines), code lines blanked."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line[2:] if line.startswith("# ") else "" for line in lines)


def markdown_examples(path: Path) -> list[Example]:
    """The ``dba-ref`` commands, ``python -m dba_ref`` lines and (README only) Python blocks of a Markdown file
    (or of the Markdown cells of a notebook source)."""
    source = path.relative_to(REPO).as_posix()
    text = notebook_markdown(path) if path.suffix == ".py" else path.read_text(encoding="utf-8")
    examples, position = [], 0
    fence = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
    for match in fence.finditer(text):
        examples += _inline_examples(source, text[position:match.start()])
        position = match.end()
        language, body = match.group(1).lower(), match.group(2)
        if language == "python" and source == "README.md":
            examples.append(Example(source, "python", body))
        elif language in _SHELL_LANGUAGES:
            for command in _shell_commands(language, body):
                if command.startswith("dba-ref"):
                    examples.append(Example(source, "dba-ref", command))
                elif command.startswith("python -m dba_ref"):
                    examples.append(Example(source, "python -m", command))
    return examples + _inline_examples(source, text[position:])


def _inline_examples(source: str, prose: str) -> list[Example]:
    return [Example(source, "dba-ref", span.strip(), inline=True)
            for span in re.findall(r"`(dba-ref(?:\s[^`]*)?)`", prose)]


def help_examples() -> list[Example]:
    """Lines of every subcommand's description that start with ``dba-ref`` (an enumerator ``1.`` may come first)."""
    examples = []
    for module in cli.subcommands():
        for line in (module.__doc__ or "").splitlines():
            match = re.match(r"\s*(?:\d+\.\s+)?(dba-ref\s.*?)(?:\s{2,}|\s#|$)", line)
            if match:
                examples.append(Example(f"--help of {module.NAME}", "dba-ref", match.group(1).strip()))
    return examples


def all_sources() -> dict[str, list[Example]]:
    sources = {path.relative_to(REPO).as_posix(): markdown_examples(path) for path in markdown_files()}
    for example in help_examples():
        sources.setdefault(example.source, []).append(example)
    return {name: examples for name, examples in sources.items() if examples}


SOURCES = all_sources()


# ---------------------------------------------------------------------------------------------------------------
# Checking and running one command
# ---------------------------------------------------------------------------------------------------------------
def _subparsers(parser) -> dict:
    return next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def parse_check(command: str):
    """The command's subcommands and options exist (placeholders aside); returns its parser and the words used."""
    tokens = shlex.split(command)[1:]
    parser, words = cli.build_parser(), 0
    while words < len(tokens) and _subparsers(parser) and not tokens[words].startswith("-"):
        word = tokens[words]
        if _PLACEHOLDER.search(word):
            return parser, words
        assert word in _subparsers(parser), f"{command!r}: {word!r} is not a subcommand of {parser.prog!r}"
        parser, words = _subparsers(parser)[word], words + 1
    options = {option for action in parser._actions for option in action.option_strings}
    for token in tokens[words:]:
        if token.startswith("--"):
            assert token.split("=")[0] in options, f"{command!r}: {parser.prog} has no option {token}"
    return parser, words


def not_run_reason(example: Example) -> str | None:
    """Why the example is only checked at the --help level, or None when it runs."""
    tokens = shlex.split(example.text)[1:]
    if any(_PLACEHOLDER.search(token) for token in tokens):
        return "it has a placeholder"
    if example.inline and len(tokens) == parse_check(example.text)[1]:
        return "it mentions a subcommand"
    return next((reason for pattern, reason in NOT_RUN if re.search(pattern, example.text)), None)


def optional_data(example: Example) -> tuple[str, str | None] | None:
    """The data set a runnable ``dba-ref`` example reads that the package does not ship (with its ``--data-dir``),
    from the options as the command line parses them; None when it reads only bundled data, or none."""
    if example.kind != "dba-ref" or not_run_reason(example) is not None:
        return None
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args = cli.build_parser().parse_args(shlex.split(example.text)[1:])
    except SystemExit:                                          # --help
        return None
    dataset = getattr(args, "dataset", None)
    return (dataset, args.data_dir) if dataset in NOT_SHIPPED else None


def missing_data(example: Example) -> str | None:
    """Why the example cannot run on this machine for want of its data (loaded as the command loads them), or None."""
    needed = optional_data(example)
    if needed is None:
        return None
    try:
        load_dataset(*needed, dtype="float32")
    except FileNotFoundError as exc:
        return f"{example.text!r} was not run: {exc}"
    return None


def expected_status(command: str) -> int:
    return next((status for pattern, status, _ in EXIT_STATUS if re.search(pattern, command)), 0)


def _copy_named_files(tokens, folder: Path) -> None:
    """Copy the files of the source checkout a command names (relative paths) into ``folder``."""
    for token in tokens:
        path = REPO / token
        if not Path(token).is_absolute() and ".." not in Path(token).parts and path.is_file():
            (folder / token).parent.mkdir(parents=True, exist_ok=True)
            if not (folder / token).exists():
                shutil.copy(path, folder / token)


def _with_option(argv: list[str], option: str, value: str | None) -> list[str]:
    """``argv`` with ``option`` set to ``value`` (a flag when None), replacing a value it already has."""
    if option in argv:
        if value is None:
            return argv
        i = argv.index(option)
        return [*argv[:i + 1], value, *argv[i + 2:]]
    return [*argv, option] if value is None else [*argv, option, value]


def argv_for_test(command: str, folder: Path, number: int, epochs: str | None) -> tuple[list[str], Path | None]:
    """The argv the test runs for ``command``, and the output folder of a training run."""
    argv = shlex.split(command)[1:]
    parser, _ = parse_check(command)
    options = {option for action in parser._actions for option in action.option_strings}
    if "--quiet" in options:
        argv = _with_option(argv, "--quiet", None)
    if argv[0] != "train" or "--help" in argv:
        return argv, None
    if epochs is not None:
        argv = _with_option(argv, "--epochs", epochs)
    if "--out" not in argv:
        argv = _with_option(argv, "--out", f"run-{number}")
    return argv, folder / argv[argv.index("--out") + 1]


def assert_trained_without_divergence(out: Path, command: str, full_length: bool = False) -> None:
    """Every run under ``out`` has finite losses and ends with a lower training loss than it started with.

    ``full_length``: also, no epoch after the first has a training loss above the starting one
    (the loss never climbs back: a run that does has diverged, even if it comes down again).
    """
    results = sorted(out.rglob("results.json"))
    assert results, f"{command!r} wrote no results.json under {out}"
    for path in results:
        losses = [row["train_loss"] for row in json.loads(path.read_text())["epochs"]]
        where = f"{command!r}, {path.relative_to(out.parent)}: training loss per epoch {losses}"
        assert all(math.isfinite(loss) for loss in losses), where
        assert losses[-1] < losses[0], where
        if full_length:
            assert max(losses[1:]) <= losses[0], where


def run_command(command: str, folder: Path, number: int, capsys, epochs: str | None = TEST_EPOCHS) -> str:
    """Run a ``dba-ref`` command in ``folder`` (the current folder); returns a failure message or ''."""
    argv, out = argv_for_test(command, folder, number, epochs)
    _copy_named_files(argv, folder)
    try:
        status = cli.main(argv)
    except SystemExit as exc:                                   # --help, argparse's own errors
        status = exc.code or 0
    output = capsys.readouterr()
    if status != expected_status(command):
        return (f"{command!r} (run as dba-ref {shlex.join(argv)}) exited with {status}, expected "
                f"{expected_status(command)}:\n{output.out[-2000:]}{output.err[-2000:]}")
    if out is not None and status == 0:
        assert_trained_without_divergence(out, command, full_length=epochs is None)
    return ""


def run_module(command: str, folder: Path) -> str:
    """Run a ``python -m dba_ref...`` line of a page (it makes the input of a later command)."""
    if "torch" in command:
        pytest.importorskip("torch", reason=f"{command!r} needs PyTorch (pip install -e '.[torch]')")
    argv = shlex.split(command)[1:]
    proc = subprocess.run([sys.executable, *argv], cwd=folder, capture_output=True, text=True, timeout=600)
    return "" if proc.returncode == 0 else f"{command!r} exited with {proc.returncode}:\n{proc.stderr[-2000:]}"


def run_python_block(code: str, namespace: dict) -> str:
    """Execute a README Python block (training blocks get ``epochs=2``) in ``namespace``."""
    code = re.sub(r"\bepochs=\d+", f"epochs={TEST_EPOCHS}", code)
    try:
        exec(compile(code, "README.md (a python block)", "exec"), namespace)
    except ModuleNotFoundError as exc:
        if exc.name in ("torch", "jax"):
            pytest.skip(f"a README block needs {exc.name}")
        raise
    return ""


# ---------------------------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------------------------
def with_optional_data_mark(name: str, examples: list[Example]):
    """``name`` as a parameter, marked ``optional_data`` when one of ``examples`` reads a data set not shipped."""
    needs = any(optional_data(e) for e in examples)
    return pytest.param(name, marks=[pytest.mark.optional_data] if needs else [])


@pytest.mark.parametrize("source", [with_optional_data_mark(s, SOURCES[s]) for s in sorted(SOURCES)])
def test_every_example_runs(source, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    failures, not_run, namespace = [], [], {"__name__": "__main__"}
    for number, example in enumerate(SOURCES[source]):
        if example.kind == "python":
            failures.append(run_python_block(example.text, namespace))
        elif example.kind == "python -m":
            failures.append(run_module(example.text, tmp_path))
        else:
            parse_check(example.text)
            missing = missing_data(example)
            if missing:
                not_run.append(missing)
            elif not_run_reason(example) is None:
                failures.append(run_command(example.text, tmp_path, number, capsys))
    failures = [f for f in failures if f]
    assert not failures, "\n\n".join(failures)
    if not_run:
        pytest.skip("; ".join(not_run) + " (the other examples of the page ran)")


def test_discovery_finds_the_main_job_and_the_help_examples():
    """A check on the discovery itself: the README's main job and each subcommand's examples are found."""
    readme = [e.text for e in SOURCES["README.md"] if e.kind == "dba-ref" and not e.inline]
    assert "dba-ref train" in readme
    assert any(e.kind == "python" for e in SOURCES["README.md"])
    helped = {e.source for examples in SOURCES.values() for e in examples if e.source.startswith("--help")}
    assert {"--help of train", "--help of optimizers"} <= helped


@pytest.mark.parametrize("pattern", [p for p, _ in NOT_RUN] + [p for p, _, _ in EXIT_STATUS])
def test_every_listed_exception_is_still_an_example(pattern):
    """NOT_RUN and EXIT_STATUS list examples that exist: an entry whose example is gone must go too."""
    assert any(re.search(pattern, e.text) for examples in SOURCES.values() for e in examples if e.kind == "dba-ref")


def training_examples() -> list[Example]:
    return [e for examples in SOURCES.values() for e in examples if e.kind == "dba-ref"
            and shlex.split(e.text)[1:2] == ["train"] and "--help" not in e.text and not_run_reason(e) is None]


@pytest.mark.slow
@pytest.mark.parametrize("example", [pytest.param(e, id=e.text, marks=[pytest.mark.optional_data] if optional_data(e)
                                                  else []) for e in training_examples()])
def test_training_examples_do_not_diverge_at_full_length(example, tmp_path, monkeypatch, capsys):
    """Each ``dba-ref train`` example with its own epochs: finite losses that never climb back above the start."""
    missing = missing_data(example)
    if missing:
        pytest.skip(missing)
    monkeypatch.chdir(tmp_path)
    failure = run_command(example.text, tmp_path, 0, capsys, epochs=None)
    assert not failure, failure
