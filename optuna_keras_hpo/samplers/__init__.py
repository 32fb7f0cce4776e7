"""Samplers: the BoTorch Gaussian-process sampler, and the grid of a declared search space."""

from optuna_keras_hpo.samplers._gp.sampler import GaussianProcessSampler
from optuna_keras_hpo.samplers._grid import (
    default_num_initial_points,
    gaussian_process_sampler,
    grid_points,
    grid_search_space,
    tunable,
)

__all__ = [
    "GaussianProcessSampler",
    "default_num_initial_points",
    "gaussian_process_sampler",
    "grid_points",
    "grid_search_space",
    "tunable",
]
