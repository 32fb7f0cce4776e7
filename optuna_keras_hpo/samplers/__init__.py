"""Samplers: the BoTorch Gaussian-process sampler, and the grid of a declared search space."""

from optuna_keras_hpo.samplers._gp.sampler import GaussianProcessSampler
from optuna_keras_hpo.samplers._grid import (
    default_num_initial_points,
    grid_points,
    grid_search_space,
    tunable,
)

__all__ = [
    "GaussianProcessSampler",
    "default_num_initial_points",
    "grid_points",
    "grid_search_space",
    "tunable",
]
