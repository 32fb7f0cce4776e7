"""Test metrics of a trained model, and the article's scikit-learn grid-search baseline."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from optuna_keras_hpo.fraud.data import FraudData
from optuna_keras_hpo.fraud.hypermodel import ARTICLE_GRID, build_model, check_grid

INTERVAL_METRICS = ("pr_auc", "recall", "precision")  # the metrics given bootstrap intervals
BOOTSTRAP_RESAMPLES = 1000


def positive_scores(model, x: np.ndarray) -> np.ndarray:
    """P(fraud) per row from a Keras model or a scikit-learn classifier (predict_proba)."""
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(x))
        return proba[:, -1] if proba.ndim == 2 else proba.ravel()
    return np.asarray(model.predict(x, verbose=0)).reshape(len(x), -1)[:, -1]


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or \
            not 0 < threshold < 1:
        raise ValueError(f"threshold={threshold!r}; expected a number in (0, 1).")
    return float(threshold)


def metrics_from_scores(y: np.ndarray, scores: np.ndarray,
                        threshold: float = 0.5) -> dict[str, float]:
    """Recall, precision, accuracy (at ``score > threshold``, Keras' rule), ROC-AUC and PR-AUC
    (average precision) of fraud scores, with scikit-learn's metrics."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    threshold = _check_threshold(threshold)
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=np.float64)
    predicted = (scores > threshold).astype(np.int64)
    return {
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(y, predicted)),
        "auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
    }


def evaluate_test(model, data: FraudData, threshold: float = 0.5) -> dict[str, float]:
    """Test-split :func:`metrics_from_scores` of a Keras model (``predict``) or a
    scikit-learn classifier (``predict_proba``)."""
    _check_threshold(threshold)
    return metrics_from_scores(data.y_test, positive_scores(model, data.x_test), threshold)


def _batch_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """:data:`INTERVAL_METRICS` of many resamples at once (rows of ``y`` and ``scores``): the
    same values as scikit-learn's ``recall_score``, ``precision_score`` (0 when undefined) and
    ``average_precision_score`` (tied scores form one threshold), vectorised for the bootstrap."""
    y = np.atleast_2d(y).astype(np.float64)
    scores = np.atleast_2d(scores)
    flagged = scores > threshold
    positives = y.sum(axis=-1)
    hits = (y * flagged).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(positives > 0, hits / positives, 0.0)
        precision = np.where(flagged.any(axis=-1), hits / flagged.sum(axis=-1), 0.0)
        order = np.argsort(-scores, axis=-1, kind="stable")
        s = np.take_along_axis(scores, order, axis=-1)
        t = np.take_along_axis(y, order, axis=-1)
        n = s.shape[-1]
        # The precision at the end of each tie group, for every row in the group.
        ends = np.ones_like(s, dtype=bool)
        ends[..., :-1] = s[..., :-1] != s[..., 1:]
        end_index = np.where(ends, np.arange(n), n - 1)
        end_index = np.flip(np.minimum.accumulate(np.flip(end_index, -1), axis=-1), -1)
        at_end = np.take_along_axis(np.cumsum(t, axis=-1) / np.arange(1, n + 1), end_index,
                                    axis=-1)
        pr_auc = np.where(positives > 0, (t * at_end).sum(axis=-1) / positives, 0.0)
    return {"pr_auc": pr_auc, "recall": recall, "precision": precision}


def bootstrap_intervals(y: np.ndarray, scores: np.ndarray, *, threshold: float = 0.5,
                        level: float = 0.95, n_resamples: int = BOOTSTRAP_RESAMPLES,
                        seed: int = 0) -> dict[str, list[float]]:
    """Percentile bootstrap intervals (``scipy.stats.bootstrap``, rows resampled) of the
    :data:`INTERVAL_METRICS` of fraud ``scores`` against labels ``y``: ``{metric: [low,
    high]}``."""
    from scipy.stats import bootstrap

    threshold = _check_threshold(threshold)
    intervals = {}
    for metric in INTERVAL_METRICS:
        result = bootstrap(
            (np.asarray(y), np.asarray(scores, dtype=np.float64)),
            lambda a, b, axis=-1, m=metric: _batch_metrics(a, b, threshold)[m],
            paired=True, vectorized=True, confidence_level=level, n_resamples=n_resamples,
            method="percentile", rng=np.random.default_rng(seed),
        )
        interval = result.confidence_interval
        intervals[metric] = [float(interval.low), float(interval.high)]
    return intervals


def bootstrap_difference(y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray,
                         metric: str = "pr_auc", *, threshold: float = 0.5,
                         level: float = 0.95, n_resamples: int = BOOTSTRAP_RESAMPLES,
                         seed: int = 0) -> dict[str, float]:
    """A's ``metric`` minus B's on the same rows, with a paired percentile bootstrap interval
    (both models scored on each resample): ``{"difference", "low", "high"}``. An interval
    that excludes 0 is a difference beyond the test set's sampling noise."""
    from scipy.stats import bootstrap

    if metric not in INTERVAL_METRICS:
        raise ValueError(f"metric={metric!r}; expected one of {list(INTERVAL_METRICS)}.")
    threshold = _check_threshold(threshold)
    arrays = (np.asarray(y), np.asarray(scores_a, dtype=np.float64),
              np.asarray(scores_b, dtype=np.float64))

    def difference(yy, a, b, axis=-1):
        return (_batch_metrics(yy, a, threshold)[metric]
                - _batch_metrics(yy, b, threshold)[metric])

    result = bootstrap(arrays, difference, paired=True, vectorized=True,
                       confidence_level=level, n_resamples=n_resamples, method="percentile",
                       rng=np.random.default_rng(seed))
    point = float(difference(*(np.atleast_2d(a) for a in arrays))[0])
    interval = result.confidence_interval
    return {"difference": point, "low": float(interval.low), "high": float(interval.high)}


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
