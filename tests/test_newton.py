"""The proximal Newton optimizer ('newton') and the curvature the trainer offers it.

It must reach scikit-learn's optimum at the same penalty (binary and multinomial, dense and
sparse, L2, L1 and elastic net, with the same exact zeros for binary L1), give each trial side
by side the result it gets alone, stop a trial as soon as it meets its optimality test, and be
refused (or left out of a default study) on models too large for their Hessian."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tuner import optimizers, penalties
from tuner.data import load_data, prepare
from tuner.errors import ConfigError
from tuner.study import DataSpec, StudySpec
from tuner.study._default_plugins import hessian_solvers_where_they_fit
from tuner.train import HESSIAN_MAX_PARAMS, TrainConfig, fit_many
from tuner.train._curvature import data_hessian


def _scaled(loader) -> tuple[np.ndarray, np.ndarray]:
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _newton(X, y, n_classes: int, pen: str, params: list[dict], dtype: str = "float64", **config):
    return fit_many(X, y, n_classes, penalties.get(pen), params, optimizers.get("newton"), [{}] * len(params),
                    TrainConfig(dtype=dtype, epochs=config.pop("epochs", 50), **config))


def _sklearn(X, y, pen: str, strength: float, l1_ratio: float | None = None) -> LogisticRegression:
    C = 1.0 / (strength * len(y))
    if pen == "l2":
        est = LogisticRegression(C=C, solver="lbfgs", tol=1e-12, max_iter=100_000)
    else:
        est = LogisticRegression(C=C, solver="saga", l1_ratio=1.0 if pen == "l1" else l1_ratio, tol=1e-12,
                                 max_iter=200_000)
    return est.fit(X, y)


@pytest.mark.parametrize("pen, strength, l1_ratio", [("l2", 1e-2, None), ("l2", 1e-4, None), ("l1", 1e-2, None),
                                                     ("l1", 1e-3, None), ("elasticnet", 1e-2, 0.5)])
def test_binary_optimum_and_zeros_match_sklearn(pen: str, strength: float, l1_ratio: float | None) -> None:
    X, y = _scaled(load_breast_cancer)
    params = {"strength": strength, **({"l1_ratio": l1_ratio} if l1_ratio is not None else {})}
    (result,) = _newton(X, y, 2, pen, [params])
    ref = _sklearn(X, y, pen, strength, l1_ratio)
    assert result.stop_reason == "converged" and result.epochs_run <= 2
    np.testing.assert_allclose(result.weight[:, 0], ref.coef_[0], atol=5e-5)
    np.testing.assert_allclose(result.intercept, ref.intercept_, atol=5e-5)
    if pen != "l2":
        assert np.array_equal(result.weight[:, 0] == 0, ref.coef_[0] == 0)
        assert (result.weight == 0).sum() > 0


def _multinomial_objective(X, y, W, b, strength: float, l1_ratio: float) -> float:
    z = X @ W + b
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean()
                 + strength * (l1_ratio * np.abs(W).sum() + (1 - l1_ratio) / 2 * (W ** 2).sum()))


@pytest.mark.parametrize("pen, l1_ratio", [("l2", 0.0), ("l1", 1.0), ("elasticnet", 0.5)])
def test_multinomial_reaches_sklearns_objective(pen: str, l1_ratio: float) -> None:
    X, y = _scaled(load_wine)
    strength = 1e-2
    params = {"strength": strength, **({"l1_ratio": l1_ratio} if pen == "elasticnet" else {})}
    (result,) = _newton(X, y, 3, pen, [params])
    ref = _sklearn(X, y, pen, strength, l1_ratio)
    ours = _multinomial_objective(X, y, result.weight, result.intercept, strength, l1_ratio)
    theirs = _multinomial_objective(X, y, ref.coef_.T, ref.intercept_, strength, l1_ratio)
    assert ours <= theirs + 1e-9
    if pen == "l2":  # a unique optimum: the same weights
        np.testing.assert_allclose(result.weight, ref.coef_.T, atol=1e-5)


def test_sparse_float32_matches_sklearn() -> None:
    X, y = _scaled(load_breast_cancer)
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    (result,) = _newton(Xs, y, 2, "l2", [{"strength": 1e-3}], dtype="float32")
    ref = _sklearn(Xs, y, "l2", 1e-3)
    np.testing.assert_allclose(result.weight[:, 0], ref.coef_[0], atol=2e-3)


def test_side_by_side_equals_alone() -> None:
    X, y = _scaled(load_breast_cancer)
    settings = [{"strength": 1e-2}, {"strength": 1e-4}, {"strength": 3e-3}]
    pens = [penalties.get("l1"), penalties.get("l2"), penalties.get("l1")]
    together = fit_many(X, y, 2, pens, settings, optimizers.get("newton"), [{}] * 3,
                        TrainConfig(dtype="float64", epochs=50))
    for pen, params, joint in zip(pens, settings, together):
        (alone,) = _newton(X, y, 2, pen.name, [params])
        np.testing.assert_allclose(joint.weight, alone.weight, atol=1e-8)
        assert np.array_equal(joint.weight == 0, alone.weight == 0)


def test_hessian_matches_autograd() -> None:
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.normal(size=(40, 3)))
    y = torch.tensor(rng.integers(0, 3, size=40))
    W = torch.tensor(rng.normal(size=(3, 3)))
    b = torch.tensor(rng.normal(size=3))

    def loss(theta: torch.Tensor) -> torch.Tensor:
        Wt, bt = theta[:9].view(3, 3), theta[9:]
        return torch.nn.functional.cross_entropy(X @ Wt + bt, y)

    expected = torch.autograd.functional.hessian(loss, torch.cat([W.reshape(-1), b]))
    z = (X @ W + b).unsqueeze(1)  # (n, K=1, c)
    got = data_hessian(X, z, torch.ones(40, 1, dtype=torch.float64), 40)[0]
    torch.testing.assert_close(got, expected)


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]  # `-k cuda` on the GPU machine


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("c", [1, 3])
def test_row_pair_hessian_equals_the_dense_one(c: int, device: str) -> None:
    """Sparse rows take the row-pair products (one sparse product for all trials and class
    pairs); they give the dense blocks' Hessian, per trial, empty rows and uneven rows included."""
    import scipy.sparse as sp

    from tuner.train import _curvature
    from tuner.train._device import _csr_tensor

    rng = np.random.default_rng(c)
    n, p, k = 300, 40, 5
    A = sp.random(n, p, density=0.1, random_state=c, format="csr", dtype=np.float64)
    A.data = rng.normal(size=A.nnz)
    A[:7] = 0  # rows with nothing stored
    A.eliminate_zeros()
    X = _csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)), torch.from_numpy(A.indices.astype(np.int64)),
                    torch.from_numpy(A.data), A.shape).to(device)
    z = torch.tensor(rng.normal(size=(n, k, c)), device=device)
    w = torch.tensor(rng.random((n, k)), device=device)
    assert _curvature.row_pairs(X) is not None
    by_pairs = data_hessian(X, z, w, n)
    _curvature._PAIRS[id(X)] = None  # the dense blocks for the same tensor
    torch.testing.assert_close(by_pairs, data_hessian(X, z, w, n), rtol=1e-12, atol=1e-14)
    assert _curvature.row_pairs(torch.tensor(A.toarray())) is None  # a dense tensor
    full = torch.tensor(rng.normal(size=(n, p))).to_sparse_csr()
    assert _curvature.row_pairs(full) is None  # full rows: the dense blocks are cheaper


@pytest.mark.parametrize("p", [20, 600])  # one gradient a column; one batched gradient (BATCHED_COLUMNS)
def test_penalty_hessian_is_each_trials_own(p: int) -> None:
    """Two elastic-net trials side by side and one with a penalty whose smooth part is not
    quadratic: each trial's block is the Hessian autograd gives for it alone."""
    from tuner.train._curvature import BATCHED_COLUMNS, penalty_hessian
    from tuner.train._penalties import PenaltyGroups

    class Quartic(type(penalties.get("l2"))):  # strength * sum w^4: a diagonal that depends on W
        name = "quartic"

        def smooth_value(self, weight, params):
            return (params["strength"] * weight.pow(4)).sum(dim=(-2, -1))

    pens = [penalties.get("elasticnet"), penalties.get("elasticnet"), Quartic()]
    params = [{"strength": 0.1, "l1_ratio": 0.25}, {"strength": 0.01, "l1_ratio": 0.5}, {"strength": 0.3}]
    W = torch.tensor(np.random.default_rng(1).normal(size=(3, p, 1)))
    H = penalty_hessian(PenaltyGroups(pens, params, True, torch.float64, torch.device("cpu")), W)
    assert (p >= BATCHED_COLUMNS) == (p == 600) and H is not None and H.shape == (3, p, p)
    torch.testing.assert_close(H[0], torch.diag(torch.full((p,), 0.1 * 0.75, dtype=torch.float64)))
    torch.testing.assert_close(H[1], torch.diag(torch.full((p,), 0.01 * 0.5, dtype=torch.float64)))
    torch.testing.assert_close(H[2], torch.diag(12 * 0.3 * W[2, :, 0] ** 2))


def test_an_elastic_nets_curvature_is_its_l2_weight_without_differentiating(monkeypatch) -> None:
    """Trials whose penalties are all elastic nets (l1, l2, elastic net, none) add their L2 weight
    to the diagonal of their weights' block, and their Hessian product is that weight times the
    direction: the same as differentiating their gradient, which is not done; a penalty that is
    not an elastic net still is differentiated."""
    from tuner.train import _curvature
    from tuner.train._penalties import PenaltyGroups

    p, c = 7, 2
    names = ["l2", "elasticnet", "l1", "none"]
    params = [{"strength": 0.3}, {"strength": 0.2, "l1_ratio": 0.25}, {"strength": 0.5}, {}]
    groups = PenaltyGroups([penalties.get(n) for n in names], params, True, torch.float64, torch.device("cpu"))
    rng = np.random.default_rng(2)
    W = torch.tensor(rng.normal(size=(4, p, c)))
    idx = torch.tensor([0, 1, 3])
    expected = _curvature.penalty_hessian(groups, W)  # by differentiating the gradient
    V = torch.tensor(rng.normal(size=(3, p, c)))
    product_expected = _curvature.penalty_product(groups, W, idx)
    assert expected is not None and product_expected is not None

    def refused(*args):
        raise AssertionError("an elastic net's curvature was taken by differentiating its gradient")

    monkeypatch.setattr(_curvature, "_penalty_gradient", refused)
    H = torch.zeros(3, p * c + c, p * c + c, dtype=torch.float64)
    _curvature.add_penalty_hessian(H, groups, W, idx)
    torch.testing.assert_close(H[:, :p * c, :p * c], expected[idx], rtol=1e-15, atol=0)
    assert not H[:, p * c:].any() and not H[:, :, p * c:].any()  # the intercepts carry no penalty
    torch.testing.assert_close(H.diagonal(dim1=1, dim2=2)[:, 0], torch.tensor([0.3, 0.2 * 0.75, 0.0], dtype=torch.float64))
    product = _curvature.penalty_product(groups, W, idx)
    assert product is not None
    monkeypatch.undo()
    torch.testing.assert_close(product(V), product_expected(V), rtol=1e-15, atol=0)
    no_l2 = PenaltyGroups([penalties.get("l1"), penalties.get("none")], [{"strength": 0.5}, {}], True,
                          torch.float64, torch.device("cpu"))
    assert _curvature.penalty_product(no_l2, W[:2], torch.tensor([0, 1])) is None

    class Quartic(type(penalties.get("l2"))):  # strength * sum w^4: no elastic net, so differentiated
        name = "quartic"

        def smooth_value(self, weight, params):
            return (params["strength"] * weight.pow(4)).sum(dim=(-2, -1))

    mixed = PenaltyGroups([penalties.get("l2"), Quartic()], [{"strength": 0.3}, {"strength": 0.1}], True,
                          torch.float64, torch.device("cpu"))
    H = torch.zeros(2, p * c + c, p * c + c, dtype=torch.float64)
    _curvature.add_penalty_hessian(H, mixed, W[:2], torch.tensor([0, 1]))
    torch.testing.assert_close(H[1, :p * c, :p * c], torch.diag(12 * 0.1 * W[1].reshape(-1) ** 2))
    torch.testing.assert_close(H[0, :p * c, :p * c], 0.3 * torch.eye(p * c, dtype=torch.float64))


def test_a_model_too_large_for_its_hessian_is_refused_in_one_line() -> None:
    rng = np.random.default_rng(0)
    X = sp.random(50, HESSIAN_MAX_PARAMS + 10, density=0.01, random_state=0, format="csr")
    y = rng.integers(0, 2, size=50)
    with pytest.raises(ConfigError, match="uses the Hessian.*first-order"):
        _newton(X, y, 2, "l2", [{"strength": 1e-3}])


def test_a_default_study_searches_newton_alone_where_it_fits_and_leaves_it_out_elsewhere() -> None:
    data = prepare(load_data(None, dataset="breast_cancer"), val_size=0.2, test_size=0.2, seed=0)
    spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["l2", "l1"], optimizers=optimizers.names())
    notices = hessian_solvers_where_they_fit(spec, data)
    assert spec.optimizers == ["newton"] and len(notices) == 1 and "sgd" in notices[0]
    spec.optimizers = optimizers.names()
    data.X_train = sp.random(200, HESSIAN_MAX_PARAMS, density=0.01, random_state=0, format="csr")
    notices = hessian_solvers_where_they_fit(spec, data)
    # too large for newton: truncated Newton takes l2, the quasi-Newton lbfgs (OWL-QN) l1
    assert spec.optimizers == ["lbfgs", "newton_cg"] and len(notices) == 1, (spec.optimizers, notices)
    assert spec.left_out_variants == ["l2:lbfgs"]
    assert ("leaves out newton; the search uses the truncated Newton solvers (newton_cg) for l2, and the "
            "quasi-Newton solvers (lbfgs) for the other penalties") in notices[0]
    assert "search adam, fista, rmsprop, sgd too" in notices[0]
    spec.optimizers = optimizers.names()  # mini-batches sized by the user: only newton leaves
    notices = hessian_solvers_where_they_fit(spec, data, keep_mini_batch=True)
    assert set(spec.optimizers) == set(optimizers.names()) - {"newton"}, spec.optimizers
    assert notices and notices[0].endswith("so the search leaves out newton")


def test_an_ill_conditioned_l1_trial_converges_in_a_few_passes() -> None:
    """Nearly separable data and a small L1 strength (the study's breast_cancer split): the smooth
    Newton step is huge there, so the model is solved from the current point."""
    data = prepare(load_data(None, dataset="breast_cancer"), val_size=0.2, test_size=0.2, seed=0)
    strength = 2.5e-4
    (result,) = _newton(data.X_train, data.y_train, 2, "l1", [{"strength": strength}])
    assert result.stop_reason == "converged" and result.epochs_run <= 2
    with warnings.catch_warnings():  # saga crawls here; any point it reaches bounds the optimum from above
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression(C=1.0 / (strength * len(data.y_train)), solver="saga", l1_ratio=1.0, tol=1e-10,
                                 max_iter=20_000).fit(data.X_train, data.y_train)
    X, y = data.X_train, data.y_train

    def objective(w: np.ndarray, b: float) -> float:
        z = X @ w + b
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + strength * np.abs(w).sum())

    assert objective(result.weight[:, 0], float(result.intercept[0])) <= objective(ref.coef_[0], ref.intercept_[0]) + 1e-9


def test_flat_directions_of_one_hot_groups_are_settled_by_the_l1_part() -> None:
    """One-hot columns of a categorical feature sum to the intercept's column, so the log loss is
    flat along "add t to a group's weights, subtract t from the intercept" and only the L1 part
    decides there: the optimum holds a zero in each group of three (the median shift). Proximal
    gradient steps crawl along such a direction (a9a: thousands of them); the active-set polish
    moves along it to the first zero at once."""
    rng = np.random.default_rng(0)
    n, groups, levels = 4000, 4, 3
    codes = rng.integers(0, levels, size=(n, groups))
    X = np.zeros((n, groups * levels))
    X[np.arange(n)[:, None], codes + levels * np.arange(groups)] = 1.0
    planted = rng.normal(0.0, 1.5, size=groups * levels)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ planted - 1.0)))).astype(int)
    strength = 1e-4
    calls = {"prox": 0}
    l1 = penalties.get("l1")
    prox = type(l1).prox

    def counted(self, weight, step, params):
        calls["prox"] += 1
        return prox(self, weight, step, params)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(l1), "prox", counted)
        (result,) = _newton(X, y, 2, "l1", [{"strength": strength}])
    assert result.stop_reason == "converged" and result.epochs_run <= 2
    w = result.weight[:, 0].reshape(groups, levels)
    assert (w == 0).any(axis=1).all(), w

    def objective(w: np.ndarray, b: float) -> float:
        z = X @ w + b
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + strength * np.abs(w).sum())

    ref = _sklearn(X, y, "l1", strength)
    assert objective(result.weight[:, 0], float(result.intercept[0])) <= objective(ref.coef_[0], ref.intercept_[0]) + 1e-9
    assert calls["prox"] < 200, calls  # 65 here; 575 with proximal gradient rounds alone


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_nearly_unregularized_elastic_net_on_a9a_is_optimal_without_crawling(a9a, dtype: str) -> None:
    """a9a at an elastic-net strength of 1e-7 (a trial TPE draws): the model of each Newton step
    is nearly flat along the one-hot groups, and FISTA rounds on it used to cut the gap by a few
    percent each, ~5,000 iterations a fit, until a round that does not cut it by a tenth ends
    them (``STALLED_ROUND``). The result must still be optimal: its proximal-gradient residual,
    computed here in float64 from scratch, is at the optimizer's tolerance."""
    X, y = a9a
    strength, l1_ratio = 1.4241167236866582e-07, 0.30157481667454933
    from logreg_tuner_plugins._newton import BatchedNewton

    iterations = {"budget": 0}
    fista = BatchedNewton._fista

    def counted(self, *args):
        iterations["budget"] += args[-1]  # the iterations the round may take
        return fista(self, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BatchedNewton, "_fista", counted)
        (result,) = _newton(X, y, 2, "elasticnet", [{"strength": strength, "l1_ratio": l1_ratio}], dtype=dtype)
    assert result.stop_reason == "converged", result.stop_reason
    assert iterations["budget"] < 1000, iterations  # ~150 here; 5,000 before
    w, b = result.weight[:, 0].astype(np.float64), float(result.intercept[0])
    Xd = X.astype(np.float64)
    s = 1.0 / (1.0 + np.exp(-(Xd @ w + b)))
    grad_w = Xd.T @ (s - y) / len(y) + strength * (1.0 - l1_ratio) * w
    grad_b = float(np.mean(s - y))
    step = w - grad_w
    prox = np.sign(step) * np.maximum(np.abs(step) - strength * l1_ratio, 0.0)
    residual = max(np.abs(w - prox).max(), abs(grad_b))
    assert residual <= (2e-6 if dtype == "float32" else 1e-8), residual


def test_l1_with_flat_directions_and_one_wide_column_reaches_the_optimum() -> None:
    """a9a's one-hot groups beside the intercept leave the Hessian singular; with one column of
    values ~500 beside them, the model's support solves shot off along the flat directions and
    each outer step crept 1e-5: newton stopped 4% above the optimum with 16 zero weights
    (52 at the optimum) and called it converged. OWL-QN (lbfgs) finds the optimum."""
    from sklearn.datasets import load_svmlight_file

    import tuner

    data = Path(os.environ.get("TUNER_DATA_DIR", "../shared/data")) / "a9a" / "a9a"
    X, y = load_svmlight_file(str(data), n_features=123)
    n = 3000
    X, y = X[:n].toarray(), y[:n]
    rng = np.random.default_rng(0)
    X = np.column_stack([X, rng.exponential(500, n) * (rng.random(n) < 0.3)])

    def objective(m: Any) -> float:
        z = X @ m.coef_[0] + m.intercept_[0]
        return float(np.mean(np.logaddexp(0, z) - (y > 0) * z) + np.abs(m.coef_).sum() / n)

    newton = tuner.LogisticRegression("l1", "newton", C=1.0).fit(X, y)
    reference = tuner.LogisticRegression("l1", "lbfgs", C=1.0, tol=1e-10).fit(X, y)
    assert newton.stop_reason_ == "converged"
    assert objective(newton) == pytest.approx(objective(reference), rel=1e-6)
    assert np.array_equal(newton.coef_ == 0, reference.coef_ == 0)
