"""Conformance for what an implementation implements, over whole DBA trajectories, from the CLI and from pytest
(issue 19).

The implementation under test is written here afresh, as a user would write theirs: a PyTorch DBA step that
implements only the ``mean_variance`` metric and the greedy search, on an ``nn.Sequential``, with per-sample
gradients from ``torch.func``, the Gram matrix ``G Gᵀ`` in float64 and every candidate's metric recomputed from
its subset (no running sums). Its bugs are switches: a Gram entry nudged, a removal made the other way, ties
broken the other way, Adam without its bias correction.
"""
import json
import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")
import torch.nn.functional as F                                         # noqa: E402
from torch.func import functional_call, grad, vmap                      # noqa: E402

from dba_ref import MLP, dba_step                                         # noqa: E402
from dba_ref.agreement import AMBIGUITY, network_ops, rounding_tolerance  # noqa: E402
from dba_ref.cli import main                                              # noqa: E402
from dba_ref.conformance import (CASE_NAMES, Declaration, assert_step_conforms, check_results, check_step,  # noqa: E402
                                 format_report, load_golden, load_npz, pad_rows, parametrize_with_cases,
                                 reference_results, step_inputs, trajectory_key)
from dba_ref.conformance.cases import base_optimizer, model_from_inputs  # noqa: E402
from dba_ref.conformance.trajectory import reference_trajectory  # noqa: E402
from dba_ref.frameworks.torch_adapter import sequential_step              # noqa: E402

#: What the implementation under test declares: mean_variance, greedy, DBA(SGD), 20-step trajectories.
DECLARED = Declaration(metrics="mean_variance", strategies="greedy", bases="sgd", steps=20)
DECLARED_FLAGS = ["--metric", "mean_variance", "--strategy", "greedy", "--base", "sgd", "--steps", "20"]


class TorchDBA:
    """A DBA(base) step for mean_variance / greedy on an ``nn.Sequential``: the "other implementation".

    ``nudge``: added to K[0, 1] and K[1, 0] of every layer. ``other_way``: ``(step, layer)`` at which the first
    removal takes the second-best candidate. ``stop_early``: ``(step, layer)`` at which the search stops one
    removal before the spec's greedy does. ``ties``: ``"first"`` (the lowest index, the spec's rule) or ``"last"``.
    """

    def __init__(self, nudge=0.0, other_way=None, stop_early=None, ties="first"):
        self.nudge, self.other_way, self.stop_early, self.ties = nudge, other_way, stop_early, ties

    def per_sample(self, net, X, y):
        """Per-layer ``(gW (B, out, in), gb (B, out))`` by vmap(grad), and the per-sample losses."""
        params = {name: p.detach() for name, p in net.named_parameters()}
        loss = lambda p, x, t: F.cross_entropy(functional_call(net, p, (x[None],)), t[None])   # noqa: E731
        grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, X, y)
        names = [name for name, module in net.named_children() if isinstance(module, torch.nn.Linear)]
        with torch.no_grad():
            losses = F.cross_entropy(net(X), y, reduction="none")
        return [(grads[f"{n}.weight"], grads[f"{n}.bias"]) for n in names], losses

    def gram(self, gW, gb):
        G = torch.cat([gW.flatten(1), gb], 1).double()
        K = G @ G.T
        K[0, 1] += self.nudge
        K[1, 0] += self.nudge
        return K

    @staticmethod
    def mean_variance(K, S):
        sub = K[S][:, S]
        T, Q, k = float(sub.trace()), float(sub.sum()), len(S)
        return T / Q - 1 / k if Q > 1e-12 * k * T else math.inf

    def greedy(self, K, min_size, other_way=False):
        """Backward elimination; returns (kept, removed, values)."""
        keep, removed, values = list(range(K.shape[0])), [], []
        current = self.mean_variance(K, keep)
        while len(keep) > min_size:
            cand = [self.mean_variance(K, [j for j in keep if j != i]) for i in keep]
            order = sorted(range(len(keep)), key=lambda i: (cand[i], i if self.ties == "first" else -i))
            best = order[1] if other_way and not removed else order[0]
            if not cand[best] < current:
                break
            current = cand[best]
            removed.append(keep.pop(best))
            values.append(current)
        return keep, removed, values

    def step(self, net, opt, X, y, hp):
        """The DBA step (the torch adapter's ``dba_step``): per layer the mean over its selection, then opt.step()."""
        opt.t = getattr(opt, "t", 0) + 1
        grads, _ = self.per_sample(net, X, y)
        linears = [module for module in net if isinstance(module, torch.nn.Linear)]
        selections = []
        for l, (linear, (gW, gb)) in enumerate(zip(linears, grads), 1):
            keep, removed, _ = self.greedy(self.gram(gW, gb), hp["min_size"], (opt.t, l) == self.other_way)
            if (opt.t, l) == self.stop_early:
                keep, removed = sorted(keep + removed[-1:]), removed[:-1]
            linear.weight.grad, linear.bias.grad = gW[keep].mean(0), gb[keep].mean(0)
            selections.append((keep, removed))
        opt.step()
        return selections

    def results(self, inputs):
        """One exported case's outputs for ``dba-ref conformance check``: the declared one-step keys and the
        trajectories, written as a user's script would."""
        step = sequential_step(self.step)
        weights = [(inputs[f"W{l}"], inputs[f"b{l}"]) for l in range(1, len(inputs["sizes"]))]
        net = MLP.from_arrays([a for pair in weights for a in pair], str(inputs["activation"])).to_torch()
        grads, losses = self.per_sample(net, torch.as_tensor(inputs["X"]), torch.as_tensor(inputs["y"]))
        out = {"losses": losses.numpy()}
        for l, (gW, gb) in enumerate(grads, 1):
            K = self.gram(gW, gb)
            keep, removed, values = self.greedy(K, int(inputs["min_size"]))
            prefix = f"sel/mean_variance/greedy/L{l}"
            out.update({f"grad_W{l}": gW.numpy(), f"grad_b{l}": gb.numpy(), f"gram{l}": K.numpy(),
                        f"full/L{l}/T": K.trace().item(), f"full/L{l}/Q": K.sum().item(),
                        f"full/L{l}/mean_variance": self.mean_variance(K, list(range(K.shape[0]))),
                        f"{prefix}/indices": keep, f"{prefix}/removed": removed, f"{prefix}/values": values,
                        f"{prefix}/value": self.mean_variance(K, keep)})
        hyperparams = {"activation": str(inputs["activation"]), "min_size": int(inputs["min_size"]), "base": "sgd",
                       "learning_rate": float(inputs["sgd_learning_rate"])}
        state, rows = None, []
        for X, y in zip(inputs["step_X"], inputs["step_y"]):
            selections, weights, state = step(weights, X, y, hyperparams, state)
            rows.append((selections, weights))
        B = inputs["X"].shape[0]
        for l in range(1, len(weights) + 1):
            key = lambda name: trajectory_key("sgd", "mean_variance", "greedy", name)     # noqa: E731
            out[key(f"L{l}/indices")] = pad_rows([sels[l - 1][0] for sels, _ in rows], B)
            out[key(f"L{l}/removed")] = pad_rows([sels[l - 1][1] for sels, _ in rows], B)
            out[key(f"W{l}")] = np.stack([w[l - 1][0] for _, w in rows])
            out[key(f"b{l}")] = np.stack([w[l - 1][1] for _, w in rows])
        return {k: np.asarray(v) for k, v in out.items()}


class AdamWithoutBiasCorrection(torch.optim.Optimizer):
    """Adam with ``m``, ``v`` used as they are: the bug (``m̂ = m/(1 − β1^t)``, ``v̂ = v/(1 − β2^t)`` left out)."""

    def __init__(self, params, lr, betas, eps):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                m = self.state[p].setdefault("m", torch.zeros_like(p))
                v = self.state[p].setdefault("v", torch.zeros_like(p))
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                p.add_(-group["lr"] * m / (v.sqrt() + group["eps"]))


@pytest.fixture(scope="module")
def golden():
    return load_golden()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    directory = tmp_path_factory.mktemp("declared")
    assert main(["conformance", "export", str(directory), *DECLARED_FLAGS]) == 0
    return directory


@pytest.fixture(scope="module")
def torch_results(exported):
    """The independent implementation run on the exported cases, saved as a user saves RESULTS.npz."""
    results = {}
    for name in CASE_NAMES:
        outputs = TorchDBA().results(load_npz(exported / f"{name}.npz"))
        results.update({f"{name}/{key}": value for key, value in outputs.items()})
    path = exported.parent / "torch_results.npz"
    np.savez(path, **results)
    return path


def check_output(capsys, *argv) -> tuple[int, str]:
    status = main(["conformance", "check", *map(str, argv)])
    return status, capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------------
# A correct partial implementation passes, from the CLI and from pytest
# ---------------------------------------------------------------------------------------------------------------
def test_export_writes_only_what_is_declared(exported, golden):
    assert sorted(p.stem for p in exported.glob("*.npz")) == sorted(CASE_NAMES)
    assert Declaration.read(exported) == DECLARED
    assert json.loads((exported / "DECLARATION.json").read_text())["steps"] == 20
    small = load_npz(exported / "small.npz")
    assert small["metrics"].tolist() == ["mean_variance"] and small["strategies"].tolist() == ["greedy"]
    assert small["bases"].tolist() == ["sgd"] and int(small["steps"]) == 20
    assert small["step_X"].shape == (20, 8, 5) and small["step_y"].shape == (20, 8)
    np.testing.assert_array_equal(small["step_X"][0], golden["small"]["X"])
    assert not {"adam_learning_rate", "momentum_learning_rate", "step_metric"} & set(small)
    listing = (exported / "OUTPUTS.txt").read_text()
    assert "small/dba_sgd/mean_variance/greedy/W2  float64  (20, 3, 7)" in listing
    assert "small/dba_sgd/mean_variance/greedy/L1/indices  int64  (20, 8)" in listing
    assert "small/sel/mean_variance/greedy/L1/removed  int64  1-D" in listing
    assert not any(word in listing for word in ("/variance/", "normalized", "prefix", "exhaustive", "dba_adam", "dba_momentum"))


def test_an_independent_torch_dba_sgd_passes_from_the_cli(capsys, exported, torch_results):
    status, out = check_output(capsys, torch_results, "--inputs", exported)
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("declared      " + " ".join(DECLARED_FLAGS)) and "DECLARATION.json" in lines[0]
    assert any(line.startswith("DBA steps     20 per trajectory from each case's weights, DBA(sgd) × mean_variance × "
                               "greedy: 8 trajectories, 420 layer steps") for line in lines[:8])
    assert any(line.startswith("not declared  metrics variance, normalized_variance; strategies prefix") for line in lines)
    table = {(line.split()[0], line.split()[1]): line for line in lines if line.split()[:1] and
             line.split()[0] in ("step_indices", "step_removed", "dba_sgd", "indices", "removed")}
    assert "420" in table[("step_removed", "float64")] or "380" in table[("step_removed", "float64")]
    assert all(" pass" in line for line in table.values())
    assert "missing" not in out and "unexpected" not in out and "ambiguous" not in out
    assert "DBA trajectories: 8 of 8 agree at every step judged" in out
    assert lines[-1] == "conformance: PASS" and len(lines) <= 40          # one screen


@parametrize_with_cases(sequential_step(TorchDBA().step), DECLARED)
def test_an_independent_torch_dba_sgd_passes_from_pytest(step, check):
    report = check(step)
    assert report.passed and report.first_divergence is None
    (trajectory,) = report.trajectories
    assert trajectory.steps == 20 and trajectory.trajectory == "DBA(sgd) mean_variance/greedy"
    weights = [key for key in report.errors if "/dba_sgd/" in key]
    assert len(weights) == 20 * 2 * report.coverage.layers[trajectory.case]
    assert {row.quantity for row in report.rows.values()} == {"step_indices", "step_removed", "dba_sgd"}


def test_every_base_optimizer_passes_over_20_steps():
    report = check_step(sequential_step(TorchDBA().step),
                        DECLARED.replace(bases=["sgd", "momentum", "adam"], cases=["small", "float32"]))
    assert report.passed, format_report(report)
    assert len(report.trajectories) == 6 and all(t.steps == 20 for t in report.trajectories)


# ---------------------------------------------------------------------------------------------------------------
# The same implementation with one bug fails, naming the first step, layer and sample where it diverges
# ---------------------------------------------------------------------------------------------------------------
def test_a_nudged_gram_entry_fails_at_the_first_decision_it_changes():
    """K[0, 1] += 1e-3 changes no decision of most cases (their margins are larger); in ``deep`` it changes one at
    step 18, a clear decision (margin 4.8e-7, far above the near-tie threshold 1e-9): a failure named there."""
    buggy = sequential_step(TorchDBA(nudge=1e-3).step)
    report = check_step(buggy, DECLARED.replace(cases=["deep"]))
    first = report.first_divergence
    assert not report.passed and (first.case, first.step, first.layer, first.sample) == ("deep", 18, 1, 0)
    assert first.margin > 100 * AMBIGUITY["float64"]
    assert (f"deep DBA(sgd) mean_variance/greedy: step 18, layer 1, sample 0 (reference decision margin "
            f"{first.margin:.3g}): removal step 4: reference removes 0, got 6") in format_report(report)
    with pytest.raises(AssertionError, match="step 18, layer 1, sample 0"):
        assert_step_conforms(buggy, DECLARED.replace(cases=["deep"]))
    assert check_step(buggy, DECLARED.replace(cases=["small", "act_tanh"])).passed    # its decisions were clearer


def test_a_removal_made_the_other_way_at_a_clear_decision_fails(golden):
    declared = DECLARED.replace(cases=["small"])
    report = check_step(sequential_step(TorchDBA(other_way=(5, 1)).step), declared)
    first = report.first_divergence
    assert not report.passed and (first.step, first.layer) == (5, 1)
    inputs = {**golden["small"], **step_inputs("small", golden["small"], 20)}
    reference = reference_trajectory(inputs, "sgd", "mean_variance", "greedy", 5)
    ref_removed = reference[trajectory_key("sgd", "mean_variance", "greedy", "L1/removed")][4]
    assert first.sample == ref_removed[0] and first.margin > 1e-3
    assert f"removal step 1: reference removes {ref_removed[0]}, got" in first.detail
    assert first.key == "dba_sgd/mean_variance/greedy/L1/removed"


def test_a_branch_at_a_near_tie_is_ambiguous_and_the_trajectory_is_resynchronised(monkeypatch, golden):
    """With every decision counted a near-tie, a search that stops one removal early at step 5 is ambiguous: the
    reference takes the other's (larger) subset there, and every later step is still compared, and agrees."""
    buggy = TorchDBA(stop_early=(5, 1))
    declared = DECLARED.replace(cases=["small"])
    assert check_step(sequential_step(buggy.step), declared).first_divergence.step == 5   # a clear decision: FAIL
    monkeypatch.setitem(AMBIGUITY, "float64", 1e300)
    report = check_step(sequential_step(buggy.step), declared)
    assert report.passed, format_report(report)
    (trajectory,) = report.trajectories
    assert trajectory.resynchronised == [(5, 1)] and trajectory.steps == 20
    assert len([k for k in report.errors if "/dba_sgd/" in k]) == 20 * 4          # every step's weights compared
    assert "ambiguous: near-ties, not failures (spec §5) (2):" in format_report(report)    # its set and its order
    # without the re-synchronisation the weights would differ far beyond rounding from step 5 on
    inputs = {**golden["small"], **step_inputs("small", golden["small"], 5)}
    free = reference_trajectory(inputs, "sgd", "mean_variance", "greedy", 5)
    step, state = sequential_step(TorchDBA(stop_early=(5, 1)).step), None
    weights = [(inputs["W1"], inputs["b1"]), (inputs["W2"], inputs["b2"])]
    hp = {"activation": "relu", "min_size": 2, "base": "sgd", "learning_rate": 0.1}
    for t in range(5):
        _, weights, state = step(weights, inputs["step_X"][t], inputs["step_y"][t], hp, state)
    gap = np.abs(weights[0][0] - free[trajectory_key("sgd", "mean_variance", "greedy", "W1")][4]).max()
    assert gap > 1e6 * rounding_tolerance(np.abs(weights[0][0]).max(), network_ops([5, 7, 3]) * 5)


def test_exact_ties_broken_the_other_way_are_ambiguous_not_failures(monkeypatch, golden):
    """Two identical samples tie exactly at every decision between them; breaking ties towards the last index is
    a near-tie (margin 0), not a failure."""
    import dba_ref.conformance.cases as cases

    def with_twins(name, inputs, steps):
        out = step_inputs(name, inputs, steps)
        out["step_X"][:, 1], out["step_y"][:, 1] = out["step_X"][:, 0], out["step_y"][:, 0]
        return out

    monkeypatch.setattr(cases, "step_inputs", with_twins)
    declared = DECLARED.replace(cases=["small", "deep"], steps=10)
    report = check_step(sequential_step(TorchDBA(ties="last").step), declared)
    assert report.passed, format_report(report)
    assert report.listed("ambiguous") and all("reference margin 0" in a for a in report.listed("ambiguous"))


def test_adam_without_its_bias_correction_fails_at_the_first_step():
    declared = DECLARED.replace(bases=["adam"], cases=["small", "act_tanh"])
    buggy = sequential_step(TorchDBA().step, optimizer=lambda params, hp: AdamWithoutBiasCorrection(
        params, hp["learning_rate"], (hp["beta1"], hp["beta2"]), hp["eps"]))
    report = check_step(buggy, declared)
    first = report.first_divergence
    assert not report.passed and (first.case, first.step, first.layer) == ("small", 1, 1)
    assert first.key == "dba_adam/mean_variance/greedy/W1" and "the rounding of 1 step" in first.detail
    assert len(report.divergences) == 2                           # each case's trajectory diverges
    assert check_step(sequential_step(TorchDBA().step), declared).passed      # torch.optim.Adam: the control


# ---------------------------------------------------------------------------------------------------------------
# Exactly the declaration: nothing else missing, nothing else listed
# ---------------------------------------------------------------------------------------------------------------
def test_case_lists_nothing_of_other_cases(capsys, exported, torch_results):
    status, out = check_output(capsys, torch_results, "--inputs", exported, "--case", "small")
    assert status == 0, out
    assert not [name for name in CASE_NAMES if name != "small" and name in out]
    assert re.search(r"results       \d+ keys: \d+ declared, \d+ outside the declaration \(not compared\), 0 unknown",
                     out)


def test_nothing_outside_the_declaration_is_missing_or_unexpected(tmp_path, capsys, exported, torch_results):
    results = load_npz(torch_results)
    results["small/sel/variance/prefix/L1/indices"] = np.arange(3)           # a key of an undeclared metric
    results["deep/dba_adam/mean_variance/greedy/W1"] = np.zeros((20, 9, 6))  # of an undeclared base
    results["small/my_debug_array"] = np.zeros(3)                            # not a key of any schema
    path = tmp_path / "more.npz"
    np.savez(path, **results)
    status, out = check_output(capsys, path, "--inputs", exported)
    assert status == 0, out
    assert "variance/prefix" not in out and "dba_adam" not in out and "missing" not in out
    assert "unexpected keys (ignored) (1):\n  small/my_debug_array" in out
    assert "2 outside the declaration (not compared), 1 unknown" in out
    # without a declaration everything is asked for, and the report says how to declare
    status, out = check_output(capsys, torch_results)
    assert status == 1 and "declare what you implement: --metric, --strategy, --base" in out


def test_declarations_are_checked_with_messages():
    with pytest.raises(ValueError, match="unknown metric 'mean_var' \\(--metric\\); choose from variance"):
        Declaration(metrics=["mean_var"])
    with pytest.raises(ValueError, match="names no bases \\(--base\\)"):
        Declaration(bases=[])
    for steps in (0, 1001, 2.5, True):
        with pytest.raises(ValueError, match="steps \\(--steps\\) must be a whole number from 1 to 1000"):
            Declaration(steps=steps)
    assert Declaration(steps=np.int64(3)).steps == 3
    assert Declaration(metrics="variance").metrics == ("variance",)
    assert Declaration().flags() == "" and DECLARED.flags() == " ".join(DECLARED_FLAGS)


def test_a_malformed_declaration_or_steps_is_a_one_line_error(tmp_path, capsys, torch_results):
    (tmp_path / "DECLARATION.json").write_text('{"metrics": ["nope"]}')
    assert main(["conformance", "check", str(torch_results), "--inputs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a declaration written by `dba-ref conformance export`" in err and len(err.splitlines()) == 1
    assert main(["conformance", "export", str(tmp_path / "x"), "--steps", "0"]) == 2
    assert "--steps) must be a whole number from 1 to 1000, got 0" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# The user's function and the user's file are untrusted: their errors are reported, never a crash
# ---------------------------------------------------------------------------------------------------------------
def _fine(weights, X, y, hp, state):
    step = dba_step(MLP.from_arrays([a for p in weights for a in p], hp["activation"]), X, y,
                    base_optimizer({"sgd_learning_rate": np.array(hp["learning_rate"])}, "sgd"),
                    hp["metric"], hp["strategy"], hp["min_size"], hp["tol"], state=state)
    return [(s.indices, s.trace.removed) for s in step.selections], step.params, step.state


def _broken(how):
    def step(weights, X, y, hp, state):
        selections, new, state = _fine(weights, X, y, hp, state)
        if how == "raises":
            raise ValueError("my bug")
        if how == "none":
            return None
        if how == "layers":
            return selections[:1], new, state
        if how == "transposed":
            return selections, [(W.T, b) for W, b in new], state
        if how == "integer weights":
            return selections, [(W.astype(np.int64), b) for W, b in new], state
        if how == "float indices":
            return [(i.astype(float), r) for i, r in selections], new, state
        if how == "out of range":
            return [(i + 100, r) for i, r in selections], new, state
        if how == "no removal order":
            return [(i, None) for i, _ in selections], new, state
        if how == "raises at step 3":
            step.calls = getattr(step, "calls", 0) + 1
            if step.calls == 3:
                raise RuntimeError("out of memory")
        return selections, new, state
    return step


@pytest.mark.parametrize("how, message", [
    ("raises", "the step function raised ValueError: my bug (at "),
    ("none", "returned NoneType, expected (selections, new_weights, new_state)"),
    ("layers", "selections is 1 entries, expected a list of 2 (one per layer)"),
    ("transposed", "W1 has shape (5, 7), expected (7, 5) (PyTorch's (out, in) layout)"),
    ("integer weights", "W1 has dtype int64, expected floating point"),
    ("float indices", "indices of layer 1 has dtype float64, expected integers"),
    ("out of range", "indices of layer 1 is [10"),
    ("no removal order", "layer 1 gives no removed, but step_removed is declared"),
])
def test_errors_in_the_step_function_are_reported_with_the_case(how, message):
    report = check_step(_broken(how), DECLARED.replace(cases=["small"], steps=3))
    assert not report.passed
    (error,) = report.implementation_errors
    assert error.startswith("small DBA(sgd) mean_variance/greedy, step 1: ") and message in error
    assert not report.listed("missing")
    assert "implementation errors (1):" in format_report(report)


def test_a_step_function_that_fails_later_is_judged_up_to_there():
    report = check_step(_broken("raises at step 3"), DECLARED.replace(cases=["small"], steps=5))
    assert report.implementation_errors == ["small DBA(sgd) mean_variance/greedy, step 3: the step function raised "
                                            f"RuntimeError: out of memory (at {__file__}:{_line_of('out of memory')})"]
    assert report.trajectories[0].steps == 2 and not report.listed("missing") and not report.listed("failed")


def _line_of(text: str) -> int:
    return next(i for i, line in enumerate(open(__file__), 1) if f'raise RuntimeError("{text}")' in line)


def test_a_results_file_is_untrusted_input(tmp_path, capsys, exported, torch_results):
    results = load_npz(torch_results)
    key = lambda case, name: f"{case}/" + trajectory_key("sgd", "mean_variance", "greedy", name)    # noqa: E731
    results[key("small", "L1/indices")][3, 0] = -1                        # an index after the padding
    results[key("deep", "L2/removed")] = results[key("deep", "L2/removed")] + 0.5
    results[key("act_tanh", "L1/indices")][0, 0] = 99
    results[key("float32", "W2")] = np.full_like(results[key("float32", "W2")], np.nan)
    results[key("act_sigmoid", "b1")] = np.array(["a"] * 20)
    results[key("act_identity", "W3")] = results[key("act_identity", "W3")][:5]
    path = tmp_path / "bad.npz"
    np.savez(path, **results)
    status, out = check_output(capsys, path, "--inputs", exported, "--max-listed", "50")
    assert status == 1 and "Traceback" not in out
    assert f"{key('small', 'L1/indices')} row 3 (step 4) has an index after the padding -1" in out
    assert f"{key('deep', 'L2/removed')} holds entries that are not sample indices 0..9 or the padding -1" in out
    assert f"{key('act_tanh', 'L1/indices')} holds entries that are not sample indices 0..8" in out
    assert f"{key('float32', 'W2')} step 1: W2[0, 0] = nan" in out
    assert f"{key('act_sigmoid', 'b1')} has dtype <U1, expected real numbers" in out
    assert (f"{key('act_identity', 'W3')} has shape (5, 3, 6), expected (20, 3, 6): a trajectory of 5 steps where 20 "
            "are declared (--steps)") in out
    objects = tmp_path / "objects.npz"
    np.savez(objects, **{key("small", "W1"): np.array([{"a": 1}], dtype=object)})
    assert main(["conformance", "check", str(objects)]) == 2
    err = capsys.readouterr().err
    assert "is not a readable .npz file of plain arrays" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------------------------------------------
# The reference's side
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("base", ["sgd", "momentum", "adam"])
def test_the_reference_trajectory_is_dba_step_chained(golden, base):
    inputs = {**golden["act_tanh"], **step_inputs("act_tanh", golden["act_tanh"], 6)}
    trajectory = reference_trajectory(inputs, base, "variance", "prefix", 6)
    model, opt, state = model_from_inputs(inputs), base_optimizer(inputs, base), None
    for t in range(6):
        step = dba_step(model, inputs["step_X"][t], inputs["step_y"][t], opt, "variance", "prefix", 2, 0.0,
                        state=state)
        model, state = step.model, step.state
        for l, ((W, b), sel) in enumerate(zip(step.params, step.selections), 1):
            key = lambda name: trajectory_key(base, "variance", "prefix", name)         # noqa: E731
            assert np.array_equal(trajectory[key(f"W{l}")][t], W) and np.array_equal(trajectory[key(f"b{l}")][t], b)
            np.testing.assert_array_equal(trajectory[key(f"L{l}/indices")][t][:sel.size], sel.indices)


def test_the_first_step_is_the_golden_dba_step(golden):
    for name in ("small", "float32"):
        inputs = {**golden[name], **step_inputs(name, golden[name], 1)}
        for base in ("sgd", "adam"):
            trajectory = reference_trajectory(inputs, base, "mean_variance", "greedy", 1)
            for l in range(1, len(inputs["sizes"])):
                ref = golden[name][f"dba_{base}/W{l}"]
                got = trajectory[trajectory_key(base, "mean_variance", "greedy", f"W{l}")][0]
                tol = rounding_tolerance(np.abs(ref).max(), network_ops(inputs["sizes"]) + 10, str(inputs["dtype"]))
                assert np.abs(got - ref).max() <= tol


def test_reference_results_pass_for_every_declaration_at_one_step(golden):
    results = reference_results(Declaration(), golden)
    report = check_results(results, golden)
    assert report.passed and not report.unexpected and report.coverage.outside == 0
    assert len(report.trajectories) == 8 * 36


# ---------------------------------------------------------------------------------------------------------------
# The adapters
# ---------------------------------------------------------------------------------------------------------------
def test_the_torch_adapter_checks_a_float32_model_in_float64():
    declared = DECLARED.replace(cases=["float32"], steps=5)
    seen = []

    def watching(net, opt, X, y, hp):
        seen.append((next(net.parameters()).dtype, X.dtype))
        return TorchDBA().step(net, opt, X, y, hp)

    report = check_step(sequential_step(watching, dtype="float64"), declared)
    assert report.passed, format_report(report)
    assert set(seen) == {(torch.float64, torch.float64)}


def test_the_jax_adapter_passes_the_jax_version():
    pytest.importorskip("jax", reason="JAX is not installed (pip install -e '.[jax]')")
    from dba_ref.frameworks import jax_dba
    from dba_ref.frameworks.jax_adapter import jax_step

    bases = {"sgd": lambda hp: jax_dba.sgd(hp["learning_rate"]),
             "adam": lambda hp: jax_dba.adam(hp["learning_rate"], hp["beta1"], hp["beta2"], hp["eps"])}

    def step(params, state, X, y, hp):
        params, state, selections = jax_dba.dba_step(params, state, X, y, hp["activation"], bases[hp["base"]](hp),
                                                     hp["metric"], hp["strategy"], hp["min_size"], hp["tol"])
        return selections, params, state

    report = check_step(jax_step(step, init_state=lambda params, hp: bases[hp["base"]](hp).init(params)),
                        Declaration(cases="small", strategies="greedy", bases=["sgd", "adam"], metrics="mean_variance",
                                    steps=3))
    assert report.passed, format_report(report)
    assert len(report.trajectories) == 2
    import jax

    jax.config.update("jax_enable_x64", False)          # without JAX's float64 switch a float64 case is refused
    try:
        refused = check_step(jax_step(step), Declaration(cases="small", strategies="greedy", bases="sgd",
                                                         metrics="mean_variance", steps=1))
    finally:
        jax.config.update("jax_enable_x64", True)
    assert "raised RuntimeError: JAX computes in float32 unless its float64 switch is on" in \
        refused.implementation_errors[0]
