"""The sparse benchmark data generator (benchmarks/make_sparse_data.py) on small sizes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "make_sparse_data.py"
ROWS, FEATURES, NNZ = 20_000, 2**14, 60


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sparse_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load_script()


@pytest.fixture(scope="module")
def sample(gen: ModuleType):
    return gen.make_sparse(ROWS, FEATURES, NNZ, seed=7)


def test_same_seed_same_data_other_seed_other_data(gen: ModuleType, sample) -> None:
    X, y, info = sample
    X2, y2, info2 = gen.make_sparse(ROWS, FEATURES, NNZ, seed=7)
    assert (X != X2).nnz == 0 and np.array_equal(X.indptr, X2.indptr) and np.array_equal(y, y2)
    np.testing.assert_array_equal(info["weights"], info2["weights"])
    X3, y3, _ = gen.make_sparse(ROWS, FEATURES, NNZ, seed=8)
    assert X3.nnz != X.nnz or (X3 != X).nnz > 0
    # Rows come in fixed chunks: a shorter data set of the same seed is a prefix, a chunk cut short
    # included (its labels were drawn after its tokens, from another point of the stream)
    X4, y4, _ = gen.make_sparse(gen.CHUNK_ROWS + 1000, FEATURES, NNZ, seed=7)
    n = gen.CHUNK_ROWS + 1000
    assert (X4[:n] != X[:n]).nnz == 0 and np.array_equal(y4[:n], y[:n])


def test_shape_nnz_dtypes_and_tfidf_rows(sample) -> None:
    X, y, info = sample
    assert X.shape == (ROWS, FEATURES) and y.shape == (ROWS,)
    assert X.data.dtype == np.float32 and X.indices.dtype == np.int32 and X.indptr.dtype == np.int32
    assert X.has_sorted_indices and X.has_canonical_format
    assert info["nnz"] == X.nnz
    assert abs(X.nnz / ROWS - NNZ) < 0.05 * NNZ
    per_row = np.diff(X.indptr)
    assert per_row.min() >= 1 and per_row.std() > 3  # Poisson-like lengths, no empty row
    assert (X.data > 0).all()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_column_frequencies_are_zipf_like(sample) -> None:
    X, _, _ = sample
    df = np.bincount(X.indices, minlength=FEATURES)
    assert df.max() > 0.9 * ROWS  # a stop-word-like column in nearly every row
    assert df.max() > 100 * max(np.median(df), 1)
    top = np.sort(df)[::-1]
    assert top[: FEATURES // 100].sum() > 0.4 * X.nnz  # 1% of the columns hold a large share


def test_labels_balanced_and_predictable(sample) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y, info = sample
    assert set(np.unique(y)) == {0, 1} and 0.4 < y.mean() < 0.6
    assert 0.85 < info["bayes_accuracy"] < 0.95  # asked for 0.90 by default
    assert abs(info["bayes_rule_accuracy_realised"] - info["bayes_accuracy"]) < 0.02
    true = (X @ info["weights"] + info["intercept"] > 0).astype(int)
    assert abs(np.mean(true == y) - info["bayes_accuracy"]) < 0.02
    n_train = 16_000
    clf = LogisticRegression(C=10.0, max_iter=500).fit(X[:n_train], y[:n_train])
    accuracy = clf.score(X[n_train:], y[n_train:])
    assert accuracy > max(0.75, info["bayes_accuracy"] - 0.12)
    cosine = clf.coef_[0] @ info["weights"] / np.linalg.norm(clf.coef_) / np.linalg.norm(info["weights"])
    assert cosine > 0.4  # the fit points towards the planted weights


def test_cli_writes_npz_that_load_data_reads(gen: ModuleType, tmp_path: Path) -> None:
    from tuner.data import load_data

    out = tmp_path / "small.npz"
    gen.main(["--rows", "3000", "--features", "4096", "--nnz-per-row", "20", "--seed", "1", "--out", str(out)])
    raw = load_data(out)
    X, y, info = gen.make_sparse(3000, 4096, 20, seed=1)
    assert raw.kind == "matrix" and raw.X.shape == (3000, 4096) and raw.X.nnz == X.nnz
    assert (raw.X != X.astype(np.float64)).nnz == 0 and np.array_equal(raw.y, y)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["nnz"] == X.nnz and meta["weights_norm"] == pytest.approx(np.linalg.norm(info["weights"]))
    assert 0.5 < meta["bayes_accuracy"] < 1 and meta["peak_rss_mib"] > 0
    np.testing.assert_array_equal(np.load(out.with_suffix(".weights.npy")), info["weights"])


def test_rejects_impossible_sizes(gen: ModuleType) -> None:
    with pytest.raises(ValueError):
        gen.make_sparse(100, 64, 40, seed=0)
    with pytest.raises(ValueError):
        gen.make_sparse(0, 64, 4, seed=0)
