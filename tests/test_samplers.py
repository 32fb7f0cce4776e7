"""The BoTorch GP sampler: acquisitions against closed forms, mixed spaces, parallel workers."""

import math

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from scipy.stats import norm

from optuna_keras_hpo.samplers import GaussianProcessSampler
from optuna_keras_hpo.samplers._gp.acquisition import make_acquisition
from optuna_keras_hpo.samplers._gp.model import MINIMUM_NOISE, CachedGP, fit_model
from optuna_keras_hpo.samplers._gp.propose import (
    _identity,
    fit_surrogate,
    training_data,
    yeo_johnson,
)
from optuna_keras_hpo.samplers._gp.space import EncodedSpace, unordered_choices

optuna.logging.set_verbosity(optuna.logging.WARNING)

MIXED = {
    "units": IntDistribution(16, 128, step=16),
    "dropout": FloatDistribution(0.0, 0.5, step=0.1),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "batch_size": CategoricalDistribution([16, 32, 64]),
    "optimizer": CategoricalDistribution(["adam", "sgd", "lion"]),
}


def mixed_objective(p):
    penalty = {"adam": 0.0, "lion": 0.1, "sgd": 0.4}[p["optimizer"]]
    return ((p["units"] - 64) / 112) ** 2 + (p["dropout"] - 0.2) ** 2 \
        + 0.1 * (math.log10(p["lr"]) + 3) ** 2 + 0.05 * abs(p["batch_size"] - 32) / 32 + penalty


def run(sampler, n_trials, space=MIXED, objective=mixed_objective, direction="minimize"):
    study = optuna.create_study(sampler=sampler, direction=direction)
    for _ in range(n_trials):
        trial = study.ask(space)
        study.tell(trial, objective(trial.params))
    return study


def candidates(n, seed=0):
    return torch.rand(n, 1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.uniform(size=(12, 2)))
    y = torch.sin(6 * X[:, :1]) + X[:, 1:] ** 2
    model = fit_model(X, y, np.array([False, False]))
    return model, X, y


def gpytorch_map_objective(model):
    """GPyTorch's own MAP objective of a fitted model at its current hyperparameters: the exact
    marginal log-likelihood plus every prior registered on the model."""
    import gpytorch

    mll = gpytorch.mlls.ExactMarginalLogLikelihood(model.likelihood, model)

    def objective() -> float:
        model.train()
        with torch.no_grad():
            value = float(mll(model(*model.train_inputs), model.train_targets))
        model.eval()
        return value

    return objective


def test_fit_maximises_gpytorchs_marginal_likelihood_with_priors(fitted):
    """The closed-form MAP fit lands on an optimum of GPyTorch's own objective (marginal
    log-likelihood plus the model's priors): moving any hyperparameter lowers it."""
    model, _, _ = fitted
    objective = gpytorch_map_objective(model)

    kernel = model.covar_module
    best = objective()
    constant = model.mean_module.constant.clone()
    for shift in (-0.05, 0.05):  # the prior mean too
        model.mean_module.constant.data.fill_(float(constant) + shift)
        assert objective() < best
    model.mean_module.constant.data.copy_(constant)
    fitted_values = (kernel.base_kernel.lengthscale.clone(), kernel.outputscale.clone(),
                     model.likelihood.noise.clone())
    try:
        for i in range(3):  # each lengthscale, the output scale, the noise
            for factor in (0.9, 1.1):
                lengthscale, scale, noise = (v.clone() for v in fitted_values)
                if i == 0:
                    for j in range(lengthscale.shape[-1]):
                        moved = lengthscale.clone()
                        moved[..., j] *= factor
                        kernel.base_kernel.lengthscale = moved
                        assert objective() < best
                    kernel.base_kernel.lengthscale = lengthscale
                elif i == 1:
                    kernel.outputscale = scale * factor
                    assert objective() < best
                    kernel.outputscale = scale
                elif float(noise.detach()) * factor > 1.01 * MINIMUM_NOISE:
                    model.likelihood.noise = noise * factor
                    assert objective() <= best + 1e-9
                    model.likelihood.noise = noise
    finally:
        kernel.base_kernel.lengthscale, kernel.outputscale, model.likelihood.noise = (
            fitted_values)


@pytest.mark.parametrize("columns", ["numeric", "mixed"])
@pytest.mark.parametrize("deterministic", [False, True])
def test_map_objective_gradient_is_its_finite_difference(columns, deterministic):
    """The fit's objective computes its gradient in closed form; it must be the derivative of
    its value (central differences), in every hyperparameter, the additive weight included."""
    from optuna_keras_hpo.samplers._gp.model import _MapObjective, has_additive_part, make_model

    rng = np.random.default_rng(5)
    is_categorical = np.array([False, columns == "mixed", False])
    X = rng.uniform(size=(25, 3))
    X[:, is_categorical] = rng.integers(0, 3, size=(25, int(is_categorical.sum())))
    y = np.sin(5 * X[:, 0]) + X[:, 1] + 0.1 * rng.standard_normal(25)
    model = make_model(torch.from_numpy(X), torch.from_numpy(y[:, None]), is_categorical,
                       deterministic)
    objective = _MapObjective(model, deterministic)
    for _ in range(3):
        theta = rng.normal(0.0, 0.7, size=3 + 2 + has_additive_part(is_categorical))
        _, gradient = objective(theta)
        eps = 1e-6
        numeric = [(objective(theta + eps * e)[0] - objective(theta - eps * e)[0]) / (2 * eps)
                   for e in np.eye(len(theta))]
        np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-4)


def test_deterministic_data_fit_a_noise_below_gpsamplers_floor():
    """A smooth noiseless function fits a noise variance under 1e-6 (Optuna GPSampler's floor),
    so the GP interpolates its observations to far better than 1e-3 of their spread."""
    rng = np.random.default_rng(1)
    X = torch.from_numpy(rng.uniform(size=(40, 2)))
    y = (X[:, :1] - 0.3) ** 2 + 0.5 * (X[:, 1:] - 0.6) ** 2
    model = fit_model(X, y, np.array([False, False]))
    noise = float(model.likelihood.noise.detach())
    assert MINIMUM_NOISE <= noise < 1e-6
    mean = CachedGP(model).posterior(X.unsqueeze(-2)).mean.reshape(-1, 1)
    assert torch.max(torch.abs(mean - y)) < 1e-4 * float(y.std())


def test_cholesky_of_a_singular_kernel_matrix_gets_jitter():
    from optuna_keras_hpo.samplers._gp.model import psd_safe_cholesky  # what CachedGP uses

    x = torch.tensor([[0.1, 0.2], [0.1, 0.2], [0.7, 0.4]], dtype=torch.float64)
    K = x @ x.T  # rank 2: plain Cholesky fails
    assert torch.linalg.cholesky_ex(K)[1].item() != 0
    L = psd_safe_cholesky(K)
    assert torch.allclose(L @ L.T, K, atol=1e-6)


def test_prior_mean_is_the_least_squares_level_of_the_data():
    """The constant prior mean is the generalised least-squares estimate at the fitted
    hyperparameters, so a crowded cluster of good points counts about as one point: far from the
    data the GP predicts the level of the scattered points, not the plain average that the
    cluster pulls up (which sent Expected Improvement to the corners of the cube)."""
    rng = np.random.default_rng(3)
    cluster = 0.5 + 0.01 * rng.standard_normal((12, 2))
    scattered = rng.uniform(size=(8, 2))
    X = torch.from_numpy(np.vstack([cluster, scattered]))
    y = torch.from_numpy(np.concatenate([3.0 + 0.01 * rng.standard_normal(12),
                                         0.1 * rng.standard_normal(8)]))[:, None]
    model = fit_model(X, y, np.array([False, False]))
    gp = CachedGP(model)

    # The closed form, from the fitted hyperparameters, in the model's standardised units.
    K = gp._k(X, X) + gp._noise * torch.eye(len(X), dtype=X.dtype)
    z = (y.squeeze(-1) - gp._y_mean) / gp._y_std
    ones = torch.ones_like(z)
    expected = (ones @ torch.linalg.solve(K, z)) / (ones @ torch.linalg.solve(K, ones))
    assert float(model.mean_module.constant) == pytest.approx(float(expected), rel=1e-6)

    far = gp.posterior(torch.tensor([[[40.0, -40.0]]], dtype=torch.float64)).mean.item()
    assert far == pytest.approx(float(expected * gp._y_std + gp._y_mean), abs=1e-6)
    assert far < 0.5 * float(y.mean())  # the plain average is 1.8; the scattered level is ~0


def _shifted_category_data():
    """``y = sin(6 x) + 0.8 [category 1]``: category 0 observed over all of ``x``, category 1
    only for ``x < 0.35``."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(size=12), rng.uniform(0.0, 0.35, size=4)])
    category = np.r_[np.zeros(12), np.ones(4)]
    X = torch.from_numpy(np.column_stack([x, category]))
    y = torch.from_numpy(np.sin(6 * x) + 0.8 * category)[:, None]
    return X, y


def test_additive_part_carries_a_categorical_effect_to_unseen_combinations(monkeypatch):
    """With numeric and categorical columns the kernel has an additive part, so an effect of a
    category learnt where it was observed carries over to the rest of the numeric range (an
    optimizer that was tried only with poor learning rates is not written off). The product
    kernel alone (``has_additive_part`` off) predicts category 1 at ``x > 0.6`` ten times worse."""
    from optuna_keras_hpo.samplers._gp import model as gp_model

    X, y = _shifted_category_data()
    grid = np.linspace(0.6, 1.0, 9)
    unseen = torch.from_numpy(np.column_stack([grid, np.ones_like(grid)]))[:, None, :]
    truth = np.sin(6 * grid) + 0.8
    errors = {}
    for additive in (True, False):
        if not additive:
            monkeypatch.setattr(gp_model, "has_additive_part", lambda is_categorical: False)
        model = fit_model(X, y, np.array([False, True]))
        assert (model.covar_module.base_kernel.additive is not None) == additive
        mean = CachedGP(model).posterior(unseen).mean.reshape(-1).numpy()
        errors[additive] = float(np.max(np.abs(mean - truth)))
    assert errors[True] < 0.1
    assert errors[False] > 10 * errors[True]


def test_mixed_fit_maximises_gpytorchs_objective_in_the_additive_weight():
    """The additive part's weight is fitted with the rest: GPyTorch's marginal likelihood plus
    the model's priors (the weight's among them) is lower on either side of it, and the cached
    posterior, which evaluates the kernel itself, equals the BoTorch model's."""
    X, y = _shifted_category_data()
    model = fit_model(X, y, np.array([False, True]))
    kernel = model.covar_module.base_kernel
    objective = gpytorch_map_objective(model)

    fitted_weight = float(kernel.additive)
    best = objective()
    for factor in (0.9, 1.1):
        kernel.additive.fill_(fitted_weight * factor)
        assert objective() < best
    kernel.additive.fill_(fitted_weight)

    x = torch.from_numpy(np.column_stack([np.linspace(0, 1, 7), np.r_[0, 1, 0, 1, 2, 1, 0]]))
    ours = CachedGP(model).posterior(x[:, None, :])
    theirs = model.posterior(x[:, None, :])
    assert torch.allclose(ours.mean, theirs.mean, atol=1e-8)
    assert torch.allclose(ours.variance, theirs.variance, atol=1e-8)


def test_cached_posterior_is_the_gp_posterior(fitted):
    model, X, _ = fitted
    x = candidates(7)
    ours = CachedGP(model).posterior(x)
    theirs = model.posterior(x)
    assert torch.allclose(ours.mean, theirs.mean, atol=1e-8)
    assert torch.allclose(ours.variance, theirs.variance, atol=1e-8)


@pytest.mark.parametrize("xi", [0.0, 0.05])
def test_ei_and_pi_match_their_closed_forms(fitted, xi):
    model, _, y = fitted
    gp = CachedGP(model)
    x = candidates(9)
    post = gp.posterior(x)
    mu, sigma = post.mean.squeeze().numpy(), post.variance.sqrt().squeeze().numpy()
    best = float(y.max())
    z = (mu - best - xi) / sigma
    ei = (mu - best - xi) * norm.cdf(z) + sigma * norm.pdf(z)
    pi = norm.cdf(z)
    got_ei = make_acquisition("ei", gp, best, xi=xi)(x).exp().detach().numpy()
    got_pi = make_acquisition("pi", gp, best, xi=xi)(x).exp().detach().numpy()
    # The closed forms lose digits where EI is tiny; BoTorch's log forms do not.
    np.testing.assert_allclose(got_ei, ei, rtol=1e-4, atol=1e-10)
    np.testing.assert_allclose(got_pi, pi, rtol=1e-4, atol=1e-10)


@pytest.mark.parametrize("acquisition", ["ei", "pi", "ucb"])
@pytest.mark.parametrize("space", ["numeric", "mixed"])
def test_acquisitions_are_botorchs_with_their_gradients_far_into_the_tail(fitted, space,
                                                                         acquisition):
    """Each acquisition, whose gradient is computed in closed form on the sampler's GP, equals
    BoTorch's class (LogExpectedImprovement, LogProbabilityOfImprovement, UpperConfidenceBound)
    differentiated by autograd through the posterior, values and gradients, from the incumbent
    to improvements 60 standard deviations away; on numeric columns, and with a categorical
    column (the kernel's additive part)."""
    from botorch.acquisition.analytic import (
        LogExpectedImprovement,
        LogProbabilityOfImprovement,
        UpperConfidenceBound,
    )

    if space == "numeric":
        model, _, y = fitted
        x = candidates(64)
    else:
        X, y = _shifted_category_data()
        # Some noise: on noiseless data the variance next to a training point is a difference
        # of nearly equal numbers, which neither way of differentiating gets to 1e-6.
        y = y + 0.05 * torch.randn(y.shape, dtype=y.dtype,
                                   generator=torch.Generator().manual_seed(2))
        model = fit_model(X, y, np.array([False, True]))
        x = candidates(64)
        x[..., 1] = torch.randint(0, 3, (64, 1), generator=torch.Generator().manual_seed(1))
    gp = CachedGP(model)
    reference = {
        "ei": lambda best: LogExpectedImprovement(gp, best_f=best),
        "pi": lambda best: LogProbabilityOfImprovement(gp, best_f=best),
        "ucb": lambda best: UpperConfidenceBound(gp, beta=2.6**2),
    }[acquisition]
    for shift in (0.0, 1.0, 10.0, 30.0):
        best = float(y.max()) + shift
        ours_x, theirs_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ours = make_acquisition(acquisition, gp, best)(ours_x)
        theirs = reference(best)(theirs_x)
        assert torch.allclose(ours, theirs, rtol=1e-9, atol=1e-9)
        ours.sum().backward()
        theirs.sum().backward()
        assert torch.allclose(ours_x.grad, theirs_x.grad, rtol=1e-6, atol=1e-9)
        assert torch.count_nonzero(ours_x.grad[..., 0]) == 64  # not trivially zero
    z = (gp.posterior(x).mean - best) / gp.posterior(x).variance.sqrt()
    assert float(z.min()) < -40  # the last shift reached the far tail


@pytest.mark.parametrize("kappa", [0.0, 1.0, 2.6])
def test_ucb_matches_its_closed_form(fitted, kappa):
    model, _, y = fitted
    gp = CachedGP(model)
    x = candidates(9)
    post = gp.posterior(x)
    expected = post.mean.squeeze() + kappa * post.variance.sqrt().squeeze()
    got = make_acquisition("ucb", gp, float(y.max()), kappa=kappa)(x)
    assert torch.allclose(got, expected, atol=1e-10)


def test_larger_xi_and_kappa_explore_more(fitted):
    """More exploration: the acquisition's maximiser moves to where sigma is larger."""
    model, _, y = fitted
    gp = CachedGP(model)
    grid = torch.cartesian_prod(*[torch.linspace(0, 1, 41, dtype=torch.float64)] * 2)[:, None]
    sigma = gp.posterior(grid).variance.sqrt().squeeze()

    def sigma_at_argmax(name, **kw):
        return float(sigma[make_acquisition(name, gp, float(y.max()), **kw)(grid).argmax()])

    assert sigma_at_argmax("ucb", kappa=5.0) > sigma_at_argmax("ucb", kappa=0.0)
    assert sigma_at_argmax("ei", xi=1.0) >= sigma_at_argmax("ei", xi=0.0)


def test_space_round_trip_and_lattices():
    space = EncodedSpace(MIXED)
    params = {"units": 48, "dropout": 0.3, "lr": 1e-3, "batch_size": 64, "optimizer": "sgd"}
    decoded = space.decode(space.encode(params))
    assert decoded["units"] == 48 and decoded["batch_size"] == 64
    assert decoded["optimizer"] == "sgd" and math.isclose(decoded["lr"], 1e-3)
    assert math.isclose(decoded["dropout"], 0.3)
    by_name = {d.name: d for d in space.dims}
    assert by_name["optimizer"].kind == "categorical"
    assert by_name["batch_size"].kind == "discrete"  # numeric choices are ordinal
    assert by_name["units"].lattice.size == 8 and by_name["dropout"].lattice.size == 6
    assert by_name["lr"].kind == "continuous"
    assert space.encode({"units": 16})[space.names.index("optimizer")] == 3  # absent code


def test_a_choice_declared_unordered_is_categorical_in_the_gp(tmp_path):
    """``hp.Choice(..., ordered=False)`` with numeric values: categorical columns (Hamming
    kernel), read from the tuner's search space in the study; an ordered one stays ordinal."""
    import keras

    import optuna_keras_hpo.keras_tuner as kt

    def build(hp):
        model = keras.Sequential([
            keras.layers.Input(shape=(4,)),
            keras.layers.Dense(hp.Choice("units", [8, 16, 32], ordered=False)),
            keras.layers.Dense(hp.Choice("width", [2, 4, 8]), activation="relu"),
            keras.layers.Dense(1),
        ])
        model.compile(loss="mse")
        return model

    tuner = kt.BayesianOptimization(build, objective="val_loss", max_trials=1,
                                    directory=tmp_path, project_name="unordered")
    x = np.zeros((8, 4), "float32")
    tuner.search(x, x[:, 0], validation_data=(x, x[:, 0]), epochs=1, verbose=0)
    study = tuner.study
    unordered = unordered_choices(study._storage.get_study_system_attrs(study._study_id))
    assert unordered == {"units"}
    space = EncodedSpace(tuner.study.trials[0].distributions, unordered)
    kinds = {d.name: d.kind for d in space.dims}
    assert kinds == {"units": "categorical", "width": "discrete"}
    row = space.encode({"units": 32, "width": 8})
    assert space.decode(row) == {"units": 32, "width": 8}
    assert list(space.dims[0].values) == [0.0, 1.0, 2.0]  # codes, not ranks
    assert unordered_choices({}) == frozenset()  # plain Optuna studies: the values decide


BOUNDED_MEMORY_SCRIPT = """
import resource, sys
import optuna
from optuna_keras_hpo.samplers import GaussianProcessSampler

def objective(trial):
    n = trial.suggest_int("n", 1000, 200000, log=True)
    m = trial.suggest_int("m", 0, 10**9)
    f = trial.suggest_float("f", 0.0, 1.0, step=1e-7)
    return (n / 200000 - 0.3) ** 2 + (m / 1e9 - 0.6) ** 2 + (f - 0.2) ** 2

def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

import torch, botorch, scipy.optimize  # the sampler's own imports, before the limit
limit = vm_bytes() + int(sys.argv[1]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(sampler=GaussianProcessSampler(seed=0, n_startup_trials=4))
study.optimize(objective, n_trials=7)
for t in study.trials:
    assert t.state.name == "COMPLETE", t
    assert isinstance(t.params["n"], int) and 1000 <= t.params["n"] <= 200000
    assert isinstance(t.params["m"], int) and 0 <= t.params["m"] <= 10**9
    assert abs(round(t.params["f"] / 1e-7) * 1e-7 - t.params["f"]) < 1e-9
print("ok", study.best_value)
"""


def test_memory_stays_bounded_for_huge_integer_and_stepped_ranges():
    """An ``Int(1000, 200000, sampling="log")``, an ``Int(0, 10**9)`` and a Float with 10**7
    steps, under an address-space limit of 1 GiB above what the imports took: the lattices are
    formulas, not arrays (an array of one of them alone would need 8 GB)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", BOUNDED_MEMORY_SCRIPT, "1024"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


def test_gp_proposals_stay_on_lattices_and_beat_random():
    sampler = GaussianProcessSampler(seed=0, n_startup_trials=6)
    study = run(sampler, 22)
    for t in study.trials:
        assert t.params["units"] in range(16, 129, 16)
        assert any(math.isclose(t.params["dropout"], v) for v in (0, .1, .2, .3, .4, .5))
        assert t.params["optimizer"] in ("adam", "sgd", "lion")
    random_best = np.median([run(optuna.samplers.RandomSampler(seed=s), 22).best_value
                             for s in range(3)])
    assert study.best_value < random_best
    assert study.best_params["optimizer"] == "adam"
    # What the objective receives: Python numbers, as from Optuna's own samplers.
    trial = study.ask(MIXED)
    assert type(trial.params["dropout"]) is float and type(trial.params["units"]) is int


def test_no_configuration_is_proposed_twice():
    space = {"a": IntDistribution(0, 2), "b": CategoricalDistribution(["x", "y"]),
             "c": FloatDistribution(0.0, 1.0, step=0.5)}
    study = run(GaussianProcessSampler(seed=1, n_startup_trials=3), 18, space,
                lambda p: p["a"] + (p["b"] == "y") + p["c"])
    configs = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(configs) == 18  # every one of the 18 configurations, none twice


def test_seed_reproduces_the_proposals():
    a = run(GaussianProcessSampler(seed=3, n_startup_trials=4), 8)
    b = run(GaussianProcessSampler(seed=3, n_startup_trials=4), 8)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


def test_running_trials_are_avoided():
    study = run(GaussianProcessSampler(seed=0, n_startup_trials=5, acquisition="ei"), 8)
    first = study.ask(MIXED)
    second = study.ask(MIXED)  # proposed while `first` is running
    assert first.params != second.params


def test_pruned_trials_are_observations_no_better_than_the_median():
    study = optuna.create_study(direction="maximize")
    for value in (0.2, 0.4, 0.6):
        study.add_trial(optuna.trial.create_trial(
            params={"x": value}, distributions={"x": FloatDistribution(0, 1)}, value=value))
    for last in (0.9, 0.1):
        study.add_trial(optuna.trial.create_trial(
            params={"x": 0.95}, distributions={"x": FloatDistribution(0, 1)},
            state=TrialState.PRUNED, intermediate_values={0: 0.0, 1: last}))
    space = EncodedSpace({"x": FloatDistribution(0, 1)})
    X, y = training_data(study.get_trials(deepcopy=False), space, 1.0)
    assert len(y) == 5
    assert sorted(y[3:]) == [0.1, 0.4]  # 0.9 capped at the median 0.4


@pytest.mark.parametrize("kwargs, message", [
    ({"acquisition": "poi"}, "acquisition='poi'"),
    ({"xi": -0.1}, "xi=-0.1"),
    ({"kappa": -1}, "kappa=-1"),
    ({"kappa": float("nan")}, "kappa=nan"),
    ({"n_startup_trials": -1}, "n_startup_trials=-1"),
    ({"initial_design": "lhs"}, "initial_design='lhs'"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianProcessSampler(**kwargs)


def test_long_upper_tail_is_compressed_in_order_and_xi_follows():
    rng = np.random.default_rng(0)
    # Maximised values with a few peaks far above the rest (a search that found a peak).
    y = np.concatenate([rng.normal(0.0, 0.05, 30), [1.5, 2.5, 3.2]])
    transform = yeo_johnson(y)
    assert transform.exponent < 1  # so fit_surrogate models the transformed values
    modelled, to_model = transform.values, transform.to_model
    assert np.array_equal(np.argsort(modelled), np.argsort(y))  # order, so the incumbent, kept
    z_raw = (y.max() - y.mean()) / y.std()
    z_modelled = (modelled.max() - modelled.mean()) / modelled.std()
    assert z_modelled < 0.75 * z_raw  # the incumbent is fewer standard deviations out
    assert to_model(y.max()) == pytest.approx(modelled.max())
    assert to_model(y.max() + 0.1) > to_model(y.max())  # xi keeps its sign in modelled units


def test_long_lower_tail_is_not_compressed():
    rng = np.random.default_rng(1)
    # Negated Branin-like losses: most values close to the best, a long tail of bad ones. The
    # exponent above 1 keeps them from the compression of long upper tails (the next test).
    y = -np.concatenate([rng.gamma(1.0, 5.0, 30) + 0.4, [150.0, 300.0]])
    transform = yeo_johnson(y)
    assert transform.exponent > 1
    assert np.array_equal(np.argsort(transform.values), np.argsort(y))


def test_a_long_lower_tail_is_modelled_as_it_is():
    # A smooth function seen through the inverse of a Yeo-Johnson transform with exponent 2.5:
    # a long lower tail. Stretching such values apart trapped Branin runs on its boundary
    # (docs/experiments.md), so they are modelled untransformed.
    x = np.random.default_rng(0).uniform(0.0, 1.0, (30, 1))
    h = np.sin(6 * x[:, 0])
    warped = np.where(h >= 0, (2.5 * np.clip(h, 0, None) + 1) ** 0.4 - 1,
                      1 - (1 + np.clip(h, None, 0) / 2) ** -2.0)
    assert yeo_johnson(warped).exponent > 1
    fitted, to_model = fit_surrogate(x, warped, np.zeros(1, dtype=bool), None, False)
    assert to_model is _identity
    assert np.allclose(fitted.outcome_transform.untransform(
        fitted.train_targets.unsqueeze(-1))[0].squeeze().numpy(), warped)


def test_constraints_steer_the_search_to_the_feasible_region():
    # Maximise x + y on [0, 1]^2 subject to x <= 0.4: the unconstrained optimum is infeasible.
    space = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}

    def constraints(trial):
        return [trial.params["x"] - 0.4]

    sampler = GaussianProcessSampler(seed=0, n_startup_trials=6, constraints_func=constraints)
    study = run(sampler, 22, space=space, objective=lambda p: p["x"] + p["y"],
                direction="maximize")
    guided = study.trials[6:]
    # Unconstrained EI goes to x = 1; constrained EI stays at (or within 1e-3 of) x <= 0.4.
    near_feasible = [t for t in guided if t.params["x"] <= 0.401]
    assert len(near_feasible) >= 0.8 * len(guided)
    best = max((t for t in guided if t.params["x"] <= 0.4), key=lambda t: t.value)
    assert best.value > 1.35  # close to the constrained optimum 1.4
    assert all("constraints" in t.system_attrs for t in study.trials)


def test_constraints_need_ei_or_pi_and_a_callable():
    with pytest.raises(ValueError, match="constraints_func"):
        GaussianProcessSampler(acquisition="ucb", constraints_func=lambda t: [0.0])
    with pytest.raises(ValueError, match="constraints_func"):
        GaussianProcessSampler(constraints_func=3)


def test_multi_objective_studies_spread_along_the_pareto_front():
    # Maximise (x, 1 - x**2) minus a penalty on y: the front is y = 0.5, every x in [0, 1].
    space = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}
    study = optuna.create_study(directions=["maximize", "maximize"],
                                sampler=GaussianProcessSampler(seed=0, n_startup_trials=6))
    for _ in range(26):
        trial = study.ask(space)
        x, y = trial.params["x"], trial.params["y"]
        penalty = 4.0 * (y - 0.5) ** 2
        study.tell(trial, [x - penalty, 1 - x**2 - penalty])
    guided = study.trials[6:]
    near_front = np.mean([abs(t.params["y"] - 0.5) < 0.1 for t in guided])
    assert near_front >= 0.6  # random search: 0.2 on average
    assert np.std([t.params["x"] for t in guided]) > 0.15  # not one point of the front
    assert len(study.best_trials) >= 8


def test_an_objective_equal_on_every_trial_leaves_the_scalarisation_finite():
    # The second objective never varies: ParEGO scales each objective by its range, zero here.
    space = {"x": FloatDistribution(0.0, 1.0)}
    study = optuna.create_study(directions=["minimize", "maximize"],
                                sampler=GaussianProcessSampler(seed=0, n_startup_trials=4))
    for _ in range(12):
        trial = study.ask(space)
        study.tell(trial, [(trial.params["x"] - 0.3) ** 2, 1.0])
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert min(abs(t.params["x"] - 0.3) for t in study.trials[4:]) < 0.05


def test_constraints_set_by_the_objective_are_used_too():
    # Optuna 5's trial.set_constraint: no constraints_func on the sampler.
    space = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}
    study = optuna.create_study(direction="maximize",
                                sampler=GaussianProcessSampler(seed=0, n_startup_trials=6))
    for _ in range(22):
        trial = study.ask(space)
        trial.set_constraint("x_at_most_0.4", trial.params["x"] - 0.4)
        study.tell(trial, trial.params["x"] + trial.params["y"])
    guided = study.trials[6:]
    assert sum(t.params["x"] <= 0.401 for t in guided) >= 0.8 * len(guided)


def test_samplers_by_name():
    from optuna_keras_hpo.samplers import SAMPLER_NAMES, make_sampler

    made = {name: make_sampler(name, 0, n_startup_trials=4, grid={"x": [1, 2]})
            for name in SAMPLER_NAMES}
    assert made["gp-ucb"].acquisition == "ucb" and made["gp-ei"].n_startup_trials == 4
    assert isinstance(made["tpe"], optuna.samplers.TPESampler)
    assert isinstance(made["grid"], optuna.samplers.GridSampler)
    with pytest.raises(ValueError, match="sampler='cmaes'"):
        make_sampler("cmaes")
    with pytest.raises(ValueError, match="grid=None"):
        make_sampler("grid")
