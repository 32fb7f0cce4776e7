"""Reproduces docs/images/dashboard.png (and dashboard-history.png): optuna-dashboard, started by
``optuna-keras-hpo dashboard``, on a real study made by the tuner, photographed by a real headless
browser.

1. The article's fraud hypermodel (examples/fraud_bayesian_optimization.py) is tuned by
   ``kt.BayesianOptimization`` into a SQLite study under ``--directory`` (default
   results/dashboard_demo): each trial has its parameters, every final Keras metric as a user
   attribute, the learning curve (val_recall per epoch) as intermediate values and the trained
   model as an artifact.
2. ``optuna-keras-hpo dashboard --storage sqlite:///.../study.db --port P`` serves it on loopback
   (the artifact directory beside study.db is found by itself).
3. Headless Chromium, driven by Playwright, opens the best trial's page and the study's history
   page and saves the screenshots.

Needs what the project does not: a Chromium and Playwright's Python package (on Debian:
``apt-get install chromium``; ``pip install playwright``; no browser download, the system's
Chromium is used through ``--chromium``). Takes a few minutes on two cores.

Run: ``.venv/bin/python docs/make_dashboard_screenshot.py``
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]


def make_study(directory: Path, max_trials: int, seed: int) -> str:
    """Tune the article's hypermodel; returns the study's storage URL."""
    sys.path.insert(0, str(ROOT / "examples"))
    import keras
    import numpy as np
    from fraud_bayesian_optimization import FraudHyperModel, make_data
    from sklearn.utils import class_weight

    import optuna_keras_hpo.keras_tuner as kt

    keras.utils.set_random_seed(seed)
    x_train, y_train, x_val, y_val, _, _ = make_data(3000, seed)
    initial_bias = float(np.log(np.sum(y_train == 1) / np.sum(y_train == 0)))
    classes = np.unique(y_train)
    weights = class_weight.compute_class_weight("balanced", classes=classes, y=y_train)
    tuner = kt.BayesianOptimization(
        hypermodel=FraudHyperModel(x_train.shape[1], initial_bias,
                                   dict(zip(classes.tolist(), weights, strict=True)),
                                   epochs=(10, 30, 10)),
        objective=kt.Objective("val_recall", direction="max"),
        max_trials=max_trials, num_initial_points=4, seed=seed,
        directory=directory, project_name="fraud", overwrite=True,
    )
    tuner.search(x_train, y_train, validation_data=(x_val, y_val), verbose=0,
                 callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=10)])
    return f"sqlite:///{(directory / 'fraud' / 'study.db').resolve()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot(storage: str, out: Path, chromium: str) -> None:
    import optuna
    from playwright.sync_api import sync_playwright

    study = optuna.load_study(study_name="fraud", storage=storage)
    best = study.best_trial.number
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "optuna_keras_hpo", "dashboard", "--storage", storage,
         "--port", str(port)], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/api/meta", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True)
            page = browser.new_page(viewport={"width": 1600, "height": 1560})
            page.goto(f"{base}/dashboard/studies/1/trials?numbers={best}")
            page.get_by_text("Intermediate Values").first.wait_for(timeout=30000)
            # Show every user attribute: the dashboard's boxes scroll past a fixed height.
            page.add_style_tag(content="div { max-height: none !important; }")
            page.wait_for_timeout(2000)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
            page.goto(f"{base}/dashboard/studies/1")
            page.locator(".js-plotly-plot").first.wait_for(timeout=30000)
            page.wait_for_timeout(3000)  # the plots draw after the data arrives
            page.screenshot(path=str(out.with_name("dashboard-history.png")), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=Path, default=ROOT / "results" / "dashboard_demo")
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "dashboard.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--reuse", action="store_true",
                        help="photograph the existing study instead of tuning again")
    args = parser.parse_args()
    if args.reuse:
        storage = f"sqlite:///{(args.directory / 'fraud' / 'study.db').resolve()}"
    else:
        storage = make_study(args.directory, args.max_trials, args.seed)
    screenshot(storage, args.out, args.chromium)
    print(f"wrote {args.out} and {args.out.with_name('dashboard-history.png')}")


if __name__ == "__main__":
    main()
