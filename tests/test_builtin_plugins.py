"""The built-in plugins' own mechanics: proximal operators, proximal step sizes, FISTA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from logreg_tuner_plugins._fista import FISTA
from logreg_tuner_plugins.penalties import soft_threshold
from tuner import optimizers, penalties


def test_soft_threshold_and_elementwise_prox_with_per_weight_steps() -> None:
    w = torch.tensor([[-3.0, -0.5], [0.2, 2.0]], dtype=torch.float64)
    np.testing.assert_array_equal(soft_threshold(w, 1.0).numpy(), [[-2.0, 0.0], [0.0, 1.0]])
    en = penalties.get("elasticnet")
    params = {"strength": 0.5, "l1_ratio": 0.4}
    steps = torch.tensor([[1.0, 2.0], [3.0, 0.5]], dtype=torch.float64)
    together = en.prox(w, steps, params)
    one_by_one = [[float(en.prox(w[i:i + 1, j:j + 1], float(steps[i, j]), params)) for j in range(2)] for i in range(2)]
    assert en.elementwise_prox and penalties.get("l1").elementwise_prox
    np.testing.assert_allclose(together.numpy(), one_by_one)
    assert together[1, 0] == 0.0 and together[0, 1] == pytest.approx(-0.1)


def _two_groups(p: torch.Tensor, b: torch.Tensor) -> list[dict]:
    return [{"params": [p], "penalized": True}, {"params": [b], "penalized": False}]


@pytest.mark.parametrize("name, params", [
    ("adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999}),
    ("rmsprop", {"lr": 0.003, "alpha": 0.99, "momentum": 0.0}),
    ("rmsprop", {"lr": 0.003, "alpha": 0.99, "momentum": 0.5}),
])
def test_per_weight_proximal_steps_are_the_optimizers_own_steps(name: str, params: dict) -> None:
    """At a steady gradient, each weight moves by exactly its coordinate step times the gradient."""
    plugin = optimizers.get(name)
    p = torch.zeros(3, 1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = plugin.build(_two_groups(p, b), params)
    assert plugin.coordinate_step_size(opt, p) is None  # before the first step
    grad = torch.tensor([[0.5], [-2.0], [1e-3]], dtype=torch.float64)
    for _ in range(3000):  # long enough for the moving averages (and momentum) to settle
        before = p.detach().clone()
        p.grad, b.grad = grad.clone(), torch.zeros(1, dtype=torch.float64)
        opt.step()
    moved = before - p.detach()
    steps = plugin.coordinate_step_size(opt, p)
    assert steps.shape == p.shape
    np.testing.assert_allclose(moved.numpy(), (steps * grad).numpy(), rtol=1e-3)


def test_sgd_proximal_step_accounts_for_momentum() -> None:
    sgd = optimizers.get("sgd")
    p = torch.zeros(2, 1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = sgd.build(_two_groups(p, b), {"lr": 0.1, "momentum": 0.9, "nesterov": True})
    assert sgd.step_size(opt) == pytest.approx(1.0)
    grad = torch.tensor([[1.0], [-0.25]], dtype=torch.float64)
    for _ in range(500):
        before = p.detach().clone()
        p.grad, b.grad = grad.clone(), torch.zeros(1, dtype=torch.float64)
        opt.step()
    np.testing.assert_allclose((before - p.detach()).numpy(), (sgd.step_size(opt) * grad).numpy(), rtol=1e-6)
    plain = sgd.build(_two_groups(p, b), {"lr": 0.1, "momentum": 0.0, "nesterov": True})
    assert sgd.step_size(plain) == pytest.approx(0.1)


def lasso_problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float, np.ndarray]:
    """min 1/2 ||A w - y||^2 + lam ||w||_1 with orthonormal A: w* = soft_threshold(A^T y, lam)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(40, 12)))
    A = Q * np.linspace(1.0, 1.0, 12)
    y = A @ np.r_[3.0, -2.0, 1.0, 0.5, np.zeros(8)] + 0.05 * rng.normal(size=40)
    lam = 0.3
    exact = np.sign(A.T @ y) * np.maximum(np.abs(A.T @ y) - lam, 0)
    return torch.tensor(A), torch.tensor(y), lam, exact


@pytest.mark.parametrize("value_only", [True, False])
def test_fista_finds_the_exact_lasso_solution_and_stops_early(value_only: bool) -> None:
    A, y, lam, exact = lasso_problem()
    w = torch.zeros(12, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    calls = {"grad": 0, "value": 0}

    def closure() -> torch.Tensor:
        calls["grad"] += 1
        for t in (w, b):
            t.grad = None
        loss = 0.5 * (A @ w - y).pow(2).sum() + 0 * b.sum()
        loss.backward()
        return loss

    @torch.no_grad()
    def value() -> torch.Tensor:
        calls["value"] += 1
        return 0.5 * (A @ w - y).pow(2).sum()

    if value_only:
        closure.value_only = value  # type: ignore[attr-defined]
    opt = FISTA(_two_groups(w, b), prox=lambda v, t: soft_threshold(v, t * lam), lr=10.0, max_iter=200,
                tolerance_grad=1e-12)
    opt.step(closure)
    np.testing.assert_allclose(w.detach().numpy(), exact, atol=1e-10)
    np.testing.assert_array_equal(w.detach().numpy() == 0, exact == 0)
    assert (exact == 0).sum() >= 6
    used = dict(calls)
    assert used["grad"] < 100  # far below max_iter: the gradient-mapping test stopped it
    assert (used["value"] > 0) == value_only
    opt.step(closure)  # converged: another call costs one gradient evaluation and a candidate
    assert calls["grad"] - used["grad"] == (1 if value_only else 2)
    np.testing.assert_allclose(w.detach().numpy(), exact, atol=1e-10)
