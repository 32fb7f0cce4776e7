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
"""

from __future__ import annotations

import torch
from botorch.acquisition.analytic import (
    AcquisitionFunction,
    LogExpectedImprovement,
    LogProbabilityOfImprovement,
    UpperConfidenceBound,
)

ACQUISITIONS = ("ei", "pi", "ucb")


def make_acquisition(
    name: str, model, best_f: float, xi: float = 0.0, kappa: float = 2.6
) -> AcquisitionFunction:
    """The acquisition ``name`` ("ei", "pi" or "ucb") on a fitted model, to be maximised."""
    if name == "ei":
        return LogExpectedImprovement(model, best_f=best_f + xi)
    if name == "pi":
        return LogProbabilityOfImprovement(model, best_f=best_f + xi)
    if name == "ucb":
        return UpperConfidenceBound(model, beta=kappa**2)
    raise ValueError(f"acquisition={name!r}; expected one of {list(ACQUISITIONS)}.")


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
