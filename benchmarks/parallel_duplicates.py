"""How often samplers re-propose a configuration that is already running or finished, when
several workers share one search.

Worker threads (4 by default) share one study (in memory, or in ``--storage``) on the ``mixed``
problem of ``samplers.py``. Each worker loops ask -> sleep (simulated training) -> tell until
the study has ``--trials`` trials. A proposal is a duplicate when all its parameters equal those
of a configuration that is running or finished when it is proposed. Asks and tells go through
one lock, so "when it is proposed" is well defined and the sampler sees every earlier proposal
(Optuna samplers as RUNNING trials with their parameters, KerasTuner as ongoing trials): a
duplicate is the sampler's choice, not a race between workers.

Usage::

    python benchmarks/parallel_duplicates.py
    python benchmarks/parallel_duplicates.py --samplers optuna-gp,kerastuner --storage sqlite:///d.db
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from samplers import (
    PROBLEMS,
    SAMPLERS,
    KerasTunerBayesian,
    Params,
    Problem,
    Search,
    available,
    parse_list,
    quiet_optuna,
    render_text,
    scaled,
    seed_range,
    start_search,
)

DEFAULT_SAMPLERS = ["ours-ei", "optuna-gp", "tpe", "random"]


@dataclass
class Tally:
    """Proposals of one run, and those duplicating a running or a finished configuration."""

    proposals: int = 0
    of_running: int = 0
    of_finished: int = 0

    @property
    def duplicates(self) -> int:
        return self.of_running + self.of_finished

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.proposals + other.proposals,
            self.of_running + other.of_running,
            self.of_finished + other.of_finished,
        )


def config_key(params: Params) -> Hashable:
    """The configuration as a hashable value: equal exactly when all parameters are equal."""
    return tuple(sorted(params.items()))


class SharedSearch:
    """A search shared by worker threads that classifies every proposal as it is made."""

    def __init__(self, search: Search, n_trials: int) -> None:
        self._search = search
        self._n_trials = n_trials
        self._lock = threading.Lock()
        self._running: Counter[Hashable] = Counter()
        self._finished: set[Hashable] = set()
        self.tally = Tally()

    def ask(self, worker: str) -> tuple[Any, Params, Hashable] | None:
        """A new trial (handle, parameters, key), or None once the study has all its trials."""
        with self._lock:
            if self.tally.proposals >= self._n_trials:
                return None
            handle, params = self._search.ask(worker)
            key = config_key(params)
            self.tally.proposals += 1
            if self._running[key]:
                self.tally.of_running += 1
            elif key in self._finished:
                self.tally.of_finished += 1
            self._running[key] += 1
            return handle, params, key

    def tell(self, handle: Any, key: Hashable, value: float) -> None:
        """Finish the trial ``handle`` with ``value``."""
        with self._lock:
            self._search.tell(handle, value)
            self._running[key] -= 1
            self._finished.add(key)


def work(shared: SharedSearch, problem: Problem, worker: str, sleep: float) -> None:
    """One worker: ask, "train" for ``sleep`` seconds, tell, until the study is full."""
    while (proposal := shared.ask(worker)) is not None:
        handle, params, key = proposal
        time.sleep(sleep)
        shared.tell(handle, key, problem.function(params))


def run_parallel(
    problem: Problem,
    sampler_name: str,
    seed: int,
    n_trials: int,
    workers: int,
    sleep: float,
    storage: str | None,
) -> Tally:
    """One study filled by ``workers`` threads; the tally of its proposals."""
    sampler = SAMPLERS[sampler_name](seed)
    study_name = f"duplicates-{sampler_name}-{seed}-{uuid.uuid4().hex[:8]}"
    with closing(start_search(sampler, problem, n_trials, storage, study_name)) as search:
        shared = SharedSearch(search, n_trials)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(work, shared, problem, f"worker-{i}", sleep) for i in range(workers)
            ]
            for future in futures:
                future.result()  # re-raises a worker's exception
    return shared.tally


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def report(tallies: dict[str, list[Tally]]) -> str:
    """A table of duplicate fractions per sampler, over all seeds and seed by seed."""
    header = ["sampler", "proposals", "of running", "of finished", "duplicates", "per seed"]
    rows = []
    for name, runs in tallies.items():
        total = sum(runs, Tally())
        rows.append(
            [
                name,
                str(total.proposals),
                str(total.of_running),
                str(total.of_finished),
                percent(total.duplicates, total.proposals),
                " ".join(percent(t.duplicates, t.proposals) for t in runs),
            ]
        )
    return render_text(header, rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument(
        "--samplers",
        type=lambda v: parse_list(v, SAMPLERS, "sampler"),
        default=DEFAULT_SAMPLERS,
        help=f"comma-separated, from {','.join(SAMPLERS)} (default {','.join(DEFAULT_SAMPLERS)})",
    )
    parser.add_argument("--trials", type=int, default=60, help="trials per study (default 60)")
    parser.add_argument(
        "--budget-scale", type=float, default=1.0, help="multiply --trials (smoke tests)"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker threads (default 4)")
    parser.add_argument(
        "--sleep", type=float, default=0.05, help="seconds of simulated training (default 0.05)"
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage, e.g. sqlite:///duplicates.db (default in memory; "
        "KerasTuner keeps its own files)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    quiet_optuna()
    problem = PROBLEMS["mixed"]
    n_trials = scaled(args.trials, args.budget_scale)
    tallies: dict[str, list[Tally]] = {}
    for name in available(args.samplers):
        if args.storage and SAMPLERS[name] is KerasTunerBayesian:
            print(f"note: {name} does not use --storage", file=sys.stderr)
        for seed in range(args.seeds):
            start = time.perf_counter()
            tally = run_parallel(
                problem, name, seed, n_trials, args.workers, args.sleep, args.storage
            )
            tallies.setdefault(name, []).append(tally)
            print(
                f"{name} seed={seed}: {tally.duplicates}/{tally.proposals} duplicates, "
                f"{time.perf_counter() - start:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"{problem.name}: {args.workers} workers, {n_trials} trials per study, "
        f"{args.sleep} s per trial, {seed_range(args.seeds)}"
    )
    print(report(tallies))


if __name__ == "__main__":
    main()
