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
                 grid: dict[str, list[Any]] | None = None, xi: float | None = None,
                 kappa: float | None = None) -> optuna.samplers.BaseSampler:
    """The sampler called ``name``: this project's GP sampler with that acquisition, Optuna's
    TPE (a "constant liar": other workers' running trials count as bad results, so parallel
    workers do not all propose the same region), random search, or a grid over ``grid``
    (:class:`~optuna_keras_hpo.samplers.DistributedGridSampler`: one order for all workers).
    ``n_startup_trials`` is the initial design's size (default: each sampler's own); ``xi``
    (EI, PI) and ``kappa`` (UCB) the GP acquisition's trade-off (default: the sampler's), left
    unused by the samplers without them (see :func:`uses`)."""
    if name.startswith("gp-") and name in SAMPLER_NAMES:
        from optuna_keras_hpo.samplers._gp.sampler import GaussianProcessSampler

        options: dict[str, float] = {}
        if xi is not None and uses(name, "xi"):
            options["xi"] = xi
        if kappa is not None and uses(name, "kappa"):
            options["kappa"] = kappa
        return GaussianProcessSampler(acquisition=name[3:], seed=seed,
                                      n_startup_trials=n_startup_trials, **options)
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


def uses(name: str, option: str) -> bool:
    """Whether the sampler called ``name`` has the option (``xi``, ``kappa`` or
    ``initial_points``)."""
    return {"xi": name in ("gp-ei", "gp-pi"), "kappa": name == "gp-ucb",
            "initial_points": name.startswith("gp-") or name == "tpe"}[option]


def check_sampler_options(names: list[str], **given: Any) -> None:
    """Raise ``ValueError`` when an option is given (not None) that none of the samplers
    ``names`` uses (``--xi`` with ``tpe`` alone, say)."""
    for option, value in given.items():
        if value is not None and not any(uses(n, option) for n in names):
            users = [n for n in SAMPLER_NAMES if uses(n, option)]
            raise ValueError(
                f"{option}={value!r} with sampler(s) {names}: none of them uses it; expected "
                f"one of {users}.")


def describe_sampler(name: str, sampler: optuna.samplers.BaseSampler) -> str:
    """``name`` and the settings that shape its proposals, e.g. ``gp-ei (xi=0.05, 10 initial
    points)``."""
    from optuna_keras_hpo.samplers._gp.sampler import GaussianProcessSampler
    from optuna_keras_hpo.samplers._grid import DEFAULT_INITIAL_POINTS

    if isinstance(sampler, GaussianProcessSampler):
        trade_off = (f"kappa={sampler.kappa:g}" if sampler.acquisition == "ucb"
                     else f"xi={sampler.xi:g}")
        initial = (DEFAULT_INITIAL_POINTS if sampler.n_startup_trials is None
                   else sampler.n_startup_trials)
        return f"{name} ({trade_off}, {initial} initial points)"
    if isinstance(sampler, optuna.samplers.TPESampler):
        return f"{name} ({sampler._n_startup_trials} initial points)"
    return name
