"""Golden cases and the conformance check: how another implementation is compared with this one.

A **golden case** is a small, fixed problem (an MLP, its weights, a batch, a
``min_size``) together with everything the reference computes from it: the
per-sample losses and gradients, the Gram matrix of every layer, the selection
and its trace for every metric × strategy × layer, and the weights after one
DBA(SGD) and one DBA(Adam) step. ``golden/`` beside this module holds one
``.npz`` per case (package data: a wheel ships them), written by
``data/golden/make_golden.py`` of the source repository through
:func:`write_golden`; ``docs/golden_schema.md`` lists every key.

The check (``dba-ref conformance check``) reads another implementation's
outputs for the same inputs and compares them quantity by quantity:

- arrays (losses, gradients, Grams, weights) by the **max relative error**
  ``max|a − r| / max|r|`` over the array (r the reference), against the
  tolerance of :data:`TOLERANCES` for the case's dtype;
- metric values relative to their **rounding scale** (:func:`value_scale`),
  because a metric is a difference that can cancel to 0; ``Q`` relative to
  ``B·T``; entries where the reference is ±inf must be equal;
- selected sets and removal orders **exactly**, except at a near-tie (spec §5):
  a decision whose reference margin (:func:`decision_margins`) is ≤
  :data:`AMBIGUITY` is a close call that a correct implementation may decide
  the other way; it is reported as *ambiguous*, not as a failure, and nothing
  that follows from it is compared.

Keys of one case file: inputs (``X``, ``y``, ``W1``, ``b1``, ... and the
hyper-parameters), outputs (``losses``, ``grad_W1``, ``gram1``, ``full/L1/T``,
``sel/<metric>/<strategy>/L<l>/<field>``, ``dba_sgd/W1``, ...) and the
reference-only ``margins`` of every selection, which the check uses but never
asks for. A results file holds the outputs of every case under ``<case>/<key>``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..agreement import (AMBIGUITY, SelectionVerdict, check_selection, decision_margins, full_stat_scale,
                        max_rel_error)
from ..backprop import backprop, per_sample_grads
from ..data import data_dir_override
from ..gram import gram
from ..metrics import METRIC_NAMES
from ..model import MLP
from ..optimizers import adam, apply_updates, dba, sgd
from ..search import STRATEGIES, select

# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------
#: Hyper-parameters shared by every case (stored in each file too).
STEP_METRIC, STEP_STRATEGY = "mean_variance", "greedy"
SGD_LEARNING_RATE = 0.1
ADAM_LEARNING_RATE, ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.01, 0.9, 0.999, 1e-8
TOL = 0.0


@dataclass(frozen=True)
class GoldenCase:
    """One golden problem: architecture, activation, dtype, batch size, ``min_size`` and seed."""

    name: str
    sizes: tuple
    activation: str
    dtype: str
    batch_size: int
    min_size: int
    seed: int
    description: str


CASES = (
    GoldenCase("small", (5, 7, 3), "relu", "float64", 8, 2, 1, "one hidden ReLU layer, the paper's architecture in miniature"),
    GoldenCase("deep", (6, 9, 7, 5, 4), "relu", "float64", 10, 2, 2, "four weight layers"),
    GoldenCase("float32", (5, 8, 3), "relu", "float32", 10, 2, 3, "a float32 model (statistics still in float64)"),
    GoldenCase("edge_one_removal", (4, 6, 3), "tanh", "float64", 6, 5, 4,
               "min_size = B - 1: exactly one removal is allowed"),
    GoldenCase("edge_whole_batch", (4, 6, 3), "tanh", "float64", 6, 6, 5,
               "min_size = B: nothing may be removed, the greedy loop never runs"),
    GoldenCase("act_tanh", (5, 6, 6, 3), "tanh", "float64", 9, 2, 6, "two hidden tanh layers"),
    GoldenCase("act_sigmoid", (5, 6, 6, 3), "sigmoid", "float64", 9, 2, 7, "two hidden sigmoid layers"),
    GoldenCase("act_identity", (5, 6, 6, 3), "identity", "float64", 9, 2, 8, "two hidden identity (linear) layers"),
)

#: The golden files hold no near-tie: every margin of a case exceeds this (checked when written).
GOLDEN_MIN_MARGIN = {"float64": 1e-6, "float32": 1e-4}

#: Max relative error allowed for each floating-point quantity, by the case's dtype.
TOLERANCES = {
    "float64": {"losses": 1e-10, "grad": 1e-10, "gram": 1e-10, "full_stats": 1e-9, "value": 1e-9,
                "values": 1e-9, "dba_sgd": 1e-9, "dba_adam": 1e-9},
    "float32": {"losses": 1e-5, "grad": 1e-5, "gram": 1e-5, "full_stats": 1e-4, "value": 1e-4,
                "values": 1e-4, "dba_sgd": 1e-5, "dba_adam": 1e-5},
}

#: Quantities in the order of the report; ``indices`` and ``removed`` are compared exactly.
QUANTITIES = ("losses", "grad", "gram", "full_stats", "indices", "value", "removed", "values", "dba_sgd",
              "dba_adam")
EXACT_QUANTITIES = ("indices", "removed")

_SELECTION_FIELDS = ("indices", "value", "removed", "values")
_VARIABLE_LENGTH = ("indices", "removed", "values")


def selection_key(metric: str, strategy: str, layer: int, field_name: str) -> str:
    """Key of one field of one selection, e.g. ``sel/mean_variance/greedy/L1/indices`` (layers from 1)."""
    return f"sel/{metric}/{strategy}/L{layer}/{field_name}"


def quantity_of(key: str) -> str | None:
    """The quantity an output key belongs to; ``None`` for inputs and reference-only keys."""
    if key == "losses":
        return "losses"
    if re.fullmatch(r"grad_[Wb]\d+", key):
        return "grad"
    if re.fullmatch(r"gram\d+", key):
        return "gram"
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "full" and re.fullmatch(r"L\d+", parts[1]):
        return "full_stats"
    if len(parts) == 5 and parts[0] == "sel" and parts[4] in _SELECTION_FIELDS:
        return parts[4]
    if len(parts) == 2 and parts[0] in ("dba_sgd", "dba_adam") and re.fullmatch(r"[Wb]\d+", parts[1]):
        return parts[0]
    return None


def is_input(key: str) -> bool:
    """Whether ``key`` of a case file is one of the case's inputs."""
    return quantity_of(key) is None and not key.endswith("/margins")


def case_inputs(case: GoldenCase) -> dict:
    """The inputs of a case, drawn from its seed: model, weights (biases made non-zero), batch, hyper-parameters."""
    model = MLP(list(case.sizes), activation=case.activation, seed=case.seed, dtype=case.dtype)
    rng = np.random.default_rng(1000 + case.seed)
    inputs = {
        "description": np.array(case.description),
        "sizes": np.array(case.sizes, np.int64),
        "activation": np.array(case.activation),
        "dtype": np.array(case.dtype),
        "X": rng.normal(size=(case.batch_size, case.sizes[0])).astype(case.dtype),
        "y": rng.integers(0, case.sizes[-1], size=case.batch_size).astype(np.int64),
    }
    for l, W in enumerate(model.weights, 1):
        inputs[f"W{l}"] = W
        inputs[f"b{l}"] = rng.normal(scale=0.1, size=W.shape[0]).astype(case.dtype)
    inputs.update({
        "min_size": np.array(case.min_size, np.int64), "tol": np.array(TOL),
        "metrics": np.array(METRIC_NAMES), "strategies": np.array(STRATEGIES),
        "step_metric": np.array(STEP_METRIC), "step_strategy": np.array(STEP_STRATEGY),
        "sgd_learning_rate": np.array(SGD_LEARNING_RATE), "adam_learning_rate": np.array(ADAM_LEARNING_RATE),
        "adam_beta1": np.array(ADAM_BETA1), "adam_beta2": np.array(ADAM_BETA2), "adam_eps": np.array(ADAM_EPS),
    })
    return inputs


def n_layers(inputs) -> int:
    return len(inputs["sizes"]) - 1


def model_from_inputs(inputs) -> MLP:
    """The reference :class:`~dba_ref.model.MLP` holding a case's weights."""
    model = MLP([int(s) for s in inputs["sizes"]], activation=str(inputs["activation"]), dtype=str(inputs["dtype"]))
    model.set_params([(inputs[f"W{l}"], inputs[f"b{l}"]) for l in range(1, n_layers(inputs) + 1)])
    return model


def selection_fields(selection, K: np.ndarray) -> dict:
    """A reference selection as the golden files store it: ``indices``, ``value``, ``removed``, ``values``, ``margins``."""
    return {"indices": selection.indices, "value": selection.value, "removed": selection.trace.removed,
            "values": selection.trace.values, "margins": decision_margins(K, selection)}


# --------------------------------------------------------------------------
# The reference outputs
# --------------------------------------------------------------------------
def reference_outputs(inputs) -> dict:
    """Everything the reference computes from a case's inputs, under the keys of the schema.

    Includes the reference-only ``margins`` of every selection.
    """
    model = model_from_inputs(inputs)
    X, y = inputs["X"], inputs["y"]
    signals = backprop(model, X, y)
    out = {"losses": signals.losses}
    grams = []
    for l, ((gW, gb), (A, D)) in enumerate(zip(per_sample_grads(model, X, y), signals.layers), 1):
        out[f"grad_W{l}"], out[f"grad_b{l}"] = gW, gb
        out[f"gram{l}"] = gram(A, D)
        grams.append(out[f"gram{l}"])
    m, tol = int(inputs["min_size"]), float(inputs["tol"])
    for l, K in enumerate(grams, 1):
        selections = {}
        for metric in map(str, inputs["metrics"]):
            for strategy in map(str, inputs["strategies"]):
                sel = select(K, metric, strategy, m, tol)
                for name, value in selection_fields(sel, K).items():
                    selections[selection_key(metric, strategy, l, name)] = np.asarray(value)
            out[f"full/L{l}/{metric}"] = np.asarray(sel.trace.full_value)     # the whole batch's statistics
        out[f"full/L{l}/T"], out[f"full/L{l}/Q"] = np.asarray(sel.trace.full_T), np.asarray(sel.trace.full_Q)
        out.update(selections)
    step = dict(metric=str(inputs["step_metric"]), strategy=str(inputs["step_strategy"]), min_size=m, tol=tol)
    bases = {"dba_sgd": sgd(float(inputs["sgd_learning_rate"])),
             "dba_adam": adam(float(inputs["adam_learning_rate"]), float(inputs["adam_beta1"]),
                              float(inputs["adam_beta2"]), float(inputs["adam_eps"]))}
    for name, base in bases.items():
        opt = dba(base, **step)
        updates, _ = opt.update(signals, opt.init(model.params), model.params)
        for l, (W, b) in enumerate(apply_updates(model.params, updates), 1):
            out[f"{name}/W{l}"], out[f"{name}/b{l}"] = W, b
    return out


def min_margin(case_file) -> float:
    """The smallest decision margin of any selection in a case (``inf`` when it made no decision)."""
    margins = [np.asarray(v, np.float64) for k, v in case_file.items() if k.endswith("/margins")]
    return float(min((v.min() for v in margins if v.size), default=np.inf))


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
#: Where the package's golden cases are: ``golden/`` beside this module.
PACKAGE_GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def golden_dir() -> Path:
    """The folder the golden cases are read from: :data:`PACKAGE_GOLDEN_DIR`, or
    ``$DBA_REF_DATA_DIR/golden`` when that variable is set (see :mod:`dba_ref.data`)."""
    override = data_dir_override()
    return override / "golden" if override else PACKAGE_GOLDEN_DIR


def write_golden(directory) -> list[Path]:
    """Compute every case of :data:`CASES` and write ``<directory>/<case>.npz``; return the paths.

    Raises ``RuntimeError`` if a case holds a near-tie (a margin ≤ :data:`GOLDEN_MIN_MARGIN`):
    golden selections must be unambiguous for every correct implementation.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in CASES:
        inputs = case_inputs(case)
        data = {**inputs, **reference_outputs(inputs)}
        if min_margin(data) <= GOLDEN_MIN_MARGIN[case.dtype]:
            raise RuntimeError(f"case {case.name!r} has a decision margin {min_margin(data):.3g} <= "
                               f"{GOLDEN_MIN_MARGIN[case.dtype]}; choose another seed")
        path = directory / f"{case.name}.npz"
        np.savez_compressed(path, **data)
        paths.append(path)
    return paths


def load_npz(path) -> dict:
    """All arrays of an ``.npz`` file (no pickles); a missing or unreadable file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled objects), EOFError ...
        raise ValueError(f"{path} is not a readable .npz file of plain arrays ({exc})") from exc


def load_golden(directory=None) -> dict:
    """``{case name: {key: array}}`` for every case of :data:`CASES` found in ``directory``."""
    directory = Path(directory) if directory is not None else golden_dir()
    missing = [c.name for c in CASES if not (directory / f"{c.name}.npz").is_file()]
    if missing:
        raise FileNotFoundError(
            f"golden cases {', '.join(missing)} not found in {directory}; dba-ref ships them in "
            f"{PACKAGE_GOLDEN_DIR} (reinstall it if they are missing there), or write them to a folder "
            "with python data/golden/make_golden.py --out DIR in a source checkout"
        )
    return {c.name: load_npz(directory / f"{c.name}.npz") for c in CASES}


def output_keys(case_file) -> list[str]:
    """The keys another implementation must produce for a case, in file order."""
    return [k for k in case_file if quantity_of(k) is not None]


def export_inputs(directory, golden=None) -> list[Path]:
    """Write ``<directory>/<case>.npz`` holding only the inputs, and ``OUTPUTS.txt`` listing what to compute."""
    golden = load_golden() if golden is None else golden
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths, lines = [], [
        "Outputs expected by `dba-ref conformance check RESULTS.npz`: one .npz holding, for every case,",
        "each key below as <case>/<key>. Shapes are those of the reference; indices, removed and values",
        "are 1-D of any length (they are compared step by step). See docs/golden_schema.md.", "",
    ]
    for name, data in golden.items():
        path = directory / f"{name}.npz"
        np.savez(path, **{k: v for k, v in data.items() if is_input(k)})
        paths.append(path)
        lines.append(f"[{name}] {data['description']}")
        lines += [f"  {name}/{k}  {data[k].dtype}  {data[k].shape}" for k in output_keys(data)]
    (directory / "OUTPUTS.txt").write_text("\n".join(lines) + "\n")
    return paths


# --------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------
@dataclass
class QuantityRow:
    """One line of the report: a quantity over all cases of one dtype, with its problems listed by key."""

    quantity: str
    dtype: str
    compared: int = 0
    max_error: float = 0.0
    worst_key: str = ""
    failed: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    bad: list = field(default_factory=list)
    ambiguous: list = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.quantity in EXACT_QUANTITIES

    @property
    def tolerance(self) -> float | None:
        return None if self.exact else TOLERANCES[self.dtype][self.quantity]

    @property
    def passed(self) -> bool:
        return not (self.failed or self.missing or self.bad)

    def record_error(self, rkey: str, err: float, allowed: float | None = None) -> None:
        """Record the max relative error of one compared array; ``allowed`` (default: the row's tolerance)
        is larger where the rounding bound of a long greedy path is (:func:`dba_ref.agreement.check_selection`)."""
        allowed = self.tolerance if allowed is None else allowed
        self.compared += 1
        if self.compared == 1 or err > self.max_error:
            self.max_error, self.worst_key = err, rkey
        if not err <= allowed:
            self.failed.append(f"{rkey}: max relative error {err:.3g} > {allowed:g}")

    def record_verdict(self, rkey: str, verdict: SelectionVerdict) -> None:
        """Record an exact comparison (a selected set or a removal order)."""
        self.compared += 1
        if verdict.status == "ambiguous":
            self.ambiguous.append(f"{rkey}: {verdict.detail}")
        elif verdict.status == "differ":
            self.failed.append(f"{rkey}: {verdict.detail}")


@dataclass
class Report:
    """The outcome of a check: one :class:`QuantityRow` per quantity and dtype, and the keys it ignored."""

    rows: dict = field(default_factory=dict)
    unexpected: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows.values())

    def row(self, quantity: str, dtype: str) -> QuantityRow:
        return self.rows.setdefault((quantity, dtype), QuantityRow(quantity, dtype))

    def listed(self, attribute: str) -> list:
        """Every row's entries of ``attribute`` (``failed``, ``missing``, ``bad``, ``ambiguous``)."""
        return [item for row in self.rows.values() for item in getattr(row, attribute)]


def check_results(results: dict, golden=None, quantities=QUANTITIES, cases=None) -> Report:
    """Compare ``results`` (``{"<case>/<key>": array}``) with the golden cases.

    ``quantities`` and ``cases`` restrict what is required and compared.
    Missing keys and arrays of the wrong shape are recorded by name in the report.
    """
    golden = load_golden() if golden is None else golden
    unknown = sorted(set(quantities) - set(QUANTITIES))
    if unknown:
        raise ValueError(f"unknown quantity {', '.join(unknown)}; choose from {', '.join(QUANTITIES)}")
    names = list(golden) if cases is None else list(cases)
    unknown = sorted(set(names) - set(golden))
    if unknown:
        raise ValueError(f"unknown case {', '.join(unknown)}; choose from {', '.join(golden)}")
    report = Report()
    for q in QUANTITIES:                       # every requested row is shown, in a fixed order
        if q in quantities:
            for dtype in sorted({str(golden[n]["dtype"]) for n in names}, reverse=True):
                report.row(q, dtype)
    expected = set()
    for name in names:
        expected |= _check_case(name, golden[name], results, report)
    report.unexpected = sorted(k for k in results if k not in expected)
    return report


def _check_case(name: str, ref: dict, results: dict, report: Report) -> set:
    """Check one case's keys; return the result keys it expects."""
    dtype = str(ref["dtype"])
    seen, got = set(), {}
    for key in output_keys(ref):
        rkey = f"{name}/{key}"
        seen.add(rkey)
        q = quantity_of(key)
        if (q, dtype) not in report.rows:
            continue
        row = report.row(q, dtype)
        if rkey not in results:
            row.missing.append(rkey)
            continue
        value = np.asarray(results[rkey])
        variable = key.startswith("sel/") and key.rsplit("/", 1)[1] in _VARIABLE_LENGTH
        if not (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)):
            row.bad.append(f"{rkey} has dtype {value.dtype}, expected real numbers")
        elif variable and value.ndim != 1:
            row.bad.append(f"{rkey} has shape {value.shape}, expected 1-D")
        elif not variable and value.shape != ref[key].shape:
            row.bad.append(f"{rkey} has shape {value.shape}, expected {ref[key].shape}")
        else:
            got[key] = value
    for key, value in got.items():
        q = quantity_of(key)
        scale = None
        if q == "full_stats":
            _, layer, stat = key.split("/")
            scale = full_stat_scale(np.asarray(ref[f"gram{layer[1:]}"], np.float64), stat)
        if not key.startswith("sel/"):
            report.row(q, dtype).record_error(f"{name}/{key}", max_rel_error(value, ref[key], scale))
    for prefix in sorted({k.rsplit("/", 1)[0] for k in got if k.startswith("sel/")}):
        _, metric, strategy, layer = prefix.split("/")
        result = check_selection(np.asarray(ref[f"gram{layer[1:]}"], np.float64), metric, strategy,
                                 {f: ref[f"{prefix}/{f}"] for f in ("indices", "removed", "value", "values", "margins")},
                                 **{f: got.get(f"{prefix}/{f}") for f in ("indices", "removed", "value", "values")},
                                 threshold=AMBIGUITY[dtype], rtol=TOLERANCES[dtype]["values"])
        _record_selection(result, f"{name}/{prefix}", lambda q: report.rows.get((q, dtype)))
    return seen


def _record_selection(check, where: str, row) -> None:
    """Enter what comparing one selection found (a :class:`~dba_ref.agreement.SelectionCheck`) into the
    report's rows (``row(quantity)`` gives one, or None for a quantity not checked)."""
    if check.verdict is not None:
        for f in ("indices", "removed"):
            if row(f) is not None:
                row(f).record_verdict(f"{where}/{f}", check.verdict)
    if check.value_error is not None and row("value") is not None:
        row("value").record_error(f"{where}/value", check.value_error, check.value_allowed)
    if row("values") is not None:
        if check.values_problem:
            row("values").failed.append(f"{where}/values: {check.values_problem}")
        elif check.values_error is not None:
            row("values").record_error(f"{where}/values", check.values_error, check.values_allowed)


def format_report(report: Report, max_listed: int = 20) -> str:
    """The report as text: the table, then missing keys, wrong shapes, failures and ambiguous calls by name."""
    header = ("quantity", "dtype", "compared", "max rel error", "tolerance", "result", "worst key")
    lines = []
    for row in report.rows.values():
        if row.exact:
            error, tol = f"{len(row.failed)} differ", "exact"
        else:
            error, tol = (f"{row.max_error:.2e}" if row.compared else "-"), f"{row.tolerance:.0e}"
        result = "pass" if row.passed else "FAIL"
        notes = [f"{len(getattr(row, a))} {label}" for a, label in (("missing", "missing"), ("bad", "wrong shape"),
                                                                   ("ambiguous", "ambiguous")) if getattr(row, a)]
        if notes:
            result += f" ({', '.join(notes)})"
        lines.append((row.quantity, row.dtype, str(row.compared), error, tol, result, row.worst_key))
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *lines]]
    for title, items in (("missing keys", report.listed("missing")),
                         ("wrong shape or dtype", report.listed("bad")),
                         ("failures", report.listed("failed")),
                         ("ambiguous: near-ties, not failures (spec §5)", report.listed("ambiguous")),
                         ("unexpected keys (ignored)", report.unexpected)):
        if items:
            text.append(f"\n{title} ({len(items)}):")
            text += [f"  {item}" for item in items[:max_listed]]
            if len(items) > max_listed:
                text.append(f"  ... and {len(items) - max_listed} more")
    n_amb = len(report.listed("ambiguous"))
    text.append(f"\nconformance: {'PASS' if report.passed else 'FAIL'}"
                + (f" ({n_amb} ambiguous near-tie{'s' if n_amb > 1 else ''})" if n_amb else ""))
    return "\n".join(text)
