"""The plain statement: which of the abstract's claims the runs reproduce, each sentence computed from them.

The abstract claims, for each regime of ``PAPER``, a DBA test accuracy and a
relative error reduction (RER) against SGD and Adam. Each is judged on the
MNIST-5k main cell of its regime, comparing the best DBA method with the best
baseline, both chosen on validation (:mod:`~dba_ref.reproduction.collect`):

- the accuracy claim is reproduced when our mean is at least
  ``claim − max(ACC_TOLERANCE, 2·std)``;
- the RER claim when ours is at least ``claim − RER_TOLERANCE`` points;
- the direction (DBA above the best baseline at all) when it is higher with a
  paired t-test p < 0.05.

Then what each reading of the paper changed against its regime's main cell,
the spread of the DBA variants, and the other data sets (no claim to check).

The convergence-speed claim is judged per unit over every comparison of
:mod:`~dba_ref.reproduction.convergence` (cell × target × pairing), counting
those where DBA reaches the target sooner or later (p < 0.05): reproduced in
a unit when it is sooner in more than half of the comparisons tested and later
in none, not reproduced when it is sooner in no more of them than it is later,
mixed otherwise.
"""
from __future__ import annotations

import math
from dataclasses import replace

from .collect import CellResult, MethodResult, main_cell
from .convergence import UNITS, Speed, compare, convergence_cells, measured_cells, pairings, targets
from .protocol import PAPER, READINGS
from .statistics import paired_p, rer
from .tables import flagged_label, format_accuracy

#: An accuracy claim counts as reproduced when our mean is at least ``claim − max(ACC_TOLERANCE, 2·std)``.
ACC_TOLERANCE = 1.0
#: A relative-error-reduction claim counts as reproduced when ours is at least ``claim − RER_TOLERANCE`` points.
RER_TOLERANCE = 10.0


def accuracy_tolerance(m: MethodResult) -> float:
    """How far below a claimed accuracy our mean may be and still match it: ``max(ACC_TOLERANCE, 2·std)``."""
    return max(ACC_TOLERANCE, 2 * (0 if math.isnan(m.std) else m.std))


def judge(paper: dict, best_dba: MethodResult, best_base: MethodResult) -> tuple[bool, float, bool]:
    """``(accuracy reproduced, our RER, RER reproduced)`` for a regime of ``PAPER``, by the rules above."""
    acc_ok = best_dba.mean >= paper["dba"] - accuracy_tolerance(best_dba)
    ours_rer = rer(best_dba.mean, best_base.mean)
    return acc_ok, ours_rer, ours_rer >= paper["rer"] - RER_TOLERANCE


def better_baseline(sgd: MethodResult | None, adam: MethodResult | None) -> MethodResult | None:
    """The better (higher test mean) of our SGD and Adam, of those given; None if neither."""
    ours = [m for m in (sgd, adam) if m is not None]
    return max(ours, key=lambda m: m.mean) if ours else None


def incomplete_note(c: CellResult) -> str:
    """A warning when a cell is read before all its runs finished (its choices may still change)."""
    return "" if c.finished >= c.planned else f"(From an incomplete cell: {c.finished} of {c.planned} runs.)"


def versus(a: MethodResult, b: MethodResult) -> str:
    """``+1.23 points (RER 12.3%, paired t-test over 5 seeds p = 0.01)`` for a against b."""
    p, n = paired_p(a, b)
    return (f"{a.mean - b.mean:+.2f} points (RER {rer(a.mean, b.mean):.1f}%"
            + (f", paired t-test over {n} seeds p = {p:.2g}" if not math.isnan(p) else "") + ")")


def baseline_level(paper: dict, sgd: MethodResult | None, adam: MethodResult | None) -> str:
    """How the better of our SGD and Adam compares with the baseline level the paper's numbers imply."""
    better = better_baseline(sgd, adam)
    if better is None:
        return "SGD and Adam have not finished, so the paper's implied baseline level is not checked."
    gap = better.mean - paper["baseline"]
    return (f"The paper's numbers imply baselines near {paper['baseline']:.1f}%; our better of SGD and Adam "
            f"({flagged_label(better)}, {better.mean:.2f}%) is {abs(gap):.2f} points "
            f"{'above' if gap >= 0 else 'below'} it.")


def direction(dba_: MethodResult, base: MethodResult) -> str:
    """Whether DBA beats the best baseline at all, whatever the size of the gain (paired t-test, 5%)."""
    p, n = paired_p(dba_, base)
    better = dba_.mean > base.mean
    if math.isnan(p):
        return (f"Direction (DBA above the best baseline): {'yes' if better else 'no'}, "
                f"untested ({n} paired seeds).")
    significant = p < 0.05
    verdict = "reproduced" if better and significant else "not reproduced"
    return (f"Direction (DBA above the best baseline at all): **{verdict}**: "
            f"{'higher' if better else 'not higher'}, {'' if significant else 'not '}significant at 5% "
            f"(paired t-test over {n} seeds, p = {p:.2g}).")


def claim_statements(cells) -> list[str]:
    """One paragraph per claim of the abstract, from the MNIST-5k main cells."""
    out = []
    for pc, paper in PAPER.items():
        c = main_cell(cells, "mnist5k", pc)
        head = f"**{paper['regime']}: DBA {paper['dba']}% test accuracy, RER {paper['rer']}% vs SGD and Adam.**"
        if c is None:
            out.append(f"{head} Not run: this protocol has no MNIST-5k main cell for {pc} per class.")
            continue
        best_dba, best_base = c.best_dba(), c.best_baseline()
        sgd, adam = c.get("sgd"), c.get("adam")
        if best_dba is None or best_base is None:
            out.append(f"{head} Not run to the end: {c.finished} of {c.planned} runs of the cell finished, "
                       "too few to give a best DBA method and a best baseline.")
            continue
        acc_ok, _, rer_ok = judge(paper, best_dba, best_base)
        top_dba = max((m for m in c.dba() if m.finals), key=lambda m: m.mean)
        text = [head, incomplete_note(c),
                f"Best DBA method (chosen on validation): {flagged_label(best_dba)} at {format_accuracy(best_dba)}; "
                f"the best of all {sum(1 for m in c.dba() if m.finals)} DBA methods run, picked on test "
                f"(optimistic), is {flagged_label(top_dba)} at {top_dba.mean:.2f}%.",
                f"Accuracy claim: **{'reproduced' if acc_ok else 'not reproduced'}**: ours is "
                f"{paper['dba'] - best_dba.mean:.2f} points {'below' if best_dba.mean < paper['dba'] else 'above'} "
                f"the paper's {paper['dba']}% (criterion: within max({ACC_TOLERANCE:g}, 2·std) points).",
                f"Best baseline (chosen on validation): {flagged_label(best_base)} at {format_accuracy(best_base)}"
                + (f"; SGD {format_accuracy(sgd)}" if sgd else "")
                + (f"; Adam {format_accuracy(adam)}" if adam else "") + ".",
                baseline_level(paper, sgd, adam),
                f"RER claim: **{'reproduced' if rer_ok else 'not reproduced'}**: best DBA vs best baseline is "
                f"{versus(best_dba, best_base)}, against the paper's {paper['rer']}% "
                f"(criterion: within {RER_TOLERANCE:g} points)"
                + (f"; vs SGD {versus(best_dba, sgd)}" if sgd else "")
                + (f"; vs Adam {versus(best_dba, adam)}" if adam else "") + ".",
                direction(best_dba, best_base)]
        out.append(" ".join(t for t in text if t))
    return out


def most_favourable_dba(cells, per_class: int) -> tuple[float, str] | None:
    """The highest DBA test mean of any MNIST-5k cell of a regime, any method, peak epochs included.

    Picked after the fact on the test set: an upper bound on what any reading
    tried here could report, not a protocol number.
    """
    best = None
    for c in cells:
        if c.cell.setting.dataset != "mnist5k" or c.cell.setting.per_class != per_class:
            continue
        for m in c.dba():
            if not m.finals:
                continue
            candidates = [(m.mean, "last epoch")]
            if c.cell.test_every_epoch:
                candidates.append((float(m.peak_test().mean()), "best epoch on test"))
            for value, when in candidates:
                if best is None or value > best[0]:
                    best = (value, f"{m.method.label} in the {c.cell.reading} cell "
                                   f"({c.cell.setting.describe()}), {when}")
    return best


def summary_statement(cells) -> str | None:
    """The plain statement in one paragraph: how many of the abstract's numbers are reproduced, and by how much not."""
    parts, reproduced, checked, baseline_gaps = [], [], 0, []
    for pc, paper in PAPER.items():
        c = main_cell(cells, "mnist5k", pc)
        best_dba, best_base = (c.best_dba(), c.best_baseline()) if c else (None, None)
        if best_dba is None or best_base is None:
            continue
        checked += 2
        acc_ok, ours_rer, rer_ok = judge(paper, best_dba, best_base)
        if acc_ok:
            reproduced.append(f"{paper['dba']}%")
        if rer_ok:
            reproduced.append(f"RER {paper['rer']}%")
        p_value, n = paired_p(best_dba, best_base)
        text = (f"{paper['regime']}: DBA {best_dba.mean:.2f}% against the claimed {paper['dba']}% "
                f"({best_dba.mean - paper['dba']:+.2f} points), RER {ours_rer:.1f}% against {paper['rer']}% "
                f"({best_dba.mean - best_base.mean:+.2f} points over the best baseline"
                + (f", paired p = {p_value:.2g}" if not math.isnan(p_value) else "") + ")")
        favourable = most_favourable_dba(cells, pc)
        if favourable:
            text += (f"; the most favourable DBA mean of any cell here, picked after the fact on test, is "
                     f"{favourable[0]:.2f}% ({favourable[1]}), {paper['dba'] - favourable[0]:.2f} points short")
        parts.append(text)
        better = better_baseline(c.get("sgd"), c.get("adam"))
        if better is not None:
            gap = abs(better.mean - paper["baseline"])
            baseline_gaps.append((gap, gap <= accuracy_tolerance(better), paper["regime"]))
    if not checked:
        return None
    head = (f"**In short: {len(reproduced)} of the abstract's {checked} numbers checked here are reproduced"
            + (f" ({', '.join(reproduced)})" if reproduced else "") + ".** ")
    tail = ""
    if baseline_gaps and all(matched for _, matched, _ in baseline_gaps):
        tail = (f" The baseline levels the paper's numbers imply are matched within {max(baseline_gaps)[0]:.2f} "
                "points by our SGD/Adam: the discrepancy is in DBA's numbers, not in the baselines'.")
    elif baseline_gaps:
        missed = "; ".join(f"{regime}: {gap:.2f} points" for gap, matched, regime in baseline_gaps if not matched)
        tail = (f" The baseline levels the paper's numbers imply are not matched by our better of SGD and Adam "
                f"({missed}; criterion: within max({ACC_TOLERANCE:g}, 2·std) points): the baselines differ too.")
    return head + "; ".join(parts) + "." + tail


def reading_statements(cells) -> list[str]:
    """What each reading of the paper changed, against the main cell of the same regime."""
    out = []
    for c in cells:
        if c.cell.reading in ("main", "full-data") or c.cell.setting.dataset != "mnist5k":
            continue
        s = c.cell.setting
        main = main_cell(cells, s.dataset, s.per_class)
        what = f"*{c.cell.reading}* ({READINGS[c.cell.reading]}; {s.describe()})"
        if c.cell.reading == "peek":
            rows = [f"{flagged_label(m)} {m.peak_test().mean():.2f}% at its best epoch vs {m.mean:.2f}% at the last"
                    for m in c.methods if m.finals]
            out.append(f"{what}: " + ("; ".join(rows) + "." if rows else f"not run ({c.finished}/{c.planned} runs)."))
            continue
        best_dba, best_base = c.best_dba(), c.best_baseline()
        if best_dba is None:
            out.append(f"{what}: not run to the end ({c.finished} of {c.planned} runs finished).")
            continue
        note = incomplete_note(c)
        sentence = f"{what}: {note}{' ' if note else ''}best DBA {flagged_label(best_dba)} {format_accuracy(best_dba)}"
        if best_base is not None:
            sentence += (f", best baseline {flagged_label(best_base)} {format_accuracy(best_base)}: "
                         f"DBA {versus(best_dba, best_base)}")
        twin = main.get(replace(best_dba.method, normalise="selection").key) if main else None
        if twin is not None:
            sentence += (f"; against the same DBA method in the main cell ({twin.method.label}, {twin.mean:.2f}%): "
                         f"{best_dba.mean - twin.mean:+.2f} points")
        paper = PAPER.get(s.per_class)
        if paper:
            sentence += f"; still {paper['dba'] - best_dba.mean:.2f} points below the paper's {paper['dba']}%"
        out.append(sentence + ".")
    return out


def variant_statement(c: CellResult | None) -> str | None:
    """How much the metric, strategy, base and min_size/tol variants of DBA differ in one main cell."""
    if c is None:
        return None
    done = sorted((m for m in c.dba() if m.finals), key=lambda m: -m.mean)
    if not done:
        return None
    base = c.best_baseline()
    beat = [m for m in done if base is not None and m.mean > base.mean]
    return (f"*metric variants* ({c.cell.setting.dataset}, {c.cell.setting.per_class} per class): the "
            f"{len(done)} DBA methods run range from {done[-1].mean:.2f}% ({flagged_label(done[-1])}) to "
            f"{done[0].mean:.2f}% ({flagged_label(done[0])}); "
            + (f"{len(beat)} of them have a higher mean than the best baseline ({base.mean:.2f}%)." if base else
               "no baseline has finished."))


def other_dataset_statements(cells) -> list[str]:
    """Best DBA against best baseline where the abstract gives no number: other data sets, all the training data."""
    out = []
    for c in cells:
        if not (c.cell.reading == "full-data" or (c.cell.reading == "main" and c.cell.setting.dataset != "mnist5k")):
            continue
        best_dba, best_base = c.best_dba(), c.best_baseline()
        every = "all " if c.cell.reading == "full-data" else ""
        what = f"{c.cell.setting.dataset}, {every}{c.cell.setting.per_class} per class (the paper gives no number)"
        if best_dba is None or best_base is None:
            out.append(f"{what}: not run to the end ({c.finished} of {c.planned} runs finished).")
        else:
            out.append(f"{what}: best DBA {flagged_label(best_dba)} {format_accuracy(best_dba)}, best baseline "
                       f"{flagged_label(best_base)} {format_accuracy(best_base)}: DBA {versus(best_dba, best_base)}.")
    return out


def unit_verdict(sooner: int, later: int, tested: int) -> str:
    """``reproduced`` (DBA sooner in more than half of the ``tested`` comparisons, later in none), ``not reproduced``
    (sooner in no more than later), ``mixed``, or ``untested``."""
    if not tested:
        return "untested"
    if sooner <= later:
        return "not reproduced"
    return "reproduced" if 2 * sooner > tested and not later else "mixed"


def convergence_statements(cells) -> list[str]:
    """The convergence-speed claim: the verdict in one paragraph, then one line per unit and the cells not measured."""
    measured = measured_cells(cells)
    waiting = [c for c in convergence_cells(cells) if c not in measured]
    counts = {u: {"sooner": 0, "later": 0, "no significant difference": 0, "untested": 0} for u in UNITS}
    runs = []
    for c in measured:
        pairs = pairings(c)
        for t in targets(c):
            for _, d, b in pairs:
                dba, base = Speed.of(d, t), Speed.of(b, t)
                for u in UNITS:
                    counts[u][compare(dba, base, u).verdict] += 1
        runs += [r for _, d, b in pairs for m in (d, b) for r in m.finals]
    runs = list({id(r): r for r in runs}.values())         # a method in two pairings counts once
    lines = []
    if measured:
        verdicts = {u: unit_verdict(k["sooner"], k["later"], k["sooner"] + k["later"] + k["no significant difference"])
                    for u, k in counts.items()}
        tested = {v for v in verdicts.values() if v != "untested"}
        overall = tested.pop() if len(tested) == 1 else "mixed" if tested else "untested"
        names = ", ".join(c.cell.name for c in measured)
        incomplete = " ".join(note for c in measured if (note := incomplete_note(c)))
        lines.append(f"**In short: the convergence-speed claim is {overall}** on the {len(measured)} cells measured "
                     f"({names}): " + "; ".join(f"in {UNITS[u]} {verdicts[u]}" for u in UNITS) + "."
                     + (f" {incomplete}" if incomplete else ""))
        lines.append("")
        for u in UNITS:
            k = counts[u]
            lines.append(f"- In {UNITS[u]}: DBA reaches the target sooner in {k['sooner']}, later in {k['later']}, "
                         f"with no significant difference in {k['no significant difference']} of "
                         f"{sum(k.values())} comparisons"
                         + (f" ({k['untested']} untested: fewer than 2 seeds decide)" if k["untested"] else "")
                         + f": **{verdicts[u]}**.")
        same = verdicts["epochs"] == verdicts["seconds"]
        lines.append(f"- Per epoch and per wall second the verdicts {'agree' if same else 'differ'}"
                     + ("." if same else f" ({verdicts['epochs']} in epochs, {verdicts['seconds']} in seconds): "
                        "what DBA computes beyond the per-sample gradients (their Gram matrix, the search) costs "
                        "seconds, not epochs."))
        lines.append(wall_time_note(runs))
    lines += [f"- Not measured: {c.cell.name} ({c.finished} of {c.planned} runs finished)." for c in waiting]
    return lines


def wall_time_note(runs) -> str:
    """Where the wall seconds of the compared runs come from, and how loaded the cores were."""
    recorded = sum("seconds" in r["curves"] for r in runs)
    loads = [r["environment"][k] for r in runs for k in ("load_average_before", "load_average_after")]
    if recorded == len(runs):
        text = f"- Wall seconds: recorded after every epoch by all {len(runs)} final runs compared."
    else:
        text = (f"- Wall seconds: {recorded} of the {len(runs)} final runs compared recorded them after every epoch; "
                f"for {'the others' if recorded else 'all of them'} they are the run's total spread evenly over its "
                "epochs.")
    if loads:
        text += f" The 1-minute load average during them was {min(loads):.1f}–{max(loads):.1f}"
        cores = min(r["environment"]["cpus"] for r in runs)
        text += (f" on {cores} cores: they shared the cores with other jobs, which slows runs unevenly, so the "
                 "per-second comparisons are the least certain of the four." if max(loads) > cores else ".")
    return text
