"""Acquisition functions, exactly the article's, as BoTorch analytic acquisition classes.

The GP gives, at a candidate ``x``, a posterior mean ``mu(x)`` and standard deviation
``sigma(x)`` of the objective (turned into a quantity to maximise). With the incumbent
``f(x+)`` (the best value observed) and ``Z = (mu(x) - f(x+) - xi) / sigma(x)``:

- Probability of Improvement: ``PI(x) = Phi(Z)``.
  BoTorch: ``LogProbabilityOfImprovement(model, best_f=f(x+) + xi)``, i.e. ``log PI``.
- Expected Improvement:
  ``EI(x) = (mu(x) - f(x+) - xi) * Phi(Z) + sigma(x) * phi(Z)`` (0 where ``sigma = 0``).
  BoTorch: ``LogExpectedImprovement(model, best_f=f(x+) + xi)``, i.e. ``log EI``.
- Upper Confidence Bound: ``UCB(x) = mu(x) + kappa * sigma(x)``.
  BoTorch: ``UpperConfidenceBound(model, beta=kappa**2)``, since BoTorch computes
  ``mu + sqrt(beta) * sigma``.

``Phi`` and ``phi`` are the standard normal CDF and PDF. ``xi >= 0`` and ``kappa >= 0`` are in the
objective's own units and scale; larger values explore more. The log forms have the same argmax
as EI and PI (log is increasing) but stay finite and informative where EI and PI underflow to 0,
which is where most candidates are late in a search.

The three are BoTorch's classes with the same ``forward`` on other models; on the sampler's
cached GP their gradients in the candidate are computed in closed form
(:class:`_ClosedFormGradient`), and log EI's value by the formula of Ament et al. (2023) in
fewer operations (:func:`log_ei`); the acquisition optimiser evaluates them a few dozen times
per proposal, with gradients.
"""

from __future__ import annotations

import math

import torch
from botorch.acquisition.analytic import (
    AcquisitionFunction,
    LogExpectedImprovement,
    LogProbabilityOfImprovement,
    UpperConfidenceBound,
)

from optuna_keras_hpo.samplers._gp.model import CachedGP

ACQUISITIONS = ("ei", "pi", "ucb")


def make_acquisition(
    name: str, model, best_f: float, xi: float = 0.0, kappa: float = 2.6
) -> AcquisitionFunction:
    """The acquisition ``name`` ("ei", "pi" or "ucb") on a fitted model, to be maximised."""
    if name == "ei":
        return LogEI(model, best_f=best_f + xi)
    if name == "pi":
        return LogPI(model, best_f=best_f + xi)
    if name == "ucb":
        return UCB(model, beta=kappa**2)
    raise ValueError(f"acquisition={name!r}; expected one of {list(ACQUISITIONS)}.")


class _ClosedFormGradient:
    """On a :class:`CachedGP` (the sampler's model), an analytic acquisition ``a(mean, sigma)``
    evaluated with its gradient in the candidate computed in the forward pass:
    ``da = a_mean d mean + a_sigma d sigma`` from the posterior's closed-form gradients
    (:meth:`CachedGP.mean_variance_and_gradients`), instead of autograd through the posterior,
    which cost twice as much and is most of the acquisition optimiser's time. Other models
    take BoTorch's own ``forward``. Subclasses give ``score(mean, sigma)``: the value and its
    partial derivatives in ``mean`` and ``sigma``."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, CachedGP) and X.shape[-2] == 1:
            self.to(X)  # buffers (best_f, beta) in the candidates' dtype, as BoTorch's forward
            return _OnCachedGP.apply(X.squeeze(-2), self.model, self.score)
        return super().forward(X)


class LogEI(_ClosedFormGradient, LogExpectedImprovement):
    """BoTorch's ``LogExpectedImprovement`` (``best_f`` includes ``xi``): ``log(sigma) +
    log_ei(Z)`` (:func:`log_ei`), ``d/dZ log_ei(Z) = Phi(Z) / (Z Phi(Z) + phi(Z))``. The same
    values and gradients as BoTorch's (tested to 1e-9 and 1e-6)."""

    def score(self, mean, sigma):
        z = (mean - self.best_f) / sigma
        value = log_ei(z)
        slope = torch.exp(torch.special.log_ndtr(z) - value)
        return value + sigma.log(), slope / sigma, (1.0 - slope * z) / sigma


class LogPI(_ClosedFormGradient, LogProbabilityOfImprovement):
    """BoTorch's ``LogProbabilityOfImprovement`` (``best_f`` includes ``xi``): ``log Phi(Z)``,
    ``d/dZ log Phi(Z) = phi(Z) / Phi(Z)``."""

    def score(self, mean, sigma):
        z = (mean - self.best_f) / sigma
        value = torch.special.log_ndtr(z)
        ratio = torch.exp(-0.5 * z.square() - 0.5 * math.log(2.0 * math.pi) - value)
        return value, ratio / sigma, -ratio * z / sigma


class UCB(_ClosedFormGradient, UpperConfidenceBound):
    """BoTorch's ``UpperConfidenceBound``: ``mean + sqrt(beta) sigma``."""

    def score(self, mean, sigma):
        kappa = self.beta.sqrt()
        return mean + kappa * sigma, torch.ones_like(mean), kappa.expand_as(sigma)


class _OnCachedGP(torch.autograd.Function):
    """``score(mean, sigma)`` at the rows of ``x`` (``(b, d)``), ``sigma`` from the variance
    clamped at 1e-12 (as BoTorch's analytic acquisitions), with its gradient (see
    :class:`_ClosedFormGradient`) computed only when ``x`` requires one."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, model: CachedGP, score) -> torch.Tensor:
        if not ctx.needs_input_grad[0]:  # values only (the raw candidates)
            posterior = model.posterior(x.unsqueeze(-2))
            sigma = posterior.variance.reshape(-1).clamp_min(1e-12).sqrt()
            return score(posterior.mean.reshape(-1), sigma)[0]
        mean, variance, d_mean, d_variance = model.mean_variance_and_gradients(x.detach())
        sigma = variance.clamp_min(1e-12).sqrt()
        d_sigma = torch.where(variance < 1e-12, 0.0, 0.5 / sigma).unsqueeze(-1) * d_variance
        value, by_mean, by_sigma = score(mean, sigma)
        ctx.save_for_backward(by_mean.unsqueeze(-1) * d_mean + by_sigma.unsqueeze(-1) * d_sigma)
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (gradient,) = ctx.saved_tensors
        return grad.unsqueeze(-1) * gradient, None, None


_TAIL = -25.0  # below this Z, Z Phi(Z) + phi(Z) is computed from erfcx (Ament et al., 2023)


def log_ei(z: torch.Tensor) -> torch.Tensor:
    """``log(z Phi(z) + phi(z))``, the log EI of a standard normal over 0 at mean ``z``.

    Directly for ``z >= -25``; below, where the direct form underflows, as
    ``log phi(z) + log(1 + sqrt(pi / 2) z erfcx(-z / sqrt 2))`` (the two branches of Optuna's
    ``standard_logei``, which is the same formula). Each branch sees its input clamped to its own
    side, so neither produces an infinity whose gradient would turn into NaN (Optuna's in-place
    form gives NaN gradients below about -38)."""
    upper = z.clamp_min(_TAIL)
    direct = (0.5 * upper * torch.special.erfc(-upper / math.sqrt(2.0))
              + torch.exp(-0.5 * upper.square()) / math.sqrt(2.0 * math.pi)).log()
    lower = z.clamp_max(_TAIL)
    tail = (-0.5 * lower.square() - 0.5 * math.log(2.0 * math.pi)
            + torch.log1p(math.sqrt(math.pi / 2.0) * lower
                          * torch.special.erfcx(-lower / math.sqrt(2.0))))
    return torch.where(z >= _TAIL, direct, tail)


class ConstrainedAcquisition(AcquisitionFunction):
    """``log a(x) + sum_j log P(c_j(x) <= 0)``: log EI or log PI times the probability that
    every constraint holds, each constraint ``c_j`` modelled by a GP of its own (given
    ``-c_j``, so feasible is ``>= 0``). With ``base=None`` (no feasible trial yet) only the
    probability of feasibility is maximised."""

    def __init__(self, base: AcquisitionFunction | None, constraint_models: list) -> None:
        super().__init__(model=base.model if base is not None else constraint_models[0])
        self.base = base
        self.constraint_models = constraint_models

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        total = self.base(X) if self.base is not None else 0.0
        for model in self.constraint_models:
            posterior = model.posterior(X)
            mean = posterior.mean.squeeze(-1).squeeze(-1)
            sigma = posterior.variance.squeeze(-1).squeeze(-1).sqrt()
            total = total + torch.special.log_ndtr(mean / sigma)
        return total
