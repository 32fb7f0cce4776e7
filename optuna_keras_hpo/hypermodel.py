"""``HyperModel``: how to build (and optionally fit) a Keras model from an ``hp`` object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class HyperModel:
    """Subclass and override ``build(hp)``; override ``fit(hp, model, ...)`` to tune training.

    Args:
        name: Optional name of the hypermodel.
        tunable: Whether the hyperparameters declared in ``declare_hyperparameters`` are tuned.
    """

    def __init__(self, name: str | None = None, tunable: bool = True) -> None:
        self.name = name
        self.tunable = tunable

    def build(self, hp):
        """Return a compiled Keras model whose hyperparameters come from ``hp``."""
        raise NotImplementedError(f"{type(self).__name__} must implement build(hp).")

    def declare_hyperparameters(self, hp) -> None:
        """Declare hyperparameters before ``build`` is called (optional)."""

    def fit(self, hp, model, *args, **kwargs):
        """Train ``model`` and return a ``History``, a dict of metrics or a float.

        The default calls ``model.fit(*args, **kwargs)``; the tuner passes the arguments of
        ``search`` here, with its own callbacks added to ``callbacks``.
        """
        return model.fit(*args, **kwargs)


class FunctionHyperModel(HyperModel):
    """A ``build_model(hp)`` function used where a HyperModel is expected."""

    def __init__(self, build_fn: Callable[[Any], Any]) -> None:
        super().__init__(name=getattr(build_fn, "__name__", None))
        self._build_fn = build_fn

    def build(self, hp):
        return self._build_fn(hp)


def as_hypermodel(hypermodel: HyperModel | Callable[[Any], Any] | None) -> HyperModel:
    """The HyperModel behind a ``hypermodel=`` argument."""
    if isinstance(hypermodel, HyperModel):
        return hypermodel
    if callable(hypermodel):
        return FunctionHyperModel(hypermodel)
    raise ValueError(
        f"hypermodel={hypermodel!r}; expected a HyperModel instance or a build_model(hp) "
        "function."
    )
