"""The golden cases in dba_ref/conformance/golden/ (issue 4): complete, small, documented, and reproducible.

``data/golden/make_golden.py`` wrote them; here they are regenerated and compared:
strings and integers (selections, removal orders) exactly, floats to rounding
(:func:`golden_tolerance`): another machine's BLAS kernel, or another thread count,
rounds the matrix products differently, so each float may move as far as the
conformance checker lets another implementation's: ``SAFETY · n_ops · ε · scale``
for its own scale and operation count, metric values by the bounds of spec
§7.1 (dba_ref.agreement). On the machine that wrote them the regeneration is
bit-identical.
"""
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_within, search_ops

from dba_ref.agreement import gram_ops, path_value_scales, rounding_tolerance, value_scale
from dba_ref.conformance import (CASES, GOLDEN_MIN_MARGIN, golden_dir, is_input, load_golden, output_keys,
                                 output_rounding, write_golden)
from dba_ref.conformance.cases import min_margin
from dba_ref.metrics import METRIC_NAMES
from dba_ref.model import ACTIVATIONS
from dba_ref.search import STRATEGIES

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "golden_schema.md"


def golden_tolerance(case: dict, key: str):
    """How far a float output of a golden case may move on another machine: an absolute tolerance.

    - every output: what the conformance checker allows another implementation
      (:func:`dba_ref.conformance.output_rounding`, the package's one rule):
      losses, gradients and weights after a step within ``SAFETY · n_ops · ε``
      of the array's magnitude, Gram entries of ``‖g_i‖ ‖g_j‖``, T, Q and
      metric values within the bounds of spec §7.1;
    - decision margins, gaps already divided by a value's scale: the tolerance
      of the values compared, over that scale, ``(2 + |m|)`` times (both
      values of the gap, and the scale's own rounding).
    """
    if not key.endswith("/margins"):
        return output_rounding(case, key)[1]
    sizes, B, dtype = case["sizes"], case["X"].shape[0], str(case["dtype"])
    _, metric, strategy, layer, _ = key.split("/")
    layer = int(layer[1:])
    margins = np.abs(case[key])
    if strategy != "greedy":
        return rounding_tolerance(1.0 + margins, gram_ops(sizes, layer) + search_ops(B), dtype)
    K = np.asarray(case[f"gram{layer}"], np.float64)
    prefix = key.rsplit("/", 1)[0]
    removed = case[f"{prefix}/removed"]
    value_tol, values_tol = (output_rounding(case, f"{prefix}/{field}")[1] for field in ("value", "values"))
    path = np.concatenate([[value_scale(metric, np.trace(K), K.sum(), B)], path_value_scales(K, metric, removed)])
    t = np.arange(len(margins))
    scale = np.minimum(path[t], path[np.minimum(t + 1, len(path) - 1)])      # the subsets before and after step t
    gap = values_tol[np.minimum(t, len(values_tol) - 1)] if len(values_tol) else np.full(len(margins), value_tol)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, (2.0 + margins) * gap / scale, 0.0)


@pytest.fixture(scope="module")
def golden():
    return load_golden()


def test_regenerated_cases_equal_the_committed_ones(tmp_path, golden):
    write_golden(tmp_path)
    fresh = load_golden(tmp_path)
    for name, committed in golden.items():
        assert sorted(fresh[name]) == sorted(committed), f"{name}: the keys changed"
        for key, ref in committed.items():
            new = fresh[name][key]
            assert new.dtype == ref.dtype and new.shape == ref.shape, f"{name}/{key}: dtype or shape changed"
            if np.issubdtype(ref.dtype, np.floating) and not is_input(key):
                assert_within(new, ref, golden_tolerance(committed, key), f"{name}/{key}",
                              "its rounding on another machine (golden_tolerance)")
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
