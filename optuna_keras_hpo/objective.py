"""What a search optimises: ``Objective(name, direction)`` and reading its value from Keras.

A metric name's direction is inferred as KerasTuner documents it (accuracy, AUC, precision,
recall and F-scores are maximised; losses and errors minimised); a name whose direction cannot be
inferred is rejected at construction. One documented departure from KerasTuner's code: ``f1_score``
and ``fbeta_score`` are maximised (KerasTuner infers "min" for them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

_MAX_NAMES = {
    "acc", "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "precision", "recall",
    "auc", "prc", "f1_score", "fbeta_score", "true_positives", "true_negatives",
    "sensitivity_at_specificity", "specificity_at_sensitivity", "precision_at_recall",
    "recall_at_precision", "iou", "mean_iou", "binary_iou", "one_hot_iou", "one_hot_mean_iou",
    "r2_score", "cosine_similarity",
}
_MIN_NAMES = {
    "loss", "ce", "crossentropy", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_focal_crossentropy",
    "categorical_focal_crossentropy", "mse", "mae", "mape", "msle", "mean_squared_error",
    "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
    "root_mean_squared_error", "rmse", "hinge", "squared_hinge", "categorical_hinge",
    "kl_divergence", "kld", "kullback_leibler_divergence", "poisson", "logcosh", "log_cosh",
    "huber", "false_positives", "false_negatives", "dice", "tversky", "ctc",
}
_MAX_SUFFIXES = ("accuracy", "auc", "precision", "recall", "f1_score", "fbeta_score", "iou")
_MIN_SUFFIXES = ("loss", "error", "crossentropy")
_DIRECTIONS = {"min": "minimize", "max": "maximize"}


def infer_direction(metric_name: str) -> str | None:
    """``"max"`` or ``"min"`` for a Keras metric name such as ``val_recall``; None if unknown."""
    name = metric_name.lower()
    for prefix in ("val_", "weighted_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    name = re.sub(r"_\d+$", "", name)  # Keras names a second Recall() "recall_1".
    if name in _MAX_NAMES:
        return "max"
    if name in _MIN_NAMES:
        return "min"
    if name.endswith(_MAX_SUFFIXES):
        return "max"
    if name.endswith(_MIN_SUFFIXES):
        return "min"
    return None


class Objective:
    """The metric a search optimises.

    Args:
        name: A metric name as it appears in Keras logs, e.g. ``"val_recall"``.
        direction: ``"max"`` or ``"min"``.
    """

    def __init__(self, name: str, direction: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Objective: name={name!r}; expected a metric name string.")
        if direction not in _DIRECTIONS:
            raise ValueError(
                f"Objective(name={name!r}): direction={direction!r}; expected 'min' or 'max'."
            )
        self.name = name
        self.direction = direction

    @property
    def optuna_direction(self) -> str:
        return _DIRECTIONS[self.direction]

    def has_value(self, logs: Mapping[str, Any]) -> bool:
        return self.name in logs

    def get_value(self, logs: Mapping[str, Any]) -> float:
        return logs[self.name]

    def better_than(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Objective)
            and self.name == other.name
            and self.direction == other.direction
        )

    def __hash__(self) -> int:
        return hash((self.name, self.direction))

    def __str__(self) -> str:
        return f'Objective(name="{self.name}", direction="{self.direction}")'

    __repr__ = __str__


class DefaultObjective(Objective):
    """Minimise the value returned by ``fit`` when no objective is given."""

    def __init__(self) -> None:
        super().__init__("default_objective", "min")


class MultiObjective(Objective):
    """A list of objectives ranked as KerasTuner ranks them: one score, the sum of the metrics,
    each signed by its direction (minimised metrics added, maximised ones subtracted), and
    minimised. Each metric is still stored with the trial. For a real Pareto front, use
    :class:`ParetoObjective`.

    Args:
        objectives: :class:`Objective` s or metric names.
    """

    def __init__(self, objectives: Sequence[Objective | str]) -> None:
        super().__init__("multi_objective", "min")
        self.objectives = [create_objective(o) for o in objectives]
        if not self.objectives or any(isinstance(o, (DefaultObjective, MultiObjective))
                                      for o in self.objectives):
            raise ValueError(f"objective={objectives!r}; expected a non-empty list of metric "
                             "names or Objectives.")
        self.name_to_direction = {o.name: o.direction for o in self.objectives}

    def has_value(self, logs: Mapping[str, Any]) -> bool:
        return all(name in logs for name in self.name_to_direction)

    def get_value(self, logs: Mapping[str, Any]) -> float:
        return sum(float(logs[name]) if direction == "min" else -float(logs[name])
                   for name, direction in self.name_to_direction.items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MultiObjective) and sorted(
            self.objectives, key=lambda o: o.name) == sorted(other.objectives,
                                                              key=lambda o: o.name)

    def __hash__(self) -> int:
        return hash(tuple(sorted((o.name, o.direction) for o in self.objectives)))

    def __str__(self) -> str:
        return ("MultiObjective(name=\"multi_objective\", direction=\"min\"): ["
                + ", ".join(map(str, self.objectives)) + "]")

    __repr__ = __str__


class ParetoObjective:
    """Several metrics optimised together: the tuner's study becomes an Optuna multi-objective
    study, whose result is the Pareto front (``study.best_trials``).

    KerasTuner has no such objective (a list of objectives there is one summed score). Optuna
    cannot prune multi-objective trials, so a tuner with this objective takes no pruner, and a
    trial is scored at its last epoch.

    Args:
        objectives: Two or more metric names or :class:`Objective` s.
    """

    def __init__(self, objectives: Sequence[Objective | str]) -> None:
        if isinstance(objectives, (str, Objective)) or not isinstance(objectives, Sequence) \
                or len(objectives) < 2:
            raise ValueError(f"ParetoObjective: objectives={objectives!r}; expected a list of "
                             "two or more metric names or Objectives.")
        self.objectives = [create_objective(o) for o in objectives]
        if any(isinstance(o, DefaultObjective) for o in self.objectives):
            raise ValueError("ParetoObjective: objectives contain None; expected metric names.")
        self.name = " & ".join(o.name for o in self.objectives)

    @property
    def optuna_directions(self) -> list[str]:
        return [o.optuna_direction for o in self.objectives]

    def values(self, metrics: Mapping[str, float]) -> tuple[float, ...]:
        return tuple(float(metrics[o.name]) for o in self.objectives)

    def __str__(self) -> str:
        return "ParetoObjective([" + ", ".join(map(str, self.objectives)) + "])"

    __repr__ = __str__


def create_objective(objective: Objective | ParetoObjective | str | None) -> Objective:
    """An :class:`Objective` from an Objective, a metric name, or None (minimise fit's return);
    a :class:`ParetoObjective` is returned as it is."""
    if objective is None:
        return DefaultObjective()
    if isinstance(objective, (Objective, ParetoObjective)):
        return objective
    if isinstance(objective, str):
        direction = infer_direction(objective)
        if direction is None:
            raise ValueError(
                f"objective={objective!r}: cannot infer whether to minimise or maximise this "
                f"metric; pass kt.Objective({objective!r}, direction='max') or direction='min'."
            )
        return Objective(objective, direction)
    if isinstance(objective, Sequence):
        return MultiObjective(objective)
    raise ValueError(
        f"objective={objective!r}; expected a metric name, a kt.Objective or None."
    )


def metrics_at_best_epoch(
    history: Mapping[str, Sequence[float]], objective: Objective
) -> tuple[dict[str, float], int]:
    """Every metric at the epoch where the objective was best, and that epoch (0-based).

    This is how KerasTuner scores a trial from a ``History``.
    """
    if isinstance(objective, MultiObjective):
        history = _with_multi_objective(history, objective)
    if objective.name not in history:
        raise ValueError(
            f"The objective {objective.name!r} is not among the metrics fit() logged "
            f"({sorted(history)}); check the objective's name and the model's metrics "
            "(a 'val_' metric needs validation_data)."
        )
    values = [float(v) for v in history[objective.name]]
    if not values:
        raise ValueError(f"fit() logged no epoch of {objective.name!r}.")
    best_epoch = 0
    for epoch, value in enumerate(values):
        if math.isnan(values[best_epoch]) or objective.better_than(value, values[best_epoch]):
            best_epoch = epoch
    metrics = {
        name: float(epochs[best_epoch])
        for name, epochs in history.items()
        if len(epochs) > best_epoch
    }
    return metrics, best_epoch


def _with_multi_objective(history: Mapping[str, Sequence[float]],
                          objective: MultiObjective) -> dict[str, Sequence[float]]:
    """``history`` plus the summed objective at each epoch (where every metric was logged)."""
    missing = [n for n in objective.name_to_direction if n not in history]
    if missing:
        raise ValueError(
            f"The objectives {missing} are not among the metrics fit() logged "
            f"({sorted(history)}); check the objectives' names and the model's metrics."
        )
    epochs = min(len(history[n]) for n in objective.name_to_direction)
    values = [objective.get_value({n: history[n][e] for n in objective.name_to_direction})
              for e in range(epochs)]
    return {**history, objective.name: values}


def metrics_from_fit_result(
    result: Any, objective: Objective | ParetoObjective
) -> tuple[dict[str, float], int | None]:
    """The metrics dict of what ``fit`` returned (History, dict, or number), and the best epoch
    (a :class:`ParetoObjective`'s: the last epoch)."""
    history = getattr(result, "history", None)
    if isinstance(objective, ParetoObjective):
        logs = history if isinstance(history, Mapping) else result
        if not isinstance(logs, Mapping):
            raise ValueError(f"fit() returned {type(result).__name__}; a ParetoObjective needs "
                             "a keras History or a dict of metrics.")
        missing = [o.name for o in objective.objectives if o.name not in logs]
        if missing:
            raise ValueError(f"The objectives {missing} are not among the metrics fit() "
                             f"logged ({sorted(logs)}).")
        if isinstance(history, Mapping):
            last = min(len(v) for v in history.values()) - 1
            return {k: float(v[last]) for k, v in history.items()}, last
        return {str(k): float(v) for k, v in result.items()}, None
    if isinstance(history, Mapping):
        return metrics_at_best_epoch(history, objective)
    if isinstance(result, Mapping) and isinstance(objective, MultiObjective):
        if not objective.has_value(result):
            raise ValueError(f"fit() returned a dict without the objectives "
                             f"{sorted(objective.name_to_direction)}: keys {sorted(result)}.")
        metrics = {str(k): float(v) for k, v in result.items()}
        return {**metrics, objective.name: objective.get_value(metrics)}, None
    if isinstance(result, Mapping):
        if objective.name not in result:
            raise ValueError(
                f"fit() returned a dict without the objective {objective.name!r}: "
                f"keys {sorted(result)}."
            )
        return {str(k): float(v) for k, v in result.items()}, None
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        return {objective.name: float(result)}, None
    try:  # NumPy and TensorFlow scalars
        return {objective.name: float(result)}, None
    except (TypeError, ValueError):
        raise ValueError(
            f"fit() returned {type(result).__name__}; expected a keras History, a dict of "
            "metrics or a number. Did you forget to return model.fit(...)?"
        ) from None


def average_metrics(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The mean of each metric over executions (the metrics every execution has)."""
    names = set(runs[0]).intersection(*runs[1:]) if runs else set()
    return {name: sum(run[name] for run in runs) / len(runs) for name in sorted(names)}
