"""The search strategies. Each is the one :class:`Tuner` with a sampler and a pruner chosen."""

from __future__ import annotations

import math
import random
from typing import Any

import optuna

from optuna_keras_hpo._validation import check_int
from optuna_keras_hpo.distributed import died, refused
from optuna_keras_hpo.hyperparameters import Fixed
from optuna_keras_hpo.pruning import hyperband_pruner
from optuna_keras_hpo.samplers import (
    DistributedGridSampler,
    GaussianProcessSampler,
    default_num_initial_points,
    grid_points,
    grid_search_space,
)
from optuna_keras_hpo.tuner import Tuner


class BayesianOptimization(Tuner):
    """Bayesian optimisation with a Gaussian-process surrogate (:class:`GaussianProcessSampler`).

    Args:
        num_initial_points: Random trials before the GP takes over; default 10, and at most
            a third of ``max_trials`` when fewer are planned (KerasTuner: 3 x the number of
            tuned hyperparameters; docs/migration.md).
        alpha: KerasTuner's fixed GP noise; accepted for compatibility, unused (the GP learns its
            noise level).
        beta: UCB's exploration factor ``kappa`` in ``mu + kappa * sigma`` (KerasTuner's meaning),
            used when ``acquisition="ucb"``.
        acquisition: ``"ei"`` (default), ``"pi"`` or ``"ucb"`` (KerasTuner's only choice).
        xi: EI and PI's trade-off, in the objective's units (default 0).
        **kwargs: Every :class:`Tuner` argument (``sampler=`` replaces the GP).
    """

    def __init__(self, hypermodel=None, objective=None, max_trials=10, num_initial_points=None,
                 alpha=1e-4, beta=2.6, seed=None, hyperparameters=None, tune_new_entries=True,
                 allow_new_entries=True, max_retries_per_trial=0,
                 max_consecutive_failed_trials=3, acquisition="ei", xi=0.0, **kwargs):
        check_int("num_initial_points", num_initial_points, minimum=1, allow_none=True)
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name}={value!r}; expected a number >= 0.")
        self.num_initial_points = num_initial_points
        self.alpha = alpha
        self.beta = beta
        self.acquisition = acquisition
        self.xi = xi
        GaussianProcessSampler(acquisition=acquisition, xi=xi, kappa=beta)  # validates early
        super().__init__(
            hypermodel, objective, max_trials, seed=seed, hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials, **kwargs,
        )

    def _default_sampler(self) -> optuna.samplers.BaseSampler:
        n_startup = self.num_initial_points or default_num_initial_points(self.max_trials)
        return GaussianProcessSampler(
            acquisition=self.acquisition, xi=self.xi, kappa=self.beta,
            n_startup_trials=n_startup, seed=self.seed,
        )


# A finite space with more configurations than this is searched like an infinite one: at
# random, where a repeat is improbable.
FINITE_SPACE_LIMIT = 10_000


class RandomSearch(Tuner):
    """Random search: Optuna's ``RandomSampler``.

    On a finite space (no continuous Float, at most :data:`FINITE_SPACE_LIMIT` configurations),
    as KerasTuner's: each trial runs a configuration no trial has run, drawn at random (enqueued
    with ``study.enqueue_trial``), and the search ends when none is left, even before
    ``max_trials``.
    """

    def __init__(self, hypermodel=None, objective=None, max_trials=10, seed=None,
                 hyperparameters=None, tune_new_entries=True, allow_new_entries=True,
                 max_retries_per_trial=0, max_consecutive_failed_trials=3, **kwargs):
        self._rng = random.Random(seed)
        self._points_cache: tuple[int, list[dict[str, Any]] | None] | None = None
        super().__init__(
            hypermodel, objective, max_trials, seed=seed, hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials, **kwargs,
        )

    def _points(self) -> list[dict[str, Any]] | None:
        """Every configuration of a finite space; None for an infinite or a large one."""
        space = self._tuned_space()
        key = hash(tuple(repr(hp.get_config()) for hp in space))
        if self._points_cache is None or self._points_cache[0] != key:
            finite = space and not any(
                isinstance(hp.distribution(), optuna.distributions.FloatDistribution)
                and hp.distribution().step is None for hp in space)
            bound = math.prod(len(hp.grid_values()) for hp in space) if finite else 0
            points = grid_points(space, _fixed_values(self)) \
                if finite and bound <= FINITE_SPACE_LIMIT else None
            self._points_cache = (key, points)
        return self._points_cache[1]

    def _free_points(self, trials: list[optuna.trial.FrozenTrial]) -> list[dict[str, Any]]:
        taken = _taken_points(trials)
        return [p for p in self._points() or [] if frozenset(p.items()) not in taken]

    def _unique_points(self) -> bool:
        return self._points() is not None

    def _prepare_trial(self) -> bool:
        points = self._points()
        return True if points is None else _enqueue_unseen(self.study, points, self._rng)

    def _search_exhausted(self, trials: list[optuna.trial.FrozenTrial]) -> bool:
        return self._points() is not None and not self._free_points(trials)


class GridSearch(Tuner):
    """Every combination of the declared values, each run once.

    Ints take every value, stepped Floats every step, Choices and Booleans every value, and a
    continuous Float 10 points (the centres of ten equal-probability buckets, as KerasTuner).
    A conditional hyperparameter is combined only with the parent values that activate it.
    Hyperparameters declared in ``fit`` join the grid when the first trial declares them: that
    trial runs them at their defaults (KerasTuner's rule), the next ones the rest of the grid.
    Each trial runs a point no trial holds, picked at random (``seed``) and enqueued with
    ``study.enqueue_trial``; the study's sampler is a ``GridSampler`` over the grid
    (:class:`~optuna_keras_hpo.samplers.DistributedGridSampler`). ``max_trials=None`` (the
    default) runs the whole grid; a smaller number runs that many points. A point whose trial
    failed is not run again. Several processes may search one grid (same ``storage`` and
    ``study_name``): each point is run by one of them (a point two workers pick at the same
    moment is refused at admission to the later one), and the trial of a dead worker (with
    heartbeats) is retried on its own point.
    """

    def __init__(self, hypermodel=None, objective=None, max_trials=None, seed=None,
                 hyperparameters=None, tune_new_entries=True, allow_new_entries=True,
                 max_retries_per_trial=0, max_consecutive_failed_trials=3, **kwargs):
        self._rng = random.Random(seed)
        super().__init__(
            hypermodel, objective, max_trials, seed=seed, hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials, **kwargs,
        )

    def grid(self) -> dict[str, list[Any]]:
        """The values of each tuned hyperparameter known so far."""
        return grid_search_space(self._tuned_space())

    def grid_points(self) -> list[dict[str, Any]]:
        """Every configuration of the grid known so far."""
        return grid_points(self._tuned_space(), _fixed_values(self))

    def _default_sampler(self) -> optuna.samplers.BaseSampler:
        return DistributedGridSampler(self.grid(), seed=self.seed, assign_points=False)

    def _known_for_grid(self) -> set[str]:
        return set(self.hyperparameters._hps)

    def _prepare_trial(self) -> bool:
        return _enqueue_unseen(self.study, self.grid_points(), self._rng)

    def _unique_points(self) -> bool:
        return True

    def _trial_budget(self) -> int | None:
        size = len(self.grid_points()) if self.hyperparameters.space else None
        if self.max_trials is None:
            return size
        return self.max_trials if size is None else min(self.max_trials, size)

    def _search_exhausted(self, trials: list[optuna.trial.FrozenTrial]) -> bool:
        """Every point is taken by a trial: finished (failed ones too), running or queued."""
        taken = _taken_points(trials)
        return all(frozenset(p.items()) in taken for p in self.grid_points())


class Hyperband(Tuner):
    """Hyperband: Optuna's ``HyperbandPruner`` with epochs as the resource, TPE proposing.

    Every trial is fit with ``epochs=max_epochs`` and stopped early by the pruner. The trial
    budget, unless ``max_trials=`` is given, is that of KerasTuner's Hyperband:
    ``hyperband_iterations`` x the trials of all brackets.

    Args:
        max_epochs: Epochs of a trial that is never pruned.
        factor: Reduction factor between brackets' rungs.
        hyperband_iterations: Times the whole Hyperband schedule is run.
    """

    def __init__(self, hypermodel=None, objective=None, max_epochs=100, factor=3,
                 hyperband_iterations=1, seed=None, hyperparameters=None, tune_new_entries=True,
                 allow_new_entries=True, max_retries_per_trial=0,
                 max_consecutive_failed_trials=3, max_trials=None, **kwargs):
        check_int("max_epochs", max_epochs, minimum=1)
        check_int("factor", factor, minimum=2)
        check_int("hyperband_iterations", hyperband_iterations, minimum=1)
        self.max_epochs = max_epochs
        self.factor = factor
        self.hyperband_iterations = hyperband_iterations
        if max_trials is None:
            max_trials = hyperband_iterations * hyperband_trials_per_iteration(max_epochs, factor)
        super().__init__(
            hypermodel, objective, max_trials, seed=seed, hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials, **kwargs,
        )

    def _default_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=self.seed)

    def _default_pruner(self) -> optuna.pruners.BasePruner:
        return hyperband_pruner(self.max_epochs, self.factor)

    def _fit_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**kwargs, "epochs": self.max_epochs}


def _fixed_values(tuner: Tuner) -> dict[str, Any]:
    return {hp.name: hp.value for hp in tuner._predeclared.space if isinstance(hp, Fixed)}


def _taken_points(trials: list[optuna.trial.FrozenTrial]) -> set[frozenset]:
    """The configurations that trials hold (finished in any state, running or queued; not the
    trials refused at admission, nor those whose worker died)."""
    taken = set()
    for t in trials:
        if not refused(t) and not died(t):
            taken.add(frozenset(t.params.items()))
            taken.add(frozenset(t.system_attrs.get("fixed_params", {}).items()))
    return taken


def _enqueue_unseen(study: optuna.Study, points: list[dict[str, Any]],
                    rng: random.Random) -> bool:
    """Enqueue one of ``points`` that no trial holds, picked at random, unless a trial is
    already queued (it runs first); False when every point is taken."""
    trials = study.get_trials(deepcopy=False)
    if any(t.state == optuna.trial.TrialState.WAITING for t in trials):
        return True
    taken = _taken_points(trials)
    free = [p for p in points if frozenset(p.items()) not in taken]
    if not free:
        return False
    study.enqueue_trial(rng.choice(free))
    return True


def hyperband_trials_per_iteration(max_epochs: int, factor: int) -> int:
    """Trials in one Hyperband iteration: sum over brackets s of ceil((s_max+1)/(s+1) * f**s)."""
    s_max = int(math.log(max_epochs) / math.log(factor) + 1e-9)
    return sum(
        math.ceil((s_max + 1) / (s + 1) * factor**s) for s in range(s_max + 1)
    )
