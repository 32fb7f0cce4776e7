"""The ``Tuner`` facade: KerasTuner's search API over one Optuna study.

A strategy (``BayesianOptimization``, ``RandomSearch``, ...) only chooses the study's sampler and
pruner. The facade holds the settings and KerasTuner's methods and hooks; each job lives in one
place beside it:

- the search space (found by ``build``, grown by trials, shared in the study):
  :mod:`optuna_keras_hpo.search_space`;
- running and recording one trial (the Optuna objective): :mod:`optuna_keras_hpo.trial_runner`;
- reading results (``Trial`` views, the oracle, summaries): :mod:`optuna_keras_hpo.results`;
- the study-wide budget and the worker loop: :mod:`optuna_keras_hpo.distributed`.

The study in its storage is the only state: results, resumption and ``get_best_*`` all read it.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact
from optuna.trial import FrozenTrial, TrialState

from optuna_keras_hpo import distributed, search_space
from optuna_keras_hpo import storage as storage_lib
from optuna_keras_hpo._validation import check_int
from optuna_keras_hpo.attrs import (  # noqa: F401 (the attribute names, importable from here)
    BEST_EPOCH_ATTR,
    FAIL_REASON_ATTR,
    HP_VALUES_ATTR,
    MODEL_ATTR,
    MODEL_ERROR_ATTR,
)
from optuna_keras_hpo.errors import FatalError
from optuna_keras_hpo.hypermodel import HyperModel, as_hypermodel
from optuna_keras_hpo.hyperparameters import HyperParameters
from optuna_keras_hpo.objective import (
    DefaultObjective,
    Objective,
    ParetoObjective,
    create_objective,
)
from optuna_keras_hpo.results import Oracle, Trial, print_results, print_trial_report
from optuna_keras_hpo.trial_runner import (
    OversizedModel,
    TrialContext,
    TrialRunner,
)

__all__ = ["FatalError", "Oracle", "Trial", "TrialContext", "Tuner"]

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


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
        storage: An Optuna storage or URL (``postgresql://...``, ``mysql://...``,
            ``redis://...``, ``journal:///path/study.log``, ...; see
            :func:`optuna_keras_hpo.storage.make_storage`);
            default SQLite at ``{directory}/{project_name}/study.db``. Several processes that
            construct a tuner with the same ``storage`` and ``study_name`` (and
            ``overwrite=False``) share the study and its ``max_trials``: KerasTuner's chief/worker
            mode without a chief (see docs/distributed.md).
        study_name: Default ``project_name``.
        heartbeat_interval: Seconds between heartbeats of a running trial. Default ``"auto"``:
            60 s on the storages that record heartbeats (SQLite, PostgreSQL, MySQL given as a
            URL, the default included), none elsewhere (journal files, Redis, storage objects);
            None: no heartbeats. A trial whose worker stopped sending them for
            ``grace_period`` seconds is failed, its place in ``max_trials`` freed. Whatever the
            storage, a trial whose worker was a process of this host that is gone (killed,
            out of memory) is failed at once by the next search or worker on this host.
        grace_period: Default ``2 * heartbeat_interval``.
        max_retry: Times the trial of a dead worker is run again with the same hyperparameters
            (a grid point whose worker died is run again anyway); default
            ``max_retries_per_trial``.
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
        heartbeat_interval: int | str | None = "auto",
        grace_period: int | None = None,
        max_retry: int | None = None,
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
        if heartbeat_interval == "auto":
            heartbeat_interval = (storage_lib.DEFAULT_HEARTBEAT_INTERVAL
                                  if storage_lib.supports_heartbeats(storage) else None)
            if grace_period is not None and heartbeat_interval is not None \
                    and grace_period <= heartbeat_interval:
                heartbeat_interval = max(1, grace_period // 2)  # a short grace_period alone
        elif isinstance(heartbeat_interval, str):
            raise ValueError(f"heartbeat_interval={heartbeat_interval!r}; expected 'auto', a "
                             "number of seconds or None.")
        self.heartbeat_interval = heartbeat_interval
        self.max_retry = max_retries_per_trial if max_retry is None else max_retry
        self.study = storage_lib.open_study(
            storage_lib.make_storage(storage, heartbeat_interval=heartbeat_interval,
                                     grace_period=grace_period, max_retry=self.max_retry),
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
        self._runner = TrialRunner(self)
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

    # -- the search space (optuna_keras_hpo.search_space) -------------------------------------
    def _populate_space(self) -> None:
        """KerasTuner's: ``build`` once per conditional branch (never ``fit``), then what the
        study recorded (earlier runs', other workers' trials)."""
        self.hyperparameters = search_space.discover(self.hypermodel, self._predeclared,
                                                     self._build)
        search_space.load(self.study, self.hyperparameters, record=True)

    def _sync_space(self) -> None:
        search_space.load(self.study, self.hyperparameters)

    def _learn_space(self, declared: HyperParameters) -> None:
        search_space.learn(self.study, self.hyperparameters, declared)

    def _tuned_space(self) -> list:
        """The declarations that trials choose (not Fixed, not set in ``hyperparameters=``)."""
        return search_space.tuned(self.hyperparameters, self._predeclared, self.tune_new_entries)

    def search_space_summary(self, extended: bool = False) -> None:
        """Print the search space, as KerasTuner does."""
        search_space.print_summary(self.hyperparameters)

    # -- a trial (optuna_keras_hpo.trial_runner) --------------------------------------------------
    def _build(self, hp):
        return self._runner.build(hp)

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
        return self._runner.build_and_fit(trial, args, kwargs, execution)

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
            self.pre_create_trial()
            self._sync_space()
            if not self._prepare_trial():
                return False  # no configuration left to start (other workers took them)
            self.study.asked_trial_id = None
            try:
                self.study.optimize(
                    lambda t: self._runner.objective(t, fit_args, fit_kwargs, budget), n_trials=1
                )
                failures = 0
            except distributed.TrialNotRun:
                return False  # other workers took the budget (or the grid point) first
            except KeyboardInterrupt:
                if self.study.asked_trial_id is not None:
                    distributed.fail_interrupted(self.study, self.study.asked_trial_id)
                raise
            except FatalError:
                raise
            except OversizedModel:
                pass  # recorded FAIL; not a crash, so not counted as one
            except Exception as error:  # recorded FAIL (by Optuna, or at ask); the search goes on
                if self.study.asked_trial_id is None:
                    raise  # no trial was created: the storage failed
                if isinstance(error, UnboundLocalError) and isinstance(
                        error.__context__, KeyboardInterrupt):
                    # Ctrl-C inside Optuna's tell (the trial is recorded): Optuna's
                    # _run_trial turns it into this error in its `finally`.
                    raise error.__context__ from None
                recorded = self.study._storage.get_trial(self.study.asked_trial_id)
                if recorded.state != TrialState.FAIL:  # the sampler's after_trial, in tell
                    warnings.warn(
                        f"Trial {recorded.number} was recorded ({recorded.state.name}), then "
                        f"Optuna's tell raised {type(error).__name__}: {error}", RuntimeWarning,
                        stacklevel=2)
                    failures = 0
                else:
                    failures += 1
                    limit = self.max_consecutive_failed_trials
                    if limit is not None and failures >= limit:
                        raise RuntimeError(
                            f"{failures} consecutive trials failed (max_consecutive_failed_"
                            f"trials={limit}). The last one failed with "
                            f"{type(error).__name__}: {error}"
                        ) from error
            # The trial this process ran, read alone (study.trials would read and copy all).
            last = self._view(self.study._storage.get_trial(self.study.asked_trial_id))
            if verbose:
                print_trial_report(last, self.objective, self.oracle.get_best_trials(1), start)
            self.on_trial_end(last)
            return True

        try:
            self.on_search_begin()
            distributed.run_until_budget(
                self.study, run_one, budget, exhausted=self._search_exhausted,
                sqlite=self._sqlite, max_retry=self.max_retry,
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
            error = trial.frozen_trial.user_attrs.get(MODEL_ERROR_ATTR)
            raise ValueError(
                f"Trial {trial.trial_id} has no saved model: "
                + (f"saving it failed ({error})." if error else "a custom run_trial that does "
                   "not build through the tuner saves none.")
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
        print_results(self.project_dir, self.objective, self.oracle.get_best_trials(num_trials),
                      num_trials)
