"""The fraud task's data: a seeded synthetic set or a user's CSV, split and scaled.

:func:`synthetic_fraud` (a seeded, imbalanced, overlapping scikit-learn ``make_classification``
set) or :func:`read_csv` (a user's CSV and its 0/1 target column), then :func:`prepare`
(stratified train / validation / test splits, a ``StandardScaler`` fitted on the training split
only); :func:`load_data` does both.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
