"""Optuna's ``GridSampler`` made safe for parallel workers and retried trials."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from optuna_keras_hpo.attrs import GRID_FULL_ATTR
from optuna_keras_hpo.distributed import died, refused


class DistributedGridSampler(optuna.samplers.GridSampler):
    """Optuna's ``GridSampler``, made to run each point once under parallel workers and retries.

    What Optuna's ``GridSampler`` already gets right: a trial re-queued by
    ``RetryHeartbeatStaleTrialCallback`` (or enqueued) keeps its ``grid_id`` system attribute,
    and with it its grid point. What this subclass changes:

    - the grid's order is the same in every worker whatever its ``seed`` (Optuna shuffles the
      grid with the seed, so ``grid_id`` 3 is another point in a worker with another seed, and a
      retried trial could run another worker's point);
    - a trial takes a grid point that no trial holds (trials refused at admission hold none);
      when every point is taken it is marked, and :meth:`TrialBudget.admit` refuses it, where
      Optuna would re-run a random point (a duplicate);
    - :meth:`free_grid_ids` tells the worker loop when nothing is left to start.

    Two workers starting trials at the same moment may still pick the same free point; the
    later trial is refused at admission (``TrialBudget(unique_points=True)``).

    Args:
        search_space: Parameter name -> the values to try.
        seed: Seed for picking among free points (the grid's order does not depend on it).
        assign_points: Give a point to a trial that was not enqueued with one. ``GridSearch``
            enqueues every point itself and passes False: a trial created without its point
            (another worker took the queued one) holds none and is refused at admission.
    """

    def __init__(
        self, search_space: Mapping[str, Sequence[Any]], seed: int | None = None,
        assign_points: bool = True,
    ) -> None:
        super().__init__(search_space, seed=0)
        self._pick_rng = np.random.RandomState(seed)
        self.assign_points = assign_points

    def reseed_rng(self) -> None:
        self._pick_rng.seed()

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if "grid_id" in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return  # a retried or enqueued trial keeps its point
        if not self.assign_points:
            return
        free = self.free_grid_ids(study._storage.get_all_trials(study._study_id, deepcopy=False))
        storage = study._storage
        if free:
            grid_id = trial.number if trial.number in free else int(self._pick_rng.choice(free))
        else:
            grid_id = int(self._pick_rng.randint(len(self._all_grids)))
            storage.set_trial_system_attr(trial._trial_id, GRID_FULL_ATTR, True)
        storage.set_trial_system_attr(trial._trial_id, "search_space", self._search_space)
        storage.set_trial_system_attr(trial._trial_id, "grid_id", grid_id)

    def after_trial(self, study, trial, state, values) -> None:
        if self.is_exhausted(study):
            try:
                study.stop()
            except RuntimeError:
                pass  # ask-and-tell: there is no optimize loop to stop

    def free_grid_ids(self, trials: Sequence[FrozenTrial]) -> list[int]:
        """Grid ids no trial of this grid holds (any state; trials refused at admission or
        whose worker died hold none, and a failed point is not run again, as in Optuna)."""
        taken = {
            t.system_attrs["grid_id"] for t in trials
            if "grid_id" in t.system_attrs and not refused(t) and not died(t)
            and not t.system_attrs.get(GRID_FULL_ATTR)
            and self._same_search_space(t.system_attrs.get("search_space", {}))
        }
        return [i for i in range(len(self._all_grids)) if i not in taken]

    def is_exhausted(self, study: optuna.Study) -> bool:
        """Whether every grid point is taken by a trial (finished, running or queued)."""
        return not self.free_grid_ids(
            study._storage.get_all_trials(study._study_id, deepcopy=False)
        )
