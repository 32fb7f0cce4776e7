"""Samplers: the BoTorch Gaussian-process sampler, the grid sampler for parallel workers, and the
grid of a declared search space."""

from optuna_keras_hpo.samplers._distributed_grid import DistributedGridSampler
from optuna_keras_hpo.samplers._gp.sampler import GaussianProcessSampler
from optuna_keras_hpo.samplers._grid import (
    DEFAULT_INITIAL_POINTS,
    default_num_initial_points,
    grid_points,
    grid_search_space,
    tunable,
)
from optuna_keras_hpo.samplers._named import SAMPLER_NAMES, make_sampler

__all__ = [
    "DEFAULT_INITIAL_POINTS",
    "DistributedGridSampler",
    "SAMPLER_NAMES",
    "GaussianProcessSampler",
    "default_num_initial_points",
    "grid_points",
    "grid_search_space",
    "make_sampler",
    "tunable",
]
