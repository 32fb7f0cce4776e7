"""The comparison's report, read from the studies alone.

:func:`write_report` loads the studies a comparison names and writes ``report.md``,
``report.html`` and PNG figures; ``optuna-keras-hpo report`` writes them again. In the
one-space set-up the report answers the article's two questions: on the grid, how many distinct
configurations each strategy needs to reach the grid's best, over many repeats, against the grid
in random order (a Mann-Whitney U test); off the grid, whether the best models of real searches
of the continuous space beat the grid's best model on the test split by more than a paired
bootstrap interval.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_keras_hpo.attrs import BEST_EPOCH_ATTR, HP_VALUES_ATTR
from optuna_keras_hpo.fraud.comparison import (
    NO_PRUNING_SUFFIX,
    RESULT_ATTR,
    config_key,
)
from optuna_keras_hpo.fraud.objectives import ObjectiveSpec, objective_spec


@dataclass
class StrategySummary:
    """One row of the report, computed from a study."""

    study: str
    strategy: str
    pruning: bool
    best_value: float | None
    best_trial: int | None
    best_params: dict[str, Any]
    test: dict[str, float] | None
    completed: int
    pruned: int
    failed: int
    epochs_trained: int
    epochs_saved: int
    wall_seconds: float
    curve: list[float]  # best-so-far by trial number (finished trials only)
    times: list[float]  # seconds since the study's first trial started, per finished trial
    recall_precision: list[tuple[float, float]]
    trials_to_grid_best: int | None = None
    front: list[tuple[float, float]] = field(default_factory=list)  # two objectives only


def _spec(meta: dict[str, Any]) -> ObjectiveSpec:
    """The comparison's objective, from the run's metadata."""
    objective = meta.get("objective") or {}
    return objective_spec(objective.get("name", "recall"),
                          objective.get("precision_floor") or 0.5)


def summarise(study: optuna.Study, spec: ObjectiveSpec | None = None) -> StrategySummary:
    """A strategy's row of the report, from its study alone."""
    result = study.user_attrs.get(RESULT_ATTR, {})
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    finished = [t for t in trials if t.state.is_finished()]
    start = min((t.datetime_start for t in trials if t.datetime_start), default=None)
    curve, times, best = [], [], -math.inf
    for t in finished:
        feasible = spec is None or spec.feasible(t.user_attrs)
        if t.state == TrialState.COMPLETE and t.value is not None and feasible:
            best = max(best, t.value)
        curve.append(best)
        end = t.datetime_complete or t.datetime_start
        times.append((end - start).total_seconds() if start and end else 0.0)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    epochs_trained = sum(len(t.intermediate_values) for t in trials)
    epochs_saved = sum(
        max(0, int(t.params.get("epochs", 0)) - len(t.intermediate_values)) for t in pruned
    )
    spec_best = result.get("best_trial")
    best_frozen = next((t for t in trials if t.number == spec_best), None)
    return StrategySummary(
        study=study.study_name,
        strategy=result.get("strategy", study.study_name),
        pruning=bool(result.get("pruning", False)),
        best_value=best_frozen.value if best_frozen else None,
        best_trial=spec_best,
        best_params=dict(best_frozen.user_attrs.get(HP_VALUES_ATTR, best_frozen.params))
        if best_frozen else {},
        test=result.get("test"),
        completed=len(completed),
        pruned=len(pruned),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        epochs_trained=epochs_trained,
        epochs_saved=epochs_saved,
        wall_seconds=float(result.get("wall_seconds", times[-1] if times else 0.0)),
        curve=[c if math.isfinite(c) else float("nan") for c in curve],
        times=times,
        recall_precision=[
            (t.user_attrs["val_recall"], t.user_attrs["val_precision"]) for t in completed
            if "val_recall" in t.user_attrs and "val_precision" in t.user_attrs
        ],
    )


def trials_to_reach(curve: Sequence[float], target: float) -> int | None:
    """The number of finished trials after which the best-so-far reaches ``target``."""
    for i, value in enumerate(curve):
        if math.isfinite(value) and value >= target - 1e-12:
            return i + 1
    return None




def hypervolume(points: Sequence[tuple[float, float]]) -> float:
    """The area dominated by ``points`` (both coordinates maximised) above (0, 0)."""
    area, best_y = 0.0, 0.0
    for x, y in sorted(((max(x, 0.0), max(y, 0.0)) for x, y in points), reverse=True):
        if y > best_y:
            area += x * (y - best_y)
            best_y = y
    return area


def summarise_pareto(study: optuna.Study) -> StrategySummary:
    """A two-objective strategy's row: the hypervolume of its front (recall x precision above
    (0, 0)) as its score, and the front member with the best F1 (its test metrics in the
    study's result) as its representative model."""
    result = study.user_attrs.get(RESULT_ATTR, {})
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    finished = [t for t in trials if t.state.is_finished()]
    start = min((t.datetime_start for t in trials if t.datetime_start), default=None)
    points, curve, times = [], [], []
    for t in finished:
        if t.state == TrialState.COMPLETE and t.values is not None:
            points.append(tuple(t.values))
        curve.append(hypervolume(points))
        end = t.datetime_complete or t.datetime_start
        times.append((end - start).total_seconds() if start and end else 0.0)
    front = study.best_trials if points else []
    number = result.get("best_trial")
    representative = next((t for t in trials if t.number == number), None)
    return StrategySummary(
        study=study.study_name,
        strategy=result.get("strategy", study.study_name),
        pruning=False,
        best_value=curve[-1] if curve else None,
        best_trial=number,
        best_params=dict(representative.user_attrs.get(HP_VALUES_ATTR, representative.params))
        if representative else {},
        test=result.get("test"),
        completed=sum(t.state == TrialState.COMPLETE for t in trials),
        pruned=0,
        failed=sum(t.state == TrialState.FAIL for t in trials),
        # A Pareto trial is scored at its last epoch: the epochs it trained.
        epochs_trained=sum(int(t.user_attrs.get(BEST_EPOCH_ATTR, -1)) + 1 for t in trials
                           if BEST_EPOCH_ATTR in t.user_attrs),
        epochs_saved=0,
        wall_seconds=float(result.get("wall_seconds", times[-1] if times else 0.0)),
        curve=curve,
        times=times,
        recall_precision=points,
        front=[tuple(t.values) for t in front],
    )


def write_report(storage: str, study_names: Sequence[str], output: str | os.PathLike,
                 meta: dict[str, Any] | None = None) -> Path:
    """``report.md``, ``report.html`` and the figures, from the studies in ``storage``."""
    from optuna_keras_hpo.fraud.comparison import open_storage

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    meta = meta or {}
    storage = open_storage(storage) if isinstance(storage, str) else storage
    if meta.get("setup", "article") == "one_space":
        sections = _one_space_sections(storage, study_names, output, meta)
        title = "Fraud detection: search strategies compared on one space"
    else:
        sections = _article_report(storage, study_names, output, meta)
        title = "Fraud detection: search strategies compared (the article's set-up)"
    (output / "report.md").write_text(_markdown(sections, title))
    (output / "report.html").write_text(_html(sections, title))
    return output / "report.md"


def _article_report(storage, study_names: Sequence[str], output: Path,
                    meta: dict[str, Any]) -> list[tuple[str, list]]:
    spec = _spec(meta)
    studies = [optuna.load_study(study_name=n, storage=storage) for n in study_names]
    summaries = [summarise_pareto(st) if len(st.directions) > 1 else summarise(st, spec)
                 for st in studies]
    grid = next((s for s in summaries if s.strategy == "grid" and s.pruning ==
                 any(x.pruning for x in summaries)), None) or \
        next((s for s in summaries if s.strategy == "grid"), None)
    if grid is not None and grid.best_value is not None:
        for s in summaries:
            s.trials_to_grid_best = trials_to_reach(s.curve, grid.best_value)
    figures = _plots(summaries, output, _score_name(meta))
    return _sections(summaries, grid, meta, figures)


def rewrite_report(output: str | os.PathLike, storage: str | None = None) -> Path:
    """Write a compare run's report again from its studies (``{output}/compare.json`` names
    them; ``storage`` defaults to the URL recorded there, which hides any password)."""
    meta_path = Path(output) / "compare.json"
    if not meta_path.is_file():
        raise ValueError(f"output={str(output)!r} holds no compare.json; expected the directory "
                         "of a compare run.")
    meta = json.loads(meta_path.read_text())
    storage = storage or meta["storage"]
    if "***" in storage:
        raise ValueError(f"storage={storage!r} hides its password; pass the full URL.")
    return write_report(storage, meta["studies"], output, meta)




def _label(s: StrategySummary) -> str:
    return s.strategy + (" (pruning off)" if not s.pruning and s.study.endswith(
        NO_PRUNING_SUFFIX) else "")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.{digits}g}"
    return str(value)


def _sections(summaries, grid, meta, figures) -> list[tuple[str, list]]:
    objective = meta.get("objective", {})
    metric = _score_name(meta)
    data = meta.get("data", {})
    mode = meta.get("mode", {})
    intro = [
        ("p", f"Objective: **{objective.get('name', metric)}** "
              f"({objective.get('description', '')}), maximised on the validation split; "
              f"mode **{mode.get('name', '?')}**, "
              f"{mode.get('trials', '?')} trials per strategy, the grid "
              f"{mode.get('grid_trials', '?')} of its {mode.get('grid_size', '?')} points."),
        ("p", "Data: " + ", ".join(f"{k}: {v}" for k, v in data.items())),
        ("p", f"Studies: storage `{meta.get('storage', '?')}`, study names "
              + ", ".join(f"`{s.study}`" for s in summaries)
              + "; every number below is read from them (`optuna.load_study`): the "
              "validation scores are trial values, the test metrics the study's user "
              f"attribute `{RESULT_ATTR}`."),
    ]
    if _two_objectives(meta):
        intro.append(("p", "Two objectives: each strategy's score is the hypervolume of its "
                           "Pareto front of (validation recall, validation precision) above "
                           "(0, 0); its model is the front member with the best validation F1, "
                           "whose test metrics are that trial's user attribute `test`."))
    header = ["strategy", f"best {metric}", "test recall", "test precision", "test accuracy",
              "test AUC", "test PR-AUC", "completed", "pruned", "failed", "epochs trained",
              "wall time (s)", "trials to reach the grid's best"]
    rows = []
    for s in summaries:
        test = s.test or {}
        rows.append([
            _label(s), _fmt(s.best_value), _fmt(test.get("recall")),
            _fmt(test.get("precision")), _fmt(test.get("accuracy")), _fmt(test.get("auc")),
            _fmt(test.get("pr_auc")), s.completed, s.pruned, s.failed, s.epochs_trained,
            f"{s.wall_seconds:.0f}",
            (_fmt(s.trials_to_grid_best) if s.trials_to_grid_best is not None else "not reached")
            if grid is not None else "-",
        ])
    intro.insert(0, ("p", "**Different spaces**: this is the article's set-up. The grid searches "
                          "the article's Adam-only grid, the other strategies the larger "
                          "Bayesian-optimisation space, one run each, so the scores compare two "
                          "spaces as much as two strategies; `--setup one_space` (the default) "
                          "compares strategies on one space, with repeats."))
    sections: list[tuple[str, list]] = [("Comparison", intro + [("table", (header, rows))])]
    sections.append(("Verdict", [("p", line) for line in _verdict(summaries, grid, metric)]))
    params_rows = [[_label(s), s.best_trial if s.best_trial is not None else "-",
                    ", ".join(f"{k}={_fmt(v)}" for k, v in s.best_params.items()) or "-"]
                   for s in summaries]
    sections.append(("Best hyperparameters",
                     [("table", (["strategy", "trial", "hyperparameters"], params_rows))]))
    sections.append(("Pruning", [("p", line) for line in _pruning_lines(summaries)]))
    if "sklearn_baseline" in meta:
        sections.append(_sklearn_section(meta["sklearn_baseline"]))
    sections.append(("Plots", [("img", (title, path)) for title, path in figures]))
    return sections


def _two_objectives(meta) -> bool:
    return len((meta.get("objective") or {}).get("metrics") or ()) > 1


def _score_name(meta) -> str:
    if _two_objectives(meta):
        return "hypervolume"
    return ((meta.get("objective") or {}).get("metrics") or ["val_recall"])[0]


def _verdict(summaries, grid, metric) -> list[str]:
    if grid is None or grid.best_value is None:
        return ["No grid run to compare against."]
    lines = [f"The grid's best {metric} is {_fmt(grid.best_value)}, first reached after "
             f"{_trials(grid.trials_to_grid_best)} of its {len(grid.curve)}."]
    for s in summaries:
        if not s.strategy.startswith("gp-") or s.pruning != grid.pruning:
            continue
        if s.trials_to_grid_best is None:
            lines.append(f"{_label(s)} did **not** reach the grid's best in its "
                         f"{_trials(len(s.curve))} (its best: {_fmt(s.best_value)}).")
        else:
            fewer = grid.trials_to_grid_best is not None and \
                s.trials_to_grid_best < grid.trials_to_grid_best
            lines.append(f"{_label(s)} reached it after {_trials(s.trials_to_grid_best)}"
                         + (", fewer than the grid needed." if fewer else
                            ", not fewer than the grid needed."))
    return lines


def _trials(n: int | None) -> str:
    return "-" if n is None else f"{n} trial" + ("" if n == 1 else "s")


def _pruning_lines(summaries) -> list[str]:
    lines = []
    for s in summaries:
        if s.pruning:
            lines.append(f"{_label(s)}: {s.pruned} trials pruned, {s.epochs_saved} epochs saved "
                         f"(planned epochs not trained), {s.epochs_trained} epochs trained.")
    for off in (s for s in summaries if s.study.endswith(NO_PRUNING_SUFFIX)):
        on = next((s for s in summaries if s.strategy == off.strategy and s.pruning), None)
        if on is None:
            continue
        change = "the same" if on.best_value == off.best_value else (
            "higher with pruning" if (on.best_value or -1) > (off.best_value or -1)
            else "lower with pruning")
        lines.append(
            f"{off.strategy} with and without pruning: best {_fmt(on.best_value)} vs "
            f"{_fmt(off.best_value)} ({change}); epochs trained {on.epochs_trained} vs "
            f"{off.epochs_trained}; wall time {on.wall_seconds:.0f} s vs "
            f"{off.wall_seconds:.0f} s.")
    return lines or ["Pruning was off."]


def _plots(summaries, output: Path, score: str = "objective") -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    for file, title, xlabel, times in (
        ("best_vs_trials.png", "Best so far versus trials", "trials finished", False),
        ("best_vs_time.png", "Best so far versus wall time",
         "wall time since the study's first trial (s)", True),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for s in summaries:
            style = "--" if s.strategy == "grid" else "-"
            if times:
                ax.step(s.times, s.curve, where="post", label=_label(s), linestyle=style)
            else:
                ax.plot(range(1, len(s.curve) + 1), s.curve, marker=".", label=_label(s),
                        linestyle=style)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best validation {score} so far")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(output / file, dpi=110)
        plt.close(fig)
        figures.append((title, file))

    fig, ax = plt.subplots(figsize=(6, 5))
    for s in summaries:
        if s.recall_precision:
            r, p = zip(*s.recall_precision, strict=True)
            points = ax.scatter(r, p, s=18, alpha=0.7, label=_label(s))
            if s.front:
                front = sorted(s.front, reverse=True)
                ax.step([x for x, _ in front], [y for _, y in front], where="post",
                        color=points.get_facecolor()[0], alpha=0.9)
    ax.set_xlabel("validation recall")
    ax.set_ylabel("validation precision")
    ax.set_title("Every completed trial: recall against precision"
                 + (" (lines: Pareto fronts)" if any(s.front for s in summaries) else ""))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(output / "recall_precision.png", dpi=110)
    plt.close(fig)
    figures.append(("Recall / precision trade-off", "recall_precision.png"))
    return figures


def _markdown(sections, title: str) -> str:
    out = [f"# {title}", ""]
    for title, blocks in sections:
        out += [f"## {title}", ""]
        for kind, content in blocks:
            if kind == "p":
                out += [content, ""]
            elif kind == "table":
                header, rows = content
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
                out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
                out.append("")
            elif kind == "img":
                title_, path = content
                out += [f"![{title_}]({path})", ""]
    return "\n".join(out)


def _html(sections, title: str) -> str:
    import html
    import re

    def inline(text: str) -> str:
        text = html.escape(str(text))
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", text)

    out = ["<!doctype html><html><head><meta charset='utf-8'>",
           f"<title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
           "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;"
           "padding:4px 8px;text-align:right}td:first-child{text-align:left}"
           "img{max-width:100%}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>"]
    for title, blocks in sections:
        out.append(f"<h2>{inline(title)}</h2>")
        for kind, content in blocks:
            if kind == "p":
                out.append(f"<p>{inline(content)}</p>")
            elif kind == "table":
                header, rows = content
                out.append("<table><tr>" + "".join(f"<th>{inline(h)}</th>" for h in header)
                           + "</tr>")
                out += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>"
                        for row in rows]
                out.append("</table>")
            elif kind == "img":
                title_, path = content
                out.append(f"<figure><img src='{html.escape(path)}' alt='{inline(title_)}'>"
                           f"<figcaption>{inline(title_)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)




def summary_table(report: Path) -> str:
    """The report's first table (printed at the end of a run)."""
    text = report.read_text().split("\n")
    start = next(i for i, line in enumerate(text) if line.startswith("| strategy"))
    end = next(i for i in range(start, len(text)) if not text[i].startswith("|"))
    return "\n".join(text[start:end])


# --------------------------------------------------------------------------------------------
# The one-space set-up
# --------------------------------------------------------------------------------------------

WITHIN = 0.01  # "within 1% of the grid's best"
SHARES = (0.10, 0.25)  # reached within these shares of the grid's size
ALPHA = 0.05  # the verdict's significance level


@dataclass
class ReplayRun:
    """One replay, read from its study: the best-so-far after each distinct configuration."""

    study: str
    strategy: str
    curve: list[float]  # best feasible value after 1, 2, ... distinct configurations
    to_best: int | None  # distinct configurations until the grid's best (None: not reached)
    to_within: int | None  # ... until within WITHIN of it


def read_replay(study: optuna.Study, target: float) -> ReplayRun:
    """A replay's costs: distinct configurations (each read of the table the first time) until
    the best-so-far reaches ``target`` and ``target`` less :data:`WITHIN` of it."""
    info = study.user_attrs.get("replay", {})
    seen: set[str] = set()
    curve: list[float] = []
    best = -math.inf
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        key = config_key(t.params)
        if key in seen:
            continue
        seen.add(key)
        feasible = all(c <= 0 for c in (t.constraints or {}).values()) \
            if hasattr(t, "constraints") else True
        if t.state == TrialState.COMPLETE and t.value is not None and feasible:
            best = max(best, t.value)
        curve.append(best)
    near = target - WITHIN * abs(target)
    return ReplayRun(study.study_name, info.get("strategy", study.study_name), curve,
                     trials_to_reach(curve, target), trials_to_reach(curve, near))


@dataclass
class StrategyCosts:
    """A strategy's replays summarised: the verdict's row."""

    strategy: str
    repeats: int
    to_best: list[float]  # not reached: size + 1 (worse than any reached)
    to_within: list[float]
    reached: int
    curves: np.ndarray  # repeats x size, best-so-far after each distinct configuration
    p_value: float | None = None  # one-sided Mann-Whitney U against the grid in random order

    def quartiles(self, which: str = "to_best") -> tuple[float, float, float]:
        q1, q2, q3 = np.percentile(getattr(self, which), [25, 50, 75])
        return float(q2), float(q1), float(q3)

    def share_within(self, limit: float) -> float:
        return float(np.mean([c <= limit for c in self.to_best]))


def replay_costs(runs: Sequence[ReplayRun], size: int) -> StrategyCosts:
    curves = np.full((len(runs), size), np.nan)
    for i, run in enumerate(runs):
        curve = run.curve[:size] or [-math.inf]
        curves[i, :len(curve)] = curve
        curves[i, len(curve):] = curve[-1]
    miss = size + 1
    return StrategyCosts(
        strategy=runs[0].strategy, repeats=len(runs),
        to_best=[float(r.to_best if r.to_best is not None else miss) for r in runs],
        to_within=[float(r.to_within if r.to_within is not None else miss) for r in runs],
        reached=sum(r.to_best is not None for r in runs), curves=curves,
    )


def _one_space_sections(storage, names: Sequence[str], output: Path,
                        meta: dict[str, Any]) -> list[tuple[str, list]]:
    from scipy.stats import mannwhitneyu

    objective = meta.get("objective", {})
    metric = (objective.get("metrics") or ["val_pr_auc"])[0]
    table_name = next(n for n in names if n.endswith("-grid"))
    table_study = optuna.load_study(study_name=table_name, storage=storage)
    table_trials = table_study.get_trials(deepcopy=False)
    size = sum(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in table_trials)
    spec = _spec(meta)
    feasible = [t for t in table_trials
                if t.state == TrialState.COMPLETE and spec.feasible(t.user_attrs)]
    best = max(feasible, key=lambda t: (t.value, -t.number)) if feasible else None
    target = best.value if best else math.nan
    ties = sum(t.value == target for t in feasible)

    by_strategy: dict[str, list[ReplayRun]] = {}
    for name in (n for n in names if "-replay-" in n):
        run = read_replay(optuna.load_study(study_name=name, storage=storage), target)
        by_strategy.setdefault(run.strategy, []).append(run)
    costs = {s: replay_costs(runs, size) for s, runs in by_strategy.items()}
    grid = costs.get("grid")
    for s, c in costs.items():
        if grid is not None and s != "grid":
            c.p_value = float(mannwhitneyu(c.to_best, grid.to_best, alternative="less").pvalue)

    expected = (size + 1) / (ties + 1)
    mode = meta.get("mode", {})
    intro = [
        ("p", f"Objective: **{objective.get('name', metric)}** ({objective.get('description', '')}"
              f"), maximised on the validation split; mode **{mode.get('name', '?')}**. "
              "Data: " + ", ".join(f"{k}: {v}" for k, v in meta.get("data", {}).items()) + "."),
        ("p", f"The grid (study `{table_name}`) trained each of its {size} points once; training "
              "is seeded per configuration, so a configuration scores the same wherever it is "
              f"trained, and the grid's trials are a table. Its best {metric} is "
              f"**{_fmt(target)}** (trial {best.number if best else '-'}"
              + (f", tied by {ties - 1} other point(s)" if ties > 1 else "") + ")."),
        ("p", f"Storage `{meta.get('storage', '?')}`. Every number below is read from its "
              "studies (`optuna.load_study`): replays are the studies `...-replay-{strategy}-"
              "{repeat}` (each trial's user attribute `table_trial` names the grid trial it "
              "read), real searches of the continuous space the studies `...-continuous-"
              f"{{strategy}}-{{repeat}}`, test metrics their user attribute `{RESULT_ATTR}`."),
    ]
    sections: list[tuple[str, list]] = [("Set-up", intro)]

    header = ["strategy", "repeats", "to the grid's best: median [q1, q3]",
              "to within 1%: median [q1, q3]",
              *[f"reached within {share:.0%} of the grid" for share in SHARES],
              "p (Mann-Whitney U, fewer than the grid)"]
    rows = []
    for s, c in sorted(costs.items(), key=lambda kv: kv[0] == "grid"):
        rows.append([
            "grid (random order)" if s == "grid" else s, c.repeats,
            "{:.1f} [{:.1f}, {:.1f}]".format(*c.quartiles("to_best")),
            "{:.1f} [{:.1f}, {:.1f}]".format(*c.quartiles("to_within")),
            *[f"{c.share_within(share * size):.0%}" for share in SHARES],
            "-" if c.p_value is None else f"{c.p_value:.2g}",
        ])
    verdict = [("p", f"Cost is counted in **distinct configurations** evaluated (a replay that "
                     f"proposes a configuration again reads the table at no cost). The grid in "
                     f"random order needs (N+1)/(k+1) = {expected:.1f} of its N = {size} points "
                     f"on average to meet the best of k = {ties} tied point(s).")]
    verdict.append(("table", (header, rows)))
    verdict += [("p", line) for line in _one_space_verdict(costs, size, expected)]
    sections.append(("On the grid: distinct configurations to the grid's best", verdict))
    figure = _replay_figure(costs, target, output, metric)
    sections.append(("Best so far on the grid", [("img", figure)]))
    sections.append(("Off the grid: the continuous space",
                     _continuous_blocks(storage, names, table_study, metric, target)))
    sections.append(("The table", _table_blocks(table_study, best, output, meta)))
    if "sklearn_baseline" in meta:
        sections.append(_sklearn_section(meta["sklearn_baseline"]))
    return sections


def _one_space_verdict(costs: dict[str, StrategyCosts], size: int,
                       expected: float) -> list[str]:
    grid = costs.get("grid")
    lines = []
    for s, c in costs.items():
        if s == "grid" or grid is None:
            continue
        median, q1, q3 = c.quartiles()
        grid_median = grid.quartiles()[0]
        said = (f"{s} needed a median {median:.1f} distinct configurations [quartiles {q1:.1f}, "
                f"{q3:.1f}] to reach the grid's best, the grid in random order {grid_median:.1f} "
                f"(expected {expected:.1f}), over {c.repeats} repeats each")
        if c.p_value is not None and c.p_value < ALPHA and median < grid_median:
            lines.append(f"**{s} beat the grid** by more than the spread: {said}; one-sided "
                         f"Mann-Whitney U p = {c.p_value:.2g}.")
        elif c.p_value is not None and 1 - c.p_value < ALPHA and median > grid_median:
            lines.append(f"**{s} did worse than the grid**: {said} (p = {c.p_value:.2g} for "
                         "fewer).")
        else:
            lines.append(f"**{s} did not beat the grid beyond the noise**: {said}; one-sided "
                         f"Mann-Whitney U p = {c.p_value:.2g}.")
    return lines


def _replay_figure(costs: dict[str, StrategyCosts], target: float, output: Path,
                   metric: str) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for s, c in costs.items():
        x = np.arange(1, c.curves.shape[1] + 1)
        finite = np.where(np.isfinite(c.curves), c.curves, np.nan)
        q1, median, q3 = np.nanpercentile(finite, [25, 50, 75], axis=0)
        style = "--" if s == "grid" else "-"
        (line,) = ax.plot(x, median, linestyle=style,
                          label=("grid (random order)" if s == "grid" else s))
        ax.fill_between(x, q1, q3, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.axhline(target, color="black", linewidth=0.8, linestyle=":", label="the grid's best")
    ax.set_xscale("log")
    ax.set_xlabel("distinct configurations evaluated")
    ax.set_ylabel(f"best {metric} so far")
    ax.set_title("Median best so far over the repeats, with quartile bands")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(output / "best_vs_configurations.png", dpi=110)
    plt.close(fig)
    return ("Best so far against distinct configurations (median and quartiles over repeats)",
            "best_vs_configurations.png")


def _interval(test: dict, intervals: dict | None, metric: str) -> str:
    value = _fmt((test or {}).get(metric))
    if intervals and metric in intervals:
        low, high = intervals[metric]
        return f"{value} [{low:.3f}, {high:.3f}]"
    return value


def _continuous_blocks(storage, names: Sequence[str], table_study: optuna.Study,
                       metric: str, table_best: float) -> list[tuple[str, Any]]:
    grid_result = table_study.user_attrs.get(RESULT_ATTR, {})
    studies = [optuna.load_study(study_name=n, storage=storage)
               for n in names if "-continuous-" in n]
    if not studies:
        return [("p", "No continuous searches were run.")]
    header = ["search", f"best {metric}", "test PR-AUC [95% CI]", "test recall [95% CI]",
              "test precision [95% CI]", "test accuracy", "test minus the grid's best [95% CI]",
              "beyond the noise?"]
    rows = [["the grid's best model", _fmt(table_best),
             *[_interval(grid_result.get("test"), grid_result.get("test_intervals"), m)
               for m in ("pr_auc", "recall", "precision")],
             _fmt((grid_result.get("test") or {}).get("accuracy")), "-", "-"]]
    per_strategy: dict[str, list[dict]] = {}
    for study in studies:
        result = study.user_attrs.get(RESULT_ATTR, {})
        number = result.get("best_trial")  # the best feasible trial
        best_value = study.trials[number].value if number is not None else None
        vs = result.get("vs_grid")
        beyond = "-" if not vs else ("yes, better" if vs["low"] > 0 else
                                     "yes, worse" if vs["high"] < 0 else "no")
        rows.append([
            f"{result.get('strategy', '?')} #{result.get('repeat', 0) + 1}", _fmt(best_value),
            *[_interval(result.get("test"), result.get("test_intervals"), m)
              for m in ("pr_auc", "recall", "precision")],
            _fmt((result.get("test") or {}).get("accuracy")),
            "-" if not vs else f"{vs['difference']:+.3f} [{vs['low']:+.3f}, {vs['high']:+.3f}]",
            beyond,
        ])
        per_strategy.setdefault(result.get("strategy", "?"), []).append(
            {"best": best_value, "vs": vs})
    compared = next((r["vs"]["metric"] for runs in per_strategy.values() for r in runs
                     if r["vs"]), "pr_auc")
    lines = []
    for s, runs in per_strategy.items():
        above = sum(r["best"] is not None and table_best is not None and r["best"] > table_best
                    for r in runs)
        better = sum(bool(r["vs"]) and r["vs"]["low"] > 0 for r in runs)
        worse = sum(bool(r["vs"]) and r["vs"]["high"] < 0 for r in runs)
        lines.append(
            f"{s}: {above} of {len(runs)} searches of the continuous space found a validation "
            f"{metric} above the grid's best; on the test split, {better} beat the grid's best "
            f"model's {compared} by more than the paired bootstrap interval, {worse} fell below "
            f"it, {len(runs) - better - worse} were within the noise.")
    budget = (studies[0].user_attrs.get(RESULT_ATTR) or {}).get("budget", "?")
    intro = ("p", f"Each search trained {budget} real models of the continuous Bayesian space "
                  "and chose its best by the validation score alone; that model was then scored "
                  "on the test split. Repeat #r of every strategy starts from the same random "
                  "initial points (seed r), so identical rows mean the best came from those. "
                  "Intervals: percentile bootstrap over the test rows (1,000 resamples); the "
                  "difference to the grid's best model is paired (both models on each "
                  "resample). The grid's best validation score is the largest of many noisy "
                  "estimates, so its test score is expected to be lower (the winner's curse); "
                  "the test split is the fair referee.")
    return [intro, ("table", (header, rows)), *[("p", line) for line in lines]]


def _table_blocks(table_study: optuna.Study, best: FrozenTrial | None, output: Path,
                  meta: dict[str, Any]) -> list[tuple[str, Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    completed = table_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    failed = table_study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    points = [(t.user_attrs["val_recall"], t.user_attrs["val_precision"]) for t in completed
              if "val_recall" in t.user_attrs and "val_precision" in t.user_attrs]
    fig, ax = plt.subplots(figsize=(6, 5))
    if points:
        r, p = zip(*points, strict=True)
        values = [t.value for t in completed
                  if "val_recall" in t.user_attrs and "val_precision" in t.user_attrs]
        scatter = ax.scatter(r, p, c=values, s=22, cmap="viridis")
        fig.colorbar(scatter, ax=ax, label="objective")
    rate = (meta.get("data") or {}).get("validation_fraud_rate")
    if rate:
        ax.scatter([1.0], [rate], marker="x", color="red", s=60,
                   label="flags every transaction")
        ax.legend(fontsize=8)
    ax.set_xlabel("validation recall")
    ax.set_ylabel("validation precision")
    ax.set_title("Every grid point: recall against precision")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(output / "recall_precision.png", dpi=110)
    plt.close(fig)
    params = dict(best.user_attrs.get(HP_VALUES_ATTR, best.params)) if best else {}
    return [
        ("p", f"{len(completed)} points trained, {len(failed)} failed. The best: "
              + (", ".join(f"{k}={_fmt(v)}" for k, v in params.items()) or "-") + "."),
        ("img", ("Every grid point: validation recall against precision", "recall_precision.png")),
    ]


def _sklearn_section(base: dict[str, Any]) -> tuple[str, list]:
    return ("scikit-learn GridSearchCV baseline (the article's)", [
        ("p", f"`GridSearchCV` over scikeras' `KerasClassifier`, scoring recall, "
              f"{base.get('splitter', 'StratifiedKFold')}, {base.get('n_fits', '?')} fits "
              f"in {_fmt(base.get('wall_seconds'))} s."),
        ("table", (["best CV recall", "test recall", "test precision", "test accuracy",
                    "best parameters"],
                   [[_fmt(base.get("best_score")),
                     _fmt((base.get("test") or {}).get("recall")),
                     _fmt((base.get("test") or {}).get("precision")),
                     _fmt((base.get("test") or {}).get("accuracy")),
                     ", ".join(f"{k}={v}" for k, v in
                               (base.get("best_params") or {}).items())]])),
    ])


__all__ = ["read_replay", "replay_costs", "rewrite_report", "summarise", "summary_table",
           "trials_to_reach", "write_report"]
