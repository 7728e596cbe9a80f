"""What the API accepts as data, turned into what the lower stages take.

``data`` is a file or folder path, a :class:`tuner.data.Dataset` (already split), a
:class:`tuner.data.RawData` (read, not split), or a feature matrix (NumPy array, SciPy
sparse matrix, pandas DataFrame) with its labels in ``y``; ``dataset`` names a bundled set.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuner.errors import ConfigError, DataError

__all__ = ["DataOptions", "read_data", "from_arrays"]


DEFAULT_TEST_SIZE = 0.2
"""The test share split off when ``test_size`` is not given and there is no test file."""


@dataclass
class DataOptions:
    """Where the data is and how to read and split it (the CLI's data options)."""

    data: Any = None
    y: Any = None
    dataset: str | None = None
    target: str | None = None
    text_column: str | None = None
    fmt: str = "auto"
    encoding: str = "utf-8"
    n_features: int | None = None
    zero_based: bool | None = None
    val_size: float = 0.2
    test_size: float = DEFAULT_TEST_SIZE
    test_file: str | os.PathLike[str] | None = None
    seed: int = 0
    categorical_columns: Sequence[str] | None = None
    header: bool | None = None
    group_column: str | None = None
    test_size_given: bool = False  # the caller chose test_size (refused with a test file, which replaces it)

    def __post_init__(self) -> None:
        # columns named by position (a DataFrame read without a header, header=False) may be given as ints
        self.target, self.text_column = _column_name(self.target), _column_name(self.text_column)
        self.group_column = _column_name(self.group_column)
        self.categorical_columns = column_list(self.categorical_columns)

    @property
    def is_path(self) -> bool:
        return isinstance(self.data, (str, os.PathLike))

    def check(self) -> None:
        """Refuse contradictory options before any data is read."""
        if self.data is None and self.dataset is None:
            raise ConfigError("Give the 'data' parameter (a path, a matrix with labels 'y', or a Dataset) or the "
                              "'dataset' parameter (a bundled data set).")
        if self.data is not None and self.dataset is not None:
            raise ConfigError("Give either the 'data' parameter or the 'dataset' parameter, not both.")
        if self.y is not None and (self.data is None or self.is_path):
            raise ConfigError("The 'y' parameter goes with a feature matrix given as 'data'; a file's labels are "
                              "named by the 'target' parameter.")
        if self.header is not None and not self.is_path:
            raise ConfigError("The 'header' parameter says whether a CSV/TSV file names its columns; give it with a "
                              "file's path as the 'data' parameter.")
        if self.test_file is not None and not (self.is_path or self.dataset is not None):
            raise ConfigError("The 'test_file' parameter goes with data read from a file or a bundled data set.")
        if self.test_file is not None and self.test_size_given and self.test_size > 0:
            raise ConfigError("The 'test_size' parameter splits a test part off the data; with the 'test_file' "
                              "parameter the test rows come from that file instead: give one of the two.")
        if not self.is_path and self.dataset is None:  # a bundled set's reader refuses these itself
            given = [name for name, value, default in (("fmt", self.fmt, "auto"), ("encoding", self.encoding, "utf-8"),
                                                       ("n_features", self.n_features, None),
                                                       ("zero_based", self.zero_based, None)) if value != default]
            if given:
                names = " and ".join(f"'{n}'" for n in given)
                raise ConfigError(f"The {names} parameter{'s say' if len(given) > 1 else ' says'} how a file is read; "
                                  f"data given in memory is not read from a file: leave "
                                  f"{'them' if len(given) > 1 else 'it'} out.")


def refuse_monitor_without_validation(monitor: str, val_size: float) -> None:
    """``monitor="val"`` stops training on the validation rows; with ``val_size=0`` there are none,
    and training would stop on the objective without a word."""
    if monitor == "val" and val_size == 0:
        raise ConfigError("The 'monitor' parameter is 'val', which stops training on the validation rows, but the "
                          "'val_size' parameter is 0, so there are none: raise the 'val_size' parameter above 0, or set "
                          "the 'monitor' parameter to 'objective'.")


def _column_name(name: Any) -> Any:
    return str(name) if isinstance(name, (int, np.integer)) and not isinstance(name, bool) else name


def column_list(names: str | Sequence[Any] | None) -> list[str] | None:
    """The ``categorical_columns`` parameter as sorted, distinct column names, or None for none: one
    name given as a string is that column (not its letters), ints are columns named by position,
    and the order does not matter (the table's order is the encoding's)."""
    if names is None:
        return None
    listed = [names] if isinstance(names, str) else list(names)
    return sorted({str(_column_name(n)) for n in listed}) or None


def read_data(opts: DataOptions) -> tuple[Any, Any]:
    """The training data as read (a ``RawData``) and the test file's (or None).

    A :class:`~tuner.data.Dataset` is returned as it is (with None): it is already split.
    """
    from tuner.data import Dataset, RawData, load_data, load_test_file

    opts.check()
    if isinstance(opts.data, Dataset):
        return opts.data, None
    if isinstance(opts.data, RawData):
        return opts.data, None
    if opts.is_path or opts.dataset is not None:
        raw = load_data(None if opts.data is None else Path(opts.data), dataset=opts.dataset, target=opts.target, text_column=opts.text_column,
                        encoding=opts.encoding, fmt=opts.fmt, n_features=opts.n_features, zero_based=opts.zero_based,
                        categorical_columns=opts.categorical_columns, header=opts.header,
                        group_column=opts.group_column)
        test_raw = None
        if opts.test_file is not None:
            test_raw = load_test_file(Path(opts.test_file), raw, target=opts.target, text_column=opts.text_column,
                                      encoding=opts.encoding, fmt=opts.fmt, n_features=opts.n_features,
                                      categorical_columns=opts.categorical_columns, header=opts.header,
                                      group_column=opts.group_column)
        return raw, test_raw
    return from_arrays(opts.data, opts.y, target=opts.target, text_column=opts.text_column,
                       categorical_columns=opts.categorical_columns, group_column=opts.group_column), None


def from_arrays(X: Any, y: Any = None, *, target: str | None = None, text_column: str | None = None,
                categorical_columns: Sequence[str] | None = None, group_column: str | None = None) -> Any:
    """A ``RawData`` from in-memory rows: a dense array or SciPy sparse matrix with labels
    ``y``, or a pandas DataFrame (labels in ``y`` or in its column ``target``; its columns
    ``categorical_columns`` one-hot encoded; its column ``group_column`` the rows' groups, kept
    out of the features)."""
    import pandas as pd
    import scipy.sparse as sp

    from tuner.data import RawData, table_columns, take_group_column
    from tuner.data._features import check_finite_matrix, repeated_names

    if isinstance(X, pd.DataFrame):
        frame = X.copy()
        frame.columns = [str(c) for c in frame.columns]
        dups = repeated_names(frame.columns)
        if dups:
            raise DataError(f"The DataFrame names the column(s) {dups} more than once (names are compared as text, so "
                            "1 and '1' are one name); give every column its own name.")
        groups, whole = None, frame  # the fingerprint covers the groups too
        if group_column is not None:
            frame, groups = take_group_column(frame, group_column, "the DataFrame", target=target,
                                              text_column=text_column, categorical=list(categorical_columns or ()))
        if target is not None:
            if y is not None:
                raise ConfigError("Give the labels either as 'y' or as the 'target' column, not both.")
            if target not in frame.columns:
                raise DataError(f"The 'target' column {target!r} is not in the DataFrame; columns: {list(frame.columns)}.")
            y = frame.pop(target).to_numpy()
        if y is None:
            raise ConfigError("The 'y' parameter (the labels) is required with a DataFrame unless 'target' names "
                              "its label column.")
        if text_column is not None and text_column not in frame.columns:
            raise DataError(f"The 'text_column' {text_column!r} is not in the DataFrame; columns: {list(frame.columns)}.")
        numeric, categorical = table_columns(list(frame.columns), text_column, categorical_columns, "the DataFrame",
                                             target)
        labels = _labels(y, len(frame))
        return RawData("table", frame.reset_index(drop=True), labels, "DataFrame", "dataframe",
                       numeric_columns=numeric, text_column=text_column, feature_names=numeric,
                       fingerprint=_fingerprint(whole.to_numpy(), labels), categorical_columns=categorical,
                       groups=groups, group_column=group_column)
    if target is not None or text_column is not None or categorical_columns or group_column is not None:
        raise ConfigError("The 'target', 'text_column', 'categorical_columns' and 'group_column' parameters name "
                          "columns of a table (a file or a DataFrame); a matrix's labels go in 'y'.")
    if y is None:
        raise ConfigError("The 'y' parameter (the labels) is required when 'data' is a matrix.")
    if sp.issparse(X):
        matrix: Any = sp.csr_matrix(X, dtype=np.float64)
    else:
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2:
            raise DataError(f"The 'data' matrix must be 2-dimensional (rows x features); got shape {matrix.shape}.")
    check_finite_matrix(matrix)  # before any split: the row named is the caller's
    labels = _labels(y, matrix.shape[0])
    return RawData("matrix", matrix, labels, "arrays", "arrays",
                   feature_names=[f"x{i}" for i in range(matrix.shape[1])], fingerprint=_fingerprint(matrix, labels))


def _labels(y: Any, n_rows: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != n_rows:
        raise DataError(f"The 'y' parameter must hold one label per row ({n_rows}); got shape {labels.shape}.")
    return labels


def _fingerprint(X: Any, y: np.ndarray) -> str:
    """A content hash of in-memory data (what a study stores to recognise its data)."""
    import scipy.sparse as sp

    h = hashlib.sha256(b"arrays")
    if sp.issparse(X):
        for part in (X.indptr, X.indices, X.data):
            h.update(np.ascontiguousarray(part).tobytes())
        h.update(repr(X.shape).encode())
    else:
        arr = np.asarray(X)
        h.update(repr(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
    h.update(repr(np.asarray(y).tolist()).encode())
    return h.hexdigest()[:16]
