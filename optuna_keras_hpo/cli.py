"""The ``optuna-keras-hpo`` command line.

::

    optuna-keras-hpo compare [--quick | --full] [--strategies gp-ei,...,grid] [--output DIR]
    optuna-keras-hpo report [--output DIR] [--storage URL]
    optuna-keras-hpo worker --storage URL --study NAME --objective module:function --max-trials N
    optuna-keras-hpo dashboard --storage URL [--host 127.0.0.1] [--port 8080] [--artifact-dir DIR]

Adding a subcommand: write ``add_<name>_parser(subparsers)``, which creates the subcommand's
parser and sets its ``run`` default to a function ``run_<name>(args) -> exit code``, and append
it to :data:`SUBCOMMANDS`. A ``run_*`` function reports a user's mistake by raising
``ValueError`` (or ``FileNotFoundError``, ``ConnectionError``): :func:`main` prints it and
exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from optuna_keras_hpo.attrs import FAIL_REASON_ATTR
from optuna_keras_hpo.samplers import SAMPLER_NAMES, make_sampler
from optuna_keras_hpo.samplers._named import check_sampler_options, describe_sampler
from optuna_keras_hpo.storage import DEFAULT_HEARTBEAT_INTERVAL

GRID_ATTRIBUTE = "SEARCH_SPACE"


# -- worker ------------------------------------------------------------------------------------
def add_worker_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="join (or create) a study and run trials until the study has --max-trials",
        description=(
            "Join the study (creating it if needed) and run trials of the objective until the "
            "study as a whole has --max-trials COMPLETE trials, counting every worker's. Start "
            "one worker per machine or per GPU with the same --storage and --study. On "
            "PostgreSQL/MySQL (and SQLite) a worker that dies mid-trial is detected by its "
            "missing heartbeat and its trial retried by another worker."
        ),
    )
    parser.add_argument("--storage", required=True,
                        help="storage URL: postgresql://..., mysql://..., redis://..., "
                             "journal:///path/study.log, or sqlite:///path.db (one process)")
    parser.add_argument("--study", required=True, help="study name (shared by all workers)")
    parser.add_argument("--objective", required=True,
                        help="an Optuna objective f(trial) -> float: module:function or "
                             "path/to/file.py:function")
    parser.add_argument("--max-trials", required=True, type=_int_at_least(1),
                        help="COMPLETE trials the study should reach, over all workers")
    parser.add_argument("--sampler", choices=list(SAMPLER_NAMES), default="tpe",
                        help="gp-ei/gp-pi/gp-ucb: this project's GaussianProcessSampler with "
                             "that acquisition; tpe (default; Optuna's TPESampler with "
                             "constant_liar), random, or grid (search space from --grid or the "
                             f"objective module's {GRID_ATTRIBUTE})")
    parser.add_argument("--grid", type=_json_arg("--grid"), default=None,
                        help='grid of --sampler grid as JSON: {"name": [values, ...], ...}')
    parser.add_argument("--direction", choices=("minimize", "maximize"), default=None,
                        help="default: the existing study's, else minimize")
    parser.add_argument("--heartbeat-interval", type=_int_at_least(1), default=None,
                        help=f"seconds between heartbeats of a running trial (default "
                             f"{DEFAULT_HEARTBEAT_INTERVAL} on database storages; journal files "
                             "and Redis have none)")
    parser.add_argument("--no-heartbeats", action="store_true",
                        help="record no heartbeats (dead workers of this host are still found)")
    parser.add_argument("--grace-period", type=_int_at_least(1), default=None,
                        help="seconds without heartbeat after which a trial is failed and "
                             "retried (default 2 x --heartbeat-interval)")
    parser.add_argument("--max-retry", type=_int_at_least(0), default=None,
                        help="times a dead worker's trial is retried (default 3)")
    _add_sampler_options(parser)
    parser.add_argument("--seed", type=int, default=None,
                        help="sampler seed; give each worker its own (workers sharing a seed "
                             "propose the same points), except grid, where it only breaks ties")
    parser.add_argument("--max-consecutive-failed-trials", type=_int_at_least(1), default=3,
                        help="this worker stops after that many of its trials fail in a row "
                             "(default 3)")
    parser.add_argument("--connect-timeout", type=_seconds, default=None,
                        help="seconds to wait for the database server (default 5)")
    parser.set_defaults(run=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    import optuna
    from optuna.trial import TrialState

    from optuna_keras_hpo import distributed
    from optuna_keras_hpo import storage as storage_lib

    module, objective = load_objective(args.objective)
    grid = _grid_space(args, module) if args.sampler == "grid" else None
    if grid is None and args.grid is not None:
        raise ValueError(f"--grid is given with --sampler={args.sampler!r}; expected "
                         "--sampler grid.")
    check_sampler_options([args.sampler], xi=args.xi, kappa=args.kappa,
                          initial_points=args.initial_points)
    sampler = make_sampler(args.sampler, args.seed, grid=grid, xi=args.xi, kappa=args.kappa,
                           n_startup_trials=args.initial_points)
    journal = not storage_lib.supports_heartbeats(args.storage)  # journal files, Redis
    heartbeat = args.heartbeat_interval
    if args.no_heartbeats and (heartbeat is not None or args.grace_period is not None):
        raise ValueError("--no-heartbeats with --heartbeat-interval/--grace-period; expected "
                         "one or the other.")
    if heartbeat is None and not journal and not args.no_heartbeats:
        heartbeat = DEFAULT_HEARTBEAT_INTERVAL
        if args.grace_period is not None and args.grace_period <= heartbeat:
            heartbeat = max(1, args.grace_period // 2)  # a short --grace-period alone
    if journal and args.grace_period is not None:
        raise ValueError(
            f"--grace-period with --storage={args.storage!r}: journal files and Redis keep no "
            "heartbeats (Optuna 5), so only dead workers of this host are detected (at once); "
            "use a PostgreSQL/MySQL storage for heartbeats."
        )
    sqlite = storage_lib.is_sqlite(args.storage)
    if sqlite:
        storage_lib.warn_sqlite_concurrency(
            f"worker --storage={args.storage!r} is a SQLite database, and workers are meant to "
            "run side by side."
        )
    max_retry = storage_lib.DEFAULT_MAX_RETRY if args.max_retry is None else args.max_retry
    storage = storage_lib.make_storage(
        args.storage, heartbeat_interval=heartbeat, grace_period=args.grace_period,
        max_retry=max_retry,
        connect_timeout=_connect_timeout(args),
    )
    study = storage_lib.open_study(storage, args.study, args.direction)
    study.sampler = sampler
    budget = distributed.TrialBudget(args.max_trials, (TrialState.COMPLETE,),
                                     unique_points=grid is not None)

    def admitted_objective(trial: optuna.Trial) -> Any:
        budget.admit(study, trial)
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # kept with the trial (a dead worker's trial has no reason)
            trial.set_user_attr(FAIL_REASON_ATTR, f"{type(error).__name__}: {error}")
            raise

    failures = 0
    ran = 0

    def run_one() -> bool:
        nonlocal failures, ran
        try:
            study.optimize(admitted_objective, n_trials=1)
        except distributed.TrialNotRun:
            return False
        except Exception as error:  # recorded FAIL (and logged) by Optuna
            failures += 1
            ran += 1
            if failures >= args.max_consecutive_failed_trials:
                raise WorkerFailed(
                    f"{failures} consecutive trials of this worker failed "
                    f"(--max-consecutive-failed-trials={args.max_consecutive_failed_trials}); "
                    f"the last one with {type(error).__name__}: {error}"
                ) from error
            return True
        failures = 0
        ran += 1
        return True

    exhausted = None
    if grid is not None:
        def exhausted(trials):
            return not sampler.free_grid_ids(trials)

    print(f"worker {distributed.worker_id()}: study {args.study!r}, sampler "
          f"{describe_sampler(args.sampler, sampler)}.", file=sys.stderr)
    distributed.run_until_budget(study, run_one, budget, exhausted=exhausted, sqlite=sqlite,
                                 max_retry=max_retry)
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    print(f"worker {distributed.worker_id()}: ran {ran} trials; study {args.study!r} has "
          f"{complete} COMPLETE trials (--max-trials={args.max_trials}).", file=sys.stderr)
    return 0


class WorkerFailed(RuntimeError):
    """The worker's own trials keep failing: the objective (or its environment) is broken."""


def load_objective(spec: str) -> tuple[ModuleType, Callable]:
    """The module and the function named by ``module:function`` or ``path/file.py:function``."""
    module_part, sep, name = spec.rpartition(":")
    expected = "expected module:function or path/to/file.py:function"
    if not sep or not module_part or not name.isidentifier():
        raise ValueError(f"--objective={spec!r}; {expected}.")
    if module_part.endswith(".py") or "/" in module_part or os.sep in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise ValueError(f"--objective={spec!r}: no file {module_part!r}; {expected}.")
        module_name = f"_okh_objective_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        loader_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as error:
            if error.name and module_part.startswith(error.name):
                raise ValueError(
                    f"--objective={spec!r}: no module {module_part!r} importable from "
                    f"{os.getcwd()!r} or sys.path; {expected}."
                ) from None
            raise
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(
            f"--objective={spec!r}: {module_part!r} has no function {name!r}; {expected}."
        )
    return module, function


def _grid_space(args: argparse.Namespace, module: ModuleType) -> dict[str, list]:
    source = "--grid"
    grid = args.grid
    if grid is None:
        grid = getattr(module, GRID_ATTRIBUTE, None)
        source = f"{module.__name__}.{GRID_ATTRIBUTE}"
        if grid is None:
            raise ValueError(
                f"--sampler grid needs a search space: pass --grid '{{\"x\": [1, 2, 3]}}' or "
                f"define {GRID_ATTRIBUTE} = {{name: [values, ...]}} in the objective's module "
                f"({args.objective!r})."
            )
    ok_value = (str, int, float, bool, type(None))
    if not isinstance(grid, dict) or not grid or not all(
        isinstance(k, str) and isinstance(v, (list, tuple)) and v
        and all(isinstance(x, ok_value) for x in v)
        for k, v in grid.items()
    ):
        raise ValueError(
            f"{source}={grid!r}; expected a non-empty mapping of parameter name -> non-empty "
            "list of str, int, float, bool or None values."
        )
    return {k: list(v) for k, v in grid.items()}


# -- dashboard ---------------------------------------------------------------------------------
def add_dashboard_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve optuna-dashboard on a storage",
        description=(
            "Start optuna-dashboard on the storage's studies: trials with their parameters, "
            "metrics (user attributes), learning curves (intermediate values) and saved "
            "models (artifacts)."
        ),
    )
    parser.add_argument("--storage", required=True, help="storage URL (as for worker)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=_int_at_least(1), default=8080,
                        help="port (default 8080)")
    parser.add_argument("--artifact-dir", default=None,
                        help="the tuner's artifact directory, to show and download saved "
                             "models (default: the 'artifacts' directory beside a SQLite "
                             "study.db, if there is one)")
    parser.add_argument("--connect-timeout", type=_seconds, default=None,
                        help="seconds to wait for the database server (default 5)")
    parser.set_defaults(run=run_dashboard)


def run_dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard
    from optuna.artifacts import FileSystemArtifactStore

    from optuna_keras_hpo import storage as storage_lib

    artifact_dir = args.artifact_dir
    if artifact_dir is not None and not Path(artifact_dir).is_dir():
        raise ValueError(f"--artifact-dir={artifact_dir!r}; expected an existing directory.")
    if artifact_dir is None:
        artifact_dir = default_artifact_dir(args.storage)
    storage = storage_lib.make_storage(
        args.storage, connect_timeout=_connect_timeout(args))
    store = FileSystemArtifactStore(str(artifact_dir)) if artifact_dir else None
    print(f"optuna-dashboard: http://{args.host}:{args.port}/ (storage "
          f"{storage_lib.mask_url(args.storage)}, artifacts: {artifact_dir or 'none'})",
          file=sys.stderr, flush=True)
    try:
        optuna_dashboard.run_server(storage, host=args.host, port=args.port,
                                    artifact_store=store)
    except OSError as error:
        raise ValueError(
            f"--host={args.host!r} --port={args.port!r}: cannot listen there ({error}); "
            "expected a free port on a local address."
        ) from error
    return 0


def default_artifact_dir(storage: str) -> Path | None:
    """The tuner's artifact directory beside a SQLite ``study.db``, if it exists."""
    from optuna_keras_hpo import storage as storage_lib

    if not storage.startswith("sqlite:///"):
        return None
    candidate = Path(storage[len("sqlite:///"):]).parent / storage_lib.ARTIFACT_DIR
    return candidate if candidate.is_dir() else None


# -- compare and report ------------------------------------------------------------------------
def add_compare_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="run the fraud-detection study with several search strategies and write a report",
        description=(
            "The article's question: does Bayesian optimisation find what a grid finds in fewer "
            "trials, and better models off the grid? The grid trains every point of a "
            "discretisation of the Bayesian space once (a table); each strategy (GP-EI, GP-PI, "
            "GP-UCB, TPE, random, the grid in random order) then searches that space --repeats "
            "times, reading trained configurations from the table; GP-EI, TPE and random also "
            "search the continuous space with real training. Every result is a study in one "
            "storage; report.md / report.html with figures go to --output. --quick (default) "
            "takes a few minutes on two cores; --full takes hours. --setup article runs the "
            "article's own set-up instead (its Adam-only grid against the larger space)."
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="small data, short training, a small grid (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="the article's budgets: 10,000 rows, 50-200 epochs, its "
                           "1,458-point grid")
    parser.set_defaults(mode="quick")
    parser.add_argument("--strategies", default=",".join(SAMPLER_NAMES),
                        help=f"comma-separated, from {','.join(SAMPLER_NAMES)} (default all)")
    parser.add_argument("--setup", choices=("one_space", "article"), default="one_space",
                        help="one_space (default): every strategy on one space, with repeats; "
                             "article: the article's grid against the larger space, one run each")
    parser.add_argument("--objective", default="pr_auc",
                        help="pr_auc (default), recall (the article's), fbeta, "
                             "recall_at_precision, or pareto (recall and precision, two "
                             "objectives; with --setup article --no-pruning)")
    parser.add_argument("--precision-floor", type=float, default=0.5,
                        help="for recall_at_precision: validation precision >= this")
    parser.add_argument("--trials", type=_int_at_least(1), default=None,
                        help="trials of each real search (default: the mode's)")
    parser.add_argument("--repeats", type=_int_at_least(1), default=None,
                        help="replays of each strategy on the grid's table (default: the "
                             "mode's, 30 in quick mode)")
    parser.add_argument("--continuous-repeats", type=_int_at_least(0), default=None,
                        help="real searches of the continuous space per strategy (default 3)")
    parser.add_argument("--jobs", type=_int_at_least(1), default=None,
                        help="processes (default: 2, or 1 on a one-core machine)")
    parser.add_argument("--grid-budget", type=_int_at_least(1), default=None,
                        help="--setup article: grid points to run (default: the whole grid)")
    parser.add_argument("--no-pruning", dest="pruning", action="store_false",
                        help="train every trial to the end (default: Optuna's MedianPruner)")
    parser.add_argument("--data", default=None, help="a CSV file of your own (with --target)")
    parser.add_argument("--target", default=None, help="the CSV's binary target column")
    parser.add_argument("--rows", type=_int_at_least(10), default=None,
                        help="rows of synthetic data (default: the mode's)")
    parser.add_argument("--storage", default=None,
                        help="storage URL (default: SQLite at OUTPUT/studies.db)")
    _add_sampler_options(parser)
    parser.add_argument("--output", default="results/compare", help="report directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sklearn-baseline", action="store_true",
                        help="also run the article's GridSearchCV + scikeras baseline (cv=3)")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from optuna_keras_hpo.fraud.comparison import CompareConfig, compare
    from optuna_keras_hpo.fraud.report import summary_table

    config = CompareConfig(
        mode=args.mode, setup=args.setup, output=args.output, storage=args.storage,
        repeats=args.repeats, continuous_repeats=args.continuous_repeats, jobs=args.jobs,
        strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip()),
        objective=args.objective, precision_floor=args.precision_floor, trials=args.trials,
        grid_budget=args.grid_budget, pruning=args.pruning,
        data=args.data, target=args.target, rows=args.rows, seed=args.seed,
        sklearn_baseline=args.sklearn_baseline, progress=args.progress,
        xi=args.xi, kappa=args.kappa, initial_points=args.initial_points,
    )
    report = compare(config)
    print(summary_table(report))
    print(f"\nReport: {report} (and {report.with_suffix('.html')})")
    return 0


def add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write the comparison report again from the studies",
        description="Rewrite report.md / report.html and the plots of a compare run from its "
                    "studies (the storage is the only source of the numbers).",
    )
    parser.add_argument("--output", default="results/compare",
                        help="the compare run's directory (holds compare.json)")
    parser.add_argument("--storage", default=None,
                        help="storage URL (default: the one recorded by the compare run)")
    parser.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from optuna_keras_hpo.fraud.report import rewrite_report

    report = rewrite_report(args.output, args.storage)
    print(f"Report: {report}")
    return 0


# -- the parser ---------------------------------------------------------------------------------
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_compare_parser,
    add_report_parser,
    add_worker_parser,
    add_dashboard_parser,
]
"""Each function adds one subcommand (its parser, with ``run`` set to its function)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optuna-keras-hpo",
        description="Hyperparameter search for Keras on Optuna studies.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s] %(message)s")
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, ConnectionError, WorkerFailed) as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 1 if isinstance(error, WorkerFailed) else 2


def cli() -> None:
    """The console script's entry point."""
    sys.exit(main())


def _add_sampler_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--xi", type=float, default=None,
                        help="gp-ei and gp-pi: improvement counted over the best + xi "
                             "(objective units, >= 0; larger explores more; default 0)")
    parser.add_argument("--kappa", type=float, default=None,
                        help="gp-ucb: mean + kappa x standard deviation (>= 0; larger explores "
                             "more; default 2.6)")
    parser.add_argument("--initial-points", type=_int_at_least(0), default=None,
                        help="random trials before the GP or TPE takes over (default: the "
                             "sampler's, 10; compare: the mode's)")


def _connect_timeout(args: argparse.Namespace) -> float:
    from optuna_keras_hpo.storage import DEFAULT_CONNECT_TIMEOUT

    return DEFAULT_CONNECT_TIMEOUT if args.connect_timeout is None else args.connect_timeout


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}; expected an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}; expected an integer >= {minimum}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}; expected a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}; expected a number of seconds > 0")
    return value


def _json_arg(name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({error})") from None

    return parse


if __name__ == "__main__":
    cli()
