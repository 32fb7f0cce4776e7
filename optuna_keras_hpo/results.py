"""Reading a search's results: KerasTuner's ``Trial`` and ``oracle`` views of the study's
trials, the best trials, and the summaries ``search`` and ``results_summary`` print."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial, TrialState

from optuna_keras_hpo.attrs import BEST_EPOCH_ATTR, FAIL_REASON_ATTR, HP_VALUES_ATTR
from optuna_keras_hpo.hyperparameters import HyperParameters
from optuna_keras_hpo.objective import Objective, ParetoObjective

if TYPE_CHECKING:
    from optuna_keras_hpo.tuner import Tuner

_STATUS = {
    TrialState.COMPLETE: "COMPLETED",
    TrialState.PRUNED: "STOPPED",
    TrialState.FAIL: "FAILED",
    TrialState.RUNNING: "RUNNING",
    TrialState.WAITING: "IDLE",
}


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

    def get_space(self) -> HyperParameters:
        """A copy of the search space known so far."""
        return self._tuner.hyperparameters.copy()

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


def print_trial_report(view: Trial, objective, best: list[Trial], start: float) -> None:
    """What ``search(verbose=1)`` prints after each trial, as KerasTuner."""
    last = view.frozen_trial
    took = (last.duration.total_seconds() if last.duration else 0.0)
    print(f"\nTrial {view.trial_id} {view.status.capitalize()} [{hms(took)}]")
    for name, value in view.hyperparameters.values.items():
        print(f"{name}: {value}")
    if view.score is not None:
        print(f"{objective.name}: {view.score}")
    if view.message:
        print(f"Reason: {view.message}")
    if best:
        print(f"Best {objective.name} So Far: {best[0].score}")
    print(f"Total elapsed time: {hms(time.monotonic() - start)}")


def print_results(project_dir: str, objective, best: list[Trial], num_trials: int) -> None:
    """KerasTuner's ``results_summary``."""
    print("Results summary")
    print(f"Results in {project_dir}")
    print(f"Showing {num_trials} best trials")
    print(objective)
    for trial in best:
        print()
        trial.summary()


def hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}h {seconds % 3600 // 60:02d}m {seconds % 60:02d}s"
