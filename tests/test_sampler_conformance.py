"""Optuna's own sampler test suite (``optuna.testing.pytest_samplers``, the cases OptunaHub
samplers are held to: basic, relative and multi-objective sampling) run on
``GaussianProcessSampler`` with each acquisition, the GP used from the second trial on
(``n_startup_trials=0``, as Optuna runs its ``GPSampler`` through the suite)."""

import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)

from optuna_keras_hpo.samplers import GaussianProcessSampler


class TestGaussianProcessSampler(BasicSamplerTestCase, RelativeSamplerTestCase,
                                 MultiObjectiveSamplerTestCase):
    @pytest.fixture(params=["ei", "pi", "ucb"])
    def sampler(self, request):
        return lambda: GaussianProcessSampler(acquisition=request.param, n_startup_trials=0,
                                              seed=0)
