"""``python -m optuna_keras_hpo``: the ``optuna-keras-hpo`` command line."""

from optuna_keras_hpo.cli import cli

cli()
