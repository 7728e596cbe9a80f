"""Parity with scikit-learn's LogisticRegression, converged tightly.

Our convention: objective = (1/n) sum_i loss_i + strength * (l1_ratio ||W||_1 + (1 - l1_ratio)/2 ||W||^2)
with strength = 1 / (C n); scikit-learn minimises n * strength times the same thing, so both
reach the same optimum. Our converging solvers (lbfgs and newton_cg for smooth penalties; fista and lbfgs,
which runs OWL-QN, for l1 and elastic net) in float64 must reach scikit-learn's training
objective within 1e-6 relative and, with an L1 part, the same set of zero coefficients.

Data: a9a (LIBSVM, 32,561 x 123 sparse), breast cancer (standardized), digits and SST-1
(multinomial, TF-IDF). Two things shape the choice of problems:

* scikit-learn's only elastic-net solver, saga, needs minutes on all of a9a at tol=1e-10, so
  the L1 / elastic-net cases use a9a's first 6,000 rows (with strengths in the usual range);
* unpenalized breast cancer (30 features) is linearly separable: the objective has no
  minimum, so `none` uses its 10 "mean" features, which are not separable.

a9a's features are one-hot groups that, with the free intercept, are collinear; for a pure
L1 penalty the minimiser is then not unique (moving weight between the two indicators of a
two-valued attribute costs nothing), so two exact solvers can end with different zero sets
at the same objective. What every minimiser shares is the gradient of the smooth part (the
logits are unique), so for L1 the zero sets must agree on every coordinate whose gradient is
not on the boundary |g_j| = strength; elastic net is strictly convex and compared exactly.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit, logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from tuner import optimizers, penalties
from tuner.train import FitResult, TrainConfig, fit

pytestmark = pytest.mark.slow

REL = 1e-6
SUBSET = 6000  # rows of a9a for the saga references
TIGHT = dict(dtype="float64", device="cpu", tol=1e-9, patience=2, epochs=400, seed=0)
SOLVER = {"none": "lbfgs", "l2": "lbfgs", "l1": "fista", "elasticnet": "fista"}
L1_RATIO = {"none": 0.0, "l2": 0.0, "l1": 1.0, "elasticnet": 0.5}


def binary_objective(X: Any, y: np.ndarray, w: np.ndarray, b: float, strength: float, l1_ratio: float) -> float:
    z = np.asarray(X @ w).ravel() + b
    loss = np.mean(np.logaddexp(0.0, z) - y * z)
    return float(loss + strength * (l1_ratio * np.abs(w).sum() + (1 - l1_ratio) / 2 * (w @ w)))


def multinomial_objective(X: Any, y: np.ndarray, W: np.ndarray, b: np.ndarray, strength: float) -> float:
    Z = np.asarray(X @ W) + b
    loss = np.mean(logsumexp(Z, axis=1) - Z[np.arange(len(y)), y])
    return float(loss + strength / 2 * (W * W).sum())


def sklearn_fit(X: Any, y: np.ndarray, C: float, l1_ratio: float, solver: str | None = None) -> LogisticRegression:
    """A tightly converged reference; a convergence warning fails the test."""
    solver = solver or ("lbfgs" if l1_ratio == 0 else "saga")
    model = LogisticRegression(C=C, l1_ratio=l1_ratio, solver=solver, tol=1e-10, max_iter=1_000_000)
    # One BLAS/OpenMP thread: on a small busy machine, scikit-learn's thread pools make the
    # multinomial fits a hundred times slower.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    return model


def our_fit(X: Any, y: np.ndarray, penalty: str, strength: float | None, n_classes: int = 2,
            solver: str | None = None) -> FitResult:
    pen, opt = penalties.get(penalty), optimizers.get(solver or SOLVER[penalty])
    pp = {} if penalty == "none" else {"strength": strength}
    if penalty == "elasticnet":
        pp["l1_ratio"] = L1_RATIO[penalty]
    op = {name: hp.default for name, hp in opt.search_space.items()}
    config = TrainConfig(**TIGHT)
    if penalty == "none":
        # Unpenalized a9a is very ill-conditioned: L-BFGS creeps along a flat valley for
        # thousands of iterations; 1e-8 per 100 iterations is well inside the 1e-6 asked for.
        config.tol, config.patience = 1e-8, 1
    result = fit(X, y, n_classes, pen, pp, opt, op, config)
    assert result.stop_reason == "converged", result.stop_reason
    return result


def a9a_subset(a9a: tuple[sp.csr_matrix, np.ndarray]) -> tuple[sp.csr_matrix, np.ndarray]:
    X, y = a9a
    return X[:SUBSET], y[:SUBSET]


def problem(name: str, a9a: Any, breast_cancer: Any) -> tuple[Any, np.ndarray]:
    if name == "a9a":
        return a9a
    if name == "a9a[:6000]":
        return a9a_subset(a9a)
    if name == "breast_cancer":
        return breast_cancer
    if name == "breast_cancer[mean features]":
        X, y = breast_cancer
        return X[:, :10], y
    raise AssertionError(name)


# (data, penalty, C): two strengths per penalty and data set, chosen so that saga converges
# to tol=1e-10 in seconds; an L1 part is solved by fista and by lbfgs (OWL-QN)
_CASES = [
    ("a9a", "l2", 1.0),
    ("a9a", "l2", 0.05),
    ("a9a[:6000]", "l1", 0.05),
    ("a9a[:6000]", "l1", 0.01),
    ("a9a[:6000]", "elasticnet", 0.03),
    ("a9a[:6000]", "elasticnet", 0.01),
    ("breast_cancer", "l2", 1.0),
    ("breast_cancer", "l2", 0.1),
    ("breast_cancer", "l1", 0.1),
    ("breast_cancer", "l1", 0.01),
    ("breast_cancer", "elasticnet", 1.0),
    ("breast_cancer", "elasticnet", 0.1),
]
SMOOTH_SOLVERS = ["lbfgs", "newton_cg"]  # the full-batch solvers of smooth penalties on models of any size
BINARY_CASES = [(d, p, C, solver) for d, p, C in _CASES
                for solver in (SMOOTH_SOLVERS if L1_RATIO[p] == 0 else [SOLVER[p], "lbfgs"])]


@pytest.mark.parametrize("data, penalty, C, solver", BINARY_CASES,
                         ids=[f"{d}-{p}-C={c:g}-{s}" for d, p, c, s in BINARY_CASES])
def test_binary_parity(data: str, penalty: str, C: float, solver: str, a9a: Any, breast_cancer: Any) -> None:
    X, y = problem(data, a9a, breast_cancer)
    n = X.shape[0]
    strength, l1_ratio = 1.0 / (C * n), L1_RATIO[penalty]
    ref = sklearn_fit(X, y, C, l1_ratio)
    w_ref, b_ref = ref.coef_.ravel(), float(ref.intercept_[0])
    started = time.perf_counter()
    ours = our_fit(X, y, penalty, strength, solver=solver)
    seconds = time.perf_counter() - started
    w, b = ours.weight.ravel(), float(ours.intercept[0])
    f_ref = binary_objective(X, y, w_ref, b_ref, strength, l1_ratio)
    f_ours = binary_objective(X, y, w, b, strength, l1_ratio)
    print(f"{data} {penalty} C={C:g}: relative gap {(f_ours - f_ref) / f_ref:.2e}, zeros {np.sum(w == 0)} "
          f"(sklearn {np.sum(w_ref == 0)}), {ours.epochs_run} epochs, {seconds:.1f} s")
    assert abs(f_ours - f_ref) <= REL * f_ref
    assert ours.objective == pytest.approx(f_ours, rel=1e-9)  # the trainer reports this objective
    # the same model: a9a is ill-conditioned (along rare features a weight moves by 1e-3 while
    # the objective changes by 1e-11), so compare what the weights predict
    np.testing.assert_allclose(expit(np.asarray(X @ w).ravel() + b), ref.predict_proba(X)[:, 1], atol=1e-3)
    if penalty == "l2":
        assert not np.any(w == 0)
        return
    zeros, zeros_ref = w == 0, w_ref == 0
    assert 0 < zeros.sum() < len(w)  # a meaningful sparsity level
    if penalty == "elasticnet" or data.startswith("breast_cancer"):
        np.testing.assert_array_equal(zeros, zeros_ref)
    else:
        # pure L1 on a9a: minimisers can differ on coordinates at the subgradient boundary only
        z = np.asarray(X @ w).ravel() + b
        grad = np.asarray(X.T @ (1 / (1 + np.exp(-z)) - y)).ravel() / n
        interior = np.abs(grad) < strength * (1 - 1e-4)
        assert interior.sum() >= 0.5 * zeros_ref.sum()
        np.testing.assert_array_equal(zeros[interior], zeros_ref[interior])
        assert zeros[interior].all()  # strictly inside the subgradient: zero in every minimiser
        assert np.sum(zeros != zeros_ref) <= 3


@pytest.mark.parametrize("solver", SMOOTH_SOLVERS)
@pytest.mark.parametrize("data, C", [("a9a", 1e6), ("breast_cancer[mean features]", 1e6)])
def test_unpenalized_parity(data: str, C: float, solver: str, a9a: Any, breast_cancer: Any) -> None:
    """`none` has no penalty; scikit-learn with a C this large is within 1e-6 of the same optimum.

    The reference is scikit-learn's Newton solver: on a9a (a nearly flat valley along rare
    features) its L-BFGS needs about 400 s to reach tol=1e-10 at C=1e4, Newton-Cholesky well
    under a second at C=1e6, and lands lower.
    """
    X, y = problem(data, a9a, breast_cancer)
    ref = sklearn_fit(X, y, C, 0.0, solver="newton-cholesky")
    f_ref = binary_objective(X, y, ref.coef_.ravel(), float(ref.intercept_[0]), 0.0, 0.0)
    ours = our_fit(X, y, "none", None, solver=solver)
    f_ours = binary_objective(X, y, ours.weight.ravel(), float(ours.intercept[0]), 0.0, 0.0)
    print(f"{data} none (sklearn C={C:g}): relative gap {(f_ours - f_ref) / f_ref:.2e}")
    assert abs(f_ours - f_ref) <= REL * f_ref
    assert ours.n_nonzero == ours.weight.size


@pytest.mark.parametrize("solver", SMOOTH_SOLVERS)
def test_multinomial_parity_digits(solver: str) -> None:
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    d = load_digits()
    X, y = StandardScaler().fit_transform(d.data), d.target
    n, K = len(y), 10
    for C in (1.0, 0.01):
        strength = 1.0 / (C * n)
        ref = sklearn_fit(X, y, C, 0.0)
        assert ref.coef_.shape == (K, X.shape[1])
        ours = our_fit(X, y, "l2", strength, n_classes=K, solver=solver)
        assert ours.weight.shape == (X.shape[1], K) and ours.intercept.shape == (K,)
        f_ref = multinomial_objective(X, y, ref.coef_.T, ref.intercept_, strength)
        f_ours = multinomial_objective(X, y, ours.weight, ours.intercept, strength)
        print(f"digits l2 C={C:g}: relative gap {(f_ours - f_ref) / f_ref:.2e}")
        assert abs(f_ours - f_ref) <= REL * f_ref
        np.testing.assert_allclose(ours.weight, ref.coef_.T, rtol=1e-3, atol=1e-4 * np.abs(ref.coef_).max())
        proba = np.exp(X @ ours.weight + ours.intercept - logsumexp(X @ ours.weight + ours.intercept, axis=1)[:, None])
        np.testing.assert_allclose(proba, ref.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("solver", SMOOTH_SOLVERS)
def test_multinomial_parity_sst1(data_dir: Any, solver: str) -> None:
    from tuner.data import load_data, prepare

    ds = prepare(load_data(data_dir / "sst" / "stsa.fine.train"), val_size=0, test_size=0)
    X, y = ds.X_train, ds.y_train
    assert ds.n_classes == 5 and X.shape[0] == 8544 and X.shape[1] > 90_000
    X = sp.csr_matrix(X)
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)
    C = 0.3
    strength = 1.0 / (C * X.shape[0])
    ref = sklearn_fit(X, y, C, 0.0)
    ours = our_fit(X, y, "l2", strength, n_classes=5, solver=solver)
    f_ref = multinomial_objective(X, y, ref.coef_.T, ref.intercept_, strength)
    f_ours = multinomial_objective(X, y, ours.weight, ours.intercept, strength)
    print(f"SST-1 l2 C={C:g}: relative gap {(f_ours - f_ref) / f_ref:.2e}")
    assert abs(f_ours - f_ref) <= REL * f_ref
    agree = np.mean((np.asarray(X @ ours.weight) + ours.intercept).argmax(axis=1) == ref.predict(X))
    assert agree > 0.999
