"""The grid of a declared search space, and the default initial-design size."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from optuna_keras_hpo.hyperparameters import Fixed, HyperParameter


def tunable(space: Iterable[HyperParameter]) -> list[HyperParameter]:
    """The declarations that are searched over (not ``Fixed``)."""
    return [hp for hp in space if not isinstance(hp, Fixed)]


# Random trials before a model-based sampler takes over, by default (as Optuna's GPSampler);
# docs/migration.md gives the measurements behind it.
DEFAULT_INITIAL_POINTS = 10


def default_num_initial_points(max_trials: int | None = None) -> int:
    """The default initial design: :data:`DEFAULT_INITIAL_POINTS` random trials, and at most a
    third of ``max_trials`` (at least 1) when fewer trials are planned, so that the model
    chooses most of the budget. KerasTuner's default is 3 x the number of hyperparameters."""
    if max_trials is None:
        return DEFAULT_INITIAL_POINTS
    return max(1, min(DEFAULT_INITIAL_POINTS, max_trials // 3))


def grid_search_space(space: Iterable[HyperParameter]) -> dict[str, list[Any]]:
    """The grid of a declared space: every lattice value of each hyperparameter.

    Ints take every value, stepped Floats every step, Choices and Booleans every value; a
    continuous Float takes ``GRID_POINTS_PER_CONTINUOUS_FLOAT`` points.
    """
    return {hp.name: hp.grid_values() for hp in tunable(space)}


def grid_points(
    space: Iterable[HyperParameter], fixed_values: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every configuration of the grid, with conditional hyperparameters only where active.

    A child declared under ``conditional_scope`` is combined only with the parent values that
    activate it, so no two points differ in an inactive value alone.
    """
    fixed_values = fixed_values or {}
    points: list[dict[str, Any]] = [{}]
    for hp in tunable(space):
        grown = []
        for point in points:
            if hp.is_active({**fixed_values, **point}):
                grown.extend({**point, hp.name: v} for v in hp.grid_values())
            else:
                grown.append(point)
        points = grown
    return points
