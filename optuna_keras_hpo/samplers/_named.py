"""The search strategies by name (``gp-ei``, ..., ``grid``), shared by the ``worker`` and
``compare`` commands."""

from __future__ import annotations

from typing import Any

import optuna

SAMPLER_NAMES: dict[str, str] = {
    "gp-ei": "Gaussian process, Expected Improvement",
    "gp-pi": "Gaussian process, Probability of Improvement",
    "gp-ucb": "Gaussian process, Upper Confidence Bound",
    "tpe": "Tree-structured Parzen estimator (Optuna)",
    "random": "Random search",
    "grid": "Grid search",
}


def make_sampler(name: str, seed: int | None = None, *, n_startup_trials: int | None = None,
                 grid: dict[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    """The sampler called ``name``: this project's GP sampler with that acquisition, Optuna's
    TPE (a "constant liar": other workers' running trials count as bad results, so parallel
    workers do not all propose the same region), random search, or a grid over ``grid``
    (:class:`~optuna_keras_hpo.samplers.DistributedGridSampler`: one order for all workers).
    ``n_startup_trials`` is the initial design's size (default: each sampler's own)."""
    if name.startswith("gp-") and name in SAMPLER_NAMES:
        from optuna_keras_hpo.samplers._gp.sampler import GaussianProcessSampler

        return GaussianProcessSampler(acquisition=name[3:], seed=seed,
                                      n_startup_trials=n_startup_trials)
    if name == "tpe":
        kwargs = {} if n_startup_trials is None else {"n_startup_trials": n_startup_trials}
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, **kwargs)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        if not grid:
            raise ValueError(f"grid={grid!r}; the grid sampler needs a search space: "
                             "a dict of parameter name -> list of values.")
        from optuna_keras_hpo.samplers._distributed_grid import DistributedGridSampler

        return DistributedGridSampler(grid, seed=seed)
    raise ValueError(f"sampler={name!r}; expected one of {list(SAMPLER_NAMES)}.")
