"""The surrogate: a BoTorch ``SingleTaskGP`` with a Matern-5/2 kernel over mixed columns.

Kernel: ``k(x, x') = s * matern52(r)``, ``r**2 = sum_i d_i(x_i, x'_i) / l_i**2`` where
``d_i = (x_i - x'_i)**2`` for numeric columns and ``1[x_i != x'_i]`` (Hamming) for categorical
ones. With numeric and categorical columns both, plus an additive part as BoTorch's
``MixedSingleTaskGP``: ``s * (matern52(r) + w (matern52(r_num) + matern52(r_cat)) / 2) / (1 + w)``,
``r_num`` and ``r_cat`` the distances over the numeric and the categorical columns with the same
lengthscales, ``w`` fitted (prior ``log w ~ N(0, 2**2)``).

Priors for inputs in [0, 1] and standardised outputs (Optuna ``GPSampler``'s):
``log p(l) = -0.1 (l**2 + 1/l**2)`` on each lengthscale, Gamma(2, 1) on ``s``, Gamma(1.1, 30) on
the noise variance, which stays above ``MINIMUM_NOISE``. The constant prior mean ``m`` is the
generalised least-squares estimate ``1'K^-1 y / 1'K^-1 1``, profiled out of the MAP fit
(:func:`fit_model`). Why each choice, and what it measured: docs/concepts.md, "The surrogate".
"""

from __future__ import annotations

import math

import gpytorch
import numpy as np
import scipy.linalg
import scipy.optimize
import torch
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms.outcome import Standardize
from botorch.posteriors.torch import TorchPosterior
from gpytorch.constraints import GreaterThan, Positive
from gpytorch.priors import GammaPrior, Prior
from linear_operator.utils.cholesky import psd_safe_cholesky

MINIMUM_NOISE = 1e-8


class LengthscalePrior(Prior):
    """``log p(l) = -a (l**2 + 1 / l**2)`` up to a constant: keeps lengthscales near 1."""

    arg_constraints: dict = {}
    support = torch.distributions.constraints.positive

    def __init__(self, a: float = 0.1) -> None:
        super().__init__(validate_args=False)
        self.a = a

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return -self.a * (x.square() + x.square().reciprocal())


class AdditiveWeightPrior(Prior):
    """``log p(w) = -(log w)**2 / (2 * 2**2)`` up to a constant: the additive part's weight
    ``w`` stays within a few factors of e**2 of 1 (equal weights) unless the data insist."""

    arg_constraints: dict = {}
    support = torch.distributions.constraints.positive

    def __init__(self, scale: float = 2.0) -> None:
        super().__init__(validate_args=False)
        self.scale = scale

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return -0.5 * (x.log() / self.scale).square()


class MixedMatern52Kernel(gpytorch.kernels.Kernel):
    """Matern-5/2 with one lengthscale per column; Hamming distance on categorical columns;
    with both kinds of column, plus an additive part weighted by ``additive`` (see
    :func:`mixed_matern52`)."""

    has_lengthscale = True

    def __init__(self, is_categorical: np.ndarray, **kwargs) -> None:
        super().__init__(
            ard_num_dims=len(is_categorical),
            lengthscale_prior=LengthscalePrior(),
            lengthscale_constraint=Positive(),
            **kwargs,
        )
        self.register_buffer("is_categorical", torch.as_tensor(is_categorical, dtype=torch.bool))
        # The additive part's weight (None without one), loaded by the fit.
        self.register_buffer("additive", None)
        if has_additive_part(is_categorical):
            self.additive = torch.tensor(1.0, dtype=torch.float64)
            self.register_prior("additive_prior", AdditiveWeightPrior(), "additive")

    def forward(self, x1, x2, diag=False, last_dim_is_batch=False, **params):
        lengthscale = self.lengthscale.squeeze(-2)
        return mixed_matern52(x1, x2, lengthscale, self.is_categorical, diag=diag,
                              additive=self.additive)


def has_additive_part(is_categorical: np.ndarray | torch.Tensor) -> bool:
    """Whether the kernel over these columns has an additive part: with numeric and
    categorical columns both."""
    is_categorical = np.asarray(is_categorical, dtype=bool)
    return bool(is_categorical.any() and not is_categorical.all())


def mixed_matern52(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor,
                   is_categorical: torch.Tensor, diag: bool = False,
                   additive: torch.Tensor | None = None) -> torch.Tensor:
    """The kernel between the rows of ``x1`` and ``x2`` (see the module docstring), at unit
    output scale: ``matern52(r)``, or with ``additive = w`` (numeric and categorical columns
    both) ``(matern52(r) + w (matern52(r_num) + matern52(r_cat)) / 2) / (1 + w)``, where
    ``r_num`` and ``r_cat`` are the distances over the numeric and the categorical columns."""
    squared = squared_differences(x1, x2, is_categorical, diag=diag)
    return matern52_of_squared(squared, lengthscale.square().reciprocal(), is_categorical,
                               additive)


def squared_differences(x1: torch.Tensor, x2: torch.Tensor, is_categorical: torch.Tensor,
                        diag: bool = False) -> torch.Tensor:
    """``d_i(x_i, x'_i)`` for every pair of rows (``(..., n1, n2, d)``, or ``(..., n, d)`` with
    ``diag``): squared differences, 0 or 1 on categorical columns."""
    return differences(x1, x2, is_categorical, diag)[1]


def differences(x1: torch.Tensor, x2: torch.Tensor, is_categorical: torch.Tensor,
                diag: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``x1 - x2`` for every pair of rows, and :func:`squared_differences`."""
    diff = x1 - x2 if diag else x1.unsqueeze(-2) - x2.unsqueeze(-3)
    squared = diff.square()
    if is_categorical.any():
        squared = torch.where(is_categorical, (diff != 0).to(diff), squared)
    return diff, squared


def matern52_of_squared(squared: torch.Tensor, inverse_squared_lengthscale: torch.Tensor,
                        is_categorical: torch.Tensor,
                        additive: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`mixed_matern52` from :func:`squared_differences` (computed once for the training
    points while the hyperparameters are fitted)."""
    inverse = inverse_squared_lengthscale
    if additive is None:
        return _Matern52.apply(squared @ inverse)
    r2_cat = squared @ (inverse * is_categorical)
    r2_num = squared @ (inverse * ~is_categorical)
    product = _Matern52.apply(r2_num + r2_cat)
    parts = _Matern52.apply(r2_num) + _Matern52.apply(r2_cat)
    return (product + (0.5 * additive) * parts) / (1.0 + additive)


def _log_gamma(prior: GammaPrior, x: float) -> tuple[float, float]:
    """``prior.log_prob(x)`` of a Gamma prior and its derivative in ``x``."""
    shape, rate = float(prior.concentration), float(prior.rate)
    value = shape * math.log(rate) - math.lgamma(shape) + (shape - 1) * math.log(x) - rate * x
    return value, (shape - 1) / x - rate


def matern52_and_derivative(r2):
    """``matern52(r2) = (1 + s + s**2 / 3) exp(-s)``, ``s = sqrt(5 r2)``, and its derivative
    ``-5/6 (1 + s) exp(-s)`` in ``r2``, without autograd: on NumPy arrays (the fit) or torch
    tensors (:class:`_Matern52`, the acquisition's gradients)."""
    exp = torch.exp if isinstance(r2, torch.Tensor) else np.exp
    s = (5.0 * r2) ** 0.5
    e = exp(-s)
    return e * ((5.0 / 3.0) * r2 + s + 1.0), (-5.0 / 6.0) * (1.0 + s) * e


def kernel_and_slopes(squared, inverse_squared_lengthscale, is_categorical, additive=None):
    """The kernel at unit scale (:func:`mixed_matern52`) from :func:`squared_differences` and
    the inverse squared lengthscales (``(d,)``), with its derivatives: in the squared distance
    over the numeric columns, in the one over the categorical columns, and in ``log w``
    (None without an additive part). NumPy arrays (the fit) or torch tensors (the
    acquisition's gradients), without autograd."""
    inverse = inverse_squared_lengthscale
    if additive is None:
        k, slope = matern52_and_derivative(squared @ inverse)
        return k, slope, slope, None
    r2_cat = squared @ (inverse * is_categorical)
    r2_num = squared @ (inverse * ~is_categorical)
    product, d_product = matern52_and_derivative(r2_num + r2_cat)
    k_num, d_num = matern52_and_derivative(r2_num)
    k_cat, d_cat = matern52_and_derivative(r2_cat)
    parts = 0.5 * (k_num + k_cat)
    k = (product + additive * parts) / (1.0 + additive)
    return (k, (d_product + 0.5 * additive * d_num) / (1.0 + additive),
            (d_product + 0.5 * additive * d_cat) / (1.0 + additive),
            additive * (parts - product) / (1.0 + additive) ** 2)


class _Matern52(torch.autograd.Function):
    """``matern52`` of the squared scaled distance ``r2``: ``(1 + s + s**2 / 3) exp(-s)`` with
    ``s = sqrt(5 r2)``, and its derivative ``-5/6 (1 + s) exp(-s)`` with respect to ``r2`` saved
    in the forward pass (as Optuna's ``GPSampler`` does): one autograd node instead of a dozen,
    which is most of the cost of the acquisition's gradients, and exact at ``r2 = 0``, where
    differentiating through ``sqrt`` is not."""

    @staticmethod
    def forward(ctx, r2: torch.Tensor) -> torch.Tensor:
        value, derivative = matern52_and_derivative(r2)
        ctx.save_for_backward(derivative)
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (derivative,) = ctx.saved_tensors
        return derivative * grad


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
    mean = gpytorch.means.ConstantMean()
    mean.constant.requires_grad_(False)
    model = SingleTaskGP(
        X, Y, likelihood=likelihood, covar_module=kernel, mean_module=mean,
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
    warm_start: np.ndarray | None = None,
    deterministic: bool = False,
) -> SingleTaskGP:
    """A GP fitted by MAP, starting from ``warm_start`` (a previous fit's :func:`model_state`)
    when it has the right size, else (or if that fit fails) from the defaults.

    The objective is the exact log marginal likelihood plus the model's log priors, over
    ``theta = (log 1/l_i**2, log s, log(noise - MINIMUM_NOISE)[, log w])`` (``w``, the additive
    part's weight, with numeric and categorical columns both), minimised by L-BFGS-B to a
    gradient tolerance of 1e-2 (Optuna's ``GPSampler`` fits the same objective the same way). It
    and its gradient are computed in closed form from one Cholesky factor (``_MapObjective``,
    several times faster than GPyTorch's generic marginal likelihood or than the same formula
    differentiated by torch's autograd), and the result is loaded into the BoTorch model.
    """
    model = make_model(X, Y, is_categorical, deterministic)
    n_dims = X.shape[-1]
    # l = 1, s = 1, noise = 1 (+ MINIMUM_NOISE), w = 1
    default = np.zeros(n_dims + 2 + has_additive_part(is_categorical))
    starts = [default]
    if warm_start is not None and warm_start.shape == default.shape:
        starts.insert(0, warm_start)
    objective = _MapObjective(model, deterministic)
    for theta0 in starts:
        result = objective.minimise(theta0)
        if result is not None:
            _load(model, result, deterministic)
            break
    else:
        _load(model, default, deterministic)
        result = default
    try:
        objective(result)
    except _NotPositiveDefinite:  # the defaults failed too: keep the prior mean at 0
        pass
    else:
        model.mean_module.constant.data.fill_(objective.last_mean)
    model.eval()
    return model


class _MapObjective:
    """``-(log p(y | theta) + log p(theta))`` and its gradient, for scipy.

    The log marginal likelihood and its gradient are computed in NumPy from their closed forms:
    with ``alpha = K^-1 (y - m 1)`` and ``W = alpha alpha' - K^-1``,
    ``d log p(y | theta) / d theta_j = tr(W dK/d theta_j) / 2`` (the prior mean ``m`` is profiled
    out, so it adds no term: the likelihood is stationary in ``m`` there). Each ``dK/d theta_j`` is
    the kernel's derivative in its squared distance times the column's squared differences,
    which are computed once per fit; the priors' gradients are closed forms too. Torch's
    autograd costs several times more per evaluation (a hundred small operations and their
    backward passes).
    """

    def __init__(self, model: SingleTaskGP, deterministic: bool) -> None:
        kernel = model.covar_module
        X = model.train_inputs[0].detach()
        self.y = model.train_targets.detach().numpy()  # standardised by the outcome transform
        self.is_categorical = kernel.base_kernel.is_categorical.numpy()
        # Registered only with an additive part, so this is None exactly when there is none.
        self.additive_prior = getattr(kernel.base_kernel, "additive_prior", None)
        self.lengthscale_prior = kernel.base_kernel.lengthscale_prior
        self.outputscale_prior = kernel.outputscale_prior
        self.noise_prior = model.likelihood.noise_covar.noise_prior
        self.deterministic = deterministic
        self.fixed_noise = float(model.likelihood.noise.detach().squeeze())  # when deterministic
        self.y_and_ones = np.stack([self.y, np.ones_like(self.y)], axis=-1)
        # The training points do not move while the hyperparameters do: (n * n, d).
        n = len(self.y)
        squared = squared_differences(X, X, kernel.base_kernel.is_categorical)
        self.squared = squared.numpy().reshape(n * n, -1)
        self.last_mean = 0.0  # the prior mean at the last theta evaluated

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        n, n_dims = len(self.y), len(self.is_categorical)
        with np.errstate(over="ignore"):  # a line search's wild steps: caught below
            positive = np.exp(theta)
        if not np.all(np.isfinite(positive)):
            raise _NotPositiveDefinite
        inverse, scale = positive[:n_dims], float(positive[n_dims])
        noise = self.fixed_noise if self.deterministic else positive[n_dims + 1] + MINIMUM_NOISE
        additive = float(positive[n_dims + 2]) if self.additive_prior is not None else None

        k, dk_num, dk_cat, dk_dlogw = kernel_and_slopes(self.squared, inverse,
                                                        self.is_categorical, additive)
        K = scale * k.reshape(n, n)
        K[np.diag_indices(n)] += noise
        if not np.all(np.isfinite(K)):
            raise _NotPositiveDefinite
        try:
            L = np.linalg.cholesky(K)
        except np.linalg.LinAlgError:
            raise _NotPositiveDefinite from None
        zy, z1 = scipy.linalg.solve_triangular(L, self.y_and_ones, lower=True).T
        # The constant prior mean that maximises the likelihood at these hyperparameters, the
        # generalised least-squares estimate 1'K^-1 y / 1'K^-1 1, profiled out of the fit.
        m = float(z1 @ zy / (z1 @ z1))
        self.last_mean = m
        z = zy - m * z1
        log_likelihood = -np.log(np.diag(L)).sum() - 0.5 * float(z @ z)

        alpha = scipy.linalg.solve_triangular(L, z, lower=True, trans="T")
        K_inverse = scipy.linalg.cho_solve((L, True), np.eye(n))
        W = (np.outer(alpha, alpha) - K_inverse).ravel()
        gradient = np.zeros_like(theta)
        # d k / d log(1/l_i**2) = dk/dr2 * d_i / l_i**2, dk/dr2 that of the numeric or the
        # categorical distance by the column's kind (the same without an additive part).
        g = (W * dk_num) @ self.squared
        if additive is not None:
            g = np.where(self.is_categorical, (W * dk_cat) @ self.squared, g)
            gradient[n_dims + 2] = 0.5 * scale * float(W @ dk_dlogw)
        gradient[:n_dims] = 0.5 * scale * inverse * g
        gradient[n_dims] = 0.5 * scale * float(W @ k)
        if not self.deterministic:
            gradient[n_dims + 1] = 0.5 * (noise - MINIMUM_NOISE) * float(W[:: n + 1].sum())

        log_prior, prior_gradient = self._log_prior(theta, n_dims)
        return -(log_likelihood + log_prior), -(gradient + prior_gradient)

    def _log_prior(self, theta: np.ndarray, n_dims: int) -> tuple[float, np.ndarray]:
        """The log priors (those :func:`make_model` puts on the model) and their gradient in
        ``theta``, in closed form."""
        gradient = np.zeros_like(theta)
        # Lengthscales: -a (l**2 + 1 / l**2) = -a (e**-t + e**t), t = log 1/l**2.
        a = self.lengthscale_prior.a
        t = theta[:n_dims]
        log_prior = -a * float((np.exp(-t) + np.exp(t)).sum())
        gradient[:n_dims] = a * (np.exp(-t) - np.exp(t))
        # Output scale and noise: Gamma densities of exp(theta) (plus the noise floor).
        value, slope = _log_gamma(self.outputscale_prior, math.exp(theta[n_dims]))
        log_prior += value
        gradient[n_dims] = slope * math.exp(theta[n_dims])
        if not self.deterministic:
            excess = math.exp(theta[n_dims + 1])
            value, slope = _log_gamma(self.noise_prior, excess + MINIMUM_NOISE)
            log_prior += value
            gradient[n_dims + 1] = slope * excess
        if self.additive_prior is not None:  # -(log w)**2 / (2 scale**2)
            log_w, scale = theta[n_dims + 2], self.additive_prior.scale
            log_prior += -0.5 * (log_w / scale) ** 2
            gradient[n_dims + 2] = -log_w / scale**2
        return log_prior, gradient

    def minimise(self, theta0: np.ndarray) -> np.ndarray | None:
        """The optimum from ``theta0`` (or the best point L-BFGS-B reached if it stopped
        early, e.g. in a line search), or None if the fit failed."""
        try:
            result = scipy.optimize.minimize(
                self, theta0, jac=True, method="L-BFGS-B", options={"gtol": 1e-2}
            )
        except _NotPositiveDefinite:
            return None
        finite = np.isfinite(result.fun) and np.all(np.isfinite(result.x))
        return result.x if finite else None


class _NotPositiveDefinite(Exception):
    """The kernel matrix lost positive definiteness (or overflowed) at some hyperparameters."""


def _load(model: SingleTaskGP, theta: np.ndarray, deterministic: bool) -> None:
    kernel = model.covar_module
    n_dims = len(kernel.base_kernel.is_categorical)
    kernel.base_kernel.lengthscale = torch.from_numpy(np.exp(-0.5 * theta[:n_dims]))
    kernel.outputscale = float(np.exp(theta[n_dims]))
    if not deterministic:
        model.likelihood.noise = float(np.exp(theta[n_dims + 1]) + MINIMUM_NOISE)
    if kernel.base_kernel.additive is not None:
        kernel.base_kernel.additive.fill_(float(np.exp(theta[n_dims + 2])))


def model_state(model: SingleTaskGP) -> np.ndarray:
    """The fitted hyperparameters as ``theta`` (see :func:`fit_model`), to warm-start the next
    fit."""
    kernel = model.covar_module
    lengthscale = kernel.base_kernel.lengthscale.detach().numpy().ravel()
    noise = float(model.likelihood.noise.detach()) - MINIMUM_NOISE
    additive = kernel.base_kernel.additive
    return np.concatenate([
        -2.0 * np.log(lengthscale),
        [math.log(float(kernel.outputscale.detach())), math.log(max(noise, 1e-300))],
        [] if additive is None else [math.log(float(additive))],
    ])


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
        self._inverse_squared_lengthscale = self._lengthscale.square().reciprocal()
        self._is_categorical = kernel.is_categorical
        self._additive = None if kernel.additive is None else kernel.additive.detach().clone()
        self._scale = fitted.covar_module.outputscale.detach()
        self._noise = fitted.likelihood.noise.detach().squeeze()
        transform = fitted.outcome_transform
        self._y_mean = transform.means.detach().squeeze()
        self._y_std = transform.stdvs.detach().squeeze()
        self._fitted = (fitted,)  # a tuple keeps it out of this module's children
        self._m = fitted.mean_module.constant.detach().squeeze()
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
            # GPyTorch's Cholesky, which adds jitter (1e-8, then 10x, up to 3 tries) if rounding
            # has made K lose positive definiteness, as points crowded around an optimum can
            # with a noise floor of 1e-8.
            L = psd_safe_cholesky(K)
            self._alpha = torch.cholesky_solve((self.train_y - self._m).unsqueeze(-1),
                                               L).squeeze(-1)
            # L^-1 once, so each evaluation is a matrix product (cheap to differentiate).
            eye = torch.eye(len(L), dtype=L.dtype)
            self._L_inv_T = torch.linalg.solve_triangular(L, eye, upper=False).T

    def _k(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        squared = squared_differences(x1, x2, self._is_categorical)
        return self._scale * matern52_of_squared(squared, self._inverse_squared_lengthscale,
                                                 self._is_categorical, self._additive)

    def posterior(self, X: torch.Tensor, output_indices=None, observation_noise=False,
                  posterior_transform=None, **kwargs) -> TorchPosterior:
        # All candidates as one (b, d) matrix, so the kernel block is one (b, n) matrix: faster
        # than the (..., q, n) layout.
        batch = X.shape[:-1]
        k = self._k(X.reshape(-1, X.shape[-1]), self.train_X)  # (b, n)
        mean = k @ self._alpha + self._m
        v = k @ self._L_inv_T
        variance = (self._scale - v.square().sum(-1)).clamp_min(1e-12)
        mean = (mean * self._y_std + self._y_mean).reshape(*batch, 1)
        variance = (variance * self._y_std.square()).reshape(*batch, 1)
        # Independent normal marginals: all an analytic acquisition reads.
        normal = torch.distributions.Normal(mean, variance.sqrt(), validate_args=False)
        return TorchPosterior(normal)

    def mean_variance_and_gradients(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The posterior mean and variance at the rows of ``x`` (``(b, d)``), in the objective's
        units as :meth:`posterior` gives them, and their gradients in ``x`` (``(b, d)``; zero on
        categorical columns), in closed form: with ``k`` the kernel between ``x`` and the
        training points, ``d mean = dk alpha`` and ``d variance = -2 dk K^-1 k``, where
        ``dk / dx_j = s * kernel'(r2) * 2 (x_j - X_j) / l_j**2``. The acquisition optimiser
        needs both at every step; autograd through the posterior costs more."""
        with torch.no_grad():
            diff, squared = differences(x, self.train_X, self._is_categorical)  # (b, n, d)
            inverse = self._inverse_squared_lengthscale
            k, dk_dr2_num, _, _ = kernel_and_slopes(squared, inverse, self._is_categorical,
                                                    self._additive)
            k, dk_dr2_num = self._scale * k, self._scale * dk_dr2_num
            mean = k @ self._alpha + self._m
            v = k @ self._L_inv_T
            K_inverse_k = v @ self._L_inv_T.T
            raw_variance = self._scale - v.square().sum(-1)
            # dr2/dx_j = 2 (x_j - X_j) / l_j**2 on numeric columns; both gradients in one
            # batched product.
            numeric = (~self._is_categorical).to(x.dtype) * inverse * 2.0
            weights = torch.stack([dk_dr2_num * self._alpha, -2.0 * dk_dr2_num * K_inverse_k],
                                  dim=-2)  # (b, 2, n)
            d_mean, d_variance = (torch.bmm(weights, diff) * numeric).unbind(-2)
            clamped = raw_variance < 1e-12
            variance = raw_variance.clamp_min(1e-12)
            d_variance = torch.where(clamped.unsqueeze(-1), 0.0, d_variance)
            std, std2 = self._y_std, self._y_std.square()
            return (mean * std + self._y_mean, variance * std2, d_mean * std, d_variance * std2)

    def with_observations(self, X: torch.Tensor, y: torch.Tensor) -> CachedGP:
        """The same GP conditioned on more points (``y`` in the objective's units)."""
        X_all = torch.cat([self.train_X, X])
        y_all = torch.cat([self.train_y * self._y_std + self._y_mean, y])
        return CachedGP(self._fitted[0], X_all, y_all)

    def lengthscales(self) -> np.ndarray:
        return self._lengthscale.numpy().ravel()
