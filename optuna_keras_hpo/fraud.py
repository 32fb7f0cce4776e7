"""The article's task: fraud detection with a small Keras network (see docs/fraud.md).

* Data: :func:`synthetic_fraud` (a seeded, imbalanced, overlapping scikit-learn
  ``make_classification`` set) or :func:`read_csv` (a user's CSV and its 0/1 target column), then
  :func:`prepare` (stratified train / validation / test splits, a ``StandardScaler`` fitted on the
  training split only); :func:`load_data` does both.
* :class:`FraudHyperModel`: the article's network and search spaces (its Bayesian-optimisation
  space, or its Adam-only grid).
* :data:`OBJECTIVES`: what a search maximises. Recall alone is degenerate (flagging everything
  gives recall 1.0), so precision-aware objectives sit beside the article's ``val_recall``.
* :func:`evaluate_test`: test-split metrics of a trained model, computed with scikit-learn.
* :func:`sklearn_grid_baseline`: the article's ``GridSearchCV`` over a scikeras
  ``KerasClassifier``, with the stratified folds passed explicitly.
"""

from __future__ import annotations

import csv
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from optuna_keras_hpo.hypermodel import HyperModel

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

# The synthetic set's documented shape (see synthetic_fraud and docs/fraud.md).
SYNTHETIC_INFORMATIVE_SHARE = 0.4  # 10 of 25 features carry the signal ...
SYNTHETIC_REDUNDANT_SHARE = 0.2  # ... 5 are linear mixtures of those, the rest is noise
SYNTHETIC_FLIP_Y = 0.01  # 1% of labels are drawn at random (label noise)
SYNTHETIC_CLUSTERS_PER_CLASS = 2  # each class is two Gaussian clusters: not linearly separable
SYNTHETIC_FRAUD_RATE = 0.05
SYNTHETIC_CLASS_SEP = 1.0

_MISSING = {"", "na", "n/a", "nan", "null", "none"}
_TRUE_FALSE = {"true": 1, "false": 0}


@dataclass
class FraudData:
    """Scaled, stratified splits of a binary fraud task (label 1 = fraud)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {
            "train": (self.x_train, self.y_train),
            "validation": (self.x_val, self.y_val),
            "test": (self.x_test, self.y_test),
        }

    def describe(self) -> dict[str, Any]:
        """A flat summary: source, features, rows and fraud rate overall and per split."""
        ys = [y for _, y in self.splits().values()]
        total = sum(len(y) for y in ys)
        info: dict[str, Any] = {
            "source": self.source,
            "features": self.n_features,
            "rows": total,
            "frauds": int(sum(int(np.sum(y == 1)) for y in ys)),
            "fraud_rate": round(sum(float(np.sum(y == 1)) for y in ys) / total, 4),
        }
        for name, (_, y) in self.splits().items():
            info[f"{name}_rows"] = len(y)
            info[f"{name}_frauds"] = int(np.sum(y == 1))
            info[f"{name}_fraud_rate"] = round(float(np.mean(y == 1)), 4)
        return info

    @property
    def initial_bias(self) -> float:
        """The output layer's initial bias, log(pos / neg) on the training split (the article's):
        the untrained model then predicts the training fraud rate."""
        pos = int(np.sum(self.y_train == 1))
        neg = int(np.sum(self.y_train == 0))
        return float(np.log(pos / neg))

    @property
    def class_weights(self) -> dict[int, float]:
        """Balanced class weights on the training split (scikit-learn's
        ``compute_class_weight("balanced")``, as the article)."""
        from sklearn.utils.class_weight import compute_class_weight

        classes = np.array([0, 1])
        weights = compute_class_weight("balanced", classes=classes, y=self.y_train)
        return {int(c): float(w) for c, w in zip(classes, weights, strict=True)}


def synthetic_fraud(
    n_rows: int = 10_000,
    n_features: int = 25,
    fraud_rate: float = SYNTHETIC_FRAUD_RATE,
    class_sep: float = SYNTHETIC_CLASS_SEP,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded synthetic fraud set: scikit-learn's ``make_classification``.

    Defaults: 10,000 rows, 25 features (10 informative, 5 redundant linear mixtures of them,
    10 pure noise), 5% fraud, each class two Gaussian clusters (``n_clusters_per_class=2``)
    whose centres lie ``class_sep=1.0`` apart on a hypercube, and 1% of labels redrawn at random
    (``flip_y=0.01``). The classes overlap: on the default set's test split (``load_data()``) a
    balanced logistic regression reaches a ROC-AUC of 0.78 and PR-AUC of 0.17, a balanced
    gradient-boosted tree 0.92 and 0.77 (a model that flags everything: recall 1.0, PR-AUC
    0.05). ``fraud_rate`` is the expected share of label 1 after the label noise (the class
    weight given to ``make_classification`` is corrected for ``flip_y``).

    Returns ``(x, y)`` with ``y`` in {0, 1}, 1 = fraud.
    """
    from sklearn.datasets import make_classification

    for name, value, minimum in (("n_rows", n_rows, 20), ("n_features", n_features, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r}; expected an integer >= {minimum}.")
    if not isinstance(fraud_rate, (int, float)) or not 0 < fraud_rate <= 0.5:
        raise ValueError(f"fraud_rate={fraud_rate!r}; expected a number in (0, 0.5].")
    if not isinstance(class_sep, (int, float)) or class_sep <= 0:
        raise ValueError(f"class_sep={class_sep!r}; expected a number > 0.")
    flip = SYNTHETIC_FLIP_Y
    # flip_y redraws a share `flip` of labels uniformly: rate = w * (1 - flip) + flip / 2.
    weight = max((fraud_rate - flip / 2) / (1 - flip), 1e-6)
    informative = max(2, round(SYNTHETIC_INFORMATIVE_SHARE * n_features))
    redundant = min(n_features - informative, round(SYNTHETIC_REDUNDANT_SHARE * n_features))
    x, y = make_classification(
        n_samples=n_rows, n_features=n_features, n_informative=informative,
        n_redundant=redundant, n_repeated=0, n_classes=2,
        n_clusters_per_class=SYNTHETIC_CLUSTERS_PER_CLASS, weights=[1 - weight],
        flip_y=flip, class_sep=float(class_sep), random_state=seed,
    )
    return x.astype(np.float32), y.astype(np.int64)


def _synthetic_source(n_rows, n_features, fraud_rate, class_sep, seed) -> str:
    informative = max(2, round(SYNTHETIC_INFORMATIVE_SHARE * n_features))
    redundant = min(n_features - informative, round(SYNTHETIC_REDUNDANT_SHARE * n_features))
    return (
        f"synthetic (make_classification: {n_rows} rows, {n_features} features of which "
        f"{informative} informative and {redundant} redundant, fraud rate {fraud_rate:g}, "
        f"class_sep {class_sep:g}, {SYNTHETIC_CLUSTERS_PER_CLASS} clusters per class, "
        f"flip_y {SYNTHETIC_FLIP_Y:g}, seed {seed})"
    )


def _encode_target(values: list[str], target: str, path: str,
                   line_numbers: list[int]) -> tuple[np.ndarray, str]:
    """Labels in {0, 1} from a CSV column, and how they were mapped."""
    stripped = [v.strip() for v in values]
    missing = [i for i, v in enumerate(stripped) if v.lower() in _MISSING]
    if missing:
        lines = ", ".join(str(line_numbers[i]) for i in missing[:5])
        raise ValueError(
            f"target={target!r} in {path!r} has {len(missing)} empty or missing value(s) (first "
            f"at line(s) {lines}); expected a label (0/1) on every row."
        )
    distinct, counts = np.unique(np.array(stripped), return_counts=True)
    if len(distinct) < 2:
        raise ValueError(
            f"target={target!r} in {path!r} has one class only ({distinct.tolist()}); "
            "expected both 0 (legitimate) and 1 (fraud)."
        )
    as_number = {}
    for value in distinct:
        try:
            as_number[value] = float(value)
        except ValueError:
            break
    if (len(as_number) == len(distinct) and set(as_number.values()) == {0.0, 1.0}):
        y = np.array([as_number[v] for v in stripped], dtype=np.int64)
        return y, "0/1"
    lowered = {v.lower() for v in distinct}
    if lowered <= set(_TRUE_FALSE) and len(lowered) == 2:
        y = np.array([_TRUE_FALSE[v.lower()] for v in stripped], dtype=np.int64)
        return y, "True -> 1, False -> 0"
    shown = ", ".join(f"{v!r} ({c} rows)" for v, c in
                      zip(distinct[:10].tolist(), counts[:10].tolist(), strict=True))
    more = f" and {len(distinct) - 10} more" if len(distinct) > 10 else ""
    if len(distinct) != 2:
        raise ValueError(
            f"target={target!r} in {path!r} is not binary: {len(distinct)} distinct values "
            f"({shown}{more}); expected two classes (0/1, True/False, or two labels of which "
            "the rarer is the fraud class)."
        )
    if counts[0] == counts[1]:
        raise ValueError(
            f"target={target!r} in {path!r} has two labels with equal counts ({shown}): which "
            "one is fraud is ambiguous; encode the target as 0/1 (1 = fraud)."
        )
    positive = str(distinct[int(np.argmin(counts))])
    y = np.array([1 if v == positive else 0 for v in stripped], dtype=np.int64)
    negative = str(distinct[int(np.argmax(counts))])
    return y, f"{positive!r} -> 1 (the rarer label), {negative!r} -> 0"


def _read_csv(path, target: str) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """``read_csv`` plus a description of how the target was mapped to 0/1."""
    if not isinstance(target, str) or not target:
        raise ValueError(f"target={target!r}; expected the name of the CSV's label column.")
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(
            f"path={str(path)!r}: no such file; expected a CSV file with a header row and a "
            f"{target!r} column."
        )
    if not file.is_file():
        raise ValueError(f"path={str(path)!r} is not a file; expected a CSV file.")
    rows, line_numbers = [], []
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for row in reader:
                if row and any(c.strip() for c in row):  # blank lines are skipped
                    rows.append(row)
                    line_numbers.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(
            f"path={str(path)!r} cannot be read as a CSV file ({error}); expected UTF-8 text "
            "with comma-separated columns."
        ) from error
    if not rows:
        raise ValueError(
            f"path={str(path)!r} is empty; expected a header row naming the columns (one of "
            f"them target={target!r}) and data rows."
        )
    header = [name.strip() for name in rows[0]]
    body, line_numbers = rows[1:], line_numbers[1:]
    if target not in header:
        raise ValueError(
            f"target={target!r} is not a column of {str(path)!r}; its columns are {header}."
        )
    if len(header) < 2:
        raise ValueError(
            f"{str(path)!r} has only the target column {target!r}; expected feature columns too."
        )
    if not body:
        raise ValueError(f"{str(path)!r} has a header but no data rows.")
    for number, row in zip(line_numbers, body, strict=True):
        if len(row) != len(header):
            raise ValueError(
                f"{str(path)!r}, line {number}: {len(row)} fields, but the header has "
                f"{len(header)}; expected every row to have one value per column."
            )
    columns = list(zip(*body, strict=True))
    t = header.index(target)
    y, mapping = _encode_target(list(columns[t]), target, str(path), line_numbers)
    names = [n for i, n in enumerate(header) if i != t]
    features, non_numeric, missing = [], [], []
    for name, column in ((n, c) for i, (n, c) in enumerate(zip(header, columns, strict=True))
                         if i != t):
        values = [v.strip() for v in column]
        try:
            array = np.array(values).astype(np.float64)
        except ValueError:
            bad = next((v for v in values if v.lower() not in _MISSING and not _is_float(v)),
                       None)
            if bad is not None:
                non_numeric.append(f"{name!r} (e.g. {bad!r})")
                continue
            array = np.array([np.nan if v.lower() in _MISSING else float(v) for v in values])
        n_missing = int(np.sum(~np.isfinite(array)))
        if n_missing:
            missing.append(f"{name!r} ({n_missing} rows)")
        features.append(array)
    if non_numeric:
        raise ValueError(
            f"{str(path)!r} has non-numeric feature columns: {', '.join(non_numeric)}; expected "
            "numbers in every column but the target (encode categories as numbers, or drop "
            "those columns)."
        )
    if missing:
        raise ValueError(
            f"{str(path)!r} has feature columns with missing or non-finite values: "
            f"{', '.join(missing)}; expected a finite number in every cell (impute or drop)."
        )
    x = np.stack(features, axis=1).astype(np.float32)
    if np.mean(y) > 0.5:
        warnings.warn(
            f"target={target!r} in {str(path)!r}: class 1 is the majority ({np.mean(y):.1%} of "
            "rows); recall and precision are measured on class 1, the class meant as fraud.",
            UserWarning, stacklevel=3,
        )
    return x, y, names, mapping


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path, target: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features, 0/1 labels and feature names from a CSV file with a header row.

    Every column but ``target`` is a feature and must be numeric and complete. The target may
    be 0/1 (``0.0``/``1.0`` too; 1 = fraud), True/False (any case; True = fraud), or any other
    two labels, in which case the rarer label is fraud (1) (equal counts are refused as
    ambiguous); the mapping is recorded in :attr:`FraudData.source` by :func:`load_data`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an empty file, no data rows, rows of the wrong length, ``target`` not a
            column (the columns are listed), a target that is not binary (its distinct values
            are shown) or has missing values, non-numeric feature columns (named, with an
            example value), or missing / non-finite feature values.
    """
    x, y, names, _ = _read_csv(path, target)
    return x, y, names


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name}={value!r}; expected a fraction in (0, 1).")
    return float(value)


def prepare(
    x,
    y,
    *,
    seed: int = 0,
    val_size: float = 0.2,
    test_size: float = 0.2,
    feature_names: Sequence[str] | None = None,
    source: str = "",
) -> FraudData:
    """Stratified train / validation / test splits, scaled with a ``StandardScaler`` fitted on
    the training split only.

    ``val_size`` and ``test_size`` are fractions of all rows (default 60 / 20 / 20); every
    split keeps the fraud rate (``train_test_split(stratify=...)``) and must hold at least one
    row of each class.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    val_size = _check_fraction("val_size", val_size)
    test_size = _check_fraction("test_size", test_size)
    if val_size + test_size >= 1:
        raise ValueError(
            f"val_size={val_size!r}, test_size={test_size!r}; expected val_size + test_size < 1 "
            "(the rest is the training split)."
        )
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(
            f"x of shape {x.shape}, y of shape {y.shape}; expected x (rows, features) and y "
            "(rows,) with the same number of rows."
        )
    labels = set(np.unique(y).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"y has labels {sorted(labels)}; expected 0 (legitimate) and 1 (fraud).")
    y = y.astype(np.int64)
    if feature_names is None:
        feature_names = [f"x{i}" for i in range(x.shape[1])]
    feature_names = list(feature_names)
    if len(feature_names) != x.shape[1]:
        raise ValueError(
            f"feature_names has {len(feature_names)} names; expected one per column of x "
            f"({x.shape[1]})."
        )
    smallest = min(val_size, test_size, 1 - val_size - test_size)
    needed = max(3, math.ceil(1 / smallest))
    counts = {c: int(np.sum(y == c)) for c in (0, 1)}
    rare = min(counts, key=counts.get)
    if counts[rare] < needed:
        raise ValueError(
            f"y has {counts[rare]} row(s) of class {rare} ({'fraud' if rare else 'legitimate'}) "
            f"out of {len(y)}; stratified train / validation / test splits with "
            f"val_size={val_size:g}, test_size={test_size:g} need at least {needed} of each "
            "class."
        )
    x_dev, x_test, y_dev, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_dev, y_dev, test_size=val_size / (1 - test_size), stratify=y_dev, random_state=seed)
    for name, part in (("train", y_train), ("validation", y_val), ("test", y_test)):
        if len(np.unique(part)) < 2:
            raise ValueError(
                f"The {name} split has no row of class {1 - int(part[0])}; y has "
                f"{counts[rare]} row(s) of class {rare}, too few to stratify with "
                f"val_size={val_size:g}, test_size={test_size:g}."
            )
    scaler = StandardScaler().fit(x_train)

    def scale(a):
        return scaler.transform(a).astype(np.float32)

    return FraudData(scale(x_train), y_train, scale(x_val), y_val, scale(x_test), y_test,
                     feature_names=feature_names, source=source)


def load_data(
    data: str | None = None,
    target: str | None = None,
    *,
    n_rows: int = 10_000,
    seed: int = 0,
) -> FraudData:
    """The synthetic set (``data=None``; ``n_rows`` rows, :func:`synthetic_fraud`'s other
    defaults) or a CSV file (``data`` its path, ``target`` its label column), prepared by
    :func:`prepare`."""
    if data is None:
        if target is not None:
            raise ValueError(
                f"target={target!r} without data; pass data= (a CSV file) too, or neither for "
                "the synthetic set."
            )
        x, y = synthetic_fraud(n_rows=n_rows, seed=seed)
        source = _synthetic_source(n_rows, x.shape[1], SYNTHETIC_FRAUD_RATE,
                                   SYNTHETIC_CLASS_SEP, seed)
        return prepare(x, y, seed=seed, source=source)
    if target is None:
        raise ValueError(
            f"data={str(data)!r}, target=None; pass target= (the name of its label column)."
        )
    x, y, names, mapping = _read_csv(data, target)
    return prepare(x, y, seed=seed, feature_names=names,
                   source=f"{data} (target {target!r}: {mapping})")


# --------------------------------------------------------------------------------------------
# The hypermodel
# --------------------------------------------------------------------------------------------

OPTIMIZERS = ("adam", "rmsprop", "sgd", "lion")

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

# A 12-point sub-grid of the article's values with short training, for quick runs.
QUICK_GRID: dict[str, list] = {
    "learning_rate": [0.001, 0.0005, 0.0001],
    "neurons1": [20, 40],
    "neurons2": [20, 40],
    "dropout_rate1": [0.1],
    "dropout_rate2": [0.1],
    "batch_size": [64],
    "epochs": [6],
}

GRID_KEYS = tuple(ARTICLE_GRID)


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


def fraud_metrics(fbeta: float = 2.0) -> list:
    """The article's metrics plus PR-AUC and F-beta: accuracy, precision, recall, auc, pr_auc,
    fbeta."""
    import keras

    return [
        "accuracy",
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
        keras.metrics.AUC(name="auc"),
        keras.metrics.AUC(curve="PR", name="pr_auc"),
        binary_fbeta(fbeta),
    ]


def build_model(n_features: int, initial_bias: float, *, neurons1: int, dropout_rate1: float,
                neurons2: int, dropout_rate2: float, optimizer, fbeta: float = 2.0):
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
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=fraud_metrics(fbeta))
    return model


def check_grid(grid: Mapping[str, Sequence]) -> dict[str, list]:
    """A grid with exactly :data:`ARTICLE_GRID`'s keys, each a non-empty list of values."""
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid={grid!r}; expected a dict of lists keyed {list(GRID_KEYS)}.")
    missing = [k for k in GRID_KEYS if k not in grid]
    unknown = [k for k in grid if k not in GRID_KEYS]
    if missing or unknown:
        raise ValueError(
            f"grid has keys {list(grid)} (missing {missing}, unknown {unknown}); expected "
            f"exactly {list(GRID_KEYS)}."
        )
    checked = {}
    for key in GRID_KEYS:
        values = grid[key]
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid[{key!r}]={values!r}; expected a non-empty list of values.")
        checked[key] = list(values)
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
            ``"grid"``: the article's grid (Adam only), a Choice over each list of ``grid``.
        epochs: ``(min, max, step)`` of the Bayesian space's ``epochs``; default the article's
            (50, 200, 50).
        grid: The grid space (default :data:`ARTICLE_GRID`); keys as :data:`ARTICLE_GRID`.
        patience: EarlyStopping's patience (epochs without a lower ``val_loss``).
        fbeta: The beta of the ``fbeta`` metric (2: recall weighs 4 times precision).

    An ``epochs``, ``batch_size`` or ``class_weight`` passed to ``fit`` by the caller (e.g.
    ``epochs`` by Hyperband) wins over the hypermodel's; the hyperparameters are still declared.
    """

    def __init__(self, data: FraudData, *, space: str = "bayesian",
                 epochs: tuple[int, int, int] = (50, 200, 50),
                 grid: Mapping[str, Sequence] | None = None, patience: int = 10,
                 fbeta: float = 2.0) -> None:
        super().__init__(name="fraud")
        if not isinstance(data, FraudData):
            raise ValueError(f"data={data!r}; expected a FraudData (see fraud.load_data).")
        if space not in ("bayesian", "grid"):
            raise ValueError(f"space={space!r}; expected 'bayesian' or 'grid'.")
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
        self.data = data
        self.space = space
        self.epochs = tuple(epochs)
        self.grid = check_grid(ARTICLE_GRID if grid is None else grid)
        self.patience = patience
        self.fbeta = float(fbeta)

    def _optimizer(self, hp):
        import keras

        if self.space == "grid":
            return keras.optimizers.Adam(
                learning_rate=hp.Choice("learning_rate", self.grid["learning_rate"]))
        optimizer_name = hp.Choice("optimizer_name", values=list(OPTIMIZERS))
        learning_rate = hp.Float("learning_rate", min_value=1e-4, max_value=1e-2,
                                 sampling="log")
        if optimizer_name == "adam":
            return keras.optimizers.Adam(learning_rate=learning_rate)
        if optimizer_name == "rmsprop":
            return keras.optimizers.RMSprop(learning_rate=learning_rate)
        if optimizer_name == "sgd":
            return keras.optimizers.SGD(learning_rate=learning_rate)
        with hp.conditional_scope("optimizer_name", ["lion"]):
            return keras.optimizers.Lion(
                learning_rate=learning_rate,
                beta_1=hp.Float("beta_1_lion", min_value=0.8, max_value=0.95, step=0.05),
                beta_2=hp.Float("beta_2_lion", min_value=0.95, max_value=0.999, step=0.049),
            )

    def build(self, hp):
        if self.space == "grid":
            layers = {name: hp.Choice(name, self.grid[name])
                      for name in ("neurons1", "dropout_rate1", "neurons2", "dropout_rate2")}
        else:
            layers = {
                "neurons1": hp.Int("neurons1", min_value=20, max_value=60, step=10),
                "dropout_rate1": hp.Float("dropout_rate1", min_value=0.0, max_value=0.5,
                                          step=0.1),
                "neurons2": hp.Int("neurons2", min_value=20, max_value=60, step=10),
                "dropout_rate2": hp.Float("dropout_rate2", min_value=0.0, max_value=0.5,
                                          step=0.1),
            }
        optimizer = self._optimizer(hp)
        return build_model(self.data.n_features, self.data.initial_bias,
                           optimizer=optimizer, fbeta=self.fbeta, **layers)

    def fit_hyperparameters(self, hp) -> tuple[int, int]:
        """Declare (or read) the hyperparameters ``fit`` chooses: ``(batch_size, epochs)``."""
        if self.space == "grid":
            return (hp.Choice("batch_size", self.grid["batch_size"]),
                    hp.Choice("epochs", self.grid["epochs"]))
        low, high, step = self.epochs
        return (hp.Choice("batch_size", values=[16, 32, 64]),
                hp.Int("epochs", min_value=low, max_value=high, step=step))

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
        return model.fit(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectiveSpec:
    """What a fraud search maximises.

    Attributes:
        name: ``"recall"``, ``"pr_auc"``, ``"fbeta"``, ``"recall_at_precision"`` or ``"pareto"``.
        metrics: The Keras log names maximised (two for the Pareto front).
        directions: Optuna directions, one per metric (all ``"maximize"``).
        precision_floor: For ``recall_at_precision``: trials must reach
            ``val_precision >= precision_floor`` (an Optuna constraint); else None.
        description: One line for reports.
    """

    name: str
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    precision_floor: float | None
    description: str

    def constraints(self, metrics: Mapping[str, float]) -> tuple[float, ...]:
        """Optuna's constraint values (feasible when every one is <= 0) for a trial's metrics:
        ``(precision_floor - val_precision,)``, or ``()`` without a floor."""
        if self.precision_floor is None:
            return ()
        precision = metrics.get("val_precision")
        if precision is None or not math.isfinite(float(precision)):
            return (1.0,)
        return (self.precision_floor - float(precision),)


OBJECTIVES: dict[str, ObjectiveSpec] = {
    "recall": ObjectiveSpec(
        "recall", ("val_recall",), ("maximize",), None,
        "validation recall at threshold 0.5, the article's objective; alone it is degenerate: "
        "a model that flags every transaction has recall 1.0",
    ),
    "pr_auc": ObjectiveSpec(
        "pr_auc", ("val_pr_auc",), ("maximize",), None,
        "area under the validation precision-recall curve (Keras AUC(curve='PR')): "
        "threshold-free, high only if precision holds up as recall grows",
    ),
    "fbeta": ObjectiveSpec(
        "fbeta", ("val_fbeta",), ("maximize",), None,
        "validation F2 score at threshold 0.5: recall weighted 4 times precision, but a model "
        "that flags everything scores low",
    ),
    "recall_at_precision": ObjectiveSpec(
        "recall_at_precision", ("val_recall",), ("maximize",), 0.5,
        "validation recall subject to validation precision >= 0.5 (an Optuna constraint: "
        "trials under the floor are infeasible)",
    ),
    "pareto": ObjectiveSpec(
        "pareto", ("val_recall", "val_precision"), ("maximize", "maximize"), None,
        "validation recall and precision, both maximised: the result is their Pareto front",
    ),
}


def objective_spec(name: str, precision_floor: float = 0.5) -> ObjectiveSpec:
    """The :class:`ObjectiveSpec` called ``name``; ``precision_floor`` applies to
    ``recall_at_precision`` (ignored otherwise)."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective={name!r}; expected one of {list(OBJECTIVES)}.")
    spec = OBJECTIVES[name]
    if spec.precision_floor is None:
        return spec
    if (isinstance(precision_floor, bool) or not isinstance(precision_floor, (int, float))
            or not 0 < precision_floor < 1):
        raise ValueError(
            f"precision_floor={precision_floor!r}; expected a number in (0, 1)."
        )
    floor = float(precision_floor)
    return replace(
        spec, precision_floor=floor,
        description=spec.description.replace(">= 0.5", f">= {floor:g}"),
    )


# --------------------------------------------------------------------------------------------
# Evaluation and the scikit-learn baseline
# --------------------------------------------------------------------------------------------


def _positive_scores(model, x: np.ndarray) -> np.ndarray:
    """P(fraud) per row from a Keras model or a scikit-learn classifier (predict_proba)."""
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(x))
        return proba[:, -1] if proba.ndim == 2 else proba.ravel()
    return np.asarray(model.predict(x, verbose=0)).reshape(len(x), -1)[:, -1]


def evaluate_test(model, data: FraudData, threshold: float = 0.5) -> dict[str, float]:
    """Test-split recall, precision, accuracy (at ``score > threshold``, Keras' rule), ROC-AUC
    and PR-AUC (average precision), with scikit-learn's metrics.

    ``model``: a Keras model (``predict``) or a scikit-learn classifier (``predict_proba``).
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or \
            not 0 < threshold < 1:
        raise ValueError(f"threshold={threshold!r}; expected a number in (0, 1).")
    scores = _positive_scores(model, data.x_test)
    predicted = (scores > threshold).astype(np.int64)
    y = data.y_test
    return {
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(y, predicted)),
        "auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
    }


def _scikeras_model(n_features, initial_bias, learning_rate, neurons1, neurons2,
                    dropout_rate1, dropout_rate2, fbeta):
    """The article's ``create_model`` for scikeras: the same network with Adam."""
    import keras

    return build_model(n_features, initial_bias, neurons1=neurons1, neurons2=neurons2,
                       dropout_rate1=dropout_rate1, dropout_rate2=dropout_rate2,
                       optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                       fbeta=fbeta)


_MODEL_PARAMS = ("learning_rate", "neurons1", "neurons2", "dropout_rate1", "dropout_rate2")


def kerasclassifier(data: FraudData, *, patience: int = 10, seed: int | None = 0,
                    fbeta: float = 2.0):
    """The article's scikeras ``KerasClassifier`` on ``data``: the fraud network with Adam, the
    balanced class weights, EarlyStopping on ``val_loss`` of the validation split."""
    import keras
    from scikeras.wrappers import KerasClassifier

    first = {k: v[0] for k, v in ARTICLE_GRID.items()}
    return KerasClassifier(
        model=_scikeras_model,
        model__n_features=data.n_features,
        model__initial_bias=data.initial_bias,
        model__fbeta=fbeta,
        **{f"model__{k}": first[k] for k in _MODEL_PARAMS},
        batch_size=first["batch_size"],
        epochs=first["epochs"],
        class_weight=data.class_weights,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience)],
        fit__validation_data=(data.x_val, data.y_val),
        random_state=seed,
        verbose=0,
    )


def sklearn_grid_baseline(data: FraudData, grid: Mapping[str, Sequence] | None = None, *,
                          cv: int = 3, n_jobs: int = 1, seed: int = 0,
                          patience: int = 10) -> dict[str, Any]:
    """The article's baseline: scikit-learn ``GridSearchCV`` over a scikeras ``KerasClassifier``
    (Adam only), ``scoring="recall"``, refitted on the whole training split.

    The folds are ``StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)``, passed
    explicitly: with scikit-learn 1.9 and scikeras 0.13, ``is_classifier(KerasClassifier(...))``
    is False, so ``cv=3`` would silently become an unstratified ``KFold``.

    Returns a JSON-ready dict: ``best_params``, ``best_score`` (best mean CV recall), ``test``
    (:func:`evaluate_test` of the refitted best estimator), ``n_candidates``, ``n_fits``
    (candidates x folds, plus the refit not counted), ``cv``, ``splitter`` (its repr),
    ``fold_positives`` (frauds in each validation fold), ``wall_seconds``.
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    grid = check_grid(ARTICLE_GRID if grid is None else grid)
    if isinstance(cv, bool) or not isinstance(cv, int) or cv < 2:
        raise ValueError(f"cv={cv!r}; expected an integer >= 2 (folds).")
    positives = int(np.sum(data.y_train == 1))
    if positives < cv:
        raise ValueError(
            f"cv={cv}: the training split has {positives} fraud row(s), fewer than the folds; "
            "expected at least one per fold."
        )
    splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    param_grid = {(f"model__{k}" if k in _MODEL_PARAMS else k): list(v) for k, v in grid.items()}
    search = GridSearchCV(
        estimator=kerasclassifier(data, patience=patience, seed=seed),
        param_grid=param_grid,
        scoring="recall",
        cv=splitter,
        n_jobs=n_jobs,
        error_score="raise",
        refit=True,
    )
    start = time.monotonic()
    search.fit(data.x_train, data.y_train)
    wall = time.monotonic() - start
    n_candidates = len(search.cv_results_["params"])
    best = {k.removeprefix("model__"): _plain(v) for k, v in search.best_params_.items()}
    return {
        "best_params": best,
        "best_score": float(search.best_score_),
        "test": evaluate_test(search.best_estimator_, data),
        "n_candidates": n_candidates,
        "n_fits": n_candidates * cv,
        "cv": cv,
        "splitter": repr(search.cv),
        "fold_positives": [int(np.sum(data.y_train[test] == 1))
                           for _, test in search.cv.split(data.x_train, data.y_train)],
        "wall_seconds": wall,
    }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
