"""Studies in real database servers through ``storage=`` (PostgreSQL and MariaDB on loopback).

Under CI=true a missing server fails these tests; elsewhere they skip with the reason.
"""

import uuid

import optuna
import pytest
from optuna.trial import TrialState

import optuna_keras_hpo.keras_tuner as kt
from optuna_keras_hpo.storage import make_storage
from tests.conftest import build_tiny


def test_search_into_a_database_server(server_url, tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    name = f"okh-{uuid.uuid4().hex[:8]}"
    tuner = kt.RandomSearch(build_tiny, objective="val_accuracy", max_trials=2,
                            storage=server_url, study_name=name, directory=tmp_path, seed=0)
    try:
        tuner.search(x, y, validation_data=(xv, yv), epochs=2, verbose=0)
        study = optuna.load_study(study_name=name, storage=server_url)
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
        assert all(len(t.intermediate_values) == 2 and "val_accuracy" in t.user_attrs
                   for t in study.trials)
        assert tuner.get_best_models(1)[0] is not None
    finally:
        optuna.delete_study(study_name=name, storage=server_url)


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
