"""Several processes on one study: worker processes (the CLI) and tuner processes in real
PostgreSQL and MariaDB servers, one of them killed with SIGKILL mid-trial; the dashboard over
HTTP; storage URLs that are wrong or whose server does not answer.

Database tests: under CI=true a missing server fails them; elsewhere they skip with the reason.
Objectives sleep instead of training (tests/distributed_objectives.py), heartbeats every second
with a 3 s grace period, so a dead worker's trial is retried within seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import optuna_keras_hpo.keras_tuner as kt
from optuna_keras_hpo.attrs import GRID_FULL_ATTR, REFUSED_ATTR, WORKER_ATTR
from optuna_keras_hpo.distributed import (
    TrialBudget,
    TrialNotRun,
    refused,
    run_until_budget,
)
from optuna_keras_hpo.samplers import DistributedGridSampler
from optuna_keras_hpo.storage import StorageConnectionError, make_storage
from tests.conftest import build_tiny, reachable_server

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = ROOT / "tests" / "distributed_objectives.py"
CLI = [sys.executable, "-m", "optuna_keras_hpo"]
FAST_HEARTBEATS = ["--heartbeat-interval", "1", "--grace-period", "3"]


# -- helpers ----------------------------------------------------------------------------------
def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def start(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT), **env}
    with open(log, "w") as out:
        return subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=environment)


def finish(process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(
            f"process {process.args} still running; log:\n{log.read_text()}") from None
    assert code == 0, f"exit code {code}; log:\n{log.read_text()}"


@pytest.fixture
def study_name(request):
    """A unique study name, deleted from every server afterwards."""
    name = f"okh-{uuid.uuid4().hex[:10]}"
    yield name
    url = request.node.funcargs.get("server_url")
    if url:
        try:
            optuna.delete_study(study_name=name, storage=make_storage(url))
        except KeyError:
            pass


# As users write them (the driver chosen from those installed), and with the driver named.
SCHEMES = ["postgresql", "postgresql+psycopg2", "mysql", "mysql+pymysql"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- worker processes, one killed ----------------------------------------------------------
def test_three_workers_one_killed_mid_trial_finish_the_grid_exactly(
    server_url, study_name, tmp_path
):
    """3 workers on an 8-point grid with max_trials=8; the first one is killed (SIGKILL) in its
    trial. Its trial is failed after the grace period, retried on the same point, and the study
    ends with exactly 8 COMPLETE trials, each grid point once."""
    markers = tmp_path / "markers"
    markers.mkdir()
    worker = [*CLI, "worker", "--storage", server_url, "--study", study_name,
              "--objective", f"{OBJECTIVES}:sleepy", "--max-trials", "8", "--sampler", "grid",
              *FAST_HEARTBEATS, "--max-retry", "2"]
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    # The victim sleeps long in its trial, so it is surely mid-trial when killed.
    victim = start(worker, logs[0], OKH_MARKERS=str(markers), OKH_SLEEP="60")
    try:
        wait_for(lambda: any(markers.glob(f"{victim.pid}-*")), 60, "the victim's trial")
        others = [start(worker, log, OKH_MARKERS=str(markers), OKH_SLEEP="0.4")
                  for log in logs[1:]]
        wait_for(lambda: len(list(markers.iterdir())) >= 3, 60, "the other workers' trials")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    killed_number = int(next(markers.glob(f"{victim.pid}-*")).stem.split("-")[1])
    for process, log in zip(others, logs[1:], strict=True):
        finish(process, log)

    trials = optuna.load_study(study_name=study_name, storage=make_storage(server_url)).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 8
    killed = trials[killed_number]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs[WORKER_ATTR].endswith(f":{victim.pid}")
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed_number]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    assert retries[0].params == killed.params
    assert retries[0].system_attrs["grid_id"] == killed.system_attrs["grid_id"]
    points = [(t.params["x"], t.params["y"]) for t in complete]
    assert sorted(points) == sorted((x, y) for x in range(4) for y in "ab")  # each point once
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # Every other failed trial is one refused at admission (a concurrent start), never run.
    assert all(refused(t) for t in trials if t.state == TrialState.FAIL and t is not killed)


def test_tuner_processes_share_the_budget_and_retry_a_killed_trial(tmp_path):
    """KerasTuner's chief/worker mode without a chief: two processes run the same RandomSearch
    script on one study in PostgreSQL (heartbeat_interval=1, grace_period=3); the first is
    killed mid-trial, the second retries its trial and the study ends with max_trials=3
    COMPLETE trials, each with its metrics and saved model."""
    url = reachable_server("postgresql")
    name = f"okh-{uuid.uuid4().hex[:10]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    script = [sys.executable, str(ROOT / "tests" / "distributed_tuner_script.py"), url, name,
              str(tmp_path)]
    logs = [tmp_path / "tuner0.log", tmp_path / "tuner1.log"]
    try:
        victim = start([*script, "0", "3"], logs[0], OKH_MARKERS=str(markers), OKH_SLEEP="60")
        try:
            wait_for(lambda: (markers / f"{victim.pid}.running").exists(), 90,
                     f"the victim's trial; log:\n{logs[0]}")
            other = start([*script, "1", "3"], logs[1], OKH_MARKERS=str(markers),
                          OKH_SLEEP="0.1")
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait()
        finish(other, logs[1], timeout=150)

        trials = optuna.load_study(study_name=name, storage=make_storage(url)).trials
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(complete) == 3
        killed = [t for t in trials if t.user_attrs.get(WORKER_ATTR, "").endswith(
            f":{victim.pid}") and t.state == TrialState.FAIL]
        assert len(killed) == 1
        retry = [t for t in trials if t.system_attrs.get("failed_trial") == killed[0].number]
        assert [t.state for t in retry] == [TrialState.COMPLETE]
        assert retry[0].params == killed[0].params
        assert all({"val_accuracy", "model_artifact_id", "hyperparameters"} <= set(t.user_attrs)
                   and len(t.intermediate_values) == 2 for t in complete)
    finally:
        try:
            optuna.delete_study(study_name=name, storage=make_storage(url))
        except KeyError:
            pass


def test_workers_on_a_journal_file_share_the_budget(tmp_path):
    """Two workers on a JournalStorage file (no server) finish exactly max_trials together."""
    journal = tmp_path / "study.log"
    worker = [*CLI, "worker", "--storage", f"journal:///{journal}", "--study", "j",
              "--objective", f"{OBJECTIVES}:sleepy", "--max-trials", "6", "--sampler", "random"]
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    processes = [start([*worker, "--seed", str(i)], log, OKH_SLEEP="0.2")
                 for i, log in enumerate(logs)]
    for process, log in zip(processes, logs, strict=True):
        finish(process, log)
    study = optuna.load_study(study_name="j", storage=make_storage(f"journal:///{journal}"))
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6
    assert len({t.user_attrs[WORKER_ATTR] for t in study.trials}) == 2  # both worked


# -- admission, in one process -----------------------------------------------------------------
def test_a_trial_past_the_budget_is_refused_and_recorded():
    study = optuna.create_study()
    budget = TrialBudget(2)
    trials = [study.ask() for _ in range(3)]  # three workers started at once
    budget.admit(study, trials[0])
    budget.admit(study, trials[1])
    with pytest.raises(TrialNotRun, match="max_trials=2"):
        budget.admit(study, trials[2])
    frozen = study.trials[2]
    assert frozen.system_attrs[REFUSED_ATTR] == 2
    assert frozen.user_attrs["fail_reason"].startswith("Not run: the study's budget")
    # A trial that failed frees its place: the budget counts finished and live trials only.
    study.tell(trials[0], state=TrialState.FAIL)
    study.tell(trials[2], state=TrialState.FAIL)
    budget.admit(study, study.ask())


def test_grid_trials_on_the_same_point_run_once():
    study = optuna.create_study(sampler=DistributedGridSampler({"x": [1, 2, 3]}, seed=5))
    budget = TrialBudget(None, unique_points=True)
    first, second = study.ask(), study.ask()
    assert study.trials[0].system_attrs["grid_id"] != study.trials[1].system_attrs["grid_id"]
    # A race: the second worker picked the first one's point.
    study._storage.set_trial_system_attr(second._trial_id, "grid_id",
                                         study.trials[0].system_attrs["grid_id"])
    budget.admit(study, first)
    with pytest.raises(TrialNotRun, match="grid point is run by an earlier trial"):
        budget.admit(study, second)
    study.tell(second, state=TrialState.FAIL)
    study.tell(first, first.suggest_int("x", 1, 3))
    third, fourth = study.ask(), study.ask()
    budget.admit(study, third)
    budget.admit(study, fourth)  # the refused trial's point was free again
    study.tell(third, third.suggest_int("x", 1, 3))
    study.tell(fourth, fourth.suggest_int("x", 1, 3))
    assert sorted(t.params["x"] for t in study.trials if t.state == TrialState.COMPLETE) == [
        1, 2, 3]
    assert study.sampler.is_exhausted(study)
    full = study.ask()  # nothing left: marked, and refused
    assert study.trials[-1].system_attrs[GRID_FULL_ATTR] is True
    with pytest.raises(TrialNotRun, match="every point of the grid is taken"):
        budget.admit(study, full)


def test_a_trial_whose_worker_died_while_creating_it_is_failed(tmp_path):
    """A worker killed inside ``study.ask`` (while its sampler works) leaves a RUNNING trial
    without heartbeat, params or worker: it is failed after the grace period, so it does not
    hold the budget's last place for ever."""
    storage = make_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1,
                           grace_period=2)
    study = optuna.create_study(storage=storage, study_name="z")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.ask()  # its worker "dies" here
    budget = TrialBudget(2)

    def run_one() -> bool:
        def objective(trial):
            budget.admit(study, trial)
            return trial.suggest_float("x", 0, 1)

        study.optimize(objective, n_trials=1)
        return True

    run_until_budget(study, run_one, budget)
    trials = study.trials
    assert trials[0].state == TrialState.FAIL
    assert "worker died while the trial was being created" in trials[0].user_attrs["fail_reason"]
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE] * 2


def test_grid_order_does_not_depend_on_the_seed():
    space = {"x": list(range(10)), "y": ["a", "b"]}
    assert DistributedGridSampler(space, seed=1)._all_grids == DistributedGridSampler(
        space, seed=2)._all_grids


def test_a_tuner_warns_when_another_process_runs_its_sqlite_study(tiny_data, tmp_path):
    from optuna_keras_hpo.storage import SQLiteConcurrencyWarning

    x, y, xv, yv = tiny_data
    # Without heartbeats, the search ends when only another live process's trial is left
    # (with them, it would wait for that trial, which might die and need replacing).
    tuner = kt.RandomSearch(build_tiny, objective="val_accuracy", max_trials=2,
                            directory=tmp_path, project_name="p", seed=0, heartbeat_interval=None)
    other = tuner.study.ask()  # a trial of another live process (pytest's parent)
    other.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getppid()}")
    with pytest.warns(SQLiteConcurrencyWarning, match="another process.*PostgreSQL or MySQL"):
        tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert [t.state for t in tuner.study.trials] == [TrialState.RUNNING, TrialState.COMPLETE]


# -- the dashboard -------------------------------------------------------------------------------
def test_dashboard_serves_the_tuners_study(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    tuner = kt.RandomSearch(build_tiny, objective="val_accuracy", max_trials=2,
                            directory=tmp_path, project_name="dash", seed=0)
    tuner.search(x, y, validation_data=(xv, yv), epochs=2, verbose=0)
    port = free_port()
    log = tmp_path / "dashboard.log"
    server = start([*CLI, "dashboard", "--storage",
                    f"sqlite:///{tmp_path / 'dash' / 'study.db'}", "--port", str(port)], log)
    base = f"http://127.0.0.1:{port}"

    def get(path: str):
        with urllib.request.urlopen(base + path, timeout=5) as response:
            body = response.read()
            return json.loads(body) if path.startswith("/api") else body

    def up() -> bool:
        assert server.poll() is None, log.read_text()
        try:
            get("/api/meta")
            return True
        except OSError:
            return False

    try:
        wait_for(up, 60, "the dashboard")
        assert get("/api/meta")["artifact_is_available"] is True  # artifacts found by itself
        studies = get("/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == ["dash"]
        detail = get(f"/api/studies/{studies[0]['study_id']}")
        trials = detail["trials"]
        assert [t["state"] for t in trials] == ["Complete", "Complete"]
        for trial in trials:
            assert {p["name"] for p in trial["params"]} == {"units", "learning_rate"}
            attrs = {a["key"] for a in trial["user_attrs"]}
            assert {"val_accuracy", "val_recall", "model_artifact_id", WORKER_ATTR} <= attrs
            assert [v["step"] for v in trial["intermediate_values"]] == [0, 1]
            (artifact,) = trial["artifacts"]
            model = get(f"/artifacts/{studies[0]['study_id']}/{trial['trial_id']}/"
                        f"{artifact['artifact_id']}")
            assert model[:2] == b"PK"  # a .keras file is a zip archive
    finally:
        server.terminate()
        server.wait(timeout=10)


# -- storage errors --------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://user@127.0.0.1:notaport/db", "is not a valid database URL"),
    ("nosuchdb://127.0.0.1/db", "unknown database 'nosuchdb'"),
    ("journal://study.log", "three slashes"),
    ("journal:////no/such/dir/study.log", "'/no/such/dir' does not exist"),
    ("sqlite:////no/such/dir/study.db", "'/no/such/dir' does not exist"),
])
def test_malformed_storage_urls_are_rejected_clearly(url, message):
    start_time = time.monotonic()
    with pytest.raises(ValueError, match=message):
        make_storage(url)
    assert time.monotonic() - start_time < 10


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grace_period": 5}, "grace_period=5 without heartbeat_interval"),
    ({"heartbeat_interval": 5, "grace_period": 5}, "expected more than heartbeat_interval=5"),
    ({"heartbeat_interval": 0}, "heartbeat_interval=0; expected an integer >= 1"),
    ({"max_retry": -1}, "max_retry=-1"),
])
def test_heartbeat_arguments_are_checked(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        make_storage(f"sqlite:///{tmp_path / 's.db'}", **kwargs)


def test_journal_files_have_no_heartbeats(tmp_path):
    with pytest.raises(ValueError, match="JournalStorage records no heartbeats"):
        make_storage(f"journal:///{tmp_path / 's.log'}", heartbeat_interval=5)
    assert make_storage(str(tmp_path / "plain.log")) is not None  # a .log path is a journal


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_closed_port_fails_within_seconds_naming_the_url(scheme):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start_time = time.monotonic()
    with pytest.raises(StorageConnectionError) as error:
        make_storage(f"{scheme}://okh:secret@127.0.0.1:{port}/test")
    assert time.monotonic() - start_time < 10
    message = str(error.value)
    assert f"okh:***@127.0.0.1:{port}/test" in message and "secret" not in message
    assert "cannot connect to the" in message and "Expected a running" in message


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_server_that_never_answers_fails_within_10_seconds(scheme):
    """A loopback socket that accepts connections and says nothing (a hung server, or a host
    whose packets are dropped): the driver's connect timeout (PostgreSQL) or the deadline on the
    first connection (PyMySQL waits for the greeting without a timeout) ends the wait."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        start_time = time.monotonic()
        with pytest.raises(StorageConnectionError, match="cannot connect"):
            make_storage(f"{scheme}://root@127.0.0.1:{silent.getsockname()[1]}/test",
                         connect_timeout=3)
        assert time.monotonic() - start_time < 10
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        silent.close()
