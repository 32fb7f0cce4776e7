"""Many processes, one study: a study-wide trial budget, a grid that survives parallel workers and
retried trials, and the loop that ``optuna-keras-hpo worker`` and ``Tuner.search`` share.

Every worker runs the same loop on the shared study (there is no chief):

1. fail stale trials (RDB storages with heartbeats: Optuna does it before each trial it starts,
   the loop before waiting; the retries are queued as WAITING trials by Optuna's
   ``RetryHeartbeatStaleTrialCallback``);
2. stop when the study has ``max_trials`` finished trials (COMPLETE; the tuner also counts
   PRUNED, as KerasTuner does);
3. run one trial (``study.optimize(..., n_trials=1)``, which takes a WAITING trial first) while
   finished + running trials leave room in the budget and the search space is not exhausted;
4. otherwise, while other workers' trials are running and heartbeats are on, wait: one of them
   may die and be retried; without heartbeats, stop.

Step 3's check and the trial's creation are not atomic, so two workers may both start "the last"
trial. Optuna's ``MaxTrialsCallback`` has the same gap: it stops a worker only after its trial
ends, so N workers finish up to N - 1 trials more than asked. Here each trial is *admitted* when
it starts (:meth:`TrialBudget.admit`): Optuna creates trials one at a time under a lock on the
study, so trial numbers order the trials, and a trial runs only if fewer than ``max_trials``
trials numbered before it are finished, running or waiting (and, on a grid, none of those holds
its grid point). A refused trial is recorded as FAIL with the reason in its ``fail_reason`` user
attribute, before anything of the objective runs. So N workers together finish exactly
``max_trials`` trials.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_keras_hpo import storage as storage_lib
from optuna_keras_hpo.attrs import (
    ASKED_BY_ATTR,
    FAIL_REASON_ATTR,
    GRID_FULL_ATTR,
    REFUSED_ATTR,
    WORKER_ATTR,
    WORKER_DIED_ATTR,
)

_IN_FLIGHT = (TrialState.RUNNING, TrialState.WAITING)
_MAX_REFUSALS_IN_A_ROW = 50
_logger = logging.getLogger(__name__)


class TrialNotRun(RuntimeError):
    """A trial refused when it started (the study's budget or its grid point was already taken
    by other workers). Optuna records it as FAIL; it is not a failure of the objective."""


def worker_id() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def died(trial: FrozenTrial) -> bool:
    """Whether the trial failed because its worker died (found by the process check or by a
    missing heartbeat): it holds no place in the budget and no grid point."""
    return trial.state == TrialState.FAIL and (
        bool(trial.system_attrs.get(WORKER_DIED_ATTR))
        or FAIL_REASON_ATTR not in trial.user_attrs  # failed by Optuna's stale-trial check
    )


def fail_dead_local_trials(study: optuna.Study, trials: list[FrozenTrial],
                           max_retry: int = 0) -> int:
    """Fail the RUNNING trials whose worker was a process of this host that is gone (killed,
    crashed, out of memory): at once, whatever the storage and without waiting for a heartbeat
    grace period. With ``max_retry``, each is queued again with its parameters
    (:class:`~optuna_keras_hpo.storage.RetryDeadWorkerTrial`, the heartbeat check's callback
    too). Returns how many."""
    me = worker_id()
    failed = 0
    for t in trials:
        owner = t.user_attrs.get(WORKER_ATTR, t.system_attrs.get(ASKED_BY_ATTR))
        if t.state != TrialState.RUNNING or not isinstance(owner, str) or owner == me:
            continue
        if _process_state(owner) != "dead":
            continue
        storage = study._storage
        try:
            storage.set_trial_user_attr(
                t._trial_id, FAIL_REASON_ATTR,
                f"Its worker {owner} died during the trial (the process is gone).")
            storage.set_trial_system_attr(t._trial_id, WORKER_DIED_ATTR, True)
            storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except RuntimeError:  # optuna's UpdateFinishedTrialError: another worker failed it
            continue
        _logger.warning("Study %r: trial %d failed: its worker %s died.", study.study_name,
                        t.number, owner)
        failed += 1
        storage_lib.RetryDeadWorkerTrial(max_retry)(study, storage.get_trial(t._trial_id))
    return failed


def _rerunnable(trial: FrozenTrial) -> bool:
    """Whether the trial has a configuration to run again (its values were drawn, or it was
    enqueued with them)."""
    return bool(trial.params or trial.system_attrs.get("fixed_params"))


def mark_interrupted(study: optuna.Study, trial_id: int) -> None:
    """Record on the (RUNNING) trial that the search was interrupted during it (Ctrl-C): its
    ``fail_reason``, and the died marker that frees its place in the budget and its grid
    point."""
    rerun = _rerunnable(study._storage.get_trial(trial_id))
    study._storage.set_trial_user_attr(
        trial_id, FAIL_REASON_ATTR, "Interrupted (KeyboardInterrupt) during the trial"
        + ("; it runs again when the search resumes." if rerun else "."))
    study._storage.set_trial_system_attr(trial_id, WORKER_DIED_ATTR, True)


def fail_interrupted(study: optuna.Study, trial_id: int) -> None:
    """The search was interrupted during this trial: fail it (Optuna has, when the interrupt
    came inside the objective) and queue it again with its parameters, so that resuming the
    search runs it first (as KerasTuner resumes its interrupted trial)."""
    storage = study._storage
    if storage.get_trial(trial_id).state == TrialState.RUNNING:  # interrupted inside ask
        mark_interrupted(study, trial_id)
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    trial = storage.get_trial(trial_id)
    if (trial.state == TrialState.FAIL and trial.system_attrs.get(WORKER_DIED_ATTR)
            and _rerunnable(trial)):
        retries = len(trial.system_attrs.get("retry_history", []))
        storage_lib.RetryDeadWorkerTrial(retries + 1)(study, trial)  # always one more


def refused(trial: FrozenTrial) -> bool:
    """Whether the trial was refused at admission (a retried copy of it is not)."""
    return trial.system_attrs.get(REFUSED_ATTR) == trial.number


def point_key(trial: FrozenTrial) -> Hashable | None:
    """The grid point a trial runs: its grid id (with the grid it belongs to), or the parameters
    it was enqueued with; None for a trial of another sampler."""
    attrs = trial.system_attrs
    if "grid_id" in attrs:
        return ("grid", attrs["grid_id"], json.dumps(attrs.get("search_space"), sort_keys=True))
    if "fixed_params" in attrs:
        return ("fixed", json.dumps(attrs["fixed_params"], sort_keys=True))
    return None


@dataclass(frozen=True)
class TrialBudget:
    """How many trials a study should finish, counted over all its workers.

    Args:
        max_trials: Trials to finish in the study; None for no limit.
        counted_states: The states that count as finished (the worker: COMPLETE; the tuner:
            COMPLETE and PRUNED).
        unique_points: Refuse a trial whose grid point another live trial holds.
    """

    max_trials: int | None
    counted_states: tuple[TrialState, ...] = (TrialState.COMPLETE,)
    unique_points: bool = False

    def admit(self, study: optuna.Study, trial: optuna.Trial) -> None:
        """Call first thing in the objective: records this process in the ``worker`` user
        attribute, and raises :class:`TrialNotRun` (after recording why) when the trial must not
        run."""
        trial.set_user_attr(WORKER_ATTR, worker_id())
        if self.max_trials is None and not self.unique_points:
            return
        trials = study.get_trials(deepcopy=False)
        me = next(t for t in trials if t.number == trial.number)
        admitted = 0
        held: set[Hashable] = set()
        for t in trials:
            if t.number >= trial.number:
                break
            if t.state not in self.counted_states + _IN_FLIGHT or refused(t):
                continue
            if self.unique_points and t.system_attrs.get(GRID_FULL_ATTR):
                continue  # refused (or about to be): the grid was full
            key = point_key(t) if self.unique_points else None
            if key is not None and key in held:
                continue  # refused (or about to be) for the same reason as below
            if self.max_trials is not None and admitted >= self.max_trials:
                continue
            admitted += 1
            if key is not None:
                held.add(key)
        reason = None
        if self.max_trials is not None and admitted >= self.max_trials:
            reason = (f"the study's budget of max_trials={self.max_trials} was taken by "
                      f"{admitted} earlier trials of other workers")
        elif self.unique_points and me.system_attrs.get(GRID_FULL_ATTR):
            reason = "every point of the grid is taken by other trials"
        elif self.unique_points and point_key(me) is None:
            # The tuner queued a point and then asked; another worker's ask took the queued
            # trial first, so this one was created without a point.
            reason = "it holds no point of the grid (another worker took the one queued for it)"
        elif self.unique_points and point_key(me) is not None and point_key(me) in held:
            reason = "its grid point is run by an earlier trial of another worker"
        if reason is None:
            return
        study._storage.set_trial_system_attr(trial._trial_id, REFUSED_ATTR, trial.number)
        trial.set_user_attr(FAIL_REASON_ATTR, f"Not run: {reason}.")
        raise TrialNotRun(f"Trial {trial.number} not run: {reason}.")


def heartbeats_enabled(study: optuna.Study) -> bool:
    get_interval = getattr(study._storage, "get_heartbeat_interval", None)
    return get_interval is not None and get_interval() is not None


def fail_stale_trials(study: optuna.Study) -> None:
    """Optuna's ``fail_stale_trials`` (its retry callback queues the failed trials again)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def run_until_budget(
    study: optuna.Study,
    run_trial: Callable[[], bool],
    budget: TrialBudget,
    *,
    exhausted: Callable[[list[FrozenTrial]], bool] | None = None,
    sqlite: bool = False,
    max_retry: int = 0,
) -> None:
    """Run trials until ``budget`` is met in the study as a whole (see the module docstring).

    Args:
        study: The shared study.
        run_trial: Runs one trial (``study.optimize(objective, n_trials=1)``, the objective
            calling :meth:`TrialBudget.admit` first); returns False when it was refused.
        budget: The study-wide budget.
        exhausted: Given the study's trials, whether no new configuration is left to start
            (a grid whose every point is taken); WAITING trials are still run.
        sqlite: The storage is SQLite: warn (:class:`SQLiteConcurrencyWarning`) when another
            live process runs trials of the study.
        max_retry: Times a trial whose worker died on this host is queued again
            (:func:`fail_dead_local_trials`).
    """
    heartbeats = heartbeats_enabled(study)
    poll = _poll_interval(study) if heartbeats else 0.0
    me = worker_id()
    warned = False
    refusals = 0
    last_wait_log = 0.0
    stale_checked = False
    unstarted_since: dict[int, float] = {}
    while True:
        trials = study.get_trials(deepcopy=False)
        if fail_dead_local_trials(study, trials, max_retry):
            continue  # read the trials again: places (and retries) have changed
        if sqlite and not warned and _other_live_process(trials, me):
            storage_lib.warn_sqlite_concurrency(
                f"Study {study.study_name!r} is in SQLite and another process is running its "
                "trials."
            )
            warned = True
        done = sum(t.state in budget.counted_states for t in trials)
        running = [t.number for t in trials if t.state == TrialState.RUNNING]
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if budget.max_trials is not None and done >= budget.max_trials:
            return
        room = budget.max_trials is None or done + len(running) < budget.max_trials
        can_start = room and (waiting or exhausted is None or not exhausted(trials))
        if not can_start and running and heartbeats and not stale_checked:
            # Optuna fails stale trials before each trial it starts; with nothing to start,
            # do it here: a dead worker's trial may free the budget or queue its retry.
            fail_stale_trials(study)
            stale_checked = True
            continue
        stale_checked = False
        if can_start:
            if run_trial():
                refusals = 0
            else:
                refusals += 1
                if refusals >= _MAX_REFUSALS_IN_A_ROW:
                    raise RuntimeError(
                        f"{refusals} trials in a row were refused at admission in study "
                        f"{study.study_name!r}; the study's trials: "
                        f"{[(t.number, t.state.name) for t in trials]}"
                    )
                time.sleep(random.uniform(0.05, 0.3))  # let the concurrent start settle
            continue
        if running and heartbeats:
            _fail_unstarted_zombies(study, trials, unstarted_since)
            if time.monotonic() - last_wait_log > 60:
                _logger.info(
                    "Study %r: budget taken; waiting for running trials %s of other workers "
                    "(a dead worker's trial is failed after the grace period and retried here).",
                    study.study_name, running,
                )
                last_wait_log = time.monotonic()
            time.sleep(poll)
            continue
        return


def _fail_unstarted_zombies(study: optuna.Study, trials: list[FrozenTrial],
                            unstarted_since: dict[int, float]) -> None:
    """Fail RUNNING trials whose worker died while Optuna was creating them.

    Optuna starts a trial's heartbeat after ``ask`` (and the sampler) returns, so a worker killed
    during ``ask`` leaves a RUNNING trial with no heartbeat, which ``fail_stale_trials`` never
    fails; it would hold a place in the budget for ever. Such a trial has no parameters and no
    ``worker`` attribute (admission writes it first thing in the objective): one seen so for
    longer than the grace period (by this process's clock) is failed here.
    """
    now = time.monotonic()
    unstarted = {t._trial_id: t for t in trials if t.state == TrialState.RUNNING
                 and not t.params and WORKER_ATTR not in t.user_attrs}
    for trial_id in list(unstarted_since):
        if trial_id not in unstarted:
            del unstarted_since[trial_id]
    grace = _grace_period(study)
    for trial_id, trial in unstarted.items():
        if now - unstarted_since.setdefault(trial_id, now) <= grace:
            continue
        try:
            study._storage.set_trial_user_attr(
                trial_id, FAIL_REASON_ATTR,
                f"Its worker died while the trial was being created (no heartbeat for {grace} s).")
            study._storage.set_trial_system_attr(trial_id, WORKER_DIED_ATTR, True)
            study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
            _logger.warning("Study %r: trial %d failed: its worker died while creating it.",
                            study.study_name, trial.number)
        except RuntimeError:  # optuna's UpdateFinishedTrialError: another worker failed it
            pass
        del unstarted_since[trial_id]


def _grace_period(study: optuna.Study) -> float:
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    interval = storage.get_heartbeat_interval() or 1
    return float(getattr(backend, "grace_period", None) or 2 * interval)


def _poll_interval(study: optuna.Study) -> float:
    interval = study._storage.get_heartbeat_interval() or 1
    return float(min(5.0, max(0.5, interval / 2)))


def _other_live_process(trials: list[FrozenTrial], me: str) -> bool:
    """A RUNNING trial of another process that is alive (on this host), or of another host."""
    return any(t.state == TrialState.RUNNING and isinstance(t.user_attrs.get(WORKER_ATTR), str)
               and t.user_attrs[WORKER_ATTR] != me
               and _process_state(t.user_attrs[WORKER_ATTR]) != "dead" for t in trials)


def _process_state(owner: str) -> str:
    """``"dead"``, ``"alive"`` (a process of this host) or ``"unknown"`` (another host's, or an
    unreadable worker id) for a ``host:pid`` worker id."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return "unknown"
    try:
        os.kill(int(pid), 0)
    except (ValueError, OverflowError):
        return "unknown"
    except ProcessLookupError:
        return "dead"
    except PermissionError:
        return "alive"
    return "alive"
