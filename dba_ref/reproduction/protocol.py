"""The reproduction protocol (spec §9) written down as data: what is run, and in which order.

Vocabulary
----------
setting
    The data and the budget, fixed for every method compared in it:
    data set, training images per class, hidden width, batch size, epochs and
    the size of the validation slice (a stratified draw from the pool,
    disjoint from the training slice; on MNIST-5k the test set is what
    neither slice took, on Fashion-MNIST the official 10k test set).
method
    An optimizer with its fixed options. Baselines are the optimizers of
    :data:`dba_ref.optimizers.OPTIMIZERS` (read when the protocol is built, so
    optimizers added to the package join by themselves). DBA methods wrap SGD
    or Adam with one metric × strategy, and a few ``min_size`` / ``tol``
    values, each its own method. A method's learning rate is tuned.
cell
    A setting, the methods compared in it, and what it is for: ``main``
    (the headline table), a ``hidden`` width check, one of the readings of
    the paper tried to close a gap (``sum-over-batch``, ``full-batch``,
    ``longer``, ``peek``), or ``full-data``, the whole training pool, for the
    convergence-speed claim (see ``READINGS``).

Fair tuning
-----------
Every method gets the same budget: one run per learning rate of the grid
``default_lr × m`` (``m`` in ``lr_multipliers``, ``default_lr`` the
optimizer's own default; see :attr:`Method.default_lr` for the one exception)
on each of the ``tune_seeds``. A run is scored by its
accuracy on the validation slice after the last epoch; the best learning rate
is then trained once per ``final_seeds`` seed and evaluated once on the test
set. Different seeds draw different slices and initialisations.

Convergence speed
-----------------
The abstract's first claim, that DBA "significantly improves the speed of
model convergence", is measured on the final runs of the ``CONVERGENCE_READINGS``
cells against ``CONVERGENCE_TARGETS``, fixed here before any curve was looked
at (the measurement: :mod:`~dba_ref.reproduction.convergence`).

:meth:`Protocol.describe` and :meth:`Protocol.choices` write this down with a
protocol's own numbers (grid, seeds, data sets, widths) for the report.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace

from .._validation import check_choice
from ..metrics import METRIC_NAMES
from ..optimizers import OPTIMIZERS, Optimizer, make_optimizer
from .readings import sum_over_batch

#: The abstract's numbers (spec §1). ``baseline`` is implied: 100 − err_DBA / (1 − RER).
PAPER = {
    60: {"regime": "1% of MNIST (60 per class)", "dba": 97.79, "rer": 81.78, "baseline": 100 - 2.21 / 0.1822},
    10: {"regime": "10 images per class", "dba": 97.44, "rer": 88.07, "baseline": 100 - 2.56 / 0.1193},
}

#: What each kind of cell is for (the report prints these).
READINGS = {
    "main": "the protocol, with the reference DBA (the update is the mean over the selection, spec §6)",
    "hidden": "the same protocol with another hidden width, on a subset of methods",
    "sum-over-batch": "DBA(SGD) updates with Σ_{i∈S} g_i / B (the rejected samples' terms dropped from the "
                      "batch mean) instead of the mean over the selection; its steps being |S|/B times shorter, "
                      "its learning-rate grid is centred 10 times higher (same number of tuning runs)",
    "full-batch": "the whole training slice as one batch, so DBA selects from every training image at each step",
    "longer": "three times the epoch budget",
    "peek": "the final configurations of the main cell with the test set evaluated after every epoch, "
            "to see what reporting the best epoch on test would give (not the protocol's number)",
    "full-data": "every training image the pool has beside the validation slice (and, on MNIST-5k, the test "
                 "slice), the regime a convergence-speed claim is most likely about; the paper's four methods, "
                 "the same fair tuning",
}

#: The abstract's first claim (the paper's summary speaks of "significant speed-ups").
CONVERGENCE_CLAIM = "We present results showing DBA significantly improves the speed of model convergence"
#: The cells whose final runs measure the convergence-speed claim.
CONVERGENCE_READINGS = ("main", "full-data")
#: The convergence targets, from the cell's best baseline (chosen on validation) over its final seeds:
#: ``name: (curve, direction, offset)``; a run reaches a target at the first evaluation where
#: ``curve ≥ level`` (direction +1) or ``curve ≤ level`` (−1), ``level`` = the best baseline's mean final
#: value of ``curve`` + ``offset``. Validation accuracy is a fraction: −0.01 is 1 point.
CONVERGENCE_TARGETS = {
    "accuracy": ("val_acc", +1, -0.01),
    "loss": ("train_loss", -1, 0.0),
}

#: The data sets a protocol may use, and how each is split (the report's protocol section quotes the ones used).
DATASET_SPLITS = {
    "mnist5k": "MNIST-5k (the bundled 5,000 MNIST digits) with the training slice drawn per class and the test set "
               "everything the training and validation slices did not take",
    "fashion-mnist": "Fashion-MNIST with the official 10k test set",
}

#: The Σ/B reading's grid is centred this many times above its base's default (its steps are ``|S|/B`` shorter).
SUM_OVER_BATCH_LR_SHIFT = 10.0
#: The DBA bases the paper names.
DBA_BASES = ("sgd", "adam")
#: DBA strategies compared (exhaustive is excluded: B ≤ 20 only; "all" is the base optimizer itself).
DBA_STRATEGIES = ("greedy", "prefix")
#: Extra (metric, strategy, min_size, tol) variants beyond the defaults min_size=2, tol=0.
DBA_VARIANTS = (("variance", "greedy", 0.5, 0.0), ("normalized_variance", "greedy", 0.5, 0.0),
                ("mean_variance", "greedy", 2, 0.05))


def dba_options_label(metric: str, strategy: str, min_size: int | float, tol: float) -> str:
    """DBA's options as labels show them, e.g. ``variance/greedy min 0.5`` (``min`` and ``tol`` when not 2 and 0)."""
    return (f"{metric}/{strategy}" + (f" min {min_size:g}" if min_size != 2 else "")
            + (f" tol {tol:g}" if tol else ""))


@dataclass(frozen=True)
class Setting:
    """Data and budget shared by every method of a cell."""

    dataset: str
    per_class: int
    hidden: int
    batch_size: int | None      # None: the whole training slice is one batch
    epochs: int
    val_per_class: int

    def __post_init__(self):
        check_choice(self.dataset, DATASET_SPLITS, "dataset")

    @property
    def key(self) -> str:
        """File-name-safe identifier, e.g. ``mnist5k-pc60-h256-b64-e100-v50``."""
        batch = "full" if self.batch_size is None else self.batch_size
        return f"{self.dataset}-pc{self.per_class}-h{self.hidden}-b{batch}-e{self.epochs}-v{self.val_per_class}"

    def describe(self) -> str:
        batch = "the whole slice" if self.batch_size is None else str(self.batch_size)
        return (f"{self.dataset}, {self.per_class} per class, 784-{self.hidden}-10 ReLU, batch {batch}, "
                f"{self.epochs} epochs, validation {self.val_per_class} per class")


@dataclass(frozen=True)
class Method:
    """An optimizer with fixed options; only its learning rate is tuned.

    ``optimizer`` is a registry name: the baseline optimizer, or DBA's base when
    ``dba`` is true. ``normalise`` is ``"selection"`` (the reference, spec §6)
    or ``"batch"`` (the :func:`~dba_ref.reproduction.readings.sum_over_batch` reading).
    """

    optimizer: str
    dba: bool = False
    metric: str = "mean_variance"
    strategy: str = "greedy"
    min_size: int | float = 2
    tol: float = 0.0
    normalise: str = "selection"

    def __post_init__(self):
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.metric, METRIC_NAMES, "metric")
        check_choice(self.normalise, ("selection", "batch"), "normalise")

    @property
    def key(self) -> str:
        """File-name-safe identifier, e.g. ``dba-sgd-mean_variance-greedy-m2-t0``."""
        if not self.dba:
            return self.optimizer
        key = f"dba-{self.optimizer}-{self.metric}-{self.strategy}-m{self.min_size:g}-t{self.tol:g}"
        return key + ("-sumB" if self.normalise == "batch" else "")

    @property
    def label(self) -> str:
        """Display name, e.g. ``DBA(SGD) mean_variance/greedy`` or ``DBA(SGD) variance/greedy min 0.5``."""
        if not self.dba:
            return self.optimizer
        options = dba_options_label(self.metric, self.strategy, self.min_size, self.tol)
        return f"DBA({self.optimizer}) {options}" + (" Σ/B" if self.normalise == "batch" else "")

    @property
    def default_lr(self) -> float:
        """The centre of the tuning grid: the registry factory's default ``learning_rate``.

        For the Σ/B reading it is ``SUM_OVER_BATCH_LR_SHIFT`` times that: its steps are
        ``|S|/B`` times shorter than DBA's, so the same grid would sit too low.
        """
        shift = SUM_OVER_BATCH_LR_SHIFT if self.dba and self.normalise == "batch" else 1.0
        return default_learning_rate(self.optimizer) * shift

    def learning_rates(self, multipliers) -> list[float]:
        """The tuning grid ``default_lr × m``, rounded to 3 significant digits."""
        return [float(f"{self.default_lr * m:.3g}") for m in multipliers]

    def build(self, learning_rate: float, hyperparams: dict | None = None) -> Optimizer:
        """The optimizer this method trains with at ``learning_rate`` (and ``hyperparams`` of the optimizer or
        DBA's base), built by :func:`~dba_ref.optimizers.make_optimizer`.

        The Σ/B reading is that DBA optimizer wrapped by
        :func:`~dba_ref.reproduction.readings.sum_over_batch` (not a registry option).
        """
        options = {**(hyperparams or {}), "learning_rate": learning_rate}
        if not self.dba:
            return make_optimizer(self.optimizer, **options)
        opt = make_optimizer("dba", base=self.optimizer, metric=self.metric, strategy=self.strategy,
                             min_size=self.min_size, tol=self.tol, **options)
        return sum_over_batch(opt) if self.normalise == "batch" else opt

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "optimizer": self.optimizer, "dba": self.dba,
                "metric": self.metric if self.dba else None, "strategy": self.strategy if self.dba else None,
                "min_size": self.min_size if self.dba else None, "tol": self.tol if self.dba else None,
                "normalise": self.normalise if self.dba else None}


@dataclass(frozen=True)
class Cell:
    """A setting, the methods compared in it, and the reading it stands for (a key of ``READINGS``)."""

    reading: str
    setting: Setting
    methods: tuple
    test_every_epoch: bool = False

    def __post_init__(self):
        check_choice(self.reading, READINGS, "reading")

    @property
    def name(self) -> str:
        return f"{self.reading}: {self.setting.key}"

    @property
    def final_role(self) -> str:
        """Folder of the final runs: ``final``, or ``final-peek`` when the test set is seen every epoch."""
        return "final-peek" if self.test_every_epoch else "final"


@dataclass(frozen=True)
class Protocol:
    """Everything a reproduction runs.

    ``cells`` are what the report shows. ``schedule`` is the order they run
    in: cells again, possibly holding a part of a reported cell's methods, so
    that what matters most finishes first when a reproduction is stopped
    (empty: ``cells`` in order). A run two entries share is done once.
    """

    name: str
    cells: tuple
    lr_multipliers: tuple
    tune_seeds: tuple
    final_seeds: tuple
    notes: tuple = field(default_factory=tuple)
    schedule: tuple = field(default_factory=tuple)

    def __post_init__(self):
        if not self.schedule:
            object.__setattr__(self, "schedule", self.cells)
        reported = {(c.reading, c.setting, m) for c in self.cells for m in c.methods}
        scheduled = {(c.reading, c.setting, m) for c in self.schedule for m in c.methods}
        if scheduled != reported:
            raise ValueError("the schedule must run exactly the methods of the reported cells")
        regimes = [(c.setting.dataset, c.setting.per_class) for c in self.cells if c.reading == "main"]
        if len(regimes) != len(set(regimes)):
            raise ValueError("a protocol has at most one main cell per data set and images per class")

    @property
    def tuning_budget(self) -> int:
        """Tuning runs per method and cell: the same for every method."""
        return len(self.lr_multipliers) * len(self.tune_seeds)

    def cell_runs(self, cell: Cell) -> int:
        """Runs one cell asks for: per method, its tuning budget and one final run per final seed."""
        return len(cell.methods) * (self.tuning_budget + len(self.final_seeds))

    def n_runs(self, scheduled: bool = False) -> int:
        """Runs the protocol asks for, counting a run shared by two cells (or schedule entries) twice."""
        return sum(self.cell_runs(c) for c in (self.schedule if scheduled else self.cells))

    def describe(self) -> list[str]:
        """What is run, in sentences built from this protocol's data: size, model and data, tuning, final runs."""
        datasets = dict.fromkeys(c.setting.dataset for c in self.cells)
        return [
            f"Protocol `{self.name}`: {len(self.cells)} cells, {self.n_runs()} runs asked for "
            "(a run two cells share counted twice).",
            "Model 784 → hidden → 10, ReLU, float64, He-uniform initialisation; "
            + "; ".join(DATASET_SPLITS[d] for d in datasets) + ".",
            f"Fair tuning: every method gets {self.tuning_budget} tuning runs: learning rate = the optimizer's "
            "default × " + ", ".join(f"{m:.3g}" for m in self.lr_multipliers)
            + f", on tuning seed(s) {', '.join(map(str, self.tune_seeds))}, scored by validation accuracy after "
            "the last epoch (validation: a stratified draw of the pool disjoint from the training slice). "
            "DBA's own parameters (metric, strategy, min_size, tol) are separate methods, each with that same "
            "budget; the best DBA method and the best baseline of a cell are chosen on validation too.",
            f"Final runs: the selected learning rate on seeds {', '.join(map(str, self.final_seeds))} "
            "(each seed draws its own slices and initialisation), the test set evaluated once, after the last "
            "epoch. Same epochs and batch size for every method of a cell; steps and samples processed are "
            "listed per method.",
        ]

    def choices(self) -> str:
        """What this protocol chooses where the paper's abstract is silent, from its cells."""
        main = sorted({c.setting.hidden for c in self.cells if c.reading == "main"})
        checks = sorted({c.setting.hidden for c in self.cells if c.reading == "hidden"} - set(main))
        widths = (f"{_and(main)} in every main cell" if len(main) == 1 else f"{_and(main)} in the main cells")
        widths += f"; {_and(checks)} as checks" if checks else ""
        text = (f"Where the abstract is silent this reproduction chooses: the hidden width ({widths}), the batch "
                "size, the epoch budget (both in each cell's title), the initialisation, and a validation slice "
                "drawn from the pool outside the regime's training images (labelled data the regime itself does "
                "not have, used for tuning only).")
        if any(c.setting.dataset == "mnist5k" for c in self.cells):
            text += " On MNIST-5k the test set is the rest of the 5,000 images, not the official 10k."
        return text


def _and(items) -> str:
    """``1``, ``1 and 2``, ``1, 2 and 3``."""
    items = [str(i) for i in items]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def default_learning_rate(name: str) -> float:
    """Default ``learning_rate`` of registry optimizer ``name`` (``ValueError`` if it has none)."""
    factory, _ = OPTIMIZERS[check_choice(name, OPTIMIZERS, "optimizer")]
    param = inspect.signature(factory).parameters.get("learning_rate")
    if param is None or param.default is inspect.Parameter.empty:
        raise ValueError(f"optimizer {name!r} has no default learning_rate to centre a tuning grid on")
    return float(param.default)


def baseline_methods() -> tuple[list[Method], list[str]]:
    """Every registry optimizer as a baseline, and a note for each one left out (and why).

    The registry holds plain optimizers (they receive the batch-mean gradient)
    and adaptive-batch ones such as AdAdaGrad (they receive the per-sample
    signals and choose the next batch size); the trainer runs both, so both
    are baselines. One without a default learning rate cannot be given the
    same tuning grid and is left out.
    """
    methods, skipped = [], []
    for name in OPTIMIZERS:
        try:
            default_learning_rate(name)
            make_optimizer(name)
        except (TypeError, ValueError) as exc:
            skipped.append(f"{name}: {exc}")
            continue
        methods.append(Method(name))
    return methods, skipped


def dba_methods(bases=DBA_BASES) -> list[Method]:
    """DBA around each base with every metric × strategy, then the ``DBA_VARIANTS``."""
    methods = [Method(b, dba=True, metric=m, strategy=s) for b in bases for m in METRIC_NAMES for s in DBA_STRATEGIES]
    methods += [Method(b, dba=True, metric=m, strategy=s, min_size=ms, tol=t)
                for b in bases for m, s, ms, t in DBA_VARIANTS]
    return methods


def core_methods() -> tuple:
    """The paper's four: SGD, Adam, DBA(SGD), DBA(Adam) with the reference defaults."""
    return (Method("sgd"), Method("adam"), Method("sgd", dba=True), Method("adam", dba=True))


def full_protocol(datasets=("mnist5k", "fashion-mnist")) -> Protocol:
    """The real protocol: hidden 256 everywhere, every method, 5 seeds; readings and width checks on MNIST-5k.

    Budget per run: 100 epochs of batch 64 (30 on the whole of Fashion-MNIST:
    844 steps an epoch). The schedule puts first what tests the headline claims
    when a reproduction is stopped early: MNIST-5k at 10 per class, the paper's
    four methods at 60 per class, the readings and the width checks at 10 per
    class, then the other methods at 60 per class, the 60-per-class checks, the
    whole of MNIST-5k, and Fashion-MNIST last.

    The ``full-data`` cells take every training image: MNIST-5k's 400 per class
    (its 500 per class less 50 for validation and 50 for the test set),
    Fashion-MNIST's 5,400 per class (its 6,000 less 600 for validation; the
    official 10k test set).
    """
    baselines, skipped = baseline_methods()
    everything = tuple(baselines + dba_methods())
    core = core_methods()
    sum_b = (Method("sgd"), Method("sgd", dba=True, normalise="batch"),
             Method("sgd", dba=True, strategy="prefix", normalise="batch"))

    def setting(dataset, per_class, hidden=256, batch_size=64, epochs=100, val_per_class=50):
        return Setting(dataset, per_class, hidden, batch_size, epochs, val_per_class)

    cells, schedule = [], []
    if "mnist5k" in datasets:
        main = {pc: Cell("main", setting("mnist5k", pc), everything) for pc in (10, 60)}
        readings = [Cell("sum-over-batch", setting("mnist5k", pc), sum_b) for pc in (10, 60)]
        readings += [Cell("peek", setting("mnist5k", pc), core, test_every_epoch=True) for pc in (10, 60)]
        checks = {pc: [Cell("full-batch", setting("mnist5k", pc, batch_size=None, epochs=300), core),
                       Cell("longer", setting("mnist5k", pc, epochs=300), core),
                       Cell("hidden", setting("mnist5k", pc, hidden=100), core),
                       Cell("hidden", setting("mnist5k", pc, hidden=1000), core)] for pc in (10, 60)}
        cells += [main[10], main[60], *readings, *checks[10], *checks[60]]
        rest_dba = tuple(m for m in everything if m.dba and m not in core and m.min_size == 2 and not m.tol)
        rest = tuple(m for m in everything if m not in core and m not in rest_dba)
        whole = Cell("full-data", setting("mnist5k", 400), core)
        cells.append(whole)
        schedule += [main[10], replace(main[60], methods=core), *readings, *checks[10],
                     replace(main[60], methods=rest_dba), replace(main[60], methods=rest), *checks[60], whole]
    if "fashion-mnist" in datasets:
        fashion = [Cell("main", setting("fashion-mnist", pc), everything) for pc in (10, 60)]
        fashion.append(Cell("full-data", setting("fashion-mnist", 5400, epochs=30, val_per_class=600), core))
        cells += fashion
        schedule += fashion
    return Protocol("full", tuple(cells), lr_multipliers=(0.1, 10 ** -0.5, 1.0, 10 ** 0.5, 10.0),
                    tune_seeds=(100,), final_seeds=(0, 1, 2, 3, 4),
                    notes=tuple(f"optimizer left out: {s}" for s in skipped), schedule=tuple(schedule))


def quick_protocol() -> Protocol:
    """A smoke run of every code path in seconds (MNIST-5k only): its numbers mean nothing."""
    tiny = Setting("mnist5k", per_class=10, hidden=32, batch_size=32, epochs=3, val_per_class=20)
    core = core_methods()
    sum_b = (Method("sgd"), Method("sgd", dba=True, normalise="batch"))
    return Protocol("quick", (Cell("main", tiny, core), Cell("sum-over-batch", tiny, sum_b)),
                    lr_multipliers=(1.0, 3.0), tune_seeds=(100,), final_seeds=(0, 1),
                    notes=("smoke run: 3 epochs, hidden 32, 2 seeds; the numbers say nothing about the paper",))
