"""The search space as the GP sees it: every parameter one column, in [0, 1] or a category code.

- continuous floats: ``(x - low) / (high - low)``, in log space for log distributions;
- integers and stepped floats: the same map, restricted to their lattice (a *discrete* column;
  the lattice is a formula, :class:`StepLattice`), so the acquisition is only optimised over
  real values;
- categorical parameters whose choices are all numbers: ordinal, their ranks spread on [0, 1]
  (KerasTuner's ``Choice`` is ordered by default for numbers), unless declared unordered
  (``hp.Choice(..., ordered=False)``, read from the tuner's search space in the study);
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


class Lattice:
    """The allowed values of a discrete or categorical column, in increasing order, addressed by
    index. Memory does not grow with the number of values (an ``Int(1, 10**9)`` is a formula,
    not an array): every operation is on the columns asked about."""

    size: int

    def column(self, index: np.ndarray) -> np.ndarray:
        """The column values of the lattice points ``index``."""
        raise NotImplementedError

    def index(self, columns: np.ndarray) -> np.ndarray:
        """The index of the lattice point nearest to each column value."""
        raise NotImplementedError

    def nearest(self, columns: np.ndarray) -> np.ndarray:
        return self.column(self.index(columns))

    def around(self, column: float, neighbours: int, exhaustive: int) -> np.ndarray:
        """Every other point when there are at most ``exhaustive``, else the ``neighbours``
        nearest on each side of ``column``'s."""
        if self.size <= exhaustive:
            options = np.arange(self.size)
        else:
            i = int(self.index(np.array([column]))[0])
            options = np.arange(max(0, i - neighbours), min(self.size, i + neighbours + 1))
        values = self.column(options)
        return values[values != column]


class ArrayLattice(Lattice):
    """Listed column values (a ``Choice``'s codes or ranks)."""

    def __init__(self, columns: np.ndarray) -> None:
        self.values = np.sort(np.asarray(columns, dtype=float))
        self.size = len(self.values)

    def column(self, index):
        return self.values[index]

    def index(self, columns):
        columns = np.asarray(columns, dtype=float)
        right = np.clip(np.searchsorted(self.values, columns), 1, self.size - 1) \
            if self.size > 1 else np.zeros(columns.shape, dtype=int)
        left = np.maximum(right - 1, 0)
        closer_left = np.abs(columns - self.values[left]) <= np.abs(self.values[right] - columns)
        return np.where(closer_left, left, right)


class StepLattice(Lattice):
    """``low, low + step, ..., high`` of an ``IntDistribution`` or a stepped
    ``FloatDistribution``, linear or (integers, step 1) log-scaled."""

    def __init__(self, d: IntDistribution | FloatDistribution) -> None:
        self.d = d
        self.step = d.step if d.step is not None else 1
        self.size = int(round((d.high - d.low) / self.step)) + 1

    def raw(self, index: np.ndarray) -> np.ndarray:
        return self.d.low + self.step * np.asarray(index)

    def column(self, index):
        d = self.d
        if d.high == d.low:
            return np.full(np.shape(index), 0.5)
        raw = self.raw(index)
        if d.log:
            return (np.log(raw) - math.log(d.low)) / _span(d)
        return (raw - d.low) / (d.high - d.low)

    def index(self, columns):
        d = self.d
        columns = np.clip(np.asarray(columns, dtype=float), 0.0, 1.0)
        if d.high == d.low:
            return np.zeros(columns.shape, dtype=int)
        if not d.log:
            return np.clip(np.rint(columns * (d.high - d.low) / self.step), 0,
                           self.size - 1).astype(int)
        raw = np.exp(math.log(d.low) + columns * _span(d))
        below = np.clip(np.floor(raw) - d.low, 0, self.size - 1).astype(int)
        above = np.minimum(below + 1, self.size - 1)
        closer_below = np.abs(columns - self.column(below)) <= np.abs(self.column(above) - columns)
        return np.where(closer_below, below, above)


@dataclass
class Dimension:
    """One parameter's column."""

    name: str
    distribution: BaseDistribution
    kind: str
    lattice: Lattice | None = None  # the allowed column values (discrete, categorical)
    values: np.ndarray | None = None  # a choice's column value, in the order of its choices

    def encode(self, value: Any) -> float:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return float(self.values[d.choices.index(value)])
        if d.log:
            return (math.log(value) - math.log(d.low)) / _span(d)
        return (value - d.low) / _span(d) if d.high > d.low else 0.5

    def decode(self, column: float) -> Any:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return d.choices[int(np.argmin(np.abs(self.values - column)))]
        if self.lattice is not None:
            raw = self.lattice.raw(self.lattice.index(np.array([column])))[0]
            return int(raw) if isinstance(d, IntDistribution) else float(raw)
        return self._value(column)

    def _value(self, column: float) -> Any:
        d = self.distribution
        column = float(np.clip(column, 0.0, 1.0))
        value = (math.exp(math.log(d.low) + column * _span(d)) if d.log
                 else d.low + column * (d.high - d.low))
        return float(np.clip(value, d.low, d.high))


def _span(d) -> float:
    return (math.log(d.high) - math.log(d.low)) if d.log else (d.high - d.low)


def _dimension(name: str, d: BaseDistribution, unordered: bool = False) -> Dimension:
    if isinstance(d, CategoricalDistribution):
        choices = list(d.choices)
        if not unordered and all(_is_number(c) for c in choices) and len(choices) > 1:
            order = sorted(choices)
            ranks = np.array([order.index(c) / (len(order) - 1) for c in choices])
            return Dimension(name, d, DISCRETE, ArrayLattice(ranks), ranks)
        codes = np.arange(len(choices), dtype=float)
        return Dimension(name, d, CATEGORICAL, ArrayLattice(codes), codes)
    if isinstance(d, IntDistribution) or d.step is not None:
        return Dimension(name, d, DISCRETE, StepLattice(d))
    return Dimension(name, d, CONTINUOUS)


class EncodedSpace:
    """Encodes parameter dicts to columns and back, for one relative search space.
    ``unordered``: the categorical parameters to treat as unordered whatever their values."""

    def __init__(self, search_space: dict[str, BaseDistribution],
                 unordered: frozenset[str] = frozenset()) -> None:
        self.dims = [_dimension(n, d, n in unordered) for n, d in sorted(search_space.items())]
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
                row[i] = d.lattice.size  # the code of "absent"
            else:
                row[i] = IMPUTED_NUMERIC
        return row

    def decode(self, row: np.ndarray) -> dict[str, Any]:
        return {d.name: d.decode(row[i]) for i, d in enumerate(self.dims)}

    def snap(self, X: np.ndarray) -> np.ndarray:
        """Round discrete and categorical columns to their nearest allowed value."""
        X = X.copy()
        for i in (*self.discrete, *self.categorical):
            X[:, i] = self.dims[i].lattice.nearest(X[:, i])
        return X

    def sample(self, n: int, rng: np.random.RandomState) -> np.ndarray:
        """``n`` uniform candidates (a scrambled Sobol sequence), snapped to allowed values."""
        from scipy.stats import qmc

        u = qmc.Sobol(self.dim, scramble=True, seed=rng.randint(2**31)).random(n)
        for i in self.categorical:
            k = self.dims[i].lattice.size
            u[:, i] = np.minimum(np.floor(u[:, i] * k), k - 1)
        return self.snap(u)


def unordered_choices(study_system_attrs: dict[str, Any]) -> frozenset[str]:
    """The names of the ``Choice`` hyperparameters declared ``ordered=False`` in the tuner's
    search space stored in the study (none for a study of plain Optuna code)."""
    from optuna_keras_hpo.attrs import SPACE_ATTR

    return frozenset(
        entry["config"]["name"] for entry in study_system_attrs.get(SPACE_ATTR) or ()
        if entry.get("class_name") == "Choice" and entry["config"].get("ordered") is False
    )
