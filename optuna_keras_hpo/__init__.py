"""optuna-keras-hpo: KerasTuner's API on Optuna studies.

The whole public API::

    from optuna_keras_hpo import (
        HyperParameters, TrialHyperParameters,       # the hp object
        HyperModel,                                   # build(hp) / fit(hp, model, ...)
        Objective, ParetoObjective,                   # what to optimise
        Tuner, BayesianOptimization, RandomSearch, GridSearch, Hyperband,   # strategies
    )

or, for existing KerasTuner code, ``import optuna_keras_hpo.keras_tuner as kt``.
"""

from optuna_keras_hpo.hypermodel import HyperModel
from optuna_keras_hpo.hyperparameters import HyperParameters, TrialHyperParameters
from optuna_keras_hpo.objective import Objective, ParetoObjective
from optuna_keras_hpo.tuner import Trial, Tuner
from optuna_keras_hpo.tuners import BayesianOptimization, GridSearch, Hyperband, RandomSearch

__version__ = "0.1.0"

__all__ = [
    "BayesianOptimization",
    "GridSearch",
    "HyperModel",
    "HyperParameters",
    "Hyperband",
    "Objective",
    "ParetoObjective",
    "RandomSearch",
    "Trial",
    "TrialHyperParameters",
    "Tuner",
]
