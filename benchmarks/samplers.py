"""Bayesian-optimisation samplers side by side on synthetic problems with known optima.

Every sampler runs every problem for every seed, on the same search space, in one process. The
table reports simple regret (best value found so far minus the known optimum) after fixed
numbers of trials, as median [first quartile, third quartile] over seeds, the worst seed's final
regret, the sampler's own time per trial, and ratios against ``optuna-gp``.

The sampler's time per trial is the wall time of ``study.ask(distributions)`` (which makes the
suggest calls) for Optuna samplers and of ``oracle.create_trial`` for KerasTuner; evaluating the
problem is not counted.

Usage::

    python benchmarks/samplers.py                       # everything, 5 seeds
    python benchmarks/samplers.py --seeds 1 --budget-scale 0.25 --samplers optuna-gp,tpe
    python benchmarks/samplers.py --markdown results/samplers.md --json results/samplers.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from scipy.stats import wilcoxon

try:
    from optuna_keras_hpo.samplers import GaussianProcessSampler
except Exception as error:  # the class is being written: any failure just skips it
    GaussianProcessSampler = None
    OURS_IMPORT_ERROR = f"{type(error).__name__}: {error}"
else:
    OURS_IMPORT_ERROR = ""

Params = dict[str, Any]

# Trial counts at which regret is reported (those within a problem's budget), before scaling.
CHECKPOINTS = (10, 20, 40, 60)
REFERENCE_SAMPLER = "optuna-gp"


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A function to minimise over a search space, with its known minimum.

    ``budget`` is the number of trials per run and ``timing_from`` the trial after which sampler
    times are summarised (both before ``--budget-scale``). ``target_regret``, when set, asks for
    the number of trials needed to get below that regret.
    """

    name: str
    distributions: dict[str, BaseDistribution]
    function: Callable[[Params], float]
    optimum: float
    budget: int
    timing_from: int
    target_regret: float | None = None


_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_HARTMANN_A = np.array(
    [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ]
)
_HARTMANN_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(params: Params) -> float:
    """The 6-D Hartmann function on [0, 1]^6 (minimum -3.32237 near x = (0.2017, 0.1500,
    0.4769, 0.2753, 0.3117, 0.6573)).

    ``f(x) = -sum_i alpha_i exp(-sum_j A_ij (x_j - P_ij)^2)`` with the standard constants.
    """
    x = np.array([params[f"x{j}"] for j in range(1, 7)])
    inner = (_HARTMANN_A * (x - _HARTMANN_P) ** 2).sum(axis=1)
    return float(-(_HARTMANN_ALPHA * np.exp(-inner)).sum())


def branin(params: Params) -> float:
    """The Branin function on [-5, 10] x [0, 15]; three global minima of 5 / (4 pi) = 0.397887.

    ``f(x) = (x2 - b x1^2 + c x1 - 6)^2 + 10 (1 - t) cos(x1) + 10`` with ``b = 5.1 / (4 pi^2)``,
    ``c = 5 / pi``, ``t = 1 / (8 pi)``.
    """
    x1, x2 = params["x1"], params["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


# The best log10(learning rate) of each optimizer (the optimizer x learning-rate interaction).
_MIXED_BEST_LOG10_LR = {"adam": -3.0, "rmsprop": -3.0, "lion": -3.5, "sgd": -2.0}
_MIXED_OPTIMIZER_PENALTY = {"adam": 0.0, "lion": 0.05, "rmsprop": 0.1, "sgd": 0.3}
_MIXED_BATCH_SIZE_PENALTY = {16: 0.08, 32: 0.02, 64: 0.0, 128: 0.03, 256: 0.1}
MIXED_OPTIMUM = 0.1


def mixed(params: Params) -> float:
    """A synthetic validation loss over a neural-network-shaped mixed space.

    With every numeric hyperparameter mapped linearly to [0, 1] over its range,
    ``u1 = (units1 - 16) / 240``, ``u2 = (units2 - 8) / 120``, ``d = dropout / 0.5`` and
    ``l = (log10(learning_rate) + 5) / 4``::

        loss = 0.1
             + 1.0 (u1 - u1(128))^2 + 0.5 (u2 - u2(64))^2 + 0.5 (d - d(0.15))^2
             + 2.0 (l - l(lr*(optimizer)))^2
             + batch_penalty[batch_size] + optimizer_penalty[optimizer]

    where ``lr*`` is 1e-3 for adam and rmsprop, 10^-3.5 for lion and 1e-2 for sgd,
    ``batch_penalty`` is {16: 0.08, 32: 0.02, 64: 0, 128: 0.03, 256: 0.1} and
    ``optimizer_penalty`` is {adam: 0, lion: 0.05, rmsprop: 0.1, sgd: 0.3}. Every term is
    non-negative, so the minimum 0.1 is at units1=128, units2=64, dropout=0.15,
    learning_rate=1e-3, batch_size=64, optimizer="adam": a point of the lattice (the learning
    rate is continuous).
    """
    optimizer = params["optimizer"]
    u1 = (params["units1"] - 128) / 240
    u2 = (params["units2"] - 64) / 120
    d = (params["dropout"] - 0.15) / 0.5
    lr = (math.log10(params["learning_rate"]) - _MIXED_BEST_LOG10_LR[optimizer]) / 4
    return (
        MIXED_OPTIMUM
        + 1.0 * u1**2
        + 0.5 * u2**2
        + 0.5 * d**2
        + 2.0 * lr**2
        + _MIXED_BATCH_SIZE_PENALTY[params["batch_size"]]
        + _MIXED_OPTIMIZER_PENALTY[optimizer]
    )


MIXED_DISTRIBUTIONS: dict[str, BaseDistribution] = {
    "units1": IntDistribution(16, 256, step=16),
    "units2": IntDistribution(8, 128, step=8),
    "dropout": FloatDistribution(0.0, 0.5, step=0.05),
    "learning_rate": FloatDistribution(1e-5, 1e-1, log=True),
    "batch_size": CategoricalDistribution([16, 32, 64, 128, 256]),
    "optimizer": CategoricalDistribution(["adam", "rmsprop", "sgd", "lion"]),
}

PROBLEMS: dict[str, Problem] = {
    problem.name: problem
    for problem in (
        Problem(
            name="hartmann6",
            distributions={f"x{j}": FloatDistribution(0.0, 1.0) for j in range(1, 7)},
            function=hartmann6,
            optimum=-3.322368011415514,
            budget=60,
            timing_from=40,
            target_regret=0.1,
        ),
        Problem(
            name="branin",
            distributions={
                "x1": FloatDistribution(-5.0, 10.0),
                "x2": FloatDistribution(0.0, 15.0),
            },
            function=branin,
            optimum=5 / (4 * math.pi),
            budget=40,
            timing_from=20,
        ),
        Problem(
            name="mixed",
            distributions=MIXED_DISTRIBUTIONS,
            function=mixed,
            optimum=MIXED_OPTIMUM,
            budget=40,
            timing_from=20,
        ),
    )
}


# --------------------------------------------------------------------------------------------
# Samplers and the loops that drive them
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KerasTunerBayesian:
    """KerasTuner's ``BayesianOptimizationOracle``, listed beside the Optuna samplers."""

    seed: int


Sampler = optuna.samplers.BaseSampler | KerasTunerBayesian


def _ours(acquisition: str, **kwargs: Any) -> Callable[[int], Sampler]:
    """The factory of this project's ``GaussianProcessSampler`` with ``acquisition``."""
    return lambda seed: GaussianProcessSampler(acquisition=acquisition, seed=seed, **kwargs)


def _botorch(seed: int) -> optuna.samplers.BaseSampler:
    """Optuna-integration's ``BoTorchSampler`` with its defaults."""
    from optuna_integration import BoTorchSampler  # imports torch: only when asked for

    return BoTorchSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int], Sampler]] = {
    "ours-ei": _ours("ei"),
    "ours-pi": _ours("pi"),
    "ours-ucb": _ours("ucb"),
    "optuna-gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "botorch": _botorch,
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "kerastuner": KerasTunerBayesian,
}


def available(names: Iterable[str]) -> list[str]:
    """The requested sampler names that can run here; a note on stderr for each that cannot."""
    selected = []
    for name in names:
        reason = _unavailable_reason(name)
        if reason:
            print(f"note: skipping {name}: {reason}", file=sys.stderr)
        else:
            selected.append(name)
    return selected


def _unavailable_reason(name: str) -> str:
    """Why the sampler cannot be built here ("" if it can)."""
    if not name.startswith("ours-"):
        return ""
    if GaussianProcessSampler is None:
        return f"GaussianProcessSampler not importable ({OURS_IMPORT_ERROR})"
    try:
        SAMPLERS[name](0)
    except Exception as error:  # a constructor under development: report and go on
        return f"GaussianProcessSampler cannot be built ({type(error).__name__}: {error})"
    return ""


class Search(Protocol):
    """One optimisation run: propose a configuration, be told its value."""

    def ask(self, worker: str = "main") -> tuple[Any, Params]:
        """A handle for the new trial and its parameters (``worker`` names a parallel caller)."""

    def tell(self, handle: Any, value: float) -> None:
        """Report the value of the trial ``handle``."""

    def close(self) -> None:
        """Release the run's resources."""


class OptunaSearch:
    """An Optuna sampler driven by ask-and-tell on its own study."""

    def __init__(
        self,
        sampler: optuna.samplers.BaseSampler,
        distributions: dict[str, BaseDistribution],
        storage: str | None = None,
        study_name: str | None = None,
    ) -> None:
        self.distributions = distributions
        self.study = optuna.create_study(
            sampler=sampler, direction="minimize", storage=storage, study_name=study_name
        )

    def ask(self, worker: str = "main") -> tuple[optuna.Trial, Params]:
        trial = self.study.ask(self.distributions)
        return trial, trial.params

    def tell(self, handle: optuna.Trial, value: float) -> None:
        self.study.tell(handle, value)

    def close(self) -> None:
        """Nothing to release (a storage keeps the study)."""


class KerasTunerSearch:
    """KerasTuner's Bayesian-optimisation oracle driven by its own trial API.

    The oracle writes its state and one JSON file per trial under a temporary project directory;
    that I/O is part of ``create_trial`` and so of the measured time, as it is in KerasTuner.
    """

    def __init__(
        self, seed: int, distributions: dict[str, BaseDistribution], max_trials: int
    ) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras_tuner  # imports TensorFlow: only when asked for

        self._directory = tempfile.TemporaryDirectory(prefix="kerastuner-bench-")
        self.oracle = keras_tuner.oracles.BayesianOptimizationOracle(
            objective=keras_tuner.Objective("score", "min"),
            max_trials=max_trials,
            # KerasTuner replaces seed 0 by a random one, and draws its random points with
            # random.Random(seed), random.Random(seed + 1), ...: consecutive seeds would share
            # most of their initial designs. Spread them out so each run is distinct and
            # reproducible.
            seed=1 + 1000 * seed,
            hyperparameters=keras_tuner_space(keras_tuner.HyperParameters(), distributions),
        )
        self.oracle.verbose = 0
        self.oracle._set_project_dir(self._directory.name, "oracle")

    def ask(self, worker: str = "main") -> tuple[Any, Params]:
        trial = self.oracle.create_trial(worker)
        if trial.status != "RUNNING":
            raise RuntimeError(f"KerasTuner oracle returned a {trial.status} trial")
        return trial, dict(trial.hyperparameters.values)

    def tell(self, handle: Any, value: float) -> None:
        self.oracle.update_trial(handle.trial_id, {"score": value})
        handle.status = "COMPLETED"
        self.oracle.end_trial(handle)

    def close(self) -> None:
        self._directory.cleanup()


def keras_tuner_space(hp: Any, distributions: dict[str, BaseDistribution]) -> Any:
    """Declare on KerasTuner's ``HyperParameters`` ``hp`` the space of Optuna ``distributions``."""
    for name, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            hp.Choice(name, list(dist.choices))
        elif isinstance(dist, IntDistribution | FloatDistribution):
            declare = hp.Int if isinstance(dist, IntDistribution) else hp.Float
            if dist.log:
                declare(name, dist.low, dist.high, sampling="log")
            else:
                declare(name, dist.low, dist.high, step=dist.step)
        else:
            raise TypeError(f"no KerasTuner equivalent for {dist!r}")
    return hp


def start_search(
    sampler: Sampler,
    problem: Problem,
    budget: int,
    storage: str | None = None,
    study_name: str | None = None,
) -> Search:
    """A fresh run of ``sampler`` on ``problem`` (``storage`` is for Optuna samplers only)."""
    if isinstance(sampler, KerasTunerBayesian):
        return KerasTunerSearch(sampler.seed, problem.distributions, budget)
    return OptunaSearch(sampler, problem.distributions, storage, study_name)


def quiet_optuna() -> None:
    """Keep Optuna's per-trial log lines and experimental-feature warnings off the output."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One sampler on one problem with one seed: the best value and sampler time per trial."""

    problem: str
    sampler: str
    seed: int
    best_so_far: list[float]
    sampler_seconds: list[float]

    @property
    def key(self) -> tuple[str, str]:
        return self.problem, self.sampler


def run_once(problem: Problem, sampler_name: str, seed: int, budget: int) -> Run:
    """Minimise ``problem`` for ``budget`` trials, timing each proposal."""
    run = Run(problem.name, sampler_name, seed, [], [])
    best = math.inf
    sampler = SAMPLERS[sampler_name](seed)
    with closing(start_search(sampler, problem, budget)) as search:
        for _ in range(budget):
            start = time.perf_counter()
            handle, params = search.ask()
            run.sampler_seconds.append(time.perf_counter() - start)
            value = problem.function(params)
            search.tell(handle, value)
            best = min(best, value)
            run.best_so_far.append(best)
    return run


def scaled(trials: int, scale: float) -> int:
    """A trial count multiplied by ``--budget-scale`` (at least one trial)."""
    return max(1, round(trials * scale))


def run_all(
    problems: Sequence[Problem],
    samplers: Sequence[str],
    seeds: int,
    scale: float,
    jobs: int = 1,
) -> list[Run]:
    """Every problem x sampler x seed, with a progress line on stderr after each run.

    With ``jobs > 1`` the runs are spread over that many worker processes: regrets are the same
    as in one process (each run is seeded on its own), but the samplers then share the CPU, so
    their times are not comparable with a run of ``jobs=1``.
    """
    tasks = [
        (problem, sampler_name, seed, scaled(problem.budget, scale))
        for problem in problems
        for sampler_name in samplers
        for seed in range(seeds)
    ]
    runs: list[Run] = []
    if jobs > 1:
        import multiprocessing

        # One thread per worker for the numerical libraries (read when a worker imports them):
        # with their default thread pools, 2 workers on 2 cores made each proposal about 3x
        # slower than in one process.
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")
        with multiprocessing.get_context("spawn").Pool(jobs, initializer=quiet_optuna) as pool:
            for run, seconds in pool.imap_unordered(_timed_run, tasks):
                runs.append(run)
                _progress(run, seconds, len(runs), len(tasks))
        order = {(p.name, name, seed): i for i, (p, name, seed, _) in enumerate(tasks)}
        return sorted(runs, key=lambda run: order[(run.problem, run.sampler, run.seed)])
    for task in tasks:
        run, seconds = _timed_run(task)
        runs.append(run)
        _progress(run, seconds, len(runs), len(tasks))
    return runs


def _timed_run(task: tuple[Problem, str, int, int]) -> tuple[Run, float]:
    start = time.perf_counter()
    run = run_once(*task)
    return run, time.perf_counter() - start


def _progress(run: Run, seconds: float, done: int, total: int) -> None:
    final = regret(PROBLEMS[run.problem], run.best_so_far[-1])
    print(
        f"[{done}/{total}] {run.problem} {run.sampler} seed={run.seed}: "
        f"final regret {sci(final)}, sampler {sum(run.sampler_seconds):.1f} s of {seconds:.1f} s",
        file=sys.stderr,
        flush=True,
    )


# --------------------------------------------------------------------------------------------
# Summaries and tables
# --------------------------------------------------------------------------------------------


@dataclass
class Summary:
    """The numbers of one table row: one sampler on one problem, over its seeds."""

    regrets: dict[int, list[float]]  # checkpoint (scaled trial count) -> regret of each seed
    worst_final: float
    ms_per_trial: float
    trials_to_target: list[float]  # per seed; inf when the target was not reached
    final_median: float


def summarise(problem: Problem, runs: Sequence[Run], scale: float) -> Summary:
    """Regret at the checkpoints, worst final regret, sampler time and trials to the target."""
    budget = scaled(problem.budget, scale)
    checkpoints = [scaled(c, scale) for c in CHECKPOINTS if c <= problem.budget]
    regrets = {n: [regret(problem, run.best_so_far[n - 1]) for run in runs] for n in checkpoints}
    final = [regret(problem, run.best_so_far[-1]) for run in runs]
    timed = slice(min(scaled(problem.timing_from, scale), budget - 1), None)
    times = [seconds for run in runs for seconds in run.sampler_seconds[timed]]
    return Summary(
        regrets=regrets,
        worst_final=max(final),
        ms_per_trial=1000 * statistics.median(times),
        trials_to_target=[trials_to_target(problem, run) for run in runs],
        final_median=statistics.median(final),
    )


def regret(problem: Problem, best: float) -> float:
    """Simple regret of a best-so-far value (rounding below the optimum counts as 0)."""
    return max(0.0, best - problem.optimum)


def trials_to_target(problem: Problem, run: Run) -> float:
    """The first trial whose best-so-far regret is below the problem's target (inf if none)."""
    if problem.target_regret is None:
        return math.inf
    for trial, best in enumerate(run.best_so_far, start=1):
        if regret(problem, best) < problem.target_regret:
            return trial
    return math.inf


def sci(x: float) -> str:
    """Compact scientific notation: 0.0123 -> "1.2e-2"."""
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def quartiles(values: Sequence[float]) -> str:
    """Median and quartiles, "median [q1, q3]", in compact scientific notation."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return f"{sci(median)} [{sci(q1)}, {sci(q3)}]"


def ratio(value: float, reference: float | None) -> str:
    """``value / reference``, scientific when far from 1 ("" without a reference, "-" if 0)."""
    if reference is None:
        return ""
    if reference == 0:
        return "-"
    quotient = value / reference
    return f"{quotient:.3g}" if quotient == 0 or 0.01 <= quotient < 1000 else sci(quotient)


def table(
    problems: Sequence[Problem], samplers: Sequence[str], runs: Sequence[Run], scale: float
) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the results table (one row per problem x sampler)."""
    checkpoints = [scaled(c, scale) for c in CHECKPOINTS]
    header = (
        ["problem", "sampler"]
        + [f"regret@{n}" for n in checkpoints]
        + ["worst final", "ms/trial", "trials to target", "regret vs gp", "time vs gp"]
    )
    rows = []
    for problem in problems:
        summaries = {
            name: summarise(problem, [r for r in runs if r.key == (problem.name, name)], scale)
            for name in samplers
        }
        reference = summaries.get(REFERENCE_SAMPLER)
        for name, summary in summaries.items():
            regrets = [
                quartiles(summary.regrets[n]) if n in summary.regrets else "" for n in checkpoints
            ]
            rows.append(
                [problem.name, name, *regrets]
                + [
                    sci(summary.worst_final),
                    f"{summary.ms_per_trial:.1f}",
                    target_cell(problem, summary, scale),
                    ratio(summary.final_median, reference and reference.final_median),
                    ratio(summary.ms_per_trial, reference and reference.ms_per_trial),
                ]
            )
    return without_empty_columns(header, rows)


def without_empty_columns(
    header: list[str], rows: list[list[str]]
) -> tuple[list[str], list[list[str]]]:
    """Drop the columns that no selected problem or sampler fills."""
    keep = [i for i in range(len(header)) if any(row[i] for row in rows)]
    return [header[i] for i in keep], [[row[i] for i in keep] for row in rows]


def target_cell(problem: Problem, summary: Summary, scale: float) -> str:
    """Trials to the target regret as "median (seeds reaching/seeds)", ">budget" if half miss."""
    if problem.target_regret is None:
        return ""
    trials = summary.trials_to_target
    median = statistics.median(trials)
    shown = f">{scaled(problem.budget, scale)}" if math.isinf(median) else f"{median:g}"
    reached = sum(not math.isinf(t) for t in trials)
    return f"{shown} ({reached}/{len(trials)})"


def render_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


def render_markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (a "|" inside a cell escaped)."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |"
                     for line in lines)


def caption(problems: Sequence[Problem], samplers: Sequence[str], seeds: int, scale: float) -> str:
    """What the table's columns mean, the settings and the library versions."""
    budgets = ", ".join(f"{p.name} {scaled(p.budget, scale)}" for p in problems)
    timing = ", ".join(f"{p.name} after trial {scaled(p.timing_from, scale)}" for p in problems)
    targets = ", ".join(f"{p.name} < {p.target_regret:g}" for p in problems if p.target_regret)
    versions = ", ".join(
        f"{package} {metadata.version(package)}"
        for package in ("optuna", "optuna-integration", "botorch", "keras-tuner")
    )
    sentences = [
        f"Simple regret (best value so far minus the known optimum) after n trials, as median "
        f"[first quartile, third quartile] over {seed_range(seeds)}; budgets: {budgets}.",
        "*worst final*: the largest final regret over seeds.",
        f"*ms/trial*: median sampler time per trial (Optuna `study.ask` with its suggestions, "
        f"KerasTuner `create_trial`) over the trials {timing}.",
    ]
    if targets:
        sentences.append(
            f"*trials to target*: median number of trials to reach regret {targets} "
            f'(">budget" when at least half the seeds miss it), and the seeds reaching it.'
        )
    if REFERENCE_SAMPLER in samplers:
        sentences.append(
            f"*vs gp*: final median regret and ms/trial divided by {REFERENCE_SAMPLER}'s."
        )
    sentences.append(f"Versions: {versions}.")
    return " ".join(sentences)


BLOCK = 5  # seeds per block in :func:`seed_blocks`


def seed_blocks(
    problems: Sequence[Problem], samplers: Sequence[str], runs: Sequence[Run], scale: float
) -> str:
    """How a five-seed measurement of trials to the target varies: with at least two blocks of
    five consecutive seeds, each sampler's per-block medians and how many blocks had every seed
    reach the target (empty text when there is nothing to show)."""
    lines = []
    for problem in problems:
        if problem.target_regret is None:
            continue
        for name in samplers:
            trials = [
                trials_to_target(problem, run)
                for run in runs
                if run.key == (problem.name, name)
            ]
            n_blocks = len(trials) // BLOCK
            if n_blocks < 2:
                continue
            blocks = [trials[i * BLOCK:(i + 1) * BLOCK] for i in range(n_blocks)]
            medians = [statistics.median(b) for b in blocks]
            shown = ", ".join(
                f">{scaled(problem.budget, scale)}" if math.isinf(m) else f"{m:g}" for m in medians
            )
            complete = sum(all(not math.isinf(t) for t in b) for b in blocks)
            lines.append(
                f"- {problem.name}, {name}: median trials to regret < {problem.target_regret:g} "
                f"in each block of {BLOCK} seeds: {shown}; blocks where all {BLOCK} seeds reach "
                f"it: {complete} of {n_blocks}."
            )
    return "\n".join(lines)


def paired_comparison(problems: Sequence[Problem], samplers: Sequence[str],
                      runs: Sequence[Run]) -> str:
    """Each sampler's final regrets against the reference sampler's on the same seeds: on how
    many seeds it ended lower, and the two-sided Wilcoxon signed-rank test of the log regrets
    (empty text with fewer than five seeds or no reference)."""
    lines = []
    for problem in problems:
        final = {
            name: {run.seed: max(regret(problem, run.best_so_far[-1]), 1e-300)
                   for run in runs if run.key == (problem.name, name)}
            for name in samplers
        }
        reference = final.get(REFERENCE_SAMPLER, {})
        for name in samplers:
            seeds = sorted(set(final[name]) & set(reference))
            if name == REFERENCE_SAMPLER or len(seeds) < 5:
                continue
            ours = np.log([final[name][s] for s in seeds])
            theirs = np.log([reference[s] for s in seeds])
            lower = int(np.sum(ours < theirs))
            ties = int(np.sum(ours == theirs))
            p = wilcoxon(ours, theirs).pvalue if ties < len(seeds) else 1.0
            lines.append(
                f"- {problem.name}, {name} against {REFERENCE_SAMPLER}: final regret lower on "
                f"{lower} of {len(seeds)} seeds" + (f" ({ties} equal)" if ties else "")
                + f"; Wilcoxon signed-rank test of the log regrets, p = {p:.2g}."
            )
    return "\n".join(lines)


def seed_range(seeds: int) -> str:
    """The seeds as text: "seeds 0-4", or "seed 0" for a single seed."""
    return f"seeds 0-{seeds - 1}" if seeds > 1 else "seed 0"


def raw_results(problems: Sequence[Problem], runs: Sequence[Run], scale: float) -> str:
    """The runs (best-so-far curves and sampler seconds per trial) and optima, as JSON."""
    payload = {
        "budget_scale": scale,
        "optima": {p.name: p.optimum for p in problems},
        "runs": [asdict(run) for run in runs],
    }
    return json.dumps(payload, indent=1)


def write(path: str, text: str) -> None:
    """Write (overwrite) ``text`` to ``path``, creating its directory."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def parse_list(value: str, known: Iterable[str], what: str) -> list[str]:
    """A comma-separated list of names, each checked against ``known``."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what}: {', '.join(unknown)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument(
        "--problems",
        type=lambda v: parse_list(v, PROBLEMS, "problem"),
        default=list(PROBLEMS),
        help=f"comma-separated, from {','.join(PROBLEMS)} (default all)",
    )
    parser.add_argument(
        "--samplers",
        type=lambda v: parse_list(v, SAMPLERS, "sampler"),
        default=list(SAMPLERS),
        help=f"comma-separated, from {','.join(SAMPLERS)} (default all)",
    )
    parser.add_argument(
        "--budget-scale", type=float, default=1.0, help="multiply every budget (smoke tests)"
    )
    parser.add_argument("--markdown", metavar="PATH", help="also write the table as Markdown")
    parser.add_argument("--json", metavar="PATH", help="write the raw per-run results")
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="also draw the regret curves (and, for problems with a target, the share of seeds "
        "that reached it by each trial) as a PNG",
    )
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        help="do not run: read the runs of an earlier --json (with its --budget-scale) and "
        "print, write and plot them",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes (default 1; with more, regrets are unchanged but the samplers "
        "share the CPU, so ms/trial is not comparable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    quiet_optuna()
    if args.jobs < 1:
        raise SystemExit(f"--jobs={args.jobs}: expected a number of processes >= 1")
    if args.from_json:
        runs, args.budget_scale = read_runs(args.from_json)
        problems = [p for p in PROBLEMS.values() if any(r.problem == p.name for r in runs)]
        samplers = list(dict.fromkeys(r.sampler for r in runs))
        seeds = len({r.seed for r in runs})
    else:
        problems = [PROBLEMS[name] for name in args.problems]
        samplers = available(args.samplers)
        seeds = args.seeds
        runs = run_all(problems, samplers, seeds, args.budget_scale, args.jobs)
    header, rows = table(problems, samplers, runs, args.budget_scale)
    about = caption(problems, samplers, seeds, args.budget_scale)
    if args.jobs > 1 and not args.from_json:
        about += (
            f" Runs spread over {args.jobs} processes: the samplers shared the CPU, so ms/trial"
            " is not comparable with a one-process run."
        )
    for notes in (seed_blocks(problems, samplers, runs, args.budget_scale),
                  paired_comparison(problems, samplers, runs)):
        if notes:
            about += "\n\n" + notes
    print(render_text(header, rows))
    print()
    print(about)
    if args.markdown:
        write(args.markdown, f"{render_markdown(header, rows)}\n\n{about}\n")
    if args.json:
        write(args.json, raw_results(problems, runs, args.budget_scale))
    if args.plot:
        plot(problems, samplers, runs, args.budget_scale, args.plot)


def read_runs(path: str) -> tuple[list[Run], float]:
    """The runs and budget scale saved by ``--json``."""
    payload = json.loads(Path(path).read_text())
    unknown = sorted({r["problem"] for r in payload["runs"]} - set(PROBLEMS))
    if unknown:
        raise SystemExit(f"--from-json={path}: unknown problems {unknown}")
    return [Run(**r) for r in payload["runs"]], float(payload["budget_scale"])


def plot(
    problems: Sequence[Problem],
    samplers: Sequence[str],
    runs: Sequence[Run],
    scale: float,
    path: str,
) -> None:
    """One panel per problem: median simple regret against trials, with the quartiles shaded;
    for problems with a target regret, one more panel: the share of seeds below the target by
    each trial."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(p, "regret") for p in problems]
    panels += [(p, "target") for p in problems if p.target_regret is not None]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (problem, kind) in zip(axes[0], panels, strict=True):
        for name in samplers:
            mine = [r for r in runs if r.key == (problem.name, name)]
            if not mine:
                continue
            curves = np.array([[regret(problem, b) for b in r.best_so_far] for r in mine])
            trials = np.arange(1, curves.shape[1] + 1)
            if kind == "regret":
                low, mid, high = np.percentile(np.maximum(curves, 1e-12), [25, 50, 75], axis=0)
                (line,) = ax.plot(trials, mid, label=name)
                ax.fill_between(trials, low, high, color=line.get_color(), alpha=0.15)
            else:
                share = (curves < problem.target_regret).mean(axis=0)
                ax.step(trials, 100 * share, where="post", label=name)
        if kind == "regret":
            ax.set_yscale("log")
            ax.set_ylabel("simple regret (median, quartiles)")
            ax.set_title(problem.name)
        else:
            ax.set_ylim(0, 100)
            ax.set_ylabel(f"% of seeds with regret < {problem.target_regret:g}")
            ax.set_title(f"{problem.name}: reaching the target")
        ax.set_xlabel("trials")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    n_seeds = len({r.seed for r in runs})
    fig.suptitle(f"{seed_range(n_seeds)}, budget scale {scale:g}", fontsize="small")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
