"""The article's experiment, done properly: several search strategies on one task, one report.

:func:`compare` runs each strategy (GP-EI, GP-PI, GP-UCB, TPE, random search and the article's
grid) as its own study in one storage, with the same trial budget (the grid runs its grid, or
``grid_budget`` points of it), then evaluates each strategy's best model on the test split and
stores the result in the study. :func:`write_report` reads only the studies and writes
``report.md``, ``report.html`` and PNG plots, so every number in the report can be traced with
``optuna.load_study``.

Modes: ``quick`` (a small data set, short training, a small grid; a few minutes on two cores) and
``full`` (the article's budgets: 10,000 rows, 50-200 epochs, the article's 1,458-point grid;
many hours on CPU, see docs/fraud.md).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_keras_hpo import fraud
from optuna_keras_hpo import storage as storage_lib
from optuna_keras_hpo.objective import Objective
from optuna_keras_hpo.samplers import SAMPLER_NAMES, make_sampler
from optuna_keras_hpo.tuner import HP_VALUES_ATTR, Tuner
from optuna_keras_hpo.tuners import GridSearch

STRATEGIES = SAMPLER_NAMES  # gp-ei, gp-pi, gp-ucb, tpe, random, grid
NO_PRUNING_SUFFIX = "-nopruning"
RESULT_ATTR = "compare"  # the study user attribute holding a strategy's result
EPOCHS_ATTR = "epochs_trained"  # two-objective trials: epochs trained (no learning curve)


@dataclass(frozen=True)
class Mode:
    """The budgets of a comparison."""

    name: str
    rows: int
    trials: int
    epochs: tuple[int, int, int]
    grid: dict[str, list]
    patience: int
    initial_points: int


# The quick grid: 8 points of the article's grid, trained long enough (10 epochs of batches of
# 16) for its small learning rates to move the model.
QUICK_GRID: dict[str, list] = {
    "learning_rate": [0.001, 0.0005],
    "neurons1": [20, 40],
    "neurons2": [20, 40],
    "dropout_rate1": [0.1],
    "dropout_rate2": [0.1],
    "batch_size": [16],
    "epochs": [10],
}
QUICK = Mode("quick", rows=2000, trials=10, epochs=(4, 12, 4), grid=QUICK_GRID,
             patience=3, initial_points=3)
FULL = Mode("full", rows=10_000, trials=50, epochs=(50, 200, 50), grid=fraud.ARTICLE_GRID,
            patience=10, initial_points=10)
MODES = {"quick": QUICK, "full": FULL}


@dataclass
class CompareConfig:
    """What :func:`compare` runs. ``None`` fields take the mode's value."""

    mode: str = "quick"
    output: str = "results/compare"
    storage: str | None = None
    strategies: Sequence[str] = tuple(STRATEGIES)
    objective: str = "recall"
    precision_floor: float = 0.5
    trials: int | None = None
    grid_budget: int | None = None
    pruning: bool = True
    pruning_reference: Sequence[str] | None = None  # default: GP-EI, when it is compared
    data: str | None = None
    target: str | None = None
    rows: int | None = None
    seed: int = 0
    sklearn_baseline: bool = False
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; expected one of {sorted(MODES)}.")
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise ValueError(
                f"strategies={list(self.strategies)!r}; expected a non-empty list from "
                f"{list(STRATEGIES)}."
            )
        bad_reference = [s for s in self.pruning_reference or () if s not in self.strategies]
        if bad_reference:
            raise ValueError(
                f"pruning_reference={list(self.pruning_reference)!r}; expected strategies "
                f"that are compared ({list(self.strategies)})."
            )
        for name in ("trials", "grid_budget", "rows"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r}; expected a positive integer or None.")
        if (self.data is None) != (self.target is None):
            raise ValueError(
                f"data={self.data!r}, target={self.target!r}; give both (a CSV file and its "
                "target column) or neither (synthetic data)."
            )
        spec = fraud.objective_spec(self.objective, self.precision_floor)
        if len(spec.metrics) > 1 and self.pruning:
            raise ValueError(
                f"objective={self.objective!r} with pruning=True: Optuna cannot prune "
                "multi-objective trials; turn pruning off (--no-pruning)."
            )

    @property
    def mode_settings(self) -> Mode:
        mode = MODES[self.mode]
        return replace(mode, rows=self.rows or mode.rows, trials=self.trials or mode.trials)

    def storage_url(self) -> str:
        if self.storage:
            return self.storage
        return f"sqlite:///{(Path(self.output) / 'studies.db').resolve()}"


# --------------------------------------------------------------------------------------------
# Running the strategies
# --------------------------------------------------------------------------------------------


def _constraints(spec: fraud.ObjectiveSpec) -> Callable[[dict], dict] | None:
    """The tuner's constraint for a precision floor: ``floor - val_precision`` (<= 0 is
    feasible), set on each trial with ``trial.set_constraint``; TPE and the GP sampler with EI
    or PI read it (UCB, random search and the grid search without it)."""
    if spec.precision_floor is None:
        return None
    floor = spec.precision_floor

    def precision_floor(metrics: dict) -> dict:
        return {"precision_floor": floor - metrics.get("val_precision", 0.0)}

    return precision_floor


def make_pruner(enabled: bool) -> optuna.pruners.BasePruner:
    """The default pruner: Optuna's median rule (after 3 trials, from the second epoch)."""
    if not enabled:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)


@dataclass
class StrategyRun:
    """What one strategy's run leaves in its study (user attribute ``compare``)."""

    strategy: str
    pruning: bool
    objective: str
    metric: str
    wall_seconds: float
    test: dict[str, float] | None
    best_trial: int | None
    mode: str
    budget: int


def study_name(prefix: str, strategy: str, pruning: bool, with_reference: bool) -> str:
    suffix = NO_PRUNING_SUFFIX if (with_reference and not pruning) else ""
    return f"{prefix}-{strategy}{suffix}"


def compare(config: CompareConfig) -> Path:
    """Run every strategy, store the results in the studies, write the report; returns the
    report's path (``{output}/report.md``)."""
    config.validate()
    _quiet()
    mode = config.mode_settings
    spec = fraud.objective_spec(config.objective, config.precision_floor)
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    data = fraud.load_data(config.data, config.target, n_rows=mode.rows, seed=config.seed)
    storage = config.storage_url()
    prefix = f"fraud-{config.objective}"

    runs: list[tuple[str, bool]] = [(s, config.pruning) for s in config.strategies]
    reference = config.pruning_reference
    if reference is None:
        reference = [s for s in ("gp-ei",) if s in config.strategies]
    with_reference = config.pruning and bool(reference)
    if with_reference:
        runs += [(s, False) for s in reference]
    grid_size = math.prod(len(v) for v in mode.grid.values())
    grid_trials = min(grid_size, config.grid_budget or grid_size)
    total = sum(grid_trials if s == "grid" else mode.trials for s, _ in runs)
    progress = _progress(total, config.progress)
    names = []
    try:
        for strategy, pruning in runs:
            name = study_name(prefix, strategy, pruning, with_reference)
            names.append(name)
            run = _run_pareto_strategy if len(spec.metrics) > 1 else _run_strategy
            run(strategy, pruning, name, storage, data, mode, spec, config, grid_trials,
                progress)
    finally:
        progress.close()
    meta = {
        "mode": asdict(mode) | {"grid_size": grid_size, "grid_trials": grid_trials},
        "data": data.describe(),
        "objective": asdict(spec),
        "storage": storage_lib.mask_url(storage),
        "studies": names,
        "seed": config.seed,
    }
    if config.sklearn_baseline:
        meta["sklearn_baseline"] = fraud.sklearn_grid_baseline(data, mode.grid, cv=3,
                                                               seed=config.seed)
    (output / "compare.json").write_text(json.dumps(meta, indent=2, default=str))
    return write_report(storage, names, output, meta)


def _run_strategy(strategy, pruning, name, storage, data, mode, spec, config, grid_trials,
                  progress) -> None:
    metric = spec.metrics[0]
    objective = Objective(metric, "max")
    hypermodel = fraud.FraudHyperModel(
        data, space="grid" if strategy == "grid" else "bayesian", epochs=mode.epochs,
        grid=mode.grid, patience=mode.patience,
    )
    common = dict(
        hypermodel=hypermodel, objective=objective, storage=storage, study_name=name,
        directory=config.output, project_name=name, overwrite=True, seed=config.seed,
        pruner=make_pruner(pruning), max_consecutive_failed_trials=None,
        constraints=_constraints(spec),
    )
    if strategy == "grid":
        tuner: Tuner = GridSearch(max_trials=grid_trials, **common)
    else:
        sampler = make_sampler(strategy, config.seed, n_startup_trials=mode.initial_points)
        tuner = Tuner(max_trials=mode.trials, sampler=sampler, **common)
    progress.set_description(f"{name}")
    seen = {"n": 0}

    def tick(trial) -> None:
        seen["n"] += 1
        progress.update(1)

    tuner.on_trial_end = tick
    start = time.monotonic()
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 verbose=0)
    wall = time.monotonic() - start
    progress.update(max(0, (grid_trials if strategy == "grid" else mode.trials) - seen["n"]))

    best = best_trial(tuner.study, spec)
    test = None
    if best is not None:
        model = tuner.load_model(tuner._view(best))  # noqa: SLF001
        test = fraud.evaluate_test(model, data)
    result = StrategyRun(strategy, pruning, spec.name, metric, wall, test,
                         best.number if best else None, mode.name,
                         grid_trials if strategy == "grid" else mode.trials)
    tuner.study.set_user_attr(RESULT_ATTR, asdict(result))


def _run_pareto_strategy(strategy, pruning, name, storage, data, mode, spec, config,
                         grid_trials, progress) -> None:
    """One strategy on the two-objective study (validation recall and precision, both
    maximised): a plain Optuna objective on the same hypermodel, since a KerasTuner objective is
    one number. Each trial's model is scored on the test split at once (user attribute
    ``test``): selection uses validation values only, and the report picks a front member."""
    import keras

    from optuna_keras_hpo.hyperparameters import HyperParameters, TrialHyperParameters

    hypermodel = fraud.FraudHyperModel(
        data, space="grid" if strategy == "grid" else "bayesian", epochs=mode.epochs,
        grid=mode.grid, patience=mode.patience,
    )
    sampler = make_sampler(strategy, config.seed, n_startup_trials=mode.initial_points,
                           grid=mode.grid)
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
    study = optuna.create_study(storage=storage, study_name=name, sampler=sampler,
                                directions=list(spec.directions))

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        hp = TrialHyperParameters(trial, HyperParameters())
        keras.backend.clear_session(free_memory=False)
        model = hypermodel.build(hp)
        history = hypermodel.fit(hp, model, data.x_train, data.y_train,
                                 validation_data=(data.x_val, data.y_val), verbose=0)
        # The metrics of the model as trained (its last epoch), the one scored on test.
        final = {k: float(v[-1]) for k, v in history.history.items()}
        for key, value in final.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr(HP_VALUES_ATTR, dict(hp.values))
        trial.set_user_attr(EPOCHS_ATTR, len(history.history["loss"]))
        trial.set_user_attr("test", fraud.evaluate_test(model, data))
        return tuple(final[m] for m in spec.metrics)

    budget = grid_trials if strategy == "grid" else mode.trials
    progress.set_description(name)
    start = time.monotonic()
    study.optimize(objective, n_trials=budget, catch=(Exception,),
                   callbacks=[lambda study, trial: progress.update(1)])
    wall = time.monotonic() - start
    result = StrategyRun(strategy, False, spec.name, " & ".join(spec.metrics), wall, None, None,
                         mode.name, budget)
    study.set_user_attr(RESULT_ATTR, asdict(result))


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
    (0, 0)) as its score, and the front member with the best F1 as its representative model."""
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

    def f1(t: FrozenTrial) -> float:
        r, p = t.values
        return 2 * r * p / (r + p) if r + p > 0 else 0.0

    representative = max(front, key=f1) if front else None
    return StrategySummary(
        study=study.study_name,
        strategy=result.get("strategy", study.study_name),
        pruning=False,
        best_value=curve[-1] if curve else None,
        best_trial=representative.number if representative else None,
        best_params=dict(representative.user_attrs.get(HP_VALUES_ATTR, representative.params))
        if representative else {},
        test=representative.user_attrs.get("test") if representative else None,
        completed=sum(t.state == TrialState.COMPLETE for t in trials),
        pruned=0,
        failed=sum(t.state == TrialState.FAIL for t in trials),
        epochs_trained=sum(int(t.user_attrs.get(EPOCHS_ATTR, 0)) for t in trials),
        epochs_saved=0,
        wall_seconds=float(result.get("wall_seconds", times[-1] if times else 0.0)),
        curve=curve,
        times=times,
        recall_precision=points,
        front=[tuple(t.values) for t in front],
    )


def best_trial(study: optuna.Study, spec: fraud.ObjectiveSpec) -> FrozenTrial | None:
    """The best completed trial (the best feasible one under a precision floor)."""
    completed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.value is not None]
    if spec.precision_floor is not None:
        completed = [t for t in completed
                     if t.user_attrs.get("val_precision", -1.0) >= spec.precision_floor]
    if not completed:
        return None
    return max(completed, key=lambda t: (t.value, -t.number))


def _quiet() -> None:
    """Optuna's per-trial INFO lines and TensorFlow's retracing warnings would bury the
    progress bar."""
    import logging

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="trial", dynamic_ncols=True, disable=not enabled)


# --------------------------------------------------------------------------------------------
# The report: read from the studies only
# --------------------------------------------------------------------------------------------


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


def summarise(study: optuna.Study, precision_floor: float | None = None) -> StrategySummary:
    """A strategy's row of the report, from its study alone."""
    result = study.user_attrs.get(RESULT_ATTR, {})
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    finished = [t for t in trials if t.state.is_finished()]
    start = min((t.datetime_start for t in trials if t.datetime_start), default=None)
    curve, times, best = [], [], -math.inf
    for t in finished:
        feasible = precision_floor is None or \
            t.user_attrs.get("val_precision", -1.0) >= precision_floor
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


def write_report(storage: str, study_names: Sequence[str], output: str | os.PathLike,
                 meta: dict[str, Any] | None = None) -> Path:
    """``report.md``, ``report.html`` and the plots, from the studies in ``storage``."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    meta = meta or {}
    floor = (meta.get("objective") or {}).get("precision_floor")
    studies = [optuna.load_study(study_name=n, storage=storage) for n in study_names]
    summaries = [summarise_pareto(st) if len(st.directions) > 1 else summarise(st, floor)
                 for st in studies]
    grid = next((s for s in summaries if s.strategy == "grid" and s.pruning ==
                 any(x.pruning for x in summaries)), None) or \
        next((s for s in summaries if s.strategy == "grid"), None)
    if grid is not None and grid.best_value is not None:
        for s in summaries:
            s.trials_to_grid_best = trials_to_reach(s.curve, grid.best_value)
    figures = _plots(summaries, output, _score_name(meta))
    sections = _sections(summaries, grid, meta, figures)
    (output / "report.md").write_text(_markdown(sections))
    (output / "report.html").write_text(_html(sections))
    return output / "report.md"


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
    sections: list[tuple[str, list]] = [("Comparison", intro + [("table", (header, rows))])]
    sections.append(("Verdict", [("p", line) for line in _verdict(summaries, grid, metric)]))
    params_rows = [[_label(s), s.best_trial if s.best_trial is not None else "-",
                    ", ".join(f"{k}={_fmt(v)}" for k, v in s.best_params.items()) or "-"]
                   for s in summaries]
    sections.append(("Best hyperparameters",
                     [("table", (["strategy", "trial", "hyperparameters"], params_rows))]))
    sections.append(("Pruning", [("p", line) for line in _pruning_lines(summaries)]))
    if "sklearn_baseline" in meta:
        base = meta["sklearn_baseline"]
        sections.append(("scikit-learn GridSearchCV baseline (the article's)", [
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
        ]))
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


def _markdown(sections) -> str:
    out = ["# Fraud detection: search strategies compared", ""]
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


def _html(sections) -> str:
    import html
    import re

    def inline(text: str) -> str:
        text = html.escape(str(text))
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", text)

    out = ["<!doctype html><html><head><meta charset='utf-8'>",
           "<title>Fraud detection: search strategies compared</title>",
           "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
           "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;"
           "padding:4px 8px;text-align:right}td:first-child{text-align:left}"
           "img{max-width:100%}</style></head><body>",
           "<h1>Fraud detection: search strategies compared</h1>"]
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


__all__ = ["CompareConfig", "MODES", "STRATEGIES", "compare", "rewrite_report", "summarise",
           "trials_to_reach", "write_report"]
