"""The names of the attributes this package writes to Optuna studies and trials, in one place.

User attributes are shown by optuna-dashboard and ``study.trials_dataframe()``; system attributes
(prefixed ``okh:``) are this package's bookkeeping.
"""

# -- trial user attributes (every final metric of a trial is one more, under its own name) -------
HP_VALUES_ATTR = "hyperparameters"
"""Every hyperparameter value of the trial, ``Fixed`` ones and defaults included."""
MODEL_ATTR = "model_artifact_id"
"""The artifact id of the trial's saved model."""
FAIL_REASON_ATTR = "fail_reason"
"""Why the trial failed (or was not run)."""
BEST_EPOCH_ATTR = "best_epoch"
"""The epoch at which the objective was best."""
WORKER_ATTR = "worker"
"""``host:pid`` of the process that ran the trial."""
MODEL_ERROR_ATTR = "model_error"
"""Why the trained model could not be saved (the trial keeps its score)."""
CONSTRAINTS_ERROR_ATTR = "constraints_error"
"""Why the ``constraints`` function failed (the trial keeps its score, without constraints)."""

# -- trial system attributes -------------------------------------------------------------------
REFUSED_ATTR = "okh:not_run"
"""Set (to the trial's number) on a trial refused at admission."""
GRID_FULL_ATTR = "okh:grid_full"
"""The grid had no free point when this trial was created."""
ASKED_BY_ATTR = "okh:asked_by"
"""``host:pid`` of the process that asked for the trial, written before the sampler runs (so a
worker killed inside ``ask`` is found by the process check)."""
WORKER_DIED_ATTR = "okh:worker_died"
"""Set on a trial failed because its worker process died (its place and its point are free)."""

# -- study system attributes -------------------------------------------------------------------
SPACE_ATTR = "okh:search_space"
"""The declared search space (each declaration's config), grown by the trials that declare
something new (in ``fit``, or a conditional branch first reached)."""
