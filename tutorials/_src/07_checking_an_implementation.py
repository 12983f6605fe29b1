# %% [markdown]
# # 7 · Checking another implementation
#
# `dba_ref` is a reference: you write DBA in PyTorch, JAX or C++ for your own work, and check it
# against this one. Comparing two implementations number by number is less simple than it sounds:
# floating-point sums in a different order differ in the last digits, metric values are differences
# that can cancel to zero, a search can meet two candidates so close that either choice is right, and
# your implementation is rarely all of DBA (one metric, one search, one base optimizer). Nor is one step
# where implementations go wrong: optimizer state, bias corrections and a batch that changes from step
# to step show up over many. The one idea of this notebook: **an implementation conforms when every
# quantity it declares agrees within what the rounding of that quantity allows, and every selection
# decision agrees except at a near-tie, at every step of a DBA trajectory** — and then a wrong term
# shows up exactly at the quantities it feeds, at the first step it touches.
#
# The checker is `dba-ref conformance` (`dba_ref/conformance/`, `docs/verification.md`). Two
# implementations play "yours". For the check from files, the PyTorch version of the package,
# `dba_ref/frameworks/torch_dba.py`, written the framework way (per-sample gradients by
# `torch.func.vmap(grad(...))`, the Gram matrix as $GG^\top$ of the materialised gradients, the searches
# rewritten on tensors), which shares with the reference only the constants of the definition. For the
# check from a test suite, a DBA step of twenty lines written below. Then we break both, on purpose.

# %%
import os
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from unittest import mock

import matplotlib.pyplot as plt
import numpy as np

from dba_ref import MLP, backprop, gram, select
from dba_ref.agreement import AMBIGUITY, SAFETY, decision_margins, machine_epsilon
from dba_ref.cli import main as dba_ref_main
from dba_ref.conformance import (CASES, EXACT_QUANTITIES, Declaration, check_results, check_step, load_golden,
                                 load_npz, output_rounding)

try:
    import torch

    from dba_ref.frameworks import torch_dba
    from dba_ref.frameworks.torch_adapter import sequential_step
    print(f"PyTorch {torch.__version__}: the PyTorch implementations will be checked")
except ImportError:
    torch = torch_dba = None
    print("PyTorch is not installed: the cells that need it print a message and skip.\n"
          "Install it with  pip install -e \".[torch]\"  (see tutorials/README.md) to run them.")


def needs_torch() -> bool:
    """True when PyTorch is missing (and say so): the calling cell then skips its PyTorch part."""
    if torch_dba is None:
        print("skipped: this cell needs PyTorch")
    return torch_dba is None


def dba_ref_command(*args: str) -> int:
    """Run `dba-ref ARGS` (in this process, as the shell command would) and show its exit status."""
    print("$ dba-ref", " ".join(args))
    status = dba_ref_main(list(args))
    print(f"[exit status {status}]")
    return status


def said(expression: str, fmt: str = "") -> str:
    """A result the text quotes: ``expression`` evaluated here and formatted, or a note where the PyTorch
    cells that compute it were skipped."""
    if torch_dba is None:
        return "(needs PyTorch)"
    return format(eval(expression, globals()), fmt)


reports = {}          # run -> its check as a Python object (a ConformanceReport), for the figures and the text
golden = load_golden()

# %% [markdown]
# ## What is compared, and how
#
# A **golden case** is a small fixed problem — an MLP with its weights, a batch, a `min_size` — with
# everything the reference computes from it: per-sample losses $\ell_i$, per-sample gradients, the
# Gram matrix $K_l$ of every layer, the full-batch statistics $T, Q$ and metrics, and the selection and
# its trace for every metric × strategy × layer. The {{len(CASES)}} cases cover networks of
# {{min(len(c.sizes) - 1 for c in CASES)}} to {{max(len(c.sizes) - 1 for c in CASES)}} weight layers,
# float32, `min_size` $= B - 1$ and $= B$, and the tanh, sigmoid and identity activations. A case is also
# the start of **DBA trajectories**: $N$ consecutive DBA steps from its weights, on $N$ batches drawn from
# its seed (the first is its own batch), with SGD, momentum or Adam as the base optimizer.
#
# **Floats** are compared by the package's one rule for rounding (spec §7.1). Every floating-point
# operation rounds its result to about $\epsilon_{\text{mach}}$ ($2.2 \cdot 10^{-16}$ in float64) *of the
# numbers it works on*, so two correct implementations that compute a value by $n$ operations in a
# different order may differ by a few $n\,\epsilon_{\text{mach}}$ times the size of what it is computed
# from: its **rounding scale**. The allowance is
#
# $$|a - r| \;\le\; \text{SAFETY} \cdot n \cdot \epsilon_{\text{mach}} \cdot \text{scale},
#   \qquad \text{SAFETY} = 8,$$
#
# entry by entry, with $r$ the reference and $n$ counted from the case's shapes (a forward and a backward
# pass, the sums of the Gram matrix, ...). For an array — losses, gradients, weights — the scale is its
# magnitude; for a Gram entry $K[i,j]$ it is $\|g_i\|\,\|g_j\|$. A metric value needs more care: it is a
# difference that can cancel to 0 (`variance` $= T/k - Q/k^2$ is 0 for a single sample although $T/k$ is
# not), so its error is measured against the terms it is a difference of, $T/k$ for `variance`. For the
# ratio metrics one more factor enters. $Q = \sum_{i,j \in S} K[i,j]$ is itself a sum whose terms cancel:
# they add up to $kT$ at most in size ($|K[i,j]| \le \sqrt{K[i,i]K[j,j]}$), while $Q$ can be much smaller,
# so $Q$ is known to a relative error of about $\epsilon_{\text{mach}} \cdot kT/Q$. The factor $kT/Q \ge 1$
# is the *condition number* of $Q$. The rounding scale of a ratio metric is its leading term times it:
# $\frac{T}{Q}\cdot\frac{kT}{Q}$ for `mean_variance` $= T/Q - 1/k$, $\big(\frac{kT}{Q}\big)^2$ for
# `normalized_variance` $= kT/Q - 1$ (`dba_ref.agreement.value_scale`).
#
# `dba_ref.conformance.output_rounding(case, key)` gives the scale and the allowance of every output of a
# case. Divided one by the other, the allowance relative to the scale:

# %%
keys = ["losses", "grad_W1", "gram1", "full/L1/T", "full/L1/Q", "full/L1/mean_variance",
        "sel/mean_variance/greedy/L1/value", "sel/mean_variance/greedy/L1/values"]
allowed = {}
for key in keys:
    for case in ("small", "float32"):
        scale, tolerance = output_rounding(golden[case], key)
        allowed[key, case] = np.max(np.asarray(tolerance, float) / np.asarray(scale, float))
print("allowed |a - r| / scale, by the rule (dba_ref.conformance.output_rounding)\n")
print(f"{'key':<36} {'small (float64)':>16} {'float32':>10}")
for key in keys:
    print(f"{key:<36} {allowed[key, 'small']:16.1e} {allowed[key, 'float32']:10.1e}")
loss_ops = allowed["losses", "small"] / (SAFETY * machine_epsilon("float64"))
print(f"\nthe losses of `small`: {loss_ops:.0f} roundings (a forward pass), SAFETY = {SAFETY}, "
      f"eps = {machine_epsilon('float64'):.1e}")

# %% [markdown]
# The losses of `small` are allowed {{allowed['losses', 'small']:.1e}} of their size: $8 \cdot n \cdot
# \epsilon_{\text{mach}}$ with $n = $ {{loss_ops:.0f}} roundings. Further down the computation the counts
# grow (the Gram matrix adds its sums, the metric values the bound of the search's running sums), and in
# float32 every allowance is $\epsilon_{\text{mach}}$ of float32 larger, about $5 \cdot 10^8$ times.
# Nothing here is a fixed number typed in: a case with a wider network gets a larger $n$.
#
# **Selections** — the selected sets and removal orders (`indices`, `removed`, and for the DBA steps
# `step_indices`, `step_removed`) — are compared **exactly**, decision by decision, except where the
# reference's decision **margin** (the gap between the best and the second-best candidate, or between the
# best and the acceptance threshold, in units of their rounding scale) is at most
# {{AMBIGUITY['float64']:.0e}} ({{AMBIGUITY['float32']:.0e}} for a float32 model,
# `dba_ref.agreement.AMBIGUITY`). Such a **near-tie** may go either way in a correct implementation
# (spec §5), so it is reported as *ambiguous*, not as a failure. The golden cases hold no near-tie at
# their first step.
#
# ## Step 1 — declare what you implement, and export
#
# Say your implementation has DBA over SGD with the `mean_variance` metric and the greedy search — the
# paper's algorithm and this package's defaults — and nothing else. Declare exactly that, with
# trajectories of 20 steps:
#
# ```bash
# dba-ref conformance export cases --metric mean_variance --strategy greedy --base sgd --steps 20
# ```
#
# `export` writes the inputs of every declared case (model, weights, batch, `min_size`, the base
# optimizer's settings and the 20 batches of the trajectory), one `.npz` per case; `OUTPUTS.txt`, every
# output key to produce with its dtype and shape (`docs/golden_schema.md` explains each); and
# `DECLARATION.json`, the declaration, which `check` reads back. The notebook works in a temporary
# folder, removed at the end.

# %%
workdir = tempfile.TemporaryDirectory(prefix="dba-ref-conformance-")
notebook_dir = os.getcwd()
os.chdir(workdir.name)
sys.path.insert(0, workdir.name)          # the module my_dba.py written below is imported from here

declared_flags = ["--metric", "mean_variance", "--strategy", "greedy", "--base", "sgd", "--steps", "20"]
dba_ref_command("conformance", "export", "cases", *declared_flags)
print("\ncases/DECLARATION.json:", Path("cases/DECLARATION.json").read_text())
outputs = [line for line in Path("cases/OUTPUTS.txt").read_text().splitlines() if line.startswith("  small/")]
print("\n".join(outputs[:8] + ["  ..."] + outputs[-4:]))
declared = Declaration.read("cases")
n_declared = sum(len(declared.outputs(golden[c.name])) for c in CASES)
n_everything = sum(len(Declaration().outputs(golden[c.name])) for c in CASES)

# %% [markdown]
# The declaration asks for {{n_declared}} arrays over the {{len(CASES)}} cases, where declaring everything
# (every metric, strategy and base optimizer, one step) asks for {{n_everything}}. The trajectory keys
# `dba_sgd/mean_variance/greedy/...` are stacked over the steps: row $t-1$ holds step $t$, the selections
# padded with $-1$.
#
# ## Step 2 — run your implementation on every case
#
# The loop is the same for any implementation: read each case, compute, store every output under
# `<case>/<key>`, save one `.npz`. For the PyTorch version the "compute" is
# `torch_dba.conformance_results(inputs)`, about fifty lines worth reading as a template: it computes what
# the case file names (its `metrics`, `strategies`, `bases` and `steps`). Its per-sample gradients are
# PyTorch's own recipe,
#
# ```python
# grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)   # {name: (B, *shape)}
# ```
#
# and its Gram matrix is $K = GG^\top$ with $G = [\operatorname{vec}(\nabla W(i)), \nabla b(i)]_i$, so
# it agrees with the reference's $(\Delta\Delta^\top) \odot (AA^\top + 1)$ only if both the gradients
# and the identity are right. A trajectory is its `DBA` optimizer, stepped 20 times: step $t$ starts from
# its own weights after step $t - 1$, on the batch `step_X[t-1]`, `step_y[t-1]`.

# %%
def run_implementation(compute, folder, results_file):
    """Run ``compute(inputs) -> {key: array}`` on every case exported to ``folder``; save all to ``results_file``."""
    results = {}
    paths = sorted(Path(folder).glob("*.npz"))
    for path in paths:
        with np.load(path) as archive:
            inputs = {key: archive[key] for key in archive.files}
        results.update({f"{path.stem}/{key}": np.asarray(value) for key, value in compute(inputs).items()})
    np.savez(results_file, **results)
    print(f"wrote {len(results)} arrays for {len(paths)} cases to {results_file}")


if not needs_torch():
    run_implementation(torch_dba.conformance_results, "cases", "torch_results.npz")

# %% [markdown]
# ## Step 3 — check
#
# `dba-ref conformance check RESULTS.npz --inputs cases` reads the declaration that `export` recorded and
# judges exactly that: every declared key must be present and agree; nothing outside the declaration is
# listed as missing or unexpected. The report opens with its **coverage**, one screen of what was
# checked and what was not declared. Then one row per quantity and dtype: how many arrays were compared
# (for a trajectory, one per step), and for the array that came nearest to its allowance (the worst key)
# its error and its allowance, both relative to its rounding scale (`rel error`, `allowed`); for the
# four exact quantities, how many selections differ. Then the trajectories, and the verdict. The exit
# status is 0 on PASS and 1 otherwise, so it can gate a CI job.

# %%
if not needs_torch():
    dba_ref_command("conformance", "check", "torch_results.npz", "--inputs", "cases")
    reports["PyTorch version"] = check_results(load_npz("torch_results.npz"), golden, declared)
    trajectory_rows = reports["PyTorch version"].rows["dba_sgd", "float64"]

# %% [markdown]
# Every row passes. The coverage says what the PASS covers: the {{len(CASES)}} cases, the `mean_variance`
# × `greedy` selections of every layer, and {{said("len(reports['PyTorch version'].trajectories)")}}
# trajectories of 20 DBA(SGD) steps, whose selections (sets and removal orders) and weights were compared
# after every step; and what it does not: the other metrics, strategies and base optimizers. In float64 the
# largest errors are a few units in the last digit — the Gram matrices {{said("reports['PyTorch version'].rows['gram', 'float64'].max_error", ".1e")}}
# of their scale where {{said("reports['PyTorch version'].rows['gram', 'float64'].allowed", ".1e")}} is allowed,
# the weights after a step {{said("trajectory_rows.max_error", ".1e")}} (worst at
# `{{said("trajectory_rows.worst_key")}}`) — two implementations that add in a different order, nothing
# more.
#
# ## A broken variant: the Gram matrix without the bias
#
# The bias of a layer is the weight of an input that is always 1, so each per-sample gradient is
# $g_i = [\operatorname{vec}(\Delta[i] \otimes A[i]),\ \Delta[i]]$ and
#
# $$K = (\Delta\Delta^\top) \odot (AA^\top + 1) \qquad\text{but, forgetting the bias part,}\qquad
#   K_{\text{wrong}} = (\Delta\Delta^\top) \odot (AA^\top) = K - \Delta\Delta^\top .$$
#
# We make exactly that slip in the PyTorch version — its `gram` flattens only the weight gradients —
# and replace the function for the duration of one run (`mock.patch.object`), so that the searches and
# the DBA steps use the wrong Gram matrix too, as they would in a real implementation.

# %%
def gram_without_bias(gW, gb):
    """The slip: G holds vec(∇W(i)) only, not the bias part ∇b(i)."""
    G = gW.flatten(1)
    return G @ G.T


if not needs_torch():
    with mock.patch.object(torch_dba, "gram", gram_without_bias):
        run_implementation(torch_dba.conformance_results, "cases", "no_bias_results.npz")
    dba_ref_command("conformance", "check", "no_bias_results.npz", "--inputs", "cases", "--max-listed", "4")
    reports["Gram without the bias"] = check_results(load_npz("no_bias_results.npz"), golden, declared)
    no_bias = reports["Gram without the bias"]

# %% [markdown]
# The report points at the bug. `losses` and `grad` still pass: the gradients themselves are right.
# The first row that fails is `gram` (off by {{said("no_bias.rows['gram', 'float64'].max_error", ".2g")}} of its
# scale in `{{said("no_bias.rows['gram', 'float64'].worst_key")}}`), and everything computed from the Gram
# matrix fails after it: the full-batch statistics and metric, the selections and their values, and the
# trajectories' selections — {{said("len(no_bias.divergences)")}} of {{said("len(no_bias.trajectories)")}}
# trajectories diverge, the first at `{{said("no_bias.first_divergence.case")}}` step
# {{said("no_bias.first_divergence.step")}}, layer {{said("no_bias.first_divergence.layer")}}. The weights
# after each step still pass: the check judges each step from the weights the implementation stood on,
# with the selection it made (more on this below), and the update itself — the mean gradient over the
# selected samples — is built from the gradients, which are right.
#
# Read a failing report from the top: the first row that fails is where to look.
#
# ## A second broken variant, outside the declaration: the unbiased variance
#
# The `variance` metric is the trace of the **biased** covariance of the selected gradients, the
# mean squared distance to their mean (spec §4):
#
# $$V = \frac1k \sum_{i \in S} \|g_i - \bar g\|^2 = \frac{T}{k} - \frac{Q}{k^2}.$$
#
# A statistician's reflex is to divide by $k - 1$ instead:
# $V_{\text{unbiased}} = \frac{1}{k-1}\big(T - \frac{Q}{k}\big) = \frac{k}{k-1}\, V$. The factor
# depends on $k$, so it changes every value, and it changes the comparison between subsets of different
# sizes, i.e. the search. Our declaration cannot see this bug: it declares `mean_variance` only, and the
# coverage line `not declared` says so. To check `variance`, declare it. We export a second declaration,
# both metrics, every strategy, DBA(SGD), one step, and run the PyTorch version with its `metric_value`
# replaced:

# %%
def metric_value_unbiased(name, T, Q, k):
    """The slip: `variance` divided by k − 1 (the sample covariance); the other metrics unchanged."""
    if name != "variance":
        return correct_metric_value(name, T, Q, k)
    T, Q, k = (torch.as_tensor(v, dtype=torch.float64) for v in (T, Q, k))
    return T / (k - 1) - Q / (k * (k - 1))


dba_ref_command("conformance", "export", "cases-variance", "--metric", "variance", "--metric", "mean_variance",
                "--base", "sgd")
if not needs_torch():
    correct_metric_value = torch_dba.metric_value
    with mock.patch.object(torch_dba, "metric_value", metric_value_unbiased):
        run_implementation(torch_dba.conformance_results, "cases-variance", "unbiased_results.npz")
    unbiased_results = load_npz("unbiased_results.npz")
    as_declared = Declaration.read("cases-variance")
    mean_variance_only = check_results(unbiased_results, golden, as_declared.replace(metrics=["mean_variance"]))
    print("checked with --metric mean_variance only:", mean_variance_only.coverage.declaration.flags(),
          "->", "PASS" if mean_variance_only.passed else "FAIL")
    print()
    dba_ref_command("conformance", "check", "unbiased_results.npz", "--inputs", "cases-variance", "--max-listed", "4")
    reports["unbiased variance"] = check_results(unbiased_results, golden, as_declared)

# %% [markdown]
# The same results file passes when only `mean_variance` is declared (the `variance` keys are then outside
# the declaration, counted and not compared) and fails as soon as `variance` is. The gradients and the Gram
# matrices pass, and so do the DBA steps' weights. What fails is exactly what depends on `variance`: its
# full-batch value in every layer (`full_stats`), the values of the selected subsets and along the search
# paths, and a few selections. Which ones?

# %%
differing = []                  # metric/strategy of every one-step selection that differs
if not needs_torch():
    for dtype in ("float64", "float32"):
        for problem in reports["unbiased variance"].rows["indices", dtype].failed:
            print(f"{dtype}: {problem}")
            differing.append("/".join(problem.split("/sel/")[1].split("/")[:2]))
print("metric/strategy of the selections that differ:", sorted(set(differing)))

# %% [markdown]
# Every one of them is a {{" and ".join(sorted(set(differing))) or "(needs PyTorch)"}} selection
# (metric/strategy). Greedy compares candidates of one size at a time, for which the factor $k/(k-1)$ is
# the same and changes nothing (it could only stop the search earlier, and here it never did). Prefix
# compares subsets of every size at once, and the factor — 2 at $k = 2$, close to 1 for the whole batch —
# makes the short prefixes look worse, so the wrong version keeps longer ones. (Exhaustive compares every
# size too; on these cases its optimum survived the factor.) A bug that changes few decisions still fails
# loudly through the values — if its metric is declared.
#
# ## The three runs side by side
#
# The same reports as Python objects (`dba_ref.conformance.check_results`, what the command prints): for
# every float64 quantity, the error of the worst key of each run divided by its allowance (a row passes
# below 1), and for the four exact quantities the number of selections that differ.

# %%
def error_ratio(row):
    """A row's error at its worst key over what the rule allows there (0 where nothing was compared)."""
    return row.max_error / row.allowed if row.allowed else 0.0


if not needs_torch():
    rows = [q for q, dtype in reports["PyTorch version"].rows if dtype == "float64"]
    measured = [q for q in rows if q not in EXACT_QUANTITIES]
    floor = 1e-6                                                   # an error of exactly 0 is drawn here

    fig, (ax_err, ax_sel) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [2.2, 1]})
    width = 0.27
    for j, (name, report) in enumerate(reports.items()):
        ratios = [max(error_ratio(report.rows[q, "float64"]), floor) for q in measured]
        ax_err.bar(np.arange(len(measured)) + (j - 1) * width, ratios, width, label=name, color=f"C{j}")
        differ = [len(report.rows[q, "float64"].failed) for q in EXACT_QUANTITIES]
        bars = ax_sel.bar(np.arange(len(EXACT_QUANTITIES)) + (j - 1) * width, differ, width, color=f"C{j}")
        ax_sel.bar_label(bars, fontsize=8)
        print(f"{name:>22}: {report.coverage.declaration.flags():<70} conformance "
              f"{'PASS' if report.passed else 'FAIL'}")
    ax_err.axhline(1, color="k", lw=1.5, label="allowed")
    ax_err.set_yscale("log")
    ax_err.set_ylim(floor / 3, 1e18)
    ax_err.set_xticks(np.arange(len(measured)), measured)
    ax_err.set_ylabel("error / allowed, worst key (float64 cases)")
    ax_err.grid(alpha=0.3, axis="y", which="major")
    ax_err.legend(fontsize=8, ncol=4, loc="upper left")
    ax_sel.set_xticks(np.arange(len(EXACT_QUANTITIES)), EXACT_QUANTITIES, fontsize=8)
    ax_sel.set_ylabel("selections that differ (float64 cases)")
    ax_sel.grid(alpha=0.3, axis="y")
    fig.suptitle("dba-ref conformance check: one correct implementation, two one-line bugs", fontsize=10)
    fig.tight_layout()

    correct_rows = [reports["PyTorch version"].rows[q, "float64"] for q in measured]
    headroom = min(np.log10(r.allowed / r.max_error) for r in correct_rows if r.max_error > 0)
    bug_ratios = [error_ratio(reports[run].rows[q, "float64"]) for run in ("Gram without the bias", "unbiased variance")
                  for q in measured if reports[run].rows[q, "float64"].failed]
    print(f"\nthe correct version: at least {headroom:.1f} orders of magnitude below every allowance; the failing "
          f"rows of the bugs: from {min(bug_ratios):.1e} to {max(bug_ratios):.1e} times their allowance")

# %% [markdown]
# Blue, the correct version, lies at least {{said("headroom", ".1f")}} orders of magnitude below every
# allowance, and no selection differs. The bugs' failing rows lie {{said("min(bug_ratios)", ".0e")}} to
# {{said("max(bug_ratios)", ".0e")}} times above theirs. The allowances leave room for another summation
# order, another BLAS, float32 — not for a wrong term — and the gap between the two kinds of error is
# what makes the verdict clear-cut.
#
# ## From a test suite: your step function
#
# Files are one way in. From your own test suite, the same check runs on a function:
# `dba_ref.conformance.check_step(step, declaration)` calls `step` for every declared case and trajectory,
# one DBA step at a time, with NumPy arrays in and out (`dba_ref/conformance/testing.py` documents the
# signature), and returns the report. For a PyTorch `nn.Sequential`, `dba_ref.frameworks.torch_adapter`
# does the conversions: `sequential_step(my_dba_step)` turns a step written on a model and a `torch.optim`
# optimizer, `my_dba_step(net, opt, X, y, hyperparams) -> selections`, into such a function, the optimizer
# kept from one step of a trajectory to the next (so its state carries over).
#
# Here is such a step, as a user would write it in a module of their own: DBA with the `mean_variance`
# metric and the greedy search, per-sample gradients by `torch.func`, the Gram matrix $GG^\top$ in
# float64, every candidate's metric recomputed from its subset. It has one switch, for a bug we will
# need below: `other_way=(step, layer)` makes the first removal there take the second-best candidate.

# %%
%%writefile my_dba.py
"""My DBA step: mean_variance and the greedy search, on an nn.Sequential of Linear layers."""
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap


def greedy_mean_variance(K, min_size, second_best_first=False):
    """Greedy backward elimination on mean_variance = T/Q - 1/k; ties go to the lowest index."""
    keep, removed = list(range(K.shape[0])), []
    mean_variance = lambda S: (K[S][:, S].trace() / K[S][:, S].sum() - 1 / len(S)).item()
    while len(keep) > min_size:
        candidates = sorted((mean_variance([i for i in keep if i != j]), j) for j in keep)
        value, best = candidates[1] if second_best_first and not removed else candidates[0]
        if not value < mean_variance(keep):
            break
        keep.remove(best)
        removed.append(best)
    return keep, removed


def my_dba_step(net, opt, X, y, hyperparams, other_way=None):
    """One DBA step: per layer, the subset greedy keeps and the mean gradient over it; then opt.step()."""
    opt.steps_taken = getattr(opt, "steps_taken", 0) + 1
    loss = lambda p, x, t: F.cross_entropy(functional_call(net, p, (x[None],)), t[None])
    g = vmap(grad(loss), in_dims=(None, 0, 0))({k: v.detach() for k, v in net.named_parameters()}, X, y)
    selections = []
    for l, i in enumerate(range(0, len(net), 2), 1):                    # net[i]: the Linear layers
        gW, gb = g[f"{i}.weight"], g[f"{i}.bias"]                        # per-sample gradients
        G = torch.cat([gW.flatten(1), gb], 1).double()
        keep, removed = greedy_mean_variance(G @ G.T, hyperparams["min_size"], (opt.steps_taken, l) == other_way)
        net[i].weight.grad, net[i].bias.grad = gW[keep].mean(0), gb[keep].mean(0)
        selections.append((keep, removed))
    opt.step()
    return selections

# %%
if not needs_torch():
    from my_dba import my_dba_step

    report = check_step(sequential_step(my_dba_step), declared)
    print(f"passed: {report.passed}; first divergence: {report.first_divergence}")
    print("\n".join(str(report).splitlines()[:6]))
    some_errors = dict(list(report.errors.items())[:3])
    print("report.errors (each compared array, by key and step):", *some_errors.items(), sep="\n  ")

# %% [markdown]
# The declaration is the one exported above, so the step function is judged on the same
# {{said("len(report.trajectories)")}} trajectories of {{declared.steps}} steps; its report is the same kind
# of object, with `.passed`, `.errors` by key and step, and `.first_divergence` (None: nothing diverged).
#
# ## Trajectories, judged step by step
#
# A trajectory is not compared with the reference's own trajectory: two correct implementations drift
# apart by rounding, and after a near-tie decided the other way they follow different batches of kept
# samples, so from the first difference on every later weight would differ and nothing would be learned
# from comparing them. Instead the reference judges **each step from where the other implementation
# stood**: from its weights after step $t-1$, the reference makes step $t$ itself (its own searches, its
# own optimizer state carried along) and compares the selections, then the weights after the step,
# within the rounding of the steps so far. An error is then seen at the step where it is made, not
# smeared over every step after it.
#
# A classic bug of that kind is Adam without its bias correction: $\hat m = m/(1 - \beta_1^t)$ and
# $\hat v = v/(1 - \beta_2^t)$ left out, so the steps are wrong from the first one on. The selections do
# not change (Adam acts after them). `sequential_step(..., optimizer=...)` runs the same DBA step on
# another `torch.optim` optimizer than the case's, here one written with the bug; the correct one is
# `torch.optim.Adam`. Both on the case `small`, DBA(Adam), 20 steps:

# %%
def errors_by_step(report, steps):
    """Largest relative error of the weights after each step (report.errors: keys '<...>/W1 step 3')."""
    worst = np.zeros(steps)
    for key, error in report.errors.items():
        if "/dba_" in key:
            t = int(key.rsplit(" step ", 1)[1])
            worst[t - 1] = max(worst[t - 1], error)
    return worst


if not needs_torch():
    class AdamWithoutBiasCorrection(torch.optim.Optimizer):
        """Adam with m and v used as they are: the corrections 1 - beta1^t and 1 - beta2^t left out (the bug)."""

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

    adam_declared = Declaration(cases="small", metrics="mean_variance", strategies="greedy", bases="adam", steps=20)
    no_correction = lambda params, hp: AdamWithoutBiasCorrection(params, hp["learning_rate"],          # noqa: E731
                                                                 (hp["beta1"], hp["beta2"]), hp["eps"])
    adam_ok = check_step(sequential_step(my_dba_step), adam_declared)
    adam_bug = check_step(sequential_step(my_dba_step, optimizer=no_correction), adam_declared)
    for name, report in (("torch.optim.Adam", adam_ok), ("without bias correction", adam_bug)):
        print(f"{name:>24}: {'PASS' if report.passed else 'FAIL'}; first divergence: {report.first_divergence}")

    steps = np.arange(1, adam_declared.steps + 1)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.semilogy(steps, np.maximum(errors_by_step(adam_ok, len(steps)), 1e-19), "o-", label="torch.optim.Adam")
    ax.semilogy(steps, errors_by_step(adam_bug, len(steps)), "s-", color="C3", label="Adam without bias correction")
    adam_allowed = adam_ok.rows["dba_adam", "float64"].allowed
    ax.axhline(adam_allowed, color="k", ls=":", label="allowed at the worst key of torch.optim.Adam")
    first = adam_bug.first_divergence
    ax.annotate(f"first divergence: step {first.step}, layer {first.layer}", (first.step, errors_by_step(
        adam_bug, len(steps))[0]), xytext=(4, 1e-6), arrowprops={"arrowstyle": "->"}, fontsize=9)
    ax.set_xticks(steps[::2])
    ax.set_xlabel("DBA(Adam) step t of the trajectory (case small)")
    ax.set_ylabel("largest error of the weights\nafter step t, relative")
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()

# %% [markdown]
# With `torch.optim.Adam` every step's weights agree to {{said("adam_ok.rows['dba_adam', 'float64'].max_error", ".0e")}}
# of their size or better (an error of exactly 0 is drawn at the bottom). Without the bias correction the
# very first step is off by {{said("errors_by_step(adam_bug, 20)[0]", ".2f")}} of the weights' size, and the
# report's first divergence names it: step {{said("adam_bug.first_divergence.step")}}, layer
# {{said("adam_bug.first_divergence.layer")}}, the entry, both values, and the allowance. Every later step
# is wrong again, by itself (each is judged from the weights the implementation stood on), so the curve
# stays up instead of growing: the error is located, not accumulated.
#
# ## The first divergence, and near-ties
#
# A selection can go wrong in two ways that look alike and are not. Take the bug switch of `my_dba_step`:
# at one (step, layer), the first removal takes the second-best candidate. Where the reference's decision
# there was **clear**, that is a wrong decision, a failure named by its step, layer and sample with the
# reference's margin. Where the two candidates were **tied to rounding**, either choice is right: the
# step is *ambiguous*, the reference takes the implementation's choice (it **re-synchronises**), and the
# later steps are still judged.
#
# Real batches meet near-ties — two copies of one image in a batch are enough. We make one: the case
# `small` with its sample 1 replaced by a copy of its sample 2 in the first batch (`check_step` takes the
# cases to run as `golden=`). The reference's greedy search on layer 2 at step 1 then starts like this:

# %%
twins = dict(golden["small"])
twins["X"], twins["y"] = twins["X"].copy(), twins["y"].copy()
twins["X"][1], twins["y"][1] = twins["X"][2], twins["y"][2]             # sample 1: a copy of sample 2

model = MLP.from_arrays([twins[k] for k in ("W1", "b1", "W2", "b2")], str(twins["activation"]))
A, D = list(backprop(model, twins["X"], twins["y"]).layers)[1]             # layer 2's signals at step 1
K2 = gram(A, D)
selection = select(K2, "mean_variance", "greedy", int(twins["min_size"]))
twin_margins = decision_margins(K2, selection)
print("removal order:", selection.trace.removed.tolist())
print("decision margins:", np.array2string(twin_margins, precision=3))

# %% [markdown]
# Its first removal is sample {{selection.trace.removed[0]}} with a margin of {{twin_margins[0]:.2g}}: the
# copies tie, and removing either leaves the same gradients. We make the same bug twice on this case:
# the second-best candidate at step 5, layer 1 (an ordinary batch), and at step 1, layer 2 (the tie):

# %%
if not needs_torch():
    one_case = declared.replace(cases=["small"])
    clear = check_step(sequential_step(partial(my_dba_step, other_way=(5, 1))), one_case, golden={"small": twins})
    tie = check_step(sequential_step(partial(my_dba_step, other_way=(1, 2))), one_case, golden={"small": twins})
    print("at step 5, layer 1 (a clear decision):\n ", "PASS" if clear.passed else "FAIL")
    print("  first divergence:", clear.first_divergence)
    print("\nat step 1, layer 2 (a near-tie):\n ", "PASS" if tie.passed else "FAIL")
    print(*(f"  ambiguous: {a}" for a in tie.listed("ambiguous")), sep="\n")
    (tie_trajectory,) = tie.trajectories
    weights_compared = sum("/dba_sgd/" in key for key in tie.errors)
    print(f"  re-synchronised at (step, layer): {tie_trajectory.resynchronised}; steps judged: "
          f"{tie_trajectory.steps}; weight arrays compared: {weights_compared}")

# %% [markdown]
# At the clear decision the report names step {{said("clear.first_divergence.step")}}, layer
# {{said("clear.first_divergence.layer")}}, sample {{said("clear.first_divergence.sample")}}: the reference
# removes it, by a margin of {{said("clear.first_divergence.margin", ".2g")}}, many orders of magnitude
# above the near-tie threshold {{AMBIGUITY['float64']:.0e}}. At the tie the same bug is two *ambiguous*
# entries (the set and the removal order of that step), not a failure; the reference took the
# implementation's choice at {{said("tie_trajectory.resynchronised")}} and went on: all
# {{said("tie_trajectory.steps")}} steps were judged, {{said("weights_compared")}} weight arrays compared,
# and the trajectory passes.
#
# ## In your test suite
#
# `check_step` returns the report; `assert_step_conforms` raises `AssertionError` with the report's text
# instead; and `parametrize_with_cases` makes one pytest test per declared case, named by the case, as
# scikit-learn's `parametrize_with_checks` makes one per check. A test file for `my_dba.py`:

# %%
%%writefile test_my_dba.py
from functools import partial

from dba_ref.conformance import Declaration, check_step, parametrize_with_cases
from dba_ref.frameworks.torch_adapter import sequential_step
from my_dba import my_dba_step

DECLARED = Declaration(metrics="mean_variance", strategies="greedy", bases="sgd", steps=20)


@parametrize_with_cases(sequential_step(my_dba_step), DECLARED)
def test_my_dba(step, check):                   # test_my_dba[small], test_my_dba[deep], ...
    check(step)


def test_a_wrong_removal_is_named():
    bug = sequential_step(partial(my_dba_step, other_way=(5, 1)))
    report = check_step(bug, DECLARED.replace(cases=["small"]))
    assert not report.passed
    assert (report.first_divergence.step, report.first_divergence.layer) == (5, 1)

# %%
if not needs_torch():
    pytest_run = subprocess.run([sys.executable, "-m", "pytest", "-v", "--color=no", "-p", "no:cacheprovider",
                                 "test_my_dba.py"],
                                capture_output=True, text=True)
    print("$ python -m pytest -v test_my_dba.py")
    print("\n".join(line for line in pytest_run.stdout.splitlines() if "::" in line or " in " in line))

# %%
os.chdir(notebook_dir)
sys.path.remove(workdir.name)
workdir.cleanup()

# %% [markdown]
# ## Checking your own implementation
#
# 1. Declare what it implements and export: `dba-ref conformance export cases` with `--metric`,
#    `--strategy`, `--base` (each repeatable) and `--steps N`, in an empty folder.
# 2. For every `cases/<case>.npz`, compute each key of `cases/OUTPUTS.txt` and save them all, as
#    `<case>/<key>`, in one `.npz` (the loop of step 2).
# 3. `dba-ref conformance check RESULTS.npz --inputs cases`. An implementation with no search yet can
#    start with `--only losses --only grad --only gram` added.
#
# Or, from pytest, `check_step`, `assert_step_conforms` or `parametrize_with_cases` on your step function
# (for JAX, `dba_ref.frameworks.jax_adapter.jax_step` does what `sequential_step` does for PyTorch).
# Errors in your function — an exception, wrong shapes or dtypes — are reported as that, with the case,
# the trajectory and the step, never as a crash of the checker. The conventions that most often trip an
# implementation are listed in `docs/verification.md` §4: `W_l` is `(out, in)`; `grad_W<l>[i]` is the
# gradient of sample $i$'s own loss $\ell_i$ (not divided by $B$); the Gram matrix includes the bias;
# statistics and metrics are computed in float64 even for a float32 model; greedy removes only on a
# strict decrease and breaks ties towards the lowest index; Adam adds its $\epsilon$ to $\sqrt{\hat v}$
# after the bias correction.
#
# ## Practise it
#
# The exercises' autograder is a conformance check in small: each exercise's answers are compared with the
# reference by the same rule, on edge cases and random ones, and a classic slip is named. Three slips of
# this notebook are among those it recognises: `dba-ref exercises start gram_identity` (the missing
# $+1$), `dba-ref exercises start metrics` (the unbiased variance) and `dba-ref exercises start adam` (the
# bias correction). Then check your own implementation of a whole DBA step, over a trajectory, with the
# steps above.
