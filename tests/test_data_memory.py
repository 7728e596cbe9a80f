"""Large sparse data is held once: stored dtypes kept, one copy per split, tensors sharing memory (issue 10)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tuner.data import HEAD_ROWS, load_data, prepare
from tuner.data._features import FeaturePipeline
from tuner.errors import DataError
from tuner.train import Placement, matmul


def _csr(rows: int, features: int, per_row: int, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """A CSR matrix with sorted, distinct int32 column indices per row, float32 values in [-1, 1), labels."""
    rng = np.random.default_rng(seed)
    first = rng.choice(features, rows, replace=rows > features)[:, None]  # distinct rows when rows <= features
    cols = np.sort((first + np.arange(per_row)[None, :] * (features // per_row - 1)) % features, axis=1)
    indptr = np.arange(0, rows * per_row + 1, per_row, dtype=np.int32)
    data = rng.uniform(-1, 1, rows * per_row).astype(np.float32)
    X = sp.csr_matrix((data, cols.ravel().astype(np.int32), indptr), shape=(rows, features))
    y = (X @ rng.normal(size=features) > 0).astype(np.int64)
    return X, y


def _stored(X: sp.csr_matrix) -> int:
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def _save_npz(path: Path, X: sp.csr_matrix, y: np.ndarray) -> Path:
    np.savez(path, X_data=X.data, X_indices=X.indices, X_indptr=X.indptr, X_shape=np.array(X.shape), y=y)
    return path


def test_npz_keeps_float32_values_and_int32_indices_through_prepare(tmp_path: Path) -> None:
    X, y = _csr(3000, 4096, 20)
    raw = load_data(_save_npz(tmp_path / "d.npz", X, y))
    assert (raw.X.data.dtype, raw.X.indices.dtype, raw.X.indptr.dtype) == (np.float32, np.int32, np.int32)
    assert (raw.X != X).nnz == 0
    ds = prepare(raw, seed=3)
    for part in (ds.X_train, ds.X_val, ds.X_test):
        assert (part.data.dtype, part.indices.dtype, part.indptr.dtype) == (np.float32, np.int32, np.int32)
    # the scaled values are what scaling in float64 and rounding once to float32 gives
    train_idx = _rows_of(ds.X_train, raw.X)
    expected = (sp.csr_matrix(raw.X[train_idx], dtype=np.float64) @ sp.diags(1.0 / ds.pipeline.scale)).astype(np.float32)
    assert (ds.X_train != expected).nnz == 0


def _rows_of(part: sp.csr_matrix, X: sp.csr_matrix) -> np.ndarray:
    """Which rows of ``X`` ``part`` holds, matched by their column pattern (the test matrix's are distinct)."""
    key = {tuple(X.indices[X.indptr[i]:X.indptr[i + 1]]): i for i in range(X.shape[0])}
    return np.array([key[tuple(part.indices[part.indptr[i]:part.indptr[i + 1]])] for i in range(part.shape[0])])


def test_npz_float64_values_stay_float64(tmp_path: Path) -> None:
    X, y = _csr(200, 64, 4)
    raw = load_data(_save_npz(tmp_path / "d.npz", X.astype(np.float64), y))
    assert raw.X.data.dtype == np.float64 and raw.X.indices.dtype == np.int32
    assert prepare(raw).X_train.data.dtype == np.float64


@pytest.mark.parametrize("values, dtype", [(["1", "0.5", "2", "-3"], np.float32), (["0.1", "1", "2", "3"], np.float64)])
def test_svmlight_values_float32_when_exact_and_indices_int32(tmp_path: Path, values: list[str], dtype: type) -> None:
    lines = [f"{i % 2} {1 + i % 3}:{values[i % 4]} {5 + i % 2}:{values[(i + 1) % 4]}" for i in range(40)]
    path = tmp_path / "d.svm"
    path.write_text("\n".join(lines) + "\n")
    raw = load_data(path)
    assert raw.X.data.dtype == dtype and raw.X.indices.dtype == np.int32 and raw.X.indptr.dtype == np.int32
    assert raw.X[0, 0] == float(values[0]) and raw.X[0, 4] == float(values[1])  # one-based: index 1 is column 0


def test_prepare_copies_the_matrix_once(tmp_path: Path) -> None:
    X, y = _csr(100_000, 1 << 16, 60, seed=1)
    raw = load_data(_save_npz(tmp_path / "big.npz", X, y))
    del X
    stored = _stored(raw.X)
    import sklearn.model_selection  # noqa: F401 - prepare's import, done before measuring its allocations

    tracemalloc.start()
    try:
        ds = prepare(raw, seed=0, keep_raw=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    splits = sum(_stored(part) for part in (ds.X_train, ds.X_val, ds.X_test))
    assert splits <= stored * 1.01  # the splits together: the matrix once, no float64 values
    # the splits plus bounded temporaries (the float64 splits and whole-matrix copies of before: 2.8x)
    assert peak <= 1.5 * stored, f"prepare allocated {peak / stored:.2f}x the matrix it split"
    # the full matrix is not kept in the data set, only its first rows
    assert ds.raw.X.shape[0] == HEAD_ROWS and ds.raw.source == raw.source


def test_prepare_keeps_small_raw_data_unless_told_otherwise() -> None:
    raw = load_data(dataset="breast_cancer")
    assert prepare(raw).raw is raw
    assert prepare(raw, keep_raw=False).raw.X.shape == (HEAD_ROWS, raw.X.shape[1])


def test_transform_copy_false_scales_in_place_and_copy_true_leaves_input() -> None:
    X, _ = _csr(300, 256, 10)
    pipe = FeaturePipeline.fit(X, kind="matrix")
    before = X.data.copy()
    out = pipe.transform(X)
    assert np.array_equal(X.data, before) and not np.shares_memory(out.data, X.data)
    inplace = pipe.transform(X, copy=False)
    assert np.shares_memory(inplace.data, X.data) and (inplace != out).nnz == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_placement_shares_int32_csr_and_products_match_scipy(dtype: str) -> None:
    X, _ = _csr(400, 300, 12, seed=2)
    place = Placement.resolve("cpu", dtype)
    Xt = place.features(X)
    assert Xt.crow_indices().dtype == torch.int32 and Xt.col_indices().dtype == torch.int32
    assert np.shares_memory(Xt.col_indices().numpy(), X.indices)
    assert np.shares_memory(Xt.values().numpy(), X.data) == (dtype == "float32")  # float64: converted once
    W = torch.randn(300, 3, dtype=place.dtype, requires_grad=True)
    out = matmul(Xt, W)  # X @ W (K columns), backward by index_add over int32 column indices
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(out.detach().numpy(), X64 @ W.detach().double().numpy(), rtol=1e-4, atol=1e-4)
    G = torch.randn(400, 3, dtype=place.dtype)
    out.backward(G)
    np.testing.assert_allclose(W.grad.numpy(), X64.T @ G.double().numpy(), rtol=1e-4, atol=1e-4)
    XT = place.features(X.T.tocsr())  # the full-batch path's transpose product
    np.testing.assert_allclose((XT @ G).numpy(), X64.T @ G.double().numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("with_test_split", [True, False])
def test_consumed_matrix_gives_the_same_splits_as_a_kept_one(tmp_path: Path, with_test_split: bool) -> None:
    X, y = _csr(5000, 2048, 15, seed=4)
    X = X[np.argsort(np.random.default_rng(0).random(5000))]  # rows in any order
    X = sp.vstack([X[:10], sp.csr_matrix((3, 2048), dtype=np.float32), X[10:]], format="csr")  # empty rows too
    y = np.r_[y[:10], [0, 1, 0], y[10:]]
    path = _save_npz(tmp_path / "d.npz", X, y)
    test = {"test_size": 0.2} if with_test_split else {"test_size": 0.0}
    kept = prepare(load_data(path), seed=5, keep_raw=True, **test)
    raw = load_data(path)
    consumed = prepare(raw, seed=5, keep_raw=False, **test)
    assert raw.X.shape == (HEAD_ROWS, 2048)  # the caller's raw lets go of the full matrix too
    assert raw.y is not None and len(raw.y) == HEAD_ROWS  # its labels with it, and it says so:
    with pytest.raises(DataError, match="split once already.*read the data again"):
        prepare(raw, seed=5)  # (it split its 10 rows, or failed with an IndexError)
    for a, b in ((kept.X_train, consumed.X_train), (kept.X_val, consumed.X_val), (kept.X_test, consumed.X_test)):
        assert a.shape == b.shape and a.dtype == b.dtype and b.indices.dtype == np.int32
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.data, b.data)
    assert np.array_equal(kept.y_train, consumed.y_train) and np.array_equal(kept.y_test, consumed.y_test)
