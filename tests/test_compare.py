"""The strategy comparison: real studies in SQLite, a report traceable to them."""

import math
import re

import numpy as np
import optuna
import pytest

from optuna_keras_hpo.fraud.comparison import (
    QUICK_GRID,
    RESULT_ATTR,
    TABLE_TRIAL_ATTR,
    CompareConfig,
    compare,
    config_key,
)
from optuna_keras_hpo.fraud.report import read_replay, summarise, trials_to_reach


def _table(report: str) -> dict[str, list[str]]:
    lines = [ln for ln in report.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == len(header) and cells[0] != header[0]:
            rows.setdefault(cells[0], cells)
        else:
            break
    return {"header": header, **rows}


@pytest.mark.slow
def test_the_articles_setup_writes_a_report_traceable_to_the_studies(tmp_path):
    config = CompareConfig(
        mode="quick", setup="article", objective="recall", output=str(tmp_path),
        strategies=("gp-ei", "random", "grid"), trials=3, grid_budget=3, rows=600,
        progress=False, seed=1,
    )
    report = compare(config)
    text = report.read_text()
    for name in ("report.html", "best_vs_trials.png", "best_vs_time.png",
                 "recall_precision.png"):
        assert (tmp_path / name).stat().st_size > 0
    storage = f"sqlite:///{tmp_path}/studies.db"
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    # Every strategy, plus GP-EI again without pruning (the pruning reference).
    assert sorted(names) == sorted(["fraud-recall-gp-ei", "fraud-recall-random",
                                    "fraud-recall-grid", "fraud-recall-gp-ei-nopruning"])
    table = _table(text)
    header = table["header"]
    for strategy, study_name in (("gp-ei", "fraud-recall-gp-ei"),
                                 ("random", "fraud-recall-random"),
                                 ("grid", "fraud-recall-grid")):
        study = optuna.load_study(study_name=study_name, storage=storage)
        finished = [t for t in study.trials if t.state.is_finished()]
        assert len(finished) == 3
        result = study.user_attrs[RESULT_ATTR]
        row = table[strategy]
        best = max(t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
        assert float(row[header.index("best val_recall")]) == pytest.approx(best, rel=1e-3)
        assert float(row[header.index("test recall")]) == pytest.approx(
            result["test"]["recall"], rel=1e-3)
        assert 0.0 <= result["test"]["precision"] <= 1.0
        epochs = sum(len(t.intermediate_values) for t in study.trials)
        assert int(row[header.index("epochs trained")]) == epochs
    # The grid ran points of the article's grid space (Adam only, grid values).
    grid = optuna.load_study(study_name="fraud-recall-grid", storage=storage)
    assert all(t.params["learning_rate"] in (0.001, 0.0005, 0.0001) for t in grid.trials)
    # "Trials to reach the grid's best" agrees with the studies.
    grid_best = summarise(grid).best_value
    gp = summarise(optuna.load_study(study_name="fraud-recall-gp-ei", storage=storage))
    reached = trials_to_reach(gp.curve, grid_best)
    cell = table["gp-ei"][header.index("trials to reach the grid's best")]
    assert cell == (str(reached) if reached is not None else "not reached")
    assert re.search(r"gp-ei (did \*\*not\*\* reach|reached it after)", text)
    assert "pruning off" in text and "epochs saved" in text
    assert "**Different spaces**" in text


def test_trials_to_reach():
    curve = [0.1, 0.5, 0.5, 0.8]
    assert trials_to_reach(curve, 0.5) == 2
    assert trials_to_reach(curve, 0.8) == 4
    assert trials_to_reach(curve, 0.9) is None
    assert trials_to_reach([-math.inf, 0.2], 0.1) == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"strategies": ("gp-ei", "bogus")}, "strategies"),
    ({"strategies": ()}, "strategies"),
    ({"mode": "huge"}, "mode"),
    ({"trials": 0}, "trials"),
    ({"data": "x.csv"}, "target"),
    ({"objective": "accuracy"}, "accuracy"),
    ({"objective": "pareto"}, "two-objective"),
    ({"objective": "pareto", "setup": "article"}, "cannot prune"),
    ({"setup": "grid"}, "setup"),
    ({"repeats": 0}, "repeats"),
    ({"continuous_repeats": -1}, "continuous_repeats"),
    ({"grid": {"neurons1": [20]}}, "missing"),
    ({"pruning_reference": ("tpe",), "strategies": ("gp-ei",)}, "pruning_reference"),
])
def test_bad_configs_are_refused(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        compare(CompareConfig(output=str(tmp_path), progress=False, **kwargs))


def test_the_cli_reports_bad_data_inputs_by_name(tmp_path, capsys):
    from optuna_keras_hpo import cli

    missing = tmp_path / "nope.csv"
    assert cli.main(["compare", "--data", str(missing), "--target", "fraud",
                     "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    assert str(missing) in capsys.readouterr().err
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n" + "\n".join(f"{i},{i % 3},{int(i % 7 == 0)}"
                                              for i in range(60)))
    assert cli.main(["compare", "--data", str(csv), "--target", "fraud",
                     "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "fraud" in err and "label" in err  # the missing column, and the columns there are


def test_report_is_rewritten_from_the_studies_alone(tmp_path):
    from optuna_keras_hpo import cli

    out = tmp_path / "run"
    assert cli.main(["compare", "--setup", "article", "--strategies", "random,grid",
                     "--trials", "2", "--grid-budget", "2", "--rows", "400", "--output",
                     str(out), "--no-progress", "--no-pruning"]) == 0
    first = (out / "report.md").read_text()
    (out / "report.md").unlink()
    assert cli.main(["report", "--output", str(out)]) == 0
    assert (out / "report.md").read_text() == first


@pytest.mark.slow
def test_the_pareto_objective_reports_fronts_by_hypervolume(tmp_path):
    from optuna_keras_hpo.fraud.report import hypervolume

    config = CompareConfig(
        output=str(tmp_path), setup="article", strategies=("gp-ei", "grid"),
        objective="pareto", pruning=False,
        trials=4, grid_budget=3, rows=600, progress=False, seed=2,
    )
    text = compare(config).read_text()
    storage = f"sqlite:///{tmp_path}/studies.db"
    table = _table(text)
    header = table["header"]
    assert "best hypervolume" in header
    for strategy in ("gp-ei", "grid"):
        study = optuna.load_study(study_name=f"fraud-pareto-{strategy}", storage=storage)
        assert len(study.directions) == 2
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert completed and all(set(t.values) <= {*t.values} for t in completed)
        for t in completed:  # the values are the trial's validation recall and precision
            assert t.values == [t.user_attrs["val_recall"], t.user_attrs["val_precision"]]
        volume = hypervolume([tuple(t.values) for t in completed])
        row = table[strategy]
        assert float(row[header.index("best hypervolume")]) == pytest.approx(volume, rel=1e-3)
        best = max(study.best_trials, key=lambda t: (2 * t.values[0] * t.values[1]
                   / max(t.values[0] + t.values[1], 1e-12), -t.number))
        result = study.user_attrs[RESULT_ATTR]
        assert result["best_trial"] == best.number  # the front member with the best F1
        assert float(row[header.index("test recall")]) == pytest.approx(
            result["test"]["recall"], rel=1e-3)
        assert "model_artifact_id" in best.user_attrs  # trained through the tuner


def test_hypervolume():
    from optuna_keras_hpo.fraud.report import hypervolume

    assert hypervolume([]) == 0.0
    assert hypervolume([(1.0, 0.5)]) == pytest.approx(0.5)
    assert hypervolume([(1.0, 0.2), (0.5, 0.6), (0.4, 0.4)]) == pytest.approx(
        1.0 * 0.2 + 0.5 * 0.4)


@pytest.mark.slow
def test_the_sklearn_baseline_joins_the_report_with_a_stratified_splitter(tmp_path):
    import json

    config = CompareConfig(output=str(tmp_path), setup="article", strategies=("random",),
                           trials=1, rows=600, pruning=False, sklearn_baseline=True,
                           progress=False)
    text = compare(config).read_text()
    baseline = json.loads((tmp_path / "compare.json").read_text())["sklearn_baseline"]
    assert "StratifiedKFold" in baseline["splitter"]
    assert baseline["n_fits"] == 8 * 3  # the quick grid's 8 points, 3 folds each
    assert "scikit-learn GridSearchCV baseline" in text
    assert f"{baseline['best_score']:.4g}" in text


def test_a_precision_floor_is_an_optuna_constraint_and_bounds_the_best_trial(tmp_path):
    floor = 0.15
    config = CompareConfig(output=str(tmp_path), setup="article", strategies=("gp-ei", "tpe"),
                           trials=5, rows=600, pruning=False, objective="recall_at_precision",
                           precision_floor=floor, progress=False, seed=3)
    text = compare(config).read_text()
    storage = f"sqlite:///{tmp_path}/studies.db"
    table = _table(text)
    header = table["header"]
    for strategy in ("gp-ei", "tpe"):
        study = optuna.load_study(study_name=f"fraud-recall_at_precision-{strategy}",
                                  storage=storage)
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        for t in completed:  # the tuner set the constraint: floor - precision
            assert t.constraints["precision_floor"] == pytest.approx(
                floor - t.user_attrs["val_precision"])
        feasible = [t for t in completed if t.user_attrs["val_precision"] >= floor]
        cell = table[strategy][header.index("best val_recall")]
        if feasible:
            assert float(cell) == pytest.approx(max(t.value for t in feasible), rel=1e-3)
        else:
            assert cell == "-"


# -- the one-space set-up ----------------------------------------------------------------------

TINY_GRID = {**QUICK_GRID, "optimizer_name": ["adam", "sgd", "lion"],
             "learning_rate": [0.001, 0.01], "neurons1": [20], "epochs": [2, 4]}  # 12 points


def test_one_space_verdict_is_traceable_to_the_studies(tmp_path):
    """The default set-up, in two processes: the grid's table, replays that read it, real
    continuous searches; every number of the verdict is read back with optuna.load_study."""
    config = CompareConfig(output=str(tmp_path), rows=600, grid=TINY_GRID, repeats=5,
                           continuous_repeats=1, trials=3, jobs=2, progress=False, seed=4,
                           strategies=("gp-ei", "tpe", "random", "grid"))
    text = compare(config).read_text()
    assert (tmp_path / "best_vs_configurations.png").stat().st_size > 0
    storage = f"sqlite:///{tmp_path}/studies.db"
    table = optuna.load_study(study_name="fraud-pr_auc-grid", storage=storage)
    rows = {config_key(t.params): t for t in table.trials}
    assert len(rows) == len(table.trials) == 12  # each grid point trained once
    target = max(t.value for t in table.trials)
    medians = {}
    for strategy in ("gp-ei", "tpe", "random", "grid"):
        costs = []
        for r in range(5):
            replay = optuna.load_study(study_name=f"fraud-pr_auc-replay-{strategy}-{r:03d}",
                                       storage=storage)
            for t in replay.trials:  # each value is the table's, for the same configuration
                row = table.trials[t.user_attrs[TABLE_TRIAL_ATTR]]
                assert config_key(t.params) == config_key(row.params)
                assert t.value == row.value
            distinct = []
            for t in replay.trials:
                if config_key(t.params) not in distinct:
                    distinct.append(config_key(t.params))
                if t.value == target:
                    break
            costs.append(len(distinct))
            assert read_replay(replay, target).to_best == len(distinct)
        medians[strategy] = float(np.median(costs))
    table_rows = _table(text)
    for strategy in ("gp-ei", "tpe", "random"):
        cell = table_rows[strategy][2]
        assert cell.startswith(f"{medians[strategy]:.1f} ["), (strategy, cell)
    assert table_rows["grid (random order)"][2].startswith(f"{medians['grid']:.1f} [")
    assert re.search(r"\*\*gp-ei (beat the grid|did not beat the grid beyond the noise|did "
                     r"worse than the grid)\*\*", text)
    # Off the grid: each continuous search's best model on test, beside the grid's.
    for strategy in ("gp-ei", "tpe", "random"):
        study = optuna.load_study(study_name=f"fraud-pr_auc-continuous-{strategy}-0",
                                  storage=storage)
        result = study.user_attrs[RESULT_ATTR]
        low, high = result["test_intervals"]["pr_auc"]
        assert low <= result["test"]["pr_auc"] <= high
        vs = result["vs_grid"]
        grid_test = table.user_attrs[RESULT_ATTR]["test"]["pr_auc"]
        assert vs["difference"] == pytest.approx(result["test"]["pr_auc"] - grid_test)
        assert f"{vs['difference']:+.3f} [{vs['low']:+.3f}, {vs['high']:+.3f}]" in text


def test_a_second_comparison_in_one_process_replays_its_own_table(tmp_path):
    """The table is cached per process for the replays; a new comparison reads its own."""
    small = {**TINY_GRID, "optimizer_name": ["adam"], "epochs": [2]}  # 2 points
    for grid, size in ((small, 2), ({**small, "optimizer_name": ["adam", "sgd"]}, 4)):
        config = CompareConfig(output=str(tmp_path), rows=600, grid=grid, repeats=2,
                               continuous_repeats=0, jobs=1, progress=False,
                               strategies=("random", "grid"))
        text = compare(config).read_text()
        assert f"trained each of its {size} points once" in text
        replay = optuna.load_study(study_name="fraud-pr_auc-replay-grid-000",
                                   storage=f"sqlite:///{tmp_path}/studies.db")
        assert replay.user_attrs["replay"]["table_size"] == size
        assert {t.user_attrs[TABLE_TRIAL_ATTR] for t in replay.trials} <= set(range(size))


def test_killing_the_comparison_ends_its_worker_processes(tmp_path):
    """SIGKILL on the comparison's process (a closed terminal, the OOM killer) must not leave
    its workers training on, orphaned."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(
        "from optuna_keras_hpo.fraud.comparison import CompareConfig, QUICK_GRID, compare\n"
        "if __name__ == '__main__':\n"
        f"    compare(CompareConfig(output={str(tmp_path / 'out')!r}, rows=600, jobs=2,\n"
        "        grid={**QUICK_GRID, 'epochs': [40]}, repeats=2, progress=False))\n")
    parent = subprocess.Popen([sys.executable, str(script)], env={**os.environ,
                              "TF_CPP_MIN_LOG_LEVEL": "2"})

    def children() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            try:
                status = open(f"/proc/{entry}/status").read()
            except (OSError, ValueError):
                continue
            if entry.isdigit() and f"\nPPid:\t{parent.pid}\n" in status \
                    and "spawn_main" in open(f"/proc/{entry}/cmdline").read():
                found.append(int(entry))
        return found

    def alive(pid: int) -> bool:
        try:
            return "\nState:\tZ" not in open(f"/proc/{pid}/status").read()
        except OSError:
            return False

    deadline = time.monotonic() + 120
    workers = []
    while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.5)
        workers = children()
    assert len(workers) == 2, "the comparison did not start its two workers"
    time.sleep(10)  # the workers are training now
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(alive(w) for w in workers)
