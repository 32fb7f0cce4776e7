"""One proposal of :class:`GaussianProcessSampler`: data, fit, condition, acquire, de-duplicate."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import threadpoolctl
import torch
from botorch.utils.multi_objective.scalarization import get_chebyshev_scalarization
from botorch.utils.sampling import sample_simplex
from optuna.distributions import BaseDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from optuna_keras_hpo.samplers._gp.acquisition import ConstrainedAcquisition, make_acquisition
from optuna_keras_hpo.samplers._gp.model import CachedGP, fit_model, model_state
from optuna_keras_hpo.samplers._gp.optimize import optimize_acquisition
from optuna_keras_hpo.samplers._gp.space import EncodedSpace, unordered_choices

N_WARM_STARTS = 2  # best observed configurations that start a local search


def propose(sampler, study: Study, trial: FrozenTrial,
            search_space: dict[str, BaseDistribution],
            trials: list[FrozenTrial]) -> dict[str, Any]:
    """The configuration to run as ``trial``, given the study's ``trials``."""
    unordered = unordered_choices(study._storage.get_study_system_attrs(study._study_id))
    with _one_thread():
        return _propose(sampler, study, trial, EncodedSpace(search_space, unordered), trials)


@contextlib.contextmanager
def _one_thread():
    """The GP's matrices are tiny: torch's and the BLAS libraries' thread pools (NumPy's and
    SciPy's OpenBLAS) cost more than they save, and far more when other processes (a Keras
    fit, another worker) hold the cores (docs/experiments.md, "Adopted")."""
    global _controller
    if _controller is None:  # inspects the loaded libraries once: ~10 us per use afterwards
        _controller = threadpoolctl.ThreadpoolController()
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _controller.limit(limits=1):
            yield
    finally:
        torch.set_num_threads(n_threads)


_controller: threadpoolctl.ThreadpoolController | None = None


def _propose(sampler, study: Study, trial: FrozenTrial, space: EncodedSpace,
             trials: list[FrozenTrial]) -> dict[str, Any]:
    if study._is_multi_objective():
        X, y = scalarized_training_data(trials, study.directions, space, sampler._rng)
    else:
        X, y = training_data(trials, space, sampler._maximised(study))
    if len(y) == 0:
        return {}
    raw_best = float(y.max())
    fitted, to_model = fit_surrogate(X, y, space.is_categorical, sampler._warm_start,
                                     sampler.deterministic_objective)
    sampler._warm_start = model_state(fitted)
    model = CachedGP(fitted)

    running = [t for t in trials
               if t.state == TrialState.RUNNING and t.number != trial.number]
    if running:
        X_run = torch.from_numpy(np.stack([space.encode(t.params) for t in running]))
        with torch.no_grad():
            believed = model.posterior(X_run.unsqueeze(-2)).mean.reshape(-1)
        model = model.with_observations(X_run, believed)

    incumbent: float | None = raw_best
    constraint_models: list = []
    # Constraints (constrained EI / PI); UCB and multi-objective studies search without them.
    if sampler.acquisition != "ucb" and not study._is_multi_objective() and (
        sampler.constraints_func is not None or _any_constraints(trials)
    ):
        constraint_models, incumbent = _constraint_models(trials, space, sampler._maximised(study))
        if not constraint_models:  # no trial has constraint values yet
            incumbent = raw_best
    acqf = None
    if incumbent is not None:
        # xi is an improvement in the objective's units (the article's formula): carried into
        # the units the GP models, at the incumbent.
        xi = float(to_model(incumbent + sampler.xi) - to_model(incumbent)) if sampler.xi else 0.0
        acqf = make_acquisition(sampler.acquisition, model, best_f=float(to_model(incumbent)),
                                xi=xi, kappa=sampler.kappa)
    if constraint_models:
        acqf = ConstrainedAcquisition(acqf, constraint_models)
    best_rows = X[np.argsort(-y)[:N_WARM_STARTS]]
    lengthscales = model.lengthscales()
    candidates, _ = optimize_acquisition(
        acqf, space, sampler._rng, warm_starts=best_rows,
        lengthscales=np.clip(lengthscales, 1e-3, 1.0),
        n_raw=sampler.n_raw_samples, n_starts=sampler.n_local_searches,
        log_scale=sampler.acquisition != "ucb",
    )
    seen = _seen_keys(trials, space)
    for row in candidates:
        if _key(row) not in seen:
            return space.decode(row)
    for row in space.sample(256, sampler._rng):  # every local optimum was run: explore
        if _key(row) not in seen:
            return space.decode(row)
    return space.decode(candidates[0])


def training_data(trials: list[FrozenTrial], space: EncodedSpace, sign: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Encoded configurations and values to maximise (``sign`` 1 or -1 for the direction) from
    a study's ``trials``: completed trials, and pruned trials at their last reported value capped
    at the completed trials' median."""
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    rows, values = [], []
    for t in completed:
        if t.value is not None and np.isfinite(t.value):
            rows.append(space.encode(_params_in(t, space)))
            values.append(sign * t.value)
    if values and pruned:
        cap = float(np.median(values))
        for t in pruned:
            if t.last_step is None:
                continue
            last = sign * t.intermediate_values[t.last_step]
            if np.isfinite(last):
                rows.append(space.encode(_params_in(t, space)))
                values.append(min(last, cap))
    if not rows:
        return np.empty((0, space.dim)), np.empty(0)
    return np.stack(rows), np.asarray(values, dtype=float)


def scalarized_training_data(trials: list[FrozenTrial], directions: list[StudyDirection],
                             space: EncodedSpace, rng: np.random.RandomState
                             ) -> tuple[np.ndarray, np.ndarray]:
    """ParEGO (Knowles, 2006), BoTorch's qParEGO scalarisation: fresh weights ``w`` uniform on
    the simplex (``sample_simplex``) and the augmented Chebyshev scalarisation
    (``get_chebyshev_scalarization``) of the objectives oriented to be maximised and scaled to
    [0, 1] over the trials, ``-max_i(w_i (1 - f_i)) - 0.05 sum_i w_i (1 - f_i)``, one value to
    maximise. Each proposal draws new weights, so successive proposals aim at different parts
    of the Pareto front."""
    trials = [t for t in trials if t.state == TrialState.COMPLETE
              and t.values is not None and np.all(np.isfinite(t.values))]
    if not trials:
        return np.empty((0, space.dim)), np.empty(0)
    signs = torch.tensor([1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in directions],
                         dtype=torch.float64)
    F = torch.tensor([t.values for t in trials], dtype=torch.float64) * signs
    weights = sample_simplex(F.shape[1], seed=int(rng.randint(2**31)), dtype=F.dtype)[0]
    X = np.stack([space.encode(_params_in(t, space)) for t in trials])
    return X, get_chebyshev_scalarization(weights, F)(F).numpy()


def _any_constraints(trials: list[FrozenTrial]) -> bool:
    """Whether completed trials carry Optuna constraints (``trial.set_constraint``, or a
    sampler's ``constraints_func``)."""
    return any(t.constraints for t in trials if t.state == TrialState.COMPLETE)


def _constraint_models(trials: list[FrozenTrial], space: EncodedSpace, sign: float
                       ) -> tuple[list, float | None]:
    """A GP per constraint (fitted to ``-c_j`` of the completed trials, so feasible is
    ``>= 0``), and the best feasible value to maximise (None if no trial is feasible)."""
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    names = sorted({name for t in completed for name in t.constraints})
    trials = [t for t in completed
              if t.value is not None and names and all(n in t.constraints for n in names)]
    if not trials:
        return [], None
    X = torch.from_numpy(np.stack([space.encode(_params_in(t, space)) for t in trials]))
    C = np.array([[t.constraints[n] for n in names] for t in trials], dtype=float)
    feasible = np.all(C <= 0, axis=1)
    best = max((sign * t.value for t, ok in zip(trials, feasible, strict=True) if ok),
               default=None)
    models = []
    for j in range(C.shape[1]):
        fitted = fit_model(X, torch.from_numpy(-C[:, j:j + 1]), space.is_categorical)
        models.append(CachedGP(fitted))
    return models, best


def fit_surrogate(X: np.ndarray, y: np.ndarray, is_categorical: np.ndarray,
                  warm_start: np.ndarray | None, deterministic: bool
                  ) -> tuple[Any, Callable[[float], float]]:
    """The fitted GP of the values ``y`` (to maximise) at ``X``, and the map from objective units
    to the units it models.

    The values are fitted a Yeo-Johnson transform (:func:`yeo_johnson`). An exponent below 1
    means a long upper tail: a few values far above the rest, as when a search has found a peak
    (Hartmann6) or a good region of a loss surface. Standardised as they are, such values make
    the incumbent several standard deviations above everything else, so Expected Improvement away
    from the peak is negligible and the search stays on the first peak it climbed; the GP then
    models the transformed values, which compresses the tail and keeps the values' order (the
    incumbent stays the incumbent). Other values (an exponent of 1 or more: a long lower tail)
    are modelled as they are (docs/concepts.md, "Long upper tails").
    """
    transform = yeo_johnson(y)
    if transform is not None and transform.exponent < 1:
        y, to_model = transform.values, transform.to_model
    else:
        to_model = _identity
    return fit_model(torch.from_numpy(X), torch.from_numpy(y[:, None]), is_categorical,
                     warm_start, deterministic), to_model


class YeoJohnson:
    """A fitted Yeo-Johnson transform of some values, standardised (mean 0, variance 1)."""

    def __init__(self, y: np.ndarray, exponent: float) -> None:
        self.exponent = exponent
        transformed = stats.yeojohnson(y, exponent)
        self._mean = float(transformed.mean())
        self._std = float(transformed.std())
        self.values = (transformed - self._mean) / self._std

    def to_model(self, value: float) -> float:
        return float((stats.yeojohnson(np.array([value]), self.exponent)[0] - self._mean)
                     / self._std)


def yeo_johnson(y: np.ndarray) -> YeoJohnson | None:
    """The Yeo-Johnson transform whose exponent makes ``y`` most normal (scipy's maximum
    likelihood, as scikit-learn's ``PowerTransformer``), or None when it cannot apply (fewer than
    3 values, all equal, or a non-finite result)."""
    if len(y) < 3 or np.ptp(y) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow warnings at extreme trial exponents
        transform = YeoJohnson(y, float(stats.yeojohnson_normmax(y)))
    # Equal transformed values (a zero spread) give 0 / 0 here, so this also covers them.
    if not np.all(np.isfinite(transform.values)):
        return None
    return transform


def _identity(value: float) -> float:
    return value


def _params_in(trial: FrozenTrial, space: EncodedSpace) -> dict[str, Any]:
    return {d.name: trial.params[d.name] for d in space.dims
            if d.name in trial.params and trial.distributions[d.name] == d.distribution}


def _seen_keys(trials: list[FrozenTrial], space: EncodedSpace) -> set[tuple]:
    rows = [space.encode(_params_in(t, space)) for t in trials
            if t.params and t.state != TrialState.WAITING]
    return {_key(r) for r in space.snap(np.stack(rows))} if rows else set()


def _key(row: np.ndarray) -> tuple:
    return tuple(np.round(row, 9))
