"""Device and dtype handling in one place: resolve ``auto``, move dense or CSR data over."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from tuner.errors import ConfigError

__all__ = ["Placement"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}

CUDA_CROSSOVER_SPARSE = 2_000_000
"""Stored values of a sparse training matrix from which ``--device auto`` trains on CUDA.

Measured on an H200 with 16 CPU cores beside it (2026-11-30, ``benchmarks/gpu_check.sh``;
``benchmarks/RESULTS.md``, "GPU check"), one trial, seconds an epoch, CPU over CUDA:

* a9a, 0.36M values: lbfgs 0.40x, fista 0.65x, sgd 0.88x (the CPU wins every solver);
* SST-2 TF-IDF, 0.82M values: lbfgs 0.57x, fista 1.01x, sgd 2.41x;
* generated 160,000 x 2**18, 5.1M values: lbfgs 4.1x, fista 2.6x, sgd 15x (16 trials side by
  side: 10x to 46x);
* generated 800,000 x 2**20, 48M values: lbfgs 126x, fista 25x, sgd 36x.

The crossover lies between 0.82M and 5.1M for every solver; it is put near their geometric
mean. Trials side by side only widen CUDA's lead where it was measured, but are not counted:
small data with many trials (SST-2 with 16) was not measured, and stays on the CPU."""

CUDA_CROSSOVER_DENSE = 64_000_000
"""Stored values of a dense training matrix from which ``--device auto`` trains on CUDA. Not
measured: a dense product runs on the CPU's BLAS, many times cheaper a value than a sparse one,
so the threshold stays far above the sparse one (the size where the unbatched trainer of issue
10 still lost on CUDA, doubled)."""


def cuda_pays_off(stored_values: int, *, sparse: bool) -> bool:
    """Whether a training matrix of ``stored_values`` (non-zeros of a sparse matrix, every entry
    of a dense one) is large enough for CUDA to beat the CPU (:data:`CUDA_CROSSOVER_SPARSE`,
    :data:`CUDA_CROSSOVER_DENSE`)."""
    return stored_values >= (CUDA_CROSSOVER_SPARSE if sparse else CUDA_CROSSOVER_DENSE)


@dataclass(frozen=True)
class Placement:
    """Where tensors live and in which floating-point type."""

    device: torch.device
    dtype: torch.dtype

    @classmethod
    def resolve(cls, device: str = "auto", dtype: str = "float32", *, work: int | None = None,
                sparse: bool = True) -> Placement:
        """The placement for ``device`` (``auto``, ``cpu``, ``cuda[:N]``) and ``dtype``.

        ``auto`` picks CUDA only when it is available and the training matrix is big enough for
        the GPU to win (:func:`cuda_pays_off`: ``work``, its stored values; ``sparse``, its
        kind). Called without ``work`` (the size is unknown), ``auto`` keeps the old rule: CUDA
        whenever available.
        """
        if dtype not in _DTYPES:
            raise ConfigError(f"The 'dtype' parameter must be one of {sorted(_DTYPES)}; got {dtype!r} instead.")
        if device == "auto":
            big = work is None or cuda_pays_off(work, sparse=sparse)
            device = "cuda" if big and torch.cuda.is_available() else "cpu"
        cuda = re.fullmatch(r"cuda(?::(\d+))?", device)
        if device != "cpu" and cuda is None:  # the form first: 'cuda:x' is a typo, not a missing GPU
            raise ConfigError(f"The 'device' parameter must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r} instead.")
        if cuda is not None and not torch.cuda.is_available():
            raise ConfigError("The 'device' parameter is 'cuda' but no CUDA device is available; use the 'device' parameter 'cpu'.")
        if cuda is not None and cuda.group(1) is not None and int(cuda.group(1)) >= torch.cuda.device_count():
            raise ConfigError(f"The 'device' parameter is {device!r} but this machine has {torch.cuda.device_count()} "
                              "CUDA device(s), numbered from 0.")
        return cls(torch.device(device), _DTYPES[dtype])

    def features(self, X: Any) -> torch.Tensor:
        """A dense tensor for an array, a sparse CSR tensor for a scipy sparse matrix.

        On the CPU the tensor shares the matrix's memory when its values already have this
        placement's dtype (int32 index arrays stay int32); other values are converted once,
        straight to the dtype, never through float64.
        """
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            if not X.has_canonical_format:  # sorted, each column once a row (the row-pair Hessian counts each once)
                X = X.copy()
                X.sum_duplicates()
            nnz = int(X.indptr[-1])
            index = torch.int32 if X.indptr.dtype == X.indices.dtype == np.int32 else torch.int64
            return _csr_tensor(
                _shared(X.indptr, index),
                _shared(X.indices[:nnz], index),
                _shared(X.data[:nnz], self.dtype),
                X.shape,
            ).to(self.device)
        return _shared(np.asarray(X), self.dtype).to(self.device)

    def vector(self, v: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
        """A 1-D tensor of ``dtype`` (this placement's by default); shares ``v``'s memory when it can."""
        return torch.as_tensor(np.asarray(v), dtype=dtype or self.dtype, device=self.device)


def _shared(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """``a`` as a CPU tensor of ``dtype``: its own memory when the types match, else one converted copy."""
    with warnings.catch_warnings():  # a read-only array (np.frombuffer) is shared all the same: never written
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
        t = torch.from_numpy(np.ascontiguousarray(a))
    return t if t.dtype == dtype else t.to(dtype)


def _csr_tensor(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A CSR tensor from parts that are valid by construction (scipy's, or gathered from one), without
    PyTorch's warnings that CSR support is in beta and that invariants are not checked."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled", category=UserWarning)
        return torch.sparse_csr_tensor(crow, col, val, size=size, check_invariants=False)


CSR_GATHER_BLOCK = 1 << 22
""":func:`csr_rows` gathers this many stored values at a time: its int64 position temporaries
(three per value) stay at ~100 MiB instead of ~1.1 GiB on 60M values (the 1M-row set)."""


def csr_rows(X: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows ``rows`` of a sparse CSR tensor, as a new CSR tensor (gathered on X's device, in blocks
    of ``CSR_GATHER_BLOCK`` values)."""
    crow, col, val = X.crow_indices(), X.col_indices(), X.values()
    starts = crow[rows]
    lengths = crow[rows + 1] - starts
    new_crow = torch.zeros(len(rows) + 1, dtype=crow.dtype, device=crow.device)
    torch.cumsum(lengths, 0, out=new_crow[1:])
    total = int(new_crow[-1])
    out_col = torch.empty(total, dtype=col.dtype, device=col.device)
    out_val = torch.empty(total, dtype=val.dtype, device=val.device)
    marks = torch.arange(0, total, CSR_GATHER_BLOCK, device=crow.device, dtype=new_crow.dtype)
    cuts = sorted(set((torch.searchsorted(new_crow, marks, right=True) - 1).tolist() + [len(rows)]))
    ptr = new_crow[torch.tensor(cuts, device=crow.device)].tolist()  # one host read for all blocks
    for (a, b), (lo, hi) in zip(zip(cuts[:-1], cuts[1:]), zip(ptr[:-1], ptr[1:])):
        # position of each output non-zero inside its source row
        row_of = torch.repeat_interleave(torch.arange(a, b, device=crow.device), lengths[a:b], output_size=hi - lo)
        src = torch.arange(lo, hi, device=crow.device, dtype=new_crow.dtype) - new_crow[row_of] + starts[row_of]
        out_col[lo:hi] = col[src]
        out_val[lo:hi] = val[src]
    return _csr_tensor(new_crow, out_col, out_val, (len(rows), X.shape[1]))


class _SparseMatmul(torch.autograd.Function):
    """``X @ W`` for a constant sparse CSR ``X``, with a fast backward.

    PyTorch's generic CSR backward is an order of magnitude slower than either a product by a
    precomputed transpose (full batch) or a gather/index_add over the non-zeros (mini-batch).
    """

    @staticmethod
    def forward(ctx: Any, X: torch.Tensor, XT: torch.Tensor | None, W: torch.Tensor) -> torch.Tensor:
        ctx.X, ctx.XT = X, XT
        return times(X, W)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        X, XT = ctx.X, ctx.XT
        if XT is not None:
            return None, None, times(XT, grad)
        crow, col, val = X.crow_indices(), X.col_indices(), X.values()
        row = torch.repeat_interleave(
            torch.arange(X.shape[0], device=crow.device), crow.diff(), output_size=val.numel()
        )
        out = torch.zeros(X.shape[1], grad.shape[1], dtype=grad.dtype, device=grad.device)
        # int64: the CPU index_add_ takes ~16x longer with int32 indices (230 against 14 us for a
        # 256-row SST-2 step, torch 2.13); converting a step's few thousand indices costs ~2 us.
        return None, None, out.index_add_(0, col.long(), val[:, None] * grad[row])


def times(X: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """``X @ M`` for a dense 2-D ``M``. One column by a sparse CSR ``X`` on the CPU is a
    matrix-vector product: a quarter faster than the same product as a matrix (SST-2's 53,879 x
    79,049 TF-IDF rows, 0.82M stored values: 0.76 against 0.99 ms, and 1.03 against 1.35 ms for
    the transpose; torch 2.13), which is what a binary trial trained alone multiplies."""
    if X.layout == torch.sparse_csr and M.dim() == 2 and M.shape[1] == 1 and X.device.type == "cpu":
        return torch.mv(X, M[:, 0]).unsqueeze(1)
    return X @ M


def matmul(X: torch.Tensor, W: torch.Tensor, XT: torch.Tensor | None = None) -> torch.Tensor:
    """``X @ W`` for dense or sparse CSR ``X`` (``XT``: optional precomputed CSR transpose)."""
    if X.layout == torch.sparse_csr:
        return _SparseMatmul.apply(X, XT, W)
    return X @ W


def csr_slice(X: torch.Tensor, lo: int, hi: int, ptr_lo: int, ptr_hi: int) -> torch.Tensor:
    """Rows ``lo:hi`` of a CSR tensor without a gather: views of its column and value arrays.

    ``ptr_lo`` / ``ptr_hi`` are ``crow_indices()[lo]`` and ``[hi]``, read on the host once an
    epoch for all slices (reading them here would synchronise with the device every step).
    """
    crow = X.crow_indices()[lo:hi + 1] - ptr_lo
    return _csr_tensor(crow, X.col_indices()[ptr_lo:ptr_hi], X.values()[ptr_lo:ptr_hi], (hi - lo, X.shape[1]))
