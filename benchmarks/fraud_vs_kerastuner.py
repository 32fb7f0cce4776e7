"""The article's fraud search through real KerasTuner and through this project, side by side.

The same :class:`optuna_keras_hpo.fraud.FraudHyperModel` (the article's Bayesian-optimisation
space), data (default 10,000 rows x 25 features, synthetic), trial budget (default 15), initial
design size, epochs and seed run through ``keras_tuner.BayesianOptimization`` and then
through ``optuna_keras_hpo.keras_tuner.BayesianOptimization``, in one process, one after the
other (KerasTuner first, after one short warm-up training so that neither pays TensorFlow's
first-use costs). KerasTuner gets the same hypermodel through a thin ``keras_tuner.HyperModel``
adapter.

Measured per tuner:

* search wall time (``tuner.search``);
* time inside ``model.fit``: every real training call is timed by a wrapper around
  ``model.fit`` that the hypermodel installs (the call counts only if Keras started training, so
  this project's dry run of ``fit`` that records its hyperparameters is not counted); the
  tuners' own Keras callbacks (checkpointing the best epoch) run inside it;
* the tuner's own overhead: search wall time minus time in ``model.fit`` (proposing the next
  trial, building and compiling the model, saving it, bookkeeping);
* per-trial wall time: from the end of the previous trial (or the start of the search) to the
  end of this one (KerasTuner: ``on_trial_end``; this project: the Optuna trial's completion
  time), so it includes proposing the trial; and its part outside ``model.fit``;
* the best validation recall (the tuner's best trial) and the test metrics of its best model
  (:func:`optuna_keras_hpo.fraud.evaluate_test`).

By default both tuners train every trial for the same epochs and batch size (10 and 32, fixed
in the search space), so that a trial's time compares the tuners and not the training lengths
their searches happened to choose; ``--tune-fit`` lets each tuner choose them (epochs in the
``--epochs`` range, batch size 16/32/64), as the article's search does.

Ratios are ours / KerasTuner. Usage::

    python benchmarks/fraud_vs_kerastuner.py --quick                 # smoke run, ~2 minutes
    python benchmarks/fraud_vs_kerastuner.py --markdown results/fraud_vs_kerastuner.md
    python benchmarks/fraud_vs_kerastuner.py --tune-fit --epochs 5,20,5

Needs the ``dev`` extra (keras-tuner, and tensorboard, which KerasTuner imports in every trial on
TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import optuna  # noqa: E402

from optuna_keras_hpo import fraud  # noqa: E402

TUNERS = ("kerastuner", "ours")
LABELS = {"kerastuner": "KerasTuner", "ours": "optuna-keras-hpo"}
TEST_METRICS = ("recall", "precision", "accuracy", "auc", "pr_auc")


class TimedFraudHyperModel(fraud.FraudHyperModel):
    """The fraud hypermodel, timing each real ``model.fit`` call (start, end, epochs)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fits: list[dict[str, float]] = []

    def fit(self, hp, model=None, *args, **kwargs):
        model = self.build(hp) if model is None else model
        inner_fit = model.fit
        record = self.fits

        class Started(keras.callbacks.Callback):
            trained = False
            epochs = 0

            def on_train_begin(self, logs=None):
                Started.trained = True

            def on_epoch_end(self, epoch, logs=None):
                Started.epochs += 1

        def timed_fit(*fit_args, **fit_kwargs):
            fit_kwargs["callbacks"] = [Started(), *(fit_kwargs.get("callbacks") or [])]
            start = time.time()
            try:
                return inner_fit(*fit_args, **fit_kwargs)
            finally:
                end = time.time()
                if Started.trained:  # not a dry run that trains nothing
                    record.append({"start": start, "end": end, "epochs": Started.epochs})

        model.fit = timed_fit
        return super().fit(hp, model, *args, **kwargs)


def kerastuner_hypermodel(hypermodel: fraud.FraudHyperModel):
    """``hypermodel`` as a ``keras_tuner.HyperModel`` (KerasTuner accepts no other class)."""
    import keras_tuner

    class KerasTunerAdapter(keras_tuner.HyperModel):
        def build(self, hp):
            return hypermodel.build(hp)

        def fit(self, hp, model, *args, **kwargs):
            return hypermodel.fit(hp, model, *args, **kwargs)

    return KerasTunerAdapter(name="fraud")


@dataclass
class Run:
    """What one tuner did."""

    tuner: str
    trials: int = 0
    search_seconds: float = 0.0
    fit_seconds: float = 0.0
    trial_seconds: list[float] = field(default_factory=list)
    trial_fit_seconds: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    best_val_recall: float | None = None
    best_hyperparameters: dict = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_seconds(self) -> float:
        return self.search_seconds - self.fit_seconds

    @property
    def overhead_share(self) -> float:
        return self.overhead_seconds / self.search_seconds if self.search_seconds else 0.0

    @property
    def trial_overheads(self) -> list[float]:
        return [w - f for w, f in zip(self.trial_seconds, self.trial_fit_seconds, strict=False)]


def _per_trial(run: Run, start: float, ends: list[float], fits: list[dict]) -> None:
    """Per-trial wall time (end to end) and fit time, matched in order (one fit per trial)."""
    previous = start
    for end in ends:
        run.trial_seconds.append(end - previous)
        previous = end
    run.trial_fit_seconds = [f["end"] - f["start"] for f in fits]
    run.epochs = [int(f["epochs"]) for f in fits]
    run.fit_seconds = sum(run.trial_fit_seconds)


def warm_up(data, args) -> None:
    """Train one model briefly so that neither tuner pays TensorFlow's first-use costs."""
    from optuna_keras_hpo.hyperparameters import HyperParameters

    hypermodel = fraud.FraudHyperModel(data, epochs=(1, 1, 1), patience=args.patience)
    hp = HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, data.x_train[:512], data.y_train[:512],
                   validation_data=(data.x_val[:256], data.y_val[:256]), verbose=0)
    keras.backend.clear_session()


def fixed_fit(hp, fix_fit: tuple[int, int] | None):
    """``hp`` with epochs and batch size Fixed (``--fix-fit``), so that both tuners train the
    same number of epochs per trial (EarlyStopping aside) and trial times compare the tuners,
    not the training lengths their searches happened to choose; None when not fixed."""
    if fix_fit is None:
        return None
    hp.Fixed("epochs", fix_fit[0])
    hp.Fixed("batch_size", fix_fit[1])
    return hp


def run_kerastuner(data, args, directory: Path) -> Run:
    import keras_tuner

    hypermodel = TimedFraudHyperModel(data, epochs=args.epochs, patience=args.patience)
    ends: list[float] = []

    class TimedBayesianOptimization(keras_tuner.BayesianOptimization):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            ends.append(time.time())

    keras.utils.set_random_seed(args.seed)
    tuner = TimedBayesianOptimization(
        hypermodel=kerastuner_hypermodel(hypermodel),
        objective=keras_tuner.Objective("val_recall", direction="max"),
        max_trials=args.trials, num_initial_points=args.initial_points, seed=args.seed,
        directory=str(directory), project_name="kerastuner", overwrite=True,
        hyperparameters=fixed_fit(keras_tuner.HyperParameters(), args.fix_fit),
    )
    run = Run("kerastuner")
    start = time.time()
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 verbose=0)
    run.search_seconds = time.time() - start
    _per_trial(run, start, ends, hypermodel.fits)
    run.trials = len(ends)
    return _with_best(run, tuner, data)


def _with_best(run: Run, tuner, data) -> Run:
    """``run`` with the tuner's best trial: validation recall, hyperparameters, test metrics."""
    best = tuner.oracle.get_best_trials(1)
    if best:
        run.best_val_recall = float(best[0].score)
        run.best_hyperparameters = dict(best[0].hyperparameters.values)
        run.test = fraud.evaluate_test(tuner.get_best_models(1)[0], data)
    return run


def run_ours(data, args, directory: Path) -> Run:
    import optuna_keras_hpo.keras_tuner as kt

    hypermodel = TimedFraudHyperModel(data, epochs=args.epochs, patience=args.patience)
    keras.utils.set_random_seed(args.seed)
    tuner = kt.BayesianOptimization(
        hypermodel=hypermodel,
        objective=kt.Objective("val_recall", direction="max"),
        max_trials=args.trials, num_initial_points=args.initial_points, seed=args.seed,
        directory=str(directory), project_name="ours", overwrite=True,
        hyperparameters=fixed_fit(kt.HyperParameters(), args.fix_fit),
    )
    run = Run("ours")
    start = time.time()
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                 verbose=0)
    run.search_seconds = time.time() - start
    finished = sorted((t for t in tuner.study.trials if t.datetime_complete is not None),
                      key=lambda t: t.datetime_complete)
    _per_trial(run, start, [t.datetime_complete.timestamp() for t in finished],
               hypermodel.fits)
    run.trials = len(finished)
    return _with_best(run, tuner, data)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _ratio(ours, theirs) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "-"
    return f"{ours / theirs:.2f}"


def summary_rows(runs: dict[str, Run]) -> list[list[str]]:
    kt_run, ours = runs["kerastuner"], runs["ours"]
    rows = []

    def add(name, get, digits=3, ratio=True):
        a, b = get(kt_run), get(ours)
        rows.append([name, _fmt(a, digits), _fmt(b, digits), _ratio(b, a) if ratio else ""])

    add("trials finished", lambda r: r.trials, ratio=False)
    add("epochs trained (all trials)", lambda r: sum(r.epochs))
    add("search wall time (s)", lambda r: r.search_seconds)
    add("time inside model.fit (s)", lambda r: r.fit_seconds)
    add("tuner overhead outside model.fit (s)", lambda r: r.overhead_seconds)
    add("overhead share of search wall time", lambda r: r.overhead_share)
    add("median trial wall time (s)", lambda r: _median(r.trial_seconds))
    add("median trial model.fit time (s)", lambda r: _median(r.trial_fit_seconds))
    add("median trial overhead outside model.fit (s)", lambda r: _median(r.trial_overheads))
    add("max trial overhead outside model.fit (s)",
        lambda r: max(r.trial_overheads) if r.trial_overheads else None)
    add("best val_recall", lambda r: r.best_val_recall, 4)
    for metric in TEST_METRICS:
        add(f"test {metric} (best model)", lambda r, m=metric: r.test.get(m), 4)
    return rows


def checks(runs: dict[str, Run]) -> list[str]:
    """The three checks: overhead at most a tenth of KerasTuner's, under 10% of the search's wall
    time, and a faster median trial."""
    kt_run, ours = runs["kerastuner"], runs["ours"]
    lines = []
    tenth = ours.overhead_seconds <= kt_run.overhead_seconds / 10
    lines.append(f"overhead at most a tenth of KerasTuner's: {'yes' if tenth else 'NO'} "
                 f"({ours.overhead_seconds:.1f} s vs {kt_run.overhead_seconds:.1f} s)")
    share = ours.overhead_share < 0.10
    lines.append(f"overhead under 10% of the search's wall time: {'yes' if share else 'NO'} "
                 f"({ours.overhead_share:.1%})")
    a, b = _median(kt_run.trial_seconds), _median(ours.trial_seconds)
    faster = a is not None and b is not None and b < a
    lines.append(f"median whole trial faster: {'yes' if faster else 'NO'} "
                 f"({_fmt(b)} s vs {_fmt(a)} s)")
    return lines


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def environment() -> str:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in (
        "keras-tuner", "optuna", "keras", "tensorflow-cpu", "torch", "botorch"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average at the "
            f"end {load:.2f}; {versions}")


def report(runs: dict[str, Run], args, data, command: str) -> str:
    epochs = args.epochs
    parts = [
        f"Command: `{command}`",
        "",
        f"Data: {data.describe()['source']}; {len(data.y_train)} training / {len(data.y_val)} "
        f"validation / {len(data.y_test)} test rows. Budget: {args.trials} trials, "
        f"{args.initial_points} initial points, "
        + (f"epochs and batch size fixed at {args.fix_fit[0]} and {args.fix_fit[1]}"
           if args.fix_fit else f"epochs Int {epochs[0]}..{epochs[1]} step {epochs[2]}")
        + f", EarlyStopping patience {args.patience}, seed {args.seed}; objective "
        "val_recall (max). Ratio = optuna-keras-hpo / KerasTuner.",
        "",
        _table(["", LABELS["kerastuner"], LABELS["ours"], "ratio"], summary_rows(runs)),
        "",
        *[f"- {line}" for line in checks(runs)],
        "",
        "Per trial (wall time end to end; time in model.fit; epochs):",
        "",
    ]
    kt_run, ours = runs["kerastuner"], runs["ours"]
    rows = []
    for i in range(max(len(kt_run.trial_seconds), len(ours.trial_seconds))):
        cells = [str(i)]
        for run in (kt_run, ours):
            wall = run.trial_seconds[i] if i < len(run.trial_seconds) else None
            fit = run.trial_fit_seconds[i] if i < len(run.trial_fit_seconds) else None
            ep = run.epochs[i] if i < len(run.epochs) else None
            cells += [_fmt(wall), _fmt(fit), _fmt(ep)]
        rows.append(cells)
    parts.append(_table(["trial", "KT wall (s)", "KT fit (s)", "KT epochs", "ours wall (s)",
                         "ours fit (s)", "ours epochs"], rows))
    parts += ["", f"Best hyperparameters: KerasTuner {kt_run.best_hyperparameters}; "
                  f"optuna-keras-hpo {ours.best_hyperparameters}.", "", environment()]
    return "\n".join(parts) + "\n"


def parse_epochs(text: str) -> tuple[int, int, int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) == 1:
        values = [values[0], values[0], 1]
    if len(values) != 3 or not 1 <= values[0] <= values[1] or values[2] < 1:
        raise argparse.ArgumentTypeError(
            f"--epochs {text!r}; expected MIN,MAX,STEP (e.g. 5,20,5) or one number")
    return values[0], values[1], values[2]


def parse_fix_fit(text: str) -> tuple[int, int]:
    try:
        epochs, batch = (int(v) for v in text.split(","))
    except ValueError:
        epochs = batch = 0
    if epochs < 1 or batch < 1:
        raise argparse.ArgumentTypeError(
            f"--fix-fit {text!r}; expected EPOCHS,BATCH_SIZE (e.g. 10,32)")
    return epochs, batch


def main(argv: list[str] | None = None) -> dict[str, Run]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="trials per tuner (15)")
    parser.add_argument("--rows", type=int, default=None, help="synthetic rows (10000)")
    parser.add_argument("--epochs", type=parse_epochs, default=None,
                        help="the epochs hyperparameter as MIN,MAX,STEP (5,20,5)")
    parser.add_argument("--initial-points", type=int, default=None,
                        help="random trials before the GP, both tuners (5)")
    parser.add_argument("--patience", type=int, default=10, help="EarlyStopping patience")
    fit_choice = parser.add_mutually_exclusive_group()
    fit_choice.add_argument("--fix-fit", type=parse_fix_fit, default=None, metavar="EPOCHS,BATCH",
                            help="epochs and batch size, the same for both tuners (default "
                                 "10,32; --quick 2,32), so that both train the same epochs and "
                                 "per-trial times compare the tuners")
    fit_choice.add_argument("--tune-fit", action="store_true",
                            help="let each tuner choose epochs (--epochs range) and batch size, "
                                 "as the article's search does")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2000 rows, 4 trials, 1-2 epochs, 2 initial points")
    parser.add_argument("--directory", default=None,
                        help="where the tuners write (default: a temporary directory)")
    parser.add_argument("--markdown", default=None, help="write the report here (Markdown)")
    parser.add_argument("--json", default=None, help="write every measurement here")
    args = parser.parse_args(argv)
    quick = args.quick
    args.trials = args.trials or (4 if quick else 15)
    args.rows = args.rows or (2000 if quick else 10_000)
    args.epochs = args.epochs or ((1, 2, 1) if quick else (5, 20, 5))
    args.initial_points = args.initial_points or (2 if quick else 5)
    if args.tune_fit:
        args.fix_fit = None
    elif args.fix_fit is None:
        args.fix_fit = (2, 32) if quick else (10, 32)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    data = fraud.load_data(n_rows=args.rows, seed=args.seed)
    command = "python benchmarks/fraud_vs_kerastuner.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    warm_up(data, args)
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="fraud_vs_kerastuner_") as tmp:
        directory = Path(args.directory or tmp)
        for name, runner in (("kerastuner", run_kerastuner), ("ours", run_ours)):
            print(f"[{name}] {args.trials} trials ...", file=sys.stderr, flush=True)
            runs[name] = runner(data, args, directory)
            print(f"[{name}] done in {runs[name].search_seconds:.0f} s", file=sys.stderr,
                  flush=True)
    text = report(runs, args, data, command)
    print(text)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {"settings": {k: v for k, v in vars(args).items()},
             "data": data.describe(),
             "runs": {k: asdict(v) | {"overhead_seconds": v.overhead_seconds}
                      for k, v in runs.items()}}, indent=2, default=str))
    return runs


if __name__ == "__main__":
    main()
