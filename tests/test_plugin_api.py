"""tuner._plugin_api: the prox modes' one owner, and an exception in plugin code blamed on the plugin."""

from __future__ import annotations

import pytest
import torch
from _broken_plugins import FloatStepLasso
from sklearn.datasets import make_classification

import tuner
from tuner import Float, Optimizer
from tuner._plugin_api import PROX_MODES, ProxMode, blame_plugin, plugin_kind
from tuner.errors import PluginError, PluginRaisedError


class BuildsNothing(Optimizer):
    name = "builds_nothing"
    description = "Raises in build."
    search_space = {"lr": Float(1e-3, 1.0, default=0.1)}

    def build(self, param_groups, params, prox=None):
        return {}["missing"]


def _raise_in(plugin, *args):
    try:
        plugin(*args)
    except Exception as exc:  # noqa: BLE001 - the exception under test
        return exc
    raise AssertionError("expected an exception")


def test_prox_modes_have_one_owner_that_matches_the_literal():
    from typing import get_args

    assert tuple(PROX_MODES) == get_args(ProxMode) == ("after_step", "internal", "unsupported")
    assert all(isinstance(words, str) and words for words in PROX_MODES.values())


def test_an_exception_in_plugin_code_is_blamed_on_that_plugin_in_one_line():
    pen, opt = FloatStepLasso(), tuner.optimizers.get("sgd")
    exc = _raise_in(pen.prox, torch.ones(3, 2), torch.full((3, 2), 0.1), {"strength": 1.0})
    blamed = blame_plugin(exc, [opt, pen])
    assert isinstance(blamed, PluginRaisedError) and isinstance(blamed, PluginError)
    message = str(blamed)
    assert "\n" not in message
    assert message.startswith(f"the penalty plugin 'float_step' (package {FloatStepLasso.__module__}) raised ")
    assert type(exc).__name__ in message and "`tuner plugins check float_step`" in message
    assert (blamed.kind, blamed.plugin) == ("penalty", "float_step")


def test_blame_names_the_installed_distribution_and_the_innermost_plugin():
    sgd = tuner.optimizers.get("sgd")
    exc = _raise_in(sgd.build, [{"params": [torch.zeros(2, 1, requires_grad=True)]}], {}, None)  # no "lr"
    blamed = blame_plugin(exc, [tuner.penalties.get("l2"), sgd])
    assert blamed is not None and "the optimizer plugin 'sgd' (package logreg-tuner) raised KeyError" in str(blamed)


def test_no_blame_for_tuner_errors_foreign_code_or_no_plugins():
    pen = FloatStepLasso()
    assert blame_plugin(tuner.ConfigError("bad option"), [pen]) is None
    assert blame_plugin(_raise_in(int, "x"), [tuner.penalties.get("l1")]) is None  # outside the plugin's code
    exc = _raise_in(pen.prox, torch.ones(2, 2), torch.ones(2, 2), {"strength": 1.0})
    assert blame_plugin(exc, []) is None and blame_plugin(exc, [object()]) is None
    assert plugin_kind(pen) == "penalty" and plugin_kind(BuildsNothing) == "optimizer" and plugin_kind(1) is None


@pytest.mark.parametrize("penalty, optimizer, blamed", [
    (FloatStepLasso(), "adam", "the penalty plugin 'float_step'"),   # Adam's per-weight steps reach the prox
    ("l2", BuildsNothing(), "the optimizer plugin 'builds_nothing'"),
])
def test_training_turns_a_plugin_crash_into_one_line_naming_it(penalty, optimizer, blamed):
    from tuner.train import TrainConfig, fit

    pen = tuner.penalties.get(penalty) if isinstance(penalty, str) else penalty
    opt = tuner.optimizers.get(optimizer) if isinstance(optimizer, str) else optimizer
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    pp = {k: hp.default for k, hp in pen.search_space.items()}
    op = {k: hp.default for k, hp in opt.search_space.items()}
    with pytest.raises(PluginRaisedError) as info:
        fit(X, y, 2, pen, pp, opt, op, TrainConfig(epochs=2, device="cpu"))
    assert str(info.value).startswith(blamed) and "tuner plugins check" in str(info.value)
    assert info.value.__cause__ is not None and not isinstance(info.value.__cause__, tuner.TunerError)


def _ridge_source(name: str) -> str:
    """The source of a sound ridge plugin named ``name`` (a module's text, after its imports)."""
    import textwrap

    return textwrap.dedent(f"""
        class Ridge(Penalty):
            name = "{name}"
            description = "Ridge."
            search_space = {{"strength": Float(1e-6, 1.0, default=0.01, log=True)}}

            def smooth_value(self, weight, params):
                return params["strength"] / 2 * (weight ** 2).sum(dim=(-2, -1))
        """)


def test_a_crash_in_the_optimizer_a_plugin_built_is_blamed_on_that_optimizer(tmp_path, monkeypatch):
    """One package, a penalty and an optimizer in modules of their own, the optimizer's class in a
    third: its crash lies in neither plugin's module, and the package alone cannot tell them
    apart. The built object says whose it is (the penalty was blamed, being listed first)."""
    import importlib
    import textwrap

    from tuner.train import TrainConfig, fit

    pkg = tmp_path / "acme_blame"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "penalties.py").write_text("from tuner import Float, Penalty\n" + _ridge_source("acme_ridge"))
    (pkg / "_impl.py").write_text(textwrap.dedent("""
        import torch

        class BrokenSGD(torch.optim.SGD):
            def step(self, closure=None):
                raise RuntimeError("the update went wrong")
        """))
    (pkg / "optimizers.py").write_text(textwrap.dedent("""
        from tuner import Float, Optimizer
        from acme_blame._impl import BrokenSGD

        class Stepper(Optimizer):
            name = "acme_stepper"
            description = "SGD that breaks."
            search_space = {"lr": Float(1e-3, 1.0, default=0.1)}

            def build(self, param_groups, params, prox=None):
                return BrokenSGD(list(param_groups), lr=float(params["lr"]))
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    pen = importlib.import_module("acme_blame.penalties").Ridge()
    opt = importlib.import_module("acme_blame.optimizers").Stepper()
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    with pytest.raises(PluginRaisedError) as info:
        fit(X, y, 2, pen, {"strength": 0.01}, opt, {"lr": 0.1}, TrainConfig(epochs=2, device="cpu"))
    assert str(info.value).startswith("the optimizer plugin 'acme_stepper'"), str(info.value)
    assert (info.value.kind, info.value.plugin) == ("optimizer", "acme_stepper")


class _ForgetfulLasso(FloatStepLasso):
    """A lasso whose prox returns ``result`` of the shrunk weights (None: a forgotten return)."""

    name = "forgetful"
    description = "Lasso whose prox returns the wrong thing."
    result = staticmethod(lambda shrunk: None)

    def prox(self, weight, step, params):
        return self.result(torch.sign(weight) * torch.clamp(weight.abs() - step * params["strength"], min=0.0))


class _BuildsNone(BuildsNothing):
    name = "builds_none"

    def build(self, param_groups, params, prox=None):
        return None


@pytest.mark.parametrize("penalty, optimizer, message", [
    (_ForgetfulLasso(), "sgd", r"Penalty 'forgetful' prox must return weights of the shape it was given, "
                               r"\(5, 1\); got NoneType"),
    (type("Flat", (_ForgetfulLasso,), {"result": staticmethod(lambda w: w.reshape(-1))})(), "fista",
     r"Penalty 'forgetful' prox must return weights .* got shape \(5,\)"),
    ("l2", _BuildsNone(), r"Optimizer 'builds_none' build\(\) must return a torch optimizer; got NoneType"),
])
def test_a_plugin_that_returns_the_wrong_thing_is_named_in_one_line(penalty, optimizer, message):
    """Nothing raised inside the plugin, so no traceback names it: the trainer checks what it returned
    (the TypeError from the trainer's own code stopped a whole study)."""
    from tuner.train import TrainConfig, fit

    pen = tuner.penalties.get(penalty) if isinstance(penalty, str) else penalty
    opt = tuner.optimizers.get(optimizer) if isinstance(optimizer, str) else optimizer
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    pp = {k: hp.default for k, hp in pen.search_space.items()}
    op = {k: hp.default for k, hp in opt.search_space.items()}
    with pytest.raises(PluginError, match=message) as info:
        fit(X, y, 2, pen, pp, opt, op, TrainConfig(epochs=2, device="cpu"))
    assert "\n" not in str(info.value) and "tuner plugins check" in str(info.value)


def test_blame_follows_the_code_not_the_module(tmp_path, monkeypatch):
    """A penalty and an optimizer in one module (the optimizer's crash was blamed on the penalty,
    listed first), and a penalty subclassing a built-in whose inherited prox fails (blamed on
    the optimizer 'sgd' of the built-ins' package)."""
    import importlib
    import textwrap

    from tuner.train import TrainConfig, fit

    (tmp_path / "acme_one.py").write_text("from tuner import Float, Optimizer, Penalty\n" + _ridge_source("one_ridge")
                                          + textwrap.dedent("""

        class Breaks(Optimizer):
            name = "one_breaks"
            description = "Raises in build."
            search_space = {"lr": Float(1e-3, 1.0, default=0.1)}

            def build(self, param_groups, params, prox=None):
                raise ValueError("boom in build")
        """))
    (tmp_path / "acme_net.py").write_text(textwrap.dedent("""
        from logreg_tuner_plugins.penalties import ElasticNetPenalty

        class MyNet(ElasticNetPenalty):
            name = "my_net"
            description = "An elastic net without its l1_ratio."
            search_space = {"strength": ElasticNetPenalty.search_space["strength"]}
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    one, net = importlib.import_module("acme_one"), importlib.import_module("acme_net")
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    with pytest.raises(PluginRaisedError) as info:
        fit(X, y, 2, one.Ridge(), {"strength": 0.01}, one.Breaks(), {"lr": 0.1}, TrainConfig(epochs=2, device="cpu"))
    assert (info.value.kind, info.value.plugin) == ("optimizer", "one_breaks"), str(info.value)
    sgd = tuner.optimizers.get("sgd")
    exc = _raise_in(net.MyNet().prox, torch.ones(3, 1), 0.1, {"strength": 0.1})
    blamed = blame_plugin(exc, [net.MyNet(), sgd])
    assert blamed is not None and (blamed.kind, blamed.plugin) == ("penalty", "my_net"), str(blamed)


def test_an_l1_only_optimizer_refuses_a_non_smooth_penalty_that_is_not_an_elastic_net() -> None:
    """L-BFGS minimises an L1 part by OWL-QN, which needs the L1 weight (Penalty.elastic_net), not a
    prox: a third-party non-smooth penalty without that declaration is refused with the reason,
    and the built-in non-smooth penalties are taken."""
    from tuner._plugin_api import compatibility_reason
    from tuner._registry import optimizers, penalties

    lbfgs = optimizers.get("lbfgs")
    assert lbfgs.l1_only and lbfgs.prox_mode == "internal"
    reason = compatibility_reason(FloatStepLasso(), lbfgs)
    assert reason is not None and "elastic net's L1 term" in reason and "'fista'" in reason, reason
    assert compatibility_reason(FloatStepLasso(), optimizers.get("fista")) is None
    for name in ("l1", "elasticnet", "l2", "none"):
        assert compatibility_reason(penalties.get(name), lbfgs) is None, name


def test_a_plugin_cannot_change_its_hyperparameters_by_writing_to_params() -> None:
    """A penalty that wrote ``params["strength"] = 7.0`` trained another objective than the one its
    trial reports (penalty_params said 1e-4), and no check saw it: ``params`` is read-only."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    from tuner import Float, Penalty
    from tuner._registry import optimizers
    from tuner.errors import PluginError
    from tuner.train import TrainConfig, fit

    class Rewriting(Penalty):
        name = "rewriting"
        description = "Writes to its params."
        search_space = {"strength": Float(1e-7, 10.0, default=1e-4, log=True)}

        def smooth_value(self, weight, params):
            params["strength"] = 7.0
            return params["strength"] / 2 * (weight ** 2).sum(dim=(-2, -1))

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for opt in ("lbfgs", "sgd"):
        with pytest.raises(PluginError, match="the penalty plugin 'rewriting' .*raised TypeError: 'mappingproxy' "
                                              "object does not support item assignment"):
            fit(X, y, 2, Rewriting(), {"strength": 1e-4}, optimizers.get(opt), {}, TrainConfig(epochs=2))


@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_a_penalty_value_of_the_wrong_shape_is_the_penaltys_error(optimizer: str) -> None:
    """A penalty reducing over one axis only (a value per class) raised a bare RuntimeError from a
    reshape with SGD, and with L-BFGS was blamed on the optimizer."""
    from sklearn.datasets import load_iris

    from tuner import Penalty
    from tuner._registry import optimizers
    from tuner.train import TrainConfig, fit

    class PerClass(Penalty):
        name = "per_class"
        description = "Reduces over one axis only."
        search_space = {"strength": Float(1e-7, 10.0, default=1e-4, log=True)}

        def smooth_value(self, weight, params):
            return params["strength"] * (weight * weight).sum(dim=-2)

    X, y = load_iris(return_X_y=True)
    with pytest.raises(PluginError, match=r"Penalty 'per_class' smooth_value returned a tensor of shape \(3,\); it "
                                          r"must return a scalar \(one trial\)"):
        fit(X, y, 3, PerClass(), {"strength": 1e-4}, optimizers.get(optimizer), {}, TrainConfig(epochs=2))


def test_a_penalty_whose_value_is_nan_is_blamed_not_the_learning_rate() -> None:
    """A penalty returning NaN on wide data made every trial 'diverge' with the advice to lower the
    learning rate of L-BFGS, which no learning rate mends."""
    from sklearn.datasets import load_breast_cancer

    from tuner import Penalty
    from tuner._registry import optimizers
    from tuner.train import TrainConfig, fit

    class NanOnWideData(Penalty):
        name = "nan_wide"
        description = "NaN on data with 25 features or more."
        search_space = {"strength": Float(1e-7, 10.0, default=1e-4, log=True)}

        def smooth_value(self, weight, params):
            value = params["strength"] / 2 * (weight ** 2).sum(dim=(-2, -1))
            return value * float("nan") if weight.shape[-2] >= 25 else value

    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(PluginError, match="The penalty 'nan_wide' gave smooth_value = nan at finite weights"):
        fit(X, y, 2, NanOnWideData(), {"strength": 1e-4}, optimizers.get("lbfgs"), {}, TrainConfig(epochs=2))
    fit(X[:, :10], y, 2, NanOnWideData(), {"strength": 1e-4}, optimizers.get("lbfgs"), {}, TrainConfig(epochs=2))
