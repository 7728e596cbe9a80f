"""One reader for each data format: a path and the read options in, :class:`RawData` out.

The registry that names them, with their file suffixes, is :data:`tuner.data.FORMATS`
(:mod:`tuner.data._formats`); :func:`tuner.data.load_data` picks the reader from it.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tuner.data._compression import READ_ERRORS, cannot_read, compression_of, open_binary, open_text
from tuner.data._features import (
    CHUNK_VALUES,
    check_finite_matrix,
    is_number,
    numeric_block,
    repeated_names,
    row_name,
    value_dtype,
)
from tuner.errors import ConfigError, DataError

__all__ = ["RawData", "ReadOptions", "BUILTIN_DATASETS", "read_builtin", "read_table", "read_npz", "read_svmlight",
           "read_classfiles", "read_labeltext", "fingerprint", "read_text", "text_lines", "read_table_frame", "first_row",
           "csv_dialect", "take_group_column", "is_number"]

BUILTIN_DATASETS = ("breast_cancer", "digits", "wine", "iris")
TEXT = "text"
_SVM_INDEX_ZERO = re.compile(rb"\s0+:")
# Without --n-features, a LIBSVM file may not be wider than this many columns per stored value
# (nor than MIN_WIDTH_CHECKED): one stray index like 2000000000 would size every weight vector.
MAX_WIDTH_PER_VALUE = 100
MIN_WIDTH_CHECKED = 1 << 16


@dataclass
class RawData:
    """Rows as read: a DataFrame (tables, text) or a matrix, plus raw labels."""

    kind: str  # "table" or "matrix"
    X: Any
    y: np.ndarray | None
    source: str
    fmt: str
    numeric_columns: list[str] = field(default_factory=list)
    text_column: str | None = None
    feature_names: list[str] = field(default_factory=list)
    fingerprint: str = ""
    categorical_columns: list[str] = field(default_factory=list)  # tables: columns one-hot encoded
    headerless: bool = False  # a CSV/TSV read without a header: its columns are named "0", "1", ... by position
    zero_based: bool | None = None  # LIBSVM files: whether feature indices start at 0
    class_names: dict[Any, str] = field(default_factory=dict)  # label -> display name (bundled sets)
    released: bool = False  # a large sparse matrix handed to prepare(): X and y hold its first rows only
    line_of: Callable[[int], int] | None = None  # CSV/TSV: a data row's file line (messages name lines)
    groups: np.ndarray | None = None  # tables read with a group column: each row's group (kept out of the features)
    group_column: str | None = None

    def __len__(self) -> int:
        return self.X.shape[0]

    def take(self, idx: np.ndarray) -> Any:
        return self.X.iloc[idx].reset_index(drop=True) if self.kind == "table" else self.X[idx]


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides the path (each reader uses the options of its format)."""

    fmt: str
    fingerprint: str
    encoding: str = "utf-8"
    target: str | None = None
    text_column: str | None = None
    n_features: int | None = None
    zero_based: bool | None = None
    require_target: bool = True
    categorical: tuple[str, ...] = ()
    header: bool = True  # CSV/TSV: whether the first line names the columns (else they are 0, 1, ... by position)
    trust_header: bool = False  # the user said the first line names the columns, even if it holds numbers only
    group: str | None = None  # tables: the column of row groups (kept out of the features)
    require_group: bool = True  # a test file may leave the group column out


def read_text(path: Path, encoding: str) -> str:
    """The whole file as text, without a leading byte-order mark."""
    try:
        with open_text(path, encoding) as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"Cannot decode {path} as {encoding} ({exc.reason} at byte {exc.start}); pass the file's "
            "encoding (the 'encoding' parameter, for example latin-1)."
        ) from None
    except READ_ERRORS as exc:
        raise cannot_read(path, exc) from None
    return text[1:] if text.startswith("\ufeff") else text  # a byte-order mark is not the first label's


def text_lines(text: str) -> list[str]:
    """Split on newlines only: ``str.splitlines`` also splits on characters such as U+0085, which
    a Latin-1 file holds where cp1252 meant an ellipsis (rt-polarity does)."""
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def fingerprint(*parts: Any, legacy: bool = False) -> str:
    """A short hash of ``parts``: a file by its bytes and how they are read (its compression), not
    by its name, so a study resumes on a renamed copy; a folder (one file per class) by the
    names and bytes of its files. ``legacy``: as before 2026-12-02, the file's name hashed too
    (what older studies stored)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            folder = part.is_dir()
            files = sorted(p for p in part.iterdir() if p.is_file()) if folder else [part]
            for f in files:
                h.update(f.name.encode() if folder or legacy else repr(compression_of(f)).encode())
                with f.open("rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
        else:
            h.update(repr(part).encode())
    return h.hexdigest()[:16]


def read_builtin(name: str) -> RawData:
    from sklearn import datasets

    loaders = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits,
               "wine": datasets.load_wine, "iris": datasets.load_iris}
    if name not in loaders:
        raise ConfigError(f"Unknown dataset {name!r}. Bundled datasets: {', '.join(BUILTIN_DATASETS)}.")
    bunch = loaders[name]()
    names = [str(n) for n in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(bunch.data.shape[1])]
    targets = [str(t) for t in getattr(bunch, "target_names", [])]
    class_names = {i: t for i, t in enumerate(targets) if t != str(i)}
    return RawData("matrix", np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target), f"sklearn:{name}",
                   "builtin", feature_names=names, fingerprint=fingerprint("builtin", name, bunch.data.shape),
                   class_names=class_names if len(class_names) == len(targets) else {})


def read_table(p: Path, opts: ReadOptions) -> RawData:
    """A CSV/TSV/Parquet table: ``opts.target`` names the label column, ``opts.text_column`` a text
    column, ``opts.categorical`` the columns of categories; without a header (``opts.header``
    False) the columns are named by position, ``"0"``, ``"1"``, ..."""
    lines = None if opts.fmt == "parquet" else DataLines(p, opts.fmt, opts.encoding, opts.header)
    as_text = [*opts.categorical, *([opts.target] if opts.target is not None else []),  # labels: see labels_as_written
               *([opts.group] if opts.group is not None else [])]  # group ids as written: 007 is not 7
    frame = read_table_frame(p, opts.fmt, opts.encoding, header=opts.header, refuse_data_header=not opts.trust_header,
                             as_text=as_text)
    frame.columns = [str(c) for c in frame.columns]
    groups = None
    if opts.group is not None:
        frame, groups = take_group_column(frame, opts.group, str(p), opts.require_group, lines, target=opts.target,
                                          text_column=opts.text_column, categorical=opts.categorical)
    raw = _table(frame, str(p), opts.fmt, opts.target, opts.text_column, opts.require_target, opts.fingerprint, lines,
                 opts.categorical)
    if groups is not None:
        raw.groups, raw.group_column = groups, opts.group
    raw.headerless = not opts.header
    return raw


class DataLines:
    """The file line of each data row of a CSV/TSV, found when a message needs one: pandas skips
    blank lines and a quoted field may span lines, so data row r is line r + 2 only in a file
    without either."""

    def __init__(self, path: Path, fmt: str, encoding: str, header: bool = True) -> None:
        self.path, self.fmt, self.encoding, self.header = path, fmt, encoding, header
        self._starts: list[int] | None = None

    def __call__(self, row: int) -> int:
        if self._starts is None:
            self._starts = self._record_starts()
        starts = self._starts[1:] if self.header else self._starts  # the header is the first record
        return starts[row] if 0 <= row < len(starts) else row + (2 if self.header else 1)

    def _record_starts(self) -> list[int]:
        sep, quoting = csv_dialect(self.fmt)
        starts = []
        with open_text(self.path, self.encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=sep, quoting=quoting)
            before = 0
            for record in reader:
                if record:  # a blank line is no record for pandas
                    starts.append(before + 1)
                before = reader.line_num
        return starts


def take_group_column(frame: pd.DataFrame, column: str, source: str, required: bool = True,
                      line_of: Callable[[int], int] | None = None, *, target: str | None = None,
                      text_column: str | None = None, categorical: Sequence[str] = ()
                      ) -> tuple[pd.DataFrame, np.ndarray | None]:
    """``frame`` without its group column, and that column's values (None when it is absent and
    not ``required``). A group id is compared as written; a missing one is an error, since the
    row could then land on either side of a split."""
    for what, name in (("the target (the 'target' parameter)", target),
                       ("the text column (the 'text_column' parameter)", text_column)):
        if name is not None and name == column:
            raise ConfigError(f"Column {column!r} cannot be both the group column (the 'group_column' parameter) and "
                              f"{what}.")
    if column in categorical:
        raise ConfigError(f"Column {column!r} cannot be both the group column (the 'group_column' parameter) and a "
                          "categorical column (the 'categorical_columns' parameter).")
    if column not in frame.columns:
        if not required:
            return frame, None
        import difflib

        close = difflib.get_close_matches(column, [str(c) for c in frame.columns], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(f"Group column {column!r} (the 'group_column' parameter) not found in {source}.{hint} "
                        f"Columns: {list(frame.columns)}.")
    cells = frame[column]
    missing = cells.isna().to_numpy()
    if missing.any():
        raise DataError(f"The group column {column!r} is empty at {row_name(int(np.argmax(missing)), line_of)} of "
                        f"{source}; every row needs a group (a row without one could land beside its group's rows "
                        "on the other side of a split): fill it in or drop the row.")
    return frame.drop(columns=[column]), cells.astype(str).to_numpy(dtype=object)


def _table(frame: pd.DataFrame, source: str, fmt: str, target: str | None, text_column: str | None,
           require_target: bool, fingerprint: str, line_of: DataLines | None = None,
           categorical: Sequence[str] = ()) -> RawData:
    frame.columns = [str(c) for c in frame.columns]
    _check_column_names(list(frame.columns), source)
    if target is not None and target == text_column:
        raise DataError(f"Column {target!r} cannot be both the target (the 'target' parameter) and the text column (the 'text_column' parameter).")
    if target is None and require_target:
        raise DataError(f"{source} is a table: name its label column with the 'target' parameter (columns: {list(frame.columns)}).")
    y = None
    if target is not None:
        if target not in frame.columns:
            import difflib

            close = difflib.get_close_matches(target, frame.columns, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            if require_target:
                raise DataError(f"Target column {target!r} not found in {source}.{hint} Columns: {list(frame.columns)}.")
        else:
            y = frame[target].to_numpy() if fmt == "parquet" else labels_as_written(frame[target])
            frame = frame.drop(columns=[target])
    if text_column is not None and text_column not in frame.columns:
        raise DataError(f"Text column {text_column!r} not found in {source}. Columns: {list(frame.columns)}.")
    if len(frame) == 0:
        raise DataError(f"{source} holds no data rows.")
    numeric, categories = table_columns(list(frame.columns), text_column, categorical, source, target)
    numeric_block(frame, numeric, f" in {source}", line_of)  # validates types and finiteness now, with names
    return RawData("table", frame.reset_index(drop=True), y, source, fmt, numeric_columns=numeric,
                   text_column=text_column, feature_names=numeric, fingerprint=fingerprint, line_of=line_of,
                   categorical_columns=categories)


_LEADING_ZERO = re.compile(r"\s*[+-]?0\d")


def labels_as_written(cells: pd.Series) -> np.ndarray:
    """Labels read as text: numbers when every one is a number (``1``, ``+1``, ``1.0``), else the
    text of each (missing ones stay missing). Labels with a leading zero (``007``, ``010``) are
    codes, kept as written for them all: as numbers they would print as ``7`` and ``10``, and
    ``007`` and ``7`` would become one class."""
    present = cells.notna().to_numpy()
    texts = cells.to_numpy(dtype=object)
    if any(_LEADING_ZERO.match(t) for t in set(texts[present])):
        return texts
    numbers = pd.to_numeric(cells, errors="coerce")
    if not (numbers.notna().to_numpy() == present).all():
        return texts
    _refuse_spellings_of_one_number(set(texts[present]))
    return numbers.to_numpy()


def _refuse_spellings_of_one_number(texts: set[str]) -> None:
    """A DataError for two labels written as different numbers that are one number (``10`` and
    ``1E1``): read as numbers they would silently be one class. A sign (``+1``) or a fraction of
    zeros (``1.0``) is the same label written another way, not another spelling."""
    seen: dict[float, str] = {}
    for text in sorted(texts):
        value = float(text)
        other = seen.setdefault(value, text)
        if _plain_spelling(other) != _plain_spelling(text):
            raise DataError(f"The labels {other!r} and {text!r} are the same number written two ways: as numbers they "
                            "would be one class. Write each class one way (as text, for instance 'class_10', if "
                            "they are different classes).")


def _plain_spelling(text: str) -> str:
    """A number as written, without spaces, a leading '+' or a fraction of zeros."""
    s = text.strip().lstrip("+")
    return re.sub(r"^(-?\d+)\.0*$", r"\1", s)


def table_columns(columns: Sequence[str], text_column: str | None, categorical: Sequence[str] | None,
                  source: str, target: str | None = None) -> tuple[list[str], list[str]]:
    """A table's feature columns (the target taken out) split into numeric and categorical ones, in
    the table's order; an error for a categorical column that is missing, named twice, the text
    column or the target."""
    categorical = list(categorical or [])
    if target is not None and target in categorical:
        raise DataError(f"Column {target!r} cannot be both the target (the 'target' parameter) and a categorical "
                        "column (the 'categorical_columns' parameter).")
    missing = [c for c in categorical if c not in columns]
    if missing:
        raise DataError(f"Categorical column(s) {missing} (the 'categorical_columns' parameter) not found in "
                        f"{source}. Columns: {list(columns)}.")
    if len(set(categorical)) != len(categorical):
        raise DataError(f"The 'categorical_columns' parameter names a column more than once: {categorical}.")
    if text_column is not None and text_column in categorical:
        raise DataError(f"Column {text_column!r} cannot be both the text column (the 'text_column' parameter) and a "
                        "categorical column (the 'categorical_columns' parameter).")
    chosen = set(categorical)
    return ([c for c in columns if c != text_column and c not in chosen],
            [c for c in columns if c in chosen])


def _check_column_names(names: list[str], source: str) -> None:
    """Every column needs its own, non-empty name (pandas would silently rename ``x`` to ``x.1``)."""
    dups = repeated_names(names)
    if dups:
        numbers = [n for n in dups if is_number(n)]
        hint = (f" Names such as {numbers[0]!r} look like data: if the file has no header line, add one naming the "
                "columns, or say that it has none (--no-header; header=False in Python)." if numbers else "")
        raise DataError(f"{source} names the column(s) {dups} more than once; give every column its own name.{hint}")
    empty = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if empty:
        raise DataError(f"Column {empty[0]} of {source} has no name in the header (a saved row index?); "
                        "name it or remove it.")


def _data_as_header(cells: list[str]) -> bool:
    """Whether a header line is a row of data: every cell a number, other than pandas' ``0, 1, ...,
    n-1`` for unnamed columns. Distinct integers are no names either: read as names, a target
    given as ``3`` picked whichever column the first row's 3 happened to be in."""
    for cell in cells:
        try:
            value = float(cell)
        except ValueError:
            return False
        if not math.isfinite(value):
            return False
    return bool(cells) and [c.strip() for c in cells] != [str(i) for i in range(len(cells))]


def csv_dialect(fmt: str) -> tuple[str, Literal[0, 1, 2, 3]]:
    """Separator and quoting of a delimited table: TSV is tab-separated without quotes, CSV quotes as needed."""
    return ("\t", csv.QUOTE_NONE) if fmt == "tsv" else (",", csv.QUOTE_MINIMAL)


def first_row(p: Path, fmt: str, encoding: str) -> list[str]:
    """The cells of a CSV/TSV file's first row, as the table reader splits them ([] when empty;
    a byte-order mark left out, as pandas leaves it out)."""
    sep, quoting = csv_dialect(fmt)
    with open_text(p, encoding, newline="") as fh:
        cells = next(csv.reader(fh, delimiter=sep, quoting=quoting), [])
    if cells:
        cells[0] = cells[0].lstrip("\ufeff")
    return cells


def read_table_frame(p: Path, fmt: str, encoding: str, header: bool = True,
                     refuse_data_header: bool = False, as_text: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV/TSV/Parquet file as a DataFrame: header names checked, no column silently dropped or renamed;
    ``refuse_data_header``: an error for a CSV/TSV header line that looks like a row of data
    (:func:`_data_as_header`); ``as_text``: columns of a CSV/TSV kept as the text of their cells
    (categories: ``007`` stays ``007`` whatever the other cells of its column hold, where pandas
    would read a column of numbers as the number 7)."""
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError("Reading Parquet needs pyarrow: pip install 'logreg-tuner[parquet]'.") from None
        try:
            _check_column_names([str(n) for n in pq.read_schema(p).names], str(p))
            return pd.read_parquet(p)
        except (ValueError, TypeError) as exc:  # pyarrow.ArrowInvalid derives from ValueError
            raise DataError(f"Cannot read {p} as Parquet: {exc}") from None
    sep, quoting = csv_dialect(fmt)
    if header:
        first = first_row(p, fmt, encoding)
        if refuse_data_header and _data_as_header(first):
            shown = ", ".join(c.strip() for c in first[:2]) + (", ..." if len(first) > 2 else "")
            raise DataError(f"{p}'s first line holds numbers ({shown}), not column names: add a header line naming "
                            "the columns, or say that it has none (--no-header; header=False in Python): its columns "
                            "are then named 0, 1, ... by position.")
        _check_column_names(first, str(p))
    with warnings.catch_warnings():
        # index_col=False: rows with more fields than the header would otherwise shift every column
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            # without a header pandas names the columns 0, 1, ...: the names "0", "1", ... are those positions
            dtype = {(c if header else int(c)): str for c in as_text if header or c.isdigit()}
            frame = pd.read_csv(p, sep=sep, encoding=encoding, quoting=quoting, index_col=False,
                                header=0 if header else None, compression=compression_of(p), dtype=dtype or None)
        except pd.errors.ParserWarning:
            raise DataError(f"The rows of {p} have more fields than its header names; name every column in the "
                            "header (is a separator missing, or a row index unnamed?).") from None
    if fmt == "tsv":
        _refuse_quoted_records_across_lines(p, frame, encoding, header)
    return frame


def _refuse_quoted_records_across_lines(p: Path, frame: pd.DataFrame, encoding: str, header: bool) -> None:
    """A TSV's quotes are plain characters here (GLUE's files hold unbalanced ones), but pandas,
    Python's csv module and spreadsheets quote a value holding a line break: read with quotes as
    plain characters, such a value becomes rows of its own and shifts the rest. Refused when some
    cell begins with a double quote and the two readings disagree on the number of rows."""
    texts = [frame[c] for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    opened = sum(int(col.astype(str).str.startswith('"').sum()) for col in texts)
    if not opened:
        return
    try:
        quoted = pd.read_csv(p, sep="\t", encoding=encoding, quoting=csv.QUOTE_MINIMAL, index_col=False,
                             header=0 if header else None, compression=compression_of(p), dtype=str)
    except (pd.errors.ParserError, ValueError):
        return  # quotes that do not pair up: plain characters, as read
    if len(quoted) != len(frame):
        raise DataError(
            f"{p} cannot be read without a guess: {opened} of its cells begin with a double quote. With quotes as "
            f"plain characters (how this tool reads a TSV, as GLUE's files need) it holds {len(frame)} rows; with "
            f"quoted values that span lines (how pandas, Python's csv module and spreadsheets write a TSV) "
            f"{len(quoted)}. Save it as CSV, whose quotes are followed, or write the TSV without quoting "
            "(quoting=csv.QUOTE_NONE).")


def read_npz(p: Path, opts: ReadOptions) -> RawData:
    """A NumPy ``.npz`` archive: ``X`` (or a CSR matrix as ``X_data``/``X_indices``/``X_indptr``/``X_shape``) and ``y``."""
    try:
        z = np.load(p, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"Cannot read {p} as a NumPy .npz archive: {exc}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{p} is a single NumPy array, not an .npz archive holding 'X' and 'y'.")
    with z:
        keys = set(z.files)
        try:
            if {"X_data", "X_indices", "X_indptr", "X_shape"} <= keys:
                X: Any = _npz_csr(z)
            elif "X" in keys:
                X = np.asarray(z["X"], dtype=np.float64)
            else:
                raise DataError(f"{p} holds arrays {sorted(keys)}; expected 'X' (or X_data/X_indices/X_indptr/X_shape) "
                                "and 'y'.")
            y = z["y"] if "y" in keys else None
        except (ValueError, TypeError) as exc:  # object arrays (need pickle), text in X, bad CSR parts
            raise DataError(f"Cannot use the arrays in {p}: {exc}") from None
    if X.ndim != 2:
        raise DataError(f"The 'X' array in {p} must be two-dimensional (rows x features); got shape {X.shape}.")
    if y is None and opts.require_target:
        raise DataError(f"{p} has no 'y' array with the labels.")
    if y is not None and (np.ndim(y) != 1 or len(y) != X.shape[0]):
        raise DataError(f"The 'y' array in {p} must hold one label per row of 'X' ({X.shape[0]} rows); got shape "
                        f"{np.shape(y)}.")
    check_finite_matrix(X, f" in {p}")
    names = [f"x{i}" for i in range(X.shape[1])]
    return RawData("matrix", X, y, str(p), opts.fmt, feature_names=names, fingerprint=opts.fingerprint)


def _npz_csr(z: Any) -> sp.csr_matrix:
    """The CSR matrix of an ``.npz`` as stored: float32/float64 values and int32 indices are not copied."""
    data = z["X_data"]
    data = data if data.dtype == value_dtype(data.dtype) else data.astype(np.float64)
    indices, indptr = z["X_indices"], z["X_indptr"]
    # scipy narrows int64 indices to int32 when they fit, and keeps int32 ones as they are
    return sp.csr_matrix((data, indices, indptr), shape=tuple(int(v) for v in z["X_shape"]), copy=False)


def _narrowed(X: sp.csr_matrix) -> sp.csr_matrix:
    """``X`` with float32 values when float32 holds every value exactly, and int32 indices when they fit."""
    data = X.data
    if data.dtype == np.float64:
        small = data.astype(np.float32)
        exact = all(np.array_equal(small[a:a + CHUNK_VALUES], data[a:a + CHUNK_VALUES])  # as float64, by chunk
                    for a in range(0, data.size, CHUNK_VALUES))
        data = small if exact else data
    index = np.int32 if max(X.shape[1], int(X.indptr[-1])) < np.iinfo(np.int32).max else np.int64
    return sp.csr_matrix((data, X.indices.astype(index, copy=False), X.indptr.astype(index, copy=False)),
                         shape=X.shape, copy=False)


def read_svmlight(p: Path, opts: ReadOptions) -> RawData:
    """A LIBSVM/svmlight file (``opts.n_features`` wide, indices from ``opts.zero_based``; None: decided from the file)."""
    return _svmlight(p, opts.n_features, opts.zero_based, opts.fingerprint)


def _svmlight(p: Path, n_features: int | None, zero_based: bool | None, fp: str) -> RawData:
    """A LIBSVM file read with one index base (decided from the file when ``zero_based`` is None)."""
    from sklearn.datasets import load_svmlight_file

    try:  # read the indices as written; the base is applied below, the same way for every file
        with open_binary(p) as fh:
            if fh.read(3) != b"\xef\xbb\xbf":  # a byte-order mark (some editors write one) is no label
                fh.seek(0)
            X, y, qid = load_svmlight_file(fh, zero_based=True, dtype=np.float64, query_id=True)
    except ValueError as exc:
        if ":" in str(exc) and "convert" in str(exc):  # '1:0.5 3:1' read as a label
            raise DataError(f"{p} is not a valid LIBSVM/svmlight file: each line starts with a label (any number "
                            f"for rows to predict, e.g. '0 1:0.5 7:1'); {exc}") from None
        raise DataError(f"{p} is not a valid LIBSVM/svmlight file: {exc}") from None
    if len(qid):
        raise DataError(f"{p} has query ids (qid:{int(qid[0])}), the groups of a ranking data set; this tool would "
                        "drop them and split one query's rows across training, validation and test. Remove the qid "
                        "fields (sed -E 's/ qid:[^ ]+//'), or write the rows as CSV with the query id as a column "
                        "and name it as the group column (--group-column).")
    X = sp.csr_matrix(X)
    check_finite_matrix(X, f" in {p} (column: the feature index as written)")
    has_zero = bool(X.nnz) and int(X.indices.min()) == 0
    if zero_based is None:
        zero_based = has_zero
    elif has_zero and not zero_based:
        raise DataError(f"{p} line {_line_with_index_zero(p)} has the feature index 0, but this data is read "
                        "one-based (LIBSVM's convention, indices from 1); if its indices start at 0, read every file "
                        "zero-based (the 'zero_based' parameter), training included.")
    top = int(X.indices.max()) if X.nnz else -1  # the largest index as written
    width = top + 1 if zero_based else max(top, 0)
    if n_features is None and width > max(MIN_WIDTH_CHECKED, MAX_WIDTH_PER_VALUE * X.nnz):
        raise DataError(f"{p} has the feature index {top} but only {X.nnz} stored values; if it really has "
                        f"{width} features, say so with the 'n_features' parameter ({width}).")
    if n_features is not None and width > n_features:
        raise DataError(f"{p} has the feature index {top}, beyond the {n_features} features expected "
                        f"(the 'n_features' parameter, or the training data's width; indices read {base_name(zero_based)}).")
    n = width if n_features is None else n_features
    if not zero_based:  # in place when the parsed indices allow it: they are this function's own
        X.indices = np.subtract(X.indices, 1, out=X.indices if X.indices.flags.writeable else None)
    X = _narrowed(sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n), copy=False))
    y = y.astype(np.int64) if np.all(np.mod(y, 1) == 0) else y
    names = [f"f{i + (0 if zero_based else 1)}" for i in range(n)]  # the feature names follow the index base
    return RawData("matrix", X, y, str(p), "svmlight", feature_names=names, fingerprint=fp, zero_based=zero_based)


def base_name(zero_based: bool) -> str:
    """How a LIBSVM index base reads in messages."""
    return "zero-based" if zero_based else "one-based"


def _line_with_index_zero(p: Path) -> int | str:
    """The number of the first line of a LIBSVM file that uses feature index 0."""
    with open_binary(p) as fh:
        for number, line in enumerate(fh, start=1):
            if _SVM_INDEX_ZERO.search(line.split(b"#", 1)[0]):
                return number
    return "?"  # pragma: no cover - only called when the parsed file holds an index 0


def read_classfiles(p: Path, opts: ReadOptions) -> RawData:
    """A folder of one text file per class (``STEM.CLASS``: the class is the suffix), one row a line."""
    return _classfiles(p, opts.encoding, opts.fingerprint)


_BACKUP_SUFFIXES = frozenset({"bak", "orig", "old", "swp", "swo", "tmp", "rej"})
"""Suffixes of the copies editors and tools leave beside a file (``r.pos~`` too)."""


def _classfiles(folder: Path, encoding: str, fp: str) -> RawData:
    files = [f for f in sorted(folder.iterdir()) if f.is_file() and f.suffix and not f.name.startswith(".")]
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        if f.suffix.lower() in (".txt", ".md", ".json"):
            continue
        by_stem.setdefault(f.stem, []).append(f)
    groups = [g for g in by_stem.values() if len(g) >= 2]
    if len(groups) != 1:
        raise DataError(
            f"{folder} should hold one text file per class named STEM.CLASS (like rt-polarity.pos and "
            f"rt-polarity.neg); found {[f.name for f in files]}."
        )
    classes = [f.suffix[1:] for f in groups[0]]
    for f, cls in zip(groups[0], classes):
        if cls.endswith("~") or cls.lower() in _BACKUP_SUFFIXES:
            raise DataError(f"{f.name} in {folder} looks like an editor's or a tool's backup copy; read as a class file, "
                            f"its lines would be a class {cls!r} of their own beside {[c for c in classes if c != cls]}. "
                            f"Move it out of the folder (or rename it, if {cls!r} is a class).")
    texts, labels = [], []
    for f in groups[0]:
        lines = [ln for ln in text_lines(read_text(f, encoding)) if ln.strip()]
        texts.extend(lines)
        labels.extend([f.suffix[1:]] * len(lines))
    return RawData("table", pd.DataFrame({TEXT: texts}), np.asarray(labels), str(folder), "classfiles",
                   text_column=TEXT, fingerprint=fp)


def read_labeltext(p: Path, opts: ReadOptions) -> RawData:
    """``<label> <text>`` lines (the SST layout): integer labels when every label is one, else strings."""
    labels, texts = [], []
    for line in text_lines(read_text(p, opts.encoding)):
        if not line.strip():
            continue
        parts = line.strip().split(None, 1)
        labels.append(parts[0])
        texts.append(parts[1] if len(parts) > 1 else "")
    y = labels_as_written(pd.Series(labels, dtype=object))
    if y.dtype.kind == "f" and (np.mod(y, 1) != 0).any():  # 0.5 is a word here, not a continuous target
        y = np.asarray(labels, dtype=object)
    return RawData("table", pd.DataFrame({TEXT: texts}), y, str(p), opts.fmt, text_column=TEXT,
                   fingerprint=opts.fingerprint)
