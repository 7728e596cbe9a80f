"""Feature preprocessing fitted on the training rows only, and saved without pickles.

Two kinds of input exist:

* a *matrix* (LIBSVM, ``.npz``, scikit-learn's bundled sets): dense columns are
  standardized, sparse ones scaled by their maximum absolute value (keeps sparsity);
* a *table* (CSV/TSV/Parquet, text files): numeric columns are standardized, an optional
  text column becomes TF-IDF 1-2 grams (rows L2-normalized, so not rescaled again), and
  categorical columns become one 0/1 column per category seen in the training rows (a missing
  value is a category of its own; a category the training rows never held sets none of them).

The fitted state is a JSON-able dict plus named float arrays, which the model stores with
its weights, so a loaded model transforms raw rows exactly as during training.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tuner._finite import CHUNK_VALUES, _chunks, check_finite_matrix, first_non_finite
from tuner.errors import DataError

__all__ = ["FeaturePipeline", "check_finite_matrix", "numeric_block", "repeated_names", "row_name", "standardization",
           "max_abs_columns", "scale_columns", "value_dtype", "category_labels", "MISSING_CATEGORY"]

TFIDF_OPTIONS = {"ngram_range": (1, 2), "min_df": 1, "sublinear_tf": True, "dtype": np.float64}
MISSING_CATEGORY = "(missing)"
"""The category of an empty cell in a categorical column."""
DENSE_ONE_HOT_MAX = 1024
"""Categorical columns of at most this many categories in all give dense features (without a text
column); more give a sparse matrix, so that a column of many categories never makes dense rows."""
def value_dtype(dtype: Any) -> np.dtype:
    """The float type feature values are kept in: float32 and float64 as they are, anything else float64."""
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def max_abs_columns(X: sp.csr_matrix) -> np.ndarray:
    """The largest absolute value of each column (float64; 0 for an empty column) of a CSR matrix.

    Computed over blocks of rows of about :data:`CHUNK_VALUES` values each: the whole-matrix
    ``abs(X).max(axis=0)`` makes two copies of ``X`` (``abs``, then a CSC transpose).
    """
    out = np.zeros(X.shape[1], dtype=np.float64)
    nnz = int(X.indptr[-1])
    if nnz == 0:
        return out
    starts = np.searchsorted(X.indptr, np.arange(0, nnz, CHUNK_VALUES), side="right") - 1
    bounds = np.unique(np.append(starts, X.shape[0]))
    for a, b in zip(bounds[:-1], bounds[1:]):
        block = abs(X[int(a):int(b)]).max(axis=0)
        np.maximum(out, block.toarray().ravel(), out=out)
    return out


def scale_columns(X: sp.csr_matrix, factor: np.ndarray, *, copy: bool = True) -> sp.csr_matrix:
    """``X`` with column ``j`` multiplied by ``factor[j]``, in ``X``'s float type (float64 for others).

    The products are computed in float64 and rounded once to the value type, so float32 values give
    what scaling in float64 and casting afterwards would. The result shares ``X``'s index arrays;
    ``copy=False`` also overwrites ``X``'s values when they are already float32/float64 (for a matrix
    the caller owns, such as a fresh split).
    """
    dtype = value_dtype(X.dtype)
    nnz = int(X.indptr[-1])
    data = X.data if not copy and X.data.dtype == dtype else np.empty(nnz, dtype=dtype)
    for a, b in _chunks(nnz):
        np.multiply(X.data[a:b], factor[X.indices[a:b]], out=data[a:b], casting="same_kind")
    return sp.csr_matrix((data[:nnz], X.indices[:nnz], X.indptr), shape=X.shape, copy=False)


def _number_rows(X: Any) -> np.ndarray:
    """Rows given as an array or a list of lists, as numbers (bool and numeric objects included,
    as scikit-learn estimators take them)."""
    try:
        A = np.asarray(X)
        return A if np.issubdtype(A.dtype, np.number) or A.dtype == np.bool_ else A.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"The rows must be numbers, all of one length: {exc}.") from None


def row_name(row: int, line_of: Callable[[int], int] | None = None) -> str:
    """How a message names row ``row`` (from 0): in a file whose data row r is at line
    ``line_of(r)``, as a user counts it in an editor (``data row 6 (line 7)``); else ``row 5``."""
    return f"row {row}" if line_of is None else f"data row {row + 1} (line {line_of(row)})"


_TEXT_HINT = ("pass it as the text column (the 'text_column' parameter) if it holds text, as a categorical column "
              "(the 'categorical_columns' parameter) if it holds categories, as the group column (the "
              "'group_column' parameter) if it names each row's group (a user, a sentence id), or drop it")
_TRAINED_ON_NUMBERS = "the model was trained on numbers in it: give numbers there"


def numeric_block(frame: pd.DataFrame, columns: list[str], where: str = "", line_of: Callable[[int], int] | None = None,
                  hint: str = _TEXT_HINT) -> np.ndarray:
    """The given columns as a float matrix; clear errors for missing, text or non-finite values
    (a row named by its file line, ``line_of(row)``, when the rows are a file's; ``hint``: what
    to do about a column of text)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"Column(s) {missing} are missing{where}; the data has columns {list(frame.columns)}.")
    if not len(frame):  # no rows (an empty batch to predict): nothing to check
        return np.zeros((0, len(columns)))
    for c in columns:
        if frame[c].isna().all():  # every cell empty or null (a CSV's empty cells, JSON null): missing, not text
            raise DataError(f"Feature column {c!r} holds no value (every cell is empty or null){where}; features "
                            "must be finite numbers: fill it in, or remove or impute the missing values first.")
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]):
            if not pd.api.types.is_bool_dtype(frame[c]):
                _not_numeric(frame[c], c, where, line_of, hint)
    A = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    cell = first_non_finite(A)
    if cell is not None:
        row, col = cell
        raise DataError(
            f"Feature column {columns[col]!r} holds {A[row, col]} at {row_name(row, line_of)}{where}; features must be "
            "finite numbers. Remove or impute such values first."
        )
    return A


def _not_numeric(cells: pd.Series, column: str, where: str, line_of: Callable[[int], int] | None, hint: str) -> None:
    """The error for a feature column of cells that are not all numbers: a column of numbers with a
    few other cells (``?`` for a missing value, a decimal comma) names the first of them; a column
    of text gets ``hint``."""
    present = cells.notna().to_numpy()
    odd = present & pd.to_numeric(cells, errors="coerce").isna().to_numpy()
    if odd.any() and odd.sum() < (present & ~odd).sum():
        row = int(np.argmax(odd))
        raise DataError(f"Feature column {column!r} holds {cells.iloc[row]!r} at {row_name(row, line_of)}{where}, "
                        f"where {int((present & ~odd).sum())} of its cells are numbers: write it as a number (with a "
                        "decimal point), or remove or impute that value first.")
    if present.any() and all(is_number(v) for v in cells[present].head(1000)):
        row = int(np.argmax(present))
        raise DataError(f"Feature column {column!r} holds numbers too large for 64-bit integers ({cells.iloc[row]} at "
                        f"{row_name(row, line_of)}){where}. An id? Leave the column out. A quantity? Write it with a "
                        "decimal point or an exponent (1e20), and it is read as a number.")
    raise DataError(f"Feature column {column!r} is not numeric (dtype {cells.dtype}){where}; {hint}.")


def is_number(cell: Any) -> bool:
    """Whether a cell reads as a number (``float`` takes it: ``nan`` and ``inf`` too; a Python int
    of any width, not a bool)."""
    try:
        float(cell)
    except (TypeError, ValueError, OverflowError):
        return False
    return not isinstance(cell, bool)


def standardization(A: np.ndarray, names: list[str], where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Column means and spreads (1 for a constant column); an error names a column that holds NaN
    or inf, or whose scale overflows.

    A column is constant when its spread is within float64 rounding of zero, as in
    scikit-learn's ``StandardScaler``: ``np.std`` of a column of 7.7 is about 1e-15, not 0, and
    dividing by it turned the column into a feature of +-1 on the training rows and 7.71 into
    about 1e13 at predict time, so every prediction was 0 or 1."""
    check_finite_matrix(A, where)
    with np.errstate(over="ignore", invalid="ignore"):
        center = A.mean(axis=0)
        std = A.std(axis=0)
    bad = ~(np.isfinite(center) & np.isfinite(std))
    if bad.any():
        col = int(np.argmax(bad))
        name = names[col] if col < len(names) else str(col)
        raise DataError(
            f"Feature column {name!r} is too large to standardize{where} (values up to "
            f"{np.abs(A[:, col]).max():g}: its mean or spread overflows float64); rescale it first, "
            "for example by dividing it by a power of ten."
        )
    n, eps = A.shape[0], np.finfo(np.float64).eps
    var = std**2
    constant = var <= n * eps * var + (n * center * eps) ** 2
    return center, np.where(constant, 1.0, std)


def category_labels(values: pd.Series) -> np.ndarray:
    """A categorical column's cells as category names (object array of str): missing and empty
    cells are :data:`MISSING_CATEGORY`, and a whole number is named alike as an int, a float or the
    text ``3.0`` (category ``"3"``: a missing cell turns a column of ints into floats, which pandas
    writes to CSV as ``3.0``). Files give the text of their cells (see
    :func:`~tuner.data._readers.read_table_frame`), so ``007`` and ``1.50`` stay as written."""
    def name(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT or v == "":
            return MISSING_CATEGORY
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
            return str(int(v))
        text = str(v)
        whole = _WHOLE_FLOAT.match(text)
        return whole.group(1) if whole else text

    return np.asarray([name(v) for v in values.tolist()], dtype=object)


_WHOLE_FLOAT = re.compile(r"^(-?(?:0|[1-9]\d*))\.0+$")
"""A whole number as pandas writes a float (``3.0``), without leading zeros (``007.0`` stays)."""


BY_POSITION = "tuner_by_position"
"""The ``DataFrame.attrs`` key of rows read without a header: their columns are positions, never names."""
LINE_OF = "tuner_line_of"
"""The ``DataFrame.attrs`` key of rows read from a CSV/TSV file: row -> file line, for messages."""
LABELS_DROPPED = "tuner_labels_dropped"
"""The ``DataFrame.attrs`` key of texts read from ``'<label> <text>'`` lines: the labels left out."""


def repeated_names(names: Iterable[Any]) -> list[str]:
    """The column names that occur more than once, compared as text (``1`` and ``'1'`` are one
    name), sorted: one rule for a file's header, a DataFrame to train on and rows to predict."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for name in map(str, names):
        (repeated if name in seen else seen).add(name)
    return sorted(repeated)


def _refuse_duplicate_names(names: list[str]) -> None:
    """Rows to transform need one column per name (compared as text): which of two would be meant?"""
    dups = repeated_names(names)
    if dups:
        raise DataError(f"Column name(s) {dups} appear more than once; every column needs its own name.")


def _numbered(frame: pd.DataFrame) -> bool:
    """Whether every column name of ``frame`` is an integer (pandas' numbering, or names given so)."""
    return all(isinstance(c, (int, np.integer)) for c in frame.columns)


def _is_headerless(frame: pd.DataFrame, expected: Sequence[str] | None = None) -> bool:
    """Columns numbered 0..n-1 in order by pandas (a file read without a header row), not named;
    with ``expected`` (the training columns), numbered columns that hold every training name as a
    number (a DataFrame built with integer column names, trained as "0", "1", ...) are named:
    they are matched by name, so that reordered ones are not read by position. Other integers
    (``[0, 1, 2, 5]``) are names too, never positions: three of four training names present were
    read by position, each column as another. Rows read from a file without a header (``attrs``
    say so) are by position whatever their names."""
    if frame.attrs.get(BY_POSITION):
        return True
    if not _numbered(frame):
        return False
    if expected is not None and set(expected) <= {str(c) for c in frame.columns}:
        return False
    return [int(c) for c in frame.columns] == list(range(frame.shape[1]))


@dataclass
class FeaturePipeline:
    """Raw rows -> the matrix the trainer saw. Construct with :meth:`fit` or :meth:`from_state`."""

    kind: str  # "matrix" or "table"
    n_input_features: int = 0
    sparse_input: bool = False
    numeric_columns: list[str] = field(default_factory=list)
    text_column: str | None = None
    input_feature_names: list[str] = field(default_factory=list)
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    vocabulary: list[str] = field(default_factory=list)
    idf: np.ndarray | None = None
    zero_based: bool | None = None  # how LIBSVM feature indices were read (None: not LIBSVM, or an older model)
    class_names: list[str] = field(default_factory=list)  # display names of the classes (scikit-learn's target_names)
    categorical_columns: list[str] = field(default_factory=list)
    categories: list[list[str]] = field(default_factory=list)  # per categorical column, its sorted training categories
    headerless: bool = False  # trained on a CSV/TSV without a header: columns named "0", "1", ... by position
    _vectorizer: Any = field(default=None, repr=False)

    # ---- fitting ---------------------------------------------------------------------
    @classmethod
    def fit(cls, X: Any, *, kind: str, numeric_columns: list[str] | None = None, text_column: str | None = None,
            feature_names: list[str] | None = None,
            categorical_columns: Sequence[str] | None = None) -> FeaturePipeline:
        """Fit on the training rows (a matrix, or a DataFrame for ``kind='table'``)."""
        return cls._fit(X, kind=kind, numeric_columns=numeric_columns, text_column=text_column,
                        feature_names=feature_names, categorical_columns=categorical_columns)[0]

    @classmethod
    def fit_transform(cls, X: Any, *, kind: str, numeric_columns: list[str] | None = None,
                      text_column: str | None = None, feature_names: list[str] | None = None,
                      categorical_columns: Sequence[str] | None = None,
                      copy: bool = True) -> tuple[FeaturePipeline, Any]:
        """:meth:`fit` on the training rows and their features, the same as ``fit(X).transform(X)``
        but with one pass of the text vectorizer over the texts instead of two (a text column's
        counting is most of the work: 1.3 of SST-2's 2.8 s)."""
        pipe, text_block = cls._fit(X, kind=kind, numeric_columns=numeric_columns, text_column=text_column,
                                    feature_names=feature_names, categorical_columns=categorical_columns)
        return pipe, pipe._transform(X, copy=copy, text_block=text_block)

    @classmethod
    def _fit(cls, X: Any, *, kind: str, numeric_columns: list[str] | None, text_column: str | None,
             feature_names: list[str] | None,
             categorical_columns: Sequence[str] | None) -> tuple[FeaturePipeline, Any]:
        """The fitted pipeline and, for a text column, the training texts' TF-IDF block (else None)."""
        if kind == "matrix":
            sparse = sp.issparse(X)
            pipe = cls("matrix", n_input_features=X.shape[1], sparse_input=sparse,
                       input_feature_names=list(feature_names or [f"x{i}" for i in range(X.shape[1])]))
            if sparse:
                max_abs = max_abs_columns(sp.csr_matrix(X))
                pipe.scale = np.where(max_abs > 0, max_abs, 1.0)
            else:
                pipe.center, pipe.scale = standardization(np.asarray(X, dtype=np.float64), pipe.input_feature_names)
            return pipe, None
        numeric_columns = list(numeric_columns or [])
        pipe = cls("table", numeric_columns=numeric_columns, text_column=text_column,
                   categorical_columns=list(categorical_columns or []))
        for c in pipe.categorical_columns:
            pipe.categories.append(sorted(set(category_labels(cls._column(X, c)).tolist())))
        if numeric_columns:
            pipe.center, pipe.scale = standardization(numeric_block(X, numeric_columns), numeric_columns)
        if text_column is not None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            vec = TfidfVectorizer(**TFIDF_OPTIONS)
            try:  # scikit-learn's fit counts the texts anyway; fit_transform keeps what it counted
                text_block = vec.fit_transform(cls._texts(X, text_column))
                text_block.sort_indices()  # its columns were renumbered alphabetically; transform's are sorted
            except ValueError as exc:
                raise DataError(f"The text column {text_column!r} yields no terms: {exc}") from None
            pipe.vocabulary = list(vec.get_feature_names_out())
            pipe.idf = vec.idf_.copy()
            pipe._vectorizer = vec
            return pipe, text_block
        return pipe, None

    @staticmethod
    def _texts(frame: pd.DataFrame, column: str) -> list[str]:
        if column not in frame.columns:
            raise DataError(f"Text column {column!r} is missing; the data has columns {list(frame.columns)}.")
        col = frame[column].astype(object)  # a categorical dtype refuses "" as a new category
        return col.where(col.notna(), "").astype(str).tolist()

    @staticmethod
    def _column(frame: pd.DataFrame, column: str) -> pd.Series:
        if column not in frame.columns:
            raise DataError(f"Categorical column {column!r} is missing; the data has columns {list(frame.columns)}.")
        return frame[column]

    def _codes(self, frame: pd.DataFrame, column: str, cats: list[str]) -> np.ndarray:
        """Each row's position among ``column``'s training categories ``cats`` (-1: one they never held)."""
        return pd.Index(cats).get_indexer(pd.Index(category_labels(self._column(frame, column))))

    def unseen_categories(self, frame: pd.DataFrame) -> dict[str, int]:
        """Per categorical column of ``frame`` (rows to predict), how many cells hold a category the
        training rows never held (such a cell sets none of its column's features)."""
        out = {}
        for c, cats in zip(self.categorical_columns, self.categories):
            if c in frame.columns:
                unseen = int((self._codes(frame, c, cats) < 0).sum())
                if unseen:
                    out[c] = unseen
        return out

    def _one_hot(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """The categorical columns as 0/1 columns, one per training category, in training order
        (a row whose category the training rows never held has none of its column's set)."""
        n = len(frame)
        blocks = []
        for c, cats in zip(self.categorical_columns, self.categories):
            codes = self._codes(frame, c, cats)
            seen = codes >= 0
            rows = np.flatnonzero(seen)
            blocks.append(sp.csr_matrix((np.ones(rows.size), (rows, codes[seen])), shape=(n, len(cats))))
        return sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n, 0))

    @property
    def _sparse_table(self) -> bool:
        """Whether a table's features are a sparse matrix: with a text column, or many categories."""
        return self.text_column is not None or sum(map(len, self.categories)) > DENSE_ONE_HOT_MAX

    # ---- applying --------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """Names of the columns the model's weights refer to."""
        if self.kind == "matrix":
            return list(self.input_feature_names)
        return (list(self.vocabulary) + list(self.numeric_columns)
                + [f"{c}={v}" for c, cats in zip(self.categorical_columns, self.categories) for v in cats])

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def input_columns(self) -> list[str]:
        """The raw columns a table of rows must name: the training columns, in training order."""
        if self.kind == "matrix":
            return list(self.input_feature_names)
        return (([self.text_column] if self.text_column is not None else []) + list(self.numeric_columns)
                + list(self.categorical_columns))

    def unused_columns(self, frame: pd.DataFrame) -> list[str]:
        """Named columns of ``frame`` that the model does not read (an id, the label...)."""
        if _is_headerless(frame, self.input_columns):
            return []
        wanted = set(self.input_columns)
        return [str(c) for c in frame.columns if str(c) not in wanted]

    def _label_position(self) -> int | None:
        """For a model trained on a file without a header: the position of the column that held the
        labels (the one position its numbered columns skip), or None when that cannot be told."""
        try:
            taken = {int(c) for c in self.input_columns}
        except ValueError:
            return None
        gap = sorted(set(range(len(taken) + 1)) - taken)
        return gap[0] if len(gap) == 1 and len(taken) == len(self.input_columns) else None

    def select_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The training columns of ``frame``, matched by name (never by position), in training order.

        A frame without a header (columns numbered by pandas) is accepted only with exactly the
        training width, and only for numeric columns, whose order the model knows.
        """
        expected = self.input_columns
        by_position = _is_headerless(frame, expected)
        if set(frame.attrs) - {LINE_OF}:  # what the reader noted is said once: the columns chosen here are by name
            frame = frame.copy()
            frame.attrs = {k: v for k, v in frame.attrs.items() if k == LINE_OF}
        if by_position and len(frame.columns):
            named = [repr(c) for c in [self.text_column, *self.categorical_columns] if c is not None]
            if self.headerless and frame.shape[1] == len(expected):
                # trained by position: the rows hold the training file's columns, the label left out
                out = frame.copy()
                out.columns = sorted(expected, key=int)
                return out[expected]
            label = self._label_position()
            if self.headerless and label is not None and frame.shape[1] == len(expected) + 1:
                raise DataError(f"These rows have {frame.shape[1]} columns, one more than the model takes: it was "
                                f"trained on a file without a header whose column {label} held the labels. If these "
                                f"rows still hold them, say which column they are in (tuner predict --target {label}), "
                                "or leave that column out.")
            if named:
                kind = "text column" if self.text_column is not None else "categorical column"
                raise DataError(
                    f"These rows have no header; a model with the {kind} {named[0]} needs a header "
                    f"row naming its columns {expected}."
                )
            if frame.shape[1] != len(expected):
                raise DataError(
                    f"These rows have no header and {frame.shape[1]} columns; the model was trained on "
                    f"{len(expected)} columns. Add a header row naming them: {expected}."
                )
            out = frame.copy()
            out.columns = expected
            return out
        names = [str(c) for c in frame.columns]
        _refuse_duplicate_names(names)
        missing = [c for c in expected if c not in names]
        if missing:
            unexpected = [n for n in names if n not in set(expected)]
            raise DataError(
                f"The rows lack the training column(s) {missing}"
                + (f" and hold column(s) {unexpected} the model was not trained on" if unexpected else "")
                + "; columns are matched by name, so name them as in training"
                + (f": {expected}." if len(expected) <= 12 else f" ({len(expected)} columns).")
            )
        out = frame.copy()
        out.columns = names
        return out[expected]

    def _get_vectorizer(self) -> Any:
        if self._vectorizer is None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            vec = TfidfVectorizer(**TFIDF_OPTIONS, vocabulary={t: i for i, t in enumerate(self.vocabulary)})
            vec.idf_ = np.asarray(self.idf, dtype=np.float64)
            self._vectorizer = vec
        return self._vectorizer

    def transform(self, X: Any, *, copy: bool = True) -> Any:
        """Raw rows -> features (dense ndarray or CSR matrix).

        Sparse rows keep their float32/float64 values and their index arrays (shared with ``X``);
        ``copy=False`` scales a sparse ``X``'s values in place (for rows the caller owns).
        """
        return self._transform(X, copy=copy)

    def _transform(self, X: Any, *, copy: bool, text_block: Any = None) -> Any:
        """:meth:`transform`; ``text_block``: the text column's features of these very rows, when
        the vectorizer's fit already made them."""
        if self.kind == "matrix":
            if isinstance(X, pd.DataFrame):
                X = numeric_block(self.select_columns(X), self.input_feature_names, hint=_TRAINED_ON_NUMBERS)
            elif not sp.issparse(X):
                X = _number_rows(X)
            if X.ndim != 2 or X.shape[1] != self.n_input_features:
                raise DataError(f"Expected {self.n_input_features} feature columns; got an input of shape {X.shape}.")
            check_finite_matrix(X)
            if sp.issparse(X) and self.center is None:
                X = sp.csr_matrix(X)
                if not X.has_canonical_format:  # duplicates summed, indices sorted (a copy, rare)
                    X = X.copy()
                    X.sum_duplicates()
                    copy = False
                return scale_columns(X, 1.0 / np.asarray(self.scale, dtype=np.float64), copy=copy)
            # Columns centred in training (dense rows) are centred here too: sparse rows become dense.
            A = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
            assert self.scale is not None, "a fitted matrix pipeline has its scale"
            return self._finite((A - self.center) / self.scale if self.center is not None else A / self.scale,
                                self.input_feature_names)
        if not isinstance(X, pd.DataFrame):
            names = self.input_columns
            shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
            raise DataError(f"This model was trained on a table: give it a pandas DataFrame with its columns ({shown}), "
                            f"e.g. pd.DataFrame({{{names[0]!r}: [...]}}), or a file (CSV, Parquet...).")
        _refuse_duplicate_names([str(c) for c in X.columns])
        if X.attrs.get(BY_POSITION) or _numbered(X):  # by name when they hold the training names, else by position
            X = self.select_columns(X)
        blocks = []
        if self.text_column is not None and text_block is not None:
            blocks.append(text_block)
        elif self.text_column is not None:
            texts = self._texts(X, self.text_column)
            # scikit-learn refuses to transform zero rows (an empty validation or test split)
            blocks.append(self._get_vectorizer().transform(texts) if texts
                          else sp.csr_matrix((0, len(self.vocabulary)), dtype=np.float64))
        if self.numeric_columns:
            line_of = X.attrs.get(LINE_OF)  # rows of a file: messages name its lines
            A = self._finite((numeric_block(X, self.numeric_columns, line_of=line_of, hint=_TRAINED_ON_NUMBERS)
                              - self.center) / self.scale, self.numeric_columns, line_of)
            blocks.append(sp.csr_matrix(A) if self._sparse_table else A)
        if self.categorical_columns:
            one_hot = self._one_hot(X)
            blocks.append(one_hot if self._sparse_table else one_hot.toarray())
        if self._sparse_table:
            return sp.hstack(blocks, format="csr") if len(blocks) > 1 else sp.csr_matrix(blocks[0])
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]

    @staticmethod
    def _finite(Z: np.ndarray, names: list[str], line_of: Callable[[int], int] | None = None) -> np.ndarray:
        """Standardized values; an error names a column whose values overflow once standardized."""
        cell = first_non_finite(Z)
        if cell is not None:
            row, col = cell
            raise DataError(
                f"Feature column {names[col] if col < len(names) else col!r} at {row_name(row, line_of)} is too "
                "large for the "
                "training scale of that "
                "column (it overflows float64 once standardized); check its units."
            )
        return Z

    # ---- saving ----------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able description, named arrays) that :meth:`from_state` rebuilds from."""
        meta = {
            "kind": self.kind,
            "n_input_features": self.n_input_features,
            "sparse_input": self.sparse_input,
            "numeric_columns": self.numeric_columns,
            "text_column": self.text_column,
            "input_feature_names": self.input_feature_names,
            "vocabulary": self.vocabulary,
            "zero_based": self.zero_based,
            "class_names": self.class_names,
            "categorical_columns": self.categorical_columns,
            "categories": self.categories,
            "headerless": self.headerless,
            "tfidf": {k: list(v) if isinstance(v, tuple) else v for k, v in TFIDF_OPTIONS.items() if k != "dtype"},
        }
        arrays = {k: v for k, v in (("center", self.center), ("scale", self.scale), ("idf", self.idf)) if v is not None}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> FeaturePipeline:
        return cls(
            kind=meta["kind"],
            n_input_features=int(meta.get("n_input_features", 0)),
            sparse_input=bool(meta.get("sparse_input", False)),
            numeric_columns=list(meta.get("numeric_columns", [])),
            text_column=meta.get("text_column"),
            input_feature_names=list(meta.get("input_feature_names", [])),
            center=arrays.get("center"),
            scale=arrays.get("scale"),
            vocabulary=list(meta.get("vocabulary", [])),
            idf=arrays.get("idf"),
            zero_based=meta.get("zero_based"),
            class_names=[str(c) for c in meta.get("class_names", [])],
            categorical_columns=list(meta.get("categorical_columns", [])),
            categories=[list(cats) for cats in meta.get("categories", [])],
            headerless=bool(meta.get("headerless", False)),
        )
