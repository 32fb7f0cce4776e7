"""The ``hp`` object: KerasTuner's declaration API on top of an Optuna trial.

``HyperParameters`` records declarations and returns defaults (KerasTuner's behaviour outside a
search); ``TrialHyperParameters`` asks an :class:`optuna.trial.Trial` for each value. Every
declaration becomes one Optuna distribution:

=====================================  =========================================================
declaration                            Optuna distribution (the stored param is the hp's value)
=====================================  =========================================================
``Int`` linear                         ``IntDistribution(low, high, step)``
``Int`` log, no step                   ``IntDistribution(low, high, log=True)``
``Float`` linear / log, no step        ``FloatDistribution(low, high, log=...)``
``Float`` linear with step             ``FloatDistribution(low, high, step=step)``
``Int`` / ``Float`` log with step      ``CategoricalDistribution`` of ``min * step**k``
``reverse_log``                        as ``linear`` (Optuna has no reverse-log prior), or the
                                       categorical of ``max + min - min * step**k`` with a step
``Choice`` / ``Boolean``               ``CategoricalDistribution``
``Fixed``                              not a parameter; its value is kept with the trial
=====================================  =========================================================
"""

from __future__ import annotations

import contextlib
import copy
import decimal
import math
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

_SAMPLINGS = ("linear", "log", "reverse_log")
# Continuous Floats get this many grid points (the centres of equal-probability buckets under the
# declared sampling), as KerasTuner's GridSearch does.
GRID_POINTS_PER_CONTINUOUS_FLOAT = 10


class Condition:
    """Active when the parent hyperparameter's value is one of ``values``."""

    def __init__(self, parent_name: str, values: Any) -> None:
        if not isinstance(values, (list, tuple, set)):
            values = [values]
        self.parent_name = parent_name
        self.values = list(values)

    def is_active(self, values: dict[str, Any]) -> bool:
        return self.parent_name in values and values[self.parent_name] in self.values

    def get_config(self) -> dict[str, Any]:
        return {"class_name": "Parent", "config": {"name": self.parent_name, "values": self.values}}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Condition)
            and self.parent_name == other.parent_name
            and self.values == other.values
        )

    def __repr__(self) -> str:
        return f"Condition({self.parent_name!r} in {self.values!r})"


class HyperParameter:
    """One declared hyperparameter: its name, default, conditions and distribution."""

    def __init__(self, name: str, default: Any = None, conditions: Sequence[Condition] = ()):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{type(self).__name__}: name={name!r}; expected a non-empty string.")
        self.name = name
        self._default = default
        self.conditions = list(conditions)

    @property
    def default(self) -> Any:
        return self._default

    def _error(self, message: str) -> ValueError:
        return ValueError(f"{type(self).__name__}(name={self.name!r}): {message}")

    def is_active(self, values: dict[str, Any]) -> bool:
        return all(c.is_active(values) for c in self.conditions)

    def distribution(self) -> BaseDistribution | None:
        """The Optuna distribution this hyperparameter is sampled from (None when fixed)."""
        raise NotImplementedError

    def to_value(self, param: Any) -> Any:
        """The hyperparameter value of a stored Optuna param."""
        return param

    def grid_values(self) -> list[Any]:
        """The values a grid search visits."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {
            "default": self.default,
            "conditions": [c.get_config() for c in self.conditions],
        }


class Fixed(HyperParameter):
    """A value that is not tuned."""

    def __init__(self, name: str, value: Any, conditions: Sequence[Condition] = ()):
        super().__init__(name, value, conditions)
        if not isinstance(value, (bool, int, float, str)) and value is not None:
            raise self._error(f"value={value!r}; expected a bool, int, float, str or None.")
        self.value = value

    def distribution(self) -> None:
        return None

    def grid_values(self) -> list[Any]:
        return [self.value]

    def get_config(self) -> dict[str, Any]:
        return {"conditions": [c.get_config() for c in self.conditions], "value": self.value}


class Boolean(HyperParameter):
    """True or False."""

    def __init__(self, name: str, default: bool = False, conditions: Sequence[Condition] = ()):
        super().__init__(name, default, conditions)
        if not isinstance(default, bool):
            raise self._error(f"default={default!r}; expected True or False.")

    def distribution(self) -> CategoricalDistribution:
        return CategoricalDistribution([False, True])

    def grid_values(self) -> list[Any]:
        return [False, True]


class Choice(HyperParameter):
    """One of a list of values of one type (int, float, str or bool)."""

    def __init__(
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        conditions: Sequence[Condition] = (),
    ):
        super().__init__(name, default, conditions)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise self._error(f"values={values!r}; expected a non-empty list of values.")
        types = {type(v) for v in values}
        if len(types) > 1:
            raise self._error(
                f"values={list(values)!r} mix types {sorted(t.__name__ for t in types)}; "
                "expected values of one type (int, float, str or bool)."
            )
        value_type = types.pop()
        if value_type not in (int, float, str, bool):
            raise self._error(
                f"values={list(values)!r} are of type {value_type.__name__}; "
                "expected int, float, str or bool."
            )
        if len(set(values)) != len(values):
            raise self._error(f"values={list(values)!r} contain duplicates.")
        numeric = value_type in (int, float)
        if ordered is None:
            ordered = numeric
        if ordered and not numeric:
            raise self._error(f"ordered=True with values of type {value_type.__name__}; "
                              "expected ordered=False for non-numeric values.")
        if default is not None and default not in values:
            raise self._error(f"default={default!r} is not one of values={list(values)!r}.")
        self.values = list(values)
        self.ordered = bool(ordered)

    @property
    def default(self) -> Any:
        return self.values[0] if self._default is None else self._default

    def distribution(self) -> CategoricalDistribution:
        return CategoricalDistribution(self.values)

    def grid_values(self) -> list[Any]:
        return list(self.values)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "values": self.values, "ordered": self.ordered}


def _decimals(x: float) -> int:
    exponent = decimal.Decimal(repr(float(x))).normalize().as_tuple().exponent
    return max(0, -int(exponent))


class _Numerical(HyperParameter):
    _type: type = float

    def __init__(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str | None = "linear",
        default: float | None = None,
        conditions: Sequence[Condition] = (),
    ):
        super().__init__(name, default, conditions)
        self._check_number("min_value", min_value)
        self._check_number("max_value", max_value)
        if step is not None:
            self._check_number("step", step)
        sampling = "linear" if sampling is None else sampling
        if not isinstance(sampling, str) or sampling.lower() not in _SAMPLINGS:
            raise self._error(f"sampling={sampling!r}; expected one of {list(_SAMPLINGS)}.")
        sampling = sampling.lower()
        if min_value > max_value:
            raise self._error(
                f"min_value={min_value!r} is greater than max_value={max_value!r}; "
                "expected min_value <= max_value."
            )
        if step is not None and step <= 0:
            raise self._error(f"step={step!r}; expected step > 0.")
        if sampling != "linear" and min_value <= 0:
            raise self._error(
                f"sampling={sampling!r} with min_value={min_value!r}; "
                "expected min_value > 0 for log sampling."
            )
        if sampling != "linear" and step is not None and step <= 1:
            raise self._error(
                f"step={step!r} with sampling={sampling!r}; expected a multiplier step > 1."
            )
        self.min_value = self._type(min_value)
        self.max_value = self._type(max_value)
        self.step = None if step is None else self._type(step)
        self.sampling = sampling
        if default is not None:
            self._check_number("default", default)
            if not self.min_value <= default <= self.max_value:
                raise self._error(
                    f"default={default!r} is outside [{self.min_value!r}, {self.max_value!r}]; "
                    "expected min_value <= default <= max_value."
                )
            self._default = self._type(default)

    def _check_number(self, arg: str, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self._type is int:
            ok = ok and float(value).is_integer()
        if not ok or not math.isfinite(value):
            raise self._error(f"{arg}={value!r}; expected a finite {self._type.__name__}.")

    @property
    def default(self) -> Any:
        return self.min_value if self._default is None else self._default

    def _lattice(self) -> list[Any] | None:
        """The finite set of values when a step is given, ascending; None when continuous."""
        if self.step is None:
            return None
        lo, hi, step = self.min_value, self.max_value, self.step
        if self.sampling == "linear":
            # The tolerance makes max_value reachable when (max - min) / step is whole in decimal
            # but not in binary floating point (KerasTuner's floor division misses 0.5 in
            # Float(0, 0.5, step=0.1); its documentation says the range is inclusive).
            n = int(math.floor((hi - lo) / step + 1e-9)) + 1
            return [self._clean(lo + k * step) for k in range(n)]
        n = int(math.floor(math.log(hi / lo) / math.log(step) + 1e-9)) + 1
        powers = [lo * step**k for k in range(n)]
        if self.sampling == "reverse_log":
            powers = sorted(hi + lo - p for p in powers)
        return [self._clean(v) for v in powers]

    def _clean(self, value: float) -> Any:
        if self._type is int:
            return int(round(value))
        if self.step is None:
            return float(value)
        if self.sampling == "linear":
            return round(value, max(_decimals(self.step), _decimals(self.min_value)) + 1)
        return float(f"{value:.12g}")

    def distribution(self) -> BaseDistribution:
        lattice = self._lattice()
        if lattice is not None and self.sampling != "linear":
            return CategoricalDistribution(lattice)
        if self._type is int:
            return IntDistribution(
                self.min_value,
                lattice[-1] if lattice else self.max_value,
                log=self.sampling == "log",
                step=self.step or 1,
            )
        return FloatDistribution(
            self.min_value,
            lattice[-1] if lattice else self.max_value,
            log=self.sampling == "log",
            step=self.step,
        )

    def to_value(self, param: Any) -> Any:
        return self._clean(param)

    def grid_values(self) -> list[Any]:
        lattice = self._lattice()
        if lattice is not None:
            return lattice
        if self._type is int:
            return list(range(self.min_value, self.max_value + 1))
        n = GRID_POINTS_PER_CONTINUOUS_FLOAT
        points = (float(f"{self._from_unit((i + 0.5) / n):.6g}") for i in range(n))
        return [min(max(p, self.min_value), self.max_value) for p in points]

    def _from_unit(self, u: float) -> float:
        lo, hi = self.min_value, self.max_value
        if self.sampling == "linear":
            return lo + u * (hi - lo)
        if self.sampling == "log":
            return lo * (hi / lo) ** u
        return hi + lo - lo * (hi / lo) ** (1 - u)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "min_value": self.min_value,
            "max_value": self.max_value,
            "step": self.step,
            "sampling": self.sampling,
        }


class Int(_Numerical):
    """An integer in ``[min_value, max_value]`` (both inclusive)."""

    _type = int


class Float(_Numerical):
    """A float in ``[min_value, max_value]``; with ``step``, only the values on its lattice."""

    _type = float


class HyperParameters:
    """Container of a search space and the current values, as KerasTuner's ``HyperParameters``.

    Outside a search it records declarations and returns each one's default (or a value set in
    ``values``); :class:`TrialHyperParameters` asks an Optuna trial instead. Inactive conditional
    hyperparameters return ``None`` and have no entry in ``values``.
    """

    def __init__(self) -> None:
        self._hps: dict[str, HyperParameter] = {}
        self._name_scopes: list[str] = []
        self._conditions: list[Condition] = []
        self.values: dict[str, Any] = {}

    # -- scopes --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Prefix the names declared inside with ``name/``."""
        self._name_scopes.append(name)
        try:
            yield
        finally:
            self._name_scopes.pop()

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Declarations inside are active only while ``parent_name``'s value is in
        ``parent_values``; inactive ones return ``None``."""
        full_name = self._full_name(parent_name)
        if full_name not in self._hps:
            raise ValueError(
                f"conditional_scope: parent_name={parent_name!r} is not a declared "
                "hyperparameter; declare it before the scope."
            )
        self._conditions.append(Condition(full_name, parent_values))
        try:
            yield
        finally:
            self._conditions.pop()

    @contextlib.contextmanager
    def _maybe_conditional_scope(self, parent_name: str | None, parent_values: Any):
        if parent_name is None and parent_values is None:
            yield
            return
        if parent_name is None or parent_values is None:
            raise ValueError(
                f"parent_name={parent_name!r}, parent_values={parent_values!r}; "
                "expected both or neither."
            )
        with self.conditional_scope(parent_name, parent_values):
            yield

    def _full_name(self, name: str) -> str:
        return "/".join([*self._name_scopes, name])

    # -- declarations --------------------------------------------------------------------------
    def Int(self, name, min_value, max_value, step=None, sampling="linear", default=None,
            parent_name=None, parent_values=None):
        """An integer in ``[min_value, max_value]``; ``step`` is a multiplier under log sampling."""
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(Int(self._full_name(name), min_value, max_value, step,
                                      sampling, default, self._conditions))

    def Float(self, name, min_value, max_value, step=None, sampling="linear", default=None,
              parent_name=None, parent_values=None):
        """A float in ``[min_value, max_value]``; ``step`` is a multiplier under log sampling."""
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(Float(self._full_name(name), min_value, max_value, step,
                                        sampling, default, self._conditions))

    def Choice(self, name, values, ordered=None, default=None, parent_name=None,
               parent_values=None):
        """One of ``values`` (all of one type); ordered by default when numeric."""
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(Choice(self._full_name(name), values, ordered, default,
                                         self._conditions))

    def Boolean(self, name, default=False, parent_name=None, parent_values=None):
        """True or False."""
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(Boolean(self._full_name(name), default, self._conditions))

    def Fixed(self, name, value, parent_name=None, parent_values=None):
        """A value that is not tuned."""
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(Fixed(self._full_name(name), value, self._conditions))

    def _retrieve(self, hp: HyperParameter) -> Any:
        if hp.name not in self._hps:
            self._hps[hp.name] = hp  # declared even when its value was set beforehand
        if hp.name in self.values:
            return self.values[hp.name]
        if not hp.is_active(self.values):
            return None
        value = self._value_for(hp)
        self.values[hp.name] = value
        return value

    def _value_for(self, hp: HyperParameter) -> Any:
        """The value of a newly active hyperparameter: its default outside a trial."""
        return hp.value if isinstance(hp, Fixed) else hp.default

    # -- access --------------------------------------------------------------------------------
    @property
    def space(self) -> list[HyperParameter]:
        """Every declared hyperparameter, in declaration order."""
        return list(self._hps.values())

    def get(self, name: str) -> Any:
        """The current value of an active hyperparameter."""
        full_name = self._full_name(name)
        if full_name in self.values:
            return self.values[full_name]
        if full_name in self._hps:
            raise ValueError(f"{full_name!r} is currently inactive.")
        raise KeyError(f"{full_name!r} does not exist.")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
        except (KeyError, ValueError):
            return False
        return True

    def is_active(self, hyperparameter: str | HyperParameter) -> bool:
        name = getattr(hyperparameter, "name", hyperparameter)
        hp = self._hps.get(name)
        return hp is not None and hp.is_active(self.values)

    def ensure_active_values(self) -> None:
        """Give each active declaration without a value its default, and drop the values of
        inactive ones (KerasTuner's)."""
        for hp in self.space:
            if hp.is_active(self.values):
                self.values.setdefault(hp.name, HyperParameters._value_for(self, hp))
            else:
                self.values.pop(hp.name, None)

    def copy(self) -> HyperParameters:
        other = HyperParameters()
        other._hps = dict(self._hps)
        other.values = dict(self.values)
        return other

    def merge(self, hps: HyperParameters | Sequence[HyperParameter], overwrite: bool = True):
        """Add another container's (or a list's) declarations, and its values when given."""
        space = hps.space if isinstance(hps, HyperParameters) else list(hps)
        for hp in space:
            if overwrite or hp.name not in self._hps:
                self._hps[hp.name] = hp
        if isinstance(hps, HyperParameters):
            for name, value in hps.values.items():
                if overwrite or name not in self.values:
                    self.values[name] = value

    def get_config(self) -> dict[str, Any]:
        return {
            "space": [
                {"class_name": type(hp).__name__, "config": {"name": hp.name, **hp.get_config()}}
                for hp in self.space
            ],
            "values": dict(self.values),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HyperParameters:
        """The container :meth:`get_config` describes (KerasTuner's ``from_config``)."""
        hps = cls()
        for item in config.get("space", []):
            hp = hyperparameter_from_config(item)
            hps._hps[hp.name] = hp
        hps.values = dict(config.get("values", {}))
        return hps

    def __repr__(self) -> str:
        return f"HyperParameters(values={self.values!r})"


_CLASSES = {cls.__name__: cls for cls in (Fixed, Boolean, Choice, Int, Float)}


def hyperparameter_from_config(item: dict[str, Any]) -> HyperParameter:
    """One declaration from its ``{"class_name": ..., "config": ...}`` (as
    :meth:`HyperParameters.get_config` writes it)."""
    cls = _CLASSES.get(item.get("class_name"))
    if cls is None:
        raise ValueError(f"class_name={item.get('class_name')!r}; expected one of "
                         f"{sorted(_CLASSES)}.")
    config = dict(item["config"])
    conditions = [Condition(c["config"]["name"], c["config"]["values"])
                  for c in config.pop("conditions", [])]
    return cls(**config, conditions=conditions)


class TrialHyperParameters(HyperParameters):
    """The ``hp`` of one Optuna trial: each new active declaration is a ``trial.suggest_*``.

    Args:
        trial: The Optuna trial that chooses the values.
        predeclared: A ``hyperparameters=`` container from the tuner: its ``Fixed`` entries are
            used as they are, its other declarations replace the model's.
        tune_new_entries: Tune declarations that ``predeclared`` lacks (else use their default).
        allow_new_entries: Accept declarations that ``predeclared`` lacks (else raise).
        known: With a grid: the names the search already knows. A declaration outside them
            takes its default (its first grid value if the default is off the grid) as the
            trial's value, as KerasTuner's grid starts a newly seen hyperparameter; None: the
            sampler chooses every value.
    """

    def __init__(
        self,
        trial,
        predeclared: HyperParameters | None = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        known: Collection[str] | None = None,
    ) -> None:
        super().__init__()
        self.trial = trial
        self._predeclared = predeclared or HyperParameters()
        self._tune_new_entries = tune_new_entries
        self._allow_new_entries = allow_new_entries
        self._known = known

    def _retrieve(self, hp: HyperParameter) -> Any:
        given = self._predeclared._hps.get(hp.name)
        if given is not None:
            # The tuner's declaration wins, under the conditions of the model's scope.
            given = _with_conditions(given, hp.conditions)
        elif not self._allow_new_entries:
            raise RuntimeError(
                f"{type(hp).__name__}(name={hp.name!r}) is not in the tuner's hyperparameters "
                "and allow_new_entries=False; declare it in `hyperparameters=` or set "
                "allow_new_entries=True."
            )
        return super()._retrieve(given or hp)

    def _value_for(self, hp: HyperParameter) -> Any:
        if isinstance(hp, Fixed):
            return hp.value
        if hp.name not in self._predeclared._hps and not self._tune_new_entries:
            return hp.default
        if self._known is not None and hp.name not in self._known:
            grid = hp.grid_values()
            first = hp.default if hp.default in grid else grid[0]
            # Optuna's own mechanism for enqueued values: suggest_* returns a fixed param and
            # records it with its distribution, as for any enqueued trial.
            self.trial._fixed_params = {**self.trial._fixed_params, hp.name: first}
        return hp.to_value(suggest(self.trial, hp.name, hp.distribution()))


def suggest(trial, name: str, distribution: BaseDistribution) -> Any:
    """Ask ``trial`` for ``name`` from ``distribution`` through the public ``suggest_*`` API."""
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high,
                                 step=distribution.step, log=distribution.log)
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high,
                                   step=distribution.step, log=distribution.log)
    return trial.suggest_categorical(name, distribution.choices)


def _with_conditions(hp: HyperParameter, conditions: list[Condition]) -> HyperParameter:
    if hp.conditions == conditions:
        return hp
    hp = copy.copy(hp)
    hp.conditions = list(conditions)
    return hp
