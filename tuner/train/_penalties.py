"""Per-trial hyperparameters and the penalties of K trials side by side.

Hyperparameters that are numbers become ``(K, 1, 1)`` tensors (the plugin contract in
:mod:`tuner._plugin_api`); trials of one optimizer may differ in penalty, and each penalty
plugin sees only its own trials' weight columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from tuner._plugin_api import Penalty
from tuner.errors import ConfigError, PluginError

__all__ = ["stack_params", "PenaltyGroups", "half_squared_norm", "soft_threshold"]


def stack_params(values: Sequence[Mapping[str, Any]], dtype: torch.dtype, device: torch.device,
                 what: str = "hyperparameter") -> dict[str, Any]:
    """K trials' hyperparameters as ``(K, 1, 1)`` tensors (numbers and booleans) or one shared
    value (anything else, which must then be equal in every trial)."""
    if not values:
        return {}
    out: dict[str, Any] = {}
    for name in values[0]:
        column = [v[name] for v in values]
        if all(isinstance(x, (bool, int, float, np.number, np.bool_)) for x in column):
            out[name] = torch.tensor([float(x) for x in column], dtype=dtype, device=device).view(-1, 1, 1)
        elif all(x == column[0] for x in column):
            out[name] = column[0]
        else:
            raise ConfigError(f"The {what} {name!r} differs between trials trained side by side ({column!r}) and is "
                              "not a number; group such trials by it.")
    return out


class _HalfSquaredNorm(torch.autograd.Function):
    """``||W_k||^2 / 2`` per trial, its gradient ``W_k`` in one pass (see :func:`half_squared_norm`)."""

    @staticmethod
    def forward(weight: torch.Tensor) -> torch.Tensor:
        return 0.5 * weight.square().sum(dim=(-2, -1))  # vector_norm reduces a (K, p, c) view slower

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (weight,) = ctx.saved_tensors
        return weight * grad[..., None, None]


def half_squared_norm(weight: torch.Tensor) -> torch.Tensor:
    """``||W_k||^2 / 2`` over the last two dimensions (one value per trial side by side).

    Autograd's own ``0.5 * W.pow(2)`` makes three passes over the weights each way, and on wide
    data a mini-batch step is bound by passes over the ``(K, p, c)`` weights. The backward is
    made of differentiable operations, so the Hessian (``create_graph``) still follows."""
    return _HalfSquaredNorm.apply(weight)


def soft_threshold(weight: torch.Tensor, threshold: Any) -> torch.Tensor:
    """The proximal operator of ``threshold * ||W||_1``: shrink toward zero, exact zeros inside.

    ``W - clamp(W, -t, t)`` is ``sign(W) (|W| - t)_+`` in two passes over the weights instead of
    five (the same floating-point result: zero inside, ``W -+ t`` outside). ``threshold``: a
    number, one per trial ``(K, 1, 1)``, or one per weight."""
    return weight - torch.clamp(weight, min=-threshold, max=threshold)


class PenaltyGroups:
    """The penalties of K trials side by side: each plugin applied to its own trials' columns.

    Trials of one optimizer may differ in penalty (l1, l2, elastic net, none): one product with
    the data still serves them all, and each penalty sees only the weights of its trials. When
    every trial's penalty is an elastic net (:meth:`~tuner._plugin_api.Penalty.elastic_net`), the
    penalties of a mixed group are computed on all K trials at once with per-trial L1 and L2
    weights instead: gathering each plugin's trials and scattering their gradients back cost
    several passes over the weights a step (SST-2, six Adam trials of four penalties: 1.75 s an
    epoch against 1.01 s for six of one penalty)."""

    def __init__(self, per_trial: Sequence[Penalty], params: Sequence[Mapping[str, Any]], batched: bool,
                 dtype: torch.dtype, device: torch.device) -> None:
        self.k = len(per_trial)
        members: dict[str, tuple[Penalty, list[int]]] = {}
        for k, pen in enumerate(per_trial):
            members.setdefault(pen.name, (pen, []))[1].append(k)
        self.groups: list[tuple[Penalty, torch.Tensor | None, Any]] = []
        for pen, idx in members.values():
            chosen = [params[k] for k in idx]
            # read-only: a plugin that wrote to it would change its trial's hyperparameters unseen
            values = MappingProxyType(stack_params(chosen, dtype, device, f"penalty '{pen.name}' hyperparameter")
                                      if batched else dict(chosen[0]))
            whole = len(idx) == self.k
            self.groups.append((pen, None if whole else torch.tensor(idx, device=device), values))
        self.has_prox = any(pen.has_prox for pen, _, _ in self.groups)
        self.elementwise = any(pen.elementwise_prox and pen.has_prox for pen, _, _ in self.groups)
        nets = _elastic_nets(per_trial, params, dtype, device)
        self.net = nets[:2] if nets is not None and batched and len(self.groups) > 1 else None
        """Per-trial ``(l1 (K, 1, 1), l2 (K,))`` weights when a mixed group is all elastic nets."""
        self._l1 = None if nets is None else nets[0].reshape(-1)
        self._l2 = None if nets is None else nets[1]
        self._any_l2 = nets is not None and nets[2]

    def l1_weights(self) -> torch.Tensor | None:
        """Each trial's L1 weight, shape ``(K,)``, when every trial's penalty is an elastic net
        (:meth:`~tuner._plugin_api.Penalty.elastic_net`); else None (the closure's ``l1_weights()``)."""
        return self._l1

    def l2_weights(self) -> torch.Tensor | None:
        """Each trial's L2 weight ``b``, shape ``(K,)``, when every trial's penalty is an elastic net:
        its smooth part is then ``b / 2 ||W||^2``, whose Hessian is ``b`` times the identity; else None."""
        return self._l2

    def has_l2(self) -> bool:
        """Whether some trial's elastic net has an L2 part (False when :meth:`l2_weights` is None);
        known on the host, without reading the device."""
        return self._any_l2

    def _values(self, W: torch.Tensor, method: str) -> torch.Tensor:
        out: torch.Tensor | None = None
        for pen, idx, values in self.groups:
            what = f"Penalty '{pen.name}' {method}"
            if idx is None:
                return _per_trial(getattr(pen, method)(W, values), self.k, what)
            part = _per_trial(getattr(pen, method)(W[idx], values), len(idx), what)
            out = (W.new_zeros(self.k) if out is None else out).index_add(0, idx, part)
        assert out is not None
        return out

    def smooth(self, W: torch.Tensor) -> torch.Tensor:
        """Per trial: the differentiable part of its penalty, shape ``(K,)``."""
        if self.net is not None:
            return self.net[1] * half_squared_norm(W)
        return self._values(W, "smooth_value")

    def nonsmooth(self, W: torch.Tensor) -> torch.Tensor:
        """Per trial: the non-smooth part's value, shape ``(K,)``."""
        if self.net is not None:
            return self.net[0].reshape(-1) * W.abs().sum(dim=(-2, -1))
        return self._values(W, "nonsmooth_value")

    def prox(self, W: torch.Tensor, step: Any, coordinate_step: Any = None) -> torch.Tensor:
        """Each trial's proximal operator with its step: ``coordinate_step`` (shaped like ``W``)
        for an elementwise prox when the optimizer gives one, else ``step``."""
        if self.net is not None:  # soft-thresholding by step * l1 (0 for trials without an L1 part: W as it is)
            return soft_threshold(W, (coordinate_step if coordinate_step is not None else step) * self.net[0])
        out = None
        for pen, idx, values in self.groups:
            if not pen.has_prox:
                continue
            chosen = coordinate_step if (pen.elementwise_prox and coordinate_step is not None) else step
            if idx is None:
                return _prox_result(pen.prox(W, chosen, values), W, pen.name)
            sub = chosen[idx] if isinstance(chosen, torch.Tensor) and chosen.dim() > 0 else chosen
            out = W.clone() if out is None else out
            part = W[idx]
            out[idx] = _prox_result(pen.prox(part, sub, values), part, pen.name)
        return W if out is None else out


def _prox_result(value: Any, weight: torch.Tensor, name: str) -> torch.Tensor:
    """A penalty's proximal step, known to be weights shaped like the ones it was given (a prox
    that returns None or flattens them would fail later, in the trainer's code, naming nothing)."""
    if not isinstance(value, torch.Tensor) or value.shape != weight.shape:
        got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise PluginError(f"Penalty '{name}' prox must return weights of the shape it was given, "
                          f"{tuple(weight.shape)}; got {got}. Run `tuner plugins check {name}`.")
    return value


def _elastic_nets(per_trial: Sequence[Penalty], params: Sequence[Mapping[str, Any]], dtype: torch.dtype,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor, bool] | None:
    """Each trial's ``(l1, l2)`` weights as ``(K, 1, 1)`` and ``(K,)`` tensors, and whether any L2
    weight is positive, or None unless every trial's penalty is an elastic net."""
    weights = []
    for pen, values in zip(per_trial, params):
        if not _net_is_its_own(type(pen)):
            return None
        net = pen.elastic_net(values)
        if net is None:
            return None
        weights.append([float(net[0]), float(net[1])])
    both = torch.tensor(weights, dtype=dtype, device=device)
    return both[:, 0].reshape(-1, 1, 1), both[:, 1].contiguous(), any(b > 0 for _, b in weights)


def _net_is_its_own(cls: type) -> bool:
    """Whether ``cls`` declares ``elastic_net`` where (or below where) it defines its penalty's
    values and prox: a subclass that changes ``smooth_value`` but inherits its parent's
    ``elastic_net`` would otherwise be trained as its parent's formula."""
    def owner(name: str) -> type:
        return next(c for c in cls.__mro__ if name in vars(c))

    declared = owner("elastic_net")
    return all(issubclass(declared, owner(name)) for name in ("smooth_value", "nonsmooth_value", "prox"))


def _per_trial(value: Any, k: int, what: str) -> torch.Tensor:
    """A penalty's value as one number per trial."""
    if not isinstance(value, torch.Tensor):
        raise PluginError(f"{what} must return a tensor; got {type(value).__name__}.")
    if value.dim() == 0:
        if k != 1:
            raise PluginError(f"{what} returned one value for {k} trials side by side; reduce over the last two "
                              "dimensions only (shape (K,)).")
        return value.reshape(1)
    if value.numel() != k:
        wanted = "a scalar (one trial)" if k == 1 else f"shape ({k},) (one value per trial, {k} side by side)"
        raise PluginError(f"{what} returned a tensor of shape {tuple(value.shape)}; it must return {wanted}: reduce "
                          "over the weights' last two dimensions (.sum(dim=(-2, -1))).")
    return value.reshape(k)
