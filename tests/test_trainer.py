"""The training loop: optimizers reach the optimum, exact zeros, inputs, stopping, weights, seeds."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.special import expit, logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from tuner import Float, Optimizer, Penalty, compatibility_reason, optimizers, penalties
from tuner.errors import ConfigError, DataError, IncompatiblePluginsError, TrainingDivergedError
from tuner.train import Callback, FitResult, TrainConfig, TrainingState, auto_batch_size, class_weights, fit


def defaults(name: str, **over: Any) -> dict[str, Any]:
    out = {k: v.default for k, v in optimizers.get(name).search_space.items()}
    out.update(over)
    return out


def train(X: Any, y: np.ndarray, penalty: str = "l2", optimizer: str = "lbfgs", *, pp: dict | None = None,
          op: dict | None = None, n_classes: int | None = None, **kw: Any) -> FitResult:
    config = TrainConfig(**{"device": "cpu", **kw.pop("config", {})})
    return fit(X, y, n_classes or int(np.max(y)) + 1, penalties.get(penalty), pp or {}, optimizers.get(optimizer),
               defaults(optimizer, **(op or {})), config, **kw)


def objective(X: Any, y: np.ndarray, w: np.ndarray, b: np.ndarray, strength: float, l1_ratio: float = 0.0,
              s: np.ndarray | None = None) -> float:
    """(1/n) sum s_i loss_i + strength (l1_ratio |W|_1 + (1 - l1_ratio)/2 |W|^2), in float64."""
    s = np.ones(len(y)) if s is None else s
    Z = np.asarray(X @ w) + b
    if w.shape[1] == 1:
        z = Z[:, 0]
        per = np.logaddexp(0.0, z) - y * z
    else:
        per = logsumexp(Z, axis=1) - Z[np.arange(len(y)), y]
    return float((s * per).mean() + strength * (l1_ratio * np.abs(w).sum() + (1 - l1_ratio) / 2 * (w * w).sum()))


TIGHT = {"dtype": "float64", "tol": 1e-10, "patience": 2, "epochs": 300}


# ---------------------------------------------------------------------------------------------
# stochastic optimizers with their default schedule (benchmarks/STOCHASTIC.md)


@pytest.fixture(scope="module")
def a9a_l2_optimum(a9a: Any) -> float:
    X, y = a9a
    r = train(X, y, "l2", "lbfgs", pp={"strength": 1 / X.shape[0]}, config={**TIGHT, "tol": 1e-8, "patience": 1})
    return objective(X, y, r.weight, r.intercept, 1 / X.shape[0])  # within 1e-8 of the optimum (test_parity)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_stochastic_optimizers_reach_the_optimum_with_default_schedule(name: str, a9a: Any,
                                                                       a9a_l2_optimum: float) -> None:
    X, y = a9a
    strength = 1 / X.shape[0]  # scikit-learn's C = 1
    config = TrainConfig()  # the defaults a user gets: 100 epochs, batches of 256, cosine decay
    assert (config.epochs, config.batch_size, config.schedule) == (100, None, "cosine")
    assert auto_batch_size(X.shape[0]) == 256  # batches of 256 on data this size
    r = fit(X, y, 2, penalties.get("l2"), {"strength": strength}, optimizers.get(name), defaults(name), config)
    gap = (objective(X, y, r.weight, r.intercept, strength) - a9a_l2_optimum) / a9a_l2_optimum
    print(f"{name}: {gap:.3%} above the optimum after {r.epochs_run} epochs ({r.stop_reason})")
    assert r.stop_reason == "converged"
    assert 0 <= gap < 0.01


# ---------------------------------------------------------------------------------------------
# L1: exact zeros with every optimizer


@pytest.fixture(scope="module")
def a9a_l1(a9a: Any) -> tuple[float, FitResult]:
    X, y = a9a
    strength = 1 / (0.01 * X.shape[0])
    return strength, train(X, y, "l1", "fista", pp={"strength": strength}, config={**TIGHT, "tol": 1e-9})


def test_fista_converges_in_a_few_epochs_on_a9a(a9a_l1: tuple[float, FitResult]) -> None:
    """FISTA takes its gradients at the extrapolated point and stops on the gradient mapping."""
    _, r = a9a_l1
    assert r.stop_reason == "converged" and r.epochs_run <= 12  # 50 iterations an epoch
    assert 60 <= np.sum(r.weight == 0) < r.weight.size


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_l1_gives_exact_zeros_with_stochastic_optimizers(name: str, a9a: Any, a9a_l1: tuple[float, FitResult]) -> None:
    X, y = a9a
    strength, ref = a9a_l1
    r = train(X, y, "l1", name, pp={"strength": strength})
    f_ref = objective(X, y, ref.weight, ref.intercept, strength, 1.0)
    gap = (objective(X, y, r.weight, r.intercept, strength, 1.0) - f_ref) / f_ref
    zeros = int(np.sum(r.weight == 0.0))
    print(f"{name}: {zeros} exact zeros (fista {np.sum(ref.weight == 0)}), {gap:.2e} above fista's objective")
    assert zeros >= 0.6 * np.sum(ref.weight == 0)
    assert gap < 1e-3
    # what a subgradient would give instead: weights near zero that are not zero
    assert np.sum((np.abs(r.weight) > 0) & (np.abs(r.weight) < 1e-6)) <= 2


@pytest.mark.parametrize("name, slack", [("sgd", 0.01), ("adam", 0.01), ("rmsprop", 0.02)])
def test_elastic_net_exact_zeros_on_a_multinomial_problem(name: str, slack: float) -> None:
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    d = load_wine()
    X = StandardScaler().fit_transform(d.data)
    pp = {"strength": 0.05, "l1_ratio": 0.8}
    ref = train(X, d.target, "elasticnet", "fista", pp=pp, config=TIGHT)
    r = train(X, d.target, "elasticnet", name, pp=pp, config={"batch_size": 32, "epochs": 300})
    assert r.weight.shape == (13, 3)
    assert np.sum(r.weight == 0) >= 0.5 * np.sum(ref.weight == 0) > 0
    f_ref = objective(X, d.target, ref.weight, ref.intercept, 0.05, 0.8)
    assert objective(X, d.target, r.weight, r.intercept, 0.05, 0.8) < f_ref * (1 + slack)


# ---------------------------------------------------------------------------------------------
# inputs and outputs


def test_binary_and_multinomial_outputs() -> None:
    from sklearn.datasets import load_iris

    d = load_iris()
    X = (d.data - d.data.mean(0)) / d.data.std(0)
    r = train(X, d.target, "l2", "lbfgs", pp={"strength": 1e-3})
    assert r.weight.shape == (4, 3) and r.intercept.shape == (3,)
    assert r.weight.dtype == np.float64 and r.n_nonzero == 12
    assert np.mean((X @ r.weight + r.intercept).argmax(1) == d.target) > 0.95
    binary = (d.target == 2).astype(int)
    rb = train(X, binary, "l2", "lbfgs", pp={"strength": 1e-3})
    assert rb.weight.shape == (4, 1) and rb.intercept.shape == (1,)
    assert np.mean((expit(X @ rb.weight[:, 0] + rb.intercept[0]) > 0.5) == binary) > 0.9
    assert rb.objective == pytest.approx(objective(X, binary, rb.weight, rb.intercept, 1e-3), rel=1e-5)


@pytest.mark.parametrize("optimizer, penalty", [("lbfgs", "l2"), ("fista", "l1"), ("sgd", "elasticnet"), ("adam", "l1")])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_dense_and_csr_inputs_give_the_same_fit(optimizer: str, penalty: str, n_classes: int,
                                                breast_cancer: Any) -> None:
    X, y = breast_cancer
    if n_classes == 3:  # three classes from the first feature's terciles
        y = np.digitize(X[:, 0], np.quantile(X[:, 0], [1 / 3, 2 / 3]))
    pp = {"strength": 0.01, "l1_ratio": 0.5} if penalty == "elasticnet" else {"strength": 0.01}
    kw = dict(pp=pp, config={"dtype": "float64", "epochs": 15, "batch_size": 64})
    dense = train(X, y, penalty, optimizer, **kw)
    csr = train(sp.csr_matrix(X), y, penalty, optimizer, **kw)
    assert dense.epochs_run == csr.epochs_run
    np.testing.assert_allclose(csr.weight, dense.weight, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(csr.intercept, dense.intercept, rtol=1e-6, atol=1e-8)
    if penalty != "l2":
        np.testing.assert_array_equal(csr.weight == 0, dense.weight == 0)


def test_mini_batch_and_full_batch_optimizers_reach_the_same_optimum(breast_cancer: Any) -> None:
    X, y = breast_cancer
    full = train(X, y, "l2", "lbfgs", pp={"strength": 0.01}, config=TIGHT)
    f_star = objective(X, y, full.weight, full.intercept, 0.01)
    for name, batch in (("sgd", 32), ("adam", 64), ("rmsprop", 32), ("fista", 32)):  # fista: full batch anyway
        r = train(X, y, "l2", name, pp={"strength": 0.01}, config={"batch_size": batch, "epochs": 300, "tol": 1e-6})
        assert objective(X, y, r.weight, r.intercept, 0.01) < f_star * 1.01, name
        # the same model (breast cancer's correlated features leave some weights loosely determined)
        np.testing.assert_allclose(expit(X @ r.weight + r.intercept), expit(X @ full.weight + full.intercept),
                                   atol=0.05)


# ---------------------------------------------------------------------------------------------
# stopping


class Recorder(Callback):
    def __init__(self) -> None:
        self.begun = self.ended = 0
        self.logs: list[dict[str, float]] = []
        self.weights: list[np.ndarray] = []
        self.dtypes: set[torch.dtype] = set()
        self.result: FitResult | None = None

    def on_train_begin(self, state: TrainingState) -> None:
        self.begun += 1

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        assert state.epoch == logs["epoch"] == len(self.logs) + 1
        self.logs.append(dict(logs))
        self.weights.append(state.weight.detach().double().numpy().copy())
        self.dtypes.add(state.weight.dtype)

    def on_train_end(self, state: TrainingState, result: FitResult) -> None:
        self.ended += 1
        self.result = result


def overfitting_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """80 training rows, 100 features of which one matters: unpenalized training overfits."""
    rng = np.random.default_rng(0)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.normal(size=(n, 100))
        return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)

    return (*make(80), *make(400))


def test_early_stopping_on_validation_loss_restores_the_best_weights() -> None:
    X, y, Xv, yv = overfitting_problem()
    rec = Recorder()
    r = train(X, y, "none", "adam", op={"lr": 0.003}, X_val=Xv, y_val=yv, callbacks=[rec],
              config={"monitor": "val", "patience": 3, "tol": 0.0, "batch_size": 16, "epochs": 200})
    val = [log["val_loss"] for log in rec.logs]
    assert r.stop_reason == "early_stopping"
    assert r.epochs_run == len(val) == r.best_epoch + 3 < 200
    assert r.best_epoch == int(np.argmin(val)) + 1 and r.best_epoch > 1
    assert val[-1] > min(val)  # it did get worse: the last weights are not the ones returned
    np.testing.assert_array_equal(r.weight, rec.weights[r.best_epoch - 1])
    z = Xv @ r.weight[:, 0] + r.intercept[0]
    assert np.mean(np.logaddexp(0, z) - yv * z) == pytest.approx(min(val), rel=1e-5)


class _GradientDescentThatStops(Optimizer):
    """Full-batch gradient descent whose ``converged()`` reports its own optimality test met after
    ``stop_after`` steps (here: long after the validation loss turned up)."""

    name = "gd_stops"
    description = "Gradient descent that reports convergence after a fixed number of steps."
    search_space = {"lr": Float(1e-3, 10.0, default=1.0, log=True)}
    full_batch = True
    stop_after = 40

    def build(self, param_groups, params, prox=None):
        opt = torch.optim.SGD(list(param_groups), lr=float(params["lr"]))
        steps = [0]
        plain_step = opt.step

        def step(closure=None):
            steps[0] += 1
            return plain_step(closure)

        opt.step = step  # type: ignore[method-assign]
        opt.converged = lambda: torch.tensor([steps[0] >= self.stop_after])  # type: ignore[attr-defined]
        return opt


def test_a_solver_converged_after_the_best_validation_epoch_reports_early_stopping() -> None:
    """monitor='val' keeps the best validation epoch's weights; when the solver's own test ends the
    trial later, those are not the converged weights, and the reason must not say 'converged'."""
    X, y, Xv, yv = overfitting_problem()
    rec = Recorder()
    config = TrainConfig(device="cpu", monitor="val", patience=100, tol=0.0, epochs=200)
    r = fit(X, y, 2, penalties.get("none"), {}, _GradientDescentThatStops(), {"lr": 1.0}, config,
            X_val=Xv, y_val=yv, callbacks=[rec])
    val = [log["val_loss"] for log in rec.logs]
    assert r.epochs_run == len(val) == _GradientDescentThatStops.stop_after
    assert r.best_epoch == int(np.argmin(val)) + 1 < r.epochs_run  # the validation loss turned up before the end
    np.testing.assert_array_equal(r.weight, rec.weights[r.best_epoch - 1])
    assert r.stop_reason == "early_stopping", r.stop_reason


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lbfgs_stuck_at_its_rounding_floor_ends_without_waiting_out_the_patience(dtype: str) -> None:
    """Once L-BFGS can no longer move (its line search finds no step), each later epoch repeated the
    same failed search until `patience` epochs had passed: kddcup99 in float32 spent five epochs of
    10 s each with the objective unchanged. Its converged() ends the trial at the first such epoch."""
    from tuner.api import fit as fit_file

    reports = {d: fit_file(dataset="breast_cancer", penalty="l2", optimizer="lbfgs", params={"strength": 1e-4},
                           dtype=d, tol=0.0, patience=30, epochs=300) for d in ("float32", "float64")}
    r = reports[dtype]
    assert r.stop_reason == "converged" and r.epochs_run < 20, (r.epochs_run, r.stop_reason)  # not 30+ epochs
    assert r.objective == pytest.approx(reports["float64"].objective, rel=1e-6)


def test_patience_and_tol_on_the_training_objective() -> None:
    # fista: a solver without converged(), which would end the trial before the patience runs out
    X, y, Xv, yv = overfitting_problem()
    rec = Recorder()
    r = train(X, y, "l2", "fista", pp={"strength": 0.01}, X_val=Xv, y_val=yv, callbacks=[rec],
              config={"monitor": "objective", "patience": 4, "tol": 1e-3, "epochs": 100})
    assert r.stop_reason == "converged" and "val_loss" in rec.logs[0]
    train_loss = [log["train_loss"] for log in rec.logs]
    best = train_loss[r.best_epoch - 1]
    # the last `patience` epochs did not improve on the best by tol (relative); the one before did
    assert r.epochs_run == r.best_epoch + 4
    assert all(v >= best - 1e-3 * best for v in train_loss[r.best_epoch:])
    np.testing.assert_array_equal(r.weight, rec.weights[-1])  # no restoring when watching the objective


# ---------------------------------------------------------------------------------------------
# weights: class_weight and sample weights, against scikit-learn


@pytest.mark.parametrize("case", ["balanced", "explicit", "sample", "named classes", "balanced and sample"])
def test_class_and_sample_weights_match_scikit_learn(case: str, breast_cancer: Any) -> None:
    X, y = breast_cancer
    n, C = len(y), 1.0
    rng = np.random.default_rng(1)
    sample = rng.uniform(0.2, 2.0, n) if "sample" in case else None
    ours_cw: Any = {"balanced": "balanced", "explicit": {0: 3.0, 1: 0.5}, "sample": None,
                    "named classes": {"malignant": 2.5}, "balanced and sample": "balanced"}[case]
    sk_cw: Any = {"balanced": "balanced", "explicit": {0: 3.0, 1: 0.5}, "sample": None,
                  "named classes": {0: 2.5, 1: 1.0}, "balanced and sample": "balanced"}[case]
    classes = ["malignant", "benign"] if case == "named classes" else None  # breast cancer: 0 = malignant
    ref = LogisticRegression(C=C, class_weight=sk_cw, tol=1e-10, max_iter=100_000)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ref.fit(X, y, sample_weight=sample)
    r = train(X, y, "l2", "lbfgs", pp={"strength": 1 / (C * n)}, sample_weight=sample, classes=classes,
              config={**TIGHT, "class_weight": ours_cw})
    s = (np.ones(n) if sample is None else sample) * class_weights(y, 2, ours_cw, classes, sample)[y]
    f_ref = objective(X, y, ref.coef_.T, ref.intercept_, 1 / (C * n), s=s)
    f_ours = objective(X, y, r.weight, r.intercept, 1 / (C * n), s=s)
    assert abs(f_ours - f_ref) <= 1e-8 * f_ref
    np.testing.assert_allclose(r.weight[:, 0], ref.coef_[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(r.intercept, ref.intercept_, rtol=1e-4, atol=1e-5)
    unweighted = train(X, y, "l2", "lbfgs", pp={"strength": 1 / (C * n)}, config=TIGHT)
    assert np.abs(unweighted.weight - r.weight).max() > 1e-2  # the weights did matter


def test_class_weights() -> None:
    y = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(class_weights(y, 2, "balanced"), [4 / 6, 4 / 2])
    # rows counted by their weights (scikit-learn's compute_class_weight with sample_weight)
    np.testing.assert_allclose(class_weights(y, 2, "balanced", sample_weight=np.array([1, 1, 1, 3.0])), [1, 1])
    # a class absent from these rows gets 0 and does not dilute the present ones
    np.testing.assert_allclose(class_weights(y, 3, "balanced"), [4 / 6, 4 / 2, 0])
    np.testing.assert_allclose(class_weights(y, 2, None), [1, 1])
    np.testing.assert_allclose(class_weights(y, 2, {"b": 3}, ["a", "b"]), [1, 3])
    with pytest.raises(ConfigError, match="'c'"):
        class_weights(y, 2, {"c": 1.0}, ["a", "b"])
    # float labels are read as integer classes: a float key names the same class (every trial failed)
    np.testing.assert_allclose(class_weights(y, 2, {0.0: 1, 1.0: 2.5}, [0, 1]), [1, 2.5])
    with pytest.raises(ConfigError, match="'0.5'|0.5"):
        class_weights(y, 2, {0.5: 1.0}, [0, 1])
    with pytest.raises(ConfigError, match="balanced"):
        class_weights(y, 2, "auto")
    with pytest.raises(ConfigError, match=">= 0"):
        class_weights(y, 2, {0: -1.0})


@pytest.mark.parametrize(("labels", "weights", "match"), [
    ("pm1", None, "class indices 0 to 1"),        # a9a's -1/+1 read as indices: a negative "log loss"
    ("one-two", None, "class indices 0 to 1"),    # 1/2: an IndexError deep in the trainer
    ("ok", "column", "one weight a row"),          # (n, 1) weights
    ("ok", "nan", "finite numbers >= 0"),          # reported as a divergence before
    ("ok", "negative", "finite numbers >= 0"),     # a negative objective, silently
])
def test_rows_that_are_not_class_indices_or_weights_are_refused(labels: str, weights: str | None, match: str,
                                                                breast_cancer: Any) -> None:
    X, y = breast_cancer
    y = {"pm1": 2 * y - 1, "one-two": y + 1, "ok": y}[labels]
    sw = {None: None, "column": np.ones((len(y), 1)), "nan": np.r_[np.nan, np.ones(len(y) - 1)],
          "negative": np.r_[-1.0, np.ones(len(y) - 1)]}[weights]
    with pytest.raises(DataError, match=match):
        fit(X, y, 2, penalties.get("l2"), {"strength": 1e-3}, optimizers.get("lbfgs"), {}, TrainConfig(epochs=3),
            sample_weight=sw)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
@pytest.mark.parametrize("where", ["train", "val"])
def test_features_that_are_not_finite_are_refused_before_training(layout: str, where: str,
                                                                  breast_cancer: Any) -> None:
    """A NaN feature made every trial diverge, with the advice to lower a learning rate that
    newton_cg does not have."""
    import scipy.sparse as sp

    X, y = breast_cancer
    bad = np.array(X, dtype=float)
    bad[3, 4], bad[7, 1] = np.nan, np.inf
    bad_m = sp.csr_matrix(bad) if layout == "sparse" else bad
    good_m = sp.csr_matrix(X) if layout == "sparse" else X
    train, val = (bad_m, good_m) if where == "train" else (good_m, bad_m)
    rows = "training" if where == "train" else "validation"
    with pytest.raises(DataError, match=fr"Feature values must be finite in the {rows} rows; row 3 column 4 holds nan\."):
        fit(train, y, 2, penalties.get("l2"), {"strength": 1e-3}, optimizers.get("newton_cg"), {},
            TrainConfig(epochs=3), X_val=val, y_val=y)


@pytest.mark.parametrize("opt", ["adam", "sgd", "lbfgs"])
def test_a_warm_start_far_above_zeros_objective_is_no_divergence(opt: str, breast_cancer: Any) -> None:
    """A start fitted with a weak penalty, under a strong one, costs thousands of times the
    objective at zero; training lowers it, which is not a divergence (adam's first epoch was
    refused as one, its weights zeroed)."""
    X, y = breast_cancer
    l2 = penalties.get("l2")
    loose = fit(X, y, 2, l2, {"strength": 1e-6}, optimizers.get("newton"), {}, TrainConfig(dtype="float64"))
    tight = {"strength": 1.0}
    at_start = objective(X, y, loose.weight, loose.intercept, tight["strength"])
    assert at_start > 100 * np.log(2)  # far above the objective at zero
    r = fit(X, y, 2, l2, tight, optimizers.get(opt), {}, TrainConfig(dtype="float64", epochs=5),
            init=(loose.weight, loose.intercept))
    assert r.objective < at_start and np.abs(r.weight).max() > 0


def test_val_proba_of_a_float32_fit_is_not_saturated(breast_cancer: Any) -> None:
    """What the study's metric and pruner see each epoch: the probabilities of the current
    weights, with no class probability rounded to exactly 0 (float32's 1 - sigmoid(z) from z ~ 17)."""
    from sklearn.metrics import roc_auc_score

    X, y = breast_cancer
    tr, va = np.arange(0, 60), np.arange(60, len(y))
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    class Record(Callback):
        def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
            w = state.weight.detach().double().numpy()[:, 0]
            z = X[va] @ w + float(state.intercept.detach()[0])
            seen.append((state.val_proba(), z))

    fit(X[tr], y[tr], 2, penalties.get("none"), {}, optimizers.get("lbfgs"), {},
        TrainConfig(dtype="float32", epochs=3), X_val=X[va], y_val=y[va], callbacks=[Record()])
    proba, z = seen[-1]
    assert np.abs(z).max() > 20  # unpenalised on 60 separable rows: saturated logits
    assert (proba > 0).all()
    np.testing.assert_allclose(proba[:, 1], expit(z), rtol=1e-4)
    np.testing.assert_allclose(proba[:, 0], expit(-z), rtol=1e-4)
    # the final model's float64 probabilities of these weights score the same (float32 logits aside)
    assert roc_auc_score(y[va], proba[:, 1]) == pytest.approx(roc_auc_score(y[va], expit(z)), abs=1e-3)


@pytest.mark.parametrize("opt", ["fista", "newton", "sgd"])
def test_a_matrix_without_columns_is_a_data_error(opt: str) -> None:
    """Not a plugin's fault (fista and newton crashed, blamed on the penalty plugin)."""
    with pytest.raises(DataError, match="at least one column"):
        fit(np.zeros((10, 0)), np.arange(10) % 2, 2, penalties.get("l2"), {"strength": 1e-3}, optimizers.get(opt), {},
            TrainConfig(epochs=2))


def test_bool_labels_are_classes_0_and_1(breast_cancer: Any) -> None:
    X, y = breast_cancer
    opt, cfg = optimizers.get("lbfgs"), TrainConfig(epochs=5, dtype="float64")
    as_bool = fit(X, y.astype(bool), 2, penalties.get("l2"), {"strength": 1e-3}, opt, {}, cfg)
    as_int = fit(X, y, 2, penalties.get("l2"), {"strength": 1e-3}, opt, {}, cfg)
    np.testing.assert_array_equal(as_bool.weight, as_int.weight)


def test_a_transposed_warm_start_is_refused() -> None:
    """scikit-learn's coef_ is (c, p): reshaped into (p, c) it would be scrambled weights."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    ref = LogisticRegression(max_iter=1000).fit(X, y)
    opt = optimizers.get("lbfgs")
    with pytest.raises(ConfigError, match=r"coef_.T"):
        fit(X, y, 3, penalties.get("l2"), {"strength": 1e-3}, opt, {}, TrainConfig(epochs=3),
            init=(ref.coef_, ref.intercept_))
    r = fit(X, y, 3, penalties.get("l2"), {"strength": 1e-3}, opt, {}, TrainConfig(epochs=3),
            init=(ref.coef_.T, ref.intercept_))
    assert r.epochs_run >= 1


# ---------------------------------------------------------------------------------------------
# reproducibility, precision, callbacks


def test_seeds_make_runs_repeatable(breast_cancer: Any) -> None:
    X, y = breast_cancer
    kw = dict(pp={"strength": 1e-3}, config={"epochs": 20, "batch_size": 32})
    a, b = train(X, y, "l2", "sgd", **kw), train(X, y, "l2", "sgd", **kw)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.intercept, b.intercept)
    c = train(X, y, "l2", "sgd", pp={"strength": 1e-3}, config={"epochs": 20, "batch_size": 32, "seed": 1})
    assert np.abs(a.weight - c.weight).max() > 1e-4
    # full-batch solvers do not shuffle: the seed does not matter
    d1 = train(X, y, "l2", "lbfgs", pp={"strength": 1e-3}, config={"seed": 0})
    d2 = train(X, y, "l2", "lbfgs", pp={"strength": 1e-3}, config={"seed": 7})
    np.testing.assert_array_equal(d1.weight, d2.weight)


def test_float64_on_request(breast_cancer: Any) -> None:
    X, y = breast_cancer
    rec32, rec64 = Recorder(), Recorder()
    r32 = train(X, y, "l2", "lbfgs", pp={"strength": 1e-3}, callbacks=[rec32])
    r64 = train(X, y, "l2", "lbfgs", pp={"strength": 1e-3}, callbacks=[rec64], config={"dtype": "float64"})
    assert rec32.dtypes == {torch.float32} and rec64.dtypes == {torch.float64}
    assert r32.weight.dtype == r64.weight.dtype == np.float64  # results are float64 either way
    np.testing.assert_allclose(r32.weight, r64.weight, rtol=1e-2, atol=1e-3)
    assert not np.array_equal(r32.weight, r64.weight)


def test_callbacks_see_every_epoch_once(breast_cancer: Any) -> None:
    X, y = breast_cancer
    rec = Recorder()
    r = train(X[:400], y[:400], "l1", "adam", pp={"strength": 1e-3}, X_val=X[400:], y_val=y[400:],
              callbacks=[rec], config={"epochs": 7, "patience": 100})
    assert rec.begun == 1 and rec.ended == 1 and rec.result is r
    assert len(rec.logs) == r.epochs_run == 7 and r.stop_reason == "max_epochs"
    assert [log["epoch"] for log in rec.logs] == list(range(1, 8))
    for log in rec.logs:
        assert set(log) == {"epoch", "train_loss", "val_loss"}
        assert np.isfinite(log["train_loss"]) and np.isfinite(log["val_loss"])
    assert r.history == rec.logs


def test_a_callback_can_stop_training(breast_cancer: Any) -> None:
    class Stop(Exception):
        pass

    class StopAt3(Callback):
        def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
            if logs["epoch"] == 3:
                raise Stop

    X, y = breast_cancer
    rec = Recorder()
    with pytest.raises(Stop):
        train(X, y, "l2", "sgd", pp={"strength": 1e-3}, callbacks=[rec, StopAt3()])
    assert len(rec.logs) == 3 and rec.ended == 0


# ---------------------------------------------------------------------------------------------
# failures


def test_a_huge_learning_rate_raises_training_diverged() -> None:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()  # unscaled: features up to ~4000
    with pytest.raises(TrainingDivergedError, match="lower the learning rate"):
        train(d.data, d.target, "l2", "sgd", pp={"strength": 1e-4}, op={"lr": 10.0, "momentum": 0.9})


def test_a_trial_diverging_side_by_side_shows_its_hyperparameters_as_declared() -> None:
    """Side by side a bool travels as a float tensor: the message read nesterov=1.0."""
    from tuner.data import load_data, prepare
    from tuner.study import train_many

    ds = prepare(load_data(dataset="breast_cancer"), val_size=0.2, test_size=0.0, seed=0)
    out = train_many(ds, "sgd", [("l2", {"strength": 1e-4}, {"lr": 1e-2, "momentum": 0.9, "nesterov": False}),
                                 ("l2", {"strength": 1e-4}, {"lr": 1e4, "momentum": 0.9, "nesterov": True})],
                     TrainConfig(device="cpu", epochs=5))
    assert not isinstance(out[0], BaseException)
    assert isinstance(out[1], TrainingDivergedError)
    assert "{'lr': 10000.0, 'momentum': 0.9, 'nesterov': True}" in str(out[1]), out[1]


class _NaNPenalty(Penalty):
    """A third-party penalty (not batched) whose value is NaN at every weight."""

    name = "nan_penalty"
    description = "NaN."
    search_space = {"strength": Float(1e-3, 1.0, default=0.1, log=True)}
    supports_batch = False

    def smooth_value(self, weight: torch.Tensor, params: Any) -> torch.Tensor:
        return (weight * float("nan")).sum()


@pytest.mark.parametrize("opt", ["lbfgs", "fista", "newton", "sgd"])
def test_a_nan_penalty_is_the_penaltys_fault_with_every_solver(opt: str, breast_cancer: Any) -> None:
    """Trained alone, torch's L-BFGS line search and FISTA's step failed on the NaN and were blamed
    for it ("the optimizer plugin 'lbfgs' raised RuntimeError"); then every solver called it
    divergence and advised a lower learning rate. The penalty's value is NaN: it is named."""
    from tuner.errors import PluginError
    from tuner.train import fit_many

    X, y = breast_cancer
    (out,) = fit_many(X, y, 2, _NaNPenalty(), [{"strength": 0.1}], optimizers.get(opt), [{}], TrainConfig(epochs=5))
    assert isinstance(out, PluginError) and "The penalty 'nan_penalty' gave smooth_value = nan" in str(out), out


def test_incompatible_pair_is_refused(smooth_only: str) -> None:
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.array([0, 1] * 10)
    with pytest.raises(IncompatiblePluginsError, match="l1.*smooth_only.*fista"):
        train(X, y, "l1", smooth_only, pp={"strength": 1e-3})
    with pytest.raises(IncompatiblePluginsError, match="elasticnet"):
        train(X, y, "elasticnet", smooth_only, pp={"strength": 1e-3, "l1_ratio": 0.5})
    for pen in penalties.names():
        for opt in optimizers.names():
            reason = compatibility_reason(penalties.get(pen), optimizers.get(opt))
            refused = penalties.get(pen).has_prox and optimizers.get(opt).prox_mode == "unsupported"
            assert (reason is not None) == refused, (pen, opt)


@pytest.mark.parametrize("field, value, fragment", [
    ("epochs", 0, "'epochs'"), ("batch_size", 0, "'batch_size'"), ("patience", 0, "'patience'"),
    ("tol", -1.0, "'tol'"), ("schedule", "linear", "'schedule'"), ("monitor", "both", "'monitor'"),
    ("dtype", "float16", "'dtype'"), ("device", "tpu", "'device'"), ("class_weight", "auto", "'class_weight'"),
])
def test_bad_configuration_is_a_config_error(field: str, value: Any, fragment: str) -> None:
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.array([0, 1] * 10)
    with pytest.raises(ConfigError, match=fragment):
        train(X, y, "l2", "lbfgs", pp={"strength": 1e-3}, config={field: value})


def test_one_class_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="two classes"):
        train(np.ones((4, 2)), np.zeros(4, dtype=int), "l2", "lbfgs", pp={"strength": 1e-3}, n_classes=1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_non_finite_value_past_the_first_block_of_rows_is_named_by_its_own_row(dtype: str) -> None:
    """The trainer checks dense arrays block by block (no float64 copy of a float32 matrix): the
    row it names must count the blocks before it, as the data layer's message does."""
    from tuner._finite import CHUNK_VALUES, check_finite_matrix

    X = np.ones((3 * CHUNK_VALUES // 8 + 5, 8), dtype=dtype)  # three blocks and a bit
    row = X.shape[0] - 2
    X[row, 6] = -np.inf
    with pytest.raises(DataError, match=fr"row {row} column 6 holds -inf\."):
        check_finite_matrix(X, " in the training rows")
    check_finite_matrix(np.ones((5, 3), dtype=np.int64))  # integers: nothing to refuse


def test_the_finite_check_names_the_first_bad_cell_of_any_sparse_layout_and_leaves_the_matrix_as_it_was() -> None:
    """CSC and COO input is scanned without a CSR copy unless a value is bad; an unsorted CSR
    row names its lowest bad column, and the caller's matrix keeps its order."""
    import scipy.sparse as sp

    from tuner._finite import check_finite_matrix

    A = np.ones((5, 4))
    A[3, 2], A[4, 0] = np.nan, np.inf
    for layout in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        with pytest.raises(DataError, match=r"row 3 column 2 holds nan\."):
            check_finite_matrix(layout(A))
    unsorted = sp.csr_matrix((np.array([1.0, np.nan, np.inf]), np.array([3, 2, 1]), np.array([0, 3])), shape=(1, 4))
    with pytest.raises(DataError, match=r"row 0 column 1 holds inf\."):
        check_finite_matrix(unsorted)
    assert unsorted.indices.tolist() == [3, 2, 1]
    with pytest.raises(DataError, match=r"row 3 column 0 holds nan\."):
        check_finite_matrix(A[:, 2])  # one value a row
