"""Running and recording one trial: the Optuna objective behind ``Tuner.search``.

For each trial a process starts, :class:`TrialRunner`

1. admits it (the study-wide budget; a grid point run once: :class:`~distributed.TrialBudget`);
2. calls the tuner's ``run_trial`` (overridable, as in KerasTuner) with a :class:`TrialContext`
   whose ``hp`` asks the Optuna trial for each value as the user's code declares it; the default
   ``run_trial`` builds and fits ``executions_per_trial`` models with the tuner's callbacks;
3. records the outcome: every final metric as a user attribute, the constraints, the model of the
   best execution in the artifact store, and returns the score to Optuna; a crash is retried in
   place ``max_retries_per_trial`` times, then recorded with its reason;
4. hands what the trial declared to the search space (:mod:`~optuna_keras_hpo.search_space`).
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
import warnings
from typing import TYPE_CHECKING, Any

import optuna
from optuna.artifacts import upload_artifact

from optuna_keras_hpo import distributed
from optuna_keras_hpo.attrs import (
    BEST_EPOCH_ATTR,
    CONSTRAINTS_ERROR_ATTR,
    FAIL_REASON_ATTR,
    HP_VALUES_ATTR,
    MODEL_ATTR,
    MODEL_ERROR_ATTR,
)
from optuna_keras_hpo.errors import FailedTrialError, FatalError
from optuna_keras_hpo.hyperparameters import HyperParameters, TrialHyperParameters
from optuna_keras_hpo.objective import (
    DefaultObjective,
    MultiObjective,
    Objective,
    ParetoObjective,
    average_metrics,
    metrics_from_fit_result,
)
from optuna_keras_hpo.pruning import pruning_callback

if TYPE_CHECKING:
    from optuna_keras_hpo.tuner import Tuner


class OversizedModel(RuntimeError):
    """The model has more parameters than ``max_model_size`` (the trial fails, not counted as a
    crash)."""


class TrialContext:
    """What ``run_trial`` receives: the trial's ``hp`` and the Optuna trial behind it."""

    def __init__(self, optuna_trial: optuna.Trial, hyperparameters: HyperParameters, width: int):
        self.optuna_trial = optuna_trial
        self.hyperparameters = hyperparameters
        self.trial_id = f"{optuna_trial.number:0{width}d}"
        self.models: list = []


class TrialRunner:
    """Runs and records the trials of one tuner (its settings are read from the tuner)."""

    def __init__(self, tuner: Tuner) -> None:
        self.tuner = tuner

    # -- the Optuna objective ----------------------------------------------------------------
    def objective(self, trial: optuna.Trial, fit_args: tuple, fit_kwargs: dict,
                  budget: distributed.TrialBudget | None = None) -> float | tuple[float, ...]:
        try:
            return self._objective(trial, fit_args, fit_kwargs, budget)
        except KeyboardInterrupt:
            distributed.mark_interrupted(self.tuner.study, trial._trial_id)
            raise  # Optuna fails the trial; the search queues it again and stops
        except Exception as error:  # before the trial's code ran (on_trial_begin)
            if FAIL_REASON_ATTR not in trial.user_attrs:
                trial.set_user_attr(FAIL_REASON_ATTR, f"{type(error).__name__}: {error}")
            raise

    def _objective(self, trial: optuna.Trial, fit_args: tuple, fit_kwargs: dict,
                   budget: distributed.TrialBudget | None) -> float | tuple[float, ...]:
        tuner = self.tuner
        if budget is not None:
            budget.admit(tuner.study, trial)
        tuner.on_trial_begin(tuner._view(tuner.study._storage.get_trial(trial._trial_id)))
        for attempt in range(tuner.max_retries_per_trial + 1):
            context = TrialContext(trial, self.hyperparameters(trial), tuner._id_width())
            try:
                results = tuner.run_trial(context, *fit_args, **fit_kwargs)
                return self.record(context, results)
            except (optuna.TrialPruned, KeyboardInterrupt):
                trial.set_user_attr(HP_VALUES_ATTR, context.hyperparameters.values)
                raise
            except Exception as error:
                trial.set_user_attr(HP_VALUES_ATTR, context.hyperparameters.values)
                trial.set_user_attr(FAIL_REASON_ATTR, f"{type(error).__name__}: {error}")
                if isinstance(error, (FatalError, FailedTrialError, OversizedModel)):
                    raise  # not retried
                if attempt == tuner.max_retries_per_trial:
                    raise
            finally:
                tuner._learn_space(context.hyperparameters)
        raise AssertionError("unreachable")

    def hyperparameters(self, trial: optuna.Trial) -> TrialHyperParameters:
        """The trial's ``hp``: each value asked of the Optuna trial when first declared."""
        tuner = self.tuner
        hp = TrialHyperParameters(
            trial, tuner._predeclared, tuner.tune_new_entries, tuner.allow_new_entries,
            known=tuner._known_for_grid(),
        )
        if tuner.hypermodel is not None:
            tuner.hypermodel.declare_hyperparameters(hp)
        return hp

    # -- building and training ---------------------------------------------------------------
    def build(self, hp: HyperParameters):
        """The user's ``build(hp)``, in the tuner's distribution strategy, compiled with the
        tuner's ``optimizer``/``loss``/``metrics`` when given, within ``max_model_size``."""
        import keras

        tuner = self.tuner
        # Without a full gc.collect(): over a heap holding TensorFlow and torch it took about
        # 0.45 s per trial here; Python's collector runs on its own (see gc.freeze in search).
        keras.backend.clear_session(free_memory=False)
        if tuner.distribution_strategy is not None:
            with tuner.distribution_strategy.scope():
                model = tuner.hypermodel.build(hp)
        else:
            model = tuner.hypermodel.build(hp)
        if model is None:
            raise FatalError("hypermodel.build(hp) returned None; return the model.")
        if tuner._compile_overrides:
            compiled = {
                "optimizer": getattr(model, "optimizer", None),
                "loss": getattr(model, "loss", None),
            }
            model.compile(**{**compiled, **tuner._compile_overrides})
        if tuner.max_model_size is not None and model.count_params() > tuner.max_model_size:
            raise OversizedModel(
                f"The model has {model.count_params()} parameters, more than "
                f"max_model_size={tuner.max_model_size}."
            )
        return model

    def build_and_fit(self, trial: TrialContext, args: tuple, kwargs: dict,
                      execution: int = 0):
        """One execution: build, then the user's ``fit`` with the tuner's callbacks added (the
        pruning callback on the first execution, the best epoch's weights, the hooks)."""
        tuner = self.tuner
        hp = trial.hyperparameters
        model = tuner._build(hp)
        kwargs = tuner._fit_kwargs(dict(kwargs))
        callbacks = copy.deepcopy(list(kwargs.get("callbacks") or []))
        objective = tuner.objective
        if isinstance(objective, MultiObjective):
            callbacks.insert(0, _multi_objective_logs(objective))
        if execution == 0 and not isinstance(objective, (DefaultObjective, ParetoObjective)):
            callbacks.append(pruning_callback(trial.optuna_trial, objective.name))
        best_epoch = _best_epoch_weights(objective)
        callbacks.append(best_epoch)
        if _overrides_keras_hooks(tuner):
            callbacks.append(_tuner_hooks(tuner, trial))
        kwargs["callbacks"] = callbacks
        result = tuner.hypermodel.fit(hp, model, *args, **kwargs)
        best_epoch.restore(model)
        trial.models.append(model)
        return result

    # -- recording ---------------------------------------------------------------------------
    def record(self, context: TrialContext, results: Any) -> float | tuple[float, ...]:
        """Store what ``run_trial`` returned; the trial's score (values, Pareto)."""
        tuner = self.tuner
        objective = tuner.objective
        trial = context.optuna_trial
        trial.set_user_attr(HP_VALUES_ATTR, context.hyperparameters.values)
        runs = results if isinstance(results, list) else [results]
        if not runs:
            raise FatalError("run_trial returned an empty list; return fit's results.")
        try:
            converted = [metrics_from_fit_result(r, objective) for r in runs]
        except ValueError as error:
            raise FatalError(str(error)) from error
        metrics = average_metrics([m for m, _ in converted])
        for name, value in metrics.items():
            trial.set_user_attr(name, value)
        if converted[0][1] is not None:
            trial.set_user_attr(BEST_EPOCH_ATTR, converted[0][1])
        if tuner.constraints is not None:
            try:
                for name, value in tuner.constraints(dict(metrics)).items():
                    trial.set_constraint(name, value)
            except Exception as error:  # the trained trial keeps its score
                _keep_error(trial, CONSTRAINTS_ERROR_ATTR, "the constraints function", error)
        if isinstance(objective, ParetoObjective):
            values = objective.values(metrics)
            if not all(map(math.isfinite, values)):
                raise ValueError(f"The objectives {objective.name!r} are {values}.")
            if context.models:
                self.save_model(trial, context.models[0])
            return values
        score = metrics[objective.name]
        if not math.isfinite(score):
            raise ValueError(f"The objective {objective.name!r} is {score}.")
        if context.models:
            scores = [m[objective.name] for m, _ in converted]
            best = max(range(len(scores)), key=lambda i: scores[i]
                       if objective.direction == "max" else -scores[i])
            self.save_model(trial, context.models[min(best, len(context.models) - 1)])
        return score

    def save_model(self, trial: optuna.Trial, model) -> None:
        """The model as a ``.keras`` artifact of the trial (its id in ``model_artifact_id``). A
        failure (a full disk, an unreachable artifact store, a model Keras cannot save) is kept
        in ``model_error`` and warned about: the trained trial keeps its score."""
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, f"trial_{trial.number}.keras")
                model.save(path)
                artifact_id = upload_artifact(
                    artifact_store=self.tuner.artifact_store, file_path=path,
                    study_or_trial=trial,
                )
        except Exception as error:
            _keep_error(trial, MODEL_ERROR_ATTR, "saving the model", error)
            return
        trial.set_user_attr(MODEL_ATTR, artifact_id)


def _keep_error(trial: optuna.Trial, attr: str, what: str, error: Exception) -> None:
    message = f"{type(error).__name__}: {error}"
    trial.set_user_attr(attr, message)
    warnings.warn(f"Trial {trial.number}: {what} failed ({message}); the trial keeps its score "
                  f"(user attribute {attr!r}).", RuntimeWarning, stacklevel=3)


# -- the callbacks a trial's fit gets ----------------------------------------------------------
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


_KERAS_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end")


def _overrides_keras_hooks(tuner: Tuner) -> bool:
    """Whether a subclass (or the instance) defines one of the per-epoch / per-batch hooks:
    only then is a callback added (a per-batch callback slows every training step)."""
    from optuna_keras_hpo.tuner import Tuner

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
