"""The golden cases in data/golden/ (issue 4): complete, small, documented, and reproducible.

``data/golden/make_golden.py`` wrote them; here they are regenerated and compared:
strings and integers (selections, removal orders) exactly, floats to rounding
(:func:`golden_rounding`): another machine's BLAS kernel, or another thread count,
rounds the matrix products differently, so each float may move by
``SAFETY · n_ops · ε · scale`` for its own scale and operation count
(tests/conftest.py). On the machine that wrote them the regeneration is bit-identical.
"""
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import (array_scale, assert_within_rounding, gram_ops, gram_scale, greedy_margin_scales,
                      network_ops, path_value_scales, search_ops, subset_value_scales)

from dba_ref import backprop
from dba_ref.conformance import (CASES, GOLDEN_MIN_MARGIN, full_stat_scale, golden_dir, is_input, load_golden,
                                 min_margin, model_from_inputs, output_keys, path_subsets, quantity_of, write_golden)
from dba_ref.metrics import METRIC_NAMES
from dba_ref.model import ACTIVATIONS
from dba_ref.search import STRATEGIES

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "golden_schema.md"


def golden_rounding(case: dict, key: str):
    """``(scale, n_ops)`` of a float output of a golden case: how it rounds (tests/conftest.py).

    - losses, gradients and the weights after a step: the array's magnitude, after
      a forward and a backward pass (:func:`network_ops`; a step adds the mean over
      ≤ B samples);
    - Gram entries: ``sqrt(K_ii K_jj)`` after :func:`gram_ops`;
    - statistics and metric values: T, ``B·T`` for Q, a value's rounding scale
      (greedy values: :func:`path_value_scales`), after the Gram's operations and
      the search's (:func:`search_ops`);
    - decision margins, gaps already divided by a value's scale: ``1 + |m|``
      (greedy: :func:`greedy_margin_scales`), after as many operations.
    """
    sizes, B = case["sizes"], case["X"].shape[0]
    q = quantity_of(key)
    if q in ("losses", "grad"):
        return array_scale(case[key]), network_ops(sizes)
    if q in ("dba_sgd", "dba_adam"):
        return array_scale(case[key]), network_ops(sizes) + B
    layer = int(re.search(r"\d+$", key).group() if q == "gram" else re.search(r"/L(\d+)", key).group(1))
    n_ops = gram_ops(sizes, layer)
    K = np.asarray(case[f"gram{layer}"], np.float64)
    if q == "gram":
        A, D = list(backprop(model_from_inputs(case), case["X"], case["y"]).layers)[layer - 1]
        return gram_scale(A, D), n_ops
    n_ops += search_ops(B)
    if q == "full_stats":
        return full_stat_scale(K, key.rsplit("/", 1)[1]), n_ops
    _, metric, strategy, _, field = key.split("/")
    prefix = key.rsplit("/", 1)[0]
    removed = case[f"{prefix}/removed"]
    if field == "margins":
        if strategy == "greedy":
            return greedy_margin_scales(metric, K, removed, case[key]), n_ops
        return 1.0 + np.abs(case[key]), n_ops
    if strategy == "greedy":
        scales = np.concatenate([[full_stat_scale(K, metric)], path_value_scales(metric, K, removed)])
        return (scales[-1] if field == "value" else scales[1:]), n_ops
    if field == "value":
        return subset_value_scales(metric, K, [case[f"{prefix}/indices"]])[0], n_ops
    return subset_value_scales(metric, K, path_subsets(B, removed)), n_ops


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
                scale, n_ops = golden_rounding(committed, key)
                assert_within_rounding(new, ref, scale, n_ops, dtype=str(committed["dtype"]), what=f"{name}/{key}")
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
