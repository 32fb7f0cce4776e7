"""Maximising an acquisition function over a mixed space.

1. Score ``n_raw`` scrambled-Sobol candidates (discrete columns on their lattice, categorical
   columns on their codes).
2. Start local searches from the best candidate, from others drawn with probability
   ``exp(a(x) - max a)`` (Optuna's roulette, ``a`` in log units for EI and PI), and from the best
   observed configurations, which is where late improvements are found.
3. Alternate, for all starts at once, L-BFGS-B over the continuous columns (rescaled by the
   GP's lengthscales, which equalises their curvature) and a coordinate search over each discrete
   and categorical column (every allowed value, or the nearest 16 for long lattices), until no
   start improves.

Every point evaluated is a valid configuration: discrete columns never leave their lattice.
"""

from __future__ import annotations

import numpy as np
import torch
from optuna._gp.batched_lbfgsb import batched_lbfgsb

from optuna_keras_hpo.samplers._gp.space import EncodedSpace

MAX_EXHAUSTIVE = 32
NEIGHBOURS = 8


def evaluate(acqf, X: np.ndarray, grad: bool = False):
    """Acquisition values at the rows of ``X`` (and their gradients when ``grad``)."""
    x = torch.from_numpy(X).requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        values = acqf(x.unsqueeze(-2))
    if not grad:
        return values.detach().numpy()
    values.sum().backward()
    return values.detach().numpy(), x.grad.numpy()


def optimize_acquisition(
    acqf,
    space: EncodedSpace,
    rng: np.random.RandomState,
    warm_starts: np.ndarray | None = None,
    lengthscales: np.ndarray | None = None,
    n_raw: int = 2048,
    n_starts: int = 10,
    log_scale: bool = True,
    max_rounds: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Local optima of ``acqf``, best first: (points, values)."""
    raw = space.sample(n_raw, rng)
    values = evaluate(acqf, raw)
    starts = _choose_starts(raw, values, n_starts, rng, log_scale)
    if warm_starts is not None and len(warm_starts):
        starts = np.vstack([starts, warm_starts])
    X = space.snap(starts)
    f = evaluate(acqf, X)
    scale = np.ones(space.dim) if lengthscales is None else lengthscales
    mixed = len(space.discrete) + len(space.categorical) > 0
    # Each round refines only the starts whose discrete part moved in the round before: the
    # others are at a local optimum of both steps already.
    active = np.arange(len(X))
    for _ in range(max_rounds if mixed else 1):
        Xa, fa = X[active], f[active]
        Xa, fa = _continuous_step(acqf, space, Xa, fa, scale)
        Xa, fa, moved = _discrete_step(acqf, space, Xa, fa)
        X[active], f[active] = Xa, fa
        active = active[moved]
        if len(active) == 0:
            break
    order = np.argsort(-f)
    return X[order], f[order]


def _choose_starts(raw, values, n, rng, log_scale):
    best = int(np.argmax(values))
    finite = np.isfinite(values)
    if not log_scale:  # UCB: bring values to a log-like scale before the roulette
        spread = np.std(values[finite]) or 1.0
        values = values / spread
    weights = np.where(finite, np.exp(np.clip(values - values[best], -700, 0)), 0.0)
    weights[best] = 0.0
    k = min(n - 1, int(np.count_nonzero(weights)))
    chosen = [best]
    if k > 0:
        chosen += list(rng.choice(len(raw), size=k, replace=False, p=weights / weights.sum()))
    return raw[chosen]


def _continuous_step(acqf, space, X, f, scale):
    cont = space.continuous
    if len(cont) == 0:
        return X, f
    s = scale[cont]

    def negative(z_batch, rows):
        Xz = np.array(rows)
        Xz[:, cont] = z_batch * s
        vals, grads = evaluate(acqf, Xz, grad=True)
        return -vals, -grads[:, cont] * s

    # Optuna's batched L-BFGS-B (the one GPSampler uses): every start has its own L-BFGS-B
    # state and stops on its own, while each step evaluates the live starts in one batch.
    z, _, _ = batched_lbfgsb(
        func_and_grad=negative, x0_batched=X[:, cont] / s, batched_args=(list(X),),
        bounds=[(0.0, 1.0 / si) for si in s], pgtol=1e-2, max_iters=200,
    )
    X_new = X.copy()
    X_new[:, cont] = np.clip(z * s, 0.0, 1.0)
    f_new = evaluate(acqf, X_new)
    better = f_new > f + 1e-12
    X[better], f[better] = X_new[better], f_new[better]
    return X, f


def _discrete_step(acqf, space, X, f):
    """For each discrete or categorical column in turn, move every start to its best value in
    that column (all starts' options scored in one batch); which starts moved."""
    moved = np.zeros(len(X), dtype=bool)
    for i in (*space.discrete, *space.categorical):
        lattice = space.dims[i].lattice
        options = [lattice.around(X[row, i], NEIGHBOURS, MAX_EXHAUSTIVE)
                   for row in range(len(X))]
        counts = [len(o) for o in options]
        if not sum(counts):
            continue
        trial = np.repeat(X, counts, axis=0)
        trial[:, i] = np.concatenate(options)
        vals = evaluate(acqf, trial)
        start = 0
        for row, count in enumerate(counts):
            if count:
                j = start + int(np.argmax(vals[start:start + count]))
                if vals[j] > f[row] + 1e-12:
                    X[row], f[row] = trial[j], vals[j]
                    moved[row] = True
            start += count
    return X, f, moved
