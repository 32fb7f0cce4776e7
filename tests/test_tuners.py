"""The KerasTuner facade end to end: real Keras models, real Optuna studies on SQLite."""

import json
import math

import keras
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import optuna_keras_hpo.keras_tuner as kt
from optuna_keras_hpo import TrialHyperParameters
from optuna_keras_hpo.samplers import GaussianProcessSampler
from tests.conftest import build_tiny

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TinyHyperModel(kt.HyperModel):
    """The article's shape: build() declares the model, fit() declares batch size and epochs."""

    def build(self, hp):
        return build_tiny(hp)

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]),
                         epochs=hp.Int("epochs", 2, 3), verbose=0, **kwargs)


def test_article_script_shape_records_everything_in_the_study(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    tuner = kt.BayesianOptimization(
        hypermodel=TinyHyperModel(),
        objective=kt.Objective("val_recall", direction="max"),
        max_trials=4, num_initial_points=2, executions_per_trial=1,
        directory=tmp_path, project_name="fraud", overwrite=True, seed=1,
    )
    assert isinstance(tuner.study.sampler, optuna.samplers.BaseSampler)
    tuner.search(x, y, validation_data=(xv, yv),
                 callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)])
    assert isinstance(tuner.study.sampler, GaussianProcessSampler)
    assert tuner.study.sampler.n_startup_trials == 2

    study = optuna.load_study(study_name="fraud",
                              storage=f"sqlite:///{tmp_path}/fraud/study.db")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4
    for t in trials:
        assert set(t.params) == {"units", "learning_rate", "batch_size", "epochs"}
        assert t.params["units"] in (4, 8, 12)
        assert {"val_recall", "val_loss", "recall", "accuracy", "val_accuracy"} <= set(t.user_attrs)
        assert len(t.intermediate_values) == t.params["epochs"]  # the learning curve
        assert max(t.intermediate_values.values()) == pytest.approx(t.value)
        assert t.user_attrs["val_recall"] == pytest.approx(t.value)

    best_hp = tuner.get_best_hyperparameters(num_trials=1)[0]
    best_trial = tuner.oracle.get_best_trials(1)[0]
    assert best_trial.score == max(t.value for t in trials)
    assert best_hp.values == best_trial.hyperparameters.values
    assert best_hp.get("units") == best_trial.frozen_trial.params["units"]

    best_model = tuner.get_best_models(num_models=1)[0]
    assert best_model.layers[0].units == best_hp["units"]
    reported = best_model.evaluate(xv, yv, verbose=0, return_dict=True)
    assert reported["recall"] == pytest.approx(best_trial.score, abs=1e-6)
    assert reported["loss"] == pytest.approx(best_trial.metrics["val_loss"], rel=1e-4)


def test_summaries_print_like_keras_tuner(tiny_data, tmp_path, capsys):
    x, y, xv, yv = tiny_data
    tuner = kt.RandomSearch(TinyHyperModel(), objective="val_accuracy", max_trials=2,
                            directory=tmp_path, project_name="p", seed=0)
    tuner.search_space_summary()
    out = capsys.readouterr().out
    assert "Default search space size: 2" in out and "units (Int)" in out
    tuner.search(x, y, validation_data=(xv, yv))
    out = capsys.readouterr().out
    assert "Best val_accuracy So Far" in out and "Trial 01 Completed" in out
    tuner.search_space_summary()
    assert "batch_size (Choice)" in capsys.readouterr().out  # fit's declarations are recorded
    tuner.results_summary(num_trials=1)
    out = capsys.readouterr().out
    assert 'Objective(name="val_accuracy", direction="max")' in out
    assert "Score:" in out and out.count("summary") == 2


def test_resume_runs_only_the_missing_trials(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    common = dict(objective="val_accuracy", directory=tmp_path, project_name="resume", seed=0)
    first = kt.RandomSearch(build_tiny, max_trials=2, overwrite=True, **common)
    first.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert len(first.study.trials) == 2
    second = kt.RandomSearch(build_tiny, max_trials=3, overwrite=False, **common)
    second.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert [t.number for t in second.study.trials] == [0, 1, 2]
    again = kt.RandomSearch(build_tiny, max_trials=3, overwrite=False, **common)
    again.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert len(again.study.trials) == 3  # nothing left to run
    fresh = kt.RandomSearch(build_tiny, max_trials=1, overwrite=True, **common)
    assert len(fresh.study.trials) == 0


def test_grid_search_visits_each_point_once(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data

    def build(hp):
        hp.Choice("optimizer", ["adam", "sgd"])
        return build_tiny(hp)

    fixed = kt.HyperParameters()
    fixed.Fixed("learning_rate", 0.01)
    tuner = kt.GridSearch(build, objective="val_accuracy", hyperparameters=fixed,
                          directory=tmp_path, project_name="grid", overwrite=True)
    assert tuner.grid() == {"optimizer": ["adam", "sgd"], "units": [4, 8, 12]}
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    points = [(t.params["units"], t.params["optimizer"]) for t in tuner.study.trials]
    assert sorted(points) == sorted((u, o) for u in (4, 8, 12) for o in ("adam", "sgd"))
    assert all(t.user_attrs["hyperparameters"]["learning_rate"] == 0.01
               for t in tuner.study.trials)
    # Resuming a finished grid runs nothing more.
    again = kt.GridSearch(build, objective="val_accuracy", hyperparameters=fixed,
                          directory=tmp_path, project_name="grid")
    again.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert len(again.study.trials) == 6


@pytest.mark.parametrize("strategy", ["grid", "finite_random"])
def test_a_trial_created_after_another_worker_took_its_queued_point_is_refused(
        strategy, tiny_data, tmp_path):
    """Two workers on one grid: this one queues a point, another worker's ``ask`` takes it (and
    runs it), so this worker's ``ask`` creates a trial without a point. That trial is refused
    at admission instead of running some point on its own (a point run twice)."""
    x, y, xv, yv = tiny_data
    stolen = []

    def build(hp):
        hp.Choice("units", [4, 8])
        hp.Choice("learning_rate", [0.01, 0.1])
        return build_tiny(hp)

    base = kt.GridSearch if strategy == "grid" else kt.RandomSearch

    class RacedTuner(base):
        def _prepare_trial(self):
            ready = super()._prepare_trial()
            if not stolen:  # the other worker, between this worker's enqueue and its ask
                other = optuna.load_study(study_name=self.study_name,
                                          storage=self.study._storage)
                trial = other.ask()
                stolen.append(trial.number)
                other.tell(trial, 0.5)
            return ready

    tuner = RacedTuner(build, objective="val_accuracy", max_trials=4, seed=0,
                       directory=tmp_path, project_name=strategy, overwrite=True)
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    trials = tuner.study.trials
    refused = trials[stolen[0] + 1]
    assert refused.state == TrialState.FAIL
    assert "holds no point of the grid" in refused.user_attrs["fail_reason"]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    points = [json.dumps(t.system_attrs["fixed_params"], sort_keys=True) for t in complete]
    assert len(complete) == 4 and len(set(points)) == 4  # every point once


def test_grid_search_includes_hyperparameters_declared_in_fit(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    fixed = kt.HyperParameters()
    fixed.Fixed("learning_rate", 0.01)
    fixed.Fixed("units", 4)
    tuner = kt.GridSearch(TinyHyperModel(), objective="val_accuracy", hyperparameters=fixed,
                          directory=tmp_path, project_name="gridfit", overwrite=True)
    tuner.search(x, y, validation_data=(xv, yv))
    assert tuner.grid() == {"batch_size": [16, 32], "epochs": [2, 3]}
    points = sorted((t.params["batch_size"], t.params["epochs"]) for t in tuner.study.trials)
    assert points == [(16, 2), (16, 3), (32, 2), (32, 3)]


def test_hyperband_prunes_with_epochs_as_resource(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    keras.utils.set_random_seed(0)  # the same learning curves every run, so the same pruning
    tuner = kt.Hyperband(build_tiny, objective="val_loss", max_epochs=9, factor=3,
                         directory=tmp_path, project_name="hb", overwrite=True, seed=0,
                         max_trials=8)
    assert isinstance(tuner.study.pruner, optuna.pruners.HyperbandPruner)
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    trials = tuner.study.trials
    assert len(trials) == 8
    assert max(len(t.intermediate_values) for t in trials) == 9  # epochs overridden
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(len(t.intermediate_values) < 9 for t in pruned)
    assert kt.Hyperband(build_tiny, objective="val_loss", max_epochs=100, factor=3,
                        directory=tmp_path, project_name="hb2").max_trials == 143


def test_failed_and_nan_trials_are_recorded_and_the_search_goes_on(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data

    def build(hp):
        units = hp.Int("units", 4, 12, step=4)
        if units == 8:
            raise RuntimeError("units=8 is broken on purpose")
        model = build_tiny(hp)
        if units == 12:
            model.compile(optimizer="adam", loss=lambda yt, yp: yp * np.nan,
                          metrics=["accuracy"])
        return model

    tuner = kt.GridSearch(build, objective="val_loss", directory=tmp_path, project_name="f",
                          overwrite=True, max_trials=6, max_consecutive_failed_trials=5,
                          hyperparameters=_fixed(learning_rate=0.01))
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    states = {t.params["units"]: t for t in tuner.study.trials}
    assert states[4].state == TrialState.COMPLETE
    assert states[8].state == TrialState.FAIL
    assert "units=8 is broken" in states[8].user_attrs["fail_reason"]
    assert states[12].state == TrialState.FAIL
    assert "nan" in states[12].user_attrs["fail_reason"]


def test_consecutive_failures_stop_the_search_quoting_the_cause(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    calls = []

    def build(hp):
        hp.Int("units", 1, 4)
        if isinstance(hp, TrialHyperParameters):
            calls.append(1)
        raise ValueError("no GPU named 'potato'")

    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=5, directory=tmp_path,
                            project_name="c", overwrite=True, max_retries_per_trial=1,
                            max_consecutive_failed_trials=2)
    with pytest.raises(RuntimeError, match="2 consecutive trials failed.*potato"):
        tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    assert len(calls) == 4  # 2 trials x (1 run + 1 retry)
    assert [t.state for t in tuner.study.trials] == [TrialState.FAIL] * 2


def test_a_retry_that_succeeds_completes_the_trial(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    attempts = []

    def build(hp):
        if isinstance(hp, TrialHyperParameters):
            attempts.append(hp.Int("units", 4, 12, step=4))
        if len(attempts) == 1:
            raise RuntimeError("transient")
        return build_tiny(hp)

    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=1, directory=tmp_path,
                            project_name="r", overwrite=True, max_retries_per_trial=2)
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert tuner.study.trials[0].state == TrialState.COMPLETE
    assert len(attempts) == 2 and attempts[0] == attempts[1]  # the same values, retried


def test_fit_may_return_a_dict_or_a_float(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data

    class DictModel(kt.HyperModel):
        def build(self, hp):
            return build_tiny(hp)

        def fit(self, hp, model, x, y, validation_data, **kwargs):
            model.fit(x, y, epochs=1, verbose=0)
            return model.evaluate(*validation_data, verbose=0, return_dict=True)

    tuner = kt.RandomSearch(DictModel(), objective=kt.Objective("loss", "min"), max_trials=2,
                            directory=tmp_path, project_name="d", overwrite=True)
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    assert all(t.value == t.user_attrs["loss"] for t in tuner.study.trials)

    class FloatModel(kt.HyperModel):
        def build(self, hp):
            return build_tiny(hp)

        def fit(self, hp, model, *args, **kwargs):
            return float(hp.get("units"))

    tuner = kt.RandomSearch(FloatModel(), max_trials=2, directory=tmp_path,
                            project_name="fl", overwrite=True, seed=0)
    tuner.search(x, y, verbose=0)
    assert tuner.study.direction == optuna.study.StudyDirection.MINIMIZE
    assert [t.value for t in tuner.study.trials] == [t.params["units"]
                                                    for t in tuner.study.trials]


def test_executions_per_trial_average_and_early_stopping(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    tuner = kt.RandomSearch(build_tiny, objective="val_loss", max_trials=1,
                            executions_per_trial=2, directory=tmp_path, project_name="e",
                            overwrite=True, seed=0)
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    tuner.search(x, y, validation_data=(xv, yv), epochs=20, verbose=0, callbacks=[stopper])
    trial = tuner.study.trials[0]
    assert len(trial.intermediate_values) == 2  # EarlyStopping ended training after 2 epochs
    assert stopper.model is None  # the user's callback is copied, not consumed


def test_bad_arguments_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="max_trials=0; expected an integer >= 1"):
        kt.RandomSearch(build_tiny, objective="val_loss", max_trials=0, directory=tmp_path)
    with pytest.raises(ValueError, match="executions_per_trial='2'"):
        kt.RandomSearch(build_tiny, objective="val_loss", executions_per_trial="2",
                        directory=tmp_path)
    with pytest.raises(ValueError, match="hypermodel=42"):
        kt.RandomSearch(42, objective="val_loss", directory=tmp_path)
    with pytest.raises(ValueError, match="storage='postgres-server'"):
        kt.RandomSearch(build_tiny, objective="val_loss", storage="postgres-server")


def test_storage_url_and_study_name(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    url = f"sqlite:///{tmp_path}/shared.db"
    tuner = kt.RandomSearch(build_tiny, objective="val_accuracy", max_trials=1, storage=url,
                            study_name="mine", directory=tmp_path, project_name="s")
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert optuna.get_all_study_names(url) == ["mine"]
    assert math.isfinite(optuna.load_study(study_name="mine", storage=url).best_value)


def _fixed(**values):
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


def test_grid_search_with_a_conditional_hyperparameter_runs_no_duplicates(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data

    def build(hp):
        optimizer = hp.Choice("optimizer", ["adam", "lion"])
        with hp.conditional_scope("optimizer", ["lion"]):
            beta = hp.Choice("beta_1", [0.8, 0.9])
        model = build_tiny(hp)
        if optimizer == "lion":
            model.compile(optimizer=keras.optimizers.Lion(beta_1=beta), loss="binary_crossentropy")
        return model

    tuner = kt.GridSearch(build, objective="val_loss",
                          hyperparameters=_fixed(learning_rate=0.01, units=4),
                          directory=tmp_path, project_name="cond", overwrite=True)
    assert sorted(map(str, tuner.grid_points())) == sorted(map(str, [
        {"optimizer": "adam"},
        {"optimizer": "lion", "beta_1": 0.8},
        {"optimizer": "lion", "beta_1": 0.9},
    ]))
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    configs = sorted(str(sorted(t.params.items())) for t in tuner.study.trials)
    assert len(tuner.study.trials) == 3 and len(set(configs)) == 3
    assert all(t.state == TrialState.COMPLETE for t in tuner.study.trials)


def test_constraints_from_the_metrics_are_set_on_each_trial(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    tuner = kt.RandomSearch(build_tiny, objective="val_loss", max_trials=2, seed=0,
                            directory=tmp_path, project_name="constrained", overwrite=True,
                            constraints=lambda m: {"accuracy_floor": 0.9 - m["val_accuracy"]})
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    for t in tuner.study.trials:
        assert t.constraints["accuracy_floor"] == pytest.approx(
            0.9 - t.user_attrs["val_accuracy"])
    with pytest.raises(ValueError, match="constraints="):
        kt.RandomSearch(build_tiny, objective="val_loss", directory=tmp_path,
                        project_name="bad", constraints=0.5)


def test_a_pareto_objective_makes_a_multi_objective_study(tiny_data, tmp_path):
    from optuna_keras_hpo import ParetoObjective

    x, y, xv, yv = tiny_data
    objective = ParetoObjective([kt.Objective("val_recall", "max"), "val_loss"])
    tuner = kt.RandomSearch(build_tiny, objective=objective, max_trials=4, seed=0,
                            directory=tmp_path, project_name="pareto", overwrite=True)
    tuner.search(x, y, validation_data=(xv, yv), epochs=3, verbose=0)
    study = tuner.study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(completed) == 4
    for t in completed:  # scored at the last epoch, every metric kept
        assert t.values == [t.user_attrs["val_recall"], t.user_attrs["val_loss"]]
        assert t.user_attrs["best_epoch"] == 2
    best = tuner.oracle.get_best_trials(10)
    front = {t.number for t in study.best_trials}
    assert {int(t.trial_id) for t in best} == front
    assert [t.score[0] for t in best] == sorted((t.score[0] for t in best), reverse=True)
    model = tuner.get_best_models(1)[0]
    assert model.count_params() > 0
    with pytest.raises(ValueError, match="cannot prune multi-objective"):
        kt.RandomSearch(build_tiny, objective=objective, directory=tmp_path,
                        project_name="pruned", pruner=optuna.pruners.MedianPruner())
    with pytest.raises(ValueError, match="two or more"):
        ParetoObjective(["val_recall"])


def test_a_list_objective_ranks_trials_as_keras_tuner_does(tiny_data, tmp_path):
    """KerasTuner's list objective: one score, the sum of the metrics signed by direction."""
    from keras_tuner.src.engine.objective import create_objective as kerastuner_objective

    x, y, xv, yv = tiny_data
    known = {4: {"val_loss": 0.5, "val_recall": 0.9},  # -0.4: the best
             8: {"val_loss": 0.3, "val_recall": 0.2},  # +0.1
             12: {"val_loss": 0.2, "val_recall": 0.5}}  # -0.3

    class Known(kt.HyperModel):
        def build(self, hp):
            return build_tiny(hp)

        def fit(self, hp, model, *args, **kwargs):
            return dict(known[hp.get("units")])

    listed = ["val_loss", kt.Objective("val_recall", "max")]
    reference = kerastuner_objective(["val_loss",
                                      __import__("keras_tuner").Objective("val_recall", "max")])
    tuner = kt.GridSearch(Known(), objective=listed, directory=tmp_path, project_name="multi",
                          overwrite=True,
                          hyperparameters=_fixed_learning_rate())
    tuner.search(x, y, verbose=0)
    assert tuner.study.direction == optuna.study.StudyDirection.MINIMIZE
    for t in tuner.study.trials:  # the score is KerasTuner's, and each metric is stored
        metrics = known[t.params["units"]]
        assert t.value == pytest.approx(reference.get_value(metrics))
        assert t.user_attrs["val_loss"] == metrics["val_loss"]
        assert t.user_attrs["val_recall"] == metrics["val_recall"]
    best = tuner.get_best_hyperparameters(3)
    assert [hp.get("units") for hp in best] == [4, 12, 8]

    # With real training: the best epoch is the one with the best sum.
    tuner = kt.RandomSearch(build_tiny, objective=listed, max_trials=2, seed=0,
                            directory=tmp_path, project_name="multi_fit", overwrite=True)
    tuner.search(x, y, validation_data=(xv, yv), epochs=3, verbose=0)
    for t in tuner.study.trials:
        assert t.value == pytest.approx(t.user_attrs["val_loss"] - t.user_attrs["val_recall"])


def _fixed_learning_rate():
    hp = kt.HyperParameters()
    hp.Fixed("learning_rate", 0.01)
    return hp


def test_remaining_trials_counts_down_to_zero_and_a_second_search_runs_nothing(tiny_data,
                                                                                tmp_path):
    x, y, xv, yv = tiny_data
    tuner = kt.RandomSearch(build_tiny, objective="val_loss", max_trials=3, seed=0,
                            directory=tmp_path, project_name="remaining", overwrite=True)
    assert tuner.remaining_trials == 3 == tuner.oracle.remaining_trials()
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert tuner.remaining_trials == 0
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert len(tuner.study.trials) == 3
    unbounded = kt.RandomSearch(build_tiny, objective="val_loss", max_trials=None,
                                directory=tmp_path, project_name="unbounded", overwrite=True)
    assert unbounded.remaining_trials is None


def test_random_search_runs_each_configuration_of_a_finite_space_once_then_stops(tiny_data,
                                                                                 tmp_path):
    x, y, xv, yv = tiny_data

    def three_points(hp):
        import keras

        model = keras.Sequential([
            keras.layers.Input(shape=(4,)),
            keras.layers.Dense(hp.Choice("units", [2, 4, 8]), activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        return model

    tuner = kt.RandomSearch(three_points, objective="val_loss", max_trials=10, seed=1,
                            directory=tmp_path, project_name="three", overwrite=True)
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    trials = tuner.study.trials
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.params["units"] for t in trials) == [2, 4, 8]
    assert tuner.remaining_trials == 7  # the budget is not spent: the space is
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)  # resumed: nothing new
    assert len(tuner.study.trials) == 3
    # A continuous hyperparameter: an infinite space, searched at random up to max_trials.
    tuner = kt.RandomSearch(build_tiny, objective="val_loss", max_trials=4, seed=1,
                            directory=tmp_path, project_name="infinite", overwrite=True)
    tuner.search(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert len(tuner.study.trials) == 4


def test_bayesian_optimization_lets_the_gp_choose_most_of_the_budget(tmp_path):
    """The article's 8-dimensional space, max_trials=30: 10 random trials, the GP chooses 20
    (KerasTuner's 3 x dimensions would leave it 6); num_initial_points still decides."""
    from optuna_keras_hpo import fraud
    from optuna_keras_hpo.samplers import default_num_initial_points

    data = fraud.load_data(n_rows=200)

    class Article(fraud.FraudHyperModel):
        def fit(self, hp, model, *args, **kwargs):  # the article's space, no training
            batch_size, epochs = self.fit_hyperparameters(hp)
            return float(hp.get("learning_rate") * epochs / batch_size)

    tuner = kt.BayesianOptimization(Article(data), max_trials=30, seed=0,
                                    directory=tmp_path, project_name="article", overwrite=True)
    tuner.search(data.x_train, data.y_train, verbose=0)
    assert len(tuner.study.trials) == 30
    assert len(tuner.hyperparameters.space) >= 8  # with fit's batch size and epochs
    assert tuner.study.sampler.n_startup_trials == 10  # so the GP chose 20
    assert [default_num_initial_points(n) for n in (None, 30, 12, 2)] == [10, 10, 4, 1]
    override = kt.BayesianOptimization(Article(data), max_trials=30, num_initial_points=24,
                                       directory=tmp_path, project_name="kt", overwrite=True)
    assert override._default_sampler().n_startup_trials == 24  # noqa: SLF001


def test_keras_tuner_hooks_are_called_where_keras_tuner_calls_them(tiny_data, tmp_path):
    x, y, xv, yv = tiny_data
    events = []

    class Recording(kt.RandomSearch):
        def on_search_begin(self):
            events.append("search_begin")

        def on_search_end(self):
            events.append("search_end")

        def pre_create_trial(self):
            events.append("pre_create")

        def on_trial_begin(self, trial):
            events.append(("trial_begin", trial.trial_id, trial.status))

        def on_trial_end(self, trial):
            events.append(("trial_end", trial.trial_id, trial.status))

        def on_epoch_end(self, trial, model, epoch, logs=None):
            events.append(("epoch_end", trial.trial_id, epoch, "val_loss" in logs))

        def on_batch_end(self, trial, model, batch, logs=None):
            if batch == 0:
                events.append(("batch_end", trial.trial_id))

    tuner = Recording(build_tiny, objective="val_loss", max_trials=2, seed=0,
                      directory=tmp_path, project_name="hooks", overwrite=True)
    tuner.search(x, y, validation_data=(xv, yv), epochs=2, verbose=0)
    per_trial = ["pre_create", ("trial_begin", "{}", "RUNNING"), ("batch_end", "{}"),
                 ("epoch_end", "{}", 0, True), ("batch_end", "{}"), ("epoch_end", "{}", 1, True),
                 ("trial_end", "{}", "COMPLETED")]
    expected = ["search_begin"] + [
        tuple(p.format(i) if isinstance(p, str) else p for p in e) if isinstance(e, tuple)
        else e for i in ("00", "01") for e in per_trial] + ["search_end"]
    assert events == expected
    trial_dir = tuner.get_trial_dir("00")
    assert trial_dir.endswith("trial_00") and (tmp_path / "hooks" / "trial_00").is_dir()
