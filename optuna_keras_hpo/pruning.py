"""Keras callbacks that connect training to the Optuna trial: pruning and learning curves."""

from __future__ import annotations

import optuna


def pruning_callback(trial: optuna.Trial, monitor: str):
    """optuna-integration's ``KerasPruningCallback``: reports ``monitor`` at every epoch (the
    trial's intermediate values, i.e. its learning curve) and raises ``TrialPruned`` when the
    study's pruner says so."""
    from optuna_integration.keras import KerasPruningCallback

    return KerasPruningCallback(trial, monitor)


def hyperband_pruner(max_epochs: int, factor: int) -> optuna.pruners.HyperbandPruner:
    """Optuna's Hyperband pruner with epochs as the resource."""
    return optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=max_epochs, reduction_factor=factor
    )
