"""One epoch and one step of an optimizer over K trials side by side.

A full-batch optimizer takes one step an epoch (with a closure over every row); a mini-batch
optimizer takes one step per contiguous slice of the rows, permuted once an epoch. Losses
accumulate on the device and the host reads them once an epoch. The learning rates follow the
schedule over ``config.epochs``, times each trial's plateau drops.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tuner._plugin_api import Optimizer
from tuner.train._config import TrainConfig
from tuner.train._device import csr_rows, csr_slice
from tuner.train._objective import Objective
from tuner.train._penalties import PenaltyGroups
from tuner.train._sizing import rows_per_step
from tuner.train._stopping import PLATEAU_FACTOR

__all__ = ["Epochs"]


class Epochs:
    """Runs epochs of ``opt`` (built by ``optimizer``) on ``objective``, all trials at once."""

    def __init__(self, optimizer: Optimizer, opt: Any, objective: Objective, penalty: PenaltyGroups,
                 config: TrainConfig, batched: bool, device: torch.device) -> None:
        self.optimizer, self.opt, self.objective, self.penalty = optimizer, opt, objective, penalty
        self.config, self.batched = config, batched
        self.data, self.leaves = objective.data, objective.leaves
        self.gen = torch.Generator(device="cpu").manual_seed(config.seed)
        self.device = device
        self.batch = rows_per_step(self.data.n, optimizer, config, device.type)
        self.after_step_prox = penalty.has_prox and optimizer.prox_mode == "after_step"
        self.lr_scale = torch.ones(self.leaves.k, 1, 1, dtype=self.leaves.W.dtype, device=device)
        self.base_lrs = [g["lr"].clone() if isinstance(g.get("lr"), torch.Tensor) else g.get("lr")
                         for g in opt.param_groups]

    def run(self) -> torch.Tensor:
        """One epoch; returns each trial's training objective over the epoch, ``(K,)``."""
        if self.optimizer.full_batch:
            return self._full_batch_epoch()
        return self._mini_batch_epoch()

    def _full_batch_epoch(self) -> torch.Tensor:
        d, objective, batched = self.data, self.objective, self.batched
        nonfinite: list[bool] = []  # a trial trained alone: whether its solver was handed a NaN or infinite objective

        def seen(value: torch.Tensor) -> torch.Tensor:
            if not nonfinite and not bool(torch.isfinite(value)):
                nonfinite.append(True)
            return value

        def closure() -> torch.Tensor:
            self.opt.zero_grad()
            f = objective.smooth(d.X, d.y, d.w, d.n, d.XT)
            f.sum().backward()
            return f.detach() if batched else seen(f.sum())

        @torch.no_grad()
        def value_only() -> torch.Tensor:
            f = objective.smooth(d.X, d.y, d.w, d.n, d.XT)
            return f if batched else seen(f.sum())

        closure.value_only = value_only  # type: ignore[attr-defined]
        closure.hessian = objective.hessian  # type: ignore[attr-defined]
        closure.hessian_product = objective.hessian_product  # type: ignore[attr-defined]
        closure.nonsmooth = objective.nonsmooth  # type: ignore[attr-defined]
        closure.l1_weights = objective.penalty.l1_weights  # type: ignore[attr-defined]
        try:
            self.opt.step(closure)
        except Exception:
            if batched or not nonfinite:
                raise
            # The solver failed on a NaN or infinite objective (torch's L-BFGS line search, FISTA's
            # step size) and would be blamed for it: the trial's objective is returned as it is, and
            # the loop stops it as diverged, as the batched solvers and mini-batch steps do.
            return objective.full()
        self._after_step()
        self.leaves.restore_frozen()
        return objective.full()

    def _mini_batch_epoch(self) -> torch.Tensor:
        d, n, batch = self.data, self.data.n, self.batch
        perm = torch.randperm(n, generator=self.gen).to(self.device)
        Xp = csr_rows(d.X, perm) if d.sparse else d.X[perm]
        yp, wp = d.y[perm], d.w[perm]
        bounds = list(range(0, n, batch)) + [n]
        ptr = Xp.crow_indices()[torch.tensor(bounds, device=self.device)].tolist() if d.sparse else []
        total = torch.zeros(self.leaves.k, dtype=self.leaves.W.dtype, device=self.device)
        for i in range(len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            Xb = csr_slice(Xp, lo, hi, ptr[i], ptr[i + 1]) if d.sparse else Xp[lo:hi]
            total += self._step(Xb, yp[lo:hi], wp[lo:hi], hi - lo) * (hi - lo)
        self.leaves.restore_frozen()
        with torch.no_grad():
            return total / n + self.objective.nonsmooth()

    def _step(self, Xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor, nb: int) -> torch.Tensor:
        """One mini-batch step of ``nb`` rows; returns the batch's smooth objective per trial (detached)."""
        self.opt.zero_grad()
        f = self.objective.smooth(Xb, yb, wb, nb)
        f.sum().backward()
        self.opt.step()
        self._after_step()
        return f.detach()

    def _after_step(self) -> None:
        """The proximal step of a penalty whose optimizer applies it after its own step."""
        if not self.after_step_prox:
            return
        W = self.leaves.W
        with torch.no_grad():
            steps = self.optimizer.coordinate_step_size(self.opt, W) if self.penalty.elementwise else None
            W.copy_(self.penalty.prox(W, self.optimizer.step_size(self.opt), steps))

    def drop_lr(self, k: int) -> None:
        """Lower trial k's learning rate by :data:`PLATEAU_FACTOR` (from the next epoch's schedule on)."""
        self.lr_scale[k] *= PLATEAU_FACTOR

    def schedule(self, epoch_done: int) -> None:
        """Cosine decay over ``config.epochs`` (mini-batch optimizers), times each trial's drops."""
        if self.optimizer.full_batch:
            return
        config = self.config
        factor = 0.5 * (1.0 + math.cos(math.pi * epoch_done / config.epochs)) if config.schedule == "cosine" else 1.0
        for g, base in zip(self.opt.param_groups, self.base_lrs):
            if base is None:
                continue
            if isinstance(base, torch.Tensor):
                g["lr"] = base * self.lr_scale * factor
            else:
                g["lr"] = float(base) * float(self.lr_scale[0]) * factor
