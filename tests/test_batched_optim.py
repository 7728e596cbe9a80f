"""The built-in mini-batch optimizers with per-trial hyperparameters take the very steps of
``torch.optim.SGD``, ``Adam`` and ``RMSprop`` for each trial, batched or one at a time."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from logreg_tuner_plugins._batched_optim import BatchedAdam, BatchedRMSprop, BatchedSGD, coordinate_step, root

K, P, C, STEPS = 3, 7, 2, 25

CASES = [
    (BatchedSGD, torch.optim.SGD, [dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.05, momentum=0.0, nesterov=False),
                                   dict(lr=0.2, momentum=0.5, nesterov=False)]),
    (BatchedAdam, torch.optim.Adam, [dict(lr=0.01, beta1=0.9, beta2=0.999), dict(lr=0.1, beta1=0.5, beta2=0.99),
                                     dict(lr=0.001, beta1=0.0, beta2=0.9)]),
    (BatchedRMSprop, torch.optim.RMSprop, [dict(lr=0.003, alpha=0.99, momentum=0.0),
                                           dict(lr=0.01, alpha=0.9, momentum=0.5),
                                           dict(lr=0.001, alpha=0.8, momentum=0.9)]),
]


def _torch_kwargs(hp: dict[str, Any]) -> dict[str, Any]:
    out = dict(hp)
    if "beta1" in out:
        out["betas"] = (out.pop("beta1"), out.pop("beta2"))
    return out


def _gradients(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed sequence of gradients for ``(K, P, C)`` weights and ``(K, 1, C)`` intercepts, some
    coordinates zero for stretches (as on sparse data) and of very different scales."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in range(STEPS):
        gw = torch.randn(K, P, C, generator=gen, dtype=torch.float64) * 10.0 ** torch.randint(-3, 2, (1, P, 1),
                                                                                              generator=gen)
        gw[:, t % P] = 0.0
        out.append((gw, torch.randn(K, 1, C, generator=gen, dtype=torch.float64)))
    return out


@pytest.mark.parametrize("batched_cls,torch_cls,hps", CASES, ids=["sgd", "adam", "rmsprop"])
def test_each_trial_takes_torchs_steps_side_by_side(batched_cls: Any, torch_cls: Any, hps: list[dict]) -> None:
    start = torch.randn(K, P, C, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    W = start.permute(1, 0, 2).contiguous().permute(1, 0, 2).requires_grad_()  # feature-major, as the trainer's
    b = torch.zeros(K, 1, C, dtype=torch.float64, requires_grad=True)
    stacked = {name: torch.tensor([float(h[name]) for h in hps], dtype=torch.float64).view(-1, 1, 1) for name in hps[0]}
    ours = batched_cls([{"params": [W, b]}], **stacked)
    alone = [(start[k].clone().requires_grad_(), torch.zeros(1, C, dtype=torch.float64, requires_grad=True))
             for k in range(K)]
    theirs = [torch_cls(list(pair), **_torch_kwargs(h)) for pair, h in zip(alone, hps)]
    for gw, gb in _gradients(seed=2):
        W.grad, b.grad = gw.clone(), gb.clone()
        ours.step()
        for k, ((wk, bk), opt) in enumerate(zip(alone, theirs)):
            wk.grad, bk.grad = gw[k].clone(), gb[k].clone()
            opt.step()
    for k, (wk, bk) in enumerate(alone):
        torch.testing.assert_close(W[k].detach(), wk.detach(), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(b[k].detach(), bk.detach(), rtol=1e-10, atol=1e-12)
    assert not torch.equal(W.detach(), start)


@pytest.mark.parametrize("batched_cls,torch_cls,hps", CASES, ids=["sgd", "adam", "rmsprop"])
def test_one_trial_with_plain_numbers_takes_torchs_steps(batched_cls: Any, torch_cls: Any, hps: list[dict]) -> None:
    hp = hps[0]
    W = torch.randn(P, C, dtype=torch.float64, generator=torch.Generator().manual_seed(4)).requires_grad_()
    ref = W.detach().clone().requires_grad_()
    ours, theirs = batched_cls([W], **hp), torch_cls([ref], **_torch_kwargs(hp))
    for gw, _ in _gradients(seed=5):
        W.grad, ref.grad = gw[0].clone(), gw[0].clone()
        ours.step()
        theirs.step()
    torch.testing.assert_close(W.detach(), ref.detach(), rtol=1e-10, atol=1e-12)


def test_adams_coordinate_step_is_its_last_per_weight_step() -> None:
    W = torch.zeros(K, P, C, dtype=torch.float64, requires_grad=True)
    lr = torch.tensor([1e-3, 1e-2, 1e-1], dtype=torch.float64).view(-1, 1, 1)
    beta2 = torch.tensor([0.999, 0.99, 0.9], dtype=torch.float64).view(-1, 1, 1)
    opt = BatchedAdam([W], lr=lr, beta1=0.9, beta2=beta2)
    for gw, _ in _gradients(seed=6)[:5]:
        W.grad = gw.clone()
        opt.step()
    state = opt.state[W]
    v_hat = state["exp_avg_sq"] / (1 - beta2 ** state["step"])
    expected = lr / (v_hat.sqrt() + 1e-8)
    torch.testing.assert_close(coordinate_step(state, opt.param_groups[0]), expected, rtol=1e-10, atol=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_fast_root_leaves_every_denominator_unchanged_bit_for_bit(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(7)
    v = torch.rand(10_000, generator=gen, dtype=dtype) ** 8 * torch.randint(0, 2, (10_000,), generator=gen)
    assert (v == 0).any() and (v > 0).any()
    for eps in (1e-8, 1e-8 * (1 - 0.9999) ** 0.5):  # RMSprop's eps; Adam's smallest eps * sqrt(1 - beta2^t)
        assert torch.equal(root(v).add_(eps), v.sqrt() + eps)
