"""Where studies live: SQLite under ``{directory}/{project_name}/`` by default, any Optuna storage
otherwise; and how several processes share one study.

Storage URLs understood by :func:`make_storage` (the tuners' ``storage=``, the CLI's
``--storage``):

``sqlite:///path/study.db``
    One machine, one process at a time (the default). SQLAlchemy's rule for slashes applies:
    ``sqlite:///results/study.db`` is relative, ``sqlite:////srv/study.db`` absolute.
``postgresql://user:password@host:5432/db``, ``mysql://user:password@host:3306/db``
    Many workers on many machines: Optuna's ``RDBStorage`` with connection pre-ping, a small
    connection pool per process and a connect timeout, so a server that is down fails in
    seconds. The drivers come with ``pip install "optuna-keras-hpo[postgresql]"`` (psycopg 3)
    and ``[mysql]`` (PyMySQL); a URL without a driver (``postgresql://``, ``mysql://``) uses the
    one installed, and ``dialect+driver://`` picks one.
``journal:///path/study.log`` (or a plain path ending in ``.log``)
    Optuna's ``JournalStorage`` in a file, for many processes on one machine or on a shared file
    system (NFS) without a database server. Same slash rule as SQLite. Journal files keep no
    heartbeats (Optuna 5), so crashed trials are not detected there.
``redis://host:6379/0`` (``rediss://`` with TLS)
    Optuna's ``JournalStorage`` on a Redis server (``JournalRedisBackend``; the driver comes with
    ``pip install "optuna-keras-hpo[redis]"``): many workers on many machines without a SQL
    database. No heartbeats either.

Heartbeats (RDB storages only): with ``heartbeat_interval`` set, every running trial records a
heartbeat; a trial whose heartbeat is older than ``grace_period`` is marked FAIL at the start of
the next trial of any worker, and Optuna's ``RetryHeartbeatStaleTrialCallback`` queues it again
(same parameters) up to ``max_retry`` times.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

STUDY_DB = "study.db"
ARTIFACT_DIR = "artifacts"
JOURNAL_SCHEME = "journal://"
JOURNAL_SUFFIX = ".log"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_RETRY = 3
# Heartbeats (RDB storages, SQLite included, on by default): a trial whose worker stopped
# sending them for DEFAULT_GRACE_PERIOD seconds is failed. Optuna's documentation suggests 60 s;
# a dead worker on the same host as a live one is found at once (its process is gone), so the
# grace period bounds only the detection of other hosts' dead workers. docs/distributed.md has
# the measured cost.
DEFAULT_HEARTBEAT_INTERVAL = 60
# Per process: the main thread and the heartbeat thread hold at most two connections at once;
# a few spare ones, and connections are checked (pre-ping) and renewed before servers or
# firewalls drop them when idle.
POOL_SETTINGS = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4, "pool_recycle": 300,
                 "pool_timeout": 30}
_SERVER_NAMES = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB"}
# The driver argument bounding how long one connection attempt may take, by SQLAlchemy driver.
_CONNECT_TIMEOUT_ARG = {"psycopg2": "connect_timeout", "psycopg": "connect_timeout",
                        "pg8000": "timeout", "pymysql": "connect_timeout",
                        "mysqldb": "connect_timeout", "mysqlconnector": "connection_timeout"}
_SCHEMA_ATTEMPTS = 4
_REDIS_SCHEMES = ("redis", "rediss", "unix")
# For a URL without a driver: the drivers tried in order (the extras install the first), as
# SQLAlchemy driver name -> the module it imports.
_DRIVERS = {"postgresql": (("psycopg", "psycopg"), ("psycopg2", "psycopg2")),
            "mysql": (("pymysql", "pymysql"), ("mysqldb", "MySQLdb"))}
_EXTRAS = {"postgresql": "optuna-keras-hpo[postgresql]", "mysql": "optuna-keras-hpo[mysql]",
           "redis": "optuna-keras-hpo[redis]"}
_ALTERNATIVES = ("a PostgreSQL or MySQL server (storage='postgresql://...' or "
                 "'mysql://...'), a Redis server (storage='redis://...') or a journal file "
                 "(storage='journal:///path/study.log')")


class StorageConnectionError(ConnectionError):
    """The storage's database server cannot be reached (or refuses the connection)."""


class SQLiteConcurrencyWarning(UserWarning):
    """A SQLite study is used by several processes at once."""


class RetryDeadWorkerTrial:
    """Queue a trial whose worker died again, with its parameters, up to ``max_retry`` times
    (the heartbeat stale-trial callback, and the process check's).

    As Optuna's ``RetryHeartbeatStaleTrialCallback`` (the copy keeps the trial's system
    attributes, so its grid point, and records ``failed_trial`` and ``retry_history``), except
    that ``max_retry=0`` queues nothing (Optuna's queues one retry) and that the copy does not
    inherit the dead run's ``fail_reason``, ``worker`` and died marker.
    """

    def __init__(self, max_retry: int) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from optuna_keras_hpo.attrs import (
            FAIL_REASON_ATTR,
            REFUSED_ATTR,
            WORKER_ATTR,
            WORKER_DIED_ATTR,
        )

        history = list(trial.system_attrs.get("retry_history", []))
        if len(history) >= self.max_retry:
            return
        system_attrs = {k: v for k, v in trial.system_attrs.items()
                        if k not in (WORKER_DIED_ATTR, REFUSED_ATTR)}
        system_attrs["failed_trial"] = system_attrs.get("failed_trial", trial.number)
        system_attrs["retry_history"] = [*history, trial.number]
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={k: v for k, v in trial.user_attrs.items()
                        if k not in (FAIL_REASON_ATTR, WORKER_ATTR)},
            system_attrs=system_attrs,
        ))


def project_dir(directory: str | os.PathLike | None, project_name: str) -> Path:
    """``{directory}/{project_name}``, KerasTuner's layout (directory defaults to ``.``)."""
    return Path(directory or ".") / project_name


def default_storage_url(project: Path) -> str:
    """The SQLite URL of a project's study database."""
    return f"sqlite:///{(project / STUDY_DB).resolve()}"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for error messages and logs)."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*):.*@", r"\1:***@", url)


def is_journal_url(storage: Any) -> bool:
    """Whether ``storage`` is a journal file URL (``journal:///...`` or a path ending in .log)."""
    return isinstance(storage, str) and (
        storage.startswith(JOURNAL_SCHEME)
        or ("://" not in storage and storage.endswith(JOURNAL_SUFFIX))
    )


def is_redis_url(storage: Any) -> bool:
    """Whether ``storage`` is a Redis URL (a journal on a Redis server)."""
    return isinstance(storage, str) and storage.split("://", 1)[0] in _REDIS_SCHEMES


def supports_heartbeats(storage: Any) -> bool:
    """Whether heartbeats can be recorded in ``storage``: a URL of an RDB storage (SQLite,
    PostgreSQL, MySQL); not journal files or Redis (Optuna 5 keeps none there), and not a storage
    object (its heartbeats are configured on the object)."""
    return isinstance(storage, str) and "://" in storage and not is_journal_url(storage) \
        and not is_redis_url(storage)


def is_sqlite(storage: Any) -> bool:
    """Whether ``storage`` (a URL or a storage) is a SQLite database."""
    if isinstance(storage, optuna.storages._CachedStorage):
        storage = storage._backend
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    return isinstance(url, str) and url.startswith("sqlite")


def warn_sqlite_concurrency(reason: str) -> None:
    """Warn that SQLite is shared by several processes, naming the alternatives."""
    warnings.warn(
        f"{reason} SQLite locks the whole database for every write, so concurrent workers wait "
        f"for each other or fail with 'database is locked'. Use {_ALTERNATIVES} instead; see "
        "docs/distributed.md.",
        SQLiteConcurrencyWarning,
        stacklevel=3,
    )


def make_storage(
    storage: str | optuna.storages.BaseStorage,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int = DEFAULT_MAX_RETRY,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    engine_kwargs: dict[str, Any] | None = None,
) -> optuna.storages.BaseStorage:
    """An Optuna storage from a URL (or a storage, returned as is).

    Args:
        storage: A storage URL (see the module docstring) or an Optuna storage.
        heartbeat_interval: Seconds between heartbeats of a running trial (RDB storages); None
            (default) records none, so crashed trials stay RUNNING.
        grace_period: Seconds without a heartbeat after which a running trial is failed;
            default ``2 * heartbeat_interval``.
        max_retry: Times a trial failed for a missing heartbeat is queued again with the same
            parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``); used with heartbeats.
        connect_timeout: Seconds a database server may take to accept a connection; an
            unreachable server raises :class:`StorageConnectionError` after about this long.
        engine_kwargs: Extra ``sqlalchemy.create_engine`` arguments (override the pool
            settings).

    Raises:
        ValueError: A malformed URL or argument.
        StorageConnectionError: The database server cannot be reached.
    """
    _check_heartbeat_args(heartbeat_interval, grace_period, max_retry)
    if not isinstance(connect_timeout, (int, float)) or isinstance(connect_timeout, bool) or not (
        0 < connect_timeout < math.inf
    ):
        raise ValueError(f"connect_timeout={connect_timeout!r}; expected a number of seconds > 0.")
    if not isinstance(storage, str):
        if not isinstance(storage, optuna.storages.BaseStorage):
            raise ValueError(
                f"storage={storage!r}; expected an Optuna storage URL or an optuna storage object."
            )
        if heartbeat_interval is not None:
            raise ValueError(
                f"heartbeat_interval={heartbeat_interval!r} with a storage object: configure "
                "heartbeats on the object itself (optuna.storages.RDBStorage(url, "
                "heartbeat_interval=..., grace_period=..., heartbeat_stale_trial_callback=...)) "
                "or pass the storage as a URL."
            )
        return storage
    if is_journal_url(storage):
        return _journal_storage(storage, heartbeat_interval)
    if is_redis_url(storage):
        return _redis_storage(storage, heartbeat_interval, connect_timeout)
    if "://" not in storage:
        raise ValueError(
            f"storage={storage!r}; expected an Optuna storage URL such as "
            "'sqlite:///path/study.db', 'postgresql://user@host/db', "
            "'mysql://user@host/db', 'redis://host:6379/0' or 'journal:///path/study.log' "
            "(or a path ending in '.log'), or an optuna storage object."
        )
    return _rdb_storage(storage, heartbeat_interval, grace_period, max_retry, connect_timeout,
                        engine_kwargs or {})


def _check_heartbeat_args(heartbeat_interval, grace_period, max_retry) -> None:
    from optuna_keras_hpo._validation import check_int

    check_int("heartbeat_interval", heartbeat_interval, minimum=1, allow_none=True)
    check_int("grace_period", grace_period, minimum=1, allow_none=True)
    check_int("max_retry", max_retry, minimum=0)
    if grace_period is not None:
        if heartbeat_interval is None:
            raise ValueError(
                f"grace_period={grace_period!r} without heartbeat_interval; expected "
                "heartbeat_interval too (the grace period counts from the last heartbeat)."
            )
        if grace_period <= heartbeat_interval:
            raise ValueError(
                f"grace_period={grace_period!r}; expected more than heartbeat_interval="
                f"{heartbeat_interval!r}, or live trials would be failed between two heartbeats."
            )


def _journal_storage(storage: str, heartbeat_interval: int | None) -> optuna.storages.BaseStorage:
    if storage.startswith(JOURNAL_SCHEME):
        if not storage.startswith(JOURNAL_SCHEME + "/") or len(storage) <= len(JOURNAL_SCHEME) + 1:
            raise ValueError(
                f"storage={storage!r}; expected 'journal:///relative/path.log' or "
                "'journal:////absolute/path.log' (three slashes, then the file's path)."
            )
        path = Path(storage[len(JOURNAL_SCHEME) + 1:])
    else:
        path = Path(storage)
    if heartbeat_interval is not None:
        raise ValueError(
            f"heartbeat_interval={heartbeat_interval!r} with storage={storage!r}: Optuna's "
            "JournalStorage records no heartbeats, so crashed trials cannot be detected there; "
            "use an RDB storage (PostgreSQL, MySQL, SQLite) for heartbeats, or no "
            "heartbeat_interval."
        )
    if path.is_dir() or not path.parent.is_dir():
        raise ValueError(
            f"storage={storage!r}; expected a journal file path whose directory exists "
            f"({str(path.parent)!r} {'is a file path' if path.is_dir() else 'does not exist'})."
        )
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(path)))


def _redis_storage(url: str, heartbeat_interval: int | None,
                   connect_timeout: float) -> optuna.storages.BaseStorage:
    if heartbeat_interval is not None:
        raise ValueError(
            f"heartbeat_interval={heartbeat_interval!r} with storage={mask_url(url)!r}: Optuna's "
            "JournalStorage records no heartbeats; use an RDB storage (PostgreSQL, MySQL, SQLite) "
            "for heartbeats, or no heartbeat_interval."
        )
    try:
        import redis
    except ImportError as error:
        raise ValueError(
            f"storage={mask_url(url)!r}: the Redis driver is not installed ({error}); expected "
            f'`pip install "{_EXTRAS["redis"]}"`.'
        ) from error
    from optuna.storages.journal import JournalRedisBackend, JournalStorage

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=connect_timeout,
                                      socket_timeout=connect_timeout)
        client.ping()
    except ValueError as error:
        raise ValueError(
            f"storage={mask_url(url)!r} is not a valid Redis URL ({error}); expected "
            "'redis://host:6379/0'."
        ) from None
    except redis.exceptions.RedisError as error:
        raise StorageConnectionError(
            f"storage={mask_url(url)!r}: cannot connect to the Redis server ({error}). Expected "
            "a running Redis server there; check the host, port and password."
        ) from error
    finally:
        if "client" in locals():
            client.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return JournalStorage(JournalRedisBackend(url))


def database_url(url: str) -> str:
    """A database URL as SQLAlchemy should open it: one without a driver gets an installed one
    (see :func:`_with_installed_driver`); others are returned as they are."""
    import sqlalchemy

    return _with_installed_driver(sqlalchemy.engine.make_url(url)).render_as_string(
        hide_password=False)


def _with_installed_driver(parsed):
    """A URL without a driver (``postgresql://``, ``mysql://``) with one that is installed:
    SQLAlchemy's default (psycopg 3, mysqlclient) may be missing where the extras installed
    another (PyMySQL) or an older setup has psycopg2."""
    import importlib.util

    backend = parsed.get_backend_name()
    if "+" in parsed.drivername or backend not in _DRIVERS:
        return parsed
    for driver, module in _DRIVERS[backend]:
        if importlib.util.find_spec(module) is not None:
            return parsed.set(drivername=f"{backend}+{driver}")
    raise ValueError(
        f"storage={parsed.render_as_string(hide_password=True)!r}: no {_SERVER_NAMES[backend]} "
        f"driver is installed; expected `pip install \"{_EXTRAS[backend]}\"`."
    )


def _rdb_storage(url, heartbeat_interval, grace_period, max_retry, connect_timeout,
                 engine_kwargs) -> optuna.storages.RDBStorage:
    import sqlalchemy

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception as error:
        raise ValueError(
            f"storage={mask_url(url)!r} is not a valid database URL ({error}); expected "
            "dialect[+driver]://user:password@host:port/database, e.g. "
            "'postgresql://user@127.0.0.1:5432/optuna'."
        ) from None
    parsed = _with_installed_driver(parsed)
    url = parsed.render_as_string(hide_password=False)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend in _SERVER_NAMES:
        kwargs.update(POOL_SETTINGS)
        timeout_arg = _CONNECT_TIMEOUT_ARG.get(parsed.get_driver_name())
        given = {**parsed.query, **engine_kwargs.get("connect_args", {})}
        if timeout_arg and timeout_arg not in given:
            kwargs["connect_args"] = {timeout_arg: max(1, math.ceil(connect_timeout))}
    elif backend == "sqlite":
        _check_sqlite_path(url, parsed)
    kwargs.update(engine_kwargs)
    _probe(url, parsed, kwargs.get("connect_args", {}), connect_timeout)

    callback = RetryDeadWorkerTrial(max_retry) if heartbeat_interval is not None else None
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=dict(kwargs), heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period, heartbeat_stale_trial_callback=callback,
                )
            if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
                _fast_sqlite(storage.engine)
            return storage
        except (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError) as error:
            # Workers starting together on a fresh database race to create Optuna's tables
            # and its version row; the losers find them there on the next attempt.
            if attempt + 1 == _SCHEMA_ATTEMPTS:
                raise _connection_error(url, parsed, connect_timeout, error) from error
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


def _fast_sqlite(engine) -> None:
    """Write-ahead logging with ``synchronous=NORMAL`` on every connection of a SQLite file.

    SQLite's default (a rollback journal, fsync at every commit) made each of the ~30 writes of a
    trial cost 16-24 ms here; with WAL they cost under 1 ms, and readers (the dashboard, other
    processes) no longer block the writer. A commit stays atomic and the database consistent
    after a crash of the process; a power cut can lose the last commits. WAL needs the database
    on a local disk (not a network file system: use PostgreSQL, MySQL or a journal file there).
    """
    import sqlalchemy

    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened while Optuna created its tables get the pragmas too


def _check_sqlite_path(url: str, parsed) -> None:
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    directory = Path(database).parent
    if not directory.is_dir():
        raise ValueError(
            f"storage={url!r}; expected a SQLite file in an existing directory, but "
            f"{str(directory)!r} does not exist (sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db)."
        )


def _probe(url: str, parsed, connect_args: dict, connect_timeout: float) -> None:
    """Connect once, in a daemon thread bounded by ``connect_timeout`` (plus a second): some
    drivers wait without limit for a server that accepts the TCP connection but never answers
    (PyMySQL reads the server's greeting without a timeout)."""
    import sqlalchemy

    outcome: dict[str, BaseException] = {}

    def connect() -> None:
        try:
            engine = sqlalchemy.create_engine(
                url, poolclass=sqlalchemy.pool.NullPool, connect_args=connect_args
            )
            try:
                with engine.connect():
                    pass
            finally:
                engine.dispose()
        except BaseException as error:  # reported to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=connect, name="okh-storage-probe", daemon=True)
    thread.start()
    thread.join(connect_timeout + 1.0)
    if thread.is_alive():
        raise _connection_error(url, parsed, connect_timeout, None)
    error = outcome.get("error")
    if error is None:
        return
    if isinstance(error, sqlalchemy.exc.NoSuchModuleError):
        raise ValueError(
            f"storage={mask_url(url)!r}: unknown database {parsed.drivername!r}; expected "
            "'sqlite:///...', 'postgresql://...' or 'mysql://...' (or "
            "'journal:///path.log')."
        ) from None
    if isinstance(error, ImportError):
        package = {"psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient",
                   "psycopg": _EXTRAS["postgresql"], "pymysql": _EXTRAS["mysql"]}.get(
            error.name, error.name or "the database driver")
        raise ValueError(
            f"storage={mask_url(url)!r}: its database driver is not installed ({error}); "
            f'expected `pip install "{package}"`.'
        ) from error
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        if parsed.get_backend_name() == "sqlite":
            raise ValueError(
                f"storage={url!r}: SQLite cannot open the database "
                f"({getattr(error, 'orig', error)}); expected a writable file path."
            ) from error
        raise _connection_error(url, parsed, connect_timeout, error) from error
    raise error


def _connection_error(url: str, parsed, timeout: float, error: BaseException | None):
    server = _SERVER_NAMES.get(parsed.get_backend_name(), parsed.get_backend_name())
    where = f"{parsed.host or 'localhost'}" + (f":{parsed.port}" if parsed.port else "")
    if error is None:
        cause = f"no answer within {timeout:g} s"
    else:
        cause = " ".join(str(getattr(error, "orig", None) or error).split())
    return StorageConnectionError(
        f"storage={mask_url(url)!r}: cannot connect to the {server} server at {where} ({cause}). "
        f"Expected a running {server} server there that accepts user {parsed.username!r} for "
        f"database {parsed.database!r}; check the host, port, credentials and that the database "
        "exists."
    )


class TrackedStudy(optuna.Study):
    """An Optuna study whose ``ask`` remembers the trial it handed out (``asked_trial_id``) and,
    when the sampler raises while the trial is created (``before_trial``), records the error in
    the trial's ``fail_reason`` and fails it, instead of leaving it RUNNING for ever.

    ``ask`` is Optuna's own, with the creation guarded (it pops a WAITING trial or creates one,
    then builds the ``Trial``, where the sampler's ``before_trial`` runs); the asking process is
    written first (system attribute ``okh:asked_by``), so that a process killed inside ``ask``
    leaves a trial the process check can fail.
    """

    asked_trial_id: int | None = None

    def ask(self, fixed_distributions=None) -> optuna.Trial:
        if fixed_distributions:
            return super().ask(fixed_distributions)
        self._thread_local.cached_all_trials = None
        trial_id = self._pop_waiting_trial_id()
        if trial_id is None:
            trial_id = self._storage.create_new_trial(self._study_id)
        self.asked_trial_id = trial_id
        from optuna_keras_hpo.attrs import ASKED_BY_ATTR, FAIL_REASON_ATTR
        from optuna_keras_hpo.distributed import worker_id

        try:
            self._storage.set_trial_system_attr(trial_id, ASKED_BY_ATTR, worker_id())
            return optuna.Trial(self, trial_id)
        except KeyboardInterrupt:
            raise  # the caller records it (distributed.fail_interrupted)
        except BaseException as error:
            self._storage.set_trial_user_attr(
                trial_id, FAIL_REASON_ATTR,
                f"The sampler failed as the trial was created: {type(error).__name__}: {error}")
            self._storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)
            raise


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    direction: str | Sequence[str] | None,
    overwrite: bool = False,
) -> optuna.Study:
    """Create the study, or load it to resume or to join other workers (after deleting it when
    ``overwrite``). ``direction=None`` takes an existing study's direction (else minimize); a
    list of directions makes a multi-objective study."""
    if overwrite:
        try:
            optuna.delete_study(study_name=study_name, storage=storage)
        except KeyError:
            pass
    directions = [direction] if isinstance(direction, str) else direction
    study = optuna.create_study(
        storage=storage, study_name=study_name,
        directions=list(directions) if directions else ["minimize"], load_if_exists=True,
    )
    found = [d.name.lower() for d in study.directions]
    if directions is not None and found != list(directions):
        raise ValueError(
            f"study_name={study_name!r} already exists in this storage with direction(s) "
            f"{found}, but the objective asks for {list(directions)}; use another study_name "
            "or overwrite=True."
        )
    return TrackedStudy(study_name=study_name, storage=study._storage)


def reset_project(project: Path) -> None:
    """Delete a project's saved models (``overwrite=True``)."""
    shutil.rmtree(project / ARTIFACT_DIR, ignore_errors=True)
