"""The article's script: Bayesian optimisation of a Keras fraud-detection model.

It is KerasTuner code with one line changed::

    import optuna_keras_hpo.keras_tuner as kt   # was: import keras_tuner as kt

The model, search space, objective (``val_recall``) and tuner calls are the article's. The data
is synthetic (scikit-learn's ``make_classification``: imbalanced, overlapping classes). The
defaults are the article's budgets; ``--quick`` shrinks data, epochs and trials so the whole run
takes about a minute on two cores.

Run: ``python examples/fraud_bayesian_optimization.py --quick``
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from keras.layers import Dense, Dropout, Input  # noqa: E402
from keras.models import Sequential  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import class_weight  # noqa: E402

import optuna_keras_hpo.keras_tuner as kt  # noqa: E402  (was: import keras_tuner as kt)


def make_data(n_samples: int, seed: int = 42):
    """Synthetic fraud data: 10% positives, 20 features, overlapping classes; scaled on train."""
    x, y = make_classification(
        n_samples=n_samples, n_features=20, n_informative=8, n_redundant=4,
        weights=[0.9, 0.1], class_sep=0.8, flip_y=0.02, random_state=seed,
    )
    x_dev, x_test, y_dev, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_dev, y_dev, test_size=0.25, stratify=y_dev, random_state=seed)
    scaler = StandardScaler().fit(x_train)
    return (scaler.transform(x_train), y_train, scaler.transform(x_val), y_val,
            scaler.transform(x_test), y_test)


class FraudHyperModel(kt.HyperModel):
    """The article's hypermodel: two Dense + Dropout layers, a biased sigmoid output."""

    def __init__(self, input_shape, initial_bias_value, class_weights_dict,
                 epochs=(50, 200, 50)):
        super().__init__()
        self.input_shape = input_shape
        self.initial_bias_value = initial_bias_value
        self.class_weights_dict = class_weights_dict
        self.epochs = epochs

    def build(self, hp):
        model = Sequential([
            Input(shape=(self.input_shape,)),
            Dense(units=hp.Int("neurons1", min_value=20, max_value=60, step=10),
                  activation="relu"),
            Dropout(hp.Float("dropout_rate1", min_value=0.0, max_value=0.5, step=0.1)),
            Dense(units=hp.Int("neurons2", min_value=20, max_value=60, step=10),
                  activation="relu"),
            Dropout(hp.Float("dropout_rate2", min_value=0.0, max_value=0.5, step=0.1)),
            Dense(1, activation="sigmoid",
                  bias_initializer=keras.initializers.Constant(self.initial_bias_value)),
        ])
        optimizer_name = hp.Choice("optimizer_name", values=["adam", "rmsprop", "sgd", "lion"])
        learning_rate = hp.Float("learning_rate", min_value=1e-4, max_value=1e-2,
                                 sampling="log")
        if optimizer_name == "adam":
            optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        elif optimizer_name == "rmsprop":
            optimizer = keras.optimizers.RMSprop(learning_rate=learning_rate)
        elif optimizer_name == "sgd":
            optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
        else:
            with hp.conditional_scope("optimizer_name", ["lion"]):
                optimizer = keras.optimizers.Lion(
                    learning_rate=learning_rate,
                    beta_1=hp.Float("beta_1_lion", min_value=0.8, max_value=0.95, step=0.05),
                    beta_2=hp.Float("beta_2_lion", min_value=0.95, max_value=0.999,
                                    step=0.049),
                )
        model.compile(
            optimizer=optimizer,
            loss="binary_crossentropy",
            metrics=[
                "accuracy",
                keras.metrics.Precision(name="precision"),
                keras.metrics.Recall(name="recall"),
                keras.metrics.AUC(name="auc"),
            ],
        )
        return model

    def fit(self, hp, model=None, *args, **kwargs):
        model = self.build(hp=hp) if not model else model
        batch_size = hp.Choice("batch_size", values=[16, 32, 64])
        low, high, step = self.epochs
        epochs = hp.Int("epochs", min_value=low, max_value=high, step=step)
        return model.fit(batch_size=batch_size, epochs=epochs,
                         class_weight=self.class_weights_dict, *args, **kwargs)


def main(argv=None) -> kt.BayesianOptimization:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data, epochs and budget")
    parser.add_argument("--max-trials", type=int, default=None)
    parser.add_argument("--directory", default="results")
    parser.add_argument("--project-name", default="fraud_bayesian_optimization")
    parser.add_argument("--samples", type=int, default=None, help="rows of synthetic data")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    quick = args.quick
    n_samples = args.samples or (3000 if quick else 10000)
    max_trials = args.max_trials or (6 if quick else 30)
    epochs = (2, 6, 2) if quick else (50, 200, 50)
    keras.utils.set_random_seed(args.seed)

    x_train, y_train, x_val, y_val, x_test, y_test = make_data(n_samples, args.seed)
    initial_bias = float(np.log(np.sum(y_train == 1) / np.sum(y_train == 0)))
    weights = class_weight.compute_class_weight(
        class_weight="balanced", classes=np.unique(y_train), y=y_train)
    class_weights_dict = dict(zip(np.unique(y_train).tolist(), weights, strict=True))

    custom_hypermodel = FraudHyperModel(x_train.shape[1], initial_bias, class_weights_dict,
                                        epochs=epochs)
    tuner = kt.BayesianOptimization(
        hypermodel=custom_hypermodel,
        objective=kt.Objective("val_recall", direction="max"),
        max_trials=max_trials,
        executions_per_trial=1,
        directory=args.directory,
        project_name=args.project_name,
        num_initial_points=3 if quick else None,
        seed=args.seed,
        overwrite=True,
    )
    tuner.search_space_summary()
    early_stopping_callback = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=10, restore_best_weights=False)
    tuner.search(x_train, y_train, validation_data=(x_val, y_val),
                 callbacks=[early_stopping_callback], verbose=0)

    best_hp = tuner.get_best_hyperparameters(num_trials=1)[0]
    best_keras_model_from_tuner = tuner.get_best_models(num_models=1)[0]
    tuner.results_summary(num_trials=3)

    test = best_keras_model_from_tuner.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print("\nBest hyperparameters:", best_hp.values)
    print("Test set: " + ", ".join(f"{k} {test[k]:.4f}" for k in
                                  ("recall", "precision", "accuracy", "auc")))
    study = optuna.load_study(study_name=tuner.study_name, storage=tuner.study._storage)
    print(f"\nThe study '{study.study_name}' holds {len(study.trials)} trials "
          f"(storage: {tuner.project_dir}/study.db). Inspect it with:\n"
          f"  optuna-dashboard sqlite:///{tuner.project_dir}/study.db")
    return tuner


if __name__ == "__main__":
    main()
