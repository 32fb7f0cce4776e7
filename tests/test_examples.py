"""The examples run as written, with tiny settings."""

import importlib.util
from pathlib import Path

import optuna

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_article_bayesian_optimization_script(tmp_path, capsys):
    example = load("fraud_bayesian_optimization")
    tuner = example.main(["--quick", "--max-trials", "2", "--samples", "800",
                          "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    assert "Test set: recall" in out and "Best hyperparameters" in out
    study = optuna.load_study(study_name="fraud_bayesian_optimization",
                              storage=f"sqlite:///{tmp_path}/fraud_bayesian_optimization/study.db")
    assert len(study.trials) == 2
    assert study.best_value == tuner.oracle.get_best_trials(1)[0].score
