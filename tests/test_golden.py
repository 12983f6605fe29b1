"""The golden cases in data/golden/ (issue 4): complete, small, documented, and reproducible.

``data/golden/make_golden.py`` wrote them; here they are regenerated and compared:
strings and integers (selections, removal orders) exactly, floats to 1e-12 relative
in float64 cases and 1e-6 in the float32 case (BLAS may round differently on another
machine), and the decision margins, already relative quantities, to the same bounds absolutely.
"""
import re
from pathlib import Path

import numpy as np
import pytest

from dba_ref.conformance import (CASES, GOLDEN_MIN_MARGIN, golden_dir, is_input, load_golden, max_rel_error,
                                 min_margin, output_keys, write_golden)
from dba_ref.metrics import METRIC_NAMES
from dba_ref.model import ACTIVATIONS
from dba_ref.search import STRATEGIES

REGEN_TOL = {"float64": 1e-12, "float32": 1e-6}
SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "golden_schema.md"


@pytest.fixture(scope="module")
def golden():
    return load_golden()


def test_regenerated_cases_equal_the_committed_ones(tmp_path, golden):
    write_golden(tmp_path)
    fresh = load_golden(tmp_path)
    for name, committed in golden.items():
        tol = REGEN_TOL[str(committed["dtype"])]
        assert sorted(fresh[name]) == sorted(committed), f"{name}: the keys changed"
        for key, ref in committed.items():
            new = fresh[name][key]
            assert new.dtype == ref.dtype and new.shape == ref.shape, f"{name}/{key}: dtype or shape changed"
            if key.endswith("/margins"):
                assert np.all(np.abs(new - ref) <= tol) or np.array_equal(new, ref), f"{name}/{key} changed"
            elif np.issubdtype(ref.dtype, np.floating):
                assert max_rel_error(new, ref) <= tol, f"{name}/{key} changed"
            else:
                assert np.array_equal(new, ref), f"{name}/{key} changed"


def test_cases_cover_what_the_issue_asks_for(golden):
    assert set(golden) == {c.name for c in CASES}
    activations = {str(d["activation"]) for d in golden.values()}
    assert activations == set(ACTIVATIONS)
    assert any(str(d["dtype"]) == "float32" for d in golden.values())
    assert max(len(d["sizes"]) - 1 for d in golden.values()) >= 4
    edges = {int(d["X"].shape[0]) - int(d["min_size"]) for d in golden.values()}
    assert {0, 1} <= edges                                   # min_size = B and min_size = B - 1
    for name, data in golden.items():
        L = len(data["sizes"]) - 1
        for l in range(1, L + 1):
            for metric in METRIC_NAMES:
                for strategy in STRATEGIES:
                    for field in ("indices", "value", "removed", "values", "margins"):
                        assert f"sel/{metric}/{strategy}/L{l}/{field}" in data, (name, metric, strategy, l, field)
            for key in (f"grad_W{l}", f"grad_b{l}", f"gram{l}", f"dba_sgd/W{l}", f"dba_adam/b{l}"):
                assert key in data


def test_golden_selections_hold_no_near_tie_and_files_are_small(golden):
    for name, data in golden.items():
        assert min_margin(data) > GOLDEN_MIN_MARGIN[str(data["dtype"])], name
        edge = int(data["X"].shape[0]) == int(data["min_size"])
        assert all(len(data[k]) == 0 for k in data if k.endswith("/removed")) == edge
    total = sum(p.stat().st_size for p in golden_dir().glob("*.npz"))
    assert total < 1 << 20, f"golden files take {total} bytes"


def test_every_key_is_in_the_schema_document(golden):
    documented = set(re.findall(r"`([^`\s]+)`", SCHEMA.read_text()))
    for data in golden.values():
        for key in data:
            pattern = re.sub(r"^(W|b|grad_W|grad_b|gram)\d+$", r"\1<l>", key)
            pattern = re.sub(r"/([Wb])\d+$", r"/\1<l>", pattern)
            pattern = re.sub(r"/L\d+", "/L<l>", pattern)
            pattern = re.sub(r"/(" + "|".join(METRIC_NAMES) + r")(?=/|$)", "/<metric>", pattern)
            pattern = re.sub(r"/(" + "|".join(STRATEGIES) + r")/", "/<strategy>/", pattern)
            assert pattern in documented, f"{key} (as {pattern}) is not listed in {SCHEMA.name}"


def test_inputs_and_outputs_partition_each_case(golden):
    for data in golden.values():
        outputs = set(output_keys(data))
        inputs = {k for k in data if is_input(k)}
        margins = {k for k in data if k.endswith("/margins")}
        assert not outputs & inputs and inputs | outputs | margins == set(data)
        assert {"X", "y", "W1", "b1", "min_size", "sizes", "activation", "dtype"} <= inputs
