"""Trial throughput of ``optuna-keras-hpo worker`` processes sharing one study in PostgreSQL.

For each number of workers N (default 1, 2, 4, 8) and each sampler: a fresh study, and N worker
processes (the real CLI, default heartbeats) running an objective that sleeps ``--sleep`` seconds
(1 s), so the run measures coordination through the database, not the 2 cores. The budget is
N x ``--trials-per-worker`` COMPLETE trials. Process start-up (Python, imports, connecting to
the database, loading the study) is left out: each worker's first trial (this file's objective)
waits at a barrier until all N workers are there; the clock starts when the barrier is released
and stops at the last completed trial. The per-trial figures leave out each worker's first trial.

Per configuration it reports: trials per minute and its ratio to one worker (ideal: N); the mean
trial duration (creation to completion); the sampler's time per trial (every sampler method,
timed inside the worker: ``before_trial``, relative sampling at ``ask``, ``sample_independent``
in each ``suggest_*``, ``after_trial``) and its share of the trial; the rest of the per-trial
overhead (the database: creating the trial, admission, heartbeats, ``tell``); the gap between
two trials of one worker (stale-trial check and the budget check); and the trials refused at
admission (two workers starting the last trial at once).

Usage::

    .venv/bin/python benchmarks/workers.py
    .venv/bin/python benchmarks/workers.py --workers 1,8 --samplers tpe,gp-ei --markdown r.md
    .venv/bin/python benchmarks/workers.py --workers 1,4 --heartbeats off,on,1 --repeats 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BARRIER_ENV = "OKH_BENCH_BARRIER"
SLEEP_ENV = "OKH_BENCH_SLEEP"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STORAGE = os.environ.get(
    "OKH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# -- inside each worker process (this file is the objective's module) ---------------------------
_sampler_seconds = 0.0
_depth = 0


def _timed(method):
    def timed(*args, **kwargs):
        global _sampler_seconds, _depth
        _depth += 1
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _depth -= 1
            if _depth == 0:  # nested calls (TPE's random start-up sampler) counted once
                _sampler_seconds += time.perf_counter() - start

    return timed


def _time_samplers() -> None:
    import optuna

    from optuna_keras_hpo.samplers import DistributedGridSampler, GaussianProcessSampler

    for cls in (optuna.samplers.TPESampler, optuna.samplers.RandomSampler,
                GaussianProcessSampler, DistributedGridSampler):
        for name in ("before_trial", "infer_relative_search_space", "sample_relative",
                     "sample_independent", "after_trial"):
            setattr(cls, name, _timed(cls.__dict__.get(name, getattr(cls, name))))


def sleep_objective(trial) -> float:
    """Four parameters of a small network's kind, then a sleep standing for the training."""
    global _sampler_seconds
    _wait_at_barrier()
    units = trial.suggest_int("units", 8, 256, log=True)
    layers = trial.suggest_int("layers", 1, 4)
    learning_rate = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd", "rmsprop"])
    time.sleep(float(os.environ.get(SLEEP_ENV, "1")))
    trial.set_user_attr("sampler_seconds", _sampler_seconds)
    _sampler_seconds = 0.0
    penalty = {"adam": 0.0, "sgd": 0.2, "rmsprop": 0.1}[optimizer]
    return (units - 64) ** 2 / 1e4 + (layers - 2) ** 2 + abs(learning_rate - 3e-3) + penalty


_started = False


def _wait_at_barrier() -> None:
    """In its first trial, a worker (started up, connected, its first trial created) waits for
    the others. The first trials are then left out of the per-trial figures."""
    global _started
    if _started or not os.environ.get(BARRIER_ENV):
        return
    _started = True
    barrier = Path(os.environ[BARRIER_ENV])
    (barrier / f"ready-{os.getpid()}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.005)
    global _sampler_seconds
    _sampler_seconds = 0.0


if os.environ.get(BARRIER_ENV):  # a worker: time the samplers
    _time_samplers()


# -- the benchmark --------------------------------------------------------------------------
def run(storage: str, sampler: str, n_workers: int, trials_per_worker: int, sleep: float,
        keep: bool, heartbeats: str = "on") -> dict:
    import optuna
    from optuna.trial import TrialState

    from optuna_keras_hpo.storage import make_storage

    url = storage
    storage = make_storage(url)

    study_name = f"bench-workers-{uuid.uuid4().hex[:8]}"
    n_trials = n_workers * trials_per_worker
    with tempfile.TemporaryDirectory() as barrier:
        env = {**os.environ, BARRIER_ENV: barrier, SLEEP_ENV: str(sleep),
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, "-m", "optuna_keras_hpo", "worker", "--storage", url,
                   "--study", study_name, "--objective", f"{Path(__file__).resolve()}:"
                   "sleep_objective", "--max-trials", str(n_trials), "--sampler", sampler]
        if heartbeats == "off":
            command.append("--no-heartbeats")
        elif heartbeats != "on":  # an interval in seconds
            command += ["--heartbeat-interval", heartbeats]
        optuna.create_study(study_name=study_name, storage=storage)  # not raced by workers
        logs = [tempfile.TemporaryFile() for _ in range(n_workers)]
        workers = [
            subprocess.Popen([*command, "--seed", str(i)], cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
            for i, log in enumerate(logs)
        ]
        try:
            while len(list(Path(barrier).glob("ready-*"))) < n_workers:
                if any(w.poll() is not None for w in workers):
                    raise RuntimeError("a worker exited before the start")
                time.sleep(0.05)
            released = time.time()
            (Path(barrier) / "go").touch()
            for worker, log in zip(workers, logs, strict=True):
                if worker.wait(timeout=600) != 0:
                    log.seek(0)
                    raise RuntimeError(f"a worker failed:\n{log.read().decode()[-3000:]}")
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
            for log in logs:
                log.close()
    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = study.trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == n_trials, (len(complete), n_trials)
    start = dt.datetime.fromtimestamp(released)
    end = max(t.datetime_complete for t in complete)
    wall = (end - start).total_seconds()
    gaps = []
    by_worker: dict[str, list] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs.get("worker"), []).append(t)
    firsts = set()
    for own in by_worker.values():
        own.sort(key=lambda t: t.datetime_start)
        firsts.add(own[0].number)
        gaps += [(b.datetime_start - a.datetime_complete).total_seconds()
                 for a, b in zip(own, own[1:], strict=False) if a.datetime_complete]
    steady = [t for t in complete if t.number not in firsts]
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in steady]
    sampler_s = [t.user_attrs["sampler_seconds"] for t in steady]
    if not keep:
        optuna.delete_study(study_name=study_name, storage=storage)
    trial_s = statistics.mean(durations)
    return {
        "sampler": sampler, "workers": n_workers, "heartbeats": heartbeats,
        "trials": n_trials, "wall": wall,
        "per_minute": n_trials / wall * 60, "trial_s": trial_s,
        "sampler_ms": 1e3 * statistics.mean(sampler_s),
        "share": statistics.mean(sampler_s) / trial_s,
        "other_ms": 1e3 * (trial_s - sleep - statistics.mean(sampler_s)),
        "gap_ms": 1e3 * statistics.mean(gaps) if gaps else 0.0,
        "refused": sum(t.state == TrialState.FAIL for t in trials),
    }


def table(rows: list[dict]) -> str:
    header = ("| sampler | heartbeats | workers | trials | wall s | trials/min | vs 1 worker | "
              "vs heartbeats off | trial s | sampler ms/trial | sampler share | "
              "other overhead ms/trial | gap ms | refused |")
    lines = [header, "| " + " | ".join(["---"] * 14) + " |"]
    base = {(r["sampler"], r["heartbeats"]): r["per_minute"] for r in rows if r["workers"] == 1}
    off = {(r["sampler"], r["workers"]): r["per_minute"] for r in rows
           if r["heartbeats"] == "off"}
    for r in rows:
        ratio = r["per_minute"] / base.get((r["sampler"], r["heartbeats"]), float("nan"))
        vs_off = r["per_minute"] / off.get((r["sampler"], r["workers"]), float("nan"))
        lines.append(
            f"| {r['sampler']} | {r['heartbeats']} | {r['workers']} | {r['trials']} | "
            f"{r['wall']:.1f} | {r['per_minute']:.1f} | {ratio:.2f}x | {vs_off:.2f}x | "
            f"{r['trial_s']:.3f} | "
            f"{r['sampler_ms']:.1f} | {100 * r['share']:.1f}% | {r['other_ms']:.1f} | "
            f"{r['gap_ms']:.1f} | {r['refused']} |"
        )
    return "\n".join(lines)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def repeats_table(rows: list[dict]) -> str:
    """Per configuration over the repeats: trials/min and its ratio to heartbeats off in the same
    repeat (paired), as median [first quartile, third quartile]."""
    lines = ["| sampler | heartbeats | workers | repeats | trials/min | vs heartbeats off "
             "(same repeat) | other overhead ms/trial |", "| " + " | ".join(["---"] * 7) + " |"]
    keys = dict.fromkeys((r["sampler"], r["heartbeats"], r["workers"]) for r in rows)
    for sampler, heartbeats, workers in keys:
        mine = {r["repeat"]: r for r in rows
                if (r["sampler"], r["heartbeats"], r["workers"]) == (sampler, heartbeats, workers)}
        off = {r["repeat"]: r for r in rows
               if (r["sampler"], r["heartbeats"], r["workers"]) == (sampler, "off", workers)}
        rates = _quartiles([r["per_minute"] for r in mine.values()])
        ratios = [r["per_minute"] / off[k]["per_minute"] for k, r in mine.items() if k in off]
        q = _quartiles(ratios) if ratios else (float("nan"),) * 3
        other = _quartiles([r["other_ms"] for r in mine.values()])
        lines.append(
            f"| {sampler} | {heartbeats} | {workers} | {len(mine)} | "
            f"{rates[1]:.1f} [{rates[0]:.1f}, {rates[2]:.1f}] | "
            f"{q[1]:.3f}x [{q[0]:.3f}, {q[2]:.3f}] | "
            f"{other[1]:.1f} [{other[0]:.1f}, {other[2]:.1f}] |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", default=DEFAULT_STORAGE,
                        help="a PostgreSQL URL (default: $OKH_POSTGRES_URL or the local server)")
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts (default 1,2,4,8)")
    parser.add_argument("--samplers", default="tpe",
                        help="samplers of the worker CLI, comma-separated (default tpe)")
    parser.add_argument("--trials-per-worker", type=int, default=10)
    parser.add_argument("--sleep", type=float, default=1.0, help="objective seconds (1)")
    parser.add_argument("--heartbeats", default="on",
                        help="comma-separated: on (the default interval), off, or an interval "
                             "in seconds; each is run beside the others (default on)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="times the whole set of configurations is run, interleaved; with "
                             "more than one, a table of medians and quartiles follows (1)")
    parser.add_argument("--markdown", type=Path, help="write the table there (overwritten)")
    parser.add_argument("--keep", action="store_true", help="keep the studies")
    args = parser.parse_args()
    rows = []
    for repeat in range(args.repeats):  # outermost: a drift of the machine hits every setting
        for sampler in args.samplers.split(","):
            for n in (int(w) for w in args.workers.split(",")):
                for heartbeats in args.heartbeats.split(","):
                    row = run(args.storage, sampler, n, args.trials_per_worker, args.sleep,
                              args.keep, heartbeats)
                    row["repeat"] = repeat
                    rows.append(row)
                    print(f"repeat {repeat + 1}/{args.repeats}: {sampler} x{n} heartbeats "
                          f"{heartbeats}: {row['per_minute']:.1f} trials/min", file=sys.stderr)
    text = table(rows) if args.repeats == 1 else repeats_table(rows)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
