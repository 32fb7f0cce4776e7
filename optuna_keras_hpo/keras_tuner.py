"""Drop-in namespace: ``import optuna_keras_hpo.keras_tuner as kt`` replaces ``import keras_tuner
as kt``."""

from optuna_keras_hpo import errors, tuners
from optuna_keras_hpo.hypermodel import HyperModel
from optuna_keras_hpo.hyperparameters import HyperParameters
from optuna_keras_hpo.objective import MultiObjective, Objective
from optuna_keras_hpo.tuner import Tuner
from optuna_keras_hpo.tuners import BayesianOptimization, GridSearch, Hyperband, RandomSearch

__all__ = [
    "BayesianOptimization",
    "GridSearch",
    "HyperModel",
    "HyperParameters",
    "Hyperband",
    "MultiObjective",
    "Objective",
    "RandomSearch",
    "Tuner",
    "errors",
    "tuners",
]
