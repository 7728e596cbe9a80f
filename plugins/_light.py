"""A ``torch.optim.Optimizer`` base without the first-use cost of ``torch._dynamo``.

``torch.optim.Optimizer.add_param_group`` and ``zero_grad`` are wrapped by
``torch._disable_dynamo``, which imports ``torch._dynamo`` (and SymPy with it) the first time
either runs: about 1.25 s of a 20 s study process on the 2-core machine, for optimizers that
are never compiled. The built-in optimizers derive from :class:`LightOptimizer`, which gives
the two methods plain bodies with the same behaviour for the parameter groups they use.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["LightOptimizer", "LightLBFGS"]


class LightOptimizer(torch.optim.Optimizer):
    """``torch.optim.Optimizer`` with undecorated ``add_param_group`` and ``zero_grad``."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append ``param_group`` with the optimizer's defaults filled in (``params`` a tensor or an
        iterable of tensors)."""
        params = param_group["params"]
        param_group["params"] = [params] if isinstance(params, torch.Tensor) else list(params)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) the gradients of every parameter."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.zero_()


class LightLBFGS(LightOptimizer, torch.optim.LBFGS):
    """PyTorch's L-BFGS (one trial at a time) on :class:`LightOptimizer`'s methods.

    ``converged()`` says whether the last ``step`` left every parameter as it was: at the
    optimum (its gradient test passed at once) or at the objective's rounding floor, where the
    line search finds no step. The next call would repeat it (the state it starts from is the
    same), so the trainer ends the trial instead of waiting ``patience`` epochs of full line
    searches. (The batched L-BFGS, which the built-in plugins train with, tests its objective
    instead: torch's ``step`` returns only the objective at the start of the call.)
    """

    _converged: torch.Tensor | None = None

    def step(self, closure: Any) -> Any:  # type: ignore[override]
        before = [p.detach().clone() for p in self._params]
        loss = super().step(closure)
        self._converged = torch.tensor([all(torch.equal(p, b) for p, b in zip(self._params, before))])
        return loss

    def converged(self) -> torch.Tensor | None:
        """``(1,)`` bool: whether the last :meth:`step` left the parameters unchanged (None before any)."""
        return self._converged
