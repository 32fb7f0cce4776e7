"""The article's task: fraud detection with a small Keras network (see docs/fraud.md).

One module a job:

* :mod:`~optuna_keras_hpo.fraud.data`: the synthetic set or a user's CSV, split and scaled
  (:func:`load_data`);
* :mod:`~optuna_keras_hpo.fraud.hypermodel`: the article's network and its spaces
  (:class:`FraudHyperModel`: the Bayesian space, its discretisation, the article's grid);
* :mod:`~optuna_keras_hpo.fraud.objectives`: what a search maximises (:data:`OBJECTIVES`);
* :mod:`~optuna_keras_hpo.fraud.evaluation`: test metrics with bootstrap intervals, and the
  article's scikit-learn ``GridSearchCV`` baseline;
* :mod:`~optuna_keras_hpo.fraud.comparison`: the strategies compared (:func:`compare`);
* :mod:`~optuna_keras_hpo.fraud.report`: the report, read from the studies alone.
"""

from optuna_keras_hpo.fraud.data import (
    SYNTHETIC_CLASS_SEP,
    SYNTHETIC_CLUSTERS_PER_CLASS,
    SYNTHETIC_FLIP_Y,
    SYNTHETIC_FRAUD_RATE,
    SYNTHETIC_INFORMATIVE_SHARE,
    SYNTHETIC_REDUNDANT_SHARE,
    FraudData,
    load_data,
    prepare,
    read_csv,
    synthetic_fraud,
)
from optuna_keras_hpo.fraud.evaluation import (
    bootstrap_difference,
    bootstrap_intervals,
    evaluate_test,
    kerasclassifier,
    metrics_from_scores,
    positive_scores,
    sklearn_grid_baseline,
)
from optuna_keras_hpo.fraud.hypermodel import (
    ARTICLE_GRID,
    BAYESIAN_GRID,
    OPTIMIZERS,
    SPACES,
    FraudHyperModel,
    binary_fbeta,
    build_model,
    check_grid,
    configuration_seed,
    fraud_metrics,
    make_optimizer,
    register_keras_objects,
)
from optuna_keras_hpo.fraud.objectives import (
    DEFAULT_OBJECTIVE,
    OBJECTIVES,
    ObjectiveSpec,
    objective_spec,
)

__all__ = [
    "ARTICLE_GRID",
    "BAYESIAN_GRID",
    "DEFAULT_OBJECTIVE",
    "OBJECTIVES",
    "OPTIMIZERS",
    "SPACES",
    "SYNTHETIC_CLASS_SEP",
    "SYNTHETIC_CLUSTERS_PER_CLASS",
    "SYNTHETIC_FLIP_Y",
    "SYNTHETIC_FRAUD_RATE",
    "SYNTHETIC_INFORMATIVE_SHARE",
    "SYNTHETIC_REDUNDANT_SHARE",
    "FraudData",
    "FraudHyperModel",
    "ObjectiveSpec",
    "binary_fbeta",
    "bootstrap_difference",
    "bootstrap_intervals",
    "build_model",
    "check_grid",
    "configuration_seed",
    "evaluate_test",
    "fraud_metrics",
    "kerasclassifier",
    "load_data",
    "make_optimizer",
    "metrics_from_scores",
    "objective_spec",
    "positive_scores",
    "prepare",
    "read_csv",
    "register_keras_objects",
    "sklearn_grid_baseline",
    "synthetic_fraud",
]
