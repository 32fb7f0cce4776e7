"""What a fraud search maximises.

Recall alone is degenerate (flagging everything gives recall 1.0), so precision-aware objectives
sit beside the article's ``val_recall``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ObjectiveSpec:
    """What a fraud search maximises.

    Attributes:
        name: ``"recall"``, ``"pr_auc"``, ``"fbeta"``, ``"recall_at_precision"`` or ``"pareto"``.
        metrics: The Keras log names maximised (two for the Pareto front).
        directions: Optuna directions, one per metric (all ``"maximize"``).
        precision_floor: For ``recall_at_precision``: trials must reach
            ``val_precision >= precision_floor`` (an Optuna constraint); else None.
        description: One line for reports.
    """

    name: str
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    precision_floor: float | None
    description: str

    def constraints(self, metrics: Mapping[str, float]) -> tuple[float, ...]:
        """Optuna's constraint values (feasible when every one is <= 0) for a trial's metrics:
        ``(precision_floor - val_precision,)``, or ``()`` without a floor."""
        if self.precision_floor is None:
            return ()
        precision = metrics.get("val_precision")
        if precision is None or not math.isfinite(float(precision)):
            return (1.0,)
        return (self.precision_floor - float(precision),)

    def tuner_constraints(self):
        """The ``Tuner(constraints=...)`` function of a precision floor (``{"precision_floor":
        floor - val_precision}``, feasible when <= 0), or None without a floor."""
        if self.precision_floor is None:
            return None

        def precision_floor(metrics: Mapping[str, float]) -> dict[str, float]:
            return {"precision_floor": self.constraints(metrics)[0]}

        return precision_floor

    def feasible(self, metrics: Mapping[str, float]) -> bool:
        """Whether a trial's metrics clear the precision floor (always, without one)."""
        return all(c <= 0 for c in self.constraints(metrics))


# The comparison's default (docs/fraud.md, "Objectives"): threshold-free and continuous, and a
# model that flags every transaction scores the fraud rate.
DEFAULT_OBJECTIVE = "pr_auc"

OBJECTIVES: dict[str, ObjectiveSpec] = {
    "recall": ObjectiveSpec(
        "recall", ("val_recall",), ("maximize",), None,
        "validation recall at threshold 0.5, the article's objective; alone it is degenerate: "
        "a model that flags every transaction has recall 1.0",
    ),
    "pr_auc": ObjectiveSpec(
        "pr_auc", ("val_pr_auc",), ("maximize",), None,
        "area under the validation precision-recall curve (Keras AUC(curve='PR')): "
        "threshold-free, high only if precision holds up as recall grows",
    ),
    "fbeta": ObjectiveSpec(
        "fbeta", ("val_fbeta",), ("maximize",), None,
        "validation F2 score at threshold 0.5: recall weighted 4 times precision, but a model "
        "that flags everything scores low",
    ),
    "recall_at_precision": ObjectiveSpec(
        "recall_at_precision", ("val_recall",), ("maximize",), 0.5,
        "validation recall subject to validation precision >= 0.5 (an Optuna constraint: "
        "trials under the floor are infeasible)",
    ),
    "pareto": ObjectiveSpec(
        "pareto", ("val_recall", "val_precision"), ("maximize", "maximize"), None,
        "validation recall and precision, both maximised: the result is their Pareto front",
    ),
}


def objective_spec(name: str, precision_floor: float = 0.5) -> ObjectiveSpec:
    """The :class:`ObjectiveSpec` called ``name``; ``precision_floor`` applies to
    ``recall_at_precision`` (ignored otherwise)."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective={name!r}; expected one of {list(OBJECTIVES)}.")
    spec = OBJECTIVES[name]
    if spec.precision_floor is None:
        return spec
    if (isinstance(precision_floor, bool) or not isinstance(precision_floor, (int, float))
            or not 0 < precision_floor < 1):
        raise ValueError(
            f"precision_floor={precision_floor!r}; expected a number in (0, 1)."
        )
    floor = float(precision_floor)
    return replace(
        spec, precision_floor=floor,
        description=spec.description.replace(">= 0.5", f">= {floor:g}"),
    )
