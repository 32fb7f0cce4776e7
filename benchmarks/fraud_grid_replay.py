"""Search strategies replayed over a trained table of the fraud model's grid, over many seeds.

Two steps:

1. ``--build`` trains every point of a discretisation of the article's Bayesian space once (the
   comparison's own ``GridSearch`` job, training seeded per configuration) and writes the table
   (each configuration's validation metrics) to ``benchmarks/data/fraud_grid_table.json`` with
   the command and the run time. The file is committed, so the replay needs no training.
2. The replay (default) runs random search, TPE, GP-EI, GP-PI, GP-UCB and the grid in random
   order over the table, ``--seeds`` times each (the comparison's ``replay``: a configuration is
   read from the table, never trained), and prints per strategy the distinct configurations
   needed to reach the table's best (median and quartiles), the share of seeds that got there
   within 10% and 25% of the grid, and a one-sided Mann-Whitney U test against the grid.

    .venv/bin/python benchmarks/fraud_grid_replay.py --build          # once, ~15 min
    .venv/bin/python benchmarks/fraud_grid_replay.py --seeds 100 --jobs 2 \
        --markdown results/fraud_grid_replay.md --plot docs/images/fraud_grid_replay.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from optuna_keras_hpo.fraud.comparison import (  # noqa: E402
    QUICK,
    CompareConfig,
    Job,
    Table,
    TableRow,
    config_key,
    grid_size,
    replay,
    run_job,
)
from optuna_keras_hpo.fraud.hypermodel import BAYESIAN_GRID  # noqa: E402
from optuna_keras_hpo.fraud.report import SHARES, read_replay, replay_costs  # noqa: E402

TABLE = Path(__file__).parent / "data" / "fraud_grid_table.json"
STRATEGIES = ("random", "tpe", "gp-ei", "gp-pi", "gp-ucb", "grid")
# The benchmark's grid: the Bayesian space's discretisation with the quick mode's epochs:
# 4 optimizers * 3 learning rates * 2 widths * 2 dropouts * 2 batch sizes * 2 epoch counts.
GRID = {**BAYESIAN_GRID, "epochs": [4, 12]}
OBJECTIVE = "pr_auc"


def build(path: Path, rows: int, seed: int) -> None:
    """Train the grid once (quick mode's data and patience) and write the table."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        config = CompareConfig(output=tmp, rows=rows, grid=GRID, seed=seed, objective=OBJECTIVE,
                               progress=False)
        start = time.monotonic()
        name = run_job(config, Job("table", "table"),
                       tick=lambda: print(".", end="", file=sys.stderr, flush=True))
        seconds = time.monotonic() - start
        study = optuna.load_study(study_name=name, storage=config.storage_url())
        tests = _test_metrics(study, Path(tmp) / name, config)
        trials = [{"number": t.number, "state": t.state.name, "params": t.params,
                   "metrics": {k: v for k, v in t.user_attrs.items()
                               if k.startswith("val_") and isinstance(v, float)},
                   "test": tests.get(t.number),
                   "seconds": t.duration.total_seconds() if t.duration else None}
                  for t in study.trials]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "command": "benchmarks/fraud_grid_replay.py --build" + (
            f" --rows {rows}" if rows != QUICK.rows else "") + (
            f" --seed {seed}" if seed else ""),
        "grid": GRID, "rows": rows, "seed": seed, "epochs": QUICK.epochs,
        "patience": QUICK.patience, "objective": f"val_{OBJECTIVE}",
        "build_seconds": round(seconds, 1), "versions": _versions(), "trials": trials,
    }, indent=1))
    print(f"\n{len(trials)} points in {seconds:.0f} s -> {path}", file=sys.stderr)


def _test_metrics(study, project: Path, config: CompareConfig) -> dict[int, dict]:
    """Each trained point's saved model scored on the test split (for the objectives' table:
    how well each validation objective predicts test performance)."""
    import keras
    from optuna.artifacts import FileSystemArtifactStore, download_artifact

    from optuna_keras_hpo import fraud
    from optuna_keras_hpo.attrs import MODEL_ATTR
    from optuna_keras_hpo.storage import ARTIFACT_DIR

    fraud.register_keras_objects()
    data = fraud.load_data(n_rows=config.rows, seed=config.seed)
    store = FileSystemArtifactStore(str(project / ARTIFACT_DIR))
    tests = {}
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        path = project / f"{t.number}.keras"
        download_artifact(artifact_store=store, file_path=str(path),
                          artifact_id=t.user_attrs[MODEL_ATTR])
        tests[t.number] = fraud.evaluate_test(keras.saving.load_model(path), data)
        path.unlink()
    return tests


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("optuna", "keras", "tensorflow-cpu", "botorch")}


def load_table(path: Path) -> tuple[Table, dict]:
    saved = json.loads(path.read_text())
    metric = saved["objective"]
    rows = {config_key(t["params"]): TableRow(
        t["number"], t["metrics"].get(metric) if t["state"] == "COMPLETE" else None,
        t["state"] == "COMPLETE", ()) for t in saved["trials"]}
    return Table("fraud_grid_table", rows), saved


def _replay_one(args) -> tuple[str, int, list[float], int | None, float]:
    path, strategy, seed, initial_points = args
    from optuna_keras_hpo import fraud
    from optuna_keras_hpo.fraud.hypermodel import FraudHyperModel

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table, saved = load_table(Path(path))
    hypermodel = FraudHyperModel(fraud.load_data(n_rows=200), space="grid",
                                 grid=saved["grid"])
    start = time.monotonic()
    study = replay(table, hypermodel, strategy, seed, initial_points)
    run = read_replay(study, table.best)
    return strategy, seed, run.curve, run.to_best, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="store_true", help="train the table and write it")
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--rows", type=int, default=QUICK.rows)
    parser.add_argument("--seed", type=int, default=0, help="the table's training seed")
    parser.add_argument("--seeds", type=int, default=100, help="replays per strategy")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--initial-points", type=int, default=QUICK.initial_points,
                        help="random trials before GP and TPE take over (default: quick mode's)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--objectives", action="store_true",
                        help="no replay: how each candidate objective ranks the table's points "
                             "(ties, agreement with test PR-AUC, the model it picks, where a "
                             "model that flags everything would rank)")
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    if args.build:
        build(args.table, args.rows, args.seed)
        return
    if args.objectives:
        text = objectives_table(json.loads(args.table.read_text()))
        print(text)
        if args.markdown:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(text)
        return
    from scipy.stats import mannwhitneyu

    table, saved = load_table(args.table)
    size = table.size
    assert size == grid_size(saved["grid"]), (size, grid_size(saved["grid"]))
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    tasks = [(str(args.table), s, seed, args.initial_points) for s in strategies
             for seed in range(args.seeds)]
    results: dict[str, list] = {s: [] for s in strategies}
    start = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for i, (strategy, seed, curve, to_best, seconds) in enumerate(
                pool.map(_replay_one, tasks)):
            results[strategy].append((seed, curve, to_best, seconds))
            print(f"[{i + 1}/{len(tasks)}] {strategy} seed {seed}: {to_best} ({seconds:.1f} s)",
                  file=sys.stderr)
    wall = time.monotonic() - start

    from optuna_keras_hpo.fraud.report import ReplayRun

    costs = {s: replay_costs([ReplayRun("", s, curve, to_best, to_best)
                              for _, curve, to_best, _ in runs], size)
             for s, runs in results.items()}
    grid = costs.get("grid")
    ties = sum(r.value == table.best for r in table.rows.values())
    header = ["strategy", "to the best: median [q1, q3]", "% of the grid (median)",
              *[f"within {share:.0%} of the grid" for share in SHARES],
              "p vs grid (Mann-Whitney U, fewer)", "s per replay (median)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s, c in costs.items():
        median, q1, q3 = c.quartiles()
        p = "-" if s == "grid" or grid is None else \
            f"{mannwhitneyu(c.to_best, grid.to_best, alternative='less').pvalue:.2g}"
        seconds = float(np.median([r[3] for r in results[s]]))
        lines.append("| " + " | ".join([
            "grid (random order)" if s == "grid" else s, f"{median:.1f} [{q1:.1f}, {q3:.1f}]",
            f"{100 * median / size:.1f}%",
            *[f"{c.share_within(share * size):.0%}" for share in SHARES], p, f"{seconds:.2f}",
        ]) + " |")
    caption = (
        f"Table: {size} configurations ({args.table.name}: {saved['rows']} rows, objective "
        f"{saved['objective']}, best {table.best:.4f}, {ties} point(s) at the best; built by "
        f"`{saved['command']}` in {saved['build_seconds']:.0f} s). {args.seeds} seeds per "
        f"strategy; GP and TPE start with {args.initial_points} random trials; cost = distinct "
        f"configurations evaluated until the best (the grid in random order expects "
        f"{(size + 1) / (ties + 1):.1f}). Replays took {wall:.0f} s with --jobs {args.jobs}.")
    text = "\n".join(lines) + "\n\n" + caption + "\n"
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({s: [{"seed": r[0], "to_best": r[2],
                                              "curve": [c if math.isfinite(c) else None
                                                        for c in r[1]]} for r in runs]
                                         for s, runs in results.items()}))
    if args.plot:
        _plot(costs, table.best, size, args.plot, args.seeds)


CANDIDATES = {  # objective -> its value from a point's validation metrics (None: infeasible)
    "recall": lambda m: m["val_recall"],
    "pr_auc": lambda m: m["val_pr_auc"],
    # F2 at threshold 0.5 from precision and recall at the same threshold (the table keeps
    # the metrics its objective needs): 5PR / (4P + R).
    "fbeta": lambda m: 5 * m["val_precision"] * m["val_recall"]
    / max(4 * m["val_precision"] + m["val_recall"], 1e-12),
    "recall_at_precision": lambda m: m["val_recall"] if m["val_precision"] >= 0.5 else None,
}


def objectives_table(saved: dict) -> str:
    """Per candidate objective, over the table's points: distinct values, Spearman correlation
    of the validation objective with test PR-AUC, the test metrics of the point it ranks first,
    and the rank a model that flags every transaction would get."""
    from scipy.stats import spearmanr

    from optuna_keras_hpo import fraud

    data = fraud.load_data(n_rows=saved["rows"], seed=saved["seed"])
    rate = float(np.mean(data.y_val))
    flag_all = {"val_recall": 1.0, "val_precision": rate, "val_pr_auc": rate,
                "val_fbeta": 5 * rate / (4 * rate + 1)}
    points = [t for t in saved["trials"] if t["state"] == "COMPLETE" and t.get("test")]
    header = ["objective", "distinct values", "Spearman with test PR-AUC",
              "its best: test PR-AUC", "test recall", "test precision",
              "rank of 'flag everything'"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, value in CANDIDATES.items():
        values = [value(t["metrics"]) for t in points]
        scored = [-1.0 if v is None else v for v in values]
        rho = spearmanr(scored, [t["test"]["pr_auc"] for t in points]).statistic
        best = points[int(np.argmax(scored))]
        own = value(flag_all)
        rank = "infeasible" if own is None else (
            f"{1 + sum(v > own for v in scored)} of {len(points) + 1}"
            + (" (tied first)" if own >= max(scored) else ""))
        lines.append("| " + " | ".join([
            name, str(len(set(scored))), f"{rho:.2f}", f"{best['test']['pr_auc']:.3f}",
            f"{best['test']['recall']:.3f}", f"{best['test']['precision']:.3f}", rank]) + " |")
    caption = (f"{len(points)} trained points of `{TABLE.name}` (validation split: "
               f"{int(np.sum(data.y_val))} frauds of {len(data.y_val)}); a model that flags "
               f"everything has validation recall 1, precision and PR-AUC {rate:.3f}. "
               "`recall_at_precision`: recall with validation precision >= 0.5, else infeasible.")
    return "\n".join(lines) + "\n\n" + caption + "\n"


def _plot(costs, best: float, size: int, path: Path, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(1, size + 1)
    for s, c in costs.items():
        finite = np.where(np.isfinite(c.curves), c.curves, np.nan)
        q1, median, q3 = np.nanpercentile(finite, [25, 50, 75], axis=0)
        style = "--" if s == "grid" else "-"
        label = "grid (random order)" if s == "grid" else s
        (line,) = left.plot(x, median, linestyle=style, label=label)
        left.fill_between(x, q1, q3, color=line.get_color(), alpha=0.12, linewidth=0)
        reached = [np.mean([t <= k for t in c.to_best]) for k in x]
        right.plot(x, reached, linestyle=style, label=label, color=line.get_color())
    left.axhline(best, color="black", linewidth=0.8, linestyle=":")
    left.set_xscale("log")
    left.set_xlabel("distinct configurations evaluated")
    left.set_ylabel("best validation PR-AUC so far")
    left.set_title(f"Median and quartiles over {seeds} seeds")
    right.axvline(0.1 * size, color="grey", linewidth=0.8, linestyle=":")
    right.set_xlabel("distinct configurations evaluated")
    right.set_ylabel("share of seeds at the table's best")
    right.set_title("Reached the best by then (dotted: 10% of the grid)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
