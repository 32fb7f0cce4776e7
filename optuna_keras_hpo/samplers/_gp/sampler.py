"""``GaussianProcessSampler``: an Optuna sampler doing Bayesian optimisation with BoTorch.

Each trial after the initial design:

1. encode every completed trial (and every pruned one, see below) into [0, 1] columns
   (:mod:`.space`), the objective turned into a quantity to maximise;
2. fit the GP surrogate (:mod:`.model`), warm-started from the previous fit;
3. condition it on the trials other workers are running, at the GP's own prediction there
   ("kriging believer"): the uncertainty around a running point collapses, so the acquisition
   looks elsewhere and parallel workers do not propose the same point;
4. maximise the chosen acquisition, EI, PI or UCB (:mod:`.acquisition`), over the mixed space
   (:mod:`.optimize`);
5. propose the best local optimum that is not a configuration already run or running (falling
   back to a random unseen one), so no configuration is evaluated twice while others remain.

Pruned trials: a pruned trial is kept as an observation at its last reported intermediate
value, but no better than the median of the completed trials. The pruner stopped it because it
looked worse than typical trials at that point, and the GP should learn that region is poor
rather than ignore it (Optuna's GP samplers drop pruned trials, which starves the model when most
trials are pruned).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, QMCSampler, RandomSampler
from optuna.samplers._base import _process_constraints_after_trial
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_keras_hpo._validation import check_int
from optuna_keras_hpo.samplers._gp.acquisition import ACQUISITIONS
from optuna_keras_hpo.samplers._grid import DEFAULT_INITIAL_POINTS

INITIAL_DESIGNS = ("sobol", "random")


class GaussianProcessSampler(BaseSampler):
    """Bayesian optimisation with a BoTorch GP and the acquisition of your choice.

    Args:
        acquisition: ``"ei"`` (Expected Improvement, default), ``"pi"`` (Probability of
            Improvement) or ``"ucb"`` (Upper Confidence Bound).
        xi: EI and PI's trade-off (>= 0, objective units): improvement is counted over
            ``f(x+) + xi``; larger explores more. Default 0.0.
        kappa: UCB's trade-off (>= 0): ``mu + kappa * sigma``; larger explores more. Default 2.6
            (KerasTuner's ``beta``).
        n_startup_trials: Random trials of the initial design before the GP is used;
            default 10, as Optuna's ``GPSampler`` (KerasTuner's is 3 x the number of
            parameters; docs/migration.md compares the two). 0: the GP from the second trial
            on (the first has nothing to model).
        initial_design: ``"random"`` (default) or ``"sobol"`` (scrambled Sobol points, Optuna's
            ``QMCSampler``). Random measured better on Hartmann6 (1 of 5 seeds stuck in a local
            optimum at 60 trials, against 2 of 5 with Sobol).
        seed: Seed for the initial design and the acquisition optimiser.
        deterministic_objective: The objective has no noise (fixes the GP's noise tiny).
        n_raw_samples: Candidates scored before the local searches (default 2048).
        n_local_searches: Local searches per proposal (default 10, plus the best observed).
        constraints_func: Optuna's constraints: a function of a finished trial returning
            values that are <= 0 when the trial is feasible (e.g. ``floor - precision``). Each
            constraint gets a GP of its own; EI and PI are multiplied by the probability that
            every constraint holds (constrained EI/PI), and the incumbent is the best feasible
            trial. Only with ``acquisition="ei"`` or ``"pi"``. Constraints that the objective
            sets itself (Optuna 5's ``trial.set_constraint(name, value)``) are used the same way
            without this argument.

    Multi-objective studies: each proposal scalarises the objectives with random weights
    (ParEGO's augmented Chebyshev scalarisation, BoTorch's qParEGO) and maximises the
    acquisition of that one value, so successive proposals spread along the Pareto front.

    Example::

        study = optuna.create_study(sampler=GaussianProcessSampler(acquisition="ucb", kappa=2.0))
    """

    def __init__(
        self,
        *,
        acquisition: str = "ei",
        xi: float = 0.0,
        kappa: float = 2.6,
        n_startup_trials: int | None = None,
        initial_design: str = "random",
        seed: int | None = None,
        deterministic_objective: bool = False,
        n_raw_samples: int = 2048,
        n_local_searches: int = 10,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ) -> None:
        if acquisition not in ACQUISITIONS:
            raise ValueError(
                f"acquisition={acquisition!r}; expected one of {list(ACQUISITIONS)}."
            )
        for name, value in (("xi", xi), ("kappa", kappa)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                value >= 0 and math.isfinite(value)
            ):
                raise ValueError(f"{name}={value!r}; expected a finite number >= 0.")
        check_int("n_startup_trials", n_startup_trials, minimum=0, allow_none=True)
        if initial_design not in INITIAL_DESIGNS:
            raise ValueError(
                f"initial_design={initial_design!r}; expected one of {list(INITIAL_DESIGNS)}."
            )
        if constraints_func is not None and (
            not callable(constraints_func) or acquisition == "ucb"
        ):
            raise ValueError(
                f"constraints_func={constraints_func!r} with acquisition={acquisition!r}; "
                "expected a callable, with acquisition 'ei' or 'pi' (UCB has no probability to "
                "weight by the probability of feasibility)."
            )
        check_int("n_raw_samples", n_raw_samples, minimum=1)
        check_int("n_local_searches", n_local_searches, minimum=1)
        self.acquisition = acquisition
        self.xi = float(xi)
        self.kappa = float(kappa)
        self.n_startup_trials = n_startup_trials
        self.initial_design = initial_design
        self.deterministic_objective = deterministic_objective
        self.n_raw_samples = n_raw_samples
        self.n_local_searches = n_local_searches
        self.constraints_func = constraints_func
        self._seed = seed
        self._rng = np.random.RandomState(seed)
        self._random = RandomSampler(seed=seed)
        self._startup = self._random
        if initial_design == "sobol":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self._startup = QMCSampler(
                    qmc_type="sobol", scramble=True, seed=seed,
                    independent_sampler=self._random, warn_independent_sampling=False,
                )
        self._warm_start: np.ndarray | None = None
        self._trials_cache: tuple[tuple[int, int], list[FrozenTrial]] | None = None
        _import_model_code()

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()
        self._startup.reseed_rng()

    # -- Optuna's sampler interface --------------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self._in_startup(study, trial):
            return self._startup.infer_relative_search_space(study, trial)
        return _union_search_space(_observed(self._study_trials(study, trial)))

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        if self._in_startup(study, trial):
            return self._startup.sample_relative(study, trial, search_space)
        from optuna_keras_hpo.samplers._gp.propose import propose

        return propose(self, study, trial, search_space, self._study_trials(study, trial))

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._startup.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        if self.constraints_func is not None:
            _process_constraints_after_trial(self.constraints_func, study, trial, state)
        self._startup.after_trial(study, trial, state, values)

    # -- helpers -----------------------------------------------------------------------------------
    def _study_trials(self, study: Study, trial: FrozenTrial) -> list[FrozenTrial]:
        """The study's trials, read once for each trial being sampled: every read of an RDB
        storage is a query (about 1 ms with SQLite), and one proposal looks at the trials
        several times."""
        key = (study._study_id, trial.number)
        cached = self._trials_cache  # one read: other threads may replace it meanwhile
        if cached is not None and cached[0] == key:
            return cached[1]
        trials = study.get_trials(deepcopy=False)
        self._trials_cache = (key, trials)
        return trials

    def _in_startup(self, study: Study, trial: FrozenTrial) -> bool:
        if study._is_multi_objective() and self.constraints_func is not None:
            raise ValueError(
                "constraints_func with a multi-objective study is not supported by "
                "GaussianProcessSampler; use Optuna's GPSampler or TPESampler for that."
            )
        observed = _observed(self._study_trials(study, trial))
        completed = [t for t in observed if t.state == TrialState.COMPLETE]
        n_startup = (DEFAULT_INITIAL_POINTS if self.n_startup_trials is None
                     else self.n_startup_trials)
        return len(completed) < max(1, n_startup)  # the first trial has nothing to model

    def _maximised(self, study: Study) -> float:
        return 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0


def _observed(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def _union_search_space(trials: list[FrozenTrial]) -> dict[str, BaseDistribution]:
    """Every parameter seen in a trial, with one distribution (conflicting ones are left out
    for the independent sampler) and more than one possible value."""
    space: dict[str, BaseDistribution] = {}
    conflicting: set[str] = set()
    for t in trials:
        for name, distribution in t.distributions.items():
            if name in space and space[name] != distribution:
                conflicting.add(name)
            space.setdefault(name, distribution)
    return {
        n: d for n, d in space.items()
        if n not in conflicting and not d.single()
    }


def _import_model_code() -> None:
    """Import what the first proposal needs (scikit-learn, SciPy's optimisers, and the sympy
    that torch imports on its first shape broadcast: about 1.4 s together) when the sampler is
    made, so that the search's first model-guided trial does not pay it."""
    import torch.fx.experimental.symbolic_shapes  # noqa: F401

    import optuna_keras_hpo.samplers._gp.propose  # noqa: F401
