"""tuner.testing: the contract checks pass the built-ins and catch each kind of broken plugin."""

from __future__ import annotations

import json

import pytest
import torch
from _broken_plugins import AdamWithoutCoordinateSteps, PerTrialSGD
from click.testing import CliRunner

import tuner
from tuner import Categorical, Float, Optimizer, Penalty
from tuner.cli import cli
from tuner.testing import (
    OPTIMIZER_CHECKS,
    PENALTY_CHECKS,
    ContractError,
    check_optimizer,
    check_penalty,
    check_plugin,
    hyperparameter_settings,
    run_checks,
    run_installed_checks,
)

STRENGTH = Float(1e-6, 10.0, default=1e-3, log=True)


def soft(w, t):
    return torch.sign(w) * torch.clamp(w.abs() - t, min=0.0)


# --- well-behaved plugins ----------------------------------------------------------------


class GoodL1(Penalty):
    name = "good_l1"
    description = "A correct lasso."
    search_space = {"strength": STRENGTH}
    has_prox = True

    def smooth_value(self, weight, params):
        return weight.new_zeros(())

    def nonsmooth_value(self, weight, params):
        return params["strength"] * weight.abs().sum()

    def prox(self, weight, step, params):
        return soft(weight, step * params["strength"])


class GoodSGD(Optimizer):
    name = "good_sgd"
    description = "Plain SGD."
    search_space = {"lr": Float(1e-3, 1.0, default=0.3, log=True)}

    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=float(params["lr"]))


def results_of(obj, **kw):
    return {r.check: r for r in run_checks(obj, **kw)}


def failed_checks(obj, **kw):
    return [r.check for r in run_checks(obj, **kw) if r.failed]


# --- the built-ins and the good examples pass ------------------------------------------


@pytest.mark.parametrize("name", ["none", "l1", "l2", "elasticnet"])
def test_builtin_penalties_pass(name):
    results = check_penalty(tuner.penalties.get(name), name=name)
    assert [r.check for r in results] == list(PENALTY_CHECKS)
    assert not any(r.failed for r in results)
    assert all(r.passed for r in results if r.check.startswith("batch_")), results  # checked, not skipped


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "lbfgs", "fista"])
def test_builtin_optimizers_pass(name):
    results = check_optimizer(tuner.optimizers.get(name), name=name)
    assert [r.check for r in results] == list(OPTIMIZER_CHECKS)
    after_step = tuner.optimizers.get(name).prox_mode == "after_step"
    skipped = set() if after_step else {"prox_step"}  # no after-step prox to check for a full-batch solver
    if tuner.optimizers.get(name).full_batch:
        skipped.add("follows_lr")  # no learning-rate schedule either
    assert all(r.passed for r in results if r.check not in skipped), [r for r in results if not r.passed]
    assert {r.check for r in results if r.status == "skip"} == skipped


def test_good_plugins_pass_as_classes_and_instances():
    for obj in (GoodL1, GoodL1(), GoodSGD, GoodSGD()):
        assert not any(r.failed for r in check_plugin(obj))
    smooth = results_of(tuner.penalties.get("l2"))
    assert smooth["prox_minimises"].status == "skip" and "has_prox is False" in smooth["prox_minimises"].reason


def test_hyperparameter_settings_cover_defaults_bounds_and_choices():
    space = {"a": Float(0.1, 2.0, default=1.0), "b": Categorical(["x", "y"], default="x")}
    labelled = dict(hyperparameter_settings(space))
    assert labelled["defaults"] == {"a": 1.0, "b": "x"}
    assert {"a": 0.1, "b": "x"} in labelled.values() and {"a": 2.0, "b": "x"} in labelled.values()
    assert {"a": 1.0, "b": "y"} in labelled.values()


# --- each broken penalty fails the matching check ------------------------------------


class IdentityProx(GoodL1):
    """Claims a prox but returns its input: never minimises the prox problem."""

    def prox(self, weight, step, params):
        return weight


class ProxIgnoresStep(GoodL1):
    def prox(self, weight, step, params):
        return soft(weight, params["strength"])


class ProxGrows(GoodL1):
    def prox(self, weight, step, params):
        return soft(weight, step * params["strength"]) * (1.0 + step)


class ElementwiseProxForRowNorms(GoodL1):
    """Row-norm (group) penalty with the elementwise prox: shrinks, is the identity at 0, yet wrong."""

    def nonsmooth_value(self, weight, params):
        return params["strength"] * weight.norm(dim=1).sum()


class LogPenalty(GoodL1):
    """Its smooth part is -inf at zero weights."""

    def smooth_value(self, weight, params):
        return params["strength"] * torch.log(weight.abs()).sum()


class SqrtPenalty(Penalty):
    """Finite everywhere, but the gradient at zero is infinite."""

    name = "sqrt"
    description = "sqrt of |w|."
    search_space = {"strength": STRENGTH}

    def smooth_value(self, weight, params):
        return params["strength"] * weight.abs().sqrt().sum()


class DetachedPenalty(Penalty):
    """Autograd sees none of the value: the gradient disagrees with finite differences."""

    name = "detached"
    description = "ridge computed on a detached copy."
    search_space = {"strength": STRENGTH}

    def smooth_value(self, weight, params):
        return params["strength"] * 0.5 * weight.detach().pow(2).sum() + 0.0 * weight.sum()


class HiddenNonsmooth(Penalty):
    """has_prox is False yet it reports a non-smooth part the trainer would never minimise."""

    name = "hidden"
    description = "L1 without a prox."
    search_space = {"strength": STRENGTH}

    def smooth_value(self, weight, params):
        return weight.new_zeros(())

    def nonsmooth_value(self, weight, params):
        return params["strength"] * weight.abs().sum()


class SmallRidgeGradTwice(Penalty):
    """Ridge with a hand-written backward twice too large, at the small strengths of large data."""

    name = "small_ridge_grad2x"
    description = "Ridge, wrong gradient."
    search_space = {"strength": Float(1e-7, 2e-5, default=1e-6, log=True)}

    class _Half(torch.autograd.Function):
        @staticmethod
        def forward(ctx, weight, strength):
            ctx.save_for_backward(weight)
            ctx.strength = strength
            return 0.5 * strength * weight.pow(2).sum()

        @staticmethod
        def backward(ctx, grad):
            (weight,) = ctx.saved_tensors
            return 2.0 * grad * ctx.strength * weight, None

    def smooth_value(self, weight, params):
        return self._Half.apply(weight, float(params["strength"]))


class ThreadGrabber(GoodL1):
    """Sets torch's threads for the whole process from inside its value."""

    name = "thread_grabber"

    def nonsmooth_value(self, weight, params):
        torch.set_num_threads(3)
        return super().nonsmooth_value(weight, params)


class FloatOnlyPenalty(GoodL1):
    """Breaks when hyperparameters arrive as tensors."""

    def nonsmooth_value(self, weight, params):
        s = params["strength"]
        return (s if isinstance(s, float) else 0.0) * weight.abs().sum()


class MisdeclaredNet(GoodL1):
    """A correct lasso that says it is twice as strong an elastic net as it is."""

    name = "misdeclared_net"

    def elastic_net(self, params):
        return 2 * float(params["strength"]), 0.0


class L1AsRidge(GoodL1):
    """A correct lasso that calls itself a ridge (no L1 part, yet a prox)."""

    name = "l1_as_ridge"

    def elastic_net(self, params):
        return 0.0, float(params["strength"])


@pytest.mark.parametrize(
    "plugin, check",
    [
        (MisdeclaredNet, "elastic_net"),
        (L1AsRidge, "elastic_net"),
        (IdentityProx, "prox_minimises"),
        (ProxIgnoresStep, "prox_identity"),
        (ProxGrows, "prox_shrinks"),
        (ElementwiseProxForRowNorms, "prox_minimises"),
        (LogPenalty, "value_finite"),
        (SqrtPenalty, "gradient"),
        (DetachedPenalty, "gradient"),
        (SmallRidgeGradTwice, "gradient"),  # a factor 2 at strengths of 1e-7 to 2e-5 passed under an absolute floor
        (HiddenNonsmooth, "value_finite"),
        (FloatOnlyPenalty, "tensor_hyperparameters"),
    ],
)
def test_broken_penalty_fails_the_matching_check(plugin, check):
    assert check in failed_checks(plugin)
    with pytest.raises(ContractError) as info:
        check_plugin(plugin)
    assert isinstance(info.value, AssertionError)
    assert f"'{plugin.name}'" in str(info.value) and plugin.__qualname__ in str(info.value)
    assert check == info.value.check or check in info.value.others


def test_the_failing_prox_is_reported_with_its_objective_values():
    reason = results_of(IdentityProx)["prox_minimises"].reason
    assert "does not minimise" in reason and "step" in reason


# --- interface, name and search space ------------------------------------------------


class NotAPlugin:
    name = "duck"
    description = "quacks like a penalty"
    search_space = {}

    def smooth_value(self, weight, params):
        return weight.sum()


class NoSmoothValue(Penalty):
    name = "nosmooth"
    description = "forgot smooth_value"


class ProxWithoutNonsmooth(Penalty):
    name = "half"
    description = "has_prox but no nonsmooth_value"
    has_prox = True

    def smooth_value(self, weight, params):
        return weight.new_zeros(())

    def prox(self, weight, step, params):
        return weight


class BadName(GoodL1):
    name = "good l1, really"


class EmptyName(GoodL1):
    name = ""


class NoDescription(GoodL1):
    description = "   "


class UpsideDownSpace(GoodL1):
    search_space = {"strength": Float(1.0, 0.1, default=0.5)}


class LogFromZeroSpace(GoodL1):
    search_space = {"strength": Float(0.0, 1.0, default=0.1, log=True)}


class NeedsArguments(GoodL1):
    def __init__(self, scale):
        self.scale = scale


@pytest.mark.parametrize(
    "plugin, check, words",
    [
        (NoSmoothValue, "interface", "smooth_value"),
        (ProxWithoutNonsmooth, "interface", "nonsmooth_value"),
        (NeedsArguments, "interface", "no arguments"),
        (BadName, "name", "identifier-like"),
        (EmptyName, "name", "empty"),
        (NoDescription, "description", "no description"),
        (UpsideDownSpace, "search_space", "greater than high"),
        (LogFromZeroSpace, "search_space", "log-scale"),
    ],
)
def test_declaration_errors_fail_the_matching_check(plugin, check, words):
    results = results_of(plugin)
    assert results[check].failed and words in results[check].reason
    if check in ("interface", "search_space"):  # what depends on it is skipped, with the reason
        assert results["prox_minimises"].status == "skip" and "needs" in results["prox_minimises"].reason


def test_not_a_subclass_fails_interface():
    with pytest.raises(ContractError, match="interface") as info:
        check_plugin(NotAPlugin)
    assert "NotAPlugin" in str(info.value)
    results = results_of(NotAPlugin, kind="penalty")
    assert results["interface"].failed and "not a subclass of tuner.Penalty" in results["interface"].reason


def test_name_must_equal_the_entry_point_name():
    assert results_of(GoodL1, name="good_l1")["name"].passed
    result = results_of(GoodL1, name="lasso")["name"]
    assert result.failed and "'good_l1' differs from its entry-point name 'lasso'" in result.reason
    with pytest.raises(ContractError, match="name"):
        check_penalty(GoodL1, name="lasso")


def test_a_penalty_is_not_an_optimizer():
    results = results_of(GoodL1, kind="optimizer")
    assert results["interface"].failed and "tuner.Optimizer" in results["interface"].reason


# --- each broken optimizer fails the matching check ----------------------------------


class Uphill(GoodSGD):
    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=float(params["lr"]), maximize=True)


class Frozen(GoodSGD):
    """Steps so small that nothing changes."""

    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=float(params["lr"]) * 1e-9)


class ForgetsIntercept(GoodSGD):
    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD([list(param_groups)[0]], lr=float(params["lr"]))


class ReturnsAList(GoodSGD):
    def build(self, param_groups, params, prox=None):
        return list(param_groups)


class BadProxMode(GoodSGD):
    prox_mode = "sometimes"


class ZeroStepSize(GoodSGD):
    def step_size(self, optimizer):
        return 0.0


class InternalIgnoresProx(Optimizer):
    """Says it applies the prox itself (like FISTA) but never does: no exact zeros."""

    name = "fake_fista"
    description = "Full-batch gradient descent that drops the prox."
    search_space = {"lr": Float(0.1, 2.0, default=1.0)}
    full_batch = True
    prox_mode = "internal"

    def build(self, param_groups, params, prox=None):
        return torch.optim.LBFGS([p for g in param_groups for p in g["params"]], lr=float(params["lr"]), max_iter=20)


class DivergesAtItsBound(GoodSGD):
    """Fine at its default, but its search range reaches step sizes that overflow float32."""

    search_space = {"lr": Float(1e-3, 1e25, default=0.3, log=True)}

    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=float(params["lr"]) ** 2)


class _KeepsItsLr(torch.optim.SGD):
    """SGD that steps with the lr it was built with, whatever param_groups say."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.built_lr = lr

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(self.built_lr * p.grad)


class FrozenLr(GoodSGD):
    """The trainer's schedule and plateau drops write param_groups' lr, which this never reads."""

    def build(self, param_groups, params, prox=None):
        return _KeepsItsLr(list(param_groups), float(params["lr"]))


class MiniBatchQuasiNewton(GoodSGD):
    """Declares itself quasi-Newton, which a default study reads as an exact full-batch solver."""

    quasi_newton = True


@pytest.mark.parametrize(
    "plugin, check, words",
    [
        (FrozenLr, "follows_lr", "step() must read group['lr'] at every step"),
        (MiniBatchQuasiNewton, "prox_mode", "quasi_newton is for full-batch optimizers"),
        (Uphill, "decreases_loss", "should decrease"),
        (Frozen, "decreases_loss", "should decrease"),
        (ForgetsIntercept, "build", "intercept"),
        (ReturnsAList, "build", "not a torch.optim.Optimizer"),
        (BadProxMode, "prox_mode", "sometimes"),
        (ZeroStepSize, "build", "step_size"),
        (InternalIgnoresProx, "decreases_loss", "exact"),
        (DivergesAtItsBound, "build", "at lr=1e+25"),  # the reason names the setting
    ],
)
def test_broken_optimizer_fails_the_matching_check(plugin, check, words):
    results = results_of(plugin)
    assert results[check].failed and words in results[check].reason, results[check]
    with pytest.raises(ContractError, match=check):
        check_optimizer(plugin)


def test_checks_leave_torch_threads_as_they_were():
    before = torch.get_num_threads()
    run_checks(GoodSGD)
    assert torch.get_num_threads() == before


# --- installed plugins and the CLI command ------------------------------------------


def test_run_installed_checks_reports_origin():
    (report,) = run_installed_checks("elasticnet")
    assert (report.group, report.distribution) == ("penalty", "logreg-tuner")
    assert report.results[0].check == "load" and report.ok


def test_unknown_plugin_lists_usable_ones():
    with pytest.raises(tuner.PluginError, match="Usable penalties: .*elasticnet.*usable optimizers: .*fista"):
        run_installed_checks("no_such_plugin")


def test_cli_check_text_and_json():
    runner = CliRunner()
    text = runner.invoke(cli, ["plugins", "check", "l1"])
    assert text.exit_code == 0, text.output
    assert "PASS  prox_minimises" in text.output and "FAIL" not in text.output
    js = runner.invoke(cli, ["plugins", "check", "lbfgs", "--group", "optimizer", "--json"])
    assert js.exit_code == 0, js.output
    data = json.loads(js.output)
    assert data["ok"] is True and data["plugins"][0]["distribution"] == "logreg-tuner"
    assert [c["check"] for c in data["plugins"][0]["checks"]] == ["load", *OPTIMIZER_CHECKS]


def test_cli_check_unknown_name_and_wrong_group():
    runner = CliRunner()
    unknown = runner.invoke(cli, ["plugins", "check", "nope"])
    assert unknown.exit_code == 1 and "Unknown plugin 'nope'" in unknown.output and "l2" in unknown.output
    wrong_group = runner.invoke(cli, ["plugins", "check", "l1", "--group", "optimizer"])
    assert wrong_group.exit_code == 1 and "Unknown optimizer 'l1'. Usable optimizers:" in wrong_group.output


class FullBatchAfterStep(Optimizer):
    """Full-batch with an after-step prox, which the trainer would never apply."""

    name = "fb_after"
    description = "Full-batch L-BFGS that claims after-step proxes."
    search_space = {"lr": Float(0.1, 1.0, default=1.0)}
    full_batch = True
    prox_mode = "after_step"

    def build(self, param_groups, params, prox=None):
        return torch.optim.LBFGS([p for g in param_groups for p in g["params"]], lr=float(params["lr"]))


def test_full_batch_optimizers_cannot_rely_on_after_step_proxes():
    result = results_of(FullBatchAfterStep)["prox_mode"]
    assert result.failed and "mini-batch training only" in result.reason


# --- trials side by side (supports_batch) ---------------------------------------------


class BatchedL1(GoodL1):
    """A correct lasso side by side: values reduce over the last two dimensions only."""

    name = "batched_l1"
    supports_batch = True
    elementwise_prox = True

    def smooth_value(self, weight, params):
        return weight.new_zeros(weight.shape[:-2])  # one zero per trial (a 0-dim tensor alone)

    def nonsmooth_value(self, weight, params):
        return (params["strength"] * weight.abs()).sum(dim=(-2, -1))


class SummedOverTrials(Penalty):
    """Ridge whose value sums over every trial: right alone, wrong side by side."""

    name = "summed_ridge"
    description = "Ridge summed over the trial axis."
    search_space = {"strength": STRENGTH}
    supports_batch = True

    def smooth_value(self, weight, params):
        return (params["strength"] * 0.5 * weight.pow(2)).sum().expand(weight.shape[:-2])


class OneValueForAll(SummedOverTrials):
    """Returns one number for K trials."""

    name = "one_value"

    def smooth_value(self, weight, params):
        return (params["strength"] * 0.5 * weight.pow(2)).sum()


class BatchedSGD(GoodSGD):
    name = "batched_sgd"
    supports_batch = True

    def build(self, param_groups, params, prox=None):
        return PerTrialSGD(list(param_groups), lr=params["lr"])


class SharedLr(BatchedSGD):
    """One learning rate for every trial (the largest): the trials are no longer independent."""

    name = "shared_lr"

    def build(self, param_groups, params, prox=None):
        lr = params["lr"]
        return PerTrialSGD(list(param_groups), lr=float(lr.max()) if isinstance(lr, torch.Tensor) else lr)


BATCH_CHECKS = ("batch_values", "batch_fit", "batch_divergence")


def test_batch_checks_run_after_the_single_trial_ones():
    assert PENALTY_CHECKS[-3:] == BATCH_CHECKS and OPTIMIZER_CHECKS[-2:] == BATCH_CHECKS[1:]


def test_trial_settings_differ_and_stay_in_the_space():
    from tuner.testing._batch import trial_settings

    space = {"lr": Float(1e-3, 1.0, default=0.1, log=True), "m": Float(0.0, 0.9, default=0.5),
             "flag": Categorical([True, False], default=True), "mode": Categorical(["a", "b"], default="a")}
    settings = trial_settings(space)
    assert len(settings) == 3 and settings[0] == {"lr": 0.1, "m": 0.5, "flag": True, "mode": "a"}
    assert len({s["lr"] for s in settings}) == 3 and all(1e-3 <= s["lr"] <= 1.0 for s in settings)
    assert {s["flag"] for s in settings} == {True, False} and {s["mode"] for s in settings} == {"a"}


def test_a_correct_batched_penalty_and_optimizer_pass_and_leave_the_global_seed_alone():
    for plugin, partners in ((BatchedL1, "with sgd, adam, fista"), (BatchedSGD, "with l2, elasticnet")):
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        results = results_of(plugin)
        assert torch.equal(torch.rand(3), expected)  # fit_many's seeding stays inside the checks
        assert all(results[c].passed for c in BATCH_CHECKS if c in results), results
        assert partners in results["batch_fit"].reason


@pytest.mark.parametrize("plugin, words, fit_words", [
    (SummedOverTrials, "does it reduce over the trial axis?", "between side by side and alone"),
    (OneValueForAll, "not one value per trial (shape (3,))", "returned one value for 3 trials side by side"),
])
def test_a_penalty_that_mixes_trials_fails_batch_values_and_batch_fit(plugin, words, fit_words):
    results = results_of(plugin)
    assert results["batch_values"].failed and words in results["batch_values"].reason
    assert results["batch_fit"].failed and fit_words in results["batch_fit"].reason, results["batch_fit"]
    assert results["value_finite"].passed  # alone it is a correct ridge
    with pytest.raises(ContractError, match="batch_values.*also failed: batch_fit") as info:
        check_plugin(plugin)
    assert f"'{plugin.name}'" in str(info.value) and plugin.__qualname__ in str(info.value)


def test_an_optimizer_with_one_shared_lr_fails_fit_and_divergence():
    results = results_of(SharedLr)
    assert results["decreases_loss"].passed  # one trial at a time it is plain SGD
    fit, diverge = results["batch_fit"], results["batch_divergence"]
    assert fit.failed and "between side by side and alone" in fit.reason, fit
    # the huge lr of one trial became everyone's: its neighbours diverged, alone they train
    assert diverge.failed and "side by side (TrainingDivergedError: " in diverge.reason, diverge
    assert "alone (a fitted model)" in diverge.reason
    with pytest.raises(ContractError, match="'shared_lr'.*batch_step.*also failed: batch_fit, batch_divergence"):
        check_optimizer(SharedLr)


class _TwoPathSGD(torch.optim.Optimizer):
    """Plain SGD alone; side by side (a (K, 1, 1) lr) it moves by ``scale`` times the step."""

    def __init__(self, params, lr, scale):
        super().__init__(params, {"lr": lr})
        self.scale = scale

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr = group["lr"]
            factor = self.scale(lr) if isinstance(lr, torch.Tensor) else lr
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(factor * p.grad)


class BatchIgnoresLr(BatchedSGD):
    """Side by side, every trial gets lr 0.01 whatever it asked for."""

    name = "batch_ignores_lr"

    def build(self, param_groups, params, prox=None):
        return _TwoPathSGD(list(param_groups), params["lr"], lambda lr: 0.01)


class BatchBlowsUp(BatchedSGD):
    """Side by side every trial diverges (its step x 1e30); alone it is plain SGD."""

    name = "batch_blows_up"

    def build(self, param_groups, params, prox=None):
        return _TwoPathSGD(list(param_groups), params["lr"], lambda lr: lr * 1e30)


@pytest.mark.parametrize("plugin, words", [
    (BatchIgnoresLr, "between side by side and alone"),
    (BatchBlowsUp, "ended differently side by side (TrainingDivergedError"),
])
def test_the_side_by_side_path_is_held_to_the_one_trial_path(plugin, words):
    """"Alone" was fit_many with K = 1, which takes the side-by-side path too: a plugin whose
    batched code ignored lr, or diverged for every trial, passed every check."""
    results = results_of(plugin)
    assert results["decreases_loss"].passed and results["hyperparameters_used"].passed  # alone it is plain SGD
    assert results["batch_fit"].failed and words in results["batch_fit"].reason, results["batch_fit"]


def test_a_plugin_without_supports_batch_is_not_checked_side_by_side_and_fit_many_refuses_it():
    from sklearn.datasets import make_classification

    from tuner.train import TrainConfig, fit_many

    for plugin, checks in ((GoodL1, BATCH_CHECKS), (GoodSGD, BATCH_CHECKS[1:])):
        results = results_of(plugin)
        for check in checks:
            assert results[check].status == "skip" and "supports_batch is False" in results[check].reason
    X, y = make_classification(n_samples=40, n_features=4, random_state=0)
    with pytest.raises(tuner.ConfigError, match=r"The pair good_l1:sgd does not support trials side by side"):
        fit_many(X, y, 2, GoodL1(), [{"strength": 1e-3}] * 2, tuner.optimizers.get("sgd"),
                 [{"lr": 0.1, "momentum": 0.0, "nesterov": False}] * 2, TrainConfig(epochs=1, device="cpu"))


def test_cli_check_runs_the_batch_checks_for_the_builtins():
    result = CliRunner().invoke(cli, ["plugins", "check", "l2"])
    assert result.exit_code == 0, result.output
    for check in BATCH_CHECKS:
        assert f"PASS  {check}" in result.output
    assert "with sgd, lbfgs" in result.output


# --- the paths a study takes: tensor steps, per-coordinate steps, float32 ----------------


class FloatStepL1(GoodL1):
    """An elementwise lasso whose prox turns the step into a number: fine with SGD, a crash with
    Adam's per-weight steps (the plugin author's trial of issue 11)."""

    name = "float_step_l1"
    elementwise_prox = True

    def prox(self, weight, step, params):
        return soft(weight, float(step) * params["strength"])


class ScalarStepForAll(GoodL1):
    """Takes per-weight steps without an error but uses only the first one for every weight."""

    name = "first_step_l1"
    elementwise_prox = True

    def prox(self, weight, step, params):
        t = step.flatten()[0] if isinstance(step, torch.Tensor) else step
        return soft(weight, t * params["strength"])


class Float64Prox(GoodL1):
    """Computes its prox in float64 and returns it so: float32 training would change dtype."""

    name = "float64_prox"

    def prox(self, weight, step, params):
        return soft(weight.double(), step * params["strength"])


class ElementwiseL1(GoodL1):
    name = "elementwise_l1"
    elementwise_prox = True


@pytest.mark.parametrize("plugin, words", [
    (FloatStepL1, ["per-weight steps", "raised", "no float(step)"]),
    (ScalarStepForAll, ["each weight must get its own step"]),
    (Float64Prox, ["torch.float64", "torch.float32"]),
])
def test_a_prox_that_breaks_on_the_trainers_steps_fails_prox_steps(plugin, words):
    results = results_of(plugin)
    assert results["prox_steps"].failed, results["prox_steps"]
    for w in words:
        assert w in results["prox_steps"].reason, (w, results["prox_steps"].reason)
    with pytest.raises(ContractError, match="prox_steps"):
        check_plugin(plugin)


def test_an_elementwise_prox_that_takes_tensor_steps_passes_prox_steps():
    for plugin in (ElementwiseL1, GoodL1, BatchedL1):
        result = results_of(plugin)["prox_steps"]
        assert result.passed, result
    assert "per-weight steps" in results_of(ElementwiseL1)["prox_steps"].reason
    assert results_of(tuner.penalties.get("l2"))["prox_steps"].status == "skip"


class AdamWithCoordinateSteps(AdamWithoutCoordinateSteps):
    name = "adam_coord"

    def coordinate_step_size(self, optimizer, param):
        state = optimizer.state.get(param, {})
        if "exp_avg_sq" not in state:
            return None
        group = next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))
        correction = 1 - group["betas"][1] ** float(state["step"])
        return group["lr"] / ((state["exp_avg_sq"] / correction).sqrt() + group["eps"])


class MomentumWithPlainStep(GoodSGD):
    """Heavy-ball SGD that keeps the default step_size ``lr``: at a fixed point it moves
    ``lr / (1 - momentum)`` per unit gradient, ten times what its prox shrinks."""

    name = "momentum_plain_step"

    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=float(params["lr"]), momentum=0.9)


def test_an_adam_like_optimizer_needs_coordinate_step_size():
    results = results_of(AdamWithoutCoordinateSteps)
    step = results["prox_step"]
    assert step.failed and "differ by coordinate" in step.reason and "coordinate_step_size" in step.reason, step
    zeros = results["decreases_loss"]
    assert zeros.failed and "not exactly zero" in zeros.reason and "coordinate_step_size" in zeros.reason, zeros
    fixed = results_of(AdamWithCoordinateSteps)
    assert fixed["prox_step"].passed and "per coordinate" in fixed["prox_step"].reason, fixed["prox_step"]
    assert fixed["decreases_loss"].passed and "exact zeros" in fixed["decreases_loss"].reason, fixed["decreases_loss"]


class MomentumSearchedWithPlainStep(GoodSGD):
    """The same mistake where momentum is a hyperparameter whose default, 0, hides it."""

    name = "momentum_searched"
    search_space = {**GoodSGD.search_space, "momentum": Float(0.0, 0.99, default=0.0)}

    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=float(params["lr"]), momentum=float(params["momentum"]))


def test_a_proximal_step_that_is_not_the_step_taken_fails_prox_step():
    result = results_of(MomentumWithPlainStep)["prox_step"]
    assert result.failed and "step_size()" in result.reason and "wrong strength" in result.reason, result
    assert results_of(GoodSGD)["prox_step"].passed  # plain SGD moves lr per unit gradient
    # checked at every setting a study may try, not at the defaults only (it passed at momentum 0)
    searched = results_of(MomentumSearchedWithPlainStep)["prox_step"]
    assert searched.failed and "at momentum=0.99" in searched.reason and "wrong strength" in searched.reason, searched


def test_the_builtin_adam_gives_exact_zeros_with_an_l1_penalty():
    """What a study does with adam and l1: exact zeros, through the per-coordinate proximal step."""
    from sklearn.datasets import make_classification

    from tuner.train import TrainConfig, fit

    X, y = make_classification(n_samples=300, n_features=20, n_informative=3, random_state=0)
    result = fit(X, y, 2, tuner.penalties.get("l1"), {"strength": 0.05}, tuner.optimizers.get("adam"),
                 {"lr": 0.01, "beta1": 0.9, "beta2": 0.999}, TrainConfig(epochs=30, device="cpu", seed=0))
    assert (result.weight == 0).sum() >= 10


# --- the quick subset a study runs ---------------------------------------------------------

@pytest.fixture
def breakers(tmp_path, monkeypatch):
    """A distribution whose plugins load and pass the registry but break in a study."""
    from _broken_plugins import forget, install_distribution

    from tuner._registry import AUTOLOAD_ENV

    site = install_distribution(tmp_path / "site", "tuner_test_breakers", {
        "penalties": {"float_step": "FloatStepLasso"}, "optimizers": {"adam_no_coord": "AdamWithoutCoordinateSteps"}},
        version="0.3")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    tuner.penalties.reload()
    tuner.optimizers.reload()
    yield site
    monkeypatch.undo()
    forget("tuner_test_breakers")
    tuner.penalties.reload()
    tuner.optimizers.reload()


def test_failing_plugins_names_the_installed_plugins_a_study_must_leave_out(breakers):
    from tuner.testing import failing_plugins

    assert "float_step" in tuner.penalties.names() and "adam_no_coord" in tuner.optimizers.names()
    penalties = failing_plugins("penalty", [*tuner.penalties.names(), "no_such_penalty"])
    assert list(penalties) == ["float_step"]
    assert penalties["float_step"].startswith("fails the contract check 'prox_steps': ")
    assert "\n" not in penalties["float_step"] and "per-weight steps" in penalties["float_step"]
    optimizers = failing_plugins("optimizer", tuner.optimizers.names())
    assert list(optimizers) == ["adam_no_coord"] and "'prox_step'" in optimizers["adam_no_coord"]
    again = failing_plugins("optimizer", ["adam_no_coord", "sgd"])
    assert again["adam_no_coord"] is optimizers["adam_no_coord"]  # cached per process: not run again
    with pytest.raises(tuner.PluginError, match="'penalty' or 'optimizer'"):
        failing_plugins("penalties", ["l1"])


def test_failing_plugins_is_quick_and_passes_the_builtins():
    import time

    from tuner.testing import failing_plugins
    from tuner.testing._installed import _QUICK_CACHE

    _QUICK_CACHE.clear()
    fit_once = tuner.optimizers.get("sgd")  # the first backward of a process pays torch's set-up
    run_checks(fit_once)
    started = time.perf_counter()
    assert failing_plugins("penalty", tuner.penalties.names()) == {}
    assert failing_plugins("optimizer", tuner.optimizers.names()) == {}
    # tens of milliseconds a plugin on an idle machine; generous for a busy one
    assert time.perf_counter() - started < 0.3 * (len(tuner.penalties.names()) + len(tuner.optimizers.names()))


class FixedLR(GoodSGD):
    """Declares a learning rate and trains every trial at 0.5."""

    name = "fixed_lr"

    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=0.5)


class StrengthBlindRidge(Penalty):
    """Declares a strength and always penalises with 0.01."""

    name = "strength_blind"
    description = "Ridge that ignores its strength."
    search_space = {"strength": STRENGTH}

    def smooth_value(self, weight, params):
        return 0.01 / 2 * (weight ** 2).sum(dim=(-2, -1))


def test_a_hyperparameter_the_plugin_ignores_fails_hyperparameters_used():
    """A study searches what a plugin declares: one it ignores is searched for nothing, and the
    trials report values that were never used (both passed every check)."""
    fixed = results_of(FixedLR)["hyperparameters_used"]
    assert fixed.failed and "'lr' changed nothing" in fixed.reason and "build()" in fixed.reason, fixed
    blind = results_of(StrengthBlindRidge)["hyperparameters_used"]
    assert blind.failed and "'strength' changed nothing" in blind.reason, blind
    assert results_of(GoodSGD)["hyperparameters_used"].passed
    assert results_of(tuner.penalties.get("elasticnet"))["hyperparameters_used"].passed


class GroupLasso(GoodL1):
    """A correct group lasso (rows are groups): its prox shrinks each row by its norm."""

    name = "group_lasso"
    description = "Group lasso over rows."

    def nonsmooth_value(self, weight, params):
        return params["strength"] * weight.norm(dim=-1).sum(dim=-1)

    def prox(self, weight, step, params):
        norms = weight.norm(dim=-1, keepdim=True)
        return weight * torch.clamp(1 - step * params["strength"] / norms.clamp(min=1e-300), min=0.0)


class GroupLassoClaimingElementwise(GroupLasso):
    name = "group_lasso_elementwise"
    elementwise_prox = True


def test_a_coupled_prox_claiming_elementwise_fails_prox_steps():
    """With Adam's per-weight steps its prox would zero part of a group: it passed, since the check
    compared only weights sharing a step."""
    claimed = results_of(GroupLassoClaimingElementwise)["prox_steps"]
    assert claimed.failed and "changing one weight changes the prox of others" in claimed.reason, claimed
    assert "declare elementwise_prox = False" in claimed.reason
    assert results_of(GroupLasso)["prox_steps"].passed
    lasso = results_of(tuner.penalties.get("l1"))["prox_steps"]
    assert lasso.passed and "that weight alone" in lasso.reason, lasso


class L1InSmoothValue(Penalty):
    """An L1 penalty written as the smooth part, with no prox: no solver gives its exact zeros."""

    name = "l1_in_smooth"
    description = "Lasso as a smooth part."
    search_space = {"strength": STRENGTH}

    def smooth_value(self, weight, params):
        return params["strength"] * weight.abs().sum(dim=(-2, -1))


def test_a_kink_at_zero_in_the_smooth_part_fails_gradient():
    """Central differences at zero equal the subgradient 0 there, so it passed the gradient check."""
    result = results_of(L1InSmoothValue)["gradient"]
    assert result.failed and "has a kink at zero weights" in result.reason and "nonsmooth_value" in result.reason, result
    assert results_of(tuner.penalties.get("l2"))["gradient"].passed


def test_a_plugin_that_changes_torchs_global_state_fails_and_the_state_is_restored():
    """The kit set one thread around its checks and put the count back afterwards, so a plugin
    that changed it for the whole process passed."""
    threads = torch.get_num_threads()
    results = results_of(ThreadGrabber)
    first = next(r for r in results.values() if r.failed)
    assert "changed torch's global state (torch.set_num_threads(3))" in first.reason, first
    assert torch.get_num_threads() == threads


def test_what_a_study_checks_catches_a_wrong_prox_or_gradient_a_write_to_params_and_a_shared_norm(tmp_path, monkeypatch):
    """A review's third-party plugins: a prox thresholding twice too far and a doubled gradient
    passed the quick checks (the prox won a default study); a penalty that wrote to its params
    passed every check and then failed every trial; SGD clipped by one norm over all trials
    passed the quick side-by-side check, and side by side its trials' values moved."""
    from _broken_plugins import forget, install_distribution

    from tuner._registry import AUTOLOAD_ENV
    from tuner.testing import failing_plugins, side_by_side_failures
    from tuner.testing._installed import _QUICK_CACHE

    site = install_distribution(tmp_path / "site", "tuner_test_review", {
        "penalties": {"twice_threshold": "TwiceThresholdLasso", "double_gradient": "DoubleGradientRidge",
                      "writes_params": "WritesItsParams", "pops_params": "PopsItsParams"},
        "optimizers": {"norm_clipped_sgd": "NormClippedSGD"}})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    tuner.penalties.reload()
    tuner.optimizers.reload()
    _QUICK_CACHE.clear()
    try:
        failing = failing_plugins("penalty", tuner.penalties.names())
        assert sorted(failing) == ["double_gradient", "pops_params", "twice_threshold", "writes_params"], failing
        assert "'prox_minimises'" in failing["twice_threshold"] and "'gradient'" in failing["double_gradient"]
        assert all("the hyperparameters are read-only" in failing[n] for n in ("writes_params", "pops_params"))
        apart = side_by_side_failures("optimizer", ["norm_clipped_sgd", "sgd"])
        assert list(apart) == ["norm_clipped_sgd"] and "'batch_divergence'" in apart["norm_clipped_sgd"], apart
    finally:
        monkeypatch.undo()
        forget("tuner_test_review")
        tuner.penalties.reload()
        tuner.optimizers.reload()
        _QUICK_CACHE.clear()


def test_a_correct_penalty_whose_optimum_is_not_unique_passes_batch_fit():
    """MCP is flat beyond gamma * strength and a three-class softmax is unchanged by one shift of
    every class: FISTA side by side and alone stopped at weights 0.003 apart with objectives
    equal to 1e-16, and batch_fit failed a correct plugin."""
    from _broken_plugins import MinimaxConcave

    results = results_of(MinimaxConcave)
    failed = {name: r.reason for name, r in results.items() if r.failed}
    assert not failed, failed
    assert results["batch_fit"].passed


def test_a_full_batch_solver_that_pulls_trials_toward_each_other_fails_batch_fit():
    """With equal objectives accepted as one optimum up to 1e-9, FISTA pulling each trial 1e-4
    of the way toward the trials' mean after every call (weights 5e-5 apart, objectives 1e-9
    apart) passed batch_fit and batch_divergence: only rounding-level equality may stand for a
    flat set of optima."""
    from logreg_tuner_plugins._batched_solvers import BatchedFISTA
    from logreg_tuner_plugins.optimizers import FISTAOptimizer

    class Pulling(BatchedFISTA):
        def step(self, closure):
            out = super().step(closure)
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.add_(1e-4 * (p.mean(0, keepdim=True) - p))
            return out

    class PullingFista(FISTAOptimizer):
        name = "pulling_fista"
        description = "FISTA pulling trials toward their mean."
        prox_mode = "unsupported"  # paired with L2 alone: no exact zeros to tell it apart

        def build(self, param_groups, params, prox=None):
            groups = list(param_groups)
            if groups[0]["params"][0].dim() != 3:
                return super().build(groups, params, prox)
            return Pulling(groups, prox=prox, lr=params["lr"], max_iter=50, tolerance_grad=1e-9)

    results = results_of(PullingFista)
    for check in ("batch_fit", "batch_divergence"):
        assert results[check].failed and "between side by side and alone" in results[check].reason, results[check]
