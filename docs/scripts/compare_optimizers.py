"""Compare every optimizer of the package on MNIST-5k, 60 training digits per class.

Protocol (written into the page it produces, docs/optimizers/comparison.md):

- data: for each seed s in SEEDS, a stratified draw of 60 digits per class for
  training and a disjoint 20 per class for validation from the bundled MNIST-5k;
  the remaining 4,200 digits are the test set (``make_split(..., seed=s)``);
- model: MLP 784 → 256 → 10, ReLU, float64, initialised with seed s;
- training: EPOCHS epochs, batches of BATCH (AdAdaGrad: the initial batch size),
  shuffled with seed s; every other hyper-parameter at its default;
- learning rate: for each optimizer, the value of its grid with the best mean
  final validation accuracy over the seeds; the test accuracy of those same
  runs is reported (mean ± std over the seeds).

Then the batch size of AdAdaGrad-Norm over training for several η, and of
AdAdaGrad with its coordinate-wise test (seed 0, learning rate as chosen
above, initial batch ADAPTIVE_START).

Writes docs/optimizers/comparison.md, comparison.png, adadagrad_batch_size.png
and comparison_results.json. Run from the repository root::

    OMP_NUM_THREADS=1 python docs/scripts/compare_optimizers.py [--jobs 2] [--quick]

``--quick`` (1 seed, 3 epochs, 2 learning rates) checks that it runs and writes
into a temporary folder instead of docs/optimizers/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from dba_ref import MLP
from dba_ref.data import load_dataset, make_split
from dba_ref.optimizers import OPTIMIZERS, dba, make_optimizer
from dba_ref.training import train
from dba_ref._machine import cpu_model

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "optimizers"
SEEDS = (0, 1, 2)
EPOCHS = 20
BATCH = 32
HIDDEN = 256
PER_CLASS, VAL_PER_CLASS = 60, 20
ADAPTIVE_START = 8
ETAS = (0.1, 0.25, 0.5, 1.0)

SGD_GRID = (0.03, 0.1, 0.3, 1.0)
MOMENTUM_GRID = (0.01, 0.03, 0.1, 0.3)
ADAM_GRID = (1e-3, 3e-3, 1e-2, 3e-2)
ADAGRAD_GRID = (3e-3, 1e-2, 3e-2, 1e-1)
NORM_GRID = (0.3, 1.0, 3.0, 10.0)
#: run label -> (registry name, DBA-wrapped?, learning-rate grid, other hyper-parameters)
RUNS = {
    "sgd": ("sgd", False, SGD_GRID, {}),
    "momentum": ("momentum", False, MOMENTUM_GRID, {}),
    "nesterov": ("nesterov", False, MOMENTUM_GRID, {}),
    "adam": ("adam", False, ADAM_GRID, {}),
    "adagrad": ("adagrad", False, ADAGRAD_GRID, {}),
    "adagrad_norm": ("adagrad_norm", False, NORM_GRID, {}),
    "adadagrad": ("adadagrad", False, ADAGRAD_GRID, {}),
    "adadagrad (test=norm)": ("adadagrad", False, ADAGRAD_GRID, {"test": "norm"}),
    "adadagrad_norm": ("adadagrad_norm", False, NORM_GRID, {}),
    "adabelief": ("adabelief", False, ADAM_GRID, {}),
    "adan": ("adan", False, ADAM_GRID, {}),
    "diffgrad": ("diffgrad", False, ADAM_GRID, {}),
    "adamp": ("adamp", False, ADAM_GRID, {}),
    "sgdp": ("sgdp", False, MOMENTUM_GRID, {}),
    "enhanced_sgd": ("enhanced_sgd", False, (0.01, 0.03, 0.1, 0.3), {}),
    "dba(sgd)": ("sgd", True, (0.01, 0.03, 0.1, 0.3), {}),
    "dba(adam)": ("adam", True, ADAM_GRID, {}),
}
assert {name for name, _, _, _ in RUNS.values()} == set(OPTIMIZERS), "every optimizer of the registry is compared"


def build(name: str, wrapped: bool, lr: float, seed: int, extra: dict):
    hyper = {"learning_rate": lr, **extra}
    if name == "enhanced_sgd":
        hyper["seed"] = seed                         # its ε-greedy draws and noise follow the run's seed
    opt = make_optimizer(name, **hyper)
    return dba(opt) if wrapped else opt


def one_run(job: dict) -> dict:
    """Train one (optimizer, learning rate, seed); return validation curve, test accuracy, batch sizes."""
    seed = job["seed"]
    split = make_split(load_dataset("mnist5k"), per_class=PER_CLASS, seed=seed, val_per_class=VAL_PER_CLASS)
    model = MLP([784, HIDDEN, 10], seed=seed)
    optimizer = build(job["name"], job["wrapped"], job["lr"], seed, job["extra"])
    started = time.perf_counter()
    history = train(model, optimizer, split.X_train, split.y_train, split.X_val, split.y_val, epochs=job["epochs"],
                    batch_size=job["batch"], seed=seed, progress=False)
    test_loss, test_acc = model.evaluate(split.X_test, split.y_test)
    return {**job, "val_acc": [row["test_acc"] for row in history.epochs], "train_loss": history.final["train_loss"],
            "test_acc": test_acc, "test_loss": test_loss, "steps": len(history.steps["loss"]),
            "batch_sizes": history.steps["batch_size"] if history.config["adaptive_batch"] else None,
            "requested_batch_sizes": history.steps.get("requested_batch_size"),
            "seconds": time.perf_counter() - started, "n_test": int(split.y_test.size)}


def run_all(jobs: list, n_jobs: int) -> list:
    if n_jobs == 1:
        results = []
        for k, job in enumerate(jobs, 1):
            results.append(one_run(job))
            print(f"[{k}/{len(jobs)}] {job['label']} lr={job['lr']:g} seed={job['seed']}: "
                  f"val {results[-1]['val_acc'][-1]:.4f} ({results[-1]['seconds']:.1f} s)", file=sys.stderr, flush=True)
        return results
    with ProcessPoolExecutor(n_jobs) as pool:
        return list(pool.map(one_run, jobs))


def choose(results: list, seeds) -> dict:
    """Per label, the learning rate with the best mean final validation accuracy (ties: the smaller rate)."""
    chosen = {}
    for label, (_, _, grid, _) in RUNS.items():
        scores = {lr: np.mean([r["val_acc"][-1] for r in results if r["label"] == label and r["lr"] == lr])
                  for lr in grid if any(r["label"] == label and r["lr"] == lr for r in results)}
        best = max(scores, key=lambda lr: (scores[lr], -lr))
        runs = [r for r in results if r["label"] == label and r["lr"] == best]
        assert len(runs) == len(seeds)
        chosen[label] = {"lr": best, "grid": sorted(scores), "runs": runs,
                         "edge": best in (min(scores), max(scores))}
    return chosen


def machine() -> str:
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs (shared), {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, NumPy {np.__version__}")


def figures(chosen: dict, sweep: list, out: Path) -> None:
    import matplotlib.pyplot as plt

    from dba_ref.plots import plot_batch_sizes
    from dba_ref.training import History

    labels = sorted(chosen, key=lambda lab: np.mean([r["test_acc"] for r in chosen[lab]["runs"]]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    means = [np.mean([r["test_acc"] for r in chosen[lab]["runs"]]) for lab in labels]
    stds = [np.std([r["test_acc"] for r in chosen[lab]["runs"]]) for lab in labels]
    ax1.errorbar(means, range(len(labels)), xerr=stds, fmt="o", capsize=3)
    ax1.set_yticks(range(len(labels)), [f"{lab}  (lr {chosen[lab]['lr']:g})" for lab in labels])
    ax1.set_xlabel(f"test accuracy, mean ± std over {len(chosen[labels[0]]['runs'])} seeds")
    ax1.grid(alpha=0.3)
    ax1.set_title(f"MNIST-5k, {PER_CLASS}/class, {EPOCHS} epochs")
    cmap = plt.get_cmap("tab20")
    for k, lab in enumerate(reversed(labels)):
        curves = np.array([r["val_acc"] for r in chosen[lab]["runs"]])
        ax2.plot(np.arange(curves.shape[1]), curves.mean(axis=0), color=cmap(k % 20), lw=1.2, label=lab)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation accuracy (mean over seeds)")
    ax2.set_ylim(0.5, 1.0)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "comparison.png", dpi=110)
    plt.close(fig)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4))
    for k, run in enumerate(sweep):
        history = History(config={"n_train": 10 * PER_CLASS, "batch_size": run["batch"]},
                          steps={"batch_size": run["batch_sizes"], "requested_batch_size": run["requested_batch_sizes"]})
        color = plt.get_cmap("viridis")(k / max(1, len(sweep) - 1))
        style = "--" if run["label"] == "adadagrad" else "-"
        plot_batch_sizes(ax1, history, x="epoch", label=run["sweep_label"], color=color).set_linestyle(style)
        ax2.plot(run["val_acc"], style, color=color, lw=1.2, label=run["sweep_label"])
    ax1.set_title(f"batch size in force (initial {ADAPTIVE_START}, cap {10 * PER_CLASS}); dots: epoch ends")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation accuracy")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "adadagrad_batch_size.png", dpi=110)
    plt.close(fig)


def page(chosen: dict, sweep: list, command: str, seconds: float, seeds) -> str:
    rows = []
    for label in sorted(chosen, key=lambda lab: -np.mean([r["test_acc"] for r in chosen[lab]["runs"]])):
        c = chosen[label]
        acc = np.array([r["test_acc"] for r in c["runs"]])
        val = np.array([r["val_acc"][-1] for r in c["runs"]])
        loss = np.mean([r["train_loss"] for r in c["runs"]])
        steps = np.mean([r["steps"] for r in c["runs"]])
        grid = ", ".join(f"{lr:g}" for lr in c["grid"])
        rows.append(f"| {label} | {c['lr']:g}{' (edge)' if c['edge'] else ''} | {grid} | "
                    f"{100 * val.mean():.2f} | **{100 * acc.mean():.2f} ± {100 * acc.std():.2f}** | {loss:.4f} | "
                    f"{steps:.0f} |")
    sweep_rows = [f"| {r['sweep_label']} | {r['lr']:g} | {r['batch_sizes'][0]} → {max(r['batch_sizes'])} | "
                  f"{r['steps']} | {next((k + 1 for k, b in enumerate(r['batch_sizes']) if b >= 10 * PER_CLASS), '—')} | "
                  f"{100 * r['val_acc'][-1]:.2f} | {100 * r['test_acc']:.2f} |" for r in sweep]
    n_test = chosen["sgd"]["runs"][0]["n_test"]
    return f"""# Comparison of the optimizers on MNIST-5k, {PER_CLASS} digits per class

*Generated by `docs/scripts/compare_optimizers.py`; do not edit by hand.*

- **Command:** `{command}`
- **Date:** {datetime.date.today().isoformat()}; **machine:** {machine()}; wall time {seconds / 60:.0f} min.
- **Data:** for each seed s ∈ {{{", ".join(map(str, seeds))}}}, a stratified draw of {PER_CLASS} training and a
  disjoint {VAL_PER_CLASS} validation digits per class from the bundled MNIST-5k; the other {n_test} digits are the
  test set.
- **Model and budget:** MLP 784 → {HIDDEN} → 10 (ReLU, float64, initialised with seed s); {EPOCHS} epochs of
  batches of {BATCH}, shuffled with seed s. AdAdaGrad(-Norm) start at {BATCH} and grow their batches (the
  test's η at its default 0.1; "adadagrad (test=norm)" is AdaGrad with the norm test, the configuration of the
  authors' experiments). Every hyper-parameter other than the learning rate is at its default (`dba-ref optimizers --defaults`);
  DBA uses its defaults (greedy, `mean_variance`, `min_size` 2).
- **Learning rate:** chosen per optimizer on the validation split: the grid value with the best validation
  accuracy after the last epoch, averaged over the seeds. "(edge)" marks a choice at the end of the grid, where a
  wider grid might do better. The test accuracy is that of the same runs.

A small budget on a tiny training set, three seeds and a four-point learning-rate grid: read the standard
deviations before the ranking, and do not extrapolate the ranking to larger problems. It checks that every
optimizer trains this network with a tuned learning rate; it is not a benchmark.

| optimizer | learning rate | grid | validation acc. (%) | test acc. (%), mean ± std | final train loss | steps |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

![test accuracy and validation curves](comparison.png)

## AdAdaGrad: the batch size over training

Seed 0, initial batch {ADAPTIVE_START}, learning rate as chosen above, {EPOCHS} epochs. With the norm test the
batch grows whenever σ²/(B‖ḡ‖²) > η², i.e. whenever the noise-to-signal ratio σ²/‖ḡ‖² of a single sample's
gradient exceeds η² B; the smaller η, the stricter the test. With the coordinate-wise test (AdAdaGrad's default)
one coordinate whose mean gradient is near zero is enough to fail it: on MNIST a pixel that is non-zero in a
single sample of the batch already asks for B/η² samples. "first full-batch step" is the first step whose batch
is the whole training set.

| run | learning rate | batch size | steps | first full-batch step | final val. acc. (%) | test acc. (%) |
|---|---|---|---|---|---|---|
{chr(10).join(sweep_rows)}

![AdAdaGrad batch size over training](adadagrad_batch_size.png)
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default: 1)")
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epochs, 2 learning rates, temporary output")
    args = parser.parse_args(argv)
    global EPOCHS
    seeds, out = SEEDS, OUT
    if args.quick:
        EPOCHS, seeds = 3, (0,)
        for label, (name, wrapped, grid, extra) in RUNS.items():
            RUNS[label] = (name, wrapped, grid[1:3], extra)
        out = Path(tempfile.mkdtemp(prefix="compare_optimizers_"))
    command = "OMP_NUM_THREADS=1 python docs/scripts/compare_optimizers.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    started = time.perf_counter()
    jobs = [{"label": label, "name": name, "wrapped": wrapped, "lr": lr, "seed": seed, "epochs": EPOCHS, "batch": BATCH,
             "extra": extra} for label, (name, wrapped, grid, extra) in RUNS.items() for lr in grid for seed in seeds]
    results = run_all(jobs, args.jobs)
    chosen = choose(results, seeds)
    sweep_jobs = [{"label": "adadagrad_norm", "name": "adadagrad_norm", "wrapped": False,
                   "lr": chosen["adadagrad_norm"]["lr"], "seed": 0, "epochs": EPOCHS, "batch": ADAPTIVE_START,
                   "extra": {"eta": eta}, "sweep_label": f"AdAdaGrad-Norm, norm test, η = {eta:g}"} for eta in ETAS]
    sweep_jobs.append({"label": "adadagrad", "name": "adadagrad", "wrapped": False, "lr": chosen["adadagrad"]["lr"],
                       "seed": 0, "epochs": EPOCHS, "batch": ADAPTIVE_START, "extra": {"eta": 0.1},
                       "sweep_label": "AdAdaGrad, coordinate-wise test, η = 0.1"})
    sweep = run_all(sweep_jobs, args.jobs)
    seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    figures(chosen, sweep, out)
    (out / "comparison.md").write_text(page(chosen, sweep, command, seconds, seeds))
    (out / "comparison_results.json").write_text(json.dumps(
        {"runs": results, "adadagrad_sweep": sweep,
         "chosen": {label: c["lr"] for label, c in chosen.items()}}, indent=0, default=float))
    print(f"wrote {out / 'comparison.md'} and its figures in {seconds / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
