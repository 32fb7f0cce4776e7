"""A KerasTuner-style script with the tuner's default settings (tests/test_faults.py): no
heartbeat, grace-period or retry arguments. Each epoch writes a marker
``{OKH_MARKERS}/{pid}-{n}`` when it begins and sleeps ``OKH_SLEEP`` seconds when it ends, so a
test can kill the process mid-trial. ``OKH_PAUSE=moment:N`` stops the process for good at one
moment of trial N (``moment:first``: of the first trial this process runs), after writing the
marker ``{OKH_MARKERS}/paused-{pid}``: ``ask`` (inside the sampler), ``fit``, ``save`` (while
the model is written to the artifact store) or ``told`` (after the trial is recorded, before
the next ``ask``). ``OKH_TUNER=grid`` runs ``GridSearch`` on a grid of 6 points instead of
``RandomSearch``.

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
import optuna  # noqa: E402
from optuna.artifacts import FileSystemArtifactStore  # noqa: E402

import optuna_keras_hpo.keras_tuner as kt  # noqa: E402
from tests.conftest import build_tiny, script_data  # noqa: E402

_epochs = itertools.count()
_moment, _, _number = os.environ.get("OKH_PAUSE", ":").partition(":")
_trial = {"number": None}


def pause_at(moment: str, number: int | None) -> None:
    if moment != _moment or number is None:
        return
    if number == (_trial.get("first") if _number == "first" else int(_number)):
        Path(os.environ["OKH_MARKERS"], f"paused-{os.getpid()}").touch()
        time.sleep(600)


class PausingSampler(optuna.samplers.RandomSampler):
    def before_trial(self, study, trial):
        _trial["number"] = trial.number
        _trial.setdefault("first", trial.number)
        pause_at("ask", trial.number)
        super().before_trial(study, trial)


class PausingGridSearch(kt.GridSearch):
    """GridSearch whose grid sampler pauses inside ``ask`` as ``PausingSampler`` does."""

    def _default_sampler(self):
        sampler = super()._default_sampler()
        before_trial = sampler.before_trial

        def pausing_before_trial(study, trial):
            _trial["number"] = trial.number
            _trial.setdefault("first", trial.number)
            pause_at("ask", trial.number)
            before_trial(study, trial)

        sampler.before_trial = pausing_before_trial
        return sampler


def build_grid(hp):
    """A grid of 3 x 2 points."""
    model = keras.Sequential([
        keras.layers.Input(shape=(4,)),
        keras.layers.Dense(hp.Choice("units", [4, 8, 12]), activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [0.01, 0.1])),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model


class PausingStore(FileSystemArtifactStore):
    def write(self, artifact_id, content_body):
        pause_at("save", _trial["number"])
        super().write(artifact_id, content_body)


class SlowEpochs(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        Path(os.environ["OKH_MARKERS"], f"{os.getpid()}-{next(_epochs)}").touch()
        pause_at("fit", _trial["number"])

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(os.environ.get("OKH_SLEEP", "0")))


def main() -> None:
    storage, study_name, directory, seed, max_trials = sys.argv[1:]
    x, y = script_data()
    grid = os.environ.get("OKH_TUNER") == "grid"
    extra = {}
    if _moment:  # the pausing pieces, else the tuner's defaults
        store = Path(directory, "defaults", "artifacts")
        store.mkdir(parents=True, exist_ok=True)
        extra = dict(artifact_store=PausingStore(str(store)))
        if not grid:
            extra["sampler"] = PausingSampler(seed=int(seed))
    tuner_class = (PausingGridSearch if _moment else kt.GridSearch) if grid else kt.RandomSearch
    tuner = tuner_class(
        build_grid if grid else build_tiny, objective="val_accuracy",
        max_trials=int(max_trials), seed=int(seed),
        storage=None if storage == "-" else storage, study_name=study_name,
        directory=directory, project_name="defaults", **extra,
    )
    tuner.on_trial_end = lambda trial: pause_at("told", trial.frozen_trial.number)
    tuner.search(x[:120], y[:120], validation_data=(x[120:], y[120:]), epochs=2, verbose=0,
                 callbacks=[SlowEpochs()])


if __name__ == "__main__":
    main()
