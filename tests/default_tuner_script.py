"""A KerasTuner-style script with the tuner's default settings (tests/test_faults.py): no
heartbeat, grace-period or retry arguments. Each epoch writes a marker
``{OKH_MARKERS}/{pid}-{n}`` when it begins and sleeps ``OKH_SLEEP`` seconds when it ends, so a
test can kill the process mid-trial.

Usage: python tests/default_tuner_script.py STORAGE STUDY_NAME DIRECTORY SEED MAX_TRIALS
(STORAGE ``-``: the default SQLite study under DIRECTORY.)
"""

import itertools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import optuna_keras_hpo.keras_tuner as kt  # noqa: E402
from tests.conftest import build_tiny  # noqa: E402

_epochs = itertools.count()


class SlowEpochs(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        Path(os.environ["OKH_MARKERS"], f"{os.getpid()}-{next(_epochs)}").touch()

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(os.environ.get("OKH_SLEEP", "0")))


def main() -> None:
    storage, study_name, directory, seed, max_trials = sys.argv[1:]
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.8).astype("int32")
    tuner = kt.RandomSearch(
        build_tiny, objective="val_accuracy", max_trials=int(max_trials), seed=int(seed),
        storage=None if storage == "-" else storage, study_name=study_name,
        directory=directory, project_name="defaults",
    )
    tuner.search(x[:120], y[:120], validation_data=(x[120:], y[120:]), epochs=2, verbose=0,
                 callbacks=[SlowEpochs()])


if __name__ == "__main__":
    main()
