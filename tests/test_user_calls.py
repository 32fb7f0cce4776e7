"""The user's code is called when KerasTuner calls it: ``fit`` only inside trials (trials x
``executions_per_trial`` times over a whole search), ``build`` outside trials only to discover
the space. Each strategy is run with a HyperModel that records every call made to it."""

import keras
import optuna
import pytest
from optuna.trial import TrialState

import optuna_keras_hpo.keras_tuner as kt
from optuna_keras_hpo.distributed import refused

optuna.logging.set_verbosity(optuna.logging.WARNING)


class RecordingHyperModel(kt.HyperModel):
    """A conditional hyperparameter in ``build``, one declared in ``fit``; every call recorded.

    ``fit`` does what user code does: it reads the training history (an empty History, as a
    dry run would give, raises) and it declares the batch size.
    """

    def __init__(self):
        super().__init__()
        self.builds = 0
        self.fit_calls = 0  # counted on entry: a call that raises counts too
        self.fits: list[dict] = []

    def build(self, hp):
        self.builds += 1
        optimizer = hp.Choice("optimizer", ["adam", "lion"])
        with hp.conditional_scope("optimizer", ["lion"]):
            beta = hp.Choice("beta_1", [0.8, 0.9])
        model = keras.Sequential([
            keras.layers.Input(shape=(4,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ])
        opt = (keras.optimizers.Lion(0.01, beta_1=beta) if optimizer == "lion"
               else keras.optimizers.Adam(0.01))
        model.compile(optimizer=opt, loss="binary_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, *args, **kwargs):
        self.fit_calls += 1
        batch_size = hp.Choice("batch_size", [16, 32])
        history = model.fit(*args, batch_size=batch_size, **kwargs)
        final_loss = history.history["loss"][-1]  # raises on an untrained model's History
        self.fits.append({**hp.values, "loss": final_loss})
        return history


def _point(values: dict) -> str:
    return str(dict(sorted((k, v) for k, v in values.items() if k != "loss")))


# (1 + 2 optimizer branches) x 2 batch sizes.
FULL_GRID = sorted(map(_point, [
    {"optimizer": "adam", "batch_size": b} for b in (16, 32)
] + [
    {"optimizer": "lion", "beta_1": beta, "batch_size": b} for beta in (0.8, 0.9) for b in (16, 32)
]))


def _ran(study) -> list:
    """The trials that ran the user's code (not the ones refused at admission)."""
    return [t for t in study.trials if not refused(t)]


def _assert_fit_once_per_execution(model: RecordingHyperModel, tuner, executions: int = 1):
    ran = _ran(tuner.study)
    assert model.fit_calls == len(model.fits) == len(ran) * executions
    # Each call belongs to a trial: the values fit saw are a trial's values.
    seen = sorted(_point(f) for f in model.fits)
    recorded = sorted(_point(t.user_attrs["hyperparameters"]) for t in ran
                      for _ in range(executions))
    assert seen == recorded


def _search(tuner, data, **kwargs):
    x, y, xv, yv = data
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0, **kwargs)


def test_constructing_a_tuner_builds_but_never_fits(tmp_path):
    model = RecordingHyperModel()
    tuner = kt.RandomSearch(model, objective="val_loss", max_trials=2, directory=tmp_path,
                            project_name="init", overwrite=True)
    assert model.fit_calls == 0
    assert model.builds == 2  # once per conditional branch, as KerasTuner
    assert [hp.name for hp in tuner.hyperparameters.space] == ["optimizer", "beta_1"]


def test_random_search_fits_once_per_trial_and_execution(tiny_data, tmp_path):
    model = RecordingHyperModel()
    tuner = kt.RandomSearch(model, objective="val_loss", max_trials=4, executions_per_trial=2,
                            seed=0, directory=tmp_path, project_name="random", overwrite=True)
    _search(tuner, tiny_data)
    assert len(_ran(tuner.study)) == 4
    _assert_fit_once_per_execution(model, tuner, executions=2)
    points = [_point(t.user_attrs["hyperparameters"]) for t in tuner.study.trials]
    assert len(set(points)) == 4  # a finite space: no configuration twice
    # batch_size joined the space when the first trial declared it in fit.
    assert "batch_size" in [hp.name for hp in tuner.hyperparameters.space]


def test_grid_search_takes_fit_declared_hyperparameters_from_the_first_trial(tiny_data,
                                                                              tmp_path):
    model = RecordingHyperModel()
    tuner = kt.GridSearch(model, objective="val_loss", seed=3, directory=tmp_path,
                          project_name="grid", overwrite=True)
    _search(tuner, tiny_data)
    trials = tuner.study.trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    points = sorted(_point(t.user_attrs["hyperparameters"]) for t in trials)
    assert points == FULL_GRID  # every point of the grown grid, none twice
    assert trials[0].params["batch_size"] == 16  # first declared: its default (KerasTuner's)
    _assert_fit_once_per_execution(model, tuner)
    assert tuner.remaining_trials == 0


def test_grid_search_resumes_without_repeating_or_refitting(tiny_data, tmp_path):
    first_model = RecordingHyperModel()
    first = kt.GridSearch(first_model, objective="val_loss", max_trials=3, seed=1,
                          directory=tmp_path, project_name="resume", overwrite=True)
    _search(first, tiny_data)
    assert first_model.fit_calls == len(first_model.fits) == 3
    # A new process: the space fit declared is read back from the study, not from a dry fit.
    second_model = RecordingHyperModel()
    second = kt.GridSearch(second_model, objective="val_loss", seed=2, directory=tmp_path,
                           project_name="resume")
    assert second_model.fit_calls == 0
    assert "batch_size" in [hp.name for hp in second.hyperparameters.space]
    assert "batch_size" in [hp.name for hp in second.oracle.get_space().space]
    assert second.remaining_trials == 3
    _search(second, tiny_data)
    assert second_model.fit_calls == 3
    points = sorted(_point(t.user_attrs["hyperparameters"]) for t in second.study.trials)
    assert points == FULL_GRID
    assert second.remaining_trials == 0
    # A finished search run again trains nothing.
    _search(second, tiny_data)
    assert second_model.fit_calls == 3 and len(second.study.trials) == 6


def test_bayesian_optimization_fits_once_per_trial(tiny_data, tmp_path):
    model = RecordingHyperModel()
    tuner = kt.BayesianOptimization(model, objective="val_loss", max_trials=4,
                                    num_initial_points=2, seed=0, directory=tmp_path,
                                    project_name="bo", overwrite=True)
    _search(tuner, tiny_data)
    assert len(tuner.study.trials) == 4
    _assert_fit_once_per_execution(model, tuner)


def test_hyperband_fits_once_per_trial_pruned_or_not(tiny_data, tmp_path):
    model = RecordingHyperModel()
    tuner = kt.Hyperband(model, objective="val_loss", max_epochs=3, factor=3, max_trials=5,
                         seed=0, directory=tmp_path, project_name="hb", overwrite=True)
    x, y, xv, yv = tiny_data
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    assert len(tuner.study.trials) == 5
    _assert_fit_once_per_execution(model, tuner)


def test_a_failing_fit_is_called_once_per_trial_and_recorded(tiny_data, tmp_path):
    class Failing(RecordingHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            self.fits.append(dict(hp.values))
            raise RuntimeError("tracker unavailable")

    model = Failing()
    tuner = kt.RandomSearch(model, objective="val_loss", max_trials=3, seed=0,
                            max_consecutive_failed_trials=None, directory=tmp_path,
                            project_name="failing", overwrite=True)
    _search(tuner, tiny_data)
    assert len(model.fits) == 3
    assert all(t.state == TrialState.FAIL for t in tuner.study.trials)
    assert all("tracker unavailable" in t.user_attrs["fail_reason"] for t in tuner.study.trials)


@pytest.mark.parametrize("executions", [1, 2])
def test_custom_run_trial_calls_are_the_users_own(tiny_data, tmp_path, executions):
    """A tuner subclass overriding run_trial: fit is called only where the override calls it."""
    model = RecordingHyperModel()

    class MyTuner(kt.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            built = self.hypermodel.build(hp)
            return self.hypermodel.fit(hp, built, *args, **kwargs)

    tuner = MyTuner(model, objective="val_loss", max_trials=2, seed=0,
                    executions_per_trial=executions, directory=tmp_path,
                    project_name=f"custom{executions}", overwrite=True)
    _search(tuner, tiny_data)
    assert model.fit_calls == 2  # the override trains once per trial whatever executions says


def test_failed_trial_error_fails_the_trial_without_retrying(tiny_data, tmp_path):
    class Refusing(RecordingHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            self.fit_calls += 1
            raise kt.errors.FailedTrialError("too slow")

    model = Refusing()
    tuner = kt.RandomSearch(model, objective="val_loss", max_trials=2, seed=0,
                            max_retries_per_trial=2, max_consecutive_failed_trials=None,
                            directory=tmp_path, project_name="refusing", overwrite=True)
    _search(tuner, tiny_data)
    trials = tuner.study.trials
    # Not retried; the search went on (a failed trial does not use up max_trials) until each of
    # the 3 configurations (this fit declares no batch size) had failed once.
    assert model.fit_calls == len(trials) == 3
    assert all(t.state == TrialState.FAIL for t in trials)
    assert all(t.user_attrs["fail_reason"] == "FailedTrialError: too slow" for t in trials)


def test_fatal_error_stops_the_search(tiny_data, tmp_path):
    class Broken(RecordingHyperModel):
        def build(self, hp):
            model = super().build(hp)
            if self.builds > 2:  # the two space-discovery builds pass
                raise kt.errors.FatalValueError("wrong input shape")
            return model

    model = Broken()
    tuner = kt.RandomSearch(model, objective="val_loss", max_trials=3, seed=0,
                            max_retries_per_trial=2, directory=tmp_path, project_name="fatal",
                            overwrite=True)
    with pytest.raises(kt.errors.FatalValueError, match="wrong input shape"):
        _search(tuner, tiny_data)
    assert len(tuner.study.trials) == 1 and model.builds == 3  # no retry, no second trial
    assert tuner.study.trials[0].state == TrialState.FAIL
