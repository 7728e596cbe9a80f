"""Feature values that must be finite, checked without copying a large matrix.

Shared by the data layer (files and tables read) and the trainer (arrays passed to ``fit``), so a
NaN or infinite value is refused in the same words wherever it comes from. NumPy and SciPy only:
the trainer must not import pandas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from tuner.errors import DataError

__all__ = ["CHUNK_VALUES", "check_finite_matrix", "first_non_finite"]

# Stored values handled at a time by the loops over a sparse matrix's non-zeros, so that their
# temporaries stay a few MiB whatever the matrix's size (a 60M-value matrix is never copied whole).
CHUNK_VALUES = 1 << 19


def _chunks(n: int) -> list[tuple[int, int]]:
    return [(start, min(start + CHUNK_VALUES, n)) for start in range(0, n, CHUNK_VALUES)]


def first_non_finite(A: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first NaN or inf of a dense 2-D array, or None when all are finite."""
    bad = ~np.isfinite(A)
    if not bad.any():
        return None
    row, col = np.argwhere(bad)[0]
    return int(row), int(col)


def check_finite_matrix(X: Any, where: str = "") -> None:
    """Raise :class:`DataError` naming the first row and column holding NaN or inf."""
    if sp.issparse(X):
        if _first_non_finite_value(np.asarray(X.data)) is None:
            return  # every stored value finite: no CSR copy of a CSC or COO matrix to find where
        X = sp.csr_matrix(X, copy=True)  # a copy: the caller's matrix keeps its order
        X.sum_duplicates()  # canonical: the first bad value stored is the first by row and column
        pos = _first_non_finite_value(X.data)
        if pos is not None:
            row = int(np.searchsorted(X.indptr, pos, side="right") - 1)
            raise DataError(
                f"Feature values must be finite{where}; row {row} column {int(X.indices[pos])} holds "
                f"{X.data[pos]}. Remove or impute such values first."
            )
        return
    A = np.asarray(X)
    if A.ndim != 2:  # one value a row (1-D), or more axes: rows first, the rest as columns
        A = A.reshape(A.shape[0] if A.ndim else 1, -1)
    if not np.issubdtype(A.dtype, np.inexact):
        if np.issubdtype(A.dtype, np.integer) or A.dtype == np.bool_:
            return  # integers are finite
        A = A.astype(np.float64)
    cell = _first_non_finite_cell(A)
    if cell is not None:
        row, col = cell
        raise DataError(
            f"Feature values must be finite{where}; row {row} column {col} holds {A[row, col]}. "
            "Remove or impute such values first."
        )


def _first_non_finite_value(values: np.ndarray) -> int | None:
    """Position of the first NaN or inf of a 1-D array (checked in chunks), or None."""
    for a, b in _chunks(values.size):
        bad = ~np.isfinite(values[a:b])
        if bad.any():
            return a + int(np.argmax(bad))
    return None


def _first_non_finite_cell(A: np.ndarray) -> tuple[int, int] | None:
    """:func:`first_non_finite` over blocks of rows of about :data:`CHUNK_VALUES` values, so a large
    float32 array is neither copied nor shadowed by a mask of its size."""
    rows = max(1, CHUNK_VALUES // max(1, A.shape[1]))
    for start in range(0, A.shape[0], rows):
        cell = first_non_finite(A[start:start + rows])
        if cell is not None:
            return start + cell[0], cell[1]
    return None
