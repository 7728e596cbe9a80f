"""The Hessian of K trials' smooth objectives, for the optimizers that use curvature.

Per trial, the parameters are flattened in the order of the optimizer's parameter groups: the
weights row-major (``W[j, a]`` at ``j * c + a``), then the intercept (``b[a]`` at ``p * c + a``),
so ``P = (p + 1) * c``. With ``X~ = [X, 1]`` and row weights ``w`` the data part is

* binary (``c = 1``): ``X~^T diag(w s (1 - s) / n) X~``;
* multinomial: ``sum_i w_i / n (x~_i x~_i^T) kron (diag(s_i) - s_i s_i^T)``, computed as one
  block-diagonal Gram per class minus the Gram of the rows ``x~_i kron s_i``;

plus the Hessian of each penalty's smooth part, taken by automatic differentiation (any
plugin's smooth part, not only the built-in ones). The products run in the data's dtype; the
result is float64, for the solver's linear algebra.

Two ways to the Grams, chosen by their cost:

* **row pairs** (sparse data): ``X~^T diag(v) X~ = sum_i v_i x~_i x~_i^T`` touches only the pairs
  of stored values of each row. Every pair ``(a <= b)`` of every row is laid out once a process as
  a sparse ``(pairs, n)`` matrix (cached by a digest of the matrix), and one sparse product with
  the ``(n, K c^2)`` row weights gives every trial's (and class pair's) Gram at once: on a9a
  (15 stored values a row, 3.8M pairs against 32,561 x 124^2 = 5e8 dense products) 12 ms for
  32 trials, against 219 ms made dense;
* **dense blocks** (dense data, or rows too full for pairs to pay): blocks of rows made dense.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from tuner.train._device import _csr_tensor, csr_slice
from tuner.train._penalties import PenaltyGroups
from tuner.train._sizing import HESSIAN_MAX_PARAMS, HESSIAN_WORK

__all__ = ["HESSIAN_MAX_PARAMS", "HESSIAN_WORK", "add_penalty_hessian", "data_hessian", "penalty_hessian",
           "penalty_product"]

BATCHED_COLUMNS = 512
"""From this many weights a trial, the penalty's Hessian is taken as one batched gradient
(``is_grads_batched``); below, one gradient a column, which is as fast there and spares the
first batched call's import of SymPy (0.3-0.6 s a process)."""

BLOCK_VALUES = 1 << 23
"""Values of the dense ``(K, P, rows)`` temporaries per block of rows (32 MiB in float32)."""


PAIR_ADVANTAGE = 4
"""Dense multiply-adds a row pair must save for the pairs to be used: a pair product runs about
3x slower than a dense one (a9a, 2 cores: 10.7e9 against 29e9 multiply-adds a second), so rows
must be sparse enough that ``pairs x 4 <= n x P^2`` (under about 70% stored)."""

MAX_PAIRS = 1 << 23
"""The most row pairs laid out: 8.4M, ~100 MiB kept with their row numbers (cached for the
process) and ~0.4 GiB while they are sorted; beyond, the dense blocks. a9a has 3.8M."""


@dataclass(frozen=True)
class RowPairs:
    """Every pair ``a <= b`` of stored values of every row of ``X~ = [X, 1]``, grouped by pair.

    ``products``: ``(U, n)`` CSR, row ``u`` holding ``x~_ia x~_ib`` for the rows ``i`` where the
    pair ``a = first[u] <= b = second[u]`` is stored; ``first``, ``second``: ``(U,)`` int64."""

    products: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor


_PAIRS: dict[int, RowPairs | None] = {}
"""The row pairs by ``id`` of the training tensor, dropped with it (a weak-keyed dictionary
cannot hold tensors: it compares two references to one tensor with ``==``)."""

_BY_CONTENT: OrderedDict[bytes, RowPairs | None] = OrderedDict()
"""The row pairs of the last few matrices by a digest of their contents: each fit places the
data afresh (a new tensor on the same memory), and a study's trials must not lay the pairs out
again. Keyed by contents, so a matrix changed in place between fits is laid out anew."""
CONTENT_CACHE = 2


def row_pairs(X: torch.Tensor) -> RowPairs | None:
    """The row pairs of a CSR ``X`` (cached), or None where the dense blocks are cheaper (dense
    data, full rows) or the pairs too many (:data:`PAIR_ADVANTAGE`, :data:`MAX_PAIRS`)."""
    if X.layout != torch.sparse_csr:
        return None
    if id(X) in _PAIRS:
        return _PAIRS[id(X)]
    key = _digest(X)
    if key in _BY_CONTENT:
        _BY_CONTENT.move_to_end(key)
        pairs = _BY_CONTENT[key]
    else:
        n, px = int(X.shape[0]), int(X.shape[1]) + 1
        stored = np.diff(X.crow_indices().cpu().numpy()).astype(np.int64) + 1  # and the column of ones
        count = int((stored * (stored + 1) // 2).sum())
        pairs = None
        if count * PAIR_ADVANTAGE <= n * px * px and count <= MAX_PAIRS:
            pairs = _lay_out_pairs(X, stored, px)
        _BY_CONTENT[key] = pairs
        while len(_BY_CONTENT) > CONTENT_CACHE:
            _BY_CONTENT.popitem(last=False)
    _PAIRS[id(X)] = pairs
    weakref.finalize(X, _PAIRS.pop, id(X), None)
    return pairs


def _digest(X: torch.Tensor) -> bytes:
    """A digest of a CSR tensor's shape, device, types and arrays (a few ms for a9a's 0.45M values)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((tuple(X.shape), str(X.device), str(X.dtype), str(X.col_indices().dtype))).encode())
    for part in (X.crow_indices(), X.col_indices(), X.values()):
        h.update(part.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()


def _lay_out_pairs(X: torch.Tensor, stored: np.ndarray, px: int) -> RowPairs:
    n = int(X.shape[0])
    crow = X.crow_indices().cpu().numpy().astype(np.int64)
    col, val = X.col_indices().cpu().numpy().astype(np.int64), X.values().cpu().numpy()
    # X~ in CSR: each row's stored values, then the column of ones (column p)
    start = crow + np.arange(n + 1)
    cols = np.empty(int(start[-1]), dtype=np.int64)
    vals = np.empty(int(start[-1]), dtype=val.dtype)
    ones_at = start[1:] - 1
    inner = np.ones(int(start[-1]), dtype=bool)
    inner[ones_at] = False
    cols[inner], vals[inner] = col, val
    cols[ones_at], vals[ones_at] = px - 1, 1
    parts_row, parts_flat, parts_val = [], [], []
    for r in np.unique(stored):  # rows with r stored values share one (a, b) pattern
        rows = np.flatnonzero(stored == r)
        first, second = np.triu_indices(int(r))
        ia, ib = start[rows][:, None] + first, start[rows][:, None] + second
        ca, cb = cols[ia], cols[ib]
        parts_row.append(np.repeat(rows, len(first)))
        parts_flat.append((np.minimum(ca, cb) * px + np.maximum(ca, cb)).ravel())
        parts_val.append((vals[ia] * vals[ib]).ravel())
    row = torch.from_numpy(np.concatenate(parts_row))
    flat = torch.from_numpy(np.concatenate(parts_flat))
    value = torch.from_numpy(np.concatenate(parts_val))
    order = torch.sort(flat * n + row).indices  # by pair, then by row (the keys are unique)
    flat, row, value = flat[order], row[order], value[order]
    ids, counts = torch.unique_consecutive(flat, return_counts=True)
    crow_u = torch.zeros(len(ids) + 1, dtype=torch.int64)
    torch.cumsum(counts, dim=0, out=crow_u[1:])
    products = _csr_tensor(crow_u, row, value, (len(ids), n)).to(X.device)
    return RowPairs(products, (ids // px).to(X.device), (ids % px).to(X.device))


def _pair_hessian(pairs: RowPairs, px: int, z: torch.Tensor, w: torch.Tensor, n: int) -> torch.Tensor:
    """:func:`data_hessian` from the row pairs: one sparse product for every trial and class pair."""
    k, c = int(z.shape[1]), int(z.shape[2])
    if c == 1:
        s = torch.sigmoid(z[..., 0])
        v = (w / n * s * (1.0 - s)).unsqueeze(2).unsqueeze(3)  # (n, K, 1, 1)
    else:  # class pair (a, b): w (delta_ab s_a - s_a s_b)
        s = torch.softmax(z, dim=2)
        v = (w / n)[..., None, None] * (torch.diag_embed(s) - s.unsqueeze(3) * s.unsqueeze(2))  # (n, K, c, c)
    grams = torch.sparse.mm(pairs.products, v.reshape(v.shape[0], -1).to(pairs.products.dtype))  # (U, K c c)
    # H[k, j c + a, l c + b] for the pair (j <= l) and its mirror (l, j): the row weights are
    # symmetric in the class pair, so both take the same (a, b) block, written in place
    block = grams.view(-1, k, c, c).double()
    H = torch.zeros(k, px, c, px, c, dtype=torch.float64, device=z.device)
    H[:, pairs.first, :, pairs.second, :] = block
    H[:, pairs.second, :, pairs.first, :] = block
    return H.view(k, px * c, px * c)


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
    pairs = row_pairs(X)
    if pairs is not None:
        return _pair_hessian(pairs, px, z, w, n)
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


def _penalty_gradient(penalty: PenaltyGroups, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A leaf copy of ``W`` and the penalties' smooth gradient there, with its graph (to be
    differentiated once more); ``None`` when that gradient is constant (no smooth part, or a linear one)."""
    Wd = W.detach().clone().requires_grad_()
    with torch.enable_grad():
        f = penalty.smooth(Wd)
        if not f.requires_grad:
            return None
        (g,) = torch.autograd.grad(f.sum(), Wd, create_graph=True)
    return (Wd, g) if g.requires_grad else None


def penalty_product(penalty: PenaltyGroups, W: torch.Tensor, idx: torch.Tensor,
                    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``V -> H_pen V`` for the trials ``idx`` of the penalties' smooth parts at the weights ``W``
    ``(K, p, c)`` (``V``: ``(K', p, c)``): ``b V`` when every trial's penalty is an elastic net,
    else by differentiating their gradient once more (any plugin's smooth part); ``None`` when that
    Hessian is zero."""
    l2 = penalty.l2_weights()
    if l2 is not None:  # b / 2 ||W||^2 (the plugins say so, and tuner.testing checks it): b V
        if not penalty.has_l2():
            return None
        scale = l2[idx].view(-1, 1, 1)  # against V's (K', p, c)
        return lambda V: scale * V
    graph = _penalty_gradient(penalty, W)
    if graph is None:
        return None
    Wd, g = graph

    def product(V: torch.Tensor) -> torch.Tensor:
        full = V if len(idx) == W.shape[0] else W.new_zeros(W.shape).index_copy(0, idx, V)
        with torch.enable_grad():
            # a scalar's gradient: with grad_outputs, torch's first call imports SymPy (0.4 s)
            (hv,) = torch.autograd.grad((g * full).sum(), Wd, retain_graph=True, allow_unused=True)
        if hv is None:
            return torch.zeros_like(V)
        return hv if len(idx) == W.shape[0] else hv.index_select(0, idx)

    return product


def add_penalty_hessian(H: torch.Tensor, penalty: PenaltyGroups, W: torch.Tensor, idx: torch.Tensor) -> None:
    """Add the Hessian of the penalties' smooth parts for the trials ``idx`` to the weights' block of
    their Hessians ``H`` (``(K', P, P)``, the weights' ``p c`` parameters first), in place.

    An elastic net's smooth part ``b / 2 ||W||^2`` adds ``b`` to the block's diagonal; any other
    penalty's Hessian is taken by differentiating its gradient (:func:`penalty_hessian`): on
    breast_cancer's 30 weights that was 30 gradients a Newton step, ~40% of a fit's time."""
    pc = int(W[0].numel())
    l2 = penalty.l2_weights()
    if l2 is not None:
        if penalty.has_l2():
            H.diagonal(dim1=1, dim2=2)[:, :pc] += l2[idx].to(H.dtype)[:, None]
        return
    pen = penalty_hessian(penalty, W)
    if pen is not None:
        H[:, :pc, :pc] += pen[idx]


def penalty_hessian(penalty: PenaltyGroups, W: torch.Tensor) -> torch.Tensor | None:
    """The Hessian of the penalties' smooth parts with respect to the weights ``(K, p, c)``:
    ``(K, p c, p c)`` float64, or ``None`` when it is zero (no smooth part, or a linear one)."""
    graph = _penalty_gradient(penalty, W)
    if graph is None:
        return None
    Wd, g = graph
    with torch.enable_grad():
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
