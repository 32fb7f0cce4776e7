"""The ``Tuner`` facade: KerasTuner's search API over one Optuna study.

A strategy (``BayesianOptimization``, ``RandomSearch``, ...) only chooses the study's sampler and
pruner; everything else (running trials, recording them, reading results back) lives here. The
study in its storage is the only state: results, resumption and ``get_best_*`` all read it.
"""

from __future__ import annotations

import copy
import gc
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.trial import FrozenTrial, TrialState

from optuna_keras_hpo import distributed
from optuna_keras_hpo import storage as storage_lib
from optuna_keras_hpo._validation import check_int
from optuna_keras_hpo.hypermodel import HyperModel, as_hypermodel
from optuna_keras_hpo.hyperparameters import Fixed, HyperParameters, TrialHyperParameters
from optuna_keras_hpo.objective import (
    DefaultObjective,
    MultiObjective,
    Objective,
    ParetoObjective,
    average_metrics,
    create_objective,
    metrics_from_fit_result,
)
from optuna_keras_hpo.pruning import pruning_callback

# Trial user attributes written by the tuner (every final metric is one more, under its name).
HP_VALUES_ATTR = "hyperparameters"
MODEL_ATTR = "model_artifact_id"
FAIL_REASON_ATTR = "fail_reason"
BEST_EPOCH_ATTR = "best_epoch"
# Study system attribute: the declared space (KerasTuner's config of each declaration), grown by
# the trials that declare something new (in ``fit``, or a branch first reached).
SPACE_ATTR = "okh:search_space"

_STATUS = {
    TrialState.COMPLETE: "COMPLETED",
    TrialState.PRUNED: "STOPPED",
    TrialState.FAIL: "FAILED",
    TrialState.RUNNING: "RUNNING",
    TrialState.WAITING: "IDLE",
}
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class FatalError(RuntimeError):
    """A mistake in the tuning set-up that every trial would repeat; it stops the search."""


class TrialMetrics(dict):
    """A trial's final metrics (KerasTuner's ``MetricsTracker`` read API)."""

    def get_best_value(self, name: str) -> float | None:
        return self.get(name)

    def get_last_value(self, name: str) -> float | None:
        return self.get(name)


class Trial:
    """A KerasTuner-style view of one Optuna trial.

    Attributes:
        trial_id: The trial number as a zero-padded string.
        hyperparameters: A :class:`HyperParameters` with the trial's values.
        score: The objective value (None unless COMPLETED; a tuple of values with a
            :class:`~optuna_keras_hpo.objective.ParetoObjective`).
        status: ``COMPLETED``, ``STOPPED`` (pruned), ``FAILED``, ``RUNNING`` or ``IDLE``.
        metrics: Every final metric of the trial.
        frozen_trial: The underlying :class:`optuna.trial.FrozenTrial`.
    """

    def __init__(self, frozen_trial: FrozenTrial, space: HyperParameters, id_width: int = 2):
        self.frozen_trial = frozen_trial
        self.trial_id = f"{frozen_trial.number:0{id_width}d}"
        self.hyperparameters = space.copy()
        self.hyperparameters.values = dict(
            frozen_trial.user_attrs.get(HP_VALUES_ATTR, frozen_trial.params)
        )
        self.status = _STATUS.get(frozen_trial.state, frozen_trial.state.name)
        self.score = None
        if frozen_trial.state == TrialState.COMPLETE:
            values = frozen_trial.values or []
            self.score = values[0] if len(values) == 1 else tuple(values)
        self.best_step = frozen_trial.user_attrs.get(BEST_EPOCH_ATTR)
        self.message = frozen_trial.user_attrs.get(FAIL_REASON_ATTR)
        self.metrics = TrialMetrics(
            (k, v) for k, v in frozen_trial.user_attrs.items()
            if isinstance(v, (int, float)) and k != BEST_EPOCH_ATTR
        )

    def summary(self) -> None:
        print(f"Trial {self.trial_id} summary")
        print("Hyperparameters:")
        for name, value in self.hyperparameters.values.items():
            print(f"{name}: {value}")
        if self.score is not None:
            print(f"Score: {self.score}")
        if self.message:
            print(self.message)

    def __repr__(self) -> str:
        return f"Trial(trial_id={self.trial_id!r}, status={self.status!r}, score={self.score!r})"


class Oracle:
    """KerasTuner's ``tuner.oracle`` read API, answered from the study."""

    def __init__(self, tuner: Tuner) -> None:
        self._tuner = tuner

    @property
    def objective(self) -> Objective:
        return self._tuner.objective

    @property
    def max_trials(self) -> int | None:
        return self._tuner.max_trials

    @property
    def hyperparameters(self) -> HyperParameters:
        return self._tuner.hyperparameters

    @property
    def trials(self) -> dict[str, Trial]:
        return {t.trial_id: t for t in map(self._tuner._view, self._tuner.study.trials)}

    def remaining_trials(self) -> int | None:
        """Trials left in the budget (:attr:`Tuner.remaining_trials`)."""
        return self._tuner.remaining_trials

    def get_trial(self, trial_id: str) -> Trial:
        return self.trials[trial_id]

    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        """The ``num_trials`` completed trials with the best scores, best first (with a
        :class:`ParetoObjective`: members of the Pareto front, by the first objective)."""
        if isinstance(self.objective, ParetoObjective):
            first = self.objective.objectives[0]
            front = sorted(self._tuner.study.best_trials, key=lambda t: t.values[0],
                           reverse=first.direction == "max")
            return [self._tuner._view(t) for t in front[:num_trials]]
        completed = self._tuner.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        reverse = self.objective.direction == "max"
        ranked = sorted(completed, key=lambda t: t.value, reverse=reverse)
        return [self._tuner._view(t) for t in ranked[:num_trials]]


def _multi_objective_logs(objective: MultiObjective):
    """A Keras callback adding the summed objective to each epoch's logs, so that the pruning
    callback and the best-epoch weights read it as they read any metric."""
    import keras

    class MultiObjectiveLogs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is not None and objective.has_value(logs):
                logs[objective.name] = objective.get_value(logs)

    return MultiObjectiveLogs()


def _best_epoch_weights(objective: Objective | ParetoObjective):
    """A Keras callback keeping the weights of the epoch where the objective was best, so the
    saved model is the one that scored the trial (KerasTuner checkpoints that epoch too). A
    :class:`ParetoObjective` scores the last epoch: the model keeps its final weights."""
    import keras

    class BestEpochWeights(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best: float | None = None
            self.weights: list | None = None

        def on_epoch_end(self, epoch, logs=None):
            if isinstance(objective, ParetoObjective):
                return
            value = (logs or {}).get(objective.name)
            if value is None or math.isnan(float(value)):
                return
            if self.best is None or objective.better_than(float(value), self.best):
                self.best = float(value)
                self.weights = self.model.get_weights()

        def restore(self, model) -> None:
            if self.weights is not None and self._model is model:
                model.set_weights(self.weights)

    return BestEpochWeights()


class Tuner:
    """Runs a KerasTuner-style search on an Optuna study.

    Args:
        hypermodel: A :class:`HyperModel` or a ``build_model(hp)`` function (may be None when a
            subclass overrides ``run_trial``).
        objective: A metric name (direction inferred), a :class:`Objective`, or None to minimise
            the number ``fit`` returns; a :class:`ParetoObjective` of several metrics makes the
            study multi-objective (``get_best_*`` then return members of the Pareto front).
        max_trials: Trials to finish in the study, counting earlier runs and other workers.
        sampler: An Optuna sampler; default: the strategy's.
        pruner: An Optuna pruner; default: the strategy's (none, as KerasTuner, except Hyperband).
        storage: An Optuna storage or URL (``postgresql://...``, ``mysql+pymysql://...``,
            ``journal:///path/study.log``, ...; see :func:`optuna_keras_hpo.storage.make_storage`);
            default SQLite at ``{directory}/{project_name}/study.db``. Several processes that
            construct a tuner with the same ``storage`` and ``study_name`` (and
            ``overwrite=False``) share the study and its ``max_trials``: KerasTuner's chief/worker
            mode without a chief (see docs/distributed.md).
        study_name: Default ``project_name``.
        heartbeat_interval: Seconds between heartbeats of a running trial (database storages
            given as a URL). With it, a trial whose process died is marked FAIL after
            ``grace_period`` seconds without a heartbeat and run again (same hyperparameters) by
            the next worker, up to ``max_retry`` times. Default None: no heartbeats.
        grace_period: Default ``2 * heartbeat_interval``.
        max_retry: Times a dead worker's trial is run again (default 3; used with heartbeats).
        artifact_store: Where trained models go (an Optuna artifact store); default a
            ``FileSystemArtifactStore`` at ``{directory}/{project_name}/artifacts``.
        hyperparameters: A :class:`HyperParameters` overriding declarations (``Fixed`` values, or
            other ranges) of the model.
        tune_new_entries: Tune declarations missing from ``hyperparameters`` (else use defaults).
        allow_new_entries: Accept declarations missing from ``hyperparameters``.
        max_retries_per_trial: Times a crashed trial is run again with the same values.
        max_consecutive_failed_trials: Consecutive failed trials after which search() raises.
        executions_per_trial: Models trained per trial; the score is their mean.
        directory, project_name: KerasTuner's layout: ``{directory}/{project_name}``.
        overwrite: Start afresh (delete the study and its models) instead of resuming.
        seed: Seed of the strategy's sampler.
        max_model_size: Models with more parameters are not trained (the trial fails).
        constraints: Optuna constraints from a trial's final metrics: a function of the metrics
            dict (the user attributes, e.g. ``val_precision``) returning ``{name: value}``, where
            a value <= 0 means feasible; stored with ``trial.set_constraint``, which Optuna's
            samplers and this project's GP sampler read. ``get_best_*`` still rank by the
            objective alone.
        optimizer, loss, metrics: If given, each model is compiled with them.
        distribution_strategy: A ``tf.distribute.Strategy`` to build models in.
        logger, tuner_id: Accepted for compatibility; unused.
    """

    def __init__(
        self,
        hypermodel: HyperModel | Callable | None = None,
        objective: Objective | ParetoObjective | str | None = None,
        max_trials: int | None = 10,
        *,
        sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        max_retry: int = storage_lib.DEFAULT_MAX_RETRY,
        artifact_store: Any = None,
        hyperparameters: HyperParameters | None = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int | None = 3,
        executions_per_trial: int = 1,
        directory: str | os.PathLike | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        seed: int | None = None,
        max_model_size: int | None = None,
        constraints: Callable[[dict[str, float]], dict[str, float]] | None = None,
        optimizer: Any = None,
        loss: Any = None,
        metrics: Any = None,
        distribution_strategy: Any = None,
        logger: Any = None,
        tuner_id: str | None = None,
        oracle: Any = None,
    ) -> None:
        if oracle is not None:
            raise ValueError(
                f"oracle={oracle!r}: KerasTuner oracles are not used here; choose the search "
                "strategy with a tuner class or pass an Optuna `sampler=`."
            )
        check_int("max_trials", max_trials, minimum=1, allow_none=True)
        check_int("executions_per_trial", executions_per_trial, minimum=1)
        check_int("max_retries_per_trial", max_retries_per_trial, minimum=0)
        check_int("max_consecutive_failed_trials", max_consecutive_failed_trials, minimum=1,
                   allow_none=True)
        check_int("max_model_size", max_model_size, minimum=1, allow_none=True)
        if hyperparameters is not None and not isinstance(hyperparameters, HyperParameters):
            raise ValueError(
                f"hyperparameters={hyperparameters!r}; expected a HyperParameters instance."
            )
        overrides_run_trial = type(self).run_trial is not Tuner.run_trial
        self.hypermodel = (
            None if hypermodel is None and overrides_run_trial else as_hypermodel(hypermodel)
        )
        self.objective = create_objective(objective)
        self.max_trials = max_trials
        self.executions_per_trial = executions_per_trial
        self.max_retries_per_trial = max_retries_per_trial
        self.max_consecutive_failed_trials = max_consecutive_failed_trials
        self.max_model_size = max_model_size
        if constraints is not None and not callable(constraints):
            raise ValueError(f"constraints={constraints!r}; expected a function of the metrics "
                             "returning {name: value} (<= 0 is feasible), or None.")
        self.constraints = constraints
        self.seed = seed
        self.tune_new_entries = tune_new_entries
        self.allow_new_entries = allow_new_entries
        self.logger = logger
        self.tuner_id = tuner_id
        self.distribution_strategy = distribution_strategy
        self._compile_overrides = {
            k: v for k, v in (("optimizer", optimizer), ("loss", loss), ("metrics", metrics))
            if v is not None
        }
        self._predeclared = hyperparameters.copy() if hyperparameters else HyperParameters()
        self._user_sampler = sampler

        if storage is None and os.environ.get("KERASTUNER_ORACLE_IP"):
            warnings.warn(
                "KERASTUNER_ORACLE_IP is set, but there is no chief here: every process that "
                "constructs a tuner with the same storage= (a PostgreSQL/MySQL URL) and "
                "study_name= shares one study. Without storage=, this process searches alone in "
                "its local SQLite study; see docs/distributed.md.",
                UserWarning,
                stacklevel=2,
            )
        self.project_name = project_name or "untitled_project"
        self.directory = str(directory or ".")
        self.project_dir = str(storage_lib.project_dir(directory, self.project_name))
        if overwrite:
            storage_lib.reset_project(Path(self.project_dir))
        if storage is None:
            Path(self.project_dir).mkdir(parents=True, exist_ok=True)
            storage = storage_lib.default_storage_url(Path(self.project_dir))
        self.study_name = study_name or self.project_name
        self._sqlite = storage_lib.is_sqlite(storage)
        self.study = storage_lib.open_study(
            storage_lib.make_storage(storage, heartbeat_interval=heartbeat_interval,
                                     grace_period=grace_period, max_retry=max_retry),
            self.study_name,
            "minimize" if isinstance(self.objective, DefaultObjective)
            else self.objective.optuna_directions if isinstance(self.objective, ParetoObjective)
            else self.objective.optuna_direction,
            overwrite,
        )
        if isinstance(self.objective, ParetoObjective) and pruner is not None and \
                not isinstance(pruner, optuna.pruners.NopPruner):
            raise ValueError(f"pruner={pruner!r} with objective={self.objective}: Optuna cannot "
                             "prune multi-objective trials; pass no pruner.")
        self.study.pruner = pruner or self._default_pruner()
        self.study.sampler = sampler or optuna.samplers.RandomSampler(seed=seed)
        if artifact_store is None:
            artifact_dir = Path(self.project_dir) / storage_lib.ARTIFACT_DIR
            artifact_dir.mkdir(parents=True, exist_ok=True)
            artifact_store = FileSystemArtifactStore(str(artifact_dir))
        self.artifact_store = artifact_store
        self.oracle = Oracle(self)
        self.hyperparameters = HyperParameters()
        if self.hypermodel is not None:
            self._populate_space()

    # -- what each strategy chooses ---------------------------------------------------------------
    def _default_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=self.seed)

    def _default_pruner(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.NopPruner()

    def _fit_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``fit`` for a trial (Hyperband sets ``epochs``)."""
        return kwargs

    def _trial_budget(self) -> int | None:
        return self.max_trials

    # -- the search space ---------------------------------------------------------------------
    def _populate_space(self) -> None:
        """Record the declared space without a trial, as KerasTuner does: ``build`` with each
        conditional branch active (``fit`` is never called outside a trial; what it declares
        joins the space when a trial first declares it), then the declarations that trials of
        earlier runs and other workers recorded in the study."""
        space = HyperParameters()
        space.merge(self.hyperparameters)
        forced: dict[str, Any] = {}
        tried: list[dict[str, Any]] = []
        while True:
            hp = self._recording_hp(forced)
            self.hypermodel.declare_hyperparameters(hp)
            try:
                self._build(hp)
            except Exception:
                pass  # a branch that fails to build is reported by the trials that reach it
            space.merge(hp.space, overwrite=False)
            tried.append(forced)
            forced = _next_activation(space, tried)
            if forced is None:
                break
        self.hyperparameters = space
        self.hyperparameters.values = {}
        self._sync_space()

    def _recording_hp(self, forced: dict[str, Any]) -> HyperParameters:
        hp = HyperParameters()
        hp.merge(self._predeclared)
        hp.values.update(forced)
        return hp

    def _sync_space(self) -> None:
        """Join the declarations recorded in the study (by this run's trials, earlier runs' and
        other workers')."""
        attrs = self.study._storage.get_study_system_attrs(self.study._study_id)
        stored = attrs.get(SPACE_ATTR)
        if stored:
            self.hyperparameters.merge(HyperParameters.from_config({"space": stored}).space,
                                       overwrite=False)

    def _learn_space(self, declared: HyperParameters) -> None:
        """Add what a trial declared (``fit``'s declarations, branches first reached) to the
        space, and record the grown space in the study for other processes and resumption."""
        new = [hp for hp in declared.space if hp.name not in self.hyperparameters._hps]
        if not new:
            return
        self.hyperparameters.merge(new, overwrite=False)
        self._sync_space()
        self.study._storage.set_study_system_attr(
            self.study._study_id, SPACE_ATTR, self.hyperparameters.get_config()["space"])

    def _tuned_space(self) -> list:
        """The declarations that trials choose (not Fixed, not set in ``hyperparameters=``)."""
        return [
            hp for hp in self.hyperparameters.space
            if not isinstance(self._predeclared._hps.get(hp.name, hp), Fixed)
            and (self.tune_new_entries or hp.name in self._predeclared._hps)
        ]

    def search_space_summary(self, extended: bool = False) -> None:
        """Print the search space, as KerasTuner does."""
        print("Search space summary")
        space = self.hyperparameters.space
        print(f"Default search space size: {len(space)}")
        for hp in space:
            print(f"{hp.name} ({type(hp).__name__})")
            print(hp.get_config())

    # -- building and training ----------------------------------------------------------------
    def _build(self, hp):
        import keras

        # Without a full gc.collect(): over a heap holding TensorFlow and torch it took about
        # 0.45 s per trial here; Python's collector runs on its own (see gc.freeze in search).
        keras.backend.clear_session(free_memory=False)
        if self.distribution_strategy is not None:
            with self.distribution_strategy.scope():
                model = self.hypermodel.build(hp)
        else:
            model = self.hypermodel.build(hp)
        if model is None:
            raise FatalError("hypermodel.build(hp) returned None; return the model.")
        if self._compile_overrides:
            compiled = {
                "optimizer": getattr(model, "optimizer", None),
                "loss": getattr(model, "loss", None),
            }
            model.compile(**{**compiled, **self._compile_overrides})
        if self.max_model_size is not None and model.count_params() > self.max_model_size:
            raise _OversizedModel(
                f"The model has {model.count_params()} parameters, more than "
                f"max_model_size={self.max_model_size}."
            )
        return model

    def run_trial(self, trial: TrialContext, *args, **kwargs):
        """Train the trial's model(s) and return what ``fit`` returned, one per execution.

        Override to customise a trial: return a History, a dict of metrics, a float, or a list of
        them (their mean is the score).
        """
        return [
            self._build_and_fit_model(trial, *args, execution=i, **kwargs)
            for i in range(self.executions_per_trial)
        ]

    def _build_and_fit_model(self, trial: TrialContext, *args, execution: int = 0, **kwargs):
        hp = trial.hyperparameters
        model = self._build(hp)
        kwargs = self._fit_kwargs(dict(kwargs))
        callbacks = copy.deepcopy(list(kwargs.get("callbacks") or []))
        if isinstance(self.objective, MultiObjective):
            callbacks.insert(0, _multi_objective_logs(self.objective))
        if execution == 0 and not isinstance(self.objective,
                                             (DefaultObjective, ParetoObjective)):
            callbacks.append(pruning_callback(trial.optuna_trial, self.objective.name))
        best_epoch = _best_epoch_weights(self.objective)
        callbacks.append(best_epoch)
        if _overrides_keras_hooks(self):
            callbacks.append(_tuner_hooks(self, trial))
        kwargs["callbacks"] = callbacks
        result = self.hypermodel.fit(hp, model, *args, **kwargs)
        best_epoch.restore(model)
        trial.models.append(model)
        return result

    # -- the search loop ------------------------------------------------------------------------
    def search(self, *fit_args, **fit_kwargs) -> None:
        """Run trials until ``max_trials`` have finished in the study (earlier runs and other
        workers count). Arguments go to ``fit`` (and so to ``model.fit``)."""
        # The objects alive now (TensorFlow's, torch's, the data) stay alive for the search:
        # moved out of the collector's reach, Python's full collections traverse only what the
        # trials create, instead of taking 0.5-1 s each in the middle of some trial. They are
        # handed back to the collector when the search ends (garbage among them included).
        gc.freeze()
        try:
            self._search(fit_args, fit_kwargs)
        finally:
            gc.unfreeze()

    def _search(self, fit_args: tuple, fit_kwargs: dict) -> None:
        verbose = fit_kwargs.get("verbose", 1)
        if self._user_sampler is None:
            self.study.sampler = self._default_sampler()
        budget = distributed.TrialBudget(self.max_trials, _FINISHED,
                                         unique_points=self._unique_points())
        failures = 0
        start = time.monotonic()
        optuna_verbosity = optuna.logging.get_verbosity()
        if verbose:
            optuna.logging.set_verbosity(optuna.logging.WARNING)

        def run_one() -> bool:
            nonlocal failures
            try:
                self.pre_create_trial()
                self._sync_space()
                if not self._prepare_trial():
                    return False  # no configuration left to start (other workers took them)
                self.study.optimize(
                    lambda t: self._objective(t, fit_args, fit_kwargs, budget), n_trials=1
                )
                failures = 0
            except distributed.TrialNotRun:
                return False  # other workers took the budget (or the grid point) first
            except FatalError:
                raise
            except _OversizedModel:
                pass  # recorded FAIL; not a crash, so not counted as one
            except Exception as error:  # recorded FAIL by Optuna; the search goes on
                failures += 1
                limit = self.max_consecutive_failed_trials
                if limit is not None and failures >= limit:
                    raise RuntimeError(
                        f"{failures} consecutive trials failed (max_consecutive_failed_trials="
                        f"{limit}). The last one failed with {type(error).__name__}: {error}"
                    ) from error
            last = self._view(self._last_trial())
            if verbose:
                self._report_trial(last, start)
            self.on_trial_end(last)
            return True

        try:
            self.on_search_begin()
            distributed.run_until_budget(
                self.study, run_one, budget, exhausted=self._search_exhausted,
                sqlite=self._sqlite,
            )
            self.on_search_end()
        finally:
            optuna.logging.set_verbosity(optuna_verbosity)

    @property
    def remaining_trials(self) -> int | None:
        """Trials left in the budget, as KerasTuner's: ``max_trials`` (a grid: its points, if
        fewer) less the study's finished trials (completed or pruned, whichever process ran
        them), 0 once the budget is spent; None without a budget."""
        budget = self._trial_budget()
        if budget is None:
            return None
        finished = self.study.get_trials(deepcopy=False, states=_FINISHED)
        return max(0, budget - len(finished))

    def _prepare_trial(self) -> bool:
        """Called before each trial this process starts (RandomSearch and GridSearch enqueue an
        unseen configuration here); False when there is nothing to start."""
        return True

    def _known_for_grid(self) -> set[str] | None:
        """A grid's known names: a declaration outside them starts at its default (see
        :class:`TrialHyperParameters`); None: the sampler chooses every value."""
        return None

    def _unique_points(self) -> bool:
        """Whether each configuration is run once at most (a grid)."""
        return False

    def _search_exhausted(self, trials: list[FrozenTrial]) -> bool:
        """Whether no new configuration is left to start (given the study's trials)."""
        return False

    def _objective(self, trial: optuna.Trial, fit_args: tuple, fit_kwargs: dict,
                   budget: distributed.TrialBudget | None = None) -> float:
        self._last_trial_id = trial._trial_id
        if budget is not None:
            budget.admit(self.study, trial)
        self.on_trial_begin(self._view(self.study._storage.get_trial(trial._trial_id)))
        for attempt in range(self.max_retries_per_trial + 1):
            context = TrialContext(trial, self._trial_hp(trial), self._id_width())
            try:
                results = self.run_trial(context, *fit_args, **fit_kwargs)
                return self._record(context, results)
            except optuna.TrialPruned:
                trial.set_user_attr(HP_VALUES_ATTR, context.hyperparameters.values)
                raise
            except Exception as error:
                trial.set_user_attr(HP_VALUES_ATTR, context.hyperparameters.values)
                trial.set_user_attr(FAIL_REASON_ATTR, f"{type(error).__name__}: {error}")
                if isinstance(error, (FatalError, _OversizedModel)):
                    raise
                if attempt == self.max_retries_per_trial:
                    raise
            finally:
                self._learn_space(context.hyperparameters)
        raise AssertionError("unreachable")

    def _trial_hp(self, trial: optuna.Trial) -> TrialHyperParameters:
        hp = TrialHyperParameters(
            trial, self._predeclared, self.tune_new_entries, self.allow_new_entries,
            known=self._known_for_grid(),
        )
        if self.hypermodel is not None:
            self.hypermodel.declare_hyperparameters(hp)
        return hp

    def _record(self, context: TrialContext, results: Any) -> float | tuple[float, ...]:
        trial = context.optuna_trial
        trial.set_user_attr(HP_VALUES_ATTR, context.hyperparameters.values)
        runs = results if isinstance(results, list) else [results]
        if not runs:
            raise FatalError("run_trial returned an empty list; return fit's results.")
        try:
            converted = [metrics_from_fit_result(r, self.objective) for r in runs]
        except ValueError as error:
            raise FatalError(str(error)) from error
        metrics = average_metrics([m for m, _ in converted])
        for name, value in metrics.items():
            trial.set_user_attr(name, value)
        if converted[0][1] is not None:
            trial.set_user_attr(BEST_EPOCH_ATTR, converted[0][1])
        if self.constraints is not None:
            for name, value in self.constraints(dict(metrics)).items():
                trial.set_constraint(name, value)
        if isinstance(self.objective, ParetoObjective):
            values = self.objective.values(metrics)
            if not all(map(math.isfinite, values)):
                raise ValueError(f"The objectives {self.objective.name!r} are {values}.")
            if context.models:
                self._save_model(trial, context.models[0])
            return values
        score = metrics[self.objective.name]
        if not math.isfinite(score):
            raise ValueError(f"The objective {self.objective.name!r} is {score}.")
        if context.models:
            scores = [m[self.objective.name] for m, _ in converted]
            best = max(range(len(scores)), key=lambda i: scores[i]
                       if self.objective.direction == "max" else -scores[i])
            self._save_model(trial, context.models[min(best, len(context.models) - 1)])
        return score

    def _save_model(self, trial: optuna.Trial, model) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"trial_{trial.number}.keras")
            model.save(path)
            artifact_id = upload_artifact(
                artifact_store=self.artifact_store, file_path=path, study_or_trial=trial
            )
        trial.set_user_attr(MODEL_ATTR, artifact_id)

    def _last_trial(self) -> FrozenTrial:
        """The trial this process ran last (read alone: ``study.trials`` would read and copy
        every trial)."""
        return self.study._storage.get_trial(self._last_trial_id)

    # -- KerasTuner's hooks: called where KerasTuner calls them; override to follow a search ---
    def on_search_begin(self) -> None:
        """Called when ``search`` starts trials (after the space is known)."""

    def on_search_end(self) -> None:
        """Called when ``search`` has no trial left to run."""

    def pre_create_trial(self) -> None:
        """Called before each trial this process asks for."""

    def on_trial_begin(self, trial: Trial) -> None:
        """Called before a trial this process runs is trained (its hyperparameters are not
        chosen yet: they are declared as ``build`` runs)."""

    def on_epoch_begin(self, trial: TrialContext, model, epoch: int, logs=None) -> None:
        """Called at the start of each epoch of a trial's training."""

    def on_epoch_end(self, trial: TrialContext, model, epoch: int, logs=None) -> None:
        """Called at the end of each epoch of a trial's training."""

    def on_batch_begin(self, trial: TrialContext, model, batch: int, logs=None) -> None:
        """Called at the start of each training batch."""

    def on_batch_end(self, trial: TrialContext, model, batch: int, logs=None) -> None:
        """Called at the end of each training batch."""

    def get_trial_dir(self, trial_id: str) -> str:
        """A directory of the trial's own, ``{project_dir}/trial_{trial_id}`` (created)."""
        path = Path(self.project_dir) / f"trial_{trial_id}"
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def on_trial_end(self, trial: Trial) -> None:
        """Called after each trial this process ran (any state), as KerasTuner's hook; override
        (or assign) to follow progress."""

    def _report_trial(self, view: Trial, start: float) -> None:
        last = view.frozen_trial
        took = (last.duration.total_seconds() if last.duration else 0.0)
        print(f"\nTrial {view.trial_id} {view.status.capitalize()} [{_hms(took)}]")
        for name, value in view.hyperparameters.values.items():
            print(f"{name}: {value}")
        if view.score is not None:
            print(f"{self.objective.name}: {view.score}")
        if view.message:
            print(f"Reason: {view.message}")
        best = self.oracle.get_best_trials(1)
        if best:
            print(f"Best {self.objective.name} So Far: {best[0].score}")
        print(f"Total elapsed time: {_hms(time.monotonic() - start)}")

    # -- results ---------------------------------------------------------------------------------
    def _id_width(self) -> int:
        return max(2, len(str(self.max_trials or 0)))

    def _view(self, frozen: FrozenTrial) -> Trial:
        return Trial(frozen, self.hyperparameters, self._id_width())

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        """The hyperparameters of the ``num_trials`` best completed trials, best first."""
        return [t.hyperparameters for t in self.oracle.get_best_trials(num_trials)]

    def get_best_models(self, num_models: int = 1) -> list:
        """The trained models of the ``num_models`` best completed trials, best first."""
        return [self.load_model(t) for t in self.oracle.get_best_trials(num_models)]

    def load_model(self, trial: Trial):
        """The trained model saved with ``trial``."""
        import keras

        artifact_id = trial.frozen_trial.user_attrs.get(MODEL_ATTR)
        if artifact_id is None:
            raise ValueError(
                f"Trial {trial.trial_id} has no saved model (a custom run_trial that does not "
                "build through the tuner saves none)."
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            download_artifact(
                artifact_store=self.artifact_store, file_path=path, artifact_id=artifact_id
            )
            try:
                return keras.saving.load_model(path)
            except Exception:  # custom objects unknown to Keras: rebuild and load the weights
                model = self._build(trial.hyperparameters)
                model.load_weights(path)
                return model

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the best trials, as KerasTuner does."""
        print("Results summary")
        print(f"Results in {self.project_dir}")
        print(f"Showing {num_trials} best trials")
        print(self.objective)
        for trial in self.oracle.get_best_trials(num_trials):
            print()
            trial.summary()


class TrialContext:
    """What ``run_trial`` receives: the trial's ``hp`` and the Optuna trial behind it."""

    def __init__(self, optuna_trial: optuna.Trial, hyperparameters: HyperParameters, width: int):
        self.optuna_trial = optuna_trial
        self.hyperparameters = hyperparameters
        self.trial_id = f"{optuna_trial.number:0{width}d}"
        self.models: list = []


class _OversizedModel(RuntimeError):
    pass


_KERAS_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end")


def _overrides_keras_hooks(tuner: Tuner) -> bool:
    """Whether a subclass (or the instance) defines one of the per-epoch / per-batch hooks:
    only then is a callback added (a per-batch callback slows every training step)."""
    return any(getattr(type(tuner), name) is not getattr(Tuner, name)
               or name in vars(tuner) for name in _KERAS_HOOKS)


def _tuner_hooks(tuner: Tuner, trial: TrialContext):
    """KerasTuner's ``TunerCallback``: Keras' epoch and batch events to the tuner's hooks."""
    import keras

    class TunerHooks(keras.callbacks.Callback):
        def __init__(self, tuner: Tuner, trial: TrialContext) -> None:
            super().__init__()
            self.tuner = tuner
            self.trial = trial

        def on_epoch_begin(self, epoch, logs=None):
            self.tuner.on_epoch_begin(self.trial, self.model, epoch, logs=logs)

        def on_epoch_end(self, epoch, logs=None):
            self.tuner.on_epoch_end(self.trial, self.model, epoch, logs=logs)

        def on_train_batch_begin(self, batch, logs=None):
            self.tuner.on_batch_begin(self.trial, self.model, batch, logs)

        def on_train_batch_end(self, batch, logs=None):
            self.tuner.on_batch_end(self.trial, self.model, batch, logs)

    return TunerHooks(tuner, trial)


def _next_activation(space: HyperParameters, tried: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Parent values that activate a conditional declaration not yet seen active."""
    for hp in space.space:
        if not hp.conditions:
            continue
        forced = {c.parent_name: c.values[0] for c in hp.conditions}
        for earlier in tried:
            if all(earlier.get(k) == v for k, v in forced.items()):
                break
        else:
            return forced
    return None


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}h {seconds % 3600 // 60:02d}m {seconds % 60:02d}s"
