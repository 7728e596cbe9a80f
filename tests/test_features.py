"""Feature pipelines: fitted on training rows, saved as JSON + arrays, rebuilt identically."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tuner.data._features import FeaturePipeline, check_finite_matrix, numeric_block
from tuner.errors import DataError

FRAME = pd.DataFrame({
    "text": ["good film", "bad film", "good good acting", "bad plot , bad acting", None],
    "x": [1.0, 2.0, 3.0, 4.0, 5.0],
    "flag": [True, False, True, False, True],
})


def rebuilt(pipe: FeaturePipeline) -> FeaturePipeline:
    meta, arrays = pipe.state()
    meta = json.loads(json.dumps(meta))  # the description is plain JSON
    return FeaturePipeline.from_state(meta, {k: np.array(v) for k, v in arrays.items()})


def test_table_pipeline_round_trip_and_empty_input() -> None:
    pipe = FeaturePipeline.fit(FRAME, kind="table", numeric_columns=["x", "flag"], text_column="text")
    X = pipe.transform(FRAME)
    assert sp.issparse(X) and X.shape == (5, len(pipe.vocabulary) + 2)
    assert "good film" in pipe.vocabulary and pipe.feature_names[-2:] == ["x", "flag"]
    again = rebuilt(pipe)
    np.testing.assert_array_equal(again.transform(FRAME).toarray(), X.toarray())
    empty = again.transform(FRAME.iloc[:0])
    assert empty.shape == (0, X.shape[1])  # an empty validation or test split
    assert X[4, : len(pipe.vocabulary)].nnz == 0  # a missing text is an empty text


def test_matrix_pipelines_standardize_dense_and_scale_sparse() -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(3.0, 2.0, size=(30, 4))
    A[:, 3] = 7.0  # constant column: left centred, not divided by zero
    dense = FeaturePipeline.fit(A, kind="matrix")
    Z = dense.transform(A)
    np.testing.assert_allclose(Z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z[:, :3].std(0), 1.0)
    assert np.all(Z[:, 3] == 0)
    np.testing.assert_array_equal(rebuilt(dense).transform(A), Z)
    S = sp.random(30, 6, density=0.3, format="csr", random_state=0) * 10
    sparse = FeaturePipeline.fit(S, kind="matrix")
    T = sparse.transform(S)
    assert sp.issparse(T) and T.nnz == S.nnz
    np.testing.assert_allclose(abs(T).max(0).toarray().ravel()[abs(S).max(0).toarray().ravel() > 0], 1.0)
    np.testing.assert_array_equal(rebuilt(sparse).transform(S).toarray(), T.toarray())
    # Rows given sparse to a model trained on dense rows are centred as dense ones would be
    # (an svmlight or CSR file of rows for a model trained on a bundled or dense set).
    np.testing.assert_allclose(dense.transform(sp.csr_matrix(A)), Z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rebuilt(dense).transform(sp.csc_matrix(A[:5])), Z[:5], rtol=1e-12, atol=1e-12)


def test_finiteness_and_type_checks_name_the_culprit() -> None:
    with pytest.raises(DataError, match="row 1 column 2 holds inf"):
        check_finite_matrix(np.array([[0, 0, 0], [0, 0, np.inf]]))
    with pytest.raises(DataError, match="'x' holds nan at row 1"):
        numeric_block(pd.DataFrame({"x": [1.0, np.nan]}), ["x"])
    with pytest.raises(DataError, match="'t' is not numeric"):
        numeric_block(pd.DataFrame({"t": ["a", "b"]}), ["t"])
    with pytest.raises(DataError, match="'n' holds no value .every cell is empty or null"):  # JSON nulls: missing
        numeric_block(pd.DataFrame({"n": [None, None], "x": [1.0, 2.0]}), ["x", "n"])
    with pytest.raises(DataError, match="'e' holds no value"):  # a CSV's empty column reads as float NaN
        numeric_block(pd.DataFrame({"e": [np.nan, np.nan], "x": [1.0, 2.0]}), ["x", "e"])
    for dtype in (object, float):  # no rows at all: an empty batch, not missing values
        assert numeric_block(pd.DataFrame({"a": [], "b": []}, dtype=dtype), ["a", "b"]).shape == (0, 2)
    with pytest.raises(DataError, match=r"\['missing'\] are missing"):
        numeric_block(pd.DataFrame({"x": [1.0]}), ["missing"])
    with pytest.raises(DataError, match="yields no terms"):
        FeaturePipeline.fit(pd.DataFrame({"text": ["", " "]}), kind="table", text_column="text")


def test_a_column_constant_up_to_rounding_is_not_scaled_up_by_its_rounding_error() -> None:
    """``np.std`` of a column of 7.7 is ~1e-15: dividing by it made a trained model answer 0 or 1
    for any row whose value differs in the second decimal. Such a column is constant (spread 1),
    as in scikit-learn's StandardScaler, and its value no longer moves the predictions."""
    from sklearn.datasets import load_breast_cancer

    import tuner

    X, y = load_breast_cancer(return_X_y=True)
    X = np.column_stack([X[:, :5], np.full(len(X), 7.7)])
    assert 0 < X[:, -1].std() < 1e-12  # the rounding this test is about
    result = tuner.fit(X, y, penalty="l2", optimizer="lbfgs", val_size=0, test_size=0)
    scale = result.model.pipeline.scale
    assert scale is not None and scale[-1] == 1.0 and scale[0] == pytest.approx(X[:, 0].std())
    moved = X[:20].copy()
    moved[:, -1] = 7.71
    p, q = result.model.predict_proba(X[:20]), result.model.predict_proba(moved)
    assert np.abs(p - q).max() < 1e-3, (p[:3], q[:3])
    assert 0.02 < p[:, 1].mean() < 0.98


TABLE = FRAME.assign(kind=["a", "b", "a", "c", "b"])


@pytest.mark.parametrize("rows, options", [
    (TABLE, {"kind": "table", "numeric_columns": ["x", "flag"], "text_column": "text", "categorical_columns": ["kind"]}),
    (TABLE, {"kind": "table", "text_column": "text"}),
    (TABLE, {"kind": "table", "numeric_columns": ["x"], "categorical_columns": ["kind"]}),
    (np.arange(12.0).reshape(4, 3), {"kind": "matrix"}),
    (sp.random(6, 5, density=0.4, format="csr", random_state=1), {"kind": "matrix"}),
])
def test_fit_transform_is_fit_then_transform(rows: object, options: dict) -> None:
    """The training rows' features from one pass (:meth:`FeaturePipeline.fit_transform`, what
    ``prepare`` uses) are exactly those of ``fit`` then ``transform``: values, layout, pipeline."""
    pipe, X = FeaturePipeline.fit_transform(rows, **options)
    expected_pipe = FeaturePipeline.fit(rows, **options)
    expected = expected_pipe.transform(rows)
    assert type(X) is type(expected) and X.shape == expected.shape and X.dtype == expected.dtype
    if sp.issparse(X):
        assert X.has_canonical_format and (X != expected).nnz == 0
    else:
        np.testing.assert_array_equal(X, expected)
    assert pipe.state()[0] == expected_pipe.state()[0]
    np.testing.assert_array_equal(pipe.transform(rows[:2]).toarray() if sp.issparse(X) else pipe.transform(rows[:2]),
                                  expected[:2].toarray() if sp.issparse(X) else expected[:2])
