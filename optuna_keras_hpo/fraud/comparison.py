"""The article's question, answered with evidence: search strategies compared on one task.

Two set-ups (``CompareConfig.setup``):

``"one_space"`` (default): every strategy searches one space.

1. **The table.** ``GridSearch`` trains every point of a discretisation of the Bayesian space
   once (study ``{prefix}-grid``). Training is seeded per configuration, so a configuration's
   score is a property of the configuration, and the grid's trials are a table of them.
2. **On the grid, repeated.** Each strategy (GP-EI, GP-PI, GP-UCB, TPE, random, and the grid
   itself in random order) searches the grid's space ``repeats`` times with different seeds; a
   configuration is read from the table instead of trained again (each replay trial names its
   table trial in the user attribute ``table_trial``), so repeats cost no training. Each repeat
   is a study (``{prefix}-replay-{strategy}-{r}``) and stops when it reaches the table's best.
   This is how tabular HPO benchmarks (HPOBench, NAS-Bench, YAHPO Gym) make comparisons cheap.
3. **Off the grid.** GP-EI, TPE and random search the continuous space with real training,
   ``continuous_repeats`` times each (``{prefix}-continuous-{strategy}-{r}``); each repeat's best
   model is scored on the test split beside the grid's best model, with bootstrap intervals.

``"article"``: the article's own set-up: the grid over its Adam-only grid, the other strategies
over the Bayesian space, one run each: different spaces.

Training jobs (the table, the continuous searches) and replays run in ``jobs`` processes; every
result is stored in the studies, and :mod:`~optuna_keras_hpo.fraud.report` reads only them.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_keras_hpo import storage as storage_lib
from optuna_keras_hpo.fraud import data as data_lib
from optuna_keras_hpo.fraud import evaluation
from optuna_keras_hpo.fraud.hypermodel import (
    ARTICLE_GRID,
    BAYESIAN_GRID,
    FraudHyperModel,
    check_grid,
)
from optuna_keras_hpo.fraud.objectives import DEFAULT_OBJECTIVE, ObjectiveSpec, objective_spec
from optuna_keras_hpo.hyperparameters import HyperParameters, TrialHyperParameters
from optuna_keras_hpo.objective import Objective, ParetoObjective
from optuna_keras_hpo.samplers import SAMPLER_NAMES, make_sampler
from optuna_keras_hpo.samplers._named import check_sampler_options
from optuna_keras_hpo.tuner import Tuner
from optuna_keras_hpo.tuners import GridSearch

STRATEGIES = tuple(SAMPLER_NAMES)  # gp-ei, gp-pi, gp-ucb, tpe, random, grid
CONTINUOUS_STRATEGIES = ("gp-ei", "tpe", "random")  # the off-grid question's searches
SETUPS = ("one_space", "article")
NO_PRUNING_SUFFIX = "-nopruning"
RESULT_ATTR = "compare"  # study user attribute: a run's result (wall time, test metrics, ...)
TEST_SCORES_ATTR = "test_scores"  # study user attribute: the best model's P(fraud) on test
SAMPLER_OPTIONS_ATTR = "sampler_options"  # study user attribute: xi, kappa, initial points
TABLE_TRIAL_ATTR = "table_trial"  # replay trial user attribute: the table trial it read
REPLAY_ASKS_PER_POINT = 20  # a replay gives up after this many asks per grid point

# The quick mode's discretisation of the Bayesian space: 4 optimizers * 3 learning rates *
# 2 widths * 3 epoch counts = 72 points (the other hyperparameters at one value; batches of
# 64, the largest, make each training the shortest).
QUICK_GRID: dict[str, list] = {
    **BAYESIAN_GRID,
    "neurons1": [20, 60],
    "dropout_rate1": [0.2],
    "batch_size": [64],
    "epochs": [4, 8, 12],
}
# The quick mode's article grid: 8 points of the article's grid (Adam, 10 epochs of batches
# of 16, long enough for its small learning rates to move the model).
QUICK_ARTICLE_GRID: dict[str, list] = {
    "learning_rate": [0.001, 0.0005],
    "neurons1": [20, 40],
    "neurons2": [20, 40],
    "dropout_rate1": [0.1],
    "dropout_rate2": [0.1],
    "batch_size": [16],
    "epochs": [10],
}


@dataclass(frozen=True)
class Mode:
    """The budgets of a comparison.

    Attributes:
        rows: Rows of synthetic data.
        trials: Trials of each continuous search (and of each strategy in the article set-up).
        epochs: ``(min, max, step)`` of the Bayesian space's epochs.
        grid: The one-space grid (a discretisation of the Bayesian space).
        article_grid: The article set-up's grid.
        patience: EarlyStopping's patience.
        initial_points: Random trials before a model-based sampler takes over.
        repeats: Replays of each strategy on the table.
        continuous_repeats: Continuous searches of each strategy (real training).
    """

    name: str
    rows: int
    trials: int
    epochs: tuple[int, int, int]
    grid: dict[str, list]
    article_grid: dict[str, list]
    patience: int
    initial_points: int
    repeats: int
    continuous_repeats: int

    @property
    def grid_size(self) -> int:
        return grid_size(self.grid)


def grid_size(grid: dict[str, list]) -> int:
    """Points of a one-space or article grid (Lion's betas multiply only the Lion points)."""
    lion = len(grid.get("beta_1_lion", [1])) * len(grid.get("beta_2_lion", [1]))
    rest = math.prod(len(v) for k, v in grid.items()
                     if k not in ("optimizer_name", "beta_1_lion", "beta_2_lion"))
    optimizers = grid.get("optimizer_name", ["adam"])
    return rest * sum(lion if o == "lion" else 1 for o in optimizers)


QUICK = Mode("quick", rows=2000, trials=8, epochs=(4, 12, 4), grid=QUICK_GRID,
             article_grid=QUICK_ARTICLE_GRID, patience=3, initial_points=4, repeats=30,
             continuous_repeats=3)
FULL = Mode("full", rows=10_000, trials=50, epochs=(50, 200, 50), grid=BAYESIAN_GRID,
            article_grid=ARTICLE_GRID, patience=10, initial_points=10, repeats=100,
            continuous_repeats=3)
MODES = {"quick": QUICK, "full": FULL}


@dataclass
class CompareConfig:
    """What :func:`compare` runs. ``None`` fields take the mode's value."""

    mode: str = "quick"
    setup: str = "one_space"
    output: str = "results/compare"
    storage: str | None = None
    strategies: Sequence[str] = STRATEGIES
    objective: str = DEFAULT_OBJECTIVE
    precision_floor: float = 0.5
    trials: int | None = None
    repeats: int | None = None
    continuous_repeats: int | None = None
    grid: dict[str, list] | None = None  # the one-space grid (default: the mode's)
    grid_budget: int | None = None  # the article set-up: grid points to run
    pruning: bool = True
    pruning_reference: Sequence[str] | None = None  # article set-up; default GP-EI
    data: str | None = None
    target: str | None = None
    rows: int | None = None
    seed: int = 0
    jobs: int | None = None
    sklearn_baseline: bool = False
    progress: bool = True
    xi: float | None = None  # gp-ei, gp-pi (default: the sampler's)
    kappa: float | None = None  # gp-ucb (default: the sampler's)
    initial_points: int | None = None  # GP and TPE initial design (default: the mode's)
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; expected one of {sorted(MODES)}.")
        if self.setup not in SETUPS:
            raise ValueError(f"setup={self.setup!r}; expected one of {list(SETUPS)}.")
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
        check_sampler_options(list(self.strategies), xi=self.xi, kappa=self.kappa,
                              initial_points=self.initial_points)
        for name, minimum in (("trials", 1), ("grid_budget", 1), ("rows", 1), ("repeats", 1),
                              ("jobs", 1), ("continuous_repeats", 0), ("initial_points", 0)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < minimum):
                raise ValueError(f"{name}={value!r}; expected an integer >= {minimum} or None.")
        if (self.data is None) != (self.target is None):
            raise ValueError(
                f"data={self.data!r}, target={self.target!r}; give both (a CSV file and its "
                "target column) or neither (synthetic data)."
            )
        spec = objective_spec(self.objective, self.precision_floor)
        if len(spec.metrics) > 1 and self.setup != "article":
            raise ValueError(
                f"objective={self.objective!r} with setup={self.setup!r}: a two-objective "
                "study has no single best score to replay; use setup='article' (--setup "
                "article) for Pareto fronts."
            )
        if len(spec.metrics) > 1 and self.pruning:
            raise ValueError(
                f"objective={self.objective!r} with pruning=True: Optuna cannot prune "
                "multi-objective trials; turn pruning off (--no-pruning)."
            )

    @property
    def mode_settings(self) -> Mode:
        mode = MODES[self.mode]
        return replace(
            mode, rows=self.rows or mode.rows, trials=self.trials or mode.trials,
            repeats=self.repeats or mode.repeats,
            continuous_repeats=mode.continuous_repeats if self.continuous_repeats is None
            else self.continuous_repeats,
            grid=mode.grid if self.grid is None else check_grid(self.grid, "grid"),
            initial_points=(mode.initial_points if self.initial_points is None
                            else self.initial_points),
        )

    def sampler_options(self, mode: Mode) -> dict[str, float | int | None]:
        """What the samplers were given (None: the sampler's default), as recorded in each
        study's ``sampler_options`` user attribute."""
        return {**self.acquisition_options, "initial_points": mode.initial_points}

    @property
    def acquisition_options(self) -> dict[str, float | None]:
        """``xi`` and ``kappa`` for :func:`make_sampler`."""
        return {"xi": self.xi, "kappa": self.kappa}

    @property
    def n_jobs(self) -> int:
        return self.jobs or max(1, min(2, os.cpu_count() or 1))

    def storage_url(self) -> str:
        if self.storage:
            return self.storage
        return f"sqlite:///{(Path(self.output) / 'studies.db').resolve()}"

    def prefix(self) -> str:
        return f"fraud-{self.objective}"


def make_pruner(enabled: bool) -> optuna.pruners.BasePruner:
    """The default pruner: Optuna's median rule (after 3 trials, from the second epoch)."""
    if not enabled:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)


@dataclass
class StrategyRun:
    """What one search leaves in its study (user attribute ``compare``)."""

    strategy: str
    pruning: bool
    objective: str
    metric: str
    wall_seconds: float
    test: dict[str, float] | None
    best_trial: int | None
    mode: str
    budget: int
    kind: str = "article"  # "table", "continuous" or "article"
    repeat: int = 0
    test_intervals: dict[str, list[float]] | None = None
    vs_grid: dict[str, float] | None = None  # test metric minus the grid's best, interval


def best_trial(study: optuna.Study, spec: ObjectiveSpec) -> FrozenTrial | None:
    """The best completed trial (the best feasible one under a precision floor)."""
    completed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.value is not None and spec.feasible(t.user_attrs)]
    if not completed:
        return None
    return max(completed, key=lambda t: (t.value, -t.number))


def config_key(params: dict[str, Any]) -> str:
    """A configuration's key in the table: its parameters, sorted, as JSON."""
    return json.dumps(sorted(params.items()), default=str)


# --------------------------------------------------------------------------------------------
# Jobs: what one process runs (training a study, or replaying the table)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One unit of work: ``kind`` is ``"table"``, ``"continuous"`` or ``"replay"``."""

    kind: str
    study: str
    strategy: str = "grid"
    repeat: int = 0


def _seed(config: CompareConfig, repeat: int) -> int:
    """Repeat ``repeat``'s sampler seed (training is seeded by the configuration instead)."""
    return config.seed * 10_007 + repeat


def _hypermodel(config: CompareConfig, mode: Mode, data, space: str) -> FraudHyperModel:
    """The fraud hypermodel with the metrics the comparison reads (each Keras metric costs
    time in every training step): the objective's, precision and recall."""
    spec = objective_spec(config.objective, config.precision_floor)
    metrics = {"precision", "recall", *(m.removeprefix("val_") for m in spec.metrics)}
    return FraudHyperModel(data, space=space, epochs=mode.epochs,
                           grid=mode.article_grid if space == "article_grid" else
                           (mode.grid if space == "grid" else None),
                           patience=mode.patience, seed=config.seed, metrics=tuple(metrics))


def _load(config: CompareConfig, mode: Mode):
    return _load_data(config.data, config.target, mode.rows, config.seed)


@functools.lru_cache(maxsize=4)
def _load_data(path: str | None, target: str | None, rows: int, seed: int):
    return data_lib.load_data(path, target, n_rows=rows, seed=seed)


@functools.lru_cache(maxsize=8)
def open_storage(url: str) -> optuna.storages.BaseStorage:
    """One storage object per URL in each process: creating one connects and checks the schema
    (a few tenths of a second), and SQLite gets its write-ahead log settings
    (:func:`optuna_keras_hpo.storage.make_storage`)."""
    return storage_lib.make_storage(url)


@functools.lru_cache(maxsize=4)
def _cached_table(url: str, study_name: str, spec: ObjectiveSpec) -> Table:
    return read_table(url, study_name, spec)


def run_job(config: CompareConfig, job: Job, tick=None) -> str:
    """Run ``job`` (in this process) and store its result in its study; returns the study's
    name. ``tick`` is called after each trial."""
    _quiet()
    mode = config.mode_settings
    spec = objective_spec(config.objective, config.precision_floor)
    data = _load(config, mode)
    storage = config.storage_url()
    if job.kind == "replay":
        table = _cached_table(storage, table_study_name(config), spec)
        hypermodel = _hypermodel(config, mode, data, "grid")
        study = replay(table, hypermodel, job.strategy, _seed(config, job.repeat),
                       mode.initial_points, name=job.study, **config.acquisition_options)
        _persist(study, storage)
        return job.study
    _train(config, mode, spec, data, job, tick)
    return job.study


def _train(config: CompareConfig, mode: Mode, spec: ObjectiveSpec, data, job: Job,
           tick) -> None:
    common = dict(
        objective=Objective(spec.metrics[0], "max"), storage=config.storage_url(),
        study_name=job.study, directory=config.output, project_name=job.study, overwrite=True,
        max_consecutive_failed_trials=None, constraints=spec.tuner_constraints(),
    )
    if job.kind == "table":
        tuner: Tuner = GridSearch(hypermodel=_hypermodel(config, mode, data, "grid"),
                                  pruner=optuna.pruners.NopPruner(), seed=config.seed,
                                  **common)
        budget = mode.grid_size
    else:
        sampler = make_sampler(job.strategy, _seed(config, job.repeat),
                               n_startup_trials=mode.initial_points,
                               **config.acquisition_options)
        tuner = Tuner(hypermodel=_hypermodel(config, mode, data, "bayesian"),
                      max_trials=mode.trials, sampler=sampler,
                      pruner=make_pruner(config.pruning), **common)
        budget = mode.trials
    if tick is not None:
        tuner.on_trial_end = lambda trial: tick()
    start = time.monotonic()
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 verbose=0)
    wall = time.monotonic() - start
    best = best_trial(tuner.study, spec)
    test = None
    if best is not None:
        model = tuner.load_model(tuner._view(best))  # noqa: SLF001
        scores = evaluation.positive_scores(model, data.x_test)
        tuner.study.set_user_attr(TEST_SCORES_ATTR, [float(s) for s in scores])
        test = evaluation.metrics_from_scores(data.y_test, scores)
    result = StrategyRun(job.strategy, job.kind == "continuous" and config.pruning, spec.name,
                         spec.metrics[0], wall, test, best.number if best else None,
                         mode.name, budget, kind=job.kind, repeat=job.repeat)
    tuner.study.set_user_attr(RESULT_ATTR, asdict(result))
    tuner.study.set_user_attr(SAMPLER_OPTIONS_ATTR, config.sampler_options(mode))


# --------------------------------------------------------------------------------------------
# The table and its replays
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableRow:
    """One trained configuration: its trial in the grid's study and what it scored."""

    number: int
    value: float | None  # None: the trial failed
    feasible: bool
    constraints: tuple[tuple[str, float], ...]


@dataclass
class Table:
    """The grid's study read as a table: configuration key -> :class:`TableRow`."""

    study: str
    rows: dict[str, TableRow]

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def best(self) -> float:
        """The best feasible value (-inf when none is feasible)."""
        return max((r.value for r in self.rows.values() if r.feasible and r.value is not None),
                   default=-math.inf)


def table_study_name(config: CompareConfig) -> str:
    return f"{config.prefix()}-grid"


def read_table(storage: str, study_name: str, spec: ObjectiveSpec) -> Table:
    """The table of a grid's study: each finished trial, keyed by :func:`config_key`."""
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    rows = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        complete = t.state == TrialState.COMPLETE
        rows[config_key(t.params)] = TableRow(
            number=t.number, value=t.value if complete else None,
            feasible=complete and spec.feasible(t.user_attrs),
            constraints=tuple(sorted(spec.tuner_constraints()(t.user_attrs).items()))
            if spec.precision_floor is not None and complete else (),
        )
    if not rows:
        raise ValueError(f"study {study_name!r} has no finished trial; the table is empty.")
    return Table(study_name, rows)


def replay(table: Table, hypermodel: FraudHyperModel, strategy: str, seed: int,
           initial_points: int, *, name: str = "replay", xi: float | None = None,
           kappa: float | None = None) -> optuna.Study:
    """``strategy`` searching the table's space (an in-memory study called ``name``): each
    trial declares the hypermodel's hyperparameters and reads its configuration's score from
    the table. Stops at the table's best, when every configuration has been read, or after
    :data:`REPLAY_ASKS_PER_POINT` asks per configuration. ``"grid"`` is the grid in a random
    order (the table's configurations enqueued in a permutation drawn with ``seed``)."""
    if strategy == "grid":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = make_sampler(strategy, seed, n_startup_trials=initial_points, xi=xi,
                               kappa=kappa)
    study = optuna.create_study(study_name=name, direction="maximize", sampler=sampler)
    study.set_user_attr("replay", {"strategy": strategy, "seed": seed, "table": table.study,
                                   "table_size": table.size, "table_best": table.best,
                                   "initial_points": initial_points, "xi": xi,
                                   "kappa": kappa})
    keys = list(table.rows)
    order = iter(np.random.default_rng(seed).permutation(table.size))
    target = table.best
    seen: set[str] = set()
    for _ in range(REPLAY_ASKS_PER_POINT * table.size):
        if strategy == "grid":  # one point at a time: no point is left waiting at the end
            study.enqueue_trial(dict(json.loads(keys[next(order)])))
        trial = study.ask()
        hypermodel.configuration(TrialHyperParameters(trial, HyperParameters()))
        key = config_key(trial.params)
        row = table.rows.get(key)
        seen.add(key)
        if row is None:  # a configuration the grid did not run (its trial was refused)
            study.tell(trial, state=TrialState.FAIL)
            continue
        trial.set_user_attr(TABLE_TRIAL_ATTR, row.number)
        for constraint, value in row.constraints:
            trial.set_constraint(constraint, value)
        if row.value is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, row.value)
            if row.feasible and row.value >= target:
                break
        if len(seen) >= table.size:
            break
    return study


def _persist(study: optuna.Study, url: str) -> None:
    """Copy an in-memory study into the storage at ``url`` (replacing one of the same name)."""
    storage = open_storage(url)
    try:
        optuna.delete_study(study_name=study.study_name, storage=storage)
    except KeyError:
        pass
    copy = optuna.create_study(study_name=study.study_name, storage=storage,
                               direction="maximize")
    for key, value in study.user_attrs.items():
        copy.set_user_attr(key, value)
    copy.add_trials(study.get_trials(deepcopy=False))


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def plan(config: CompareConfig) -> tuple[list[Job], list[Job]]:
    """The one-space set-up's training jobs (the table first) and replay jobs."""
    mode = config.mode_settings
    prefix = config.prefix()
    training = [Job("table", table_study_name(config))]
    for strategy in CONTINUOUS_STRATEGIES:
        if strategy in config.strategies:
            training += [Job("continuous", f"{prefix}-continuous-{strategy}-{r}", strategy, r)
                         for r in range(mode.continuous_repeats)]
    replays = [Job("replay", f"{prefix}-replay-{strategy}-{r:03d}", strategy, r)
               for strategy in (*[s for s in config.strategies if s != "grid"], "grid")
               for r in range(mode.repeats)]
    return training, replays


def compare(config: CompareConfig) -> Path:
    """Run the comparison, store every result in the studies, write the report; returns the
    report's path (``{output}/report.md``)."""
    from optuna_keras_hpo.fraud import report

    config.validate()
    _quiet()
    # A table or a CSV read by an earlier comparison in this process may have changed since.
    _cached_table.cache_clear()
    _load_data.cache_clear()
    mode = config.mode_settings
    spec = objective_spec(config.objective, config.precision_floor)
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    data = _load(config, mode)
    storage = config.storage_url()
    open_storage(storage)  # checks the URL and creates the schema once
    if config.setup == "article":
        names = _compare_article(config, mode, spec, data, storage)
    else:
        training, replays = plan(config)
        _run_jobs(config, training, replays)
        _compare_test_scores(config, spec, data, storage, training)
        names = [j.study for j in training + replays]
    meta = {
        "setup": config.setup,
        "mode": asdict(mode) | {"grid_size": mode.grid_size},
        "data": data.describe(),
        "objective": asdict(spec),
        "storage": storage_lib.mask_url(storage),
        "studies": names,
        "seed": config.seed,
        "jobs": config.n_jobs,
    }
    if config.sklearn_baseline:
        meta["sklearn_baseline"] = evaluation.sklearn_grid_baseline(
            data, mode.article_grid, cv=3, seed=config.seed)
    (output / "compare.json").write_text(json.dumps(meta, indent=2, default=str))
    return report.write_report(storage, names, output, meta)


def _run_jobs(config: CompareConfig, training: list[Job], replays: list[Job]) -> None:
    """The training jobs, then (once the table is trained) the replays: in this process with
    ``jobs=1``, else in a pool of ``jobs`` processes."""
    mode = config.mode_settings
    total = mode.grid_size + mode.trials * (len(training) - 1) + len(replays)
    progress = _progress(total, config.progress)
    try:
        if config.n_jobs == 1:
            for job in training + replays:
                progress.set_description(job.study)
                run_job(config, job, tick=lambda: progress.update(1))
                if job.kind == "replay":
                    progress.update(1)
            return
        _run_pool(config, training, replays, progress)
    finally:
        progress.close()


def _run_pool(config: CompareConfig, training: list[Job], replays: list[Job],
              progress) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    storage = config.storage_url()
    context = multiprocessing.get_context("spawn")  # TensorFlow and torch do not survive fork
    trained: dict[str, int] = {}
    with ProcessPoolExecutor(max_workers=config.n_jobs, mp_context=context,
                             initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
        pending = {pool.submit(run_job, config, job): job for job in training}
        replays_submitted = False
        while pending:
            done, _ = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
            polled = {j.study for j in pending.values() if j.kind != "replay"}
            for future in done:
                job = pending.pop(future)
                future.result()  # a job's exception stops the comparison
                if job.kind == "table" and not replays_submitted:
                    pending.update({pool.submit(run_job, config, r): r for r in replays})
                    replays_submitted = True
                if job.kind == "replay":
                    progress.update(1)
            if polled:  # training jobs are followed trial by trial
                counts = {**trained, **_finished_trials(storage, polled)}
                progress.update(sum(counts.values()) - sum(trained.values()))
                trained = counts


def _exit_with_parent(parent: int) -> None:
    """A worker's initializer: exit as soon as the comparison's process is gone (killed with
    SIGKILL, its workers would otherwise train on, orphaned, for the rest of their job)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _finished_trials(storage: str, names: set[str]) -> dict[str, int]:
    """Trials started so far in each of the studies ``names`` that exist (for the progress bar;
    counted by the storage, no trial is read)."""
    counts = {}
    backend = open_storage(storage)
    for name in names:
        try:
            counts[name] = backend.get_n_trials(backend.get_study_id_from_name(name))
        except Exception:  # not created yet, or the database is busy: next poll
            continue
    return counts


def _compare_test_scores(config: CompareConfig, spec: ObjectiveSpec, data, storage: str,
                         training: list[Job]) -> None:
    """Bootstrap intervals of each best model's test metrics, and each continuous search's
    best model against the grid's (paired on the test rows); stored in the studies."""
    scores = {}
    for job in training:
        study = optuna.load_study(study_name=job.study, storage=open_storage(storage))
        scores[job.study] = study.user_attrs.get(TEST_SCORES_ATTR)
    grid_scores = scores[training[0].study]
    metric = spec.metrics[0].removeprefix("val_")
    compared = metric if metric in evaluation.INTERVAL_METRICS else "pr_auc"
    for job in training:
        study = optuna.load_study(study_name=job.study, storage=open_storage(storage))
        result = dict(study.user_attrs.get(RESULT_ATTR, {}))
        if scores[job.study] is None:
            continue
        result["test_intervals"] = evaluation.bootstrap_intervals(
            data.y_test, scores[job.study], seed=config.seed)
        if job.kind == "continuous" and grid_scores is not None:
            result["vs_grid"] = {"metric": compared, **evaluation.bootstrap_difference(
                data.y_test, scores[job.study], grid_scores, compared, seed=config.seed)}
        study.set_user_attr(RESULT_ATTR, result)


# --------------------------------------------------------------------------------------------
# The article's set-up: the grid over its own space, one run per strategy
# --------------------------------------------------------------------------------------------


def article_study_name(prefix: str, strategy: str, pruning: bool, with_reference: bool) -> str:
    suffix = NO_PRUNING_SUFFIX if (with_reference and not pruning) else ""
    return f"{prefix}-{strategy}{suffix}"


def _compare_article(config: CompareConfig, mode: Mode, spec: ObjectiveSpec, data,
                     storage: str) -> list[str]:
    prefix = config.prefix()
    runs: list[tuple[str, bool]] = [(s, config.pruning) for s in config.strategies]
    reference = config.pruning_reference
    if reference is None:
        reference = [s for s in ("gp-ei",) if s in config.strategies]
    with_reference = config.pruning and bool(reference)
    if with_reference:
        runs += [(s, False) for s in reference]
    size = grid_size(mode.article_grid)
    grid_trials = min(size, config.grid_budget or size)
    total = sum(grid_trials if s == "grid" else mode.trials for s, _ in runs)
    progress = _progress(total, config.progress)
    names = []
    try:
        for strategy, pruning in runs:
            name = article_study_name(prefix, strategy, pruning, with_reference)
            names.append(name)
            budget = grid_trials if strategy == "grid" else mode.trials
            _run_article_strategy(config, mode, spec, data, storage, strategy, pruning, name,
                                  budget, progress)
    finally:
        progress.close()
    return names


def _run_article_strategy(config, mode, spec, data, storage, strategy, pruning, name, budget,
                          progress) -> None:
    """One strategy of the article's set-up, through the tuners. With two metrics (the Pareto
    objective: validation recall and precision, both maximised) the study is multi-objective
    (:class:`ParetoObjective`, no pruning), and the representative model is the front member
    with the best validation F1; selection uses validation values only."""
    hypermodel = _hypermodel(config, mode, data,
                             "article_grid" if strategy == "grid" else "bayesian")
    pareto = len(spec.metrics) > 1
    common = dict(
        hypermodel=hypermodel, storage=storage, study_name=name, directory=config.output,
        project_name=name, overwrite=True, seed=config.seed, max_consecutive_failed_trials=None,
    )
    if pareto:
        common["objective"] = ParetoObjective([Objective(m, "max") for m in spec.metrics])
    else:
        common.update(objective=Objective(spec.metrics[0], "max"), pruner=make_pruner(pruning),
                      constraints=spec.tuner_constraints())
    if strategy == "grid":
        tuner: Tuner = GridSearch(max_trials=budget, **common)
    else:
        sampler = make_sampler(strategy, config.seed, n_startup_trials=mode.initial_points,
                               **config.acquisition_options)
        tuner = Tuner(max_trials=budget, sampler=sampler, **common)
    progress.set_description(name)
    seen = {"n": 0}

    def tick(trial) -> None:
        seen["n"] += 1
        progress.update(1)

    tuner.on_trial_end = tick
    start = time.monotonic()
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 verbose=0)
    wall = time.monotonic() - start
    progress.update(max(0, budget - seen["n"]))
    best = pareto_representative(tuner.study) if pareto else best_trial(tuner.study, spec)
    test = None
    if best is not None:
        model = tuner.load_model(tuner._view(best))  # noqa: SLF001
        test = evaluation.evaluate_test(model, data)
    result = StrategyRun(strategy, pruning and not pareto, spec.name, " & ".join(spec.metrics),
                         wall, test, best.number if best else None, mode.name, budget)
    tuner.study.set_user_attr(RESULT_ATTR, asdict(result))
    tuner.study.set_user_attr(SAMPLER_OPTIONS_ATTR, config.sampler_options(mode))


def pareto_representative(study: optuna.Study) -> FrozenTrial | None:
    """The member of a (recall, precision) Pareto front with the best F1."""
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        return None

    def f1(t: FrozenTrial) -> float:
        r, p = t.values
        return 2 * r * p / (r + p) if r + p > 0 else 0.0

    return max(study.best_trials, key=lambda t: (f1(t), -t.number))


def _quiet() -> None:
    """Optuna's per-trial INFO lines and TensorFlow's retracing warnings would bury the
    progress bar."""
    import logging

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, disable=not enabled)


__all__ = ["CompareConfig", "MODES", "STRATEGIES", "compare", "config_key", "read_table",
           "replay"]
