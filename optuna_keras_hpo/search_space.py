"""A tuner's search space: found by ``build`` before the search, grown by what trials declare.

KerasTuner's rules: before any trial, ``build`` is called once per conditional branch to record
what it declares (``declare_hyperparameters`` too); ``fit`` is never called outside a trial, so
what it declares joins the space when a trial first declares it. The space is kept in the study
(:data:`~optuna_keras_hpo.attrs.SPACE_ATTR`), so other workers and a resumed run know it without
a trial of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from optuna_keras_hpo.attrs import SPACE_ATTR
from optuna_keras_hpo.hypermodel import HyperModel
from optuna_keras_hpo.hyperparameters import Fixed, HyperParameter, HyperParameters


def discover(hypermodel: HyperModel, predeclared: HyperParameters,
             build: Callable[[HyperParameters], Any]) -> HyperParameters:
    """The declarations of ``build``, with each conditional branch activated once."""
    space = HyperParameters()
    forced: dict[str, Any] = {}
    tried: list[dict[str, Any]] = []
    while True:
        hp = HyperParameters()
        hp.merge(predeclared)
        hp.values.update(forced)
        hypermodel.declare_hyperparameters(hp)
        try:
            build(hp)
        except Exception:
            pass  # a branch that fails to build is reported by the trials that reach it
        space.merge(hp.space, overwrite=False)
        tried.append(forced)
        forced = _next_activation(space, tried)
        if forced is None:
            break
    space.values = {}
    return space


def load(study: optuna.Study, space: HyperParameters, record: bool = False) -> None:
    """Add the declarations recorded in the study (by any run or worker) to ``space``; with
    ``record``, write the result back when ``space`` held something the study did not (the
    declared space, read by the GP sampler for ``Choice(ordered=False)``)."""
    stored = study._storage.get_study_system_attrs(study._study_id).get(SPACE_ATTR)
    if stored:
        space.merge(HyperParameters.from_config({"space": stored}).space, overwrite=False)
    if record and space.space:
        config = space.get_config()["space"]
        if config != stored:
            study._storage.set_study_system_attr(study._study_id, SPACE_ATTR, config)


def learn(study: optuna.Study, space: HyperParameters, declared: HyperParameters) -> None:
    """Add what a trial declared to ``space``; when something is new, record the grown space in
    the study (merged with what other workers recorded meanwhile)."""
    new = [hp for hp in declared.space if hp.name not in space._hps]
    if not new:
        return
    space.merge(new, overwrite=False)
    load(study, space)
    study._storage.set_study_system_attr(study._study_id, SPACE_ATTR,
                                         space.get_config()["space"])


def tuned(space: HyperParameters, predeclared: HyperParameters,
          tune_new_entries: bool) -> list[HyperParameter]:
    """The declarations that trials choose: not ``Fixed``, and (without ``tune_new_entries``)
    only those in the tuner's ``hyperparameters=``."""
    return [
        hp for hp in space.space
        if not isinstance(predeclared._hps.get(hp.name, hp), Fixed)
        and (tune_new_entries or hp.name in predeclared._hps)
    ]


def print_summary(space: HyperParameters) -> None:
    """KerasTuner's ``search_space_summary``."""
    print("Search space summary")
    print(f"Default search space size: {len(space.space)}")
    for hp in space.space:
        print(f"{hp.name} ({type(hp).__name__})")
        print(hp.get_config())


def _next_activation(space: HyperParameters, tried: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Parent values that activate a conditional declaration not yet seen active."""
    for hp in space.space:
        if not hp.conditions:
            continue
        forced = {c.parent_name: c.values[0] for c in hp.conditions}
        for earlier in tried:
            if all(earlier.get(k) == v for k, v in forced.items()):
                break
        else:
            return forced
    return None
