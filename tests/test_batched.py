"""Trials side by side (tuner.train.fit_many): K trials in one pass equal K runs alone."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.preprocessing import StandardScaler

from tuner._registry import optimizers, penalties
from tuner.errors import TrainingDivergedError
from tuner.train import Callback, FitResult, TrainConfig, TrainingState, auto_batch_size, fit, fit_many


def _cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _alone(X: Any, y: np.ndarray, n_classes: int, pen: str, pps: list[dict], opt: str, ops: list[dict],
           config: TrainConfig, **kw: Any) -> list[Any]:
    out = []
    for pp, op in zip(pps, ops):
        try:
            out.append(fit(X, y, n_classes, penalties.get(pen), pp, optimizers.get(opt), op, config, **kw))
        except Exception as exc:  # noqa: BLE001
            out.append(exc)
    return out


@pytest.mark.parametrize("opt,ops", [
    ("sgd", [{"lr": 0.5, "momentum": 0.9, "nesterov": True}, {"lr": 0.05, "momentum": 0.0, "nesterov": False},
             {"lr": 0.2, "momentum": 0.5, "nesterov": False}]),
    ("adam", [{"lr": 0.01, "beta1": 0.9, "beta2": 0.999}, {"lr": 0.1, "beta1": 0.5, "beta2": 0.99},
              {"lr": 0.001, "beta1": 0.0, "beta2": 0.9}]),
    ("rmsprop", [{"lr": 0.003, "alpha": 0.99, "momentum": 0.0}, {"lr": 0.01, "alpha": 0.9, "momentum": 0.5},
                 {"lr": 0.001, "alpha": 0.8, "momentum": 0.9}]),
])
@pytest.mark.parametrize("pen", ["l2", "elasticnet"])
@pytest.mark.parametrize("sparse", [False, True])
def test_side_by_side_equals_one_at_a_time(opt: str, ops: list[dict], pen: str, sparse: bool) -> None:
    X, y = _cancer()
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    pps = [{"strength": s, "l1_ratio": r} for s, r in [(1e-3, 0.5), (1e-2, 0.2), (1e-4, 0.9)]]
    if pen == "l2":
        pps = [{"strength": p["strength"]} for p in pps]
    config = TrainConfig(epochs=15, dtype="float64", seed=3)
    together = fit_many(X, y, 2, penalties.get(pen), pps, optimizers.get(opt), ops, config)
    alone = _alone(X, y, 2, pen, pps, opt, ops, config)
    for a, b in zip(together, alone):
        assert isinstance(a, FitResult) and isinstance(b, FitResult)
        np.testing.assert_allclose(a.weight, b.weight, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(a.intercept, b.intercept, rtol=1e-7, atol=1e-9)
        assert a.epochs_run == b.epochs_run and a.stop_reason == b.stop_reason
        assert [h["train_loss"] for h in a.history] == pytest.approx([h["train_loss"] for h in b.history], rel=1e-9)
        if pen == "elasticnet":
            assert np.array_equal(a.weight == 0, b.weight == 0)  # the same exact zeros


def test_multinomial_trials_side_by_side_with_validation() -> None:
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    pps = [{"strength": s, "l1_ratio": 0.5} for s in (1e-3, 1e-2)]
    ops = [{"lr": lr, "beta1": 0.9, "beta2": 0.999} for lr in (0.05, 0.01)]
    config = TrainConfig(epochs=20, dtype="float64", monitor="val")
    kw = dict(X_val=X[::3], y_val=y[::3])
    together = fit_many(X, y, 3, penalties.get("elasticnet"), pps, optimizers.get("adam"), ops, config, **kw)
    alone = _alone(X, y, 3, "elasticnet", pps, "adam", ops, config, **kw)
    for a, b in zip(together, alone):
        assert a.weight.shape == (4, 3)
        np.testing.assert_allclose(a.weight, b.weight, rtol=1e-7, atol=1e-9)
        assert [h["val_loss"] for h in a.history] == pytest.approx([h["val_loss"] for h in b.history], rel=1e-9)
        assert a.best_epoch == b.best_epoch


def test_a_diverging_trial_never_poisons_its_neighbours() -> None:
    X, y = _cancer()
    pps = [{"strength": 1e-3}] * 3
    ops = [{"lr": 0.05, "momentum": 0.9, "nesterov": True}, {"lr": 1e6, "momentum": 0.99, "nesterov": True},
           {"lr": 0.01, "momentum": 0.0, "nesterov": False}]
    config = TrainConfig(epochs=10, dtype="float64")
    together = fit_many(X, y, 2, penalties.get("l2"), pps, optimizers.get("sgd"), ops, config)
    assert isinstance(together[1], TrainingDivergedError)
    alone = _alone(X, y, 2, "l2", [pps[0], pps[2]], "sgd", [ops[0], ops[2]], config)
    for a, b in zip([together[0], together[2]], alone):
        np.testing.assert_allclose(a.weight, b.weight, rtol=1e-9, atol=1e-12)


class _StopAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch, self.seen = epoch, []

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        self.seen.append(int(logs["epoch"]))
        if logs["epoch"] == self.epoch:
            raise RuntimeError(f"pruned at {self.epoch}")


def test_a_pruned_trial_stops_and_the_others_go_on() -> None:
    X, y = _cancer()
    pps = [{"strength": 1e-3}, {"strength": 1e-2}]
    ops = [{"lr": 0.01, "beta1": 0.9, "beta2": 0.999}] * 2
    config = TrainConfig(epochs=12, dtype="float64", patience=100)
    cbs = [_StopAt(3), _StopAt(-1)]
    out = fit_many(X, y, 2, penalties.get("l2"), pps, optimizers.get("adam"), ops, config, callbacks=[[c] for c in cbs])
    assert isinstance(out[0], RuntimeError) and str(out[0]) == "pruned at 3"
    assert cbs[0].seen == [1, 2, 3] and cbs[1].seen == list(range(1, 13))
    (alone,) = _alone(X, y, 2, "l2", pps[1:], "adam", ops[1:], config)
    np.testing.assert_allclose(out[1].weight, alone.weight, rtol=1e-9, atol=1e-12)


class _InterruptAt(Callback):
    """A stop request (Ctrl-C, SIGTERM in a study) at an epoch's end."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if state.epoch == self.epoch:
            raise KeyboardInterrupt("SIGTERM")


def test_an_interrupt_stops_the_trials_still_training_and_keeps_those_already_finished() -> None:
    """A study's SIGTERM while a group trained failed all its trials, the finished ones too: the
    interrupt escaped fit_many, then train_many raised it again."""
    from tuner.data import load_data, prepare
    from tuner.study import train_many

    X, y = _cancer()
    pps = [{"strength": 1e-6}, {"strength": 1.0}]  # the weak penalty trains for many epochs, the strong one few
    config = TrainConfig(epochs=60, dtype="float64")
    out = fit_many(X, y, 2, penalties.get("l2"), pps, optimizers.get("lbfgs"), [{}, {}], config,
                   callbacks=[[_InterruptAt(8)], []])
    assert isinstance(out[0], KeyboardInterrupt) and str(out[0]) == "SIGTERM"
    assert isinstance(out[1], FitResult) and out[1].stop_reason == "converged" and out[1].epochs_run < 8
    (alone,) = _alone(X, y, 2, "l2", pps[1:], "lbfgs", [{}], config)
    np.testing.assert_allclose(out[1].weight, alone.weight, rtol=1e-9, atol=1e-12)
    data = prepare(load_data(dataset="breast_cancer"), val_size=0.2, test_size=0.2, seed=0)
    config = TrainConfig(epochs=60, dtype="float64", patience=1, tol=1e-8)  # the strong penalty stops at epoch 2
    outcomes = train_many(data, "lbfgs", [("l2", pp, {}) for pp in pps], config, [[_InterruptAt(4)], []])
    assert isinstance(outcomes[0], KeyboardInterrupt)
    assert not isinstance(outcomes[1], BaseException) and outcomes[1].result.stop_reason == "converged"


def test_column_weights_train_each_trial_on_its_own_rows() -> None:
    """A 0/1 column of ``column_weight`` is that trial's training set (how CV folds run side by side)."""
    X, y = _cancer()
    rng = np.random.default_rng(0)
    masks = np.stack([rng.random(len(y)) < 0.7, rng.random(len(y)) < 0.5], axis=1)
    pps = [{"strength": 1e-2}] * 2
    ops = [{"lr": 0.05, "momentum": 0.9, "nesterov": True}] * 2
    config = TrainConfig(epochs=10, dtype="float64", batch_size=len(y))  # full batches: no shuffle to differ
    out = fit_many(X, y, 2, penalties.get("l2"), pps, optimizers.get("sgd"), ops, config,
                   column_weight=masks.astype(float))
    for k in range(2):
        rows = masks[:, k]
        (alone,) = _alone(X[rows], y[rows], 2, "l2", pps[:1], "sgd", ops[:1], config)
        np.testing.assert_allclose(out[k].weight, alone.weight, rtol=1e-8, atol=1e-10)
        assert out[k].objective == pytest.approx(alone.objective, rel=1e-9)


def test_auto_batch_size_gives_small_data_enough_steps() -> None:
    assert 341 / auto_batch_size(341) >= 20  # breast_cancer's training split: not two steps an epoch
    assert auto_batch_size(26_048) == 256
    assert auto_batch_size(1_000_000, "cuda") == 4096


@pytest.mark.parametrize("n_rows", [65_537, 395_216, 1_000_000, 10_000_000])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_auto_batch_size_keeps_large_data_to_few_steps(n_rows: int, device: str) -> None:
    """Past 256 steps of the device's usual batch, the batch grows (a power of two) so that an epoch
    stays within MAX_STEPS_PER_EPOCH steps, but no larger than needed for that."""
    from tuner.train._sizing import MAX_AUTO_BATCH, MAX_STEPS_PER_EPOCH

    size = auto_batch_size(n_rows, device)
    assert size & (size - 1) == 0
    assert math.ceil(n_rows / size) <= MAX_STEPS_PER_EPOCH
    if size > MAX_AUTO_BATCH[device]:  # grown: half as large would take too many steps
        assert math.ceil(n_rows / (size // 2)) > MAX_STEPS_PER_EPOCH
    assert auto_batch_size(395_216) == 2048  # kddcup99's training split on a CPU: 193 steps, not 1,544


MIXED_OPTIMIZERS = [
    ("adam", [{"lr": 0.01 * (k + 1), "beta1": 0.9, "beta2": 0.999} for k in range(5)]),
    ("rmsprop", [{"lr": 0.01 * (k + 1), "alpha": 0.9, "momentum": 0.0} for k in range(5)]),
    ("sgd", [{"lr": 0.05 * (k + 1), "momentum": 0.9, "nesterov": k % 2 == 0} for k in range(5)]),
    ("fista", [{"lr": 10.0 ** (k - 2)} for k in range(5)]),
    ("newton", [{} for _ in range(5)]),
]


@pytest.mark.parametrize("opt,ops", MIXED_OPTIMIZERS, ids=[o for o, _ in MIXED_OPTIMIZERS])
def test_trials_of_one_optimizer_with_different_penalties_share_a_pass(opt: str, ops: list[dict]) -> None:
    """The built-in penalties of a mixed group are one elastic net with per-trial L1 and L2 weights;
    every trial still ends where it would alone, L1 zeros included."""
    X, y = _cancer()
    names = ["l1", "l2", "none", "elasticnet", "l1"]
    pps = [{"strength": 1e-2}, {"strength": 1e-3}, {}, {"strength": 3e-3, "l1_ratio": 0.3}, {"strength": 1e-3}]
    config = TrainConfig(epochs=12, dtype="float64", seed=1)
    out = fit_many(X, y, 2, [penalties.get(n) for n in names], pps, optimizers.get(opt), ops, config)
    for k, name in enumerate(names):
        (alone,) = _alone(X, y, 2, name, [pps[k]], opt, [ops[k]], config)
        np.testing.assert_allclose(out[k].weight, alone.weight, rtol=1e-7, atol=1e-9)
        assert np.array_equal(out[k].weight == 0, alone.weight == 0)
        assert out[k].objective == pytest.approx(alone.objective, rel=1e-9)
    assert (out[0].weight == 0).sum() > 0  # the l1 trials have exact zeros, the l2 one none
    assert (out[1].weight == 0).sum() == 0


def test_a_mixed_group_is_one_elastic_net_only_when_every_penalty_says_it_is_one() -> None:
    import torch

    from tuner._plugin_api import Penalty
    from tuner.train._penalties import PenaltyGroups

    class Squares(Penalty):  # a third-party smooth penalty that does not declare elastic_net
        name, supports_batch = "squares", True

        def smooth_value(self, weight: Any, params: Any) -> Any:
            return (weight ** 4).sum(dim=(-2, -1))

    l1, l2 = penalties.get("l1"), penalties.get("elasticnet")
    params = [{"strength": 0.1}, {"strength": 0.2, "l1_ratio": 0.25}]
    both = PenaltyGroups([l1, l2], params, True, torch.float64, torch.device("cpu"))
    assert both.net is not None
    assert both.net[0].flatten().tolist() == pytest.approx([0.1, 0.05])
    assert both.net[1].tolist() == pytest.approx([0.0, 0.15])
    W = torch.randn(2, 4, 1, dtype=torch.float64)
    expected = [l1.value(W[0], params[0]), l2.value(W[1], params[1])]
    assert (both.smooth(W) + both.nonsmooth(W)).tolist() == pytest.approx([float(e) for e in expected], rel=1e-12)
    assert PenaltyGroups([l1, Squares()], [params[0], {}], True, torch.float64, torch.device("cpu")).net is None

    class Quartic(type(l2)):  # changes the smooth part, inherits elastic_net: not an elastic net
        name = "quartic"

        def smooth_value(self, weight: Any, params: Any) -> Any:
            return (params["strength"] * weight.pow(4)).sum(dim=(-2, -1))

    assert PenaltyGroups([l1, Quartic()], [params[0], params[1]], True, torch.float64, torch.device("cpu")).net is None
    assert PenaltyGroups([l2, l2], params[1:] * 2, True, torch.float64, torch.device("cpu")).net is None  # one plugin


@pytest.mark.parametrize("opt,pen,ops", [
    ("lbfgs", "l2", [{"lr": 1.0, "history_size": 20}, {"lr": 0.5, "history_size": 5}, {"lr": 1.0, "history_size": 3}]),
    ("fista", "elasticnet", [{"lr": 1.0}, {"lr": 10.0}, {"lr": 0.1}]),
])
def test_full_batch_solvers_side_by_side_reach_each_trials_optimum(opt: str, pen: str, ops: list[dict]) -> None:
    X, y = _cancer()
    pps = [{"strength": s, "l1_ratio": 0.5} for s in (1e-3, 1e-2, 1e-1)]
    if pen == "l2":
        pps = [{"strength": p["strength"]} for p in pps]
    config = TrainConfig(epochs=50, dtype="float64", tol=1e-10)
    together = fit_many(X, y, 2, penalties.get(pen), pps, optimizers.get(opt), ops, config)
    alone = _alone(X, y, 2, pen, pps, opt, ops, config)
    for a, b in zip(together, alone):
        assert a.objective == pytest.approx(b.objective, rel=1e-8)
        np.testing.assert_allclose(a.weight, b.weight, rtol=1e-4, atol=1e-6)
        if pen == "elasticnet":
            assert np.array_equal(a.weight == 0, b.weight == 0)


def test_groups_on_wide_data_are_split_to_fit_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """On 2^20 features an L-BFGS trial keeps ~200 vectors of history: its trials go one at a time,
    SGD-like ones many at a time, full-batch groups first (memory alone decides here)."""
    from types import SimpleNamespace

    import tuner.study._trial_batches as trial_batches
    from tuner.study._trial_batches import Pending, TrialBatches

    monkeypatch.setattr(trial_batches, "paying_group_size", lambda *args: 10 ** 6)

    def pend(opt: str) -> Pending:
        return Pending(trial=None, variant=f"l2:{opt}", penalty="l2", optimizer=opt, penalty_params={"strength": 1e-3},
                       optimizer_params={}, values={}, info=None)

    wide = SimpleNamespace(X_train=sp.csr_matrix((4, 2 ** 20)), n_classes=2)
    runner = TrialBatches(None, wide, TrainConfig(), [], None, "log_loss", lambda t: [], "variant")
    groups = runner.groups([pend("sgd")] * 40 + [pend("lbfgs")] * 3)
    assert [len(g) for g in groups] == [1, 1, 1, 32, 8]
    assert [g[0].optimizer for g in groups] == ["lbfgs"] * 3 + ["sgd"] * 2
    narrow = SimpleNamespace(X_train=sp.csr_matrix((4, 123)), n_classes=2)
    runner = TrialBatches(None, narrow, TrainConfig(), [], None, "log_loss", lambda t: [], "variant")
    assert [len(g) for g in runner.groups([pend("sgd")] * 40 + [pend("lbfgs")] * 3)] == [3, 40]
    # with --cv 3 a trial is 4 weight columns (its model and 3 folds): a quarter as many fit
    folds = [np.zeros(4, dtype=bool)] * 3
    runner = TrialBatches(None, wide, TrainConfig(), [], None, "log_loss", lambda t: [], "variant", folds=folds)
    assert [len(g) for g in runner.groups([pend("sgd")] * 40)] == [8] * 5


def _rows(n: int, p: int, per_row: int) -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    cols = rng.integers(0, p, size=(n, per_row))
    return sp.csr_matrix((np.ones(n * per_row), cols.ravel(), np.arange(0, n * per_row + 1, per_row)), shape=(n, p))


def test_a_group_is_no_larger_than_sharing_a_step_pays_for() -> None:
    """A step's data and fixed cost are shared, each trial's dense update is not: narrow data
    batches many trials, wide sparse text (a mini-batch step reads far fewer values than a trial
    has weights) trains them one at a time."""
    from tuner.study._trial_batches import paying_group_size

    narrow = _rows(26_000, 123, 14)
    wide = _rows(40_000, 150_000, 20)
    for name in ("sgd", "adam", "fista"):
        assert paying_group_size(narrow, 123, optimizers.get(name), TrainConfig()) >= 32
        assert paying_group_size(wide, 150_000, optimizers.get(name), TrainConfig()) == 1


def test_trials_whose_penalty_strings_differ_never_share_a_group_whatever_the_optimizer_names() -> None:
    """A penalty and an optimizer may both declare a string hyperparameter 'mode': the optimizer's
    value hid the penalty's, so trials of two penalty modes shared a group and all of them failed."""
    from types import SimpleNamespace

    from tuner.study._trial_batches import Pending, TrialBatches

    def pend(penalty_mode: str, optimizer_mode: str) -> Pending:
        return Pending(trial=None, variant="l2:sgd", penalty="l2", optimizer="sgd",
                       penalty_params={"strength": 1e-3, "mode": penalty_mode},
                       optimizer_params={"lr": 0.1, "mode": optimizer_mode}, values={}, info=None)

    data = SimpleNamespace(X_train=sp.csr_matrix((4, 123)), n_classes=2)
    runner = TrialBatches(None, data, TrainConfig(), [], None, "log_loss", lambda t: [], "variant")
    groups = runner.groups([pend("a", "x"), pend("b", "x"), pend("a", "x"), pend("a", "y")])
    assert sorted([(g[0].penalty_params["mode"], g[0].optimizer_params["mode"], len(g)) for g in groups]) == [
        ("a", "x", 2), ("a", "y", 1), ("b", "x", 1)]
