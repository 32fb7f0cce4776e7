"""Ctrl-C and errors at each point of a trial's path (the sampler, the user's build, fit and
callbacks, the model save, the tuner's hooks, Optuna's tell): nothing is left RUNNING, an
interrupted trial runs again when the search resumes (as KerasTuner's), and a resumed search
ends with exactly ``max_trials`` finished trials."""

import keras
import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

import optuna_keras_hpo.keras_tuner as kt
from optuna_keras_hpo.attrs import FAIL_REASON_ATTR
from tests.conftest import build_tiny, each_storage

MAX_TRIALS = 3
BROKEN = 1  # the trial (number) in which the fault happens


class Fault:
    """Raises ``error`` once, at ``where``, in trial ``BROKEN``."""

    def __init__(self, where: str, error: type[BaseException]):
        self.where, self.error, self.fired = where, error, False
        self.trial = None  # the number of the trial running in this process

    def at(self, where: str, number: int | None = None) -> None:
        number = self.trial if number is None else number
        if where == self.where and number == BROKEN and not self.fired:
            self.fired = True
            raise self.error(f"fault at {where}")


class FaultySampler(optuna.samplers.RandomSampler):
    def __init__(self, fault: Fault):
        super().__init__(seed=0)
        self.fault = fault

    def before_trial(self, study, trial):
        self.fault.trial = trial.number
        self.fault.at("ask")
        super().before_trial(study, trial)

    def sample_independent(self, study, trial, name, distribution):
        self.fault.at("suggest")
        return super().sample_independent(study, trial, name, distribution)

    def after_trial(self, study, trial, state, values):
        self.fault.at("tell")
        super().after_trial(study, trial, state, values)


class FaultyStore(FileSystemArtifactStore):
    def __init__(self, path, fault: Fault):
        super().__init__(str(path))
        self.fault = fault

    def write(self, artifact_id, content_body):
        self.fault.at("save")
        super().write(artifact_id, content_body)


class FaultyCallback(keras.callbacks.Callback):
    def __init__(self, fault: Fault):
        super().__init__()
        self.fault = fault

    def on_epoch_end(self, epoch, logs=None):
        self.fault.at("keras_callback")


class FaultyTuner(kt.RandomSearch):
    fault: Fault

    def on_trial_begin(self, trial):
        self.fault.at("on_trial_begin")

    def on_epoch_end(self, trial, model, epoch, logs=None):
        self.fault.at("on_epoch_end")

    def on_trial_end(self, trial):
        self.fault.at("on_trial_end", trial.frozen_trial.number)


def _tuner(fault: Fault, tmp_path, overwrite: bool, study_storage=(None, None)):
    def build(hp):
        model = build_tiny(hp)
        fault.at("build")  # after the hyperparameters are drawn
        return model

    store = tmp_path / "artifacts"
    store.mkdir(exist_ok=True)
    tuner = FaultyTuner(build, objective="val_loss", max_trials=MAX_TRIALS,
                        sampler=FaultySampler(fault), artifact_store=FaultyStore(store, fault),
                        storage=study_storage[0], study_name=study_storage[1],
                        directory=tmp_path, project_name="faults", overwrite=overwrite)
    tuner.fault = fault
    return tuner


def _search(tuner, fault, tiny_data):
    x, y, xv, yv = tiny_data
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0,
                 callbacks=[FaultyCallback(fault)])


IN_A_TRIAL = ["suggest", "build", "keras_callback", "on_trial_begin", "on_epoch_end", "save"]
EVERYWHERE = ["ask", *IN_A_TRIAL, "tell", "on_trial_end"]


@pytest.mark.parametrize("study_storage", each_storage(), indirect=True)
@pytest.mark.parametrize("where", EVERYWHERE)
def test_ctrl_c_anywhere_leaves_nothing_running_and_the_resumed_search_ends_exact(
        where, study_storage, tiny_data, tmp_path):
    fault = Fault(where, KeyboardInterrupt)
    tuner = _tuner(fault, tmp_path, overwrite=True, study_storage=study_storage)
    with pytest.raises(KeyboardInterrupt, match=f"fault at {where}"):
        _search(tuner, fault, tiny_data)
    trials = tuner.study.trials
    assert TrialState.RUNNING not in [t.state for t in trials]
    broken = trials[BROKEN]
    if where in ("tell", "on_trial_end"):  # the trial was trained: it keeps its result
        assert broken.state == TrialState.COMPLETE
    else:
        assert broken.state == TrialState.FAIL
        assert broken.user_attrs[FAIL_REASON_ATTR].startswith("Interrupted (KeyboardInterrupt)")

    # The user runs the script again: the same tuner, resumed (overwrite=False).
    resumed = _tuner(fault, tmp_path, overwrite=False, study_storage=study_storage)
    _search(resumed, fault, tiny_data)
    trials = resumed.study.trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == MAX_TRIALS, states
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states, states
    if where in IN_A_TRIAL and where not in ("suggest", "on_trial_begin"):  # values drawn
        # KerasTuner resumes the interrupted trial: its configuration runs first, and completes.
        assert trials[BROKEN + 1].params == broken.params
        assert trials[BROKEN + 1].state == TrialState.COMPLETE
        assert "runs again when the search resumes" in broken.user_attrs[FAIL_REASON_ATTR]


@pytest.mark.parametrize("study_storage", each_storage(), indirect=True)
@pytest.mark.parametrize("where", ["suggest", "build", "keras_callback", "on_trial_begin",
                                   "on_epoch_end"])
def test_an_error_in_the_users_code_or_callbacks_fails_the_trial_and_the_search_goes_on(
        where, study_storage, tiny_data, tmp_path):
    fault = Fault(where, RuntimeError)
    tuner = _tuner(fault, tmp_path, overwrite=True, study_storage=study_storage)
    _search(tuner, fault, tiny_data)
    trials = tuner.study.trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == MAX_TRIALS and len(trials) == MAX_TRIALS + 1
    assert trials[BROKEN].state == TrialState.FAIL
    assert trials[BROKEN].user_attrs[FAIL_REASON_ATTR] == f"RuntimeError: fault at {where}"


def test_an_error_in_the_samplers_after_trial_keeps_the_recorded_trial(tiny_data, tmp_path):
    fault = Fault("tell", RuntimeError)
    tuner = _tuner(fault, tmp_path, overwrite=True)
    with pytest.warns(RuntimeWarning, match="Trial 1 was recorded .COMPLETE., then Optuna's "
                                            "tell raised RuntimeError: fault at tell"):
        _search(tuner, fault, tiny_data)
    assert [t.state for t in tuner.study.trials] == [TrialState.COMPLETE] * MAX_TRIALS


def test_an_error_in_on_trial_end_stops_the_search_with_the_trial_recorded(tiny_data,
                                                                          tmp_path):
    """As in KerasTuner, an exception from the tuner's ``on_trial_end`` ends ``search``."""
    fault = Fault("on_trial_end", RuntimeError)
    tuner = _tuner(fault, tmp_path, overwrite=True)
    with pytest.raises(RuntimeError, match="fault at on_trial_end"):
        _search(tuner, fault, tiny_data)
    assert [t.state for t in tuner.study.trials] == [TrialState.COMPLETE] * (BROKEN + 1)
