"""The ``optuna-keras-hpo`` command line, run in this process (``cli.main``) on SQLite and journal
files; worker processes on database servers are in tests/test_distributed.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_keras_hpo import cli
from optuna_keras_hpo.storage import SQLiteConcurrencyWarning, make_storage

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = ROOT / "tests" / "distributed_objectives.py"


@pytest.fixture(autouse=True)
def quick_objectives(monkeypatch):
    monkeypatch.setenv("OKH_SLEEP", "0")
    monkeypatch.delenv("OKH_MARKERS", raising=False)
    monkeypatch.chdir(ROOT)


def worker(storage: str, *extra: str, study: str = "s", objective: str | None = None,
           max_trials: int = 4) -> list[str]:
    return ["worker", "--storage", storage, "--study", study, "--objective",
            objective or f"{OBJECTIVES}:sleepy", "--max-trials", str(max_trials), *extra]


def test_the_console_script_lists_its_subcommands():
    script = Path(sys.executable).with_name("optuna-keras-hpo")
    assert script.exists(), "pip install -e . installs the console script"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for name in ("compare", "report", "worker", "dashboard"):
        assert name in out.stdout
    names = {add.__name__ for add in cli.SUBCOMMANDS}
    assert names == {"add_compare_parser", "add_report_parser", "add_worker_parser",
                     "add_dashboard_parser"}


def test_a_sqlite_worker_warns_and_runs_the_budget(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with pytest.warns(SQLiteConcurrencyWarning, match="PostgreSQL or MySQL.*journal"):
        assert cli.main(worker(url, "--sampler", "random", "--seed", "0",
                               objective="tests.distributed_objectives:sleepy")) == 0
    study = optuna.load_study(study_name="s", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert study.direction.name == "MINIMIZE"
    # A second run joins the study: the budget is the study's, so nothing more runs...
    with pytest.warns(SQLiteConcurrencyWarning):
        assert cli.main(worker(url)) == 0
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 4
    # ...and it must not contradict the study's direction.
    with pytest.warns(SQLiteConcurrencyWarning):
        assert cli.main(worker(url, "--direction", "maximize")) == 2


@pytest.mark.parametrize("sampler", ["gp-ucb", "tpe", "grid"])
def test_samplers_by_name(sampler, tmp_path):
    url = f"journal:///{tmp_path / 'study.log'}"
    assert cli.main(worker(url, "--sampler", sampler, "--seed", "1", max_trials=8)) == 0
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    points = {(t.params["x"], t.params["y"]) for t in study.trials}
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 8
    if sampler == "grid":  # SEARCH_SPACE of the objective's module: 8 points, each once
        assert len(points) == 8


@pytest.mark.parametrize(("args", "said"), [
    (["--sampler", "gp-ucb", "--kappa", "0.5", "--initial-points", "2"],
     "sampler gp-ucb (kappa=0.5, 2 initial points)"),
    (["--sampler", "gp-pi", "--xi", "0.05"], "sampler gp-pi (xi=0.05, 10 initial points)"),
    (["--sampler", "tpe", "--initial-points", "3"], "sampler tpe (3 initial points)"),
])
def test_the_worker_takes_the_acquisitions_trade_off_and_initial_points(args, said, tmp_path,
                                                                        capsys):
    url = f"journal:///{tmp_path / 'study.log'}"
    assert cli.main(worker(url, *args, "--seed", "0", max_trials=4)) == 0
    assert said in capsys.readouterr().err
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4


def test_make_sampler_gives_each_sampler_its_own_options():
    from optuna_keras_hpo.samplers import make_sampler

    ei = make_sampler("gp-ei", xi=0.1, kappa=1.0, n_startup_trials=3)
    ucb = make_sampler("gp-ucb", xi=0.1, kappa=1.0)
    assert (ei.xi, ei.kappa, ei.n_startup_trials) == (0.1, 2.6, 3)  # kappa is not EI's
    assert (ucb.xi, ucb.kappa) == (0.0, 1.0)


def test_compare_takes_the_acquisitions_trade_off_and_initial_points():
    from optuna_keras_hpo.fraud.comparison import CompareConfig

    args = cli.build_parser().parse_args(
        ["compare", "--strategies", "gp-ei,gp-ucb", "--xi", "0.02", "--kappa", "1.5",
         "--initial-points", "5"])
    assert (args.xi, args.kappa, args.initial_points) == (0.02, 1.5, 5)
    config = CompareConfig(strategies=("gp-ei", "gp-ucb"), xi=0.02, kappa=1.5,
                           initial_points=5)
    config.validate()
    assert config.sampler_options(config.mode_settings) == {
        "xi": 0.02, "kappa": 1.5, "initial_points": 5}
    with pytest.raises(ValueError, match=r"kappa=1.5 with sampler\(s\) \['gp-ei'\]: none of "
                                         r"them uses it; expected one of \['gp-ucb'\]"):
        CompareConfig(strategies=("gp-ei",), kappa=1.5).validate()


def test_grid_from_the_command_line_and_the_end_of_the_grid(tmp_path):
    url = f"journal:///{tmp_path / 'study.log'}"
    grid = json.dumps({"x": [1, 2], "y": ["a"]})
    assert cli.main(worker(url, "--sampler", "grid", "--grid", grid, max_trials=10)) == 0
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    assert sorted(t.params["x"] for t in study.trials) == [1, 2]  # the grid ran out first


def test_a_broken_objective_stops_the_worker(tmp_path, capsys):
    url = f"journal:///{tmp_path / 'study.log'}"
    code = cli.main(worker(url, "--max-consecutive-failed-trials", "2",
                           objective=f"{OBJECTIVES}:broken"))
    assert code == 1
    assert "2 consecutive trials of this worker failed" in capsys.readouterr().err
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2


@pytest.mark.parametrize(("args", "message"), [
    (worker("journal:///x.log", objective="nocolon"),
     "--objective='nocolon'; expected module:function"),
    (worker("journal:///x.log", objective="no_such_module_okh:f"),
     "no module 'no_such_module_okh'"),
    (worker("journal:///x.log", objective="tests/nofile.py:f"), "no file 'tests/nofile.py'"),
    (worker("journal:///x.log", objective="tests.distributed_objectives:nothing"),
     "has no function 'nothing'"),
    (worker("journal:///x.log", "--grid", '{"x": [1]}'), "expected --sampler grid"),
    (worker("journal:///x.log", "--sampler", "grid", "--grid", '{"x": []}'),
     "expected a non-empty mapping"),
    (worker("journal:///x.log", "--grace-period", "5"),
     "journal files and Redis keep no heartbeats"),
    (worker("study.db"), "storage='study.db'; expected an Optuna storage URL"),
    (worker("journal:///x.log", "--sampler", "tpe", "--xi", "0.1"),
     "xi=0.1 with sampler(s) ['tpe']: none of them uses it; expected one of ['gp-ei', 'gp-pi']"),
    (worker("journal:///x.log", "--sampler", "gp-ei", "--xi", "-1"),
     "xi=-1.0; expected a finite number >= 0"),
    (worker("journal:///x.log", "--sampler", "random", "--initial-points", "3"),
     "initial_points=3 with sampler(s) ['random']"),
    (["dashboard", "--storage", "journal:///x.log", "--artifact-dir", "/no/such/dir"],
     "--artifact-dir='/no/such/dir'; expected an existing directory"),
])
def test_mistakes_are_named(args, message, capsys):
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


def test_a_grid_needs_a_search_space(capsys):
    code = cli.main(worker("journal:///x.log", "--sampler", "grid",
                           objective="tests.test_cli:objective_without_grid"))
    assert code == 2
    assert "--sampler grid needs a search space" in capsys.readouterr().err


def objective_without_grid(trial):
    return trial.suggest_float("x", 0, 1)


def test_an_unreachable_server_fails_the_worker_within_seconds(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    code = cli.main(worker(f"postgresql://u:pw@127.0.0.1:{port}/db"))
    assert code == 2 and time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert f"postgresql+psycopg://u:***@127.0.0.1:{port}/db" in err and "pw@" not in err


def test_bad_numbers_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        cli.main(worker("journal:///x.log", max_trials=0))
    assert "argument --max-trials: '0'; expected an integer >= 1" in capsys.readouterr().err


def test_the_dashboard_reports_a_busy_port(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        code = cli.main(["dashboard", "--storage", f"sqlite:///{tmp_path / 'd.db'}",
                         "--port", str(busy.getsockname()[1])])
    assert code == 2
    assert "cannot listen there" in capsys.readouterr().err
