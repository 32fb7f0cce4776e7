import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data():
    """A small imbalanced binary task that a tiny MLP learns within a few epochs."""
    rng = np.random.default_rng(0)
    n = 240
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=n) > 0.8).astype("int32")
    return x[:160], y[:160], x[160:], y[160:]


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
