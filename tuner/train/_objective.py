"""What K trials minimise, on the data placed on the device.

:class:`PlacedData` holds the training and validation rows as tensors with each row's weight;
:class:`Leaves` the K trials' weights (one leaf with a leading trial axis when batched) and
their frozen copies; :class:`Objective` the per-trial losses: each trial k minimises
``(1/n) sum_i w_ik loss_ik(W_k, b_k) + penalty(W_k)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tuner.errors import ConfigError
from tuner.train._config import TrainConfig
from tuner.train._curvature import add_penalty_hessian, data_hessian, penalty_product
from tuner.train._device import Placement, matmul, times
from tuner.train._penalties import PenaltyGroups
from tuner.train._sizing import HESSIAN_MAX_PARAMS, n_params
from tuner.train._weights import row_weights, val_row_weights

__all__ = ["PlacedData", "Leaves", "Objective"]


@dataclass
class PlacedData:
    """Training rows ``X`` (``XT``: its transpose, for sparse full-batch products), labels ``y``,
    row weights ``w`` (``(n,)`` or ``(n, K)``); validation rows likewise (``val_w``: per trial,
    each column summing to 1), or ``None``."""

    X: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor
    XT: torch.Tensor | None = None
    X_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    val_w: torch.Tensor | None = None
    val_columns: np.ndarray | None = None
    """``val_column_weight`` as ``(n_val, K)`` when given: which validation rows each trial scores."""

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def scores_val(self, k: int) -> bool:
        """Whether trial ``k`` has validation rows (a column of ``val_column_weight`` may have none:
        cross-validation's model column when there is no validation split)."""
        return self.X_val is not None and (self.val_columns is None or bool(self.val_columns[:, k].any()))

    @property
    def sparse(self) -> bool:
        return self.X.layout == torch.sparse_csr

    @classmethod
    def place(cls, place: Placement, X: Any, y: np.ndarray, n_classes: int, k_trials: int, config: TrainConfig, *,
              full_batch: bool, sample_weight: np.ndarray | None, column_weight: np.ndarray | None,
              classes: Sequence[Any] | None, X_val: Any, y_val: np.ndarray | None,
              val_column_weight: np.ndarray | None) -> PlacedData:
        """The rows on ``place``'s device, in its dtype, with their weights."""
        Xt = place.features(X)
        w = row_weights(y, n_classes, k_trials, config.class_weight, sample_weight=sample_weight,
                        column_weight=column_weight, classes=classes)
        data = cls(Xt, place.vector(y, torch.long), place.vector(w))
        if data.sparse and full_batch:
            data.XT = place.features(X.T.tocsr())
        if X_val is not None and y_val is not None and len(y_val) > 0:
            vw = val_row_weights(len(y_val), k_trials, val_column_weight)
            data.X_val = place.features(X_val)
            data.y_val = place.vector(np.asarray(y_val, dtype=np.int64), torch.long)
            data.val_w = place.vector(vw / vw.sum(axis=0, keepdims=True).clip(min=1e-300))
            data.val_columns = vw if val_column_weight is not None else None
        return data


class Leaves:
    """The trained parameters of K trials and the frozen copies of those that stopped.

    Batched: ``W`` is ``(K, p, c)`` stored feature-major (``W.permute(1, 0, 2)`` is contiguous)
    and ``b`` ``(K, 1, c)``; one trial: ``W`` ``(p, c)`` and ``b`` ``(c,)``. ``W3``/``b3`` are
    the ``(K, p, c)``/``(K, 1, c)`` views either way."""

    def __init__(self, k_trials: int, p: int, c: int, batched: bool, dtype: torch.dtype, device: torch.device,
                 init: Sequence[tuple[np.ndarray, np.ndarray] | None] | None) -> None:
        self.k, self.p, self.c = k_trials, p, c
        if batched:
            self.W = torch.zeros(p, k_trials, c, dtype=dtype, device=device).permute(1, 0, 2).requires_grad_()
            self.b = torch.zeros(k_trials, 1, c, dtype=dtype, device=device, requires_grad=True)
            self.W3, self.b3 = self.W, self.b
        else:
            self.W = torch.zeros(p, c, dtype=dtype, device=device, requires_grad=True)
            self.b = torch.zeros(c, dtype=dtype, device=device, requires_grad=True)
            self.W3, self.b3 = self.W.unsqueeze(0), self.b.view(1, 1, c)
        self.frozen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if init is not None:
            with torch.no_grad():
                for k, start in enumerate(init):
                    if start is not None:
                        self.W3[k].copy_(torch.as_tensor(np.asarray(start[0]).reshape(p, c), dtype=dtype))
                        self.b3[k, 0].copy_(torch.as_tensor(np.asarray(start[1]).reshape(c), dtype=dtype))

    def snapshot(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A copy of trial k's current weights and intercept."""
        return self.W3[k].detach().clone(), self.b3[k, 0].detach().clone()

    def freeze(self, k: int, best: tuple[torch.Tensor, torch.Tensor] | None = None, zero: bool = False) -> None:
        """Fix trial k's parameters (zeros, its ``best`` ones, or as they are) for the rest of the run."""
        with torch.no_grad():
            if zero:
                self.W3[k].zero_()
                self.b3[k].zero_()
            elif best is not None:
                self.W3[k].copy_(best[0])
                self.b3[k, 0].copy_(best[1])
            self.frozen[k] = (self.W3[k].detach().clone(), self.b3[k].detach().clone())

    def restore_frozen(self) -> None:
        """Undo what a shared step did to the frozen trials."""
        if self.frozen:
            with torch.no_grad():
                for k, (wk, bk) in self.frozen.items():
                    self.W3[k].copy_(wk)
                    self.b3[k].copy_(bk)

    def finite(self) -> list[bool]:
        """Per trial: whether every weight is finite."""
        return torch.isfinite(self.W3.detach()).flatten(1).all(dim=1).tolist()

    def arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Trial k's weights and intercept on the CPU, float64."""
        return (self.W3[k].detach().cpu().double().numpy().copy(),
                self.b3[k, 0].detach().cpu().double().numpy().copy())


class Objective:
    """The per-trial objective of K trials: shape ``(K,)`` values, the smooth part differentiable."""

    def __init__(self, data: PlacedData, leaves: Leaves, penalty: PenaltyGroups, n_classes: int) -> None:
        self.data, self.leaves, self.penalty, self.n_classes = data, leaves, penalty, n_classes

    def logits(self, Xb: torch.Tensor, XbT: torch.Tensor | None = None) -> torch.Tensor:
        """``(nb, K, c)``: one product with the data for every trial."""
        lv = self.leaves
        flat = lv.W3.permute(1, 0, 2).reshape(lv.p, lv.k * lv.c)
        return (matmul(Xb, flat, XbT) + lv.b3.reshape(1, lv.k * lv.c)).view(-1, lv.k, lv.c)

    def row_losses(self, z: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Each row's log loss for each trial, ``(nb, K)``, computed stably on the logits."""
        if self.leaves.c == 1:
            return F.softplus(z[..., 0]) - yb.to(z.dtype)[:, None] * z[..., 0]
        return torch.logsumexp(z, dim=2) - z.gather(2, yb.view(-1, 1, 1).expand(-1, self.leaves.k, 1))[..., 0]

    def smooth(self, Xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor, nb: int,
               XbT: torch.Tensor | None = None) -> torch.Tensor:
        """Per trial: ``sum_i w_i loss_i / nb`` plus the penalty's smooth part (``w``: ``(nb,)`` or ``(nb, K)``)."""
        weights = wb if wb.dim() == 2 else wb[:, None]
        data_loss = (self.row_losses(self.logits(Xb, XbT), yb) * weights).sum(dim=0) / nb
        return data_loss + self.penalty.smooth(self.leaves.W)

    def nonsmooth(self) -> torch.Tensor:
        """Per trial: the penalty's non-smooth part."""
        return self.penalty.nonsmooth(self.leaves.W.detach())

    @torch.no_grad()
    def full(self) -> torch.Tensor:
        """Per trial: the whole objective on every training row."""
        d = self.data
        return self.smooth(d.X, d.y, d.w, d.n, d.XT) + self.nonsmooth()

    @torch.no_grad()
    def hessian(self, trials: torch.Tensor | None = None) -> torch.Tensor:
        """The smooth objective's Hessian of the trials in ``trials`` (a ``(K,)`` bool mask; all by
        default), ``(K', P, P)`` float64, parameters ordered as in :mod:`tuner.train._curvature`."""
        d, lv = self.data, self.leaves
        if n_params(lv.p, lv.c) > HESSIAN_MAX_PARAMS:
            raise ConfigError(f"The Hessian of a model with {n_params(lv.p, lv.c):,} parameters is too large to "
                              f"offer (at most {HESSIAN_MAX_PARAMS:,}); use a first-order solver.")
        idx = torch.arange(lv.k, device=lv.W.device) if trials is None else trials.nonzero().reshape(-1)
        z = self.logits(d.X, d.XT)[:, idx]
        w = (d.w if d.w.dim() == 2 else d.w[:, None].expand(-1, lv.k))[:, idx]
        H = data_hessian(d.X, z, w, d.n)
        add_penalty_hessian(H, self.penalty, lv.W3.detach(), idx)
        return H

    @torch.no_grad()
    def hessian_product(self, trials: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """``V -> H V`` at the current parameters, for the trials in ``trials`` (a ``(K,)`` bool mask;
        all by default): ``V`` and the result are ``(K', P)`` in the weights' dtype, parameters
        ordered as in :meth:`hessian`. The row curvatures are computed here once; each product is
        then two passes over the data (``X V`` and ``X^T R``), for models of any size."""
        d, lv = self.data, self.leaves
        k, p, c, n = lv.k, lv.p, lv.c, d.n
        idx = torch.arange(k, device=lv.W.device) if trials is None else trials.nonzero().reshape(-1)
        z = self.logits(d.X, d.XT)[:, idx]
        w = (d.w if d.w.dim() == 2 else d.w[:, None].expand(-1, k))[:, idx] / n
        probs = torch.sigmoid(z) if c == 1 else torch.softmax(z, dim=2)
        curvature = w[..., None] * probs * (1 - probs) if c == 1 else None
        penalty = penalty_product(self.penalty, lv.W3.detach(), idx)
        XT = d.XT if d.XT is not None else d.X.t()

        def product(V: torch.Tensor) -> torch.Tensor:
            kk = V.shape[0]
            Vw = V[:, :p * c].reshape(kk, p, c)
            U = times(d.X, Vw.permute(1, 0, 2).reshape(p, kk * c)).view(-1, kk, c) + V[:, p * c:].reshape(1, kk, c)
            if curvature is not None:
                R = curvature * U
            else:  # the softmax's Jacobian, diag(s) - s s^T, applied row by row
                SU = probs * U
                R = (SU - probs * SU.sum(dim=2, keepdim=True)) * w[..., None]
            HW = times(XT, R.reshape(-1, kk * c)).view(p, kk, c).permute(1, 0, 2)
            if penalty is not None:
                HW = HW + penalty(Vw)
            return torch.cat([HW.reshape(kk, p * c), R.sum(dim=0).reshape(kk, c)], dim=1)

        return product

    @torch.no_grad()
    def val_losses(self) -> list[float]:
        """Per trial: the weighted mean validation log loss (requires validation data)."""
        d = self.data
        assert d.X_val is not None and d.y_val is not None and d.val_w is not None
        return (self.row_losses(self.logits(d.X_val), d.y_val) * d.val_w).sum(dim=0).tolist()

    def at_zero(self) -> list[float]:
        """Per trial: the objective at zero weights (``log 2`` or ``log C`` times the mean row weight)."""
        w, k = self.data.w, self.leaves.k
        zero_data = (math.log(2.0) if self.leaves.c == 1 else math.log(self.n_classes)) * (w.sum(dim=0) / self.data.n)
        return (zero_data if zero_data.dim() else zero_data.expand(k)).tolist()


def shown_params(params: Mapping[str, Any], k: int, space: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Trial k's hyperparameters as plain values (for messages), each as its ``space`` declares it:
    side by side a bool or int travels as a float tensor (``nesterov`` read 1.0)."""
    from tuner._space import Categorical, Int

    def plain(name: str, v: Any) -> Any:
        if not isinstance(v, torch.Tensor):
            return v
        value = float(v[k])
        spec = (space or {}).get(name)
        if isinstance(spec, Int):
            return int(value)
        if isinstance(spec, Categorical):  # the declared choice it stands for (True, not 1.0)
            return next((c for c in spec.choices if isinstance(c, (bool, int, float)) and c == value), value)
        return float(f"{value:.6g}") if v.dtype != torch.float64 else value  # 0.9, not float32's 0.89999998

    return {name: plain(name, v) for name, v in params.items()}
