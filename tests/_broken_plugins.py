"""Plugins that load and pass the registry but break the contract the way a study finds out.

One copy for every test that needs them: imported directly, or copied as a module into a
temporary site folder with a fake distribution (:func:`install_distribution`) so the registry
loads them through entry points, the way a user's install does.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from tuner import Categorical, Float, Int, Optimizer, Penalty

STRENGTH = Float(1e-7, 10.0, default=1e-4, log=True)


class FloatStepLasso(Penalty):
    """An elementwise lasso whose prox calls ``float(step)``: fine with SGD's one step, a crash
    with Adam's per-weight steps (the plugin author's trial of issue 11)."""

    name = "float_step"
    description = "Lasso whose prox calls float(step)."
    search_space = {"strength": STRENGTH}
    has_prox = True
    elementwise_prox = True

    def smooth_value(self, weight, params):
        return weight.new_zeros(())

    def nonsmooth_value(self, weight, params):
        return params["strength"] * weight.abs().sum()

    def prox(self, weight, step, params):
        threshold = float(step) * params["strength"]
        return torch.sign(weight) * torch.clamp(weight.abs() - threshold, min=0.0)


class AdamWithoutCoordinateSteps(Optimizer):
    """torch's Adam with the default proximal step ``lr``: Adam moves each weight about ``lr`` per
    step whatever its gradient, so an L1 prox of ``lr * strength`` barely acts."""

    name = "adam_no_coord"
    description = "Adam without coordinate_step_size."
    search_space = {"lr": Float(1e-4, 1.0, default=0.01, log=True)}

    def build(self, param_groups, params, prox=None):
        return torch.optim.Adam(list(param_groups), lr=float(params["lr"]))


class PickyRidge(Penalty):
    """A sound ridge that declines every full-batch solver."""

    name = "picky_ridge"
    description = "Ridge that declines the full-batch solvers."
    search_space = {"strength": STRENGTH}
    incompatible_optimizers = frozenset({"lbfgs", "fista", "newton", "newton_cg"})

    def smooth_value(self, weight, params):
        return params["strength"] / 2 * (weight ** 2).sum(dim=(-2, -1))


def install_distribution(site: Path, module: str, entry_points: Mapping[str, Mapping[str, str]],
                         version: str = "0.1") -> Path:
    """Copy this module into ``site`` as ``module`` with a distribution declaring ``entry_points``
    (group suffix -> {name: class}); the caller puts ``site`` on ``sys.path`` and reloads the registries."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(Path(__file__).read_text())
    dist = module.replace("_", "-")
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = []
    for group, names in entry_points.items():
        lines.append(f"[logreg_tuner.{group}]")
        lines += [f"{name} = {module}:{cls}" for name, cls in names.items()]
    (info / "entry_points.txt").write_text(textwrap.dedent("\n".join(lines)) + "\n")
    return site


def forget(module: str) -> None:
    """Drop the copied module so the next install loads a fresh one."""
    sys.modules.pop(module, None)


def installed_penalties(monkeypatch: Any, site: Path, module: str, names: Mapping[str, str]) -> Iterator[None]:
    """For a fixture: penalties ``names`` (name -> class of this module) installed as the
    distribution ``module`` in ``site``, on ``sys.path`` and in the registry until it resumes."""
    from tuner import penalties

    monkeypatch.syspath_prepend(str(install_distribution(site, module, {"penalties": names})))
    monkeypatch.delenv("TUNER_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    penalties.reload()
    yield
    monkeypatch.undo()
    forget(module)
    penalties.reload()


class Float64Everywhere(PickyRidge):
    """A ridge whose constructor makes float64 every tensor's default, for the whole process."""

    name = "float64_ridge"
    incompatible_optimizers = frozenset()

    def __init__(self):
        torch.set_default_dtype(torch.float64)


class SummingRidge(Penalty):
    """A ridge that declares trials side by side but sums over every trial's weights: alone it is
    right, side by side each trial's value holds its neighbours' too."""

    name = "summing_ridge"
    description = "Ridge summed over all trials."
    search_space = {"strength": STRENGTH}
    supports_batch = True

    def smooth_value(self, weight, params):
        return params["strength"] / 2 * (weight ** 2).sum()


class FirstLrSGD(Optimizer):
    """Plain SGD that declares trials side by side but steps every trial with the first trial's rate."""

    name = "first_lr_sgd"
    description = "SGD with the first trial's learning rate."
    search_space = {"lr": Float(1e-3, 1.0, default=0.1, log=True)}
    supports_batch = True

    def build(self, param_groups, params, prox=None):
        lr = params["lr"]
        return torch.optim.SGD(list(param_groups), lr=float(lr.reshape(-1)[0] if isinstance(lr, torch.Tensor) else lr))


class ScaledRidge(Penalty):
    """A sound batched ridge whose strength a bool and an int hyperparameter scale."""

    name = "scaled_ridge"
    description = "Ridge scaled by (1 + double) * power."
    search_space = {"strength": Float(1e-7, 10.0, default=1e-4, log=True, domain=(0.0, 1e6)),
                    "double": Categorical([True, False], default=False), "power": Int(1, 3, default=1)}
    supports_batch = True

    def smooth_value(self, weight, params):
        scale = params["strength"] * (1 + params["double"]) * params["power"]
        return (scale * 0.5 * weight * weight).sum(dim=(-2, -1))


class TwiceThresholdLasso(FloatStepLasso):
    """A lasso whose prox thresholds by twice the step: every check a study ran passed, and it
    won a default study on breast_cancer."""

    name = "twice_threshold"
    description = "Lasso whose prox thresholds twice too far."

    def prox(self, weight, step, params):
        return torch.sign(weight) * torch.clamp(weight.abs() - 2 * step * params["strength"], min=0.0)


class DoubleGradientRidge(PickyRidge):
    """A ridge whose value is right and whose gradient is twice too large."""

    name = "double_gradient"
    description = "Ridge with a doubled gradient."
    incompatible_optimizers = frozenset()

    def smooth_value(self, weight, params):
        value = params["strength"] / 2 * (weight ** 2).sum(dim=(-2, -1))
        return value + (value - value.detach())


class WritesItsParams(PickyRidge):
    """A ridge that writes to its hyperparameter mapping, which training passes read-only."""

    name = "writes_params"
    description = "Ridge that normalises its params in place."
    incompatible_optimizers = frozenset()

    def smooth_value(self, weight, params):
        params["strength"] = params["strength"] * 1.0
        return super().smooth_value(weight, params)


class PopsItsParams(WritesItsParams):
    """The same, through ``params.pop``: an AttributeError, not a TypeError."""

    name = "pops_params"

    def smooth_value(self, weight, params):
        strength = params.pop("strength")
        return strength / 2 * (weight ** 2).sum(dim=(-2, -1))


class PerTrialSGD(torch.optim.Optimizer):
    """Plain SGD whose lr may be a (K, 1, 1) tensor; a subclass changes the step's direction."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    def direction(self, grad):
        return grad

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(group["lr"] * self.direction(p.grad))


class _OneNormClippedSGD(PerTrialSGD):
    def direction(self, grad):
        return grad * torch.clamp(1.0 / (grad.norm() + 1e-12), max=1.0)


class NormClippedSGD(Optimizer):
    """SGD that clips the gradient to norm 1, one norm over every trial's weights side by side:
    one trial's large gradient shrinks its neighbours' steps."""

    name = "norm_clipped_sgd"
    description = "SGD clipped by one norm over all trials."
    search_space = {"lr": Float(1e-3, 10.0, default=0.5, log=True)}
    supports_batch = True

    def build(self, param_groups, params, prox=None):
        return _OneNormClippedSGD(list(param_groups), params["lr"])


class MinimaxConcave(Penalty):
    """A correct non-convex penalty (MCP, Zhang 2010) with its exact prox, side by side: flat
    beyond ``gamma * strength``, so with a three-class softmax (unchanged by one shift of every
    class) its optimum's weights are not unique, only its objective is."""

    name = "minimax_concave"
    description = "MCP with its exact prox."
    search_space = {"strength": Float(1e-7, 10.0, default=1e-4, log=True, domain=(0.0, 1e6)),
                    "gamma": Float(1.5, 10.0, default=3.0)}
    has_prox = True
    elementwise_prox = True
    supports_batch = True

    @staticmethod
    def _each(weight, strength, gamma):
        size = weight.abs()
        return torch.where(size <= gamma * strength, strength * size - size * size / (2 * gamma),
                           gamma * strength * strength / 2 + 0 * size)

    def smooth_value(self, weight, params):
        return weight.new_zeros(weight.shape[:-2])

    def nonsmooth_value(self, weight, params):
        return self._each(weight, params["strength"], params["gamma"]).sum(dim=(-2, -1))

    def prox(self, weight, step, params):
        strength, gamma = params["strength"], params["gamma"]
        step = torch.as_tensor(step, dtype=weight.dtype) + torch.zeros_like(weight)
        room = 1 - step / gamma  # > 0 where the prox's problem is convex inside the kink
        inside = torch.sign(weight) * torch.clamp(weight.abs() - step * strength, min=0.0) / torch.where(
            room > 0, room, torch.ones_like(room))
        inside = torch.where((room > 0) & (inside.abs() <= gamma * strength), inside, torch.zeros_like(weight))
        best, best_value = None, None
        for candidate in (torch.zeros_like(weight), weight, inside):  # the global minimiser among the stationary points
            value = (candidate - weight) ** 2 / (2 * step) + self._each(candidate, strength, gamma)
            take = value < best_value if best_value is not None else torch.ones_like(value, dtype=torch.bool)
            best = candidate if best is None else torch.where(take, candidate, best)
            best_value = value if best_value is None else torch.where(take, value, best_value)
        return torch.where(step > 0, best, weight)
