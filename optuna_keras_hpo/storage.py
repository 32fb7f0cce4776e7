"""Where studies live: SQLite under ``{directory}/{project_name}/`` by default, any Optuna storage
otherwise."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import optuna

STUDY_DB = "study.db"
ARTIFACT_DIR = "artifacts"


def project_dir(directory: str | os.PathLike | None, project_name: str) -> Path:
    """``{directory}/{project_name}``, KerasTuner's layout (directory defaults to ``.``)."""
    return Path(directory or ".") / project_name


def default_storage_url(project: Path) -> str:
    """The SQLite URL of a project's study database."""
    return f"sqlite:///{(project / STUDY_DB).resolve()}"


def make_storage(storage: str | optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """An Optuna storage from a URL (or a storage, returned as is)."""
    if not isinstance(storage, str):
        return storage
    if "://" not in storage:
        raise ValueError(
            f"storage={storage!r}; expected an Optuna storage URL such as "
            "'sqlite:///path/study.db', 'postgresql://user@host/db' or "
            "'mysql+pymysql://user@host/db', or an optuna storage object."
        )
    engine_kwargs = {} if storage.startswith("sqlite") else {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs)


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    direction: str,
    overwrite: bool,
) -> optuna.Study:
    """Create the study, or load it to resume (after deleting it when ``overwrite``)."""
    if overwrite:
        try:
            optuna.delete_study(study_name=study_name, storage=storage)
        except KeyError:
            pass
    study = optuna.create_study(
        storage=storage, study_name=study_name, direction=direction, load_if_exists=True
    )
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study_name={study_name!r} already exists in this storage with direction "
            f"{study.direction.name.lower()!r}, but the objective asks for {direction!r}; "
            "use another study_name or overwrite=True."
        )
    return study


def reset_project(project: Path) -> None:
    """Delete a project's saved models (``overwrite=True``)."""
    shutil.rmtree(project / ARTIFACT_DIR, ignore_errors=True)
