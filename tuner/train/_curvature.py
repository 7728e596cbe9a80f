"""The Hessian of K trials' smooth objectives, for the optimizers that use curvature.

Per trial, the parameters are flattened in the order of the optimizer's parameter groups: the
weights row-major (``W[j, a]`` at ``j * c + a``), then the intercept (``b[a]`` at ``p * c + a``),
so ``P = (p + 1) * c``. With ``X~ = [X, 1]`` and row weights ``w`` the data part is

* binary (``c = 1``): ``X~^T diag(w s (1 - s) / n) X~``;
* multinomial: ``sum_i w_i / n (x~_i x~_i^T) kron (diag(s_i) - s_i s_i^T)``, computed as one
  block-diagonal Gram per class minus the Gram of the rows ``x~_i kron s_i``;

plus the Hessian of each penalty's smooth part, taken by automatic differentiation (any
plugin's smooth part, not only the built-in ones). The products run in blocks of rows (a sparse
matrix is made dense one block at a time) and in the data's dtype; the result is float64, for
the solver's linear algebra.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from tuner.train._device import csr_slice
from tuner.train._penalties import PenaltyGroups
from tuner.train._sizing import HESSIAN_MAX_PARAMS, HESSIAN_WORK

__all__ = ["HESSIAN_MAX_PARAMS", "HESSIAN_WORK", "data_hessian", "penalty_hessian"]

BATCHED_COLUMNS = 512
"""From this many weights a trial, the penalty's Hessian is taken as one batched gradient
(``is_grads_batched``); below, one gradient a column, which is as fast there and spares the
first batched call's import of SymPy (0.3-0.6 s a process)."""

BLOCK_VALUES = 1 << 23
"""Values of the dense ``(K, P, rows)`` temporaries per block of rows (32 MiB in float32)."""


def _dense_blocks(X: torch.Tensor, rows: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``(lo, hi, X[lo:hi] dense with a column of ones appended)`` for consecutive blocks of rows."""
    n = int(X.shape[0])
    sparse = X.layout == torch.sparse_csr
    ptr = X.crow_indices().tolist() if sparse else []
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        block = csr_slice(X, lo, hi, ptr[lo], ptr[hi]).to_dense() if sparse else X[lo:hi]
        yield lo, hi, torch.cat([block, block.new_ones(hi - lo, 1)], dim=1)


def data_hessian(X: torch.Tensor, z: torch.Tensor, w: torch.Tensor, n: int) -> torch.Tensor:
    """The log loss's Hessian for K trials, ``(K, P, P)`` float64.

    ``z``: the logits ``(n, K, c)`` (one output column for binary problems), ``w``: the row
    weights ``(n, K)``; the loss is ``sum_i w_ik loss_ik / n``."""
    k, c = int(z.shape[1]), int(z.shape[2])
    px = int(X.shape[1]) + 1
    P = px * c
    H = torch.zeros(k, P, P, dtype=torch.float64, device=z.device)
    rows = max(1, BLOCK_VALUES // max(1, k * P))
    for lo, hi, Xb in _dense_blocks(X, rows):
        zb, wb = z[lo:hi], w[lo:hi] / n
        if c == 1:
            s = torch.sigmoid(zb[..., 0])
            d = (wb * s * (1.0 - s)).T  # (K, m)
            H += (Xb.T.unsqueeze(0) * d.unsqueeze(1) @ Xb).double()
            continue
        s = torch.softmax(zb, dim=2)  # (m, K, c)
        Hv = H.view(k, px, c, px, c)
        for a in range(c):  # the diagonal blocks: X~^T diag(w s_a) X~
            d = (wb * s[..., a]).T
            Hv[:, :, a, :, a] += (Xb.T.unsqueeze(0) * d.unsqueeze(1) @ Xb).double()
        # minus sum_i w_i (x~_i kron s_i)(x~_i kron s_i)^T
        Y = (Xb.unsqueeze(1).unsqueeze(3) * s.unsqueeze(2)).permute(1, 0, 2, 3).reshape(k, hi - lo, P)
        H -= (Y.transpose(1, 2) * wb.T.unsqueeze(1) @ Y).double()
    return H


def penalty_hessian(penalty: PenaltyGroups, W: torch.Tensor) -> torch.Tensor | None:
    """The Hessian of the penalties' smooth parts with respect to the weights ``(K, p, c)``:
    ``(K, p c, p c)`` float64, or ``None`` when it is zero (no smooth part, or a linear one)."""
    Wd = W.detach().clone().requires_grad_()
    with torch.enable_grad():
        f = penalty.smooth(Wd)
        if not f.requires_grad:
            return None
        (g,) = torch.autograd.grad(f.sum(), Wd, create_graph=True)
        if not g.requires_grad:
            return None
        k, pc = int(W.shape[0]), int(W[0].numel())
        flat = g.reshape(k, pc)
        # Column j of every trial's Hessian at once: the trials are independent, so the same unit
        # direction in each trial's weights gives each trial its own column.
        cols = _batched_columns(flat, Wd) if pc >= BATCHED_COLUMNS else None
        if cols is None:  # small, or a penalty whose operations do not batch: one column at a time
            cols = torch.stack([_column(flat, Wd, j) for j in range(pc)])
    return cols.reshape(pc, k, pc).permute(1, 2, 0).double()


def _batched_columns(flat: torch.Tensor, Wd: torch.Tensor) -> torch.Tensor | None:
    """Every column of the trials' Hessians in one batched gradient; None when the penalty's
    operations do not batch."""
    k, pc = int(flat.shape[0]), int(flat.shape[1])
    basis = torch.eye(pc, dtype=Wd.dtype, device=Wd.device).unsqueeze(1).expand(pc, k, pc)
    try:
        (cols,) = torch.autograd.grad(flat, Wd, grad_outputs=basis, is_grads_batched=True, retain_graph=True,
                                      allow_unused=True)
    except RuntimeError:
        return None
    return torch.zeros(pc, *Wd.shape, dtype=Wd.dtype, device=Wd.device) if cols is None else cols


def _column(flat: torch.Tensor, Wd: torch.Tensor, j: int) -> torch.Tensor:
    (col,) = torch.autograd.grad(flat[:, j].sum(), Wd, retain_graph=True, allow_unused=True)
    return torch.zeros_like(Wd) if col is None else col
