# %% [markdown]
# # 7 · Checking another implementation
#
# `dba_ref` is a reference: you write DBA in PyTorch, JAX or C++ for your own work, and check it
# against this one. Comparing two implementations number by number is less simple than it sounds:
# floating-point sums in a different order differ in the last digits, metric values are differences
# that can cancel to zero, and a search can meet two candidates so close that either choice is right.
# The one idea of this notebook: **an implementation conforms when every quantity agrees within a
# tolerance set by its rounding scale, and every selection decision agrees except at a near-tie** —
# and then one wrong term shows up in the table exactly at the quantities it feeds.
#
# The checker is `dba-ref conformance` (`dba_ref/conformance.py`, `docs/verification.md`). Here the
# PyTorch version, `dba_ref/frameworks/torch_dba.py`, plays "your" implementation: it is written the
# framework way (per-sample gradients by `torch.func.vmap(grad(...))`, the Gram matrix as $GG^\top$
# of the materialised gradients, the searches rewritten on tensors) and shares with the reference
# only the constants of the definition. Then we break it twice, on purpose.

# %%
import os
import tempfile
from pathlib import Path
from unittest import mock

import matplotlib.pyplot as plt
import numpy as np

from dba_ref.cli import main as dba_ref_main
from dba_ref.conformance import CASES, EXACT_QUANTITIES, QUANTITIES, TOLERANCES, check_results, load_npz

try:
    import torch

    from dba_ref.frameworks import torch_dba
    print(f"PyTorch {torch.__version__}: the PyTorch version of DBA will be checked")
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


reports = {}          # run -> its check as a Python object (dba_ref.conformance.check_results), for the text


def said(run, quantity, what="max_error", dtype="float64", fmt=".2e"):
    """What the check of ``run`` says of ``quantity``, as the text below quotes it (without PyTorch: nothing)."""
    if run not in reports:
        return "(needs PyTorch)"
    row = reports[run].rows[quantity, dtype]
    return {"max_error": format(row.max_error, fmt), "compared": str(row.compared), "differ": str(len(row.failed)),
            "agree": str(row.compared - len(row.failed)), "worst": row.worst_key}[what]

# %% [markdown]
# ## What is compared, and how
#
# A **golden case** is a small fixed problem — an MLP with its weights, a batch, a `min_size` — with
# everything the reference computes from it: per-sample losses $\ell_i$, per-sample gradients, the
# Gram matrix $K_l$ of every layer, the full-batch statistics $T, Q$ and metrics, the selection and its
# trace for every metric × strategy × layer, and the weights after one DBA(SGD) and one DBA(Adam) step.
# The {{len(CASES)}} cases cover networks of {{min(len(c.sizes) - 1 for c in CASES)}} to
# {{max(len(c.sizes) - 1 for c in CASES)}} weight layers, float32, `min_size` $= B - 1$ and $= B$, and the
# tanh, sigmoid and identity activations.
#
# Each quantity is compared its own way:
#
# - **arrays** (losses, gradients, Gram matrices, weights) by the relative error over the whole
#   array, $\;\mathrm{err} = \max_j |a_j - r_j| \,/\, \max_j |r_j|$, with $r$ the reference;
# - **metric values** relative to their *rounding scale*. Every floating-point operation rounds its result
#   to about $\epsilon_{\text{mach}}$ ($2.2 \cdot 10^{-16}$ in float64) *of the numbers it works on*, so a
#   value computed as a difference of larger numbers carries an error of about $\epsilon_{\text{mach}}$ times
#   those numbers, not times itself. A metric is such a difference, and can cancel to 0: `variance`
#   $= T/k - Q/k^2$ is 0 for a single sample although $T/k$ is not. The **rounding scale** of a value is the
#   size of what it is computed from, the number its error is measured against: $T/k$ for `variance`. For
#   the ratio metrics one more factor enters. $Q = \sum_{i,j \in S} K[i,j]$ is itself a sum whose terms
#   cancel: they add up to $kT$ at most in size ($|K[i,j]| \le \sqrt{K[i,i]K[j,j]}$), while $Q$ can be much
#   smaller, so $Q$ is known to a relative error of about $\epsilon_{\text{mach}} \cdot kT/Q$. The factor
#   $kT/Q \ge 1$ is the *condition number* of $Q$. The rounding scale of a ratio metric is its leading term
#   times it: $\frac{T}{Q}\cdot\frac{kT}{Q}$ for `mean_variance` $= T/Q - 1/k$, $\big(\frac{kT}{Q}\big)^2$ for
#   `normalized_variance` $= kT/Q - 1$ (`dba_ref.agreement.value_scale`);
# - **selected sets and removal orders** exactly, step by step — except where the reference's
#   decision **margin** (the gap between the best and the second-best candidate, or between the best
#   and the acceptance threshold, in units of their rounding scale) is at most $10^{-9}$: such a
#   near-tie may go either way in a correct implementation (spec §5), so it is reported as
#   *ambiguous*, and nothing after it is compared.
#
# The tolerances, by the dtype of the case:

# %%
print(f"{'quantity':>10} | float64 | float32")
for q in QUANTITIES:
    if q in EXACT_QUANTITIES:
        print(f"{q:>10} |   exact |   exact   (near-ties: ambiguous, not failures)")
    else:
        print(f"{q:>10} | {TOLERANCES['float64'][q]:7.0e} | {TOLERANCES['float32'][q]:7.0e}")
print("\nthe golden cases:")
for case in CASES:
    print(f"  {case.name:<17} sizes {'-'.join(map(str, case.sizes)):<10} {case.activation:<8} {case.dtype}  "
          f"B = {case.batch_size:<2}  min_size = {case.min_size}")

# %% [markdown]
# ## Step 1 — export the inputs
#
# `dba-ref conformance export DIR` writes the inputs of every case (model, weights, batch, `min_size`,
# hyper-parameters), one `.npz` per case, and `OUTPUTS.txt`, the list of every output key to produce
# with its dtype and shape (`docs/golden_schema.md` explains each). The notebook works in a temporary
# folder, removed at the end.

# %%
workdir = tempfile.TemporaryDirectory(prefix="dba-ref-conformance-")
notebook_dir = os.getcwd()
os.chdir(workdir.name)

dba_ref_command("conformance", "export", "cases")
outputs = Path("cases/OUTPUTS.txt").read_text().splitlines()
print("\n".join(outputs[:12]), "\n  ...")
with np.load("cases/small.npz") as case:
    print("\ninputs of cases/small.npz:", ", ".join(case.files))

# %% [markdown]
# ## Step 2 — run your implementation on every case
#
# The loop is the same for any implementation: read each case, compute, store every output under
# `<case>/<key>`, save one `.npz`. For the PyTorch version the "compute" is
# `torch_dba.conformance_results(inputs)`, about forty lines worth reading as a template. Its
# per-sample gradients are PyTorch's own recipe,
#
# ```python
# grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)   # {name: (B, *shape)}
# ```
#
# and its Gram matrix is $K = GG^\top$ with $G = [\operatorname{vec}(\nabla W(i)), \nabla b(i)]_i$, so
# it agrees with the reference's $(\Delta\Delta^\top) \odot (AA^\top + 1)$ only if both the gradients
# and the identity are right.

# %%
def run_implementation(compute, results_file):
    """Run ``compute(inputs) -> {key: array}`` on every exported case; save all outputs to ``results_file``."""
    results = {}
    for path in sorted(Path("cases").glob("*.npz")):
        with np.load(path) as archive:
            inputs = {key: archive[key] for key in archive.files}
        results.update({f"{path.stem}/{key}": np.asarray(value) for key, value in compute(inputs).items()})
    np.savez(results_file, **results)
    print(f"wrote {len(results)} arrays for {len(CASES)} cases to {results_file}")


if not needs_torch():
    run_implementation(torch_dba.conformance_results, "torch_results.npz")

# %% [markdown]
# ## Step 3 — check
#
# `dba-ref conformance check RESULTS.npz` prints one row per quantity and dtype: how many arrays
# were compared, the largest error among them, the tolerance, the verdict and the array where the
# error was largest. For `indices` and `removed` it counts the selections that differ. The exit status
# is 0 when everything passes and 1 otherwise, so it can gate a CI job.

# %%
if not needs_torch():
    dba_ref_command("conformance", "check", "torch_results.npz")
    reports["PyTorch version"] = check_results(load_npz("torch_results.npz"))

# %% [markdown]
# Every row passes. In float64 the largest errors are a few units in the last digit —
# {{said('PyTorch version', 'losses')}} for the losses, {{said('PyTorch version', 'gram')}} for the Gram
# matrices, {{said('PyTorch version', 'value')}} for the metric values — and in float32 about
# {{said('PyTorch version', 'gram', dtype='float32')}}, the precision of float32 itself: two implementations
# that add in a different order, nothing more. All {{said('PyTorch version', 'indices', 'compared')}} float64
# and {{said('PyTorch version', 'indices', 'compared', 'float32')}} float32 selections are the same sets,
# removed in the same order. The
# golden cases were chosen to hold no near-tie, so a correct implementation reproduces every one of them
# and the `ambiguous` count stays at zero.
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
# the DBA step use the wrong Gram matrix too, as they would in a real implementation.

# %%
def gram_without_bias(gW, gb):
    """The slip: G holds vec(∇W(i)) only, not the bias part ∇b(i)."""
    G = gW.flatten(1)
    return G @ G.T


if not needs_torch():
    with mock.patch.object(torch_dba, "gram", gram_without_bias):
        run_implementation(torch_dba.conformance_results, "no_bias_results.npz")
    dba_ref_command("conformance", "check", "no_bias_results.npz", "--max-listed", "4")
    reports["Gram without the bias"] = check_results(load_npz("no_bias_results.npz"))

# %% [markdown]
# The report points at the bug. `losses` and `grad` still pass: the gradients themselves are right.
# The first row that fails is `gram` (off by up to {{said('Gram without the bias', 'gram', fmt='.2g')}} of its largest
# entry, in `{{said('Gram without the bias', 'gram', 'worst')}}`), and everything computed from the Gram matrix
# fails after it: the full-batch statistics $T$, $Q$ and the metrics,
# {{said('Gram without the bias', 'indices', 'differ')}} of the {{said('Gram without the bias', 'indices', 'compared')}}
# float64 selections (their sets and their removal orders), the metric values, and the weights after a DBA
# step, whose selections changed. Values are compared only where the selections agree
# ({{said('Gram without the bias', 'value', 'compared')}} of {{said('Gram without the bias', 'indices', 'compared')}}):
# elsewhere they are values of different subsets. In the float32 case the wrong Gram happened to lead the step's search to the same
# subsets, so its DBA step still passes — the update itself is built from the gradients, which are right.
#
# Read a failing report from the top: the first row that fails is where to look.
#
# ## A second broken variant: the unbiased variance
#
# The `variance` metric is the trace of the **biased** covariance of the selected gradients, the
# mean squared distance to their mean (spec §4):
#
# $$V = \frac1k \sum_{i \in S} \|g_i - \bar g\|^2 = \frac{T}{k} - \frac{Q}{k^2}.$$
#
# A statistician's reflex is to divide by $k - 1$ instead:
# $V_{\text{unbiased}} = \frac{1}{k-1}\big(T - \frac{Q}{k}\big) = \frac{k}{k-1}\, V$. The factor
# depends on $k$, so it changes every value, and it changes the comparison between subsets of different
# sizes, i.e. the search. This time we replace the PyTorch version's `metric_value`:

# %%
def metric_value_unbiased(name, T, Q, k):
    """The slip: `variance` divided by k − 1 (the sample covariance); the other metrics unchanged."""
    if name != "variance":
        return correct_metric_value(name, T, Q, k)
    T, Q, k = (torch.as_tensor(v, dtype=torch.float64) for v in (T, Q, k))
    return T / (k - 1) - Q / (k * (k - 1))


if not needs_torch():
    correct_metric_value = torch_dba.metric_value
    with mock.patch.object(torch_dba, "metric_value", metric_value_unbiased):
        run_implementation(torch_dba.conformance_results, "unbiased_results.npz")
    dba_ref_command("conformance", "check", "unbiased_results.npz", "--max-listed", "4")
    reports["unbiased variance"] = check_results(load_npz("unbiased_results.npz"))

# %% [markdown]
# This time the gradients and the Gram matrices pass, and so do both DBA steps, which select with
# `mean_variance`. What fails is exactly what depends on `variance`: the full-batch `variance` of every
# layer (`full_stats`), the values of the selected subsets and along the search paths, and a few
# selections. Which ones?

# %%
differing = []                  # metric/strategy of every selection that differs
if not needs_torch():
    for dtype in ("float64", "float32"):
        for problem in reports["unbiased variance"].rows["indices", dtype].failed:
            print(f"{dtype}: {problem}")
            differing.append("/".join(problem.split("/sel/")[1].split("/")[:2]))
print("metric/strategy of the selections that differ:", sorted(set(differing)))

# %% [markdown]
# Every one of them is a {{" and ".join(sorted(set(differing))) or "(needs PyTorch)"}} selection
# (metric/strategy): `variance` with the `prefix` strategy. Greedy compares candidates of one size at a
# time, for which the factor $k/(k-1)$ is the same and changes nothing (it could only stop the search
# earlier, and here it never did). Prefix compares subsets of every size at once, and the factor — 2 at
# $k = 2$, close to 1 for the whole batch — makes the short prefixes look worse, so the wrong version
# keeps longer ones. (Exhaustive compares every size too; on these cases its optimum survived the
# factor.) A bug that changes few decisions still fails loudly through the values.
#
# ## The three runs side by side
#
# The same reports as Python objects (`dba_ref.conformance.check_results`, what the command prints):
# for every float64 quantity, the largest error of each run against its tolerance, and the number of
# selections that differ.

# %%
if not needs_torch():
    measured = [q for q in QUANTITIES if q not in EXACT_QUANTITIES]
    floor = 1e-18                                                   # an error of exactly 0 is drawn here

    fig, (ax_err, ax_sel) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.27
    x = np.arange(len(measured))
    for j, (name, report) in enumerate(reports.items()):
        errors = [max(report.rows[q, "float64"].max_error, floor) for q in measured]
        ax_err.bar(x + (j - 1) * width, errors, width, label=name, color=f"C{j}")
        differ = [len(report.rows[q, "float64"].failed) for q in EXACT_QUANTITIES]
        bars = ax_sel.bar(np.arange(2) + (j - 1) * width, differ, width, color=f"C{j}")
        ax_sel.bar_label(bars, fontsize=8)
        print(f"{name:>22}: conformance {'PASS' if report.passed else 'FAIL'}")
    for i, q in enumerate(measured):
        ax_err.hlines(TOLERANCES["float64"][q], i - 0.45, i + 0.45, color="k", lw=2,
                      label="tolerance" if i == 0 else None)
    ax_err.set_yscale("log")
    ax_err.set_ylim(floor / 3, 1e5)
    ax_err.set_xticks(x, measured)
    ax_err.set_ylabel("max relative error (float64 cases)")
    ax_err.grid(alpha=0.3, axis="y", which="major")
    ax_err.legend(fontsize=8, ncol=4, loc="upper left")
    total = reports["PyTorch version"].rows["indices", "float64"].compared
    ax_sel.set_xticks(np.arange(2), EXACT_QUANTITIES)
    ax_sel.set_ylabel(f"selections that differ (of {total})")
    ax_sel.grid(alpha=0.3, axis="y")
    fig.suptitle("dba-ref conformance check: one correct implementation, two one-line bugs", fontsize=10)
    fig.tight_layout()


def headroom(run):
    """Orders of magnitude between the tolerance and the largest error of ``run``, over every float64 quantity."""
    if run not in reports:
        return "(needs PyTorch)"
    rows = [reports[run].rows[q, "float64"] for q in QUANTITIES if q not in EXACT_QUANTITIES]
    return f"{min(np.log10(TOLERANCES['float64'][r.quantity] / r.max_error) for r in rows if r.max_error > 0):.0f}"


bug_errors = [reports[run].rows[q, "float64"].max_error for run in ("Gram without the bias", "unbiased variance")
              if run in reports for q in QUANTITIES if q not in EXACT_QUANTITIES
              and reports[run].rows[q, "float64"].failed]
print(f"the correct version: at least {headroom('PyTorch version')} orders of magnitude below every tolerance; "
      f"the failing rows of the bugs: errors from {min(bug_errors, default=np.nan):.2g} to "
      f"{max(bug_errors, default=np.nan):.2g}")

# %% [markdown]
# Blue, the correct version, lies at least {{headroom('PyTorch version')}} orders of magnitude below every
# tolerance, and no selection differs. The bugs' failing rows have errors from {{min(bug_errors, default=np.nan):.2g}}
# to {{max(bug_errors, default=np.nan):.2g}} (the tables above), far above them. The tolerances leave room for
# another summation order, another BLAS, float32 — not for a wrong term — and the gap between the two kinds
# of error is what makes the verdict clear-cut.
#
# ## Checking part of an implementation
#
# An implementation is rarely finished at once. `--only QUANTITY` (repeatable) requires and compares
# only some quantities, `--case CASE` only some cases, so a version with gradients and Gram matrices but
# no search yet can already be checked:

# %%
if not needs_torch():
    dba_ref_command("conformance", "check", "torch_results.npz", "--only", "losses", "--only", "grad", "--only", "gram",
            "--case", "small", "--case", "deep", "--max-listed", "3")

# %%
os.chdir(notebook_dir)
workdir.cleanup()

# %% [markdown]
# ## Checking your own implementation
#
# 1. `dba-ref conformance export cases` in an empty folder.
# 2. For every `cases/<case>.npz`, compute each key of `cases/OUTPUTS.txt` and save them all, as
#    `<case>/<key>`, in one `.npz` (the loop of step 2).
# 3. `dba-ref conformance check my_results.npz`; start with `--only losses --only grad --only gram`.
#
# The conventions that most often trip an implementation are listed in `docs/verification.md` §4:
# `W_l` is `(out, in)`; `grad_W<l>[i]` is the gradient of sample $i$'s own loss $\ell_i$ (not divided by
# $B$); the Gram matrix includes the bias; statistics and metrics are computed in float64 even for a
# float32 model; greedy removes only on a strict decrease and breaks ties towards the lowest index;
# Adam adds its $\epsilon$ to $\sqrt{\hat v}$ after the bias correction.
#
# ## Practise it
#
# The exercises' autograder is a conformance check in small: each exercise's answers are compared with the
# reference by the same comparator, on edge cases and random ones, and a classic slip is named. The two
# slips of this notebook are among those it recognises: `dba-ref exercises start gram_identity` (the missing
# $+1$) and `dba-ref exercises start metrics` (the unbiased variance). Then check your own implementation of
# a whole DBA step with the three steps above.
