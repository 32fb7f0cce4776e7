import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from optuna_keras_hpo import HyperParameters, TrialHyperParameters
from optuna_keras_hpo.hyperparameters import Choice, Float, Int

optuna.logging.set_verbosity(optuna.logging.WARNING)


def value_sets(n_trials, declare):
    """The values a RandomSampler study draws through TrialHyperParameters."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(n_trials):
        trial = study.ask()
        seen.add(declare(TrialHyperParameters(trial)))
        study.tell(trial, 0.0)
    return seen, study


# -- value sets match KerasTuner's documentation -------------------------------------------------
@pytest.mark.parametrize(
    "declaration, expected",
    [
        (Int("n", 6, 12), [6, 7, 8, 9, 10, 11, 12]),
        (Int("n", 6, 13, step=3), [6, 9, 12]),
        (Int("n", 2, 32, step=2, sampling="log"), [2, 4, 8, 16, 32]),
        (Float("f", 0, 1, step=0.2), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (Float("f", 0.001, 10, step=10, sampling="log"), [0.001, 0.01, 0.1, 1.0, 10.0]),
        # KerasTuner's floor division never reaches 0.5 here; its docs say max is inclusive.
        (Float("f", 0.0, 0.5, step=0.1), [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]),
        (Float("f", 1, 100, step=10, sampling="reverse_log"), [1.0, 91.0, 100.0]),
    ],
)
def test_lattices_match_documented_values(declaration, expected):
    assert declaration.grid_values() == expected


def test_trial_draws_only_lattice_values_and_reaches_both_ends():
    seen, study = value_sets(80, lambda hp: hp.Float("d", 0.0, 0.5, step=0.1))
    assert seen == {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}
    assert isinstance(study.trials[0].distributions["d"], FloatDistribution)

    seen, _ = value_sets(60, lambda hp: hp.Int("n", 20, 60, step=10))
    assert seen == {20, 30, 40, 50, 60}
    assert all(type(v) is int for v in seen)


def test_log_step_is_a_multiplier_and_stored_as_the_value():
    seen, study = value_sets(60, lambda hp: hp.Int("b", 16, 128, step=2, sampling="log"))
    assert seen == {16, 32, 64, 128}
    dist = study.trials[0].distributions["b"]
    assert isinstance(dist, CategoricalDistribution)
    assert study.trials[0].params["b"] in (16, 32, 64, 128)


def test_continuous_log_float_uses_a_log_distribution():
    seen, study = value_sets(50, lambda hp: hp.Float("lr", 1e-4, 1e-1, sampling="log"))
    assert all(1e-4 <= v <= 1e-1 for v in seen)
    dist = study.trials[0].distributions["lr"]
    assert isinstance(dist, FloatDistribution) and dist.log
    # Log sampling puts about a third of draws below 1e-3 (one decade of three).
    assert 0.15 < sum(v < 1e-3 for v in seen) / len(seen) < 0.55


def test_int_log_without_step_and_types():
    seen, study = value_sets(30, lambda hp: hp.Int("n", 1, 1000, sampling="log"))
    assert all(type(v) is int and 1 <= v <= 1000 for v in seen)
    dist = study.trials[0].distributions["n"]
    assert isinstance(dist, IntDistribution) and dist.log


def test_choice_boolean_fixed_values():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        hp = TrialHyperParameters(trial)
        seen.add((hp.Choice("opt", ["adam", "sgd"]), hp.Boolean("bn"), hp.Fixed("k", 7)))
        assert "k" not in trial.params and hp.values["k"] == 7
        study.tell(trial, 0.0)
    assert {s[0] for s in seen} == {"adam", "sgd"}
    assert {s[1] for s in seen} == {False, True}


def test_recording_mode_returns_defaults_and_records_space():
    hp = HyperParameters()
    assert hp.Int("units", 32, 512, step=32) == 32
    assert hp.Float("lr", 1e-4, 1e-2, sampling="log", default=1e-3) == 1e-3
    assert hp.Choice("act", ["relu", "tanh"]) == "relu"
    assert hp.Choice("bs", [16, 32], default=32) == 32
    assert hp.Boolean("bn") is False
    assert hp.Fixed("seed", 3) == 3
    assert [h.name for h in hp.space] == ["units", "lr", "act", "bs", "bn", "seed"]
    assert hp.values == {"units": 32, "lr": 1e-3, "act": "relu", "bs": 32, "bn": False, "seed": 3}
    assert hp.Choice("bs", [16, 32]) == 32  # same name twice: the same value
    assert len(hp.space) == 6


def test_same_name_twice_returns_the_same_value_in_a_trial():
    study = optuna.create_study()
    trial = study.ask()
    hp = TrialHyperParameters(trial)
    first = hp.Float("lr", 1e-4, 1e-1, sampling="log")
    assert hp.Float("lr", 1e-4, 1e-1, sampling="log") == first
    assert hp["lr"] == hp.get("lr") == first and "lr" in hp


def test_conditional_scope_only_suggests_active_children():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask()
        hp = TrialHyperParameters(trial)
        opt = hp.Choice("optimizer", ["adam", "lion"])
        with hp.conditional_scope("optimizer", ["lion"]):
            beta = hp.Float("beta_1", 0.8, 0.95, step=0.05)
        beta2 = hp.Float("beta_2", 0.9, 0.99, parent_name="optimizer", parent_values="lion")
        if opt == "lion":
            assert beta in (0.8, 0.85, 0.9, 0.95) and "beta_1" in trial.params
            assert 0.9 <= beta2 <= 0.99 and "beta_1" in hp
        else:
            assert beta is None and beta2 is None
            assert "beta_1" not in trial.params and "beta_1" not in hp.values
            assert "beta_1" not in hp
            with pytest.raises(ValueError, match="inactive"):
                hp.get("beta_1")
        study.tell(trial, 0.0)
    assert {t.params["optimizer"] for t in study.trials} == {"adam", "lion"}


def test_conditional_scope_needs_a_declared_parent():
    hp = HyperParameters()
    with pytest.raises(ValueError, match="parent_name='missing'"):
        with hp.conditional_scope("missing", ["a"]):
            pass


def test_name_scope_prefixes_names():
    hp = HyperParameters()
    with hp.name_scope("block1"):
        hp.Int("units", 1, 4)
        assert hp.get("units") == 1
    assert "block1/units" in hp.values
    with pytest.raises(KeyError):
        hp.get("units")


def test_predeclared_fixed_and_tune_new_entries():
    fixed = HyperParameters()
    fixed.Fixed("lr", 0.01)
    fixed.Choice("units", [5, 7])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        hp = TrialHyperParameters(trial, fixed, tune_new_entries=False)
        assert hp.Float("lr", 1e-4, 1e-1, sampling="log") == 0.01
        assert hp.Int("units", 1, 100) in (5, 7)  # the tuner's declaration wins
        assert hp.Int("layers", 2, 9) == 2  # new entry, not tuned: its default
        assert set(trial.params) == {"units"}
        study.tell(trial, 0.0)
    trial = study.ask()
    hp = TrialHyperParameters(trial, fixed, allow_new_entries=False)
    with pytest.raises(RuntimeError, match="allow_new_entries"):
        hp.Int("layers", 2, 9)


# -- invalid declarations raise ValueError naming the hyperparameter -----------------------------
@pytest.mark.parametrize(
    "declare, message",
    [
        (lambda hp: hp.Int("units", 64, 32), "min_value=64 is greater than max_value=32"),
        (lambda hp: hp.Float("rate", 0.5, 0.1), "is greater than max_value"),
        (lambda hp: hp.Int("units", 1, 10, step=0), "step=0; expected step > 0"),
        (lambda hp: hp.Float("rate", 0.0, 1.0, step=-0.1), "expected step > 0"),
        (lambda hp: hp.Float("rate", 0.0, 1.0, sampling="log"), "expected min_value > 0"),
        (lambda hp: hp.Int("units", -1, 10, sampling="reverse_log"), "expected min_value > 0"),
        (lambda hp: hp.Float("rate", 1e-3, 1.0, step=1, sampling="log"), "multiplier step > 1"),
        (lambda hp: hp.Choice("opt", []), "non-empty list"),
        (lambda hp: hp.Choice("opt", ["adam", 1]), "mix types"),
        (lambda hp: hp.Choice("bs", [16, 32.0]), "mix types"),
        (lambda hp: hp.Choice("opt", ["adam"], default="sgd"), "default='sgd' is not one of"),
        (lambda hp: hp.Int("units", 1, 10, default=11), "default=11 is outside"),
        (lambda hp: hp.Float("rate", 0.1, 0.5, default=0.0), "default=0.0 is outside"),
        (lambda hp: hp.Int("units", 1.5, 10), "min_value=1.5; expected a finite int"),
        (lambda hp: hp.Float("rate", 0, 1, sampling="cubic"), "sampling='cubic'"),
        (lambda hp: hp.Boolean("bn", default="yes"), "default='yes'"),
    ],
)
def test_invalid_declarations_name_the_hyperparameter(declare, message):
    hp = HyperParameters()
    with pytest.raises(ValueError, match=message) as error:
        declare(hp)
    assert "name=" in str(error.value)


def test_choice_ordering_defaults():
    assert Choice("bs", [16, 32]).ordered is True
    assert Choice("opt", ["adam", "sgd"]).ordered is False
    with pytest.raises(ValueError, match="ordered=True"):
        Choice("opt", ["adam", "sgd"], ordered=True)


def test_continuous_float_grid_has_ten_points_inside_the_range():
    points = Float("lr", 1e-4, 1e-2, sampling="log").grid_values()
    assert len(points) == 10 and all(1e-4 <= p <= 1e-2 for p in points)
    ratios = [b / a for a, b in zip(points, points[1:], strict=False)]
    assert all(math.isclose(r, ratios[0], rel_tol=1e-3) for r in ratios)  # even in log space


def test_keras_tuner_agrees_where_its_code_follows_its_docs():
    keras_tuner = pytest.importorskip("keras_tuner")
    for ours in [Int("n", 6, 13, step=3), Int("n", 2, 32, step=2, sampling="log")]:
        kt_hp = keras_tuner.HyperParameters()
        getattr(kt_hp, type(ours).__name__)(
            "n", ours.min_value, ours.max_value, step=ours.step, sampling=ours.sampling
        )
        assert sorted(kt_hp.space[0].values) == ours.grid_values()


def test_a_value_set_beforehand_still_declares_the_hyperparameter():
    """KerasTuner registers a declaration whose value is already in ``values``; so a
    conditional scope on it works (the tuner forces parent values to explore branches)."""
    hp = HyperParameters()
    hp.values["optimizer"] = "lion"
    assert hp.Choice("optimizer", ["adam", "lion"]) == "lion"
    with hp.conditional_scope("optimizer", ["lion"]):
        assert hp.Float("beta", 0.8, 0.9) == 0.8
    assert [h.name for h in hp.space] == ["optimizer", "beta"]
    assert hp.space[1].conditions[0].parent_name == "optimizer"


def test_ensure_active_values_fills_defaults_and_drops_inactive_values():
    hp = HyperParameters()
    hp.Choice("optimizer", ["adam", "lion"])
    with hp.conditional_scope("optimizer", ["lion"]):
        hp.Float("beta_1", 0.8, 0.95, default=0.9)
    hp.Int("units", 4, 12, step=4)
    hp.values = {"optimizer": "lion"}
    hp.ensure_active_values()
    assert hp.values == {"optimizer": "lion", "beta_1": 0.9, "units": 4}
    hp.values["optimizer"] = "adam"
    hp.ensure_active_values()
    assert hp.values == {"optimizer": "adam", "units": 4}


def test_a_space_survives_its_config():
    hp = HyperParameters()
    hp.Choice("optimizer", ["adam", "lion"], default="lion")
    with hp.conditional_scope("optimizer", ["lion"]):
        hp.Float("beta_1", 0.8, 0.95, step=0.05)
    hp.Int("units", 16, 128, step=2, sampling="log")
    hp.Float("lr", 1e-4, 1e-2, sampling="log")
    hp.Boolean("bn", default=True)
    hp.Fixed("act", "relu")
    again = HyperParameters.from_config(hp.get_config())
    assert again.get_config() == hp.get_config()
    assert [h.distribution() for h in again.space] == [h.distribution() for h in hp.space]
    with pytest.raises(ValueError, match="class_name='Nope'"):
        HyperParameters.from_config({"space": [{"class_name": "Nope", "config": {}}]})
