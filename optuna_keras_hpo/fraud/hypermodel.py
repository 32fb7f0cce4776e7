"""The article's network and its search spaces, as a :class:`HyperModel`.

Three spaces (docs/fraud.md):

* ``"bayesian"``: the article's Bayesian-optimisation space (stepped widths and dropouts, four
  optimizers with a log-scaled learning rate, Lion's betas only when Lion is chosen, batch size
  and epochs chosen in ``fit``);
* ``"grid"``: a discretisation of that space, every hyperparameter a Choice over a few of its
  values (:data:`BAYESIAN_GRID` by default), so that a grid and a model-based search can search
  the same points;
* ``"article_grid"``: the article's own ``GridSearchCV`` grid (Adam only, other values):
  :data:`ARTICLE_GRID`, a different space.

Training is seeded per configuration (:func:`configuration_seed`): the same configuration
trained twice on one machine gives the same scores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from optuna_keras_hpo.fraud.data import FraudData
from optuna_keras_hpo.hypermodel import HyperModel

OPTIMIZERS = ("adam", "rmsprop", "sgd", "lion")
SPACES = ("bayesian", "grid", "article_grid")

# The article's GridSearchCV grid (Adam only): 3 * 3 * 3 * 3 * 3 * 3 * 2 = 1,458 points.
ARTICLE_GRID: dict[str, list] = {
    "learning_rate": [0.001, 0.0005, 0.0001],
    "neurons1": [20, 30, 40],
    "neurons2": [20, 30, 40],
    "dropout_rate1": [0.1, 0.15, 0.2],
    "dropout_rate2": [0.1, 0.15, 0.2],
    "batch_size": [16, 32, 64],
    "epochs": [50, 100],
}

# A discretisation of the Bayesian space: every value lies in it (on its steps and bounds).
# 4 optimizers * 3 learning rates * 2 * 2 * 2 * 2 = 192 points; the learning rates are the
# log range's ends and middle; Lion's betas take one value each.
BAYESIAN_GRID: dict[str, list] = {
    "optimizer_name": list(OPTIMIZERS),
    "learning_rate": [0.0001, 0.001, 0.01],
    "neurons1": [20, 60],
    "neurons2": [40],
    "dropout_rate1": [0.0, 0.4],
    "dropout_rate2": [0.2],
    "beta_1_lion": [0.9],
    "beta_2_lion": [0.999],
    "batch_size": [16, 64],
    "epochs": [50, 200],
}

GRID_KEYS = {"grid": tuple(BAYESIAN_GRID), "article_grid": tuple(ARTICLE_GRID)}
_LION = ("beta_1_lion", "beta_2_lion")


def configuration_seed(seed: int, values: Mapping[str, Any]) -> int:
    """A training seed from the study's ``seed`` and a configuration's ``values``: the same
    pair always gives the same seed, different configurations different ones."""
    text = json.dumps([seed, sorted((k, repr(v)) for k, v in values.items())])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def make_optimizer(name: str, learning_rate: float, beta_1_lion: float | None = None,
                   beta_2_lion: float | None = None):
    """The Keras optimizer ``name`` (one of :data:`OPTIMIZERS`)."""
    import keras

    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    if name == "lion":
        return keras.optimizers.Lion(learning_rate=learning_rate, beta_1=beta_1_lion,
                                     beta_2=beta_2_lion)
    raise ValueError(f"optimizer_name={name!r}; expected one of {list(OPTIMIZERS)}.")


def _binary_fbeta_class():
    import keras

    @keras.saving.register_keras_serializable(package="optuna_keras_hpo")
    class BinaryFBetaScore(keras.metrics.FBetaScore):
        """Keras' ``FBetaScore`` for one sigmoid output and 1-D labels.

        ``FBetaScore`` wants 2-D ``(batch, classes)`` labels and predictions; Keras fits a
        ``(n,)`` label vector against the ``(n, 1)`` output, so both are reshaped to
        ``(batch, 1)`` first. With one column, ``average="micro"`` is that column's F-beta, a
        scalar, at ``y_pred > threshold`` (as ``Precision`` and ``Recall``).
        """

        def __init__(self, beta=2.0, threshold=0.5, name="fbeta", dtype=None, average="micro"):
            super().__init__(average=average, beta=beta, threshold=threshold, name=name,
                             dtype=dtype)

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_true = keras.ops.reshape(y_true, (-1, 1))
            y_pred = keras.ops.reshape(y_pred, (-1, 1))
            if sample_weight is not None:
                sample_weight = keras.ops.reshape(sample_weight, (-1,))
            return super().update_state(y_true, y_pred, sample_weight)

    return BinaryFBetaScore


_FBETA_CLASS = None


def register_keras_objects():
    """Register this module's Keras metric class (``optuna_keras_hpo>BinaryFBetaScore``) and
    return it. Building a model registers it; call this first to ``keras.saving.load_model`` a
    saved fraud model in a fresh process."""
    global _FBETA_CLASS
    if _FBETA_CLASS is None:
        _FBETA_CLASS = _binary_fbeta_class()
    return _FBETA_CLASS


def binary_fbeta(beta: float = 2.0, name: str = "fbeta"):
    """A Keras F-beta metric (threshold 0.5) for a ``(n, 1)`` sigmoid output."""
    return register_keras_objects()(beta=beta, threshold=0.5, name=name)


METRICS = ("accuracy", "precision", "recall", "auc", "pr_auc", "fbeta")


def fraud_metrics(fbeta: float = 2.0, names: Sequence[str] = METRICS) -> list:
    """Keras metrics by name: the article's (accuracy, precision, recall, auc) and PR-AUC and
    F-beta; all of :data:`METRICS` by default."""
    import keras

    unknown = [n for n in names if n not in METRICS]
    if unknown or isinstance(names, str):
        raise ValueError(f"metrics={names!r}; expected names from {list(METRICS)}.")
    make = {
        "accuracy": lambda: "accuracy",
        "precision": lambda: keras.metrics.Precision(name="precision"),
        "recall": lambda: keras.metrics.Recall(name="recall"),
        "auc": lambda: keras.metrics.AUC(name="auc"),
        "pr_auc": lambda: keras.metrics.AUC(curve="PR", name="pr_auc"),
        "fbeta": lambda: binary_fbeta(fbeta),
    }
    return [make[n]() for n in METRICS if n in names]


def build_model(n_features: int, initial_bias: float, *, neurons1: int, dropout_rate1: float,
                neurons2: int, dropout_rate2: float, optimizer, fbeta: float = 2.0,
                metrics: Sequence[str] = METRICS):
    """The article's network, compiled: Input -> Dense(neurons1, relu) -> Dropout ->
    Dense(neurons2, relu) -> Dropout -> Dense(1, sigmoid) with the log-odds initial bias;
    binary cross-entropy; :func:`fraud_metrics`."""
    import keras
    from keras.layers import Dense, Dropout, Input

    model = keras.models.Sequential([
        Input(shape=(n_features,)),
        Dense(units=neurons1, activation="relu"),
        Dropout(dropout_rate1),
        Dense(units=neurons2, activation="relu"),
        Dropout(dropout_rate2),
        Dense(1, activation="sigmoid",
              bias_initializer=keras.initializers.Constant(initial_bias)),
    ])
    model.compile(optimizer=optimizer, loss="binary_crossentropy",
                  metrics=fraud_metrics(fbeta, metrics))
    return model


def check_grid(grid: Mapping[str, Sequence], space: str = "article_grid") -> dict[str, list]:
    """A grid for ``space`` (``"grid"``: :data:`BAYESIAN_GRID`'s keys, ``"article_grid"``:
    :data:`ARTICLE_GRID`'s), each key a non-empty list of values."""
    keys = GRID_KEYS[space]
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid={grid!r}; expected a dict of lists keyed {list(keys)}.")
    missing = [k for k in keys if k not in grid]
    unknown = [k for k in grid if k not in keys]
    if missing or unknown:
        raise ValueError(
            f"grid has keys {list(grid)} (missing {missing}, unknown {unknown}); expected "
            f"exactly {list(keys)} for space={space!r}."
        )
    checked = {}
    for key in keys:
        values = grid[key]
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid[{key!r}]={values!r}; expected a non-empty list of values.")
        checked[key] = list(values)
    unknown_optimizers = [o for o in checked.get("optimizer_name", []) if o not in OPTIMIZERS]
    if unknown_optimizers:
        raise ValueError(f"grid['optimizer_name'] has {unknown_optimizers}; expected values "
                         f"from {list(OPTIMIZERS)}.")
    return checked


class FraudHyperModel(HyperModel):
    """The article's fraud hypermodel on a :class:`FraudData`.

    ``build(hp)`` is the article's network (:func:`build_model`) with the data's log-odds
    initial bias; ``fit`` chooses the batch size and epochs and trains with the data's balanced
    class weights and an ``EarlyStopping(monitor="val_loss", patience=patience)`` added to the
    caller's callbacks. It works with this project's ``hp`` and with KerasTuner's (the calls are
    the article's).

    Args:
        data: The task; its feature count, initial bias and class weights are used.
        space: ``"bayesian"``: the article's Bayesian-optimisation space (neurons1/neurons2 Int
            20..60 step 10, dropout_rate1/2 Float 0..0.5 step 0.1, optimizer_name among adam,
            rmsprop, sgd and lion, learning_rate Float 1e-4..1e-2 log, and, only when lion is
            chosen, beta_1_lion Float 0.8..0.95 step 0.05 and beta_2_lion Float 0.95..0.999
            step 0.049; batch_size Choice [16, 32, 64]; epochs Int from ``epochs``).
            ``"grid"``: the same hyperparameters, each a Choice over its list in ``grid``
            (default :data:`BAYESIAN_GRID`; Lion's betas still only when lion is chosen).
            ``"article_grid"``: the article's grid (Adam only), a Choice over each list of
            ``grid`` (default :data:`ARTICLE_GRID`).
        epochs: ``(min, max, step)`` of the Bayesian space's ``epochs``; default the article's
            (50, 200, 50).
        grid: The grid of a grid space; keys as its default's.
        patience: EarlyStopping's patience (epochs without a lower ``val_loss``).
        fbeta: The beta of the ``fbeta`` metric (2: recall weighs 4 times precision).
        metrics: The Keras metrics compiled in (names from :data:`METRICS`, default all); each
            costs time in every training step, so a search can keep only those it reads.
        seed: Training is seeded with :func:`configuration_seed` of ``seed`` and the trial's
            values (weights, dropout masks, shuffling), so a configuration scores the same
            every time on one machine; None leaves Keras' global seed alone.

    An ``epochs``, ``batch_size`` or ``class_weight`` passed to ``fit`` by the caller (e.g.
    ``epochs`` by Hyperband) wins over the hypermodel's; the hyperparameters are still declared.
    """

    def __init__(self, data: FraudData, *, space: str = "bayesian",
                 epochs: tuple[int, int, int] = (50, 200, 50),
                 grid: Mapping[str, Sequence] | None = None, patience: int = 10,
                 fbeta: float = 2.0, metrics: Sequence[str] = METRICS,
                 seed: int | None = 0) -> None:
        super().__init__(name="fraud")
        if not isinstance(data, FraudData):
            raise ValueError(f"data={data!r}; expected a FraudData (see fraud.load_data).")
        if space not in SPACES:
            raise ValueError(f"space={space!r}; expected one of {list(SPACES)}.")
        if (not isinstance(epochs, (tuple, list)) or len(epochs) != 3
                or not all(isinstance(e, int) and not isinstance(e, bool) for e in epochs)
                or not 1 <= epochs[0] <= epochs[1] or epochs[2] < 1):
            raise ValueError(
                f"epochs={epochs!r}; expected (min, max, step) integers with "
                "1 <= min <= max and step >= 1."
            )
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience={patience!r}; expected an integer >= 0.")
        if not isinstance(fbeta, (int, float)) or fbeta <= 0:
            raise ValueError(f"fbeta={fbeta!r}; expected a number > 0.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed={seed!r}; expected an integer or None.")
        self.data = data
        self.space = space
        self.epochs = tuple(epochs)
        default = BAYESIAN_GRID if space == "grid" else ARTICLE_GRID
        self.grid = check_grid(default if grid is None else grid,
                               space if space != "bayesian" else "article_grid")
        self.patience = patience
        self.fbeta = float(fbeta)
        self.seed = seed
        fraud_metrics_names = tuple(metrics)
        if not fraud_metrics_names or any(m not in METRICS for m in fraud_metrics_names):
            raise ValueError(f"metrics={metrics!r}; expected a non-empty list of names from "
                             f"{list(METRICS)}.")
        self.metrics = fraud_metrics_names

    # -- declarations ------------------------------------------------------------------------
    def _choice(self, hp, name: str):
        return hp.Choice(name, self.grid[name])

    def model_hyperparameters(self, hp) -> dict[str, Any]:
        """Declare (or read) the hyperparameters ``build`` uses; returns their values."""
        if self.space == "article_grid":
            values = {name: self._choice(hp, name) for name in
                      ("neurons1", "dropout_rate1", "neurons2", "dropout_rate2", "learning_rate")}
            return {**values, "optimizer_name": "adam"}
        if self.space == "grid":
            values = {name: self._choice(hp, name) for name in
                      ("neurons1", "dropout_rate1", "neurons2", "dropout_rate2",
                       "optimizer_name", "learning_rate")}
            if values["optimizer_name"] == "lion":
                with hp.conditional_scope("optimizer_name", ["lion"]):
                    values.update({name: self._choice(hp, name) for name in _LION})
            return values
        values = {
            "neurons1": hp.Int("neurons1", min_value=20, max_value=60, step=10),
            "dropout_rate1": hp.Float("dropout_rate1", min_value=0.0, max_value=0.5, step=0.1),
            "neurons2": hp.Int("neurons2", min_value=20, max_value=60, step=10),
            "dropout_rate2": hp.Float("dropout_rate2", min_value=0.0, max_value=0.5, step=0.1),
            "optimizer_name": hp.Choice("optimizer_name", values=list(OPTIMIZERS)),
            "learning_rate": hp.Float("learning_rate", min_value=1e-4, max_value=1e-2,
                                      sampling="log"),
        }
        if values["optimizer_name"] == "lion":
            with hp.conditional_scope("optimizer_name", ["lion"]):
                values["beta_1_lion"] = hp.Float("beta_1_lion", min_value=0.8, max_value=0.95,
                                                 step=0.05)
                values["beta_2_lion"] = hp.Float("beta_2_lion", min_value=0.95,
                                                 max_value=0.999, step=0.049)
        return values

    def fit_hyperparameters(self, hp) -> tuple[int, int]:
        """Declare (or read) the hyperparameters ``fit`` chooses: ``(batch_size, epochs)``."""
        if self.space != "bayesian":
            return self._choice(hp, "batch_size"), self._choice(hp, "epochs")
        low, high, step = self.epochs
        return (hp.Choice("batch_size", values=[16, 32, 64]),
                hp.Int("epochs", min_value=low, max_value=high, step=step))

    def configuration(self, hp) -> dict[str, Any]:
        """Declare every hyperparameter (``build``'s, then ``fit``'s) without building a
        model; returns the values (a trial's configuration)."""
        values = self.model_hyperparameters(hp)
        values["batch_size"], values["epochs"] = self.fit_hyperparameters(hp)
        return values

    # -- the KerasTuner interface ------------------------------------------------------------
    def _seed(self, values: Mapping[str, Any]) -> None:
        if self.seed is not None:
            import keras

            keras.utils.set_random_seed(configuration_seed(self.seed, values))

    def build(self, hp):
        values = self.model_hyperparameters(hp)
        self._seed(values)
        optimizer = make_optimizer(values["optimizer_name"], values["learning_rate"],
                                   values.get("beta_1_lion"), values.get("beta_2_lion"))
        layers = {k: values[k] for k in ("neurons1", "dropout_rate1", "neurons2",
                                         "dropout_rate2")}
        return build_model(self.data.n_features, self.data.initial_bias,
                           optimizer=optimizer, fbeta=self.fbeta, metrics=self.metrics, **layers)

    def fit(self, hp, model=None, *args, **kwargs):
        import keras

        model = self.build(hp) if model is None else model
        batch_size, epochs = self.fit_hyperparameters(hp)
        kwargs.setdefault("batch_size", batch_size)
        kwargs.setdefault("epochs", epochs)
        kwargs.setdefault("class_weight", self.data.class_weights)
        kwargs["callbacks"] = [
            *(kwargs.get("callbacks") or []),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience),
        ]
        # Dropout masks and shuffling from the whole configuration's seed (build seeded the
        # initial weights from the model's part).
        self._seed({**self.model_hyperparameters(hp), "batch_size": kwargs["batch_size"],
                    "epochs": kwargs["epochs"]})
        return model.fit(*args, **kwargs)
