"""Kills with the default settings: a worker killed with SIGKILL mid-trial loses nothing and
leaves nothing stuck. Real processes, the real default SQLite study, real database servers."""

import signal
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_keras_hpo.attrs import ASKED_BY_ATTR, FAIL_REASON_ATTR, WORKER_ATTR
from optuna_keras_hpo.storage import default_storage_url, make_storage
from tests.conftest import each_storage
from tests.test_distributed import finish, start, wait_for

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, str(ROOT / "tests" / "default_tuner_script.py")]


def _epochs_begun(markers: Path, pid: int) -> int:
    return len(list(markers.glob(f"{pid}-*")))


def _assert_exactly(trials, max_trials: int, killed_pid: int) -> None:
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == max_trials, states
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states, states
    killed = [t for t in trials if t.user_attrs.get(WORKER_ATTR, "").endswith(f":{killed_pid}")
              and t.state != TrialState.COMPLETE]
    assert [t.state for t in killed] == [TrialState.FAIL]
    assert "died during the trial" in killed[0].user_attrs[FAIL_REASON_ATTR]


def test_a_killed_single_process_search_reruns_to_exactly_max_trials(tmp_path):
    """The default SQLite study; the script is killed in its third trial and run again."""
    markers = tmp_path / "markers"
    markers.mkdir()
    args = [*SCRIPT, "-", "defaults", str(tmp_path), "0", "5"]
    first = start(args, tmp_path / "first.log", OKH_MARKERS=str(markers), OKH_SLEEP="0.3")
    try:  # 2 epochs a trial: the fifth epoch is the third trial's
        wait_for(lambda: _epochs_begun(markers, first.pid) >= 5, 120,
                 f"the third trial; log:\n{tmp_path / 'first.log'}")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    started = time.monotonic()
    again = start(args, tmp_path / "again.log", OKH_MARKERS=str(markers), OKH_SLEEP="0")
    finish(again, tmp_path / "again.log", timeout=120)
    # The dead trial was failed at once: no heartbeat grace period (60 s by default) waited.
    assert time.monotonic() - started < 50
    storage = make_storage(default_storage_url(tmp_path / "defaults"))
    _assert_exactly(optuna.load_study(study_name="defaults", storage=storage).trials, 5,
                    first.pid)


@pytest.mark.slow
def test_three_default_workers_one_killed_finish_exactly_max_trials(server_url, tmp_path):
    """Three processes run the default-settings script on one study with a plain URL
    (postgresql://, mysql://); one is killed with SIGKILL in its first trial."""
    name = f"okh-{uuid.uuid4().hex[:10]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    try:
        victim = start([*SCRIPT, server_url, name, str(tmp_path), "0", "9"], logs[0],
                       OKH_MARKERS=str(markers), OKH_SLEEP="120")
        try:
            wait_for(lambda: _epochs_begun(markers, victim.pid) >= 1, 120,
                     f"the victim's trial; log:\n{logs[0]}")
            others = [start([*SCRIPT, server_url, name, str(tmp_path), str(i), "9"], logs[i],
                            OKH_MARKERS=str(markers), OKH_SLEEP="0.1") for i in (1, 2)]
            wait_for(lambda: all(_epochs_begun(markers, p.pid) >= 1 for p in others), 120,
                     "the other workers' trials")
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait()
        for process, log in zip(others, logs[1:], strict=True):
            finish(process, log, timeout=240)
        trials = optuna.load_study(study_name=name, storage=make_storage(server_url)).trials
        _assert_exactly(trials, 9, victim.pid)
    finally:
        try:
            optuna.delete_study(study_name=name, storage=make_storage(server_url))
        except KeyError:
            pass


@pytest.mark.parametrize("url", ["journal", "sqlite"])
def test_a_file_storage_tuner_defaults_to_the_process_check(url, tmp_path):
    """Heartbeats where the storage records them (SQLite: 60 s), none on a journal file."""
    import optuna_keras_hpo.keras_tuner as kt
    from tests.conftest import build_tiny

    storage = (f"journal:///{tmp_path / 's.log'}" if url == "journal"
               else f"sqlite:///{tmp_path / 's.db'}")
    tuner = kt.RandomSearch(build_tiny, objective="val_loss", storage=storage,
                            study_name="s", directory=tmp_path)
    interval = getattr(tuner.study._storage, "get_heartbeat_interval", lambda: None)()
    assert tuner.heartbeat_interval == interval == (None if url == "journal" else 60)
    assert tuner.max_retry == 0  # max_retries_per_trial's default


# -- errors on the trial's path: recorded, nothing left RUNNING -----------------------------------
class SamplerFailingAtTrial(optuna.samplers.RandomSampler):
    """Raises in ``before_trial`` (inside ``study.ask``) for the trials numbered in ``fail``."""

    def __init__(self, fail: set[int]):
        super().__init__(seed=0)
        self.fail = fail

    def before_trial(self, study, trial):
        if trial.number in self.fail:
            raise RuntimeError(f"sampler broke at trial {trial.number}")
        super().before_trial(study, trial)


@pytest.mark.parametrize("study_storage", each_storage(), indirect=True)
@pytest.mark.parametrize("failing", [{0}, {1}])
def test_a_sampler_error_in_ask_fails_that_trial_and_the_search_goes_on(failing, study_storage,
                                                                        tiny_data, tmp_path):
    import optuna_keras_hpo.keras_tuner as kt
    from tests.conftest import build_tiny

    x, y, xv, yv = tiny_data
    ended = []
    tuner = kt.Tuner(build_tiny, objective="val_loss", max_trials=3,
                     sampler=SamplerFailingAtTrial(failing), directory=tmp_path,
                     storage=study_storage[0], study_name=study_storage[1],
                     project_name=f"ask{min(failing)}", overwrite=True)
    tuner.on_trial_end = ended.append
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=1)
    trials = tuner.study.trials
    bad = min(failing)
    assert trials[bad].state == TrialState.FAIL
    assert "sampler broke at trial" in trials[bad].user_attrs[FAIL_REASON_ATTR]
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 3
    assert TrialState.RUNNING not in [t.state for t in trials]
    # on_trial_end once per trial, the failed one included, in order
    assert [t.trial_id for t in ended] == [f"{t.number:02d}" for t in trials]


@pytest.mark.parametrize("study_storage", each_storage(), indirect=True)
def test_failing_constraints_or_model_saving_keep_the_trained_score(study_storage, tiny_data,
                                                                    tmp_path):
    import optuna_keras_hpo.keras_tuner as kt
    from tests.conftest import build_tiny

    x, y, xv, yv = tiny_data

    class Unwritable:  # an artifact store whose disk is full
        def write(self, artifact_id, content_body):
            raise OSError("No space left on device")

        def open_reader(self, artifact_id):
            raise FileNotFoundError(artifact_id)

        def remove(self, artifact_id):
            pass

    def constraints(metrics):
        raise KeyError("val_precision")

    tuner = kt.RandomSearch(build_tiny, objective="val_loss", max_trials=2, seed=0,
                            artifact_store=Unwritable(), constraints=constraints,
                            storage=study_storage[0], study_name=study_storage[1],
                            directory=tmp_path, project_name="keep", overwrite=True)
    with pytest.warns(RuntimeWarning, match="the trial keeps its score"):
        tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    trials = tuner.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:
        assert t.value == t.user_attrs["val_loss"]
        assert "No space left on device" in t.user_attrs["model_error"]
        assert "val_precision" in t.user_attrs["constraints_error"]
    with pytest.raises(ValueError, match="saving it failed .*No space left"):
        tuner.get_best_models(1)


# -- the fault matrix: each storage x each moment of a trial, SIGKILL then run again -----------
MOMENTS = ["ask", "fit", "save", "told"]
STORAGES = ["sqlite", "journal", "postgresql", "mysql", "redis"]


def _storage_url(kind: str, tmp_path: Path, request) -> str:
    if kind == "sqlite":
        return "-"  # the tuner's default study
    if kind == "journal":
        return f"journal:///{tmp_path / 'study.log'}"
    if kind == "redis":
        return request.getfixturevalue("redis_url")
    from tests.conftest import reachable_server

    return reachable_server(kind)


def _open(kind: str, url: str, tmp_path: Path):
    return make_storage(default_storage_url(tmp_path / "defaults") if kind == "sqlite" else url)


def _delete(kind: str, url: str, name: str, tmp_path: Path) -> None:
    """Delete a test's study from a shared server (the default SQLite study is the test's)."""
    if kind != "sqlite":
        try:
            optuna.delete_study(study_name=name, storage=_open(kind, url, tmp_path))
        except KeyError:
            pass


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("kind", STORAGES)
def test_a_kill_at_any_moment_then_a_rerun_ends_with_exactly_max_trials(kind, moment, tmp_path,
                                                                       request):
    url = _storage_url(kind, tmp_path, request)
    name = f"okh-{uuid.uuid4().hex[:10]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    args = [*SCRIPT, url, name, str(tmp_path), "0", "4"]
    try:
        first = start(args, tmp_path / "first.log", OKH_MARKERS=str(markers),
                      OKH_PAUSE=f"{moment}:2")
        try:
            wait_for(lambda: (markers / f"paused-{first.pid}").exists(), 120,
                     f"the pause at {moment}; log:\n{tmp_path / 'first.log'}")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        before = optuna.load_study(study_name=name, storage=_open(kind, url, tmp_path)).trials
        done_before = {t.number for t in before if t.state == TrialState.COMPLETE}
        started = time.monotonic()
        again = start(args, tmp_path / "again.log", OKH_MARKERS=str(markers))
        finish(again, tmp_path / "again.log", timeout=120)
        assert time.monotonic() - started < 60  # no grace period waited for
        trials = optuna.load_study(study_name=name, storage=_open(kind, url, tmp_path)).trials
        states = [t.state for t in trials]
        assert states.count(TrialState.COMPLETE) == 4, states
        assert TrialState.RUNNING not in states and TrialState.WAITING not in states, states
        # Nothing completed was lost or run again.
        assert done_before <= {t.number for t in trials if t.state == TrialState.COMPLETE}
        if moment == "told":  # the trial was recorded before the kill: nothing failed
            assert len(trials) == 4 and 2 in done_before
        else:
            assert trials[2].state == TrialState.FAIL and len(trials) == 5
            assert "died during the trial" in trials[2].user_attrs[FAIL_REASON_ATTR]
    finally:
        _delete(kind, url, name, tmp_path)


def _completed_points(trials) -> list[tuple]:
    return sorted(tuple(sorted(t.params.items())) for t in trials
                  if t.state == TrialState.COMPLETE)


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("kind", STORAGES)
def test_three_grid_workers_one_killed_at_any_moment_finish_the_grid_once(kind, moment,
                                                                         tmp_path, request):
    """Three processes search one 6-point grid (``GridSearch``, default settings); one is
    killed at the moment given of its first trial; the others go on and finish, then the
    script is run again. Every point completes exactly once."""
    url = _storage_url(kind, tmp_path, request)
    name = f"okh-{uuid.uuid4().hex[:10]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    logs = [tmp_path / f"w{i}.log" for i in range(4)]

    def worker(i: int, **env):
        return start([*SCRIPT, url, name, str(tmp_path), str(i), "6"], logs[i],
                     OKH_MARKERS=str(markers), OKH_TUNER="grid", **env)

    try:
        victim = worker(0, OKH_PAUSE=f"{moment}:first")
        others = [worker(i, OKH_SLEEP="0.2") for i in (1, 2)]
        try:
            wait_for(lambda: (markers / f"paused-{victim.pid}").exists(), 120,
                     f"the pause at {moment}; log:\n{logs[0]}")
            wait_for(lambda: all(_epochs_begun(markers, p.pid) >= 1 for p in others), 120,
                     "the other workers' trials")
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait()
        for process, log in zip(others, logs[1:3], strict=True):
            finish(process, log, timeout=240)
        finish(worker(3), logs[3], timeout=120)  # the script again: nothing left to run
        trials = optuna.load_study(study_name=name, storage=_open(kind, url, tmp_path)).trials
        states = [t.state for t in trials]
        assert states.count(TrialState.COMPLETE) == 6, states
        assert TrialState.RUNNING not in states and TrialState.WAITING not in states, states
        points = _completed_points(trials)
        assert len(set(points)) == 6, points  # the whole grid, no point twice
        killed = [t for t in trials if t.system_attrs.get(ASKED_BY_ATTR, "").endswith(
            f":{victim.pid}")]
        assert len(killed) == 1, killed
        if moment == "told":  # recorded before the kill
            assert killed[0].state == TrialState.COMPLETE
        else:
            assert killed[0].state == TrialState.FAIL
            assert "died during the trial" in killed[0].user_attrs[FAIL_REASON_ATTR]
    finally:
        _delete(kind, url, name, tmp_path)


def _close_other_connections(url: str) -> int:
    """What a database restart or an administrator does: the server closes every other
    connection to the database (PostgreSQL ``pg_terminate_backend``, MariaDB ``KILL``)."""
    import sqlalchemy

    from optuna_keras_hpo.storage import database_url

    engine = sqlalchemy.create_engine(database_url(url))
    try:
        with engine.connect() as connection:
            database = engine.url.database
            if engine.url.get_backend_name() == "postgresql":
                rows = connection.execute(sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database})
                return len(rows.fetchall())
            ids = [row[0] for row in connection.execute(sqlalchemy.text(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = :db AND id <> CONNECTION_ID()"), {"db": database})]
            for connection_id in ids:
                try:
                    connection.execute(sqlalchemy.text(f"KILL {int(connection_id)}"))
                except sqlalchemy.exc.DBAPIError:
                    pass  # gone meanwhile
            return len(ids)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_the_server_closing_the_workers_connections_loses_nothing(server_url, tmp_path):
    """The server closes the search's connections three times while it trains; the search
    reconnects (the pool's pre-ping replaces the closed connections) and finishes."""
    name = f"okh-{uuid.uuid4().hex[:10]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    log = tmp_path / "search.log"
    closed = []
    try:
        search = start([*SCRIPT, server_url, name, str(tmp_path), "0", "6"], log,
                       OKH_MARKERS=str(markers), OKH_SLEEP="0.5")
        for epochs in (3, 6, 9):  # during the second, fourth and fifth trials
            wait_for(lambda n=epochs: len(list(markers.iterdir())) >= n
                     or search.poll() is not None, 120, f"epoch {epochs}; log:\n{log}")
            closed.append(_close_other_connections(server_url))
        finish(search, log, timeout=180)
        assert sum(closed) >= 1  # the search's connections were among them
        trials = optuna.load_study(study_name=name, storage=make_storage(server_url)).trials
        assert [t.state for t in trials].count(TrialState.COMPLETE) == 6
        assert TrialState.RUNNING not in [t.state for t in trials]
    finally:
        try:
            optuna.delete_study(study_name=name, storage=make_storage(server_url))
        except KeyError:
            pass
