"""The GP sampler's hand-written pieces against the BoTorch / Optuna functions they stand in for.

``optuna_keras_hpo.samplers._gp`` writes some pieces itself that BoTorch or Optuna provide. This
script runs each piece and its library counterpart side by side, on the same inputs, and reports
time (ours / library) and a quality or agreement measure:

1. MAP fit: ``model.fit_model`` (closed-form gradient, SciPy L-BFGS-B) against BoTorch's
   ``fit_gpytorch_mll(ExactMarginalLogLikelihood(...))`` on the same ``model.make_model`` (same
   kernel and priors), from the defaults and from the sampler's warm start. Quality: the negative
   log posterior each reaches, evaluated by the same ``model._MapObjective`` (lower is better).
2. Posterior: ``model.CachedGP`` (values on 2048 candidates; closed-form gradients on 20)
   against the fitted ``SingleTaskGP.posterior`` in eval mode (gradients by autograd).
3. log EI: ``acquisition.LogEI`` on ``CachedGP`` against BoTorch's ``LogExpectedImprovement``
   on the fitted ``SingleTaskGP`` (autograd), and the scalar ``acquisition.log_ei`` against
   BoTorch's ``_log_ei_helper``.
4. Acquisition search: ``optimize.optimize_acquisition`` against BoTorch's ``optimize_acqf``
   (continuous space) or ``optimize_acqf_mixed_alternating`` (mixed space), on the same
   acquisition object; on the continuous space also with ours' two warm starts (the best
   observed points) added to BoTorch's starts; and BoTorch's optimiser on BoTorch's own
   acquisition (the whole library stack). Quality: the best acquisition value each finds,
   scored by ours (higher is better).
5. Batched L-BFGS-B: Optuna's ``batched_lbfgsb`` (as ``optimize._continuous_step`` calls it)
   against one ``scipy.optimize.minimize(method="L-BFGS-B")`` per start, same starts.

Inputs are GP states of real runs: the project's ``GaussianProcessSampler`` (defaults, seed s)
on Hartmann6 for 50 trials (states after 20 and 50 trials) and on the ``mixed`` problem of
``benchmarks/samplers.py`` for 30 trials; the encoded data are built as
``propose._propose`` builds them (``EncodedSpace``, ``training_data``, ``fit_surrogate``). Times are
medians over repeats within a state, then median [first quartile, third quartile] over seeds;
ratios are per seed, then summarised the same way. Times are this process's CPU time by
default (``--clock wall`` for wall time), ours' and the library's calls alternating. One thread:
``torch.set_num_threads(1)`` as the sampler runs, and one BLAS thread for NumPy and SciPy
(``OPENBLAS_NUM_THREADS`` etc., unless set). A second table adds up one proposal's GP work
(fits, posterior setup, acquisition search) for ours and for the library.

Usage::

    python benchmarks/gp_pieces.py                                   # 5 seeds, every piece
    python benchmarks/gp_pieces.py --seeds 5 --markdown results/gp_pieces.md
    python benchmarks/gp_pieces.py --seeds 2 --pieces fit,search --states /tmp/states.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One thread for the numerical libraries (read when NumPy and SciPy load their OpenBLAS), for the
# library side too: the sampler limits its own proposals to one torch and one BLAS thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import optuna
import scipy.optimize
import scipy.stats
import torch
from botorch.acquisition.analytic import LogExpectedImprovement, _log_ei_helper
from botorch.fit import fit_gpytorch_mll
from botorch.optim import optimize_acqf, optimize_acqf_mixed_alternating
from botorch.optim.initializers import gen_batch_initial_conditions
from gpytorch.mlls import ExactMarginalLogLikelihood
from optuna._gp.batched_lbfgsb import batched_lbfgsb

from optuna_keras_hpo.samplers import GaussianProcessSampler
from optuna_keras_hpo.samplers._gp import model as gp_model
from optuna_keras_hpo.samplers._gp.acquisition import LogEI, log_ei
from optuna_keras_hpo.samplers._gp.model import (
    MINIMUM_NOISE,
    CachedGP,
    MixedMatern52Kernel,
    fit_model,
    make_model,
    model_state,
)
from optuna_keras_hpo.samplers._gp.optimize import (
    _choose_starts,
    evaluate,
    optimize_acquisition,
)
from optuna_keras_hpo.samplers._gp.propose import (
    N_WARM_STARTS,
    _identity,
    fit_surrogate,
    training_data,
    yeo_johnson,
)
from optuna_keras_hpo.samplers._gp.space import EncodedSpace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from samplers import PROBLEMS, quiet_optuna, render_markdown, render_text, write  # noqa: E402

# (problem, number of trials) of the GP states; each problem is run once per seed for its
# largest number of trials and the states are the first n trials of that run.
STATES = (("hartmann6", 20), ("hartmann6", 50), ("mixed", 30))
N_CANDIDATES = 2048  # posterior and acquisition values: as the optimiser's raw candidates
N_GRADIENT = 20  # posterior with gradients
N_ACQ_GRADIENT = 12  # acquisition with gradients: the optimiser's 10 starts + 2 warm starts
N_RESTARTS = 10  # BoTorch's searches: as the sampler's n_local_searches
MAX_LISTED_VALUES = 1000  # discrete columns given to BoTorch as a full value list up to this
PIECES = ("fit", "posterior", "logei", "search", "lbfgsb")
# Repeats per state, for the times (the results are the same in every repeat).
REPEATS = {"fit_ours": 5, "fit_lib": 3, "fast": 30, "search_ours": 5, "search_lib": 3,
           "lbfgsb": 3}
FIT_WARM = "MAP fit from warm start"
SETUP = "posterior setup (CachedGP / GPyTorch caches + 1 point)"
SEARCH_SAME = "acquisition search vs BoTorch optimiser on ours' acquisition (LogEI on CachedGP)"
SEARCH_WARM = ("acquisition search vs BoTorch optimize_acqf on ours' acquisition, its starts + "
               "ours' 2 warm starts")
SEARCH_FULL = ("acquisition search vs BoTorch optimiser and acquisition "
               "(LogExpectedImprovement on SingleTaskGP)")


# --------------------------------------------------------------------------------------------
# GP states from real runs
# --------------------------------------------------------------------------------------------


@dataclass
class State:
    """The data of one proposal: ``n`` completed trials of ``problem`` with ``seed``."""

    problem: str
    n: int
    seed: int
    X: np.ndarray  # encoded configurations (n, d)
    y: np.ndarray  # values to maximise (the objective negated)
    warm_start: np.ndarray | None  # the sampler's warm start for this fit (its fit of n - 1)

    @property
    def label(self) -> str:
        return f"{self.problem} n={self.n}"


def run_states(seeds: int) -> list[State]:
    """Run the sampler on each problem for each seed and keep the states of :data:`STATES`."""
    states = []
    for problem_name in dict.fromkeys(name for name, _ in STATES):
        problem = PROBLEMS[problem_name]
        sizes = [n for name, n in STATES if name == problem_name]
        space = EncodedSpace(problem.distributions)
        for seed in range(seeds):
            start = time.perf_counter()
            sampler = GaussianProcessSampler(seed=seed)
            study = optuna.create_study(sampler=sampler, direction="minimize")
            warm: list[np.ndarray | None] = []
            for _ in range(max(sizes)):
                trial = study.ask(problem.distributions)
                # After the ask with i completed trials: the state of the fit of i trials.
                warm.append(None if sampler._warm_start is None else sampler._warm_start.copy())
                study.tell(trial, problem.function(trial.params))
            trials = study.get_trials(deepcopy=False)
            for n in sizes:
                X, y = training_data(trials[:n], space, -1.0)
                states.append(State(problem_name, n, seed, X, y, warm[n - 1]))
            print(f"state run: {problem_name} seed={seed} {max(sizes)} trials "
                  f"in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    order = {spec: i for i, spec in enumerate(STATES)}
    return sorted(states, key=lambda s: (order[(s.problem, s.n)], s.seed))


def load_or_run_states(path: str | None, seeds: int) -> list[State]:
    """The states saved at ``path`` if it holds every seed asked for, else fresh ones (saved
    there when a path is given)."""
    if path and Path(path).exists():
        saved = json.loads(Path(path).read_text())
        states = [
            State(s["problem"], s["n"], s["seed"], np.array(s["X"]), np.array(s["y"]),
                  None if s["warm_start"] is None else np.array(s["warm_start"]))
            for s in saved if s["seed"] < seeds
        ]
        if len({s.seed for s in states}) == seeds:
            return states
    states = run_states(seeds)
    if path:
        write(path, json.dumps([
            {"problem": s.problem, "n": s.n, "seed": s.seed, "X": s.X.tolist(),
             "y": s.y.tolist(),
             "warm_start": None if s.warm_start is None else s.warm_start.tolist()}
            for s in states
        ]))
    return states


@dataclass
class Prepared:
    """What ``propose._propose`` has in hand after its fit, for one state."""

    state: State
    space: EncodedSpace
    X: torch.Tensor
    Y: torch.Tensor  # (n, 1): the values the GP models (y or their Yeo-Johnson transform)
    fitted: Any  # the SingleTaskGP of fit_surrogate
    model: CachedGP
    best_f: float


def prepare(state: State) -> Prepared:
    space = EncodedSpace(PROBLEMS[state.problem].distributions)
    fitted, to_model = fit_surrogate(state.X, state.y, space.is_categorical, state.warm_start,
                                     False)
    values = state.y if to_model is _identity else yeo_johnson(state.y).values
    return Prepared(state, space, torch.from_numpy(state.X), torch.from_numpy(values[:, None]),
                    fitted, CachedGP(fitted), float(values.max()))


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One row of the table: a piece on one kind of state, over seeds."""

    number: int
    piece: str
    state: str
    quality: str = ""  # what the ours / library quality numbers are
    ours_ms: list[float] = field(default_factory=list)
    lib_ms: list[float] = field(default_factory=list)
    ours_q: list[float] = field(default_factory=list)
    lib_q: list[float] = field(default_factory=list)
    diffs: dict[str, list[float]] = field(default_factory=dict)  # agreement measures


class Results:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.problems: dict[str, int] = {}  # message -> count
        self.notes: dict[str, list[float]] = {}  # name -> per-state numbers

    def row(self, number: int, piece: str, state: str, quality: str = "") -> Row:
        key = (piece, state)
        if key not in self.rows:
            self.rows[key] = Row(number, piece, state, quality)
        return self.rows[key]

    def problem(self, message: str) -> None:
        self.problems[message] = self.problems.get(message, 0) + 1

    def note(self, name: str, value: float | tuple[float, ...]) -> None:
        self.notes.setdefault(name, []).append(value)

    def note_once(self, name: str, value: float) -> None:
        self.notes[name] = [value]


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]  # set by --clock


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median milliseconds of ``repeats`` calls, and the last call's result."""
    times = []
    result = None
    for _ in range(repeats):
        start = clock()
        result = fn()
        times.append(clock() - start)
    return 1000 * statistics.median(times), result


def timed_pair(ours: Callable[[], Any], library: Callable[[], Any], repeats_ours: int,
               repeats_library: int) -> tuple[float, Any, float, Any]:
    """:func:`timed` for both, their calls alternating (so a change in the machine's load
    affects both alike): ours' milliseconds and result, then the library's."""
    times: tuple[list[float], list[float]] = ([], [])
    results: list[Any] = [None, None]
    for i in range(max(repeats_ours, repeats_library)):
        for j, (fn, repeats) in enumerate(((ours, repeats_ours), (library, repeats_library))):
            if i < repeats:
                start = clock()
                results[j] = fn()
                times[j].append(clock() - start)
    return (1000 * statistics.median(times[0]), results[0],
            1000 * statistics.median(times[1]), results[1])


def library_call(results: Results, where: str, fn: Callable[[], Any]) -> Any:
    """``fn()``, with its warnings and any exception recorded as problems (None on failure)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = fn()
        except Exception as error:  # a library function failing on these inputs: report it
            last = traceback.extract_tb(error.__traceback__)[-1]
            results.problem(f"{where}: {type(error).__name__}: {error} "
                            f"(at {Path(last.filename).name}:{last.lineno})")
            value = None
    for w in caught:
        text = " ".join(str(w.message).split())
        if len(text) > 300:
            text = f"{text[:170]} ... {text[-120:]}"
        results.problem(f"{where}: warning {w.category.__name__}: {text}")
    return value


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))


def relative(a, b) -> float:
    """``max |a - b| / max |a|``."""
    scale = float(np.max(np.abs(np.asarray(a, dtype=float))))
    return max_abs(a, b) / scale if scale > 0 else max_abs(a, b)


# -- 1. MAP fit --------------------------------------------------------------------------------


class _TrainableAdditive(MixedMatern52Kernel):
    """The project's kernel with the additive part's weight ``w`` a trainable parameter
    (``raw_log_additive``, ``w = exp(raw)``; the project keeps it in a buffer that its own fit
    loads, so GPyTorch's optimiser would not move it)."""

    @property
    def additive(self) -> torch.Tensor:
        return self.raw_log_additive.exp()


def library_model(X: torch.Tensor, Y: torch.Tensor, is_categorical: np.ndarray,
                  theta: np.ndarray | None = None):
    """``make_model``'s GP with every MAP parameter trainable by GPyTorch: the constant mean
    (the project fixes it and profiles it out) and, with a mixed space, the additive weight;
    started at the defaults or at ``theta`` (then the mean at the least-squares value there,
    as the warm-started fit of the project would use)."""
    model = make_model(X, Y, is_categorical, deterministic=False)
    model.mean_module.constant.requires_grad_(True)
    kernel = model.covar_module.base_kernel
    if kernel.additive is not None:
        weight = kernel._buffers.pop("additive")
        kernel.__class__ = _TrainableAdditive
        kernel.register_parameter("raw_log_additive", torch.nn.Parameter(weight.log()))
    if theta is not None:
        n_dims = len(is_categorical)
        kernel.lengthscale = torch.from_numpy(np.exp(-0.5 * theta[:n_dims]))
        model.covar_module.outputscale = float(np.exp(theta[n_dims]))
        model.likelihood.noise = float(np.exp(theta[n_dims + 1]) + MINIMUM_NOISE)
        if kernel.additive is not None:
            kernel.raw_log_additive.data.fill_(float(theta[n_dims + 2]))
        objective = gp_model._MapObjective(model, deterministic=False)
        objective(theta)
        model.mean_module.constant.data.fill_(objective.last_mean)
    return model


def fit_library(X, Y, is_categorical, theta=None):
    model = library_model(X, Y, is_categorical, theta)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


def negative_log_posterior(model) -> float:
    """The project's MAP objective at a fitted model's hyperparameters (the constant mean at
    its least-squares value there)."""
    return float(gp_model._MapObjective(model, deterministic=False)(model_state(model))[0])


def bench_fit(results: Results, p: Prepared) -> None:
    label, is_cat = p.state.label, p.space.is_categorical
    starts = [("defaults", None)]
    if p.state.warm_start is not None:
        starts.append(("warm start", p.state.warm_start))
    for name, theta in starts:
        row = results.row(1, f"MAP fit from {name}", label,
                          "neg. log posterior (lower better)")
        ours_ms, ours, lib_ms, lib = timed_pair(
            lambda theta=theta: fit_model(p.X, p.Y, is_cat, theta),
            lambda theta=theta: library_call(results, "fit_gpytorch_mll",
                                             lambda: fit_library(p.X, p.Y, is_cat, theta)),
            REPEATS["fit_ours"], REPEATS["fit_lib"])
        ours_value = negative_log_posterior(ours)
        lib_value = negative_log_posterior(lib) if lib is not None else math.nan
        row.ours_ms.append(ours_ms)
        row.lib_ms.append(lib_ms)
        row.ours_q.append(ours_value)
        row.lib_q.append(lib_value)
        row.diffs.setdefault("library - ours", []).append(lib_value - ours_value)
        if lib is not None:
            # BoTorch's own mean against the least-squares mean at its hyperparameters.
            objective = gp_model._MapObjective(lib, deterministic=False)
            objective(model_state(lib))
            gap = abs(float(lib.mean_module.constant.detach()) - objective.last_mean)
            results.note(f"|BoTorch mean - GLS mean| ({name})", gap)


# -- 2. Posterior ------------------------------------------------------------------------------


def bench_posterior(results: Results, p: Prepared, rng: np.random.RandomState) -> None:
    label, fitted, model = p.state.label, p.fitted, p.model
    reps = REPEATS["fast"]

    row = results.row(2, SETUP, label)

    def library_setup():
        fitted.prediction_strategy = None  # GPyTorch's prediction caches, rebuilt on the call
        with torch.no_grad():
            return fitted.posterior(p.X[:1].unsqueeze(-2)).mean

    ours_ms, _, lib_ms, _ = timed_pair(lambda: CachedGP(fitted), library_setup, reps, reps)
    row.ours_ms.append(ours_ms)
    row.lib_ms.append(lib_ms)

    candidates = torch.from_numpy(p.space.sample(N_CANDIDATES, rng)).unsqueeze(-2)
    row = results.row(2, f"posterior mean, variance x{N_CANDIDATES}", label)

    def values(m):
        with torch.no_grad():
            posterior = m.posterior(candidates)
            return posterior.mean.reshape(-1), posterior.variance.reshape(-1)

    ours_ms, (ours_mean, ours_var), lib_ms, (lib_mean, lib_var) = timed_pair(
        lambda: values(model), lambda: values(fitted), reps, reps)
    row.ours_ms.append(ours_ms)
    row.lib_ms.append(lib_ms)
    row.diffs.setdefault("max|d mean|", []).append(max_abs(ours_mean, lib_mean))
    row.diffs.setdefault("max|d var|", []).append(max_abs(ours_var, lib_var))

    x = torch.from_numpy(p.space.sample(N_GRADIENT, rng))
    row = results.row(2, f"posterior + gradients x{N_GRADIENT}", label)

    def library_gradients():
        xg = x.clone().requires_grad_(True)
        posterior = fitted.posterior(xg.unsqueeze(-2))
        mean, var = posterior.mean.reshape(-1), posterior.variance.reshape(-1)
        (d_mean,) = torch.autograd.grad(mean.sum(), xg, retain_graph=True)
        (d_var,) = torch.autograd.grad(var.sum(), xg)
        return mean.detach(), var.detach(), d_mean, d_var

    ours_ms, ours, lib_ms, lib = timed_pair(lambda: model.mean_variance_and_gradients(x),
                                            library_gradients, reps, reps)
    row.ours_ms.append(ours_ms)
    row.lib_ms.append(lib_ms)
    for name, a, b in zip(("max|d mean|", "max|d var|"), ours[:2], lib[:2], strict=True):
        row.diffs.setdefault(name, []).append(max_abs(a, b))
    for name, a, b in zip(("rel. grad mean", "rel. grad var"), ours[2:], lib[2:], strict=True):
        row.diffs.setdefault(name, []).append(relative(a, b))


# -- 3. log EI ---------------------------------------------------------------------------------


def bench_logei(results: Results, p: Prepared, rng: np.random.RandomState) -> None:
    label, reps = p.state.label, REPEATS["fast"]
    ours_acqf = LogEI(p.model, best_f=p.best_f)
    lib_acqf = LogExpectedImprovement(p.fitted, best_f=p.best_f)

    raw = p.space.sample(N_CANDIDATES, rng)
    row = results.row(3, f"log EI values x{N_CANDIDATES}", label)
    ours_ms, ours, lib_ms, lib = timed_pair(lambda: evaluate(ours_acqf, raw),
                                            lambda: evaluate(lib_acqf, raw), reps, reps)
    row.ours_ms.append(ours_ms)
    row.lib_ms.append(lib_ms)
    row.diffs.setdefault("max|d value|", []).append(max_abs(ours, lib))

    X = p.space.sample(N_ACQ_GRADIENT, rng)
    row = results.row(3, f"log EI value + gradient x{N_ACQ_GRADIENT}", label)
    ours_ms, ours, lib_ms, lib = timed_pair(lambda: evaluate(ours_acqf, X, grad=True),
                                            lambda: evaluate(lib_acqf, X, grad=True), reps,
                                            reps)
    row.ours_ms.append(ours_ms)
    row.lib_ms.append(lib_ms)
    row.diffs.setdefault("max|d value|", []).append(max_abs(ours[0], lib[0]))
    row.diffs.setdefault("rel. grad", []).append(relative(ours[1], lib[1]))


def bench_log_ei_function(results: Results) -> None:
    z = torch.linspace(-40.0, 5.0, 10000, dtype=torch.float64)
    reps = REPEATS["fast"]
    row = results.row(3, "log_ei(z) vs _log_ei_helper(z), 10000 z in [-40, 5]", "z grid")
    ours_ms, ours, lib_ms, lib = timed_pair(lambda: log_ei(z), lambda: _log_ei_helper(z),
                                            reps, reps)
    row.ours_ms.append(ours_ms)
    row.lib_ms.append(lib_ms)
    row.diffs.setdefault("max|d|", []).append(max_abs(ours, lib))
    results.note_once("log_ei: z of the largest |d|", float(z[(ours - lib).abs().argmax()]))
    row.diffs.setdefault("max rel.", []).append(
        float(((ours - lib).abs() / lib.abs().clamp_min(1e-300)).max()))

    def with_gradient(fn):
        zg = z.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(fn(zg).sum(), zg)
        return gradient

    row = results.row(3, "log_ei(z) + autograd gradient, same z", "z grid")
    ours_ms, ours, lib_ms, lib = timed_pair(lambda: with_gradient(log_ei),
                                            lambda: with_gradient(_log_ei_helper), reps, reps)
    row.ours_ms.append(ours_ms)
    row.lib_ms.append(lib_ms)
    row.diffs.setdefault("max|d grad|", []).append(max_abs(ours, lib))
    row.diffs.setdefault("non-finite grads ours", []).append(float((~torch.isfinite(ours)).sum()))
    row.diffs.setdefault("non-finite grads lib", []).append(float((~torch.isfinite(lib)).sum()))


# -- 4. Acquisition search ---------------------------------------------------------------------


class CallCounter:
    """Counts an acquisition's calls (a forward pre-hook) while :meth:`on`: with and without
    gradients, and the candidates in them."""

    def __init__(self) -> None:
        self.calls = self.rows = self.grad_calls = self.grad_rows = 0

    @contextlib.contextmanager
    def on(self, acqf):
        handle = acqf.register_forward_pre_hook(self._hook)
        try:
            yield
        finally:
            handle.remove()

    def _hook(self, module, args) -> None:
        X = args[0]
        rows = int(np.prod(X.shape[:-2])) if X.dim() > 2 else 1
        if torch.is_grad_enabled() and X.requires_grad:
            self.grad_calls += 1
            self.grad_rows += rows
        else:
            self.calls += 1
            self.rows += rows


def library_search_inputs(space: EncodedSpace):
    """Bounds, ``discrete_dims`` and ``cat_dims`` of the encoded space for BoTorch, and the
    discrete columns left to continuous relaxation because their lattice is too long to list."""
    low, high = np.zeros(space.dim), np.ones(space.dim)
    discrete, categorical, relaxed = {}, {}, []
    for i in (*space.discrete, *space.categorical):
        lattice = space.dims[i].lattice
        if lattice.size > MAX_LISTED_VALUES:
            relaxed.append(int(i))
            continue
        values = [float(v) for v in lattice.column(np.arange(lattice.size))]
        low[i], high[i] = values[0], values[-1]
        (categorical if space.is_categorical[i] else discrete)[int(i)] = values
    bounds = torch.from_numpy(np.stack([low, high]))
    return bounds, discrete, categorical, relaxed


def library_search(acqf, space: EncodedSpace, seed: int, extra_starts: np.ndarray | None = None):
    """BoTorch's search; on a continuous space, with ``extra_starts`` added to the starts it
    picks from its raw samples."""
    bounds, discrete, categorical, relaxed = library_search_inputs(space)
    torch.manual_seed(seed)
    if not discrete and not categorical and not relaxed:
        if extra_starts is None:
            candidate, _ = optimize_acqf(acqf, bounds=bounds, q=1, num_restarts=N_RESTARTS,
                                         raw_samples=N_CANDIDATES)
        else:
            starts = gen_batch_initial_conditions(acqf, bounds, q=1, num_restarts=N_RESTARTS,
                                                  raw_samples=N_CANDIDATES)
            starts = torch.cat([starts, torch.from_numpy(extra_starts).unsqueeze(-2)])
            candidate, _ = optimize_acqf(acqf, bounds=bounds, q=1, num_restarts=len(starts),
                                         batch_initial_conditions=starts)
    else:
        candidate, _ = optimize_acqf_mixed_alternating(
            acqf, bounds=bounds, discrete_dims=discrete, cat_dims=categorical,
            num_restarts=N_RESTARTS, raw_samples=N_CANDIDATES)
    return candidate.detach().reshape(1, -1).numpy()


def bench_search(results: Results, p: Prepared) -> None:
    label, space, seed = p.state.label, p.space, p.state.seed
    acqf = LogEI(p.model, best_f=p.best_f)
    lib_acqf = LogExpectedImprovement(p.fitted, best_f=p.best_f)
    lengthscales = np.clip(p.model.lengthscales(), 1e-3, 1.0)
    best_rows = p.state.X[np.argsort(-p.state.y)[:N_WARM_STARTS]]
    if library_search_inputs(space)[3]:
        results.problem(f"search {label}: a discrete column has more than "
                        f"{MAX_LISTED_VALUES} values, left to BoTorch's continuous relaxation")

    counters = {name: CallCounter() for name in ("ours", "same", "full")}

    def ours():
        with counters["ours"].on(acqf):
            return optimize_acquisition(
                acqf, space, np.random.RandomState(seed), warm_starts=best_rows,
                lengthscales=lengthscales, n_raw=N_CANDIDATES, n_starts=N_RESTARTS,
                log_scale=True)[0][:1]

    def library(function, counter, extra_starts=None):
        def search():
            with counter.on(function):
                return library_call(
                    results, f"BoTorch search ({p.state.problem}, {type(function).__name__})",
                    lambda: library_search(function, space, seed, extra_starts))
        return search

    # Ours, and BoTorch's optimiser on the same acquisition object: calls alternate.
    ours_ms, ours_x, lib_ms, lib_x = timed_pair(ours, library(acqf, counters["same"]),
                                                REPEATS["search_ours"], REPEATS["search_lib"])
    # BoTorch's optimiser on BoTorch's acquisition (the whole library stack).
    full_ms, full_x = timed(library(lib_acqf, counters["full"]), REPEATS["search_lib"])
    compared = [(SEARCH_SAME, lib_ms, lib_x), (SEARCH_FULL, full_ms, full_x)]
    if len(space.continuous) == space.dim:  # BoTorch's mixed optimiser takes no given starts
        warm_ms, warm_x = timed(library(acqf, CallCounter(), best_rows), REPEATS["search_lib"])
        compared.insert(1, (SEARCH_WARM, warm_ms, warm_x))

    ours_value = float(evaluate(acqf, ours_x)[0])
    for name, ms, x in compared:
        row = results.row(4, name, label, "best log EI found (higher better)")
        lib_value = float(evaluate(acqf, x)[0]) if x is not None else math.nan
        row.ours_ms.append(ours_ms)
        row.lib_ms.append(ms)
        row.ours_q.append(ours_value)
        row.lib_q.append(lib_value)
        row.diffs.setdefault("library - ours", []).append(lib_value - ours_value)
        if x is not None and not np.allclose(space.snap(x), x, atol=1e-9, rtol=0):
            results.problem(f"BoTorch search {label}: candidate off the lattice")
    for who, key, per in (("ours", "ours", REPEATS["search_ours"]),
                          ("BoTorch on ours' acqf", "same", REPEATS["search_lib"]),
                          ("BoTorch on BoTorch's acqf", "full", REPEATS["search_lib"])):
        counter = counters[key]
        results.note(f"{label}: acquisition calls with gradient / candidates in them "
                     f"/ candidates valued without gradient, per search, {who}",
                     (counter.grad_calls / per, counter.grad_rows / per, counter.rows / per))


# -- 5. Batched L-BFGS-B -----------------------------------------------------------------------


def bench_lbfgsb(results: Results, p: Prepared) -> None:
    """``_continuous_step``'s L-BFGS-B from the first round's starts of ``optimize_acquisition``
    (same raw candidates, roulette and warm starts)."""
    label, space = p.state.label, p.space
    acqf = LogEI(p.model, best_f=p.best_f)
    rng = np.random.RandomState(p.state.seed)
    raw = space.sample(N_CANDIDATES, rng)
    starts = _choose_starts(raw, evaluate(acqf, raw), N_RESTARTS, rng, True)
    best_rows = p.state.X[np.argsort(-p.state.y)[:N_WARM_STARTS]]
    X = space.snap(np.vstack([starts, best_rows]))
    cont = space.continuous
    s = np.clip(p.model.lengthscales(), 1e-3, 1.0)[cont]
    bounds = [(0.0, 1.0 / si) for si in s]
    calls = [0]

    def negative(z_batch, rows):
        calls[0] += 1
        Xz = np.array(rows)
        Xz[:, cont] = z_batch * s
        values, gradients = evaluate(acqf, Xz, grad=True)
        return -values, -gradients[:, cont] * s

    def finish(z):
        X_new = X.copy()
        X_new[:, cont] = np.clip(z * s, 0.0, 1.0)
        return evaluate(acqf, X_new)

    def batched():
        calls[0] = 0
        z, _, _ = batched_lbfgsb(func_and_grad=negative, x0_batched=X[:, cont] / s,
                                 batched_args=(list(X),), bounds=bounds, pgtol=1e-2,
                                 max_iters=200)
        return z, calls[0]

    # batched_lbfgsb's fmin_l_bfgs_b settings, through scipy.optimize.minimize.
    options = {"maxcor": 10, "ftol": 1e7 * np.finfo(float).eps, "gtol": 1e-2,
               "maxfun": 15000, "maxiter": 200, "maxls": 20}

    def looped():
        calls[0] = 0
        z = np.empty((len(X), len(cont)))
        for i, row in enumerate(X):
            result = scipy.optimize.minimize(
                lambda zi, row=row: tuple(a[0] for a in negative(zi[None], [row])),
                X[i, cont] / s, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
            z[i] = result.x
        return z, calls[0]

    row = results.row(5, f"L-BFGS-B, {len(X)} starts: batched_lbfgsb vs scipy loop", label,
                      "best log EI (higher better)")
    ours_ms, (z_ours, ours_calls), lib_ms, (z_lib, lib_calls) = timed_pair(
        batched, looped, REPEATS["lbfgsb"], REPEATS["lbfgsb"])
    f_ours, f_lib = finish(z_ours), finish(z_lib)
    row.ours_ms.append(ours_ms)
    row.lib_ms.append(lib_ms)
    row.ours_q.append(float(f_ours.max()))
    row.lib_q.append(float(f_lib.max()))
    row.diffs.setdefault("library - ours", []).append(float(f_lib.max() - f_ours.max()))
    row.diffs.setdefault("max|d value| per start", []).append(max_abs(f_ours, f_lib))
    results.note(f"{label}: acquisition calls (with gradient) of the L-BFGS-B step, "
                 "batched_lbfgsb / scipy loop", (ours_calls, lib_calls))


# --------------------------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------------------------


def g(x: float) -> str:
    """Three significant digits (scientific when small or large)."""
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return f"{x:.3g}"


def spread(values: Sequence[float]) -> str:
    """Median [first quartile, third quartile] ("" without values)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return ""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    if len(values) == 1:
        return g(float(median))
    return f"{g(float(median))} [{g(float(q1))}, {g(float(q3))}]"


def table(results: Results) -> tuple[list[str], list[list[str]]]:
    header = ["#", "piece", "state", "ours ms", "library ms", "time ours/library",
              "quality", "ours", "library", "difference / agreement"]
    rows = []
    for row in sorted(results.rows.values(), key=lambda r: r.number):
        ratios = [a / b for a, b in zip(row.ours_ms, row.lib_ms, strict=True)
                  if b > 0 and not math.isnan(a / b)]
        diffs = "; ".join(
            f"{name} {spread(values)}" + (f" (range {g(min(values))} to {g(max(values))})"
                                           if len(values) > 1 else "")
            for name, values in row.diffs.items()
        )
        rows.append([str(row.number), row.piece, row.state, spread(row.ours_ms),
                     spread(row.lib_ms), spread(ratios), row.quality, spread(row.ours_q),
                     spread(row.lib_q), diffs])
    return header, rows


def per_proposal(results: Results, labels: list[str]) -> tuple[list[str], list[list[str]]]:
    """One proposal's GP work, per state: the fit (from the warm start), the posterior's setup
    and the acquisition search; the library's: its fit, the building of GPyTorch's prediction
    caches and its optimiser on its own acquisition."""
    header = ["state", "ours: fit", "CachedGP", "search", "total",
              "library: fit", "caches", "search", "total", "total ours/library"]
    rows = []
    for label in labels:
        try:
            fit, setup = results.rows[(FIT_WARM, label)], results.rows[(SETUP, label)]
            search = results.rows[(SEARCH_FULL, label)]
        except KeyError:  # pieces left out
            continue
        ours = [f + c + a for f, c, a in
                zip(fit.ours_ms, setup.ours_ms, search.ours_ms, strict=True)]
        library = [f + c + a for f, c, a in
                   zip(fit.lib_ms, setup.lib_ms, search.lib_ms, strict=True)]
        rows.append([label, spread(fit.ours_ms), spread(setup.ours_ms), spread(search.ours_ms),
                     spread(ours), spread(fit.lib_ms), spread(setup.lib_ms),
                     spread(search.lib_ms), spread(library),
                     spread([a / b for a, b in zip(ours, library, strict=True)])])
    return header, rows


def caption(seeds: int, results: Results, clock_name: str) -> str:
    versions = ", ".join(f"{package} {metadata.version(package)}"
                         for package in ("botorch", "gpytorch", "torch", "optuna", "scipy"))
    lines = [
        f"Median [first quartile, third quartile] over seeds 0-{seeds - 1} of each state "
        f"(times: {'process CPU' if clock_name == 'cpu' else 'wall'} time, the median of "
        "repeated calls within a state, ours' and the library's calls alternating); "
        "*time ours/library* is the "
        "per-seed ratio, summarised the same way; *range*: the smallest and largest over seeds. "
        "Ours: this project's pieces; library: BoTorch's (rows 1-4) or one "
        "scipy.optimize.minimize per start (row 5). Quality differences are library - ours. "
        "Row 1: both fits minimise the same MAP objective (make_model's priors); BoTorch's "
        "with the ConstantMean and the additive weight made trainable (ours profiles the mean "
        "out and fits the weight in closed form), both evaluated by the project's "
        "_MapObjective (mean at its least-squares value); both start from l = s = noise = "
        "w = 1, or from the sampler's warm start (BoTorch's mean then at its least-squares "
        "value there, one _MapObjective evaluation counted in its time). Rows 2-3: the same "
        "fitted model (fit_surrogate's) in both. Row 4: ours searches from 10 roulette starts "
        "plus the 2 best observed; BoTorch with num_restarts=10, raw_samples=2048, its "
        "defaults otherwise (optimize_acqf on hartmann6, optimize_acqf_mixed_alternating with "
        "every discrete and categorical column's values listed on mixed), seeded by "
        "torch.manual_seed(seed); every point found is scored by the project's LogEI. Row 5: "
        "the starts of the first round of optimize_acquisition, lengthscale-scaled as "
        "_continuous_step does, the same L-BFGS-B settings (m=10, factr=1e7, pgtol=1e-2, 200 "
        "iterations) in both.",
        f"Versions: {versions}; torch threads: {torch.get_num_threads()}; BLAS threads: "
        f"{blas_threads()}.",
    ]
    notes = []
    for name, values in results.notes.items():
        if isinstance(values[0], tuple):
            shown = " / ".join(spread(column) for column in zip(*values, strict=True))
        else:
            shown = spread(values)
        notes.append(f"- {name}: {shown}")
    if results.problems:
        notes.append("- library problems and warnings (count):")
        notes += [f"  - {message} ({count})" for message, count in results.problems.items()]
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def blas_threads() -> str:
    """The thread counts of the BLAS libraries loaded (NumPy's and SciPy's OpenBLAS)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    return ", ".join(f"{Path(i['filepath']).name.split('-')[0]} {i['num_threads']}"
                     for i in threadpool_info() if i["user_api"] == "blas") or "none"


def parse_list(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PIECES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown pieces: {', '.join(unknown)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--pieces", type=parse_list, default=list(PIECES),
                        help=f"comma-separated, from {','.join(PIECES)} (default all)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu",
                        help="time by this process's CPU time (default: steadier when other "
                        "processes load the machine) or by wall time")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table as Markdown")
    parser.add_argument("--states", metavar="PATH",
                        help="read the GP states (the runs' data) from PATH if it has the "
                        "seeds, else run them and save them there")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.seeds < 1:
        raise SystemExit(f"--seeds={args.seeds}: expected at least 1")
    global clock
    clock = CLOCKS[args.clock]
    quiet_optuna()
    # space.sample draws 20 and 12 Sobol points here (not powers of 2), which scipy warns about.
    warnings.filterwarnings("ignore", message="The balance properties of Sobol")
    # model_state's float() of the additive weight, a trainable parameter in library_model.
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
    torch.set_num_threads(1)
    start = time.perf_counter()
    load = os.getloadavg()[0]
    states = load_or_run_states(args.states, args.seeds)
    results = Results()
    for state in states:
        began = time.perf_counter()
        p = prepare(state)
        rng = np.random.RandomState(1000 + state.seed)
        if "fit" in args.pieces:
            bench_fit(results, p)
        if "posterior" in args.pieces:
            bench_posterior(results, p, rng)
        if "logei" in args.pieces:
            bench_logei(results, p, rng)
        if "search" in args.pieces:
            bench_search(results, p)
        if "lbfgsb" in args.pieces:
            bench_lbfgsb(results, p)
        print(f"{state.label} seed={state.seed}: {time.perf_counter() - began:.1f} s",
              file=sys.stderr, flush=True)
    for _ in range(args.seeds):
        if "logei" in args.pieces:
            bench_log_ei_function(results)
    header, rows = table(results)
    labels = list(dict.fromkeys(state.label for state in states))
    proposal_header, proposal_rows = per_proposal(results, labels)
    about = caption(args.seeds, results, args.clock)
    about += (f"\n\nTotal run time {time.perf_counter() - start:.0f} s; load average "
              f"{load:.2f} at the start and {os.getloadavg()[0]:.2f} at the end "
              f"({os.cpu_count()} CPUs).")
    proposal_about = (
        "Per proposal (ms; same runs): ours = the warm-started fit + CachedGP + "
        "optimize_acquisition; library = BoTorch's warm-started fit + GPyTorch's "
        "prediction caches (row 2's setup) + BoTorch's optimiser on LogExpectedImprovement on "
        "the SingleTaskGP.")
    print(render_text(header, rows))
    print()
    print(about)
    if proposal_rows:
        print()
        print(proposal_about)
        print(render_text(proposal_header, proposal_rows))
    if args.markdown:
        text = f"{render_markdown(header, rows)}\n\n{about}\n"
        if proposal_rows:
            text += f"\n{proposal_about}\n\n{render_markdown(proposal_header, proposal_rows)}\n"
        write(args.markdown, text)


if __name__ == "__main__":
    main()
