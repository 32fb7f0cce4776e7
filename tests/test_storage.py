"""Studies in real database servers through ``storage=`` (PostgreSQL and MariaDB on loopback).

Under CI=true a missing server fails these tests; elsewhere they skip with the reason.
"""

import uuid

import optuna
import pytest
from optuna.trial import TrialState

import optuna_keras_hpo.keras_tuner as kt
from optuna_keras_hpo.storage import StorageConnectionError, make_storage
from tests.conftest import build_tiny


def test_search_into_a_database_server(server_url, tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    name = f"okh-{uuid.uuid4().hex[:8]}"
    tuner = kt.RandomSearch(build_tiny, objective="val_accuracy", max_trials=2,
                            storage=server_url, study_name=name, directory=tmp_path, seed=0)
    try:
        tuner.search(x, y, validation_data=(xv, yv), epochs=2, verbose=0)
        study = optuna.load_study(study_name=name, storage=make_storage(server_url))
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
        assert all(len(t.intermediate_values) == 2 and "val_accuracy" in t.user_attrs
                   for t in study.trials)
        assert tuner.get_best_models(1)[0] is not None
    finally:
        optuna.delete_study(study_name=name, storage=make_storage(server_url))


def test_storage_must_be_a_url():
    with pytest.raises(ValueError, match="storage='study.db'; expected an Optuna storage URL"):
        make_storage("study.db")


def test_sqlite_files_use_write_ahead_logging(tmp_path):
    import sqlite3

    path = tmp_path / "study.db"
    storage = make_storage(f"sqlite:///{path}")
    study = optuna.create_study(storage=storage, study_name="wal")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(optuna.load_study(study_name="wal", storage=f"sqlite:///{path}").trials) == 2


def test_redis_journal_holds_a_search_and_its_resumption(redis_url, tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    name = f"okh-{uuid.uuid4().hex[:8]}"
    storage = make_storage(redis_url)
    assert isinstance(storage, optuna.storages.JournalStorage)
    common = dict(objective="val_accuracy", storage=redis_url, study_name=name,
                  directory=tmp_path, seed=0)
    try:
        kt.RandomSearch(build_tiny, max_trials=2, **common).search(
            x, y, validation_data=(xv, yv), epochs=1, verbose=0)
        again = kt.RandomSearch(build_tiny, max_trials=3, **common)  # a new process's view
        assert again.remaining_trials == 1
        again.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
        study = optuna.load_study(study_name=name, storage=make_storage(redis_url))
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
        assert again.get_best_models(1)[0] is not None
    finally:
        optuna.delete_study(study_name=name, storage=make_storage(redis_url))


def test_an_unreachable_redis_fails_within_seconds_naming_the_url():
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(StorageConnectionError, match=f"redis://:\\*\\*\\*@127.0.0.1:{port}/0"):
        make_storage(f"redis://:secret@127.0.0.1:{port}/0")
    assert time.monotonic() - start < 10
    with pytest.raises(ValueError, match="heartbeat_interval=5 with storage='redis://"):
        make_storage(f"redis://127.0.0.1:{port}/0", heartbeat_interval=5)


def test_plain_database_urls_take_an_installed_driver():
    from optuna_keras_hpo.storage import database_url

    assert database_url("mysql://root@127.0.0.1:3306/test").startswith("mysql+pymysql://")
    assert database_url("postgresql://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"
    assert database_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
