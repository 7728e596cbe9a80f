"""Placement (device and dtype) and the sparse CSR helpers the trainer relies on."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tuner.errors import ConfigError
from tuner.train._device import (
    CUDA_CROSSOVER_DENSE,
    CUDA_CROSSOVER_SPARSE,
    Placement,
    csr_rows,
    cuda_pays_off,
    matmul,
    times,
)


def test_placement_resolves_device_and_dtype() -> None:
    place = Placement.resolve("auto", "float64")
    assert place.dtype == torch.float64
    assert place.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert Placement.resolve("cpu").dtype == torch.float32
    with pytest.raises(ConfigError, match="'dtype'"):
        Placement.resolve("cpu", "float16")
    with pytest.raises(ConfigError, match="'device'"):
        Placement.resolve("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            Placement.resolve("cuda")
    # a typo is named as one, on any machine (it was called a missing GPU); so is a GPU it lacks
    for typo in ("cuda:x", "cudax", "cuda:", "cuda:0:1", "gpu"):
        with pytest.raises(ConfigError, match=r"must be 'auto', 'cpu' or 'cuda\[:N\]'; got"):
            Placement.resolve(typo)
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA device\\(s\\), numbered from 0"):
            Placement.resolve(f"cuda:{torch.cuda.device_count()}")


def test_features_keep_dense_dense_and_sparse_sparse() -> None:
    place = Placement.resolve("cpu", "float64")
    A = np.arange(12, dtype=float).reshape(4, 3)
    dense = place.features(A)
    assert dense.layout == torch.strided and dense.dtype == torch.float64
    S = sp.csr_matrix(A)
    S.indices, S.indptr = S.indices.astype(np.int32), S.indptr.astype(np.int32)
    sparse = place.features(S.tocoo())  # any scipy format
    assert sparse.layout == torch.sparse_csr
    np.testing.assert_array_equal(sparse.to_dense().numpy(), A)


def test_csr_rows_gathers_rows_like_scipy() -> None:
    S = sp.random(50, 20, density=0.2, format="csr", random_state=0)
    X = Placement.resolve("cpu", "float64").features(S)
    rows = torch.tensor([7, 0, 49, 7, 13])
    np.testing.assert_array_equal(csr_rows(X, rows).to_dense().numpy(), S[rows.numpy()].toarray())
    assert csr_rows(X, torch.tensor([], dtype=torch.long)).shape == (0, 20)


@pytest.mark.parametrize("columns", [1, 3])  # one column: matrix-vector products (times)
@pytest.mark.parametrize("with_transpose", [True, False])
def test_sparse_matmul_forward_and_backward_match_dense(with_transpose: bool, columns: int) -> None:
    S = sp.random(40, 15, density=0.3, format="csr", random_state=1)
    place = Placement.resolve("cpu", "float64")
    X, XT = place.features(S), place.features(S.T.tocsr()) if with_transpose else None
    assert X.col_indices().dtype == torch.int32  # scipy's int32 indices, kept
    W = torch.randn(15, columns, dtype=torch.float64, requires_grad=True)
    G = torch.randn(40, columns, dtype=torch.float64)
    (matmul(X, W, XT) * G).sum().backward()
    grad_sparse = W.grad.clone()
    W.grad = None
    out_dense = torch.tensor(S.toarray()) @ W
    (out_dense * G).sum().backward()
    np.testing.assert_allclose(matmul(X, W, XT).detach().numpy(), out_dense.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad_sparse.numpy(), W.grad.numpy(), rtol=1e-12, atol=1e-12)
    for M in (W.detach(), W.detach()[:, :1], torch.randn(15, 2, dtype=torch.float64)[:, 1:]):  # a strided column too
        np.testing.assert_allclose(times(X, M).numpy(), S @ M.numpy(), rtol=1e-12)


def test_cuda_pays_off_only_above_the_crossover() -> None:
    assert not cuda_pays_off(CUDA_CROSSOVER_SPARSE - 1, sparse=True)
    assert cuda_pays_off(CUDA_CROSSOVER_SPARSE, sparse=True)
    # a dense product is cheaper a value on the CPU: a dense matrix needs far more values
    assert CUDA_CROSSOVER_DENSE > CUDA_CROSSOVER_SPARSE
    assert not cuda_pays_off(CUDA_CROSSOVER_DENSE - 1, sparse=False)
    assert cuda_pays_off(CUDA_CROSSOVER_DENSE, sparse=False)


@pytest.mark.parametrize(("work", "sparse", "device"), [
    (361_267, True, "cpu"),       # a9a's training rows: the CPU won every solver on an H200
    (823_808, True, "cpu"),       # SST-2 TF-IDF: lbfgs lost on CUDA
    (5_122_151, True, "cuda"),    # generated 160,000 x 2**18: CUDA won every solver
    (48_008_443, True, "cuda"),   # generated 800,000 x 2**20
    (48_008_443, False, "cpu"),   # dense: not measured, the CPU's BLAS
])
def test_auto_weighs_the_problem_size(work: int, sparse: bool, device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not torch.cuda.is_available():
        assert Placement.resolve("auto", work=work, sparse=sparse).device.type == "cpu"
        # the decision itself, as on a GPU machine (no tensor is placed: a device object only)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert Placement.resolve("auto", "float32", work=work, sparse=sparse).device.type == device
    assert Placement.resolve("cpu", work=work, sparse=sparse).device.type == "cpu"


def test_auto_without_a_size_takes_cuda_when_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert Placement.resolve("auto").device.type == "cuda"


def test_csr_rows_in_many_blocks_matches_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    import tuner.train._device as device

    monkeypatch.setattr(device, "CSR_GATHER_BLOCK", 1000)  # 75,000 values: dozens of blocks
    S = sp.random(5000, 300, density=0.05, format="csr", random_state=0)
    X = Placement.resolve("cpu", "float64").features(S)
    rows = torch.randperm(5000, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(csr_rows(X, rows).to_dense().numpy(), S[rows.numpy()].toarray())


def test_duplicate_entries_are_summed_once_placed() -> None:
    """A CSR matrix may store a column twice in a row (scipy sums them when multiplying); the
    placed tensor holds their sum once, so every product and the row-pair Hessian see one value."""
    from tuner.train._curvature import data_hessian

    S = sp.random(60, 12, density=0.3, format="csr", random_state=2)
    dup = sp.csr_matrix((np.repeat(S.data / 2, 2), np.repeat(S.indices, 2), S.indptr * 2), shape=S.shape)
    assert not dup.has_canonical_format and abs(dup - S).max() == 0
    place = Placement.resolve("cpu", "float64")
    X, Xd = place.features(S), place.features(dup)
    assert Xd.values().numel() == S.nnz
    z, w = torch.zeros(60, 1, 1, dtype=torch.float64), torch.ones(60, 1, dtype=torch.float64)
    torch.testing.assert_close(data_hessian(Xd, z, w, 60), data_hessian(X, z, w, 60))
    assert not dup.has_canonical_format  # the caller's matrix is left as it was
