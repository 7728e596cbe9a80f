"""The batched full-batch solvers (K trials as K weight columns) against scikit-learn.

Each test builds a small batched logistic objective by hand (binary or multinomial, dense or
sparse CSR; per-trial strengths and l1 ratios as ``(K, 1, 1)`` tensors), lets
:class:`BatchedFISTA` or :class:`BatchedLBFGS` minimise it the way the trainer does (one
``step()`` per "epoch" until the objective stops moving), and checks every column against
scikit-learn's ``LogisticRegression`` at the same penalty (``strength = 1 / (C n)``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from logreg_tuner_plugins._batched_solvers import BatchedFISTA, BatchedLBFGS
from logreg_tuner_plugins._fista import FISTA
from logreg_tuner_plugins._owlqn import BatchedOWLQN, OneTrialOWLQN
from logreg_tuner_plugins.penalties import soft_threshold
from tuner.train import Placement, matmul

REL = {torch.float64: 1e-6, torch.float32: 1e-4}


class Problem:
    """``f_k(W_k, b_k) = mean_i loss_i + strength_k (1 - l1_k) / 2 ||W_k||^2`` for K trials, plus
    the L1 part ``strength_k l1_k ||W_k||_1`` through :meth:`prox`."""

    def __init__(self, X: Any, y: np.ndarray, n_classes: int, C: Any, l1_ratio: Any,
                 dtype: torch.dtype = torch.float64) -> None:
        place = Placement(torch.device("cpu"), dtype)
        self.X, self.y = X, y
        self.Xt = place.features(X)
        self.XT = place.features(sp.csr_matrix(X).T.tocsr()) if sp.issparse(X) else None
        self.n, self.p = self.Xt.shape
        self.k, self.c = len(C), 1 if n_classes == 2 else n_classes
        self.C, self.l1 = np.asarray(C, dtype=float), np.asarray(l1_ratio, dtype=float)
        self.strength = 1.0 / (self.C * self.n)
        self.lam = torch.as_tensor(self.strength, dtype=dtype).view(-1, 1, 1)
        self.l1t = torch.as_tensor(self.l1, dtype=dtype).view(-1, 1, 1)
        self.yt = torch.as_tensor(y)
        self.W = torch.zeros(self.k, self.p, self.c, dtype=dtype, requires_grad=True)
        self.b = torch.zeros(self.k, 1, self.c, dtype=dtype, requires_grad=True)
        self.evaluations = 0

    @property
    def groups(self) -> list[dict[str, Any]]:
        return [{"params": [self.W], "penalized": True}, {"params": [self.b], "penalized": False}]

    def smooth(self) -> torch.Tensor:
        return self.smooth_at(self.W, self.b)

    def smooth_at(self, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        k, c, n = self.k, self.c, self.n
        Z = matmul(self.Xt, W.permute(1, 0, 2).reshape(self.p, k * c), self.XT).view(n, k, c)
        Z = Z + b.permute(1, 0, 2)
        if c == 1:
            z = Z[..., 0]
            loss = (torch.nn.functional.softplus(z) - self.yt[:, None].to(z.dtype) * z).mean(0)
        else:
            loss = (torch.logsumexp(Z, 2) - Z.gather(2, self.yt.view(n, 1, 1).expand(n, k, 1))[..., 0]).mean(0)
        return loss + (self.lam * (1 - self.l1t) / 2 * W.pow(2)).sum((1, 2))

    def closure(self) -> Callable[[], torch.Tensor]:
        def closure() -> torch.Tensor:
            self.W.grad, self.b.grad = None, None
            f = self.smooth()
            f.sum().backward()
            return f.detach()

        closure.value_only = torch.no_grad()(self.smooth)  # type: ignore[attr-defined]
        closure.l1_weights = lambda: (self.lam * self.l1t).reshape(-1)  # type: ignore[attr-defined]
        return closure

    def prox(self, V: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        assert step.shape == (self.k, 1, 1)
        return soft_threshold(V, step * self.lam * self.l1t)

    def weights(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Trial k's ``(p, c)`` weights and ``(c,)`` intercept in float64."""
        return self.W[k].detach().double().numpy(), self.b[k, 0].detach().double().numpy()

    def objective(self, k: int, W: np.ndarray, b: np.ndarray) -> float:
        """Trial k's full objective at ``(W, b)``, in float64 numpy."""
        Z = np.asarray(self.X @ W) + b
        if self.c == 1:
            z = Z[:, 0]
            loss = np.mean(np.logaddexp(0.0, z) - self.y * z)
        else:
            loss = np.mean(logsumexp(Z, axis=1) - Z[np.arange(self.n), self.y])
        s, l1 = self.strength[k], self.l1[k]
        return float(loss + s * (l1 * np.abs(W).sum() + (1 - l1) / 2 * (W * W).sum()))


    @torch.no_grad()
    def full(self) -> torch.Tensor:
        """Every trial's whole objective (smooth plus L1 part)."""
        return self.smooth() + (self.lam * self.l1t * self.W.abs()).sum((1, 2))


def run(problem: Problem, opt: torch.optim.Optimizer, max_calls: int = 200) -> tuple[torch.Tensor, int]:
    """Call ``step`` once per "epoch" until no trial's whole objective moves by more than 1e-11
    (relative), as the trainer's stopping rule does."""
    closure = problem.closure()
    prev = None
    for calls in range(1, max_calls + 1):
        f = opt.step(closure)
        assert f.shape == (problem.k,)
        full = problem.full()
        if prev is not None and bool(((prev - full).abs() <= 1e-11 * full.abs()).all()):
            return f, calls
        prev = full
    return f, max_calls


def reference(X: Any, y: np.ndarray, C: float, l1_ratio: float, solver: str,
              tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's tightly converged ``(W (p, c), b (c,))``; a convergence warning fails the test."""
    model = LogisticRegression(C=C, l1_ratio=l1_ratio, solver=solver, tol=tol, max_iter=1_000_000)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    return model.coef_.T.copy(), model.intercept_.copy()


def check_against_sklearn(problem: Problem, refs: list[tuple[np.ndarray, np.ndarray]], dtype: torch.dtype,
                          zeros: bool) -> None:
    for k, (W_ref, b_ref) in enumerate(refs):
        W, b = problem.weights(k)
        f_ref, f_ours = problem.objective(k, W_ref, b_ref), problem.objective(k, W, b)
        assert abs(f_ours - f_ref) <= REL[dtype] * f_ref, (k, f_ours, f_ref)
        if zeros:
            assert 0 < (W == 0).sum() < W.size
            np.testing.assert_array_equal(W == 0, W_ref == 0, err_msg=f"trial {k}")


# --- data -------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """One intra-op thread, as the trainer uses for problems this small (the CSR products are
    ten times slower with a thread pool on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def a9a_rows(a9a: tuple[sp.csr_matrix, np.ndarray]) -> Callable[[int], tuple[sp.csr_matrix, np.ndarray]]:
    X, y = a9a
    return lambda rows: (X[:rows], y[:rows])


@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    d = load_wine()
    return StandardScaler().fit_transform(d.data), d.target.astype(np.int64)


def per_trial(values: list[float], dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype).view(-1, 1, 1)


# --- FISTA ------------------------------------------------------------------------------------

BC_FISTA = dict(C=[0.1, 0.03, 0.3, 0.05], l1_ratio=[0.5, 1.0, 0.7, 0.2])


@pytest.fixture(scope="module")
def bc_fista_refs(breast_cancer: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    X, y = breast_cancer
    return [reference(X, y, C, l1, "saga") for C, l1 in zip(BC_FISTA["C"], BC_FISTA["l1_ratio"])]


def _solver(name: str, problem: Problem, dtype: torch.dtype) -> torch.optim.Optimizer:
    """FISTA or OWL-QN over the four trials of BC_FISTA, with per-trial step lengths."""
    if name == "fista":
        return BatchedFISTA(problem.groups, prox=problem.prox, lr=per_trial([1.0, 10.0, 0.1, 1.0], dtype))
    return BatchedOWLQN(problem.groups, lr=per_trial([1.0, 0.5, 1.0, 0.3], dtype), history_size=10)


@pytest.mark.parametrize("solver", ["fista", "owlqn"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_l1_solvers_reach_sklearn_l1_and_elasticnet_dense(solver: str, dtype: torch.dtype, breast_cancer: Any,
                                                          bc_fista_refs: Any) -> None:
    """scikit-learn's optimum and, in float64, its exact zeros; ``step`` returns the smooth part."""
    problem = Problem(*breast_cancer, 2, BC_FISTA["C"], BC_FISTA["l1_ratio"], dtype)
    f, calls = run(problem, _solver(solver, problem, dtype))
    assert calls < 200
    check_against_sklearn(problem, bc_fista_refs, dtype, zeros=dtype == torch.float64)
    full = [problem.objective(k, *problem.weights(k)) for k in range(problem.k)]
    l1_part = [problem.strength[k] * problem.l1[k] * np.abs(problem.weights(k)[0]).sum() for k in range(problem.k)]
    np.testing.assert_allclose(f.double().numpy() + l1_part, full, rtol=10 * REL[dtype])  # f: the smooth part


A9A_FISTA = dict(rows=1000, C=[0.03, 0.02, 0.05, 0.01], l1_ratio=[0.5, 0.8, 0.6, 0.3])


def test_fista_reaches_sklearn_elasticnet_sparse(a9a_rows: Any) -> None:
    X, y = a9a_rows(A9A_FISTA["rows"])
    refs = [reference(X, y, C, l1, "saga", tol=1e-8) for C, l1 in zip(A9A_FISTA["C"], A9A_FISTA["l1_ratio"])]
    problem = Problem(X, y, 2, A9A_FISTA["C"], A9A_FISTA["l1_ratio"])
    opt = BatchedFISTA(problem.groups, prox=problem.prox, lr=1.0)
    run(problem, opt)
    check_against_sklearn(problem, refs, torch.float64, zeros=True)


def test_fista_multinomial(wine: Any) -> None:
    C, l1 = [0.5, 0.1, 0.05, 1.0], [1.0, 0.5, 0.9, 0.3]
    refs = [reference(*wine, c, r, "saga") for c, r in zip(C, l1)]
    problem = Problem(*wine, 3, C, l1)
    run(problem, BatchedFISTA(problem.groups, prox=problem.prox, lr=1.0))
    check_against_sklearn(problem, refs, torch.float64, zeros=True)


def test_fista_one_trial_matches_the_single_trial_fista(breast_cancer: Any) -> None:
    batched = Problem(*breast_cancer, 2, [0.05], [0.6])
    opt = BatchedFISTA(batched.groups, prox=batched.prox, lr=2.0, max_iter=20)
    # the single-trial FISTA on (p, 1) and (1,) leaves, through the very same arithmetic
    W = torch.zeros(batched.p, 1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)

    def smooth() -> torch.Tensor:
        return batched.smooth_at(W[None], b.view(1, 1, 1))[0]

    def closure() -> torch.Tensor:
        W.grad, b.grad = None, None
        f = smooth()
        f.backward()
        return f

    closure.value_only = torch.no_grad()(smooth)  # type: ignore[attr-defined]
    single = FISTA([{"params": [W], "penalized": True}, {"params": [b], "penalized": False}],
                   prox=lambda V, step: batched.prox(V[None], torch.full((1, 1, 1), step, dtype=V.dtype))[0],
                   lr=2.0, max_iter=20)
    batched_closure = batched.closure()
    f_single, f_batched = float(single.step(closure)), float(opt.step(batched_closure)[0])
    # the same iterations: equal up to rounding (torch.sqrt and math.sqrt differ in the last bit,
    # so later backtracking decisions at the rounding level may not be the same)
    assert f_batched == pytest.approx(f_single, rel=1e-7)  # FISTA returns its value as a float32 tensor
    np.testing.assert_allclose(batched.W[0].detach().numpy(), W.detach().numpy(), rtol=1e-12, atol=1e-15)
    for _ in range(30):
        single.step(closure)
        opt.step(batched_closure)
    W1, b1 = batched.weights(0)
    f_ours, f_ref = batched.objective(0, W1, b1), batched.objective(0, W.detach().numpy(), b.detach().numpy())
    assert f_ours == pytest.approx(f_ref, rel=1e-13)
    np.testing.assert_allclose(W1, W.detach().numpy(), atol=1e-7)
    np.testing.assert_array_equal(W1 == 0, W.detach().numpy() == 0)
    assert 0 < int((W == 0).sum()) < W.numel()


# --- OWL-QN (L-BFGS with an L1 part) ---------------------------------------------------------

def test_owlqn_reaches_sklearn_elasticnet_sparse_in_fewer_passes_than_fista(a9a_rows: Any) -> None:
    """a9a's collinear one-hot columns make it ill-conditioned: OWL-QN follows the curvature."""
    X, y = a9a_rows(A9A_FISTA["rows"])
    refs = [reference(X, y, C, l1, "saga", tol=1e-8) for C, l1 in zip(A9A_FISTA["C"], A9A_FISTA["l1_ratio"])]
    owlqn = Problem(X, y, 2, A9A_FISTA["C"], A9A_FISTA["l1_ratio"])
    run(owlqn, BatchedOWLQN(owlqn.groups))
    check_against_sklearn(owlqn, refs, torch.float64, zeros=True)
    fista = Problem(X, y, 2, A9A_FISTA["C"], A9A_FISTA["l1_ratio"])
    run(fista, BatchedFISTA(fista.groups, prox=fista.prox, lr=1.0))
    assert owlqn.evaluations < fista.evaluations / 2, (owlqn.evaluations, fista.evaluations)


def test_owlqn_multinomial_with_smooth_trials_in_the_group(wine: Any) -> None:
    """Trials without an L1 part (l1_ratio 0) share the group: L-BFGS steps, no projection."""
    C, l1 = [0.5, 0.1, 0.05, 1.0], [1.0, 0.0, 0.9, 0.3]
    refs = [reference(*wine, c, r, "saga" if r else "lbfgs") for c, r in zip(C, l1)]
    problem = Problem(*wine, 3, C, l1)
    run(problem, BatchedOWLQN(problem.groups))
    check_against_sklearn(problem, refs, torch.float64, zeros=False)
    for k, (W_ref, _) in enumerate(refs):
        W = problem.weights(k)[0]
        np.testing.assert_array_equal(W == 0, W_ref == 0, err_msg=f"trial {k}")  # none at all for the L2 trial


def test_owlqn_one_trial_equals_the_batch_of_one(breast_cancer: Any) -> None:
    """The trainer's single-trial shapes ((p, 1) weights, (1,) intercept, a closure returning one
    number) take the batched code's steps."""
    batched = Problem(*breast_cancer, 2, [0.05], [0.6])
    run(batched, BatchedOWLQN(batched.groups, max_iter=30), max_calls=5)
    single = Problem(*breast_cancer, 2, [0.05], [0.6])
    W = torch.zeros(single.p, 1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)

    def closure() -> torch.Tensor:
        W.grad, b.grad = None, None
        f = single.smooth_at(W[None], b[None, None]).sum()
        f.backward()
        return f.detach()

    closure.l1_weights = lambda: (single.lam * single.l1t).reshape(-1)  # type: ignore[attr-defined]
    opt = OneTrialOWLQN([{"params": [W], "penalized": True}, {"params": [b], "penalized": False}], max_iter=30)
    for _ in range(5):
        opt.step(closure)
    np.testing.assert_allclose(W.detach().numpy(), batched.W[0].detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(W.detach().numpy() == 0, batched.W[0].detach().numpy() == 0)


def test_owlqn_without_l1_weights_is_a_clear_error(breast_cancer: Any) -> None:
    problem = Problem(*breast_cancer, 2, [0.05], [0.6])
    closure = problem.closure()
    del closure.l1_weights  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="elastic net"):
        BatchedOWLQN(problem.groups).step(closure)


# --- L-BFGS -----------------------------------------------------------------------------------

A9A_LBFGS = dict(rows=3000, C=[1.0, 0.05, 0.2, 5.0], lr=[1.0, 0.5, 0.2, 1.0], history=[3, 5, 10, 20])


@pytest.fixture(scope="module")
def a9a_lbfgs_refs(a9a_rows: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    X, y = a9a_rows(A9A_LBFGS["rows"])
    return [reference(X, y, C, 0.0, "lbfgs") for C in A9A_LBFGS["C"]]


@pytest.mark.parametrize("dtype, max_iter", [(torch.float64, 100), (torch.float64, 7), (torch.float32, 100)])
def test_lbfgs_reaches_sklearn_l2_sparse(dtype: torch.dtype, max_iter: int, a9a_rows: Any, a9a_lbfgs_refs: Any) -> None:
    """Per-trial strengths, learning rates and history sizes; with ``max_iter=7`` the state
    (histories, steps) must carry over from one ``step()`` call to the next."""
    problem = Problem(*a9a_rows(A9A_LBFGS["rows"]), 2, A9A_LBFGS["C"], [0.0] * 4, dtype)
    opt = BatchedLBFGS([problem.W, problem.b], lr=per_trial(A9A_LBFGS["lr"], dtype), max_iter=max_iter,
                       history_size=per_trial(A9A_LBFGS["history"], dtype))
    f, calls = run(problem, opt)
    assert calls < 200
    check_against_sklearn(problem, a9a_lbfgs_refs, dtype, zeros=False)
    assert opt._state["m"] == 20 and opt._state["hist"].tolist() == A9A_LBFGS["history"]


def test_lbfgs_multinomial_dense(wine: Any) -> None:
    C = [1.0, 0.1, 10.0, 0.01]
    refs = [reference(*wine, c, 0.0, "newton-cg") for c in C]
    problem = Problem(*wine, 3, C, [0.0] * 4)
    run(problem, BatchedLBFGS(problem.groups, lr=1.0, history_size=per_trial([20, 4, 10, 7], torch.float64)))
    check_against_sklearn(problem, refs, torch.float64, zeros=False)


def test_lbfgs_one_trial_matches_torch_lbfgs(a9a_rows: Any) -> None:
    X, y = a9a_rows(2000)
    batched = Problem(X, y, 2, [0.3], [0.0])
    run(batched, BatchedLBFGS([batched.W, batched.b], lr=1.0, history_size=10))
    single = Problem(X, y, 2, [0.3], [0.0])
    # what LBFGSOptimizer built before trials side by side (its settings for float64)
    opt = torch.optim.LBFGS([single.W, single.b], lr=1.0, max_iter=100, history_size=10, tolerance_grad=1e-10,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")
    closure = single.closure()

    def summed() -> torch.Tensor:  # torch.optim.LBFGS wants a number
        return closure().sum()

    for _ in range(50):
        opt.step(summed)
    f_torch, f_ours = single.objective(0, *single.weights(0)), batched.objective(0, *batched.weights(0))
    assert f_ours == pytest.approx(f_torch, rel=1e-12)
    np.testing.assert_allclose(batched.weights(0)[0], single.weights(0)[0], atol=1e-5)


def test_batched_lbfgs_says_converged_once_a_call_cannot_lower_the_objective(breast_cancer: Any) -> None:
    """No gradient test can pass (tolerance 0), so only the rounding floor stops it: a whole call
    that does not lower a trial's objective is reported by converged() (the trainer ends the trial
    there instead of after `patience` such calls), and the next call gains nothing either."""
    problem = Problem(*breast_cancer, 2, [1.0, 0.05], [0.0, 0.0], torch.float32)
    opt = BatchedLBFGS(problem.groups, lr=1.0, max_iter=20, tolerance_grad=0.0, tolerance_change=0.0)
    closure = problem.closure()
    assert opt.converged() is None
    f_prev = opt.step(closure)
    assert not bool(opt.converged().any())  # the first call lowers every trial's objective
    for _ in range(300):
        f = opt.step(closure)
        assert opt.converged().tolist() == (~(f < f_prev)).tolist()
        if bool(opt.converged().all()):
            break
        f_prev = f
    else:
        pytest.fail("L-BFGS kept lowering the objective for 300 calls")
    after = opt.step(closure)
    assert bool((after >= f * (1 - 1e-6)).all())


def test_torch_lbfgs_says_converged_once_a_step_leaves_the_weights_unchanged(breast_cancer: Any) -> None:
    """The same for the one-trial L-BFGS (torch's), which says it when a call left every weight as it
    was; the next call then does not move them either."""
    from logreg_tuner_plugins._light import LightLBFGS

    problem = Problem(*breast_cancer, 2, [1.0], [0.0], torch.float32)
    opt = LightLBFGS([problem.W, problem.b], lr=1.0, max_iter=20, tolerance_grad=0.0, tolerance_change=0.0,
                     line_search_fn="strong_wolfe")
    inner = problem.closure()

    def closure() -> torch.Tensor:
        return inner().sum()

    assert opt.converged() is None
    for _ in range(300):
        before = problem.W.detach().clone(), problem.b.detach().clone()
        opt.step(closure)
        unchanged = torch.equal(problem.W, before[0]) and torch.equal(problem.b, before[1])
        assert opt.converged().tolist() == [unchanged]
        if unchanged:
            break
    else:
        pytest.fail("L-BFGS kept moving for 300 calls")
    opt.step(closure)
    assert torch.equal(problem.W, before[0]) and bool(opt.converged().all())


# --- isolation: a bad trial leaves the others alone ---------------------------------------------

def _fista(problem: Problem, lr: torch.Tensor) -> BatchedFISTA:
    return BatchedFISTA(problem.groups, prox=problem.prox, lr=lr)


def _lbfgs(problem: Problem, lr: torch.Tensor) -> BatchedLBFGS:
    return BatchedLBFGS(problem.groups, lr=lr, history_size=per_trial([5, 10, 20, 8], torch.float64))


@pytest.mark.parametrize("build, l1", [(_fista, 0.5), (_lbfgs, 0.0)], ids=["fista", "lbfgs"])
def test_a_bad_trial_does_not_change_the_others(build: Any, l1: float, breast_cancer: Any) -> None:
    C, lr = [0.1, 1.0, 0.03, 0.3], [1.0, 0.5, 1.0, 1.0]

    def solve(C3: float, lr3: float, calls: int = 6) -> tuple[Problem, list[torch.Tensor]]:
        problem = Problem(*breast_cancer, 2, C[:3] + [C3], [l1] * 4)
        opt = build(problem, per_trial(lr[:3] + [lr3], torch.float64))
        closure = problem.closure()
        return problem, [opt.step(closure) for _ in range(calls)]

    good, f_good = solve(C[3], lr[3])
    huge, f_huge = solve(C[3], 1e12)
    nan, f_nan = solve(float("nan"), lr[3])
    for other, f_other in ((huge, f_huge), (nan, f_nan)):
        assert torch.equal(other.W[:3], good.W[:3]) and torch.equal(other.b[:3], good.b[:3])
        for f, g in zip(f_other, f_good):
            assert torch.equal(f[:3], g[:3])
    assert all(bool(torch.isnan(f[3])) for f in f_nan)  # the NaN trial is reported, not hidden
    assert torch.isfinite(huge.W).all() and bool(torch.isfinite(f_huge[-1]).all())
    # the huge step was backtracked to a sound one: that trial still went downhill
    assert float(f_huge[-1][3]) < float(Problem(*breast_cancer, 2, [C[3]], [l1]).closure().value_only()[0])


@pytest.mark.parametrize("build, l1", [(_fista, 0.5), (_lbfgs, 0.0)], ids=["fista", "lbfgs"])
def test_a_frozen_trial_stops_moving_and_the_others_go_on(build: Any, l1: float, breast_cancer: Any) -> None:
    C, lr = [0.1, 1.0, 0.03, 0.3], per_trial([1.0, 0.5, 1.0, 1.0], torch.float64)
    runs = []
    for freeze in (False, True):
        problem = Problem(*breast_cancer, 2, C, [l1] * 4)
        opt, closure = build(problem, lr), problem.closure()
        opt.step(closure)
        problem.W.data[1] = 0.0  # trial 1 away from its optimum: left free, it moves again
        if freeze:
            opt.freeze(torch.tensor([False, True, False, False]))
        W1 = problem.W[1].clone()
        f = [opt.step(closure) for _ in range(3)]
        runs.append((problem, W1, f))
    (free, _, f_free), (frozen, W1, f_frozen) = runs
    assert torch.equal(frozen.W[1], W1) and not torch.equal(free.W[1], W1)
    keep = [0, 2, 3]
    assert torch.equal(frozen.W[keep], free.W[keep]) and torch.equal(frozen.b[keep], free.b[keep])
    assert torch.equal(f_frozen[-1][keep], f_free[-1][keep])
    assert bool(torch.isfinite(f_frozen[-1]).all())  # the frozen trial's objective is still reported


def test_a_closure_that_returns_the_sum_is_refused(breast_cancer: Any) -> None:
    problem = Problem(*breast_cancer, 2, [0.1, 1.0], [0.0, 0.0])
    closure = problem.closure()
    for opt in (BatchedLBFGS(problem.groups), BatchedFISTA(problem.groups)):
        with pytest.raises(ValueError, match="one objective per trial"):
            opt.step(lambda: closure().sum())
