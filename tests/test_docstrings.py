"""The examples in the core modules' docstrings run and print what they say."""
import doctest
import importlib

import pytest

MODULES = ["dba_ref.model", "dba_ref.backprop", "dba_ref.gram", "dba_ref.search", "dba_ref.metrics",
           "dba_ref.optimizers.sgd", "dba_ref.optimizers.dba", "dba_ref.data", "dba_ref.training",
           "dba_ref.exercises", "dba_ref.checkpoint", "dba_ref.estimator", "dba_ref.optimizers"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
