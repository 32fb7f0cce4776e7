import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Database servers for tests of storage=: PostgreSQL and MariaDB on loopback. Under CI=true a
# missing server fails these tests; elsewhere they skip with the reason.
SERVERS = {
    "postgresql": os.environ.get(
        "OKH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("OKH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
REDIS_URL = os.environ.get("OKH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def reachable_server(kind: str) -> str:
    """The URL of a running server of that kind; skips the test (fails it under CI) if none."""
    import sqlalchemy

    from optuna_keras_hpo.storage import database_url

    url = SERVERS[kind]
    try:
        engine = sqlalchemy.create_engine(database_url(url), connect_args={"connect_timeout": 5})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as error:  # no server here
        _missing(f"{kind} server at {url} unreachable: {error}")
    return url


@pytest.fixture
def redis_url():
    """A Redis server's URL (a fresh key prefix is the test's own: see ``redis_prefix``)."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
        client.ping()
        client.close()
    except Exception as error:
        _missing(f"Redis server at {REDIS_URL} unreachable: {error}")
    return REDIS_URL


@pytest.fixture(params=sorted(SERVERS))
def server_url(request):
    """Each database server in turn."""
    return reachable_server(request.param)


@pytest.fixture(scope="session")
def tiny_data():
    """A small imbalanced binary task that a tiny MLP learns within a few epochs."""
    rng = np.random.default_rng(0)
    n = 240
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=n) > 0.8).astype("int32")
    return x[:160], y[:160], x[160:], y[160:]


def script_data():
    """The data of the tuner scripts that tests run in their own processes: (x, y), 160 rows."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.8).astype("int32")
    return x, y


def build_tiny(hp):
    """A build_model(hp) function, as KerasTuner users write them."""
    import keras

    model = keras.Sequential([
        keras.layers.Input(shape=(4,)),
        keras.layers.Dense(hp.Int("units", 4, 12, step=4), activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-1, sampling="log")),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.Recall(name="recall")],
    )
    return model


STORAGE_KINDS = ["sqlite", "journal", "postgresql", "mysql", "redis"]


def each_storage(fast: tuple[str, ...] = ("sqlite",)) -> list:
    """Parameters for ``study_storage`` (``indirect=True``): every storage kind, those not in
    ``fast`` marked slow."""
    return [pytest.param(kind, id=kind, marks=() if kind in fast else pytest.mark.slow)
            for kind in STORAGE_KINDS]


@pytest.fixture
def study_storage(request, tmp_path):
    """``(storage, study_name)`` for a tuner: the default SQLite study (``None``), a journal
    file, PostgreSQL, MariaDB or Redis by the parameter; the study is deleted afterwards."""
    import uuid

    import optuna

    from optuna_keras_hpo.storage import make_storage

    kind = request.param
    if kind == "sqlite":
        url = None
    elif kind == "journal":
        url = f"journal:///{tmp_path / 'study.log'}"
    elif kind == "redis":
        url = request.getfixturevalue("redis_url")
    else:
        url = reachable_server(kind)
    name = f"okh-{uuid.uuid4().hex[:10]}"
    yield url, name
    if url is not None and kind != "journal":
        try:
            optuna.delete_study(study_name=name, storage=make_storage(url))
        except KeyError:
            pass
