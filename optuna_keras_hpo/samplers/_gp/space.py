"""The search space as the GP sees it: every parameter one column, in [0, 1] or a category code.

- continuous floats: ``(x - low) / (high - low)``, in log space for log distributions;
- integers and stepped floats: the same map, restricted to their lattice (a *discrete* column
  whose allowed values are listed), so the acquisition is only optimised over real values;
- categorical parameters whose choices are all numbers: ordinal, their ranks spread on [0, 1]
  (KerasTuner's ``Choice`` is ordered by default for numbers);
- other categorical parameters: an integer code, compared by the kernel with a Hamming distance.

A parameter absent from a trial (a conditional one that was inactive) is imputed: numeric
columns at 0.5, categorical columns at one extra code that no candidate takes. So every completed
trial informs the GP, and candidates are always full configurations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

CONTINUOUS, DISCRETE, CATEGORICAL = "continuous", "discrete", "categorical"
IMPUTED_NUMERIC = 0.5


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class Dimension:
    """One parameter's column."""

    name: str
    distribution: BaseDistribution
    kind: str
    values: np.ndarray | None = None  # allowed column values (discrete) or codes (categorical)
    raw_values: list | None = None  # the parameter value of each allowed column value

    def encode(self, value: Any) -> float:
        d = self.distribution
        if self.kind == CATEGORICAL or isinstance(d, CategoricalDistribution):
            return float(self.values[self.raw_values.index(value)])
        if d.log:
            return (math.log(value) - math.log(d.low)) / _span(d)
        return (value - d.low) / _span(d) if d.high > d.low else 0.5

    def decode(self, column: float) -> Any:
        if self.values is not None:
            i = int(np.argmin(np.abs(self.values - column)))
            return self.raw_values[i]
        return self._value(column)

    def _value(self, column: float) -> Any:
        d = self.distribution
        column = float(np.clip(column, 0.0, 1.0))
        value = (math.exp(math.log(d.low) + column * _span(d)) if d.log
                 else d.low + column * (d.high - d.low))
        value = float(np.clip(value, d.low, d.high))
        return int(round(value)) if isinstance(d, IntDistribution) else value


def _span(d) -> float:
    return (math.log(d.high) - math.log(d.low)) if d.log else (d.high - d.low)


def _dimension(name: str, d: BaseDistribution) -> Dimension:
    if isinstance(d, CategoricalDistribution):
        choices = list(d.choices)
        if all(_is_number(c) for c in choices) and len(choices) > 1:
            order = sorted(choices)
            ranks = np.array([order.index(c) / (len(order) - 1) for c in choices])
            return Dimension(name, d, DISCRETE, ranks, choices)
        return Dimension(name, d, CATEGORICAL, np.arange(len(choices), dtype=float), choices)
    lattice = None
    if isinstance(d, IntDistribution):
        if d.log:
            lattice = np.arange(d.low, d.high + 1)
        else:
            lattice = np.arange(d.low, d.high + 1, d.step)
    elif isinstance(d, FloatDistribution) and d.step is not None:
        n = int(round((d.high - d.low) / d.step)) + 1
        lattice = d.low + d.step * np.arange(n)
    if lattice is None:
        return Dimension(name, d, CONTINUOUS)
    dim = Dimension(name, d, DISCRETE)
    raw = [int(v) if isinstance(d, IntDistribution) else float(v) for v in lattice]
    dim.values = np.array([dim.encode(v) for v in raw])
    dim.raw_values = raw
    return dim


class EncodedSpace:
    """Encodes parameter dicts to columns and back, for one relative search space."""

    def __init__(self, search_space: dict[str, BaseDistribution]) -> None:
        self.dims = [_dimension(n, d) for n, d in sorted(search_space.items())]
        self.names = [d.name for d in self.dims]
        kinds = np.array([d.kind for d in self.dims])
        self.continuous = np.flatnonzero(kinds == CONTINUOUS)
        self.discrete = np.flatnonzero(kinds == DISCRETE)
        self.categorical = np.flatnonzero(kinds == CATEGORICAL)
        self.is_categorical = kinds == CATEGORICAL

    @property
    def dim(self) -> int:
        return len(self.dims)

    def encode(self, params: dict[str, Any]) -> np.ndarray:
        row = np.empty(self.dim)
        for i, d in enumerate(self.dims):
            if d.name in params:
                row[i] = d.encode(params[d.name])
            elif d.kind == CATEGORICAL:
                row[i] = len(d.values)  # the code of "absent"
            else:
                row[i] = IMPUTED_NUMERIC
        return row

    def decode(self, row: np.ndarray) -> dict[str, Any]:
        return {d.name: d.decode(row[i]) for i, d in enumerate(self.dims)}

    def snap(self, X: np.ndarray) -> np.ndarray:
        """Round discrete and categorical columns to their nearest allowed value."""
        X = X.copy()
        for i in (*self.discrete, *self.categorical):
            values = self.dims[i].values
            X[:, i] = values[np.abs(X[:, i, None] - values[None, :]).argmin(axis=1)]
        return X

    def sample(self, n: int, rng: np.random.RandomState) -> np.ndarray:
        """``n`` uniform candidates (a scrambled Sobol sequence), snapped to allowed values."""
        from scipy.stats import qmc

        u = qmc.Sobol(self.dim, scramble=True, seed=rng.randint(2**31)).random(n)
        for i in self.categorical:
            k = len(self.dims[i].values)
            u[:, i] = np.minimum(np.floor(u[:, i] * k), k - 1)
        return self.snap(u)
