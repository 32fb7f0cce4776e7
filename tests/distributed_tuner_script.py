"""A KerasTuner-style script that several processes run on one study (tests/test_distributed.py):
the chief/worker mode without a chief. Each epoch sleeps ``OKH_SLEEP`` seconds after writing the
marker ``{OKH_MARKERS}/{pid}.running``, so the test can kill a process mid-trial.

Usage: python tests/distributed_tuner_script.py STORAGE_URL STUDY_NAME DIRECTORY SEED MAX_TRIALS
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import optuna_keras_hpo.keras_tuner as kt  # noqa: E402
from tests.conftest import build_tiny, script_data  # noqa: E402


class SlowEpochs(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        Path(os.environ["OKH_MARKERS"], f"{os.getpid()}.running").touch()

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(os.environ.get("OKH_SLEEP", "0")))


def main() -> None:
    storage, study_name, directory, seed, max_trials = sys.argv[1:]
    x, y = script_data()
    tuner = kt.RandomSearch(
        build_tiny, objective="val_accuracy", max_trials=int(max_trials), seed=int(seed),
        storage=storage, study_name=study_name, heartbeat_interval=1, grace_period=3,
        max_retry=2, directory=directory, project_name=f"worker{seed}",
    )
    tuner.search(x[:120], y[:120], validation_data=(x[120:], y[120:]), epochs=2, verbose=0,
                 callbacks=[SlowEpochs()])


if __name__ == "__main__":
    main()
