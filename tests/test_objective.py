import math

import pytest

from optuna_keras_hpo.objective import (
    Objective,
    create_objective,
    infer_direction,
    metrics_at_best_epoch,
    metrics_from_fit_result,
)


@pytest.mark.parametrize(
    "name, direction",
    [
        ("val_recall", "max"), ("recall", "max"), ("val_precision", "max"), ("val_auc", "max"),
        ("val_accuracy", "max"), ("acc", "max"), ("val_pr_auc", "max"), ("recall_1", "max"),
        ("val_f1_score", "max"),  # KerasTuner's code says "min"; its docs and sense say "max"
        ("val_fbeta_score", "max"), ("val_loss", "min"), ("loss", "min"),
        ("val_mean_squared_error", "min"), ("mae", "min"), ("val_binary_crossentropy", "min"),
        ("weighted_val_loss", "min"), ("val_weighted_accuracy", "max"),
        ("false_negatives", "min"), ("val_custom_error", "min"), ("throughput", None),
    ],
)
def test_direction_inference(name, direction):
    assert infer_direction(name) == direction


def test_unknown_metric_is_rejected_at_construction():
    with pytest.raises(ValueError, match="objective='val_gizmo'.*direction="):
        create_objective("val_gizmo")
    assert create_objective("val_recall") == Objective("val_recall", "max")


def test_objective_validates_direction():
    with pytest.raises(ValueError, match="direction='maximize'; expected 'min' or 'max'"):
        Objective("val_recall", "maximize")


def test_best_epoch_is_read_like_keras_tuner():
    history = {"val_recall": [0.2, 0.7, 0.5], "val_loss": [0.9, 0.4, 0.3]}
    metrics, epoch = metrics_at_best_epoch(history, Objective("val_recall", "max"))
    assert epoch == 1 and metrics == {"val_recall": 0.7, "val_loss": 0.4}
    metrics, epoch = metrics_at_best_epoch(history, Objective("val_loss", "min"))
    assert epoch == 2 and metrics["val_recall"] == 0.5


def test_nan_epochs_do_not_win():
    history = {"val_loss": [math.nan, 0.5, 0.7]}
    _, epoch = metrics_at_best_epoch(history, Objective("val_loss", "min"))
    assert epoch == 1


def test_fit_results_of_every_kind():
    objective = Objective("val_auc", "max")
    assert metrics_from_fit_result(0.8, objective) == ({"val_auc": 0.8}, None)
    assert metrics_from_fit_result({"val_auc": 0.6, "x": 1}, objective)[0]["val_auc"] == 0.6
    with pytest.raises(ValueError, match="without the objective 'val_auc'"):
        metrics_from_fit_result({"auc": 0.6}, objective)
    with pytest.raises(ValueError, match="expected a keras History"):
        metrics_from_fit_result(None, objective)
    with pytest.raises(ValueError, match="not among the metrics"):
        metrics_at_best_epoch({"loss": [1.0]}, objective)
