"""The surrogate: a BoTorch ``SingleTaskGP`` with a Matern-5/2 kernel over mixed columns.

Kernel: ``k(x, x') = s * matern52(r)``, ``r**2 = sum_i d_i(x_i, x'_i) / l_i**2`` where
``d_i = (x_i - x'_i)**2`` for numeric columns and ``1[x_i != x'_i]`` (Hamming) for categorical
ones; a zero prior mean on standardised outputs. Priors, chosen for inputs in [0, 1] and
standardised outputs (those of Optuna's ``GPSampler``, which fit these benchmarks well):
``log p(l) = -0.1 (l**2 + 1/l**2)`` on each lengthscale (mode at 1), Gamma(2, 1) on ``s``,
Gamma(1.1, 30) on the noise variance, which stays above 1e-6. Hyperparameters are fitted by
maximum a posteriori with L-BFGS-B, warm-started from the previous fit.
"""

from __future__ import annotations

import math
import warnings

import gpytorch
import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms.outcome import Standardize
from botorch.optim.fit import fit_gpytorch_mll_scipy
from botorch.posteriors import Posterior
from gpytorch.constraints import GreaterThan, Positive
from gpytorch.priors import GammaPrior, Prior

MINIMUM_NOISE = 1e-6


class LengthscalePrior(Prior):
    """``log p(l) = -a (l**2 + 1 / l**2)`` up to a constant: keeps lengthscales near 1."""

    arg_constraints: dict = {}
    support = torch.distributions.constraints.positive

    def __init__(self, a: float = 0.1) -> None:
        super().__init__(validate_args=False)
        self.a = a

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return -self.a * (x.square() + x.square().reciprocal())


class MixedMatern52Kernel(gpytorch.kernels.Kernel):
    """Matern-5/2 with one lengthscale per column; Hamming distance on categorical columns."""

    has_lengthscale = True

    def __init__(self, is_categorical: np.ndarray, **kwargs) -> None:
        super().__init__(
            ard_num_dims=len(is_categorical),
            lengthscale_prior=LengthscalePrior(),
            lengthscale_constraint=Positive(),
            **kwargs,
        )
        self.register_buffer("is_categorical", torch.as_tensor(is_categorical, dtype=torch.bool))

    def forward(self, x1, x2, diag=False, last_dim_is_batch=False, **params):
        lengthscale = self.lengthscale.squeeze(-2)
        return mixed_matern52(x1, x2, lengthscale, self.is_categorical, diag=diag)


def mixed_matern52(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor,
                   is_categorical: torch.Tensor, diag: bool = False) -> torch.Tensor:
    """``matern52(r)`` between the rows of ``x1`` and ``x2`` (see the module docstring)."""
    diff = x1 - x2 if diag else x1.unsqueeze(-2) - x2.unsqueeze(-3)
    squared = diff.square()
    if is_categorical.any():
        squared = torch.where(is_categorical, (diff != 0).to(diff), squared)
    r2 = (squared / lengthscale.square()).sum(-1)
    # The tiny shift keeps the gradient of sqrt finite where two points coincide.
    r = torch.sqrt(r2 + 1e-12) * math.sqrt(5.0)
    return (1.0 + r + r.square() / 3.0) * torch.exp(-r)


def make_model(
    X: torch.Tensor, Y: torch.Tensor, is_categorical: np.ndarray, deterministic: bool
) -> SingleTaskGP:
    """An unfitted GP on ``X`` (n x d columns) and ``Y`` (n x 1, to be maximised)."""
    likelihood = gpytorch.likelihoods.GaussianLikelihood(
        noise_prior=GammaPrior(1.1, 30.0),
        noise_constraint=GreaterThan(MINIMUM_NOISE, initial_value=1.0),
    )
    kernel = gpytorch.kernels.ScaleKernel(
        MixedMatern52Kernel(is_categorical), outputscale_prior=GammaPrior(2.0, 1.0)
    )
    model = SingleTaskGP(
        X, Y, likelihood=likelihood, covar_module=kernel, mean_module=gpytorch.means.ZeroMean(),
        outcome_transform=Standardize(m=1),
    )
    model.covar_module.base_kernel.lengthscale = 1.0
    model.covar_module.outputscale = 1.0
    if deterministic:
        model.likelihood.noise = MINIMUM_NOISE * 1.01
        model.likelihood.raw_noise.requires_grad_(False)
    return model


def fit_model(
    X: torch.Tensor,
    Y: torch.Tensor,
    is_categorical: np.ndarray,
    warm_start: dict | None = None,
    deterministic: bool = False,
) -> SingleTaskGP:
    """A GP fitted by MAP, starting from ``warm_start`` (a previous fit's state) if it fits."""
    model = make_model(X, Y, is_categorical, deterministic)
    if warm_start is not None:
        try:
            model.load_state_dict(warm_start, strict=False)
        except RuntimeError:  # another search space; start from the defaults
            pass
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(model.likelihood, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(
            mll,
            optimizer=fit_gpytorch_mll_scipy,
            # A loose tolerance (on GPyTorch's per-point MLL): fitting to 1e-2 / n, Optuna's
            # tolerance on the summed MLL, cost 40% more time per trial and did not improve
            # regret on the benchmarks (docs/benchmarks.md).
            optimizer_kwargs={"options": {"gtol": 1e-2, "maxiter": 200}},
        )
    model.eval()
    return model


def model_state(model: SingleTaskGP) -> dict:
    """The fitted hyperparameters, for warm-starting the next fit."""
    return {
        k: v.detach().clone() for k, v in model.state_dict().items()
        if k.startswith(("covar_module.raw", "likelihood.noise_covar.raw"))
    }


class GaussianPosterior(Posterior):
    """Independent normal marginals (all an analytic acquisition reads)."""

    def __init__(self, mean: torch.Tensor, variance: torch.Tensor) -> None:
        self._mean, self._variance = mean, variance

    @property
    def mean(self) -> torch.Tensor:
        return self._mean

    @property
    def variance(self) -> torch.Tensor:
        return self._variance

    @property
    def device(self) -> torch.device:
        return self._mean.device

    @property
    def dtype(self) -> torch.dtype:
        return self._mean.dtype

    def rsample(self, sample_shape: torch.Size | None = None) -> torch.Tensor:
        shape = torch.Size(sample_shape or [1]) + self._mean.shape
        return self._mean + self._variance.sqrt() * torch.randn(shape, dtype=self.dtype)


class CachedGP(Model):
    """The posterior of a fitted GP with its Cholesky factor computed once.

    ``mu(x) = k(x, X) (K + s2 I)^-1 y`` and ``sigma2(x) = k(x, x) - k(x, X) (K + s2 I)^-1 k(X, x)``
    in standardised units, returned in the objective's units. GPyTorch's generic prediction path
    costs milliseconds per call; the acquisition optimiser makes hundreds of calls, so the
    sampler evaluates the same posterior this way. ``with_observations`` adds points with the
    same hyperparameters (kriging believer for running trials).
    """

    num_outputs = 1

    def __init__(self, fitted: SingleTaskGP, X: torch.Tensor | None = None,
                 y: torch.Tensor | None = None) -> None:
        super().__init__()
        kernel = fitted.covar_module.base_kernel
        # Plain tensors, not submodules: acquisition functions call ``model.to(X)`` on every
        # evaluation, and gradients are only wanted with respect to the candidate.
        self._lengthscale = kernel.lengthscale.detach().squeeze(-2)
        self._is_categorical = kernel.is_categorical
        self._scale = fitted.covar_module.outputscale.detach()
        self._noise = fitted.likelihood.noise.detach().squeeze()
        transform = fitted.outcome_transform
        self._y_mean = transform.means.detach().squeeze()
        self._y_std = transform.stdvs.detach().squeeze()
        self._fitted = (fitted,)  # a tuple keeps it out of this module's children
        if X is None:
            X = fitted.train_inputs[0]
            y = fitted.train_targets  # standardised
        else:
            y = (y - self._y_mean) / self._y_std
        self.train_X = X.detach()
        self.train_y = y.detach()
        with torch.no_grad():
            K = self._k(self.train_X, self.train_X)
            K.diagonal().add_(self._noise)
            L = torch.linalg.cholesky(K)
            self._alpha = torch.cholesky_solve(self.train_y.unsqueeze(-1), L).squeeze(-1)
            # L^-1 once, so each evaluation is a matrix product (cheap to differentiate).
            eye = torch.eye(len(L), dtype=L.dtype)
            self._L_inv_T = torch.linalg.solve_triangular(L, eye, upper=False).T

    def _k(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self._scale * mixed_matern52(x1, x2, self._lengthscale, self._is_categorical)

    def posterior(self, X: torch.Tensor, output_indices=None, observation_noise=False,
                  posterior_transform=None, **kwargs) -> GaussianPosterior:
        k = self._k(X, self.train_X)  # (..., q, n)
        mean = k @ self._alpha
        v = k @ self._L_inv_T
        variance = (self._scale - v.square().sum(-1)).clamp_min(1e-12)
        mean = mean * self._y_std + self._y_mean
        variance = variance * self._y_std.square()
        return GaussianPosterior(mean.unsqueeze(-1), variance.unsqueeze(-1))

    def with_observations(self, X: torch.Tensor, y: torch.Tensor) -> CachedGP:
        """The same GP conditioned on more points (``y`` in the objective's units)."""
        X_all = torch.cat([self.train_X, X])
        y_all = torch.cat([self.train_y * self._y_std + self._y_mean, y])
        return CachedGP(self._fitted[0], X_all, y_all)

    def lengthscales(self) -> np.ndarray:
        return self._lengthscale.numpy().ravel()
