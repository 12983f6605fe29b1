"""Every docstring example of the package runs and prints what it says, each collected once.

The modules are found by walking ``dba_ref/`` (there is no list to keep up to date): every module whose
source holds a ``>>>`` line is one test, which imports it, collects its examples with
:class:`doctest.DocTestFinder` (the objects defined in it, not those it imports) and runs them. The number
of examples collected must equal the number of ``>>>`` lines of the source, so an example that doctest
would not see (the docstring of a compiled or nested function, a comment) fails the test instead of being
left out. A module that needs an optional extra (PyTorch, JAX) is skipped, with the reason, without it.
"""
import doctest
import importlib
import re
from pathlib import Path

import pytest

import dba_ref

PACKAGE = Path(dba_ref.__file__).resolve().parent
#: The optional extras a module may import, and how to install each.
EXTRAS = {"torch": "pip install -e '.[torch]'", "jax": "pip install -e '.[jax]'"}
_PROMPT = re.compile(r"^\s*>>>( |$)", re.M)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_of(name: str) -> Path:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def modules_with_examples() -> list[str]:
    return sorted(module_name(p) for p in PACKAGE.rglob("*.py") if _PROMPT.search(p.read_text(encoding="utf-8")))


MODULES = modules_with_examples()


def import_or_skip(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        extra = (exc.name or "").split(".")[0]
        if extra in EXTRAS:
            pytest.skip(f"{name} needs {extra} ({EXTRAS[extra]})")
        raise


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = import_or_skip(name)
    tests = doctest.DocTestFinder().find(module)
    written = len(_PROMPT.findall(source_of(name).read_text(encoding="utf-8")))
    collected = sum(len(test.examples) for test in tests)
    assert collected == written, (f"{name}: its source has {written} '>>>' lines, doctest collects {collected} "
                                  "examples: an example is where doctest does not look (a comment, the docstring "
                                  "of a nested or compiled function)")
    runner, report = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE), []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_every_module_with_examples_is_collected():
    """A check on the discovery: the modules whose examples once ran in two places, or in none, are found."""
    assert {"dba_ref.checkpoint", "dba_ref.estimator", "dba_ref.step", "dba_ref.training.sampler",
            "dba_ref.frameworks.torch_dba", "dba_ref.gram"} <= set(MODULES)
    assert all(source_of(name).is_file() for name in MODULES)
