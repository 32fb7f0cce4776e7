"""The fraud task: data pipeline and its errors, the article's hypermodel, objectives, test
metrics and the scikit-learn baseline. Real Keras, Optuna and scikit-learn on tiny data."""

import itertools
import math

import keras
import numpy as np
import optuna
import pytest
from sklearn.base import is_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    fbeta_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import KFold, check_cv
from sklearn.utils.class_weight import compute_class_weight

import optuna_keras_hpo.keras_tuner as kt
from optuna_keras_hpo import fraud
from optuna_keras_hpo.hyperparameters import HyperParameters, TrialHyperParameters
from optuna_keras_hpo.samplers import grid_points, grid_search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def small():
    """An easy 600-row task (20% fraud, well separated) a tiny network learns in a few epochs."""
    x, y = fraud.synthetic_fraud(n_rows=600, n_features=6, fraud_rate=0.2, class_sep=2.0,
                                 seed=1)
    return fraud.prepare(x, y, seed=0, source="test")


@pytest.fixture(scope="module")
def trained(small):
    """An Adam model of the Bayesian space trained a few epochs on ``small``."""
    keras.utils.set_random_seed(0)
    hm = fraud.FraudHyperModel(small, epochs=(8, 8, 1), patience=8)
    hp = HyperParameters()
    hp.values.update(optimizer_name="adam", learning_rate=0.01, batch_size=32)
    model = hm.build(hp)
    history = hm.fit(hp, model, small.x_train, small.y_train,
                     validation_data=(small.x_val, small.y_val), verbose=0)
    return model, history


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the CSV pipeline and its errors -----------------------------------------------------------


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match=r"path='.*nope\.csv': no such file"):
        fraud.read_csv(missing, "is_fraud")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        fraud.load_data(str(missing), "is_fraud")


def test_missing_target_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "amount,hour,label\n1.0,3,0\n2.0,4,1\n")
    with pytest.raises(ValueError, match=r"target='is_fraud' is not a column .*"
                                         r"\['amount', 'hour', 'label'\]"):
        fraud.read_csv(path, "is_fraud")


def test_non_binary_target_shows_its_values(tmp_path):
    path = write(tmp_path, "amount,risk\n1,low\n2,mid\n3,high\n4,low\n")
    with pytest.raises(ValueError, match=r"target='risk' .* not binary: 3 distinct values "
                                         r"\('high' \(1 rows\), 'low' \(2 rows\), 'mid'"):
        fraud.read_csv(path, "risk")
    numeric = write(tmp_path, "amount,score\n1,0\n2,1\n3,2\n", "numeric.csv")
    with pytest.raises(ValueError, match=r"target='score' .* not binary.*'2'"):
        fraud.read_csv(numeric, "score")
    one_class = write(tmp_path, "amount,y\n1,0\n2,0\n", "one.csv")
    with pytest.raises(ValueError, match=r"target='y' .* one class only"):
        fraud.read_csv(one_class, "y")
    tie = write(tmp_path, "amount,y\n1,a\n2,b\n", "tie.csv")
    with pytest.raises(ValueError, match=r"target='y' .* equal counts.*encode the target"):
        fraud.read_csv(tie, "y")
    gaps = write(tmp_path, "amount,y\n\n1,0\n2,\n3,1\n", "gaps.csv")  # line 2 is blank
    with pytest.raises(ValueError, match=r"target='y' .* 1 empty or missing .*line\(s\) 4"):
        fraud.read_csv(gaps, "y")


def test_non_numeric_feature_columns_are_named(tmp_path):
    path = write(tmp_path, "amount,merchant,country,y\n1.5,acme,FR,0\n2.5,zeta,DE,1\n")
    with pytest.raises(ValueError, match=r"non-numeric feature columns: 'merchant' \(e\.g\. "
                                         r"'acme'\), 'country' \(e\.g\. 'FR'\)"):
        fraud.read_csv(path, "y")
    missing = write(tmp_path, "amount,hour,y\n1.5,,0\n2.5,3,1\n,NaN,1\n", "missing.csv")
    with pytest.raises(ValueError, match=r"missing or non-finite values: 'amount' \(1 rows\), "
                                         r"'hour' \(2 rows\)"):
        fraud.read_csv(missing, "y")


def test_empty_files_and_bad_rows(tmp_path):
    with pytest.raises(ValueError, match=r"path='.*empty\.csv' is empty"):
        fraud.read_csv(write(tmp_path, "", "empty.csv"), "y")
    with pytest.raises(ValueError, match="has a header but no data rows"):
        fraud.read_csv(write(tmp_path, "a,y\n", "header.csv"), "y")
    with pytest.raises(ValueError, match="line 3: 3 fields, but the header has 2"):
        fraud.read_csv(write(tmp_path, "a,y\n1,0\n2,1,9\n", "ragged.csv"), "y")
    with pytest.raises(ValueError, match="only the target column"):
        fraud.read_csv(write(tmp_path, "y\n1\n0\n", "target_only.csv"), "y")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a,y\n\xff\xfe,1\n")
    with pytest.raises(ValueError, match=r"binary\.csv' cannot be read as a CSV file"):
        fraud.read_csv(binary, "y")
    with pytest.raises(ValueError, match="is not a file"):
        fraud.read_csv(tmp_path, "y")


def test_accepted_targets_and_their_mapping(tmp_path):
    zero_one = write(tmp_path, "a,b,y\n1,2,0\n3,4,1.0\n5,6,0\n", "zero_one.csv")
    x, y, names = fraud.read_csv(zero_one, "y")
    assert names == ["a", "b"] and x.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert y.tolist() == [0, 1, 0]
    booleans = write(tmp_path, "a,y\n1,False\n2,TRUE\n3,false\n", "bool.csv")
    assert fraud.read_csv(booleans, "y")[1].tolist() == [0, 1, 0]
    labels = write(tmp_path, "a,y\n1,legit\n2,fraud\n3,legit\n", "labels.csv")
    assert fraud.read_csv(labels, "y")[1].tolist() == [0, 1, 0]  # the rarer label is fraud
    majority = write(tmp_path, "a,y\n1,1\n2,1\n3,0\n", "majority.csv")
    with pytest.warns(UserWarning, match="class 1 is the majority"):
        fraud.read_csv(majority, "y")


def test_load_data_from_csv_records_the_mapping(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["amount,hour,status"] + [
        f"{rng.normal():.4f},{rng.integers(24)},{'chargeback' if i % 10 == 0 else 'ok'}"
        for i in range(200)
    ]
    path = write(tmp_path, "\n".join(rows) + "\n")
    data = fraud.load_data(str(path), "status", seed=0)
    info = data.describe()
    assert info["rows"] == 200 and info["frauds"] == 20 and info["features"] == 2
    assert data.feature_names == ["amount", "hour"]
    assert "'chargeback' -> 1" in data.source and str(path) in data.source
    with pytest.raises(ValueError, match="target=None"):
        fraud.load_data(str(path))
    with pytest.raises(ValueError, match="target='status' without data"):
        fraud.load_data(None, "status")


def test_a_class_too_rare_to_split_is_refused():
    x = np.arange(200, dtype=float).reshape(100, 2)
    y = np.zeros(100, dtype=int)
    y[:4] = 1
    with pytest.raises(ValueError, match=r"y has 4 row\(s\) of class 1 \(fraud\) out of 100; "
                                         r"stratified .* need at least 5 of each class"):
        fraud.prepare(x, y)
    with pytest.raises(ValueError, match=r"y has labels \[0, 2\]"):
        fraud.prepare(x, np.where(y == 1, 2, 0))
    with pytest.raises(ValueError, match=r"val_size=0.5, test_size=0.5"):
        fraud.prepare(x, y, val_size=0.5, test_size=0.5)


# -- the synthetic set, splits and scaling -----------------------------------------------------


def test_default_synthetic_set_is_as_documented():
    x, y = fraud.synthetic_fraud()
    assert x.shape == (10_000, 25) and set(np.unique(y)) == {0, 1}
    assert abs(y.mean() - 0.05) < 0.01
    again_x, again_y = fraud.synthetic_fraud()
    assert np.array_equal(x, again_x) and np.array_equal(y, again_y)  # seeded
    assert not np.array_equal(y, fraud.synthetic_fraud(seed=1)[1])


@pytest.mark.parametrize("seed", range(5))
def test_splits_are_stratified_and_described(seed):
    data = fraud.load_data(n_rows=1000, seed=seed)
    info = data.describe()
    assert info["rows"] == 1000 and info["features"] == 25
    assert (info["train_rows"], info["validation_rows"], info["test_rows"]) == (600, 200, 200)
    assert abs(info["fraud_rate"] - 0.05) < 0.02
    assert info["source"].startswith("synthetic (make_classification: 1000 rows, 25 features")
    total = 0
    for name, (_, y) in data.splits().items():
        positives = int(np.sum(y == 1))
        total += positives
        assert info[f"{name}_frauds"] == positives
        assert abs(positives - len(y) * info["fraud_rate"]) <= 1  # stratified
    assert total == info["frauds"]


def test_scaling_uses_training_statistics_only():
    data = fraud.load_data(n_rows=1000, seed=0)
    assert np.allclose(data.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(data.x_train.std(axis=0), 1, atol=1e-4)
    for x in (data.x_val, data.x_test):
        assert np.abs(x.mean(axis=0)).max() > 1e-3  # not re-centred on their own rows
    everything = np.concatenate([data.x_train, data.x_val, data.x_test])
    assert np.abs(everything.mean(axis=0)).max() > 1e-3  # not fitted on all rows either


def test_initial_bias_and_class_weights_come_from_the_training_split(small):
    pos, neg = np.sum(small.y_train == 1), np.sum(small.y_train == 0)
    assert small.initial_bias == pytest.approx(math.log(pos / neg))
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=small.y_train)
    assert small.class_weights == pytest.approx({0: expected[0], 1: expected[1]})


# -- the hypermodel ----------------------------------------------------------------------------


def test_build_is_the_articles_network(small):
    hm = fraud.FraudHyperModel(small)
    hp = HyperParameters()
    hp.values.update(neurons1=40, dropout_rate1=0.0, neurons2=20, dropout_rate2=0.4)
    model = hm.build(hp)
    layers = model.layers
    assert [type(layer).__name__ for layer in layers] == [
        "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert model.input_shape == (None, small.n_features)
    assert [layers[0].units, layers[2].units, layers[4].units] == [40, 20, 1]
    assert [layers[1].rate, layers[3].rate] == [0.0, 0.4]
    assert [layers[i].activation.__name__ for i in (0, 2, 4)] == ["relu", "relu", "sigmoid"]
    assert float(layers[4].bias.numpy()[0]) == pytest.approx(small.initial_bias, rel=1e-6)
    assert model.loss == "binary_crossentropy"
    model.evaluate(small.x_val[:8], small.y_val[:8], verbose=0)
    names = set(model.get_metrics_result())
    assert {"accuracy", "precision", "recall", "auc", "pr_auc", "fbeta", "loss"} <= names
    auc_curves = {m.name: m.curve.name for m in _flat_metrics(model)
                  if isinstance(m, keras.metrics.AUC)}
    assert auc_curves == {"auc": "ROC", "pr_auc": "PR"}
    # The default hp: Adam, and no lion betas declared.
    assert type(model.optimizer).__name__ == "Adam"
    assert "beta_1_lion" not in [h.name for h in hp.space]


def _flat_metrics(model):
    out = []
    for metric in model.metrics:
        out.extend(getattr(metric, "metrics", [metric]))
    return out


def test_lion_betas_only_when_lion_is_chosen(small):
    hm = fraud.FraudHyperModel(small)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for name in fraud.OPTIMIZERS:
        study.enqueue_trial({"optimizer_name": name})
        trial = study.ask()
        model = hm.build(TrialHyperParameters(trial))
        betas = {k for k in trial.params if "lion" in k}
        if name == "lion":
            assert betas == {"beta_1_lion", "beta_2_lion"}
            optimizer = model.optimizer
            assert type(optimizer).__name__ == "Lion"
            assert optimizer.beta_1 == pytest.approx(trial.params["beta_1_lion"])
            assert optimizer.beta_2 == pytest.approx(trial.params["beta_2_lion"])
            assert 0.8 <= optimizer.beta_1 <= 0.95 and 0.95 <= optimizer.beta_2 <= 0.999
        else:
            assert betas == set()
            assert type(model.optimizer).__name__.lower() == name
        study.tell(trial, 0.0)
    # Recording mode: the betas are declared inside a scope conditioned on lion.
    hp = HyperParameters()
    hp.values["optimizer_name"] = "lion"
    hm.build(hp)
    conditions = {h.name: [(c.parent_name, c.values) for c in h.conditions] for h in hp.space}
    assert conditions["beta_1_lion"] == conditions["beta_2_lion"] == [
        ("optimizer_name", ["lion"])]
    assert conditions["optimizer_name"] == []


def test_fit_uses_class_weights_batch_size_epochs_and_early_stopping(small):
    hm = fraud.FraudHyperModel(small, epochs=(2, 4, 2), patience=3)
    hp = HyperParameters()
    hp.values.update(batch_size=64, epochs=2)
    model = hm.build(hp)
    seen = {}
    real_fit = model.fit

    def spy(*args, **kwargs):  # records what the hypermodel passes, then really trains
        seen.update(kwargs)
        return real_fit(*args, **kwargs)

    model.fit = spy
    user_callbacks = [keras.callbacks.TerminateOnNaN()]
    history = hm.fit(hp, model, small.x_train, small.y_train,
                     validation_data=(small.x_val, small.y_val), callbacks=user_callbacks,
                     verbose=0)
    assert seen["class_weight"] == small.class_weights
    assert seen["batch_size"] == 64 and seen["epochs"] == 2
    assert len(history.history["loss"]) == 2
    assert history.params["steps"] == math.ceil(len(small.y_train) / 64)
    assert seen["callbacks"][0] is user_callbacks[0] and len(user_callbacks) == 1
    stopper = seen["callbacks"][-1]
    assert isinstance(stopper, keras.callbacks.EarlyStopping)
    assert stopper.monitor == "val_loss" and stopper.patience == 3
    declared = {h.name: h for h in hp.space}
    assert declared["batch_size"].values == [16, 32, 64]
    assert declared["epochs"].get_config()["min_value"] == 2
    # A caller's epochs (Hyperband passes them) wins over the hp's.
    model.fit = spy
    hm.fit(hp, model, small.x_train, small.y_train, validation_data=(small.x_val, small.y_val),
           epochs=1, verbose=0)
    assert seen["epochs"] == 1


def test_metrics_and_fbeta_match_scikit_learn(small, trained, tmp_path):
    model, history = trained
    logs = model.evaluate(small.x_val, small.y_val, verbose=0, return_dict=True)
    model.save(tmp_path / "model.keras")  # the F-beta metric class is serialisable
    fraud.register_keras_objects()
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.evaluate(small.x_val, small.y_val, verbose=0, return_dict=True)[
        "fbeta"] == pytest.approx(logs["fbeta"], abs=1e-6)
    scores = model.predict(small.x_val, verbose=0).ravel()
    predicted = (scores > 0.5).astype(int)
    assert predicted.sum() > 0  # the model learned something
    assert logs["fbeta"] == pytest.approx(fbeta_score(small.y_val, predicted, beta=2), abs=1e-4)
    assert logs["recall"] == pytest.approx(recall_score(small.y_val, predicted), abs=1e-4)
    assert logs["precision"] == pytest.approx(precision_score(small.y_val, predicted), abs=1e-4)
    assert logs["pr_auc"] == pytest.approx(average_precision_score(small.y_val, scores),
                                           abs=0.05)
    # Every objective's metrics are among what fit logs.
    for spec in fraud.OBJECTIVES.values():
        assert set(spec.metrics) <= set(history.history), spec.name
        assert np.isfinite(history.history[spec.metrics[0]]).all()


def test_article_grid_space_enumerates_the_articles_grid(small, tmp_path):
    grid = {k: v[:1] for k, v in fraud.ARTICLE_GRID.items()}
    grid.update(neurons1=[20, 40], learning_rate=[0.001, 0.0001], epochs=[1])
    hm = fraud.FraudHyperModel(small, space="article_grid", grid=grid)
    tuner = kt.GridSearch(hm, objective=kt.Objective("val_recall", "max"),
                          directory=tmp_path, project_name="grid", overwrite=True)
    tuner.search(small.x_train, small.y_train, validation_data=(small.x_val, small.y_val),
                 verbose=0)
    trials = tuner.study.trials
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    seen = {(t.params["neurons1"], t.params["learning_rate"]) for t in trials}
    assert seen == set(itertools.product([20, 40], [0.001, 0.0001]))
    assert "optimizer_name" not in trials[0].params  # Adam only

    # The article's grid, recorded without a trial: 1,458 points.
    article = fraud.FraudHyperModel(small, space="article_grid")
    hp = HyperParameters()
    article.build(hp)
    article.fit_hyperparameters(hp)
    assert grid_search_space(hp.space) == fraud.ARTICLE_GRID
    assert len(grid_points(hp.space)) == 1458 == math.prod(map(len, fraud.ARTICLE_GRID.values()))


def _bayesian_space(small, epochs):
    """Every hyperparameter of the Bayesian space (Lion's betas too), declared by a trial."""
    study = optuna.create_study()
    study.enqueue_trial({"optimizer_name": "lion"})
    hp = TrialHyperParameters(study.ask())
    fraud.FraudHyperModel(small, epochs=epochs).configuration(hp)
    return {h.name: h.distribution() for h in hp.space}


def _in(distribution, value) -> bool:
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return value in distribution.choices
    if not distribution.low <= value <= distribution.high:
        return False
    steps = (value - distribution.low) / (distribution.step or 1)
    return distribution.step is None or abs(steps - round(steps)) < 1e-9


@pytest.mark.parametrize("which", ["default", "quick"])
def test_the_grid_space_is_a_discretisation_of_the_bayesian_space(small, which):
    from optuna_keras_hpo.fraud.comparison import FULL, QUICK, grid_size

    mode = FULL if which == "default" else QUICK
    assert mode.grid == (fraud.BAYESIAN_GRID if which == "default" else mode.grid)
    bayesian = _bayesian_space(small, mode.epochs)
    assert set(mode.grid) == set(bayesian)
    for name, values in mode.grid.items():
        assert all(_in(bayesian[name], v) for v in values), (name, values, bayesian[name])
    # The grid space declares exactly the grid's points, Lion's betas only with Lion.
    hm = fraud.FraudHyperModel(small, space="grid", grid=mode.grid, epochs=mode.epochs)
    study = optuna.create_study(sampler=optuna.samplers.BruteForceSampler(seed=0))

    def objective(trial):
        values = hm.configuration(TrialHyperParameters(trial))
        assert ("beta_1_lion" in values) == (values["optimizer_name"] == "lion")
        return 0.0

    study.optimize(objective)
    points = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(points) == len(study.trials) == grid_size(mode.grid) == mode.grid_size
    assert 50 <= grid_size(mode.grid) <= 200


def test_the_same_configuration_trains_to_the_same_score(small):
    values = {"neurons1": 20, "dropout_rate1": 0.2, "neurons2": 20, "dropout_rate2": 0.2,
              "optimizer_name": "adam", "learning_rate": 0.01, "batch_size": 32, "epochs": 3}

    def train(seed, **changes):
        hm = fraud.FraudHyperModel(small, epochs=(3, 3, 1), patience=5, seed=seed)
        hp = HyperParameters()
        hp.values.update(values, **changes)
        keras.utils.set_random_seed(1234)  # whatever ran before, the configuration decides
        np.random.rand(int(changes.get("noise", 0)))
        model = hm.build(hp)
        history = hm.fit(hp, model, small.x_train, small.y_train,
                         validation_data=(small.x_val, small.y_val), verbose=0)
        return history.history["val_loss"] + history.history["val_pr_auc"]

    first = train(0)
    assert train(0, noise=7) == first  # bit for bit
    assert train(1) != first  # another study seed, other initial weights
    assert fraud.configuration_seed(0, values) == fraud.configuration_seed(0, dict(values))
    assert fraud.configuration_seed(0, values) != fraud.configuration_seed(
        0, {**values, "epochs": 4})


def test_hypermodel_arguments_are_checked(small):
    with pytest.raises(ValueError, match="space='random'"):
        fraud.FraudHyperModel(small, space="random")
    with pytest.raises(ValueError, match=r"epochs=\(50, 20, 10\)"):
        fraud.FraudHyperModel(small, epochs=(50, 20, 10))
    with pytest.raises(ValueError, match=r"missing \['epochs'\], unknown \['units'\]"):
        fraud.FraudHyperModel(small, space="article_grid", grid={
            **{k: v for k, v in fraud.ARTICLE_GRID.items() if k != "epochs"}, "units": [8]})
    with pytest.raises(ValueError, match=r"grid\['neurons1'\]=\[\]"):
        fraud.FraudHyperModel(small, space="article_grid",
                              grid={**fraud.ARTICLE_GRID, "neurons1": []})
    with pytest.raises(ValueError, match=r"grid\['optimizer_name'\] has \['adamw'\]"):
        fraud.FraudHyperModel(small, space="grid",
                              grid={**fraud.BAYESIAN_GRID, "optimizer_name": ["adamw"]})
    with pytest.raises(ValueError, match="seed='0'"):
        fraud.FraudHyperModel(small, seed="0")


# -- objectives --------------------------------------------------------------------------------


def test_objective_specs():
    assert fraud.objective_spec("recall").metrics == ("val_recall",)
    assert fraud.objective_spec("pareto").metrics == ("val_recall", "val_precision")
    assert fraud.objective_spec("pareto").directions == ("maximize", "maximize")
    floor = fraud.objective_spec("recall_at_precision", precision_floor=0.7)
    assert floor.precision_floor == 0.7 and ">= 0.7" in floor.description
    assert floor.constraints({"val_precision": 0.9}) == (pytest.approx(-0.2),)  # feasible
    assert floor.constraints({"val_precision": 0.6})[0] > 0  # infeasible
    assert fraud.objective_spec("fbeta", precision_floor=0.7).precision_floor is None
    assert fraud.objective_spec("pr_auc").constraints({}) == ()
    for spec in fraud.OBJECTIVES.values():
        assert len(spec.metrics) == len(spec.directions) and spec.description
    with pytest.raises(ValueError, match=r"objective='accuracy'; expected one of \['recall'"):
        fraud.objective_spec("accuracy")
    with pytest.raises(ValueError, match="precision_floor=1.5"):
        fraud.objective_spec("recall_at_precision", precision_floor=1.5)


# -- test metrics ------------------------------------------------------------------------------


def test_evaluate_test_matches_scikit_learn_on_a_known_model(small):
    # A logistic model with known weights, as a Keras model and as its probabilities.
    w = np.linspace(-1, 1, small.n_features).astype("float32")
    model = keras.Sequential([keras.layers.Input((small.n_features,)),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.layers[0].set_weights([w.reshape(-1, 1), np.array([-0.5], dtype="float32")])
    scores = 1 / (1 + np.exp(-(small.x_test @ w - 0.5)))
    y = small.y_test
    for threshold in (0.5, 0.3):
        predicted = (scores > threshold).astype(int)
        expected = {
            "recall": recall_score(y, predicted, zero_division=0),
            "precision": precision_score(y, predicted, zero_division=0),
            "accuracy": accuracy_score(y, predicted),
            "auc": roc_auc_score(y, scores),
            "pr_auc": average_precision_score(y, scores),
        }
        assert fraud.evaluate_test(model, small, threshold) == pytest.approx(expected, abs=1e-5)
    # Keras' own thresholded metrics agree at 0.5.
    model.compile(loss="binary_crossentropy", metrics=[keras.metrics.Recall(name="recall")])
    keras_recall = model.evaluate(small.x_test, y, verbose=0, return_dict=True)["recall"]
    assert fraud.evaluate_test(model, small)["recall"] == pytest.approx(keras_recall, abs=1e-6)
    # A scikit-learn classifier is read through predict_proba.
    clf = LogisticRegression().fit(small.x_train, small.y_train)
    proba = clf.predict_proba(small.x_test)[:, 1]
    assert fraud.evaluate_test(clf, small)["pr_auc"] == pytest.approx(
        average_precision_score(y, proba))
    with pytest.raises(ValueError, match="threshold=1.0"):
        fraud.evaluate_test(model, small, threshold=1.0)


# -- the scikit-learn baseline -----------------------------------------------------------------


def test_the_trap_kerasclassifier_is_not_a_classifier_so_cv_3_is_kfold(small):
    """scikeras 0.13 + scikit-learn 1.9: GridSearchCV(cv=3) would use an unstratified KFold.
    If this test fails, the libraries fixed it; docs/fraud.md should say so."""
    estimator = fraud.kerasclassifier(small)
    assert not is_classifier(estimator)
    y = np.sort(small.y_train)  # frauds last, as in a file sorted by label
    splitter = check_cv(3, y, classifier=is_classifier(estimator))
    assert type(splitter) is KFold
    positives = [int(y[test].sum()) for _, test in splitter.split(np.zeros(len(y)), y)]
    assert positives[0] == 0  # a fold with no fraud at all: its recall is undefined


def test_sklearn_baseline_uses_stratified_folds(small):
    sorted_rows = np.argsort(small.y_train, kind="stable")  # frauds last: KFold would fail
    data = fraud.FraudData(small.x_train[sorted_rows], small.y_train[sorted_rows],
                           small.x_val, small.y_val, small.x_test, small.y_test,
                           small.feature_names, "sorted")
    grid = {k: v[:1] for k, v in fraud.ARTICLE_GRID.items()}
    grid.update(learning_rate=[0.01], epochs=[2], batch_size=[64])
    result = fraud.sklearn_grid_baseline(data, grid, cv=3, seed=0)
    assert result["splitter"] == "StratifiedKFold(n_splits=3, random_state=0, shuffle=True)"
    positives = int(data.y_train.sum())
    assert sum(result["fold_positives"]) == positives
    assert max(result["fold_positives"]) - min(result["fold_positives"]) <= 1
    assert min(result["fold_positives"]) > 0
    assert result["n_candidates"] == 1 and result["n_fits"] == 3 and result["cv"] == 3
    assert result["best_params"] == {"batch_size": 64, "epochs": 2, "dropout_rate1": 0.1,
                                     "dropout_rate2": 0.1, "learning_rate": 0.01,
                                     "neurons1": 20, "neurons2": 20}
    assert 0.0 <= result["best_score"] <= 1.0 and result["wall_seconds"] > 0
    assert set(result["test"]) == {"recall", "precision", "accuracy", "auc", "pr_auc"}
    assert result["test"]["recall"] > 0  # balanced class weights make it flag frauds
    with pytest.raises(ValueError, match="cv=1"):
        fraud.sklearn_grid_baseline(data, grid, cv=1)


def test_under_the_default_objective_flagging_everything_does_not_rank_first(small, trained):
    """A model that flags every transaction has recall 1.0: first under the article's recall,
    not under the default objective."""
    flag_all = keras.Sequential([
        keras.layers.Input((small.n_features,)),
        keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",
                           bias_initializer=keras.initializers.Constant(10.0)),
    ])
    flag_all.compile(loss="binary_crossentropy", metrics=fraud.fraud_metrics())
    model, _ = trained
    logs = {name: {f"val_{k}": v for k, v in m.evaluate(
        small.x_val, small.y_val, return_dict=True, verbose=0).items()}
        for name, m in (("flag_all", flag_all), ("trained", model))}
    assert logs["flag_all"]["val_recall"] == 1.0 >= logs["trained"]["val_recall"]
    metric = fraud.objective_spec(fraud.DEFAULT_OBJECTIVE).metrics[0]
    assert logs["trained"][metric] > logs["flag_all"][metric] + 0.2


def test_bootstrap_intervals_and_paired_differences():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.1).astype(int)
    good = np.clip(0.3 * y + rng.random(400) * 0.7, 0, 1)
    weak = rng.random(400)
    for scores in (good, weak, np.round(good, 1)):  # rounded: ties
        point = fraud.metrics_from_scores(y, scores)
        intervals = fraud.bootstrap_intervals(y, scores, seed=1)
        for metric, (low, high) in intervals.items():
            assert low <= point[metric] <= high, metric
        assert intervals == fraud.bootstrap_intervals(y, scores, seed=1)  # seeded
    better = fraud.bootstrap_difference(y, good, weak, "pr_auc")
    assert better["difference"] == pytest.approx(
        average_precision_score(y, good) - average_precision_score(y, weak))
    assert better["low"] > 0  # a real difference is beyond the noise
    same = fraud.bootstrap_difference(y, good, good, "recall")
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0}
    with pytest.raises(ValueError, match="metric='auc'"):
        fraud.bootstrap_difference(y, good, weak, "auc")


def test_metrics_are_chosen_by_name(small):
    hm = fraud.FraudHyperModel(small, metrics=("pr_auc", "recall"))
    hp = HyperParameters()
    model = hm.build(hp)
    history = model.fit(small.x_train, small.y_train, validation_data=(small.x_val, small.y_val),
                        epochs=1, verbose=0)
    assert set(history.history) == {"loss", "pr_auc", "recall", "val_loss", "val_pr_auc",
                                    "val_recall"}
    with pytest.raises(ValueError, match="metrics=\\('f1',\\)"):
        fraud.FraudHyperModel(small, metrics=("f1",))
