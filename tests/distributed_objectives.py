"""Objectives run by worker processes in tests/test_distributed.py (``--objective
tests/distributed_objectives.py:sleepy``): they sleep instead of training, so the tests measure
coordination, and write a marker file while a trial runs, so a test knows when to kill a worker.

Environment: ``OKH_MARKERS`` (directory for the markers), ``OKH_SLEEP`` (seconds per trial).
"""

import os
import time
from pathlib import Path

SEARCH_SPACE = {"x": [0, 1, 2, 3], "y": ["a", "b"]}  # the grid of --sampler grid: 8 points


def sleepy(trial):
    x = trial.suggest_int("x", 0, 3)
    y = trial.suggest_categorical("y", ["a", "b"])
    markers = os.environ.get("OKH_MARKERS")
    if markers:
        Path(markers, f"{os.getpid()}-{trial.number}.running").touch()
    time.sleep(float(os.environ.get("OKH_SLEEP", "0.5")))
    trial.report(float(x), step=0)
    return x + (y == "b") * 0.5


def broken(trial):
    trial.suggest_int("x", 0, 3)
    raise RuntimeError("this objective is broken on purpose")
