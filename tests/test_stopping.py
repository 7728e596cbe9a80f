"""The stopping rule of one trial (tuner.train.Stopping) and the training defaults' one owner."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from tuner import optimizers, penalties
from tuner.errors import PluginError, TunerError
from tuner.train import Stopping, TrainConfig, fit, fit_many
from tuner.train._stopping import DIVERGENCE_FACTOR, PLATEAU_DROPS


def rule(**over: Any) -> Stopping:
    kw: dict[str, Any] = dict(tol=0.1, patience=2, watch_val=False, may_drop_lr=False, start=0.7)
    kw.update(over)
    return Stopping(**kw)


def test_a_stall_of_patience_epochs_stops_and_says_why() -> None:
    s = rule()
    assert s.judge(1, 1.0) == "improved" and s.best_epoch == 1
    assert s.judge(2, 0.95) == "wait"  # 5% better: less than tol (10%) does not count
    assert s.judge(3, 0.85) == "improved" and s.best_value == 0.85 and s.bad_epochs == 0
    assert [s.judge(4, 0.84), s.judge(5, 0.84)] == ["wait", "stop"]
    assert s.reason == "converged" and s.best_epoch == 3
    watching = rule(watch_val=True, patience=1)
    assert [watching.judge(1, 0.5), watching.judge(2, 0.6)] == ["improved", "stop"]
    assert watching.reason == "early_stopping"


def test_a_mini_batch_stall_lowers_the_rate_before_it_stops() -> None:
    s = rule(patience=1, may_drop_lr=True)
    verdicts = [s.judge(1, 1.0)] + [s.judge(e, 1.0) for e in range(2, 3 + PLATEAU_DROPS)]
    assert verdicts == ["improved"] + ["drop_lr"] * PLATEAU_DROPS + ["stop"]
    assert s.lr_drops == PLATEAU_DROPS


def test_divergence_is_judged_against_the_start() -> None:
    s = rule(start=0.7)
    assert not s.diverged(0.7 * DIVERGENCE_FACTOR * 0.99, True)
    assert s.diverged(0.7 * DIVERGENCE_FACTOR * 1.01, True)
    assert s.diverged(math.nan, True) and s.diverged(math.inf, True) and s.diverged(0.1, False)


def test_the_rule_follows_the_config() -> None:
    config = TrainConfig(tol=1e-3, patience=7, monitor="val")
    assert Stopping.for_trial(config, 0.69, has_val=True, full_batch=False).watch_val
    no_val = Stopping.for_trial(config, 0.69, has_val=False, full_batch=False)
    assert (no_val.watch_val, no_val.may_drop_lr, no_val.patience, no_val.tol) == (False, True, 7, 1e-3)
    assert not Stopping.for_trial(TrainConfig(), 0.69, has_val=True, full_batch=True).may_drop_lr


def test_train_config_owns_every_default() -> None:
    defaults = TrainConfig.defaults()
    assert defaults == {name: getattr(TrainConfig(), name) for name in defaults}
    assert defaults["monitor"] == "objective"  # fit stops on the training objective by default
    assert "training objective" in (TrainConfig.__doc__ or "")
    exact = TrainConfig(seed=4).exact()
    assert (exact.dtype, exact.monitor, exact.seed) == ("float64", "objective", 4) and exact.tol < TrainConfig().tol


class _BrokenL2(type(penalties.get("l2"))):  # type: ignore[misc]
    """An L2 penalty (defined here, outside tuner) whose smooth part fails."""

    name = "brokenl2"

    def smooth_value(self, weight: torch.Tensor, params: Any) -> torch.Tensor:
        raise ValueError("the smooth part is broken")


def test_an_error_inside_plugin_code_names_the_plugin() -> None:
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    lbfgs = optimizers.get("lbfgs")
    ops = {k: v.default for k, v in lbfgs.search_space.items()}
    with pytest.raises(PluginError) as info:
        fit(X, y, 2, _BrokenL2(), {"strength": 1e-3}, lbfgs, ops, TrainConfig(epochs=2, device="cpu"))
    message = str(info.value)
    assert "brokenl2" in message and "ValueError" in message and "tuner plugins check brokenl2" in message
    assert isinstance(info.value.__cause__, ValueError)
    # a TunerError raised by training itself is never re-attributed
    with pytest.raises(TunerError) as plain:
        fit_many(X, y, 1, penalties.get("l2"), [{"strength": 1e-3}], lbfgs, [ops], TrainConfig())
    assert not isinstance(plain.value, PluginError)


def test_the_data_package_and_the_train_interfaces_load_no_torch() -> None:
    """A study or a tracker can read TrainConfig/Callback, and anyone can read data, without torch."""
    import subprocess
    import sys

    code = ("import sys, tuner.data, tuner.train; from tuner.train import TrainConfig, Callback, Stopping, work_size; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_fit_fills_left_out_hyperparameters_with_their_defaults_and_refuses_unknown_ones() -> None:
    """Issue 11: ``fit`` with empty hyperparameters used to raise ``KeyError: 'lr'``."""
    import numpy as np
    import pytest
    from sklearn.datasets import load_breast_cancer

    import tuner
    from tuner.train import TrainConfig, fit

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    adam, l2 = tuner.optimizers.get("adam"), tuner.penalties.get("l2")
    config = TrainConfig(epochs=3, seed=0, device="cpu")
    filled = fit(X, y, 2, l2, {}, adam, {}, config)
    spelled = fit(X, y, 2, l2, {n: h.default for n, h in l2.search_space.items()}, adam,
                  {n: h.default for n, h in adam.search_space.items()}, config)
    assert np.array_equal(filled.weight, spelled.weight)
    with pytest.raises(tuner.ConfigError, match="'strenght' is not a hyperparameter of the penalty 'l2'"):
        fit(X, y, 2, l2, {"strenght": 1e-3}, adam, {}, config)
