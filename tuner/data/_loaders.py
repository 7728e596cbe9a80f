"""Reading data sets and splitting them: one loader for every supported format.

Formats: CSV/TSV (``--target`` column, numeric features, optional ``--text-column``),
LIBSVM/svmlight, NumPy ``.npz`` (arrays ``X`` and ``y``; a sparse ``X`` as ``X_data``,
``X_indices``, ``X_indptr``, ``X_shape``), Parquet (with pyarrow), a folder of one text file
per class (``NAME.pos`` / ``NAME.neg``: the class is the suffix), ``<label> <text>`` lines
(the SST layout), and scikit-learn's bundled sets by name.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tuner.data._features import CHUNK_VALUES, FeaturePipeline, check_finite_matrix, numeric_block, value_dtype
from tuner.errors import ConfigError, DataError

__all__ = ["RawData", "Dataset", "load_data", "load_rows", "prepare", "encode_labels", "BUILTIN_DATASETS",
           "DATA_ROOT_ENV", "portable_path", "locate", "file_fingerprint"]

BUILTIN_DATASETS = ("breast_cancer", "digits", "wine", "iris")
FORMATS = ("auto", "csv", "tsv", "parquet", "npz", "svmlight", "classfiles", "labeltext")
TEXT = "text"
_SVM_LINE = re.compile(r"^\s*[-+]?[\d.eE+-]+(\s+(qid:\S+|\d+:\S+))*\s*(#.*)?$")
_SVM_PAIR = re.compile(r"\s\d+:\S")
_SVM_INDEX_ZERO = re.compile(rb"\s0+:")
TABLE_FORMATS = ("csv", "tsv", "parquet")
DATA_ROOT_ENV = "TUNER_DATA_ROOT"
# Without --n-features, a LIBSVM file may not be wider than this many columns per stored value
# (nor than MIN_WIDTH_CHECKED): one stray index like 2000000000 would size every weight vector.
MAX_WIDTH_PER_VALUE = 100
MIN_WIDTH_CHECKED = 1 << 16
# prepare() keeps every raw row in Dataset.raw only for a matrix up to this size; a larger one is
# dropped once split (its first HEAD_ROWS rows are kept, for a model's input example).
KEEP_RAW_BYTES = 64 << 20
HEAD_ROWS = 10


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
    zero_based: bool | None = None  # LIBSVM files: whether feature indices start at 0
    class_names: dict[Any, str] = field(default_factory=dict)  # label -> display name (bundled sets)

    def __len__(self) -> int:
        return self.X.shape[0]

    def take(self, idx: np.ndarray) -> Any:
        return self.X.iloc[idx].reset_index(drop=True) if self.kind == "table" else self.X[idx]


@dataclass
class Dataset:
    """Preprocessed, split data ready for the trainer, and what it takes to redo it."""

    X_train: Any
    y_train: np.ndarray
    X_val: Any
    y_val: np.ndarray
    X_test: Any
    y_test: np.ndarray
    classes: list[Any]
    pipeline: FeaturePipeline
    raw: RawData

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def _read_text(path: Path, encoding: str) -> str:
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"Cannot decode {path} as {encoding} ({exc.reason} at byte {exc.start}); pass the file's "
            "encoding with --encoding (for example latin-1)."
        ) from None
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def _lines(text: str) -> list[str]:
    """Split on newlines only: ``str.splitlines`` also splits on characters such as U+0085, which
    a Latin-1 file holds where cp1252 meant an ellipsis (rt-polarity does)."""
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def _sniff(path: Path, encoding: str) -> str:
    if path.is_dir():
        return "classfiles"
    suffix = path.suffix.lower()
    by_suffix = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz",
                 ".svm": "svmlight", ".libsvm": "svmlight", ".svmlight": "svmlight"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    try:
        with path.open("r", encoding=encoding, errors="replace") as fh:
            lines = [ln for ln in (fh.readline() for _ in range(20)) if ln.strip()]
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if lines and all(_SVM_LINE.match(ln) and _SVM_PAIR.search(ln) for ln in lines):
        return "svmlight"
    if lines and all(re.match(r"^\S+\s+\S", ln) for ln in lines):
        return "labeltext"
    raise DataError(f"Cannot tell the format of {path}; pass --format (one of {', '.join(FORMATS[1:])}).")


def _fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            files = sorted(p for p in part.iterdir() if p.is_file()) if part.is_dir() else [part]
            for f in files:
                h.update(f.name.encode())
                with f.open("rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
        else:
            h.update(repr(part).encode())
    return h.hexdigest()[:16]


def file_fingerprint(path: str | Path, *, fmt: str = "auto", target: str | None = None,
                     text_column: str | None = None, encoding: str = "utf-8") -> str:
    """What :attr:`RawData.fingerprint` of ``load_data(path, ...)`` will be, without parsing the file."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {p} does not exist.")
    return _fingerprint(p, _sniff(p, encoding) if fmt == "auto" else fmt, target, text_column, encoding)


def _builtin(name: str) -> RawData:
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
                   "builtin", feature_names=names, fingerprint=_fingerprint("builtin", name, bunch.data.shape),
                   class_names=class_names if len(class_names) == len(targets) else {})


def _table(frame: pd.DataFrame, source: str, fmt: str, target: str | None, text_column: str | None,
           require_target: bool, fingerprint: str) -> RawData:
    frame.columns = [str(c) for c in frame.columns]
    _check_column_names(list(frame.columns), source)
    if target is not None and target == text_column:
        raise DataError(f"Column {target!r} cannot be both the target (--target) and the text column (--text-column).")
    if target is None and require_target:
        raise DataError(f"{source} is a table: name its label column with --target (columns: {list(frame.columns)}).")
    y = None
    if target is not None:
        if target not in frame.columns:
            import difflib

            close = difflib.get_close_matches(target, frame.columns, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            if require_target:
                raise DataError(f"Target column {target!r} not found in {source}.{hint} Columns: {list(frame.columns)}.")
        else:
            y = frame[target].to_numpy()
            frame = frame.drop(columns=[target])
    if text_column is not None and text_column not in frame.columns:
        raise DataError(f"Text column {text_column!r} not found in {source}. Columns: {list(frame.columns)}.")
    if len(frame) == 0:
        raise DataError(f"{source} holds no data rows.")
    numeric = [c for c in frame.columns if c != text_column]
    numeric_block(frame, numeric, f" in {source}")  # validates types and finiteness now, with names
    return RawData("table", frame.reset_index(drop=True), y, source, fmt, numeric_columns=numeric,
                   text_column=text_column, feature_names=numeric, fingerprint=fingerprint)


def _check_column_names(names: list[str], source: str) -> None:
    """Every column needs its own, non-empty name (pandas would silently rename ``x`` to ``x.1``)."""
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise DataError(f"{source} names the column(s) {dups} more than once; give every column its own name.")
    empty = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if empty:
        raise DataError(f"Column {empty[0]} of {source} has no name in the header (a saved row index?); "
                        "name it or remove it.")


def _check_options(fmt: str, source: str, target: str | None, text_column: str | None, n_features: int | None,
                   zero_based: bool | None) -> None:
    """Options that do not apply to the format are an error, never silently ignored."""
    given = []
    if fmt not in TABLE_FORMATS:
        given += [opt for opt, v in (("--target", target), ("--text-column", text_column)) if v is not None]
    if fmt != "svmlight":
        given += [opt for opt, v in (("--n-features", n_features), ("--zero-based/--one-based", zero_based))
                  if v is not None]
    if given:
        raise ConfigError(f"{' and '.join(given)} do(es) not apply to {source} (read as {fmt}): --target and "
                          "--text-column name columns of CSV/TSV/Parquet tables, --n-features and "
                          "--zero-based/--one-based size and index LIBSVM files.")


def _read_table(p: Path, fmt: str, encoding: str, header: bool = True) -> pd.DataFrame:
    """A CSV/TSV/Parquet file as a DataFrame: header names checked, no column silently dropped or renamed."""
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
    sep, quoting = ("\t", csv.QUOTE_NONE) if fmt == "tsv" else (",", csv.QUOTE_MINIMAL)
    if header:
        with p.open("r", encoding=encoding, newline="") as fh:
            _check_column_names(next(csv.reader(fh, delimiter=sep, quoting=quoting), []), str(p))
    with warnings.catch_warnings():
        # index_col=False: rows with more fields than the header would otherwise shift every column
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(p, sep=sep, encoding=encoding, quoting=quoting, index_col=False,
                               header=0 if header else None)
        except pd.errors.ParserWarning:
            raise DataError(f"The rows of {p} have more fields than its header names; name every column in the "
                            "header (is a separator missing, or a row index unnamed?).") from None


def load_data(path: str | Path | None = None, *, dataset: str | None = None, target: str | None = None,
              text_column: str | None = None, encoding: str = "utf-8", fmt: str = "auto",
              n_features: int | None = None, require_target: bool = True,
              zero_based: bool | None = None) -> RawData:
    """Read a data set from a file, a folder, or scikit-learn's bundled sets (``dataset=``).

    ``zero_based`` says whether LIBSVM feature indices start at 0; ``None`` decides from the
    file (zero-based when it holds an index 0) and :attr:`RawData.zero_based` records it,
    so that every later file (test file, prediction rows) is read the same way.
    """
    if (path is None) == (dataset is None):
        raise ConfigError("Give either a data file or --dataset NAME (not both).")
    if dataset is not None:
        _check_options("builtin", f"the bundled dataset {dataset!r}", target, text_column, n_features, zero_based)
        return _builtin(dataset)
    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {p} does not exist.")
    if fmt not in FORMATS:
        raise ConfigError(f"The 'format' parameter must be one of {list(FORMATS)}; got {fmt!r} instead.")
    fmt = _sniff(p, encoding) if fmt == "auto" else fmt
    _check_options(fmt, str(p), target, text_column, n_features, zero_based)
    fp = file_fingerprint(p, fmt=fmt, target=target, text_column=text_column, encoding=encoding)
    src = str(p)
    try:
        if fmt in TABLE_FORMATS:
            return _table(_read_table(p, fmt, encoding), src, fmt, target, text_column, require_target, fp)
        if fmt == "npz":
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
                        raise DataError(f"{p} holds arrays {sorted(keys)}; expected 'X' (or X_data/X_indices/X_indptr/X_shape) and 'y'.")
                    y = z["y"] if "y" in keys else None
                except (ValueError, TypeError) as exc:  # object arrays (need pickle), text in X, bad CSR parts
                    raise DataError(f"Cannot use the arrays in {p}: {exc}") from None
            if X.ndim != 2:
                raise DataError(f"The 'X' array in {p} must be two-dimensional (rows x features); got shape {X.shape}.")
            if y is None and require_target:
                raise DataError(f"{p} has no 'y' array with the labels.")
            check_finite_matrix(X, f" in {p}")
            names = [f"x{i}" for i in range(X.shape[1])]
            return RawData("matrix", X, y, src, fmt, feature_names=names, fingerprint=fp)
        if fmt == "svmlight":
            return _svmlight(p, n_features, zero_based, fp)
        if fmt == "classfiles":
            return _classfiles(p, encoding, fp)
        if fmt == "labeltext":
            labels, texts = [], []
            for i, line in enumerate(_lines(_read_text(p, encoding))):
                if not line.strip():
                    continue
                parts = line.strip().split(None, 1)
                labels.append(parts[0])
                texts.append(parts[1] if len(parts) > 1 else "")
            y = pd.to_numeric(pd.Series(labels), errors="coerce")
            y_arr = y.to_numpy().astype(np.int64) if y.notna().all() and (y % 1 == 0).all() else np.asarray(labels)
            return RawData("table", pd.DataFrame({TEXT: texts}), y_arr, src, fmt, text_column=TEXT, fingerprint=fp)
    except UnicodeDecodeError as exc:
        raise DataError(f"Cannot decode {p} as {encoding}: {exc.reason}; pass the right --encoding (e.g. latin-1).") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise DataError(f"Cannot parse {p} as {fmt}: {exc}") from None
    except OSError as exc:
        raise DataError(f"Cannot read {p}: {exc.strerror or exc}.") from None
    raise ConfigError(f"Unsupported format {fmt!r}.")  # pragma: no cover


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


def _svmlight(p: Path, n_features: int | None, zero_based: bool | None, fp: str) -> RawData:
    """A LIBSVM file read with one index base (decided from the file when ``zero_based`` is None)."""
    from sklearn.datasets import load_svmlight_file

    try:  # read the indices as written; the base is applied below, the same way for every file
        X, y = load_svmlight_file(str(p), zero_based=True, dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{p} is not a valid LIBSVM/svmlight file: {exc}") from None
    X = sp.csr_matrix(X)
    has_zero = bool(X.nnz) and int(X.indices.min()) == 0
    if zero_based is None:
        zero_based = has_zero
    elif has_zero and not zero_based:
        raise DataError(f"{p} line {_line_with_index_zero(p)} has the feature index 0, but this data is read "
                        "one-based (LIBSVM's convention, indices from 1); pass --zero-based if its indices "
                        "start at 0, and train again so that every file is read that way.")
    top = int(X.indices.max()) if X.nnz else -1  # the largest index as written
    width = top + 1 if zero_based else max(top, 0)
    if n_features is None and width > max(MIN_WIDTH_CHECKED, MAX_WIDTH_PER_VALUE * X.nnz):
        raise DataError(f"{p} has the feature index {top} but only {X.nnz} stored values; if it really has "
                        f"{width} features, say so with --n-features {width}.")
    if n_features is not None and width > n_features:
        raise DataError(f"{p} has the feature index {top}, beyond the {n_features} features expected "
                        f"(--n-features, or the training data's width; indices read {_base(zero_based)}).")
    n = width if n_features is None else n_features
    if not zero_based:  # in place when the parsed indices allow it: they are this function's own
        X.indices = np.subtract(X.indices, 1, out=X.indices if X.indices.flags.writeable else None)
    X = _narrowed(sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n), copy=False))
    check_finite_matrix(X, f" in {p}")
    y = y.astype(np.int64) if np.all(np.mod(y, 1) == 0) else y
    names = [f"f{i + (0 if zero_based else 1)}" for i in range(n)]  # the feature names follow the index base
    return RawData("matrix", X, y, str(p), "svmlight", feature_names=names, fingerprint=fp, zero_based=zero_based)


def _base(zero_based: bool) -> str:
    return "zero-based" if zero_based else "one-based"


def _line_with_index_zero(p: Path) -> int | str:
    """The number of the first line of a LIBSVM file that uses feature index 0."""
    with p.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if _SVM_INDEX_ZERO.search(line.split(b"#", 1)[0]):
                return number
    return "?"  # pragma: no cover - only called when the parsed file holds an index 0


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
    texts, labels = [], []
    for f in groups[0]:
        lines = [ln for ln in _lines(_read_text(f, encoding)) if ln.strip()]
        texts.extend(lines)
        labels.extend([f.suffix[1:]] * len(lines))
    return RawData("table", pd.DataFrame({TEXT: texts}), np.asarray(labels), str(folder), "classfiles",
                   text_column=TEXT, fingerprint=fp)


def load_rows(path: str | Path, pipeline: FeaturePipeline, *, encoding: str = "utf-8", fmt: str = "auto",
              target: str | None = None) -> Any:
    """Read rows to predict on, in the shape the model's pipeline expects (labels optional).

    A table keeps its header's names (the pipeline matches columns by name); a CSV/TSV whose
    first row is all numbers has no header and is read as such, no row lost. A LIBSVM file
    is read with the model's index base and width.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {p} does not exist.")
    if pipeline.kind == "table" and pipeline.text_column is not None and not pipeline.numeric_columns:
        if fmt == "auto" and p.suffix.lower() in (".txt", "") and not p.is_dir():
            lines = [ln for ln in _lines(_read_text(p, encoding)) if ln.strip()]
            return pd.DataFrame({pipeline.text_column: lines})
    fmt = _sniff(p, encoding) if fmt == "auto" else fmt
    if fmt in TABLE_FORMATS:
        try:
            frame = _read_table(p, fmt, encoding, header=fmt == "parquet" or _has_header(p, fmt, encoding, pipeline))
        except UnicodeDecodeError as exc:
            raise DataError(f"Cannot decode {p} as {encoding}: {exc.reason}; pass the right --encoding.") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
            raise DataError(f"Cannot parse {p} as {fmt}: {exc}") from None
        if fmt == "parquet":
            frame.columns = [str(c) for c in frame.columns]
        if target is not None and target in frame.columns:
            frame = frame.drop(columns=[target])
        return frame
    zero_based = pipeline.zero_based if fmt == "svmlight" else None
    n_features = (pipeline.n_input_features or None) if fmt == "svmlight" else None
    return load_data(p, encoding=encoding, fmt=fmt, n_features=n_features, zero_based=zero_based,
                     require_target=False).X


def _has_header(p: Path, fmt: str, encoding: str, pipeline: FeaturePipeline) -> bool:
    """Whether the first row of a CSV/TSV names columns: it does unless every cell is a number."""
    sep, quoting = ("\t", csv.QUOTE_NONE) if fmt == "tsv" else (",", csv.QUOTE_MINIMAL)
    with p.open("r", encoding=encoding, newline="") as fh:
        first = next(csv.reader(fh, delimiter=sep, quoting=quoting), [])
    if not first or {c.strip() for c in first} & set(pipeline.input_columns):
        return True
    try:
        [float(c) for c in first]
    except ValueError:
        return True
    return False


def encode_labels(y: Any) -> tuple[np.ndarray, list[Any]]:
    """Integer class indices and the sorted class labels; clear errors for unusable targets."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"The target must be one column; got shape {y.shape}.")
    if y.dtype.kind in "fc":
        finite = np.isfinite(y)
        if not finite.all():
            raise DataError(f"The target holds {y[~finite][0]} at row {int(np.argmin(finite))}; every row needs a label.")
        if not np.all(np.mod(y, 1) == 0):
            raise DataError(
                "The target looks continuous (non-integer values such as "
                f"{y[np.mod(y, 1) != 0][0]}); logistic regression needs class labels."
            )
        y = y.astype(np.int64)
    elif y.dtype.kind == "O":
        missing = pd.isna(y)
        if missing.any():
            raise DataError(f"The target is missing at row {int(np.argmax(missing))}; every row needs a label.")
        y = y.astype(str)
    classes, idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        only = f" ({classes[0].item()!r})" if len(classes) else ""
        raise DataError(f"The target has a single class{only}; logistic regression needs two or more.")
    if y.dtype.kind in "iu" and len(classes) > 100 and len(classes) > 0.5 * len(y):
        raise DataError(
            f"The target has {len(classes)} distinct values in {len(y)} rows; it looks continuous, not like class labels."
        )
    return idx.astype(np.int64), [c.item() if hasattr(c, "item") else c for c in classes]


def prepare(raw: RawData, *, val_size: float = 0.2, test_size: float = 0.2, seed: int = 0,
            test_raw: RawData | None = None, keep_raw: bool | None = None) -> Dataset:
    """Encode labels, split stratified (train/validation/test), fit preprocessing on train.

    Each split is one copy of its rows (a sparse split is then scaled in place), so the
    splits together take the matrix's size once. ``keep_raw`` says whether
    :attr:`Dataset.raw` keeps every raw row; by default it does for tables and for matrices up
    to :data:`KEEP_RAW_BYTES`, and otherwise keeps the first :data:`HEAD_ROWS` rows only, so a
    large matrix is not held twice once split. A sparse matrix not kept is taken from ``raw``
    too (``raw.X`` becomes its first rows) and split one array at a time.
    """
    from sklearn.model_selection import train_test_split

    for name, v in (("val_size", val_size), ("test_size", test_size)):
        if not 0 <= v < 1:
            raise ConfigError(f"The '{name}' parameter must be in [0, 1); got {v!r} instead.")
    if test_raw is not None:
        test_size = 0.0
    if val_size + test_size >= 1:
        raise ConfigError("val_size + test_size must leave some rows for training.")
    if raw.y is None:
        raise DataError(f"{raw.source} has no labels.")
    if len(raw) == 0:
        raise DataError(f"{raw.source} holds no data rows.")
    y, classes = encode_labels(raw.y)
    _check_split_sizes(y, classes, raw.source, val_size, test_size)
    idx = np.arange(len(y))

    def split(ix: np.ndarray, frac: float) -> tuple[np.ndarray, np.ndarray]:
        if frac == 0:
            return ix, ix[:0]
        try:
            return train_test_split(ix, test_size=frac, random_state=seed, stratify=y[ix])
        except ValueError as exc:
            raise DataError(f"Cannot split the {len(ix)} rows of {raw.source} stratified by class: {exc} Add rows, "
                            "or lower --val-size/--test-size (0 turns a split off).") from None

    rest, test_idx = split(idx, test_size)
    train_idx, val_idx = split(rest, val_size / (1 - test_size) if test_size else val_size)
    absent = [classes[c] for c in range(len(classes)) if not np.any(y[train_idx] == c)]
    if absent:
        raise DataError(f"The training split holds no row of class(es) {absent}; use more data or a smaller "
                        "validation/test size.")
    keep = _keeps_raw(raw, keep_raw)
    kept = raw if keep else replace(raw, X=raw.take(np.arange(min(HEAD_ROWS, len(raw)))), y=np.asarray(raw.y)[:HEAD_ROWS])
    X_train, X_val, X_test_rows = _take_splits(raw, [train_idx, val_idx, test_idx], consume=not keep)
    pipe = FeaturePipeline.fit(X_train, kind=raw.kind, numeric_columns=raw.numeric_columns,
                               text_column=raw.text_column, feature_names=raw.feature_names)
    X_train = pipe.transform(X_train, copy=False)
    pipe.zero_based = raw.zero_based
    if raw.class_names:
        pipe.class_names = [raw.class_names.get(c, str(c)) for c in classes]
    if test_raw is not None:
        if raw.kind == "matrix" and test_raw.kind == "matrix" and test_raw.X.shape[1] != raw.X.shape[1]:
            raise DataError(f"Test file {test_raw.source} has {test_raw.X.shape[1]} feature columns; the training "
                            f"data has {raw.X.shape[1]}.")
        if test_raw.y is None:
            raise DataError(f"Test file {test_raw.source} has no labels.")
        lookup = {str(c): i for i, c in enumerate(classes)}
        unknown = sorted({str(v) for v in np.asarray(test_raw.y)} - set(lookup))
        if unknown:
            raise DataError(f"Test file {test_raw.source} has labels {unknown} not seen in training ({classes}).")
        y_test = np.array([lookup[str(v)] for v in np.asarray(test_raw.y)], dtype=np.int64)
        X_test = pipe.transform(test_raw.X)
    else:
        y_test, X_test = y[test_idx], pipe.transform(X_test_rows, copy=False)
    X_val = pipe.transform(X_val, copy=False)
    return Dataset(X_train, y[train_idx], X_val, y[val_idx], X_test, y_test, classes, pipe, kept)


def _take_splits(raw: RawData, parts: list[np.ndarray], consume: bool) -> list[Any]:
    """Rows ``parts[i]`` of ``raw``, one copy each.

    ``consume`` (a sparse matrix that is not kept) releases ``raw.X`` (it becomes its first
    rows) and gathers the splits one array at a time (every split's column indices, then the
    raw indices go, then the values), so that the raw matrix and its splits are never both held
    whole: at most the matrix plus one of its arrays (unless the caller holds it elsewhere).
    """
    if not (consume and raw.kind == "matrix" and sp.issparse(raw.X)):
        return [raw.take(ix) for ix in parts]
    X = sp.csr_matrix(raw.X)
    shape = X.shape
    arrays = {"indptr": X.indptr, "indices": X.indices, "data": X.data}
    raw.X = raw.take(np.arange(min(HEAD_ROWS, len(raw))))
    del X
    return _gather_rows(arrays, shape[1], parts)


def _gather_rows(arrays: dict[str, np.ndarray], width: int, parts: list[np.ndarray]) -> list[sp.csr_matrix]:
    """CSR rows ``parts[i]`` from CSR ``arrays`` (popped, so each goes once gathered from)."""
    indptr = arrays.pop("indptr")
    starts = [indptr[ix] for ix in parts]
    lengths = [indptr[ix + 1] - s for ix, s in zip(parts, starts)]
    ptrs = [np.concatenate(([0], np.cumsum(n, dtype=np.int64))).astype(indptr.dtype) for n in lengths]
    out: dict[str, list[np.ndarray]] = {}
    for name in ("indices", "data"):
        src = arrays.pop(name)
        out[name] = [_gather(src, s, n, ptr) for s, n, ptr in zip(starts, lengths, ptrs)]
        del src
    return [sp.csr_matrix((d, i, ptr), shape=(len(ptr) - 1, width), copy=False)
            for d, i, ptr in zip(out["data"], out["indices"], ptrs)]


def _gather(src: np.ndarray, starts: np.ndarray, lengths: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """``src[starts[r]:starts[r] + lengths[r]]`` for every row ``r``, concatenated; temporaries by row blocks."""
    out = np.empty(int(ptr[-1]), dtype=src.dtype)
    if out.size == 0:
        return out
    bounds = np.unique(np.append(np.searchsorted(ptr, np.arange(0, out.size, CHUNK_VALUES), side="right") - 1,
                                 len(lengths)))
    for a, b in zip(bounds[:-1], bounds[1:]):
        lo, hi = int(ptr[a]), int(ptr[b])
        row = np.repeat(np.arange(a, b), lengths[a:b])
        pos = np.arange(lo, hi)
        pos -= ptr[row]
        pos += starts[row]
        out[lo:hi] = src[pos]
    return out


def _keeps_raw(raw: RawData, keep_raw: bool | None) -> bool:
    """Whether :func:`prepare` keeps every raw row: as asked, else tables and matrices up to KEEP_RAW_BYTES."""
    if keep_raw is not None:
        return keep_raw
    return raw.kind != "matrix" or _stored_bytes(raw.X) <= KEEP_RAW_BYTES


def _stored_bytes(X: Any) -> int:
    """Bytes a dense or sparse matrix holds (values, plus indices and index pointers when sparse)."""
    if sp.issparse(X):
        return sum(int(getattr(X, part).nbytes) for part in ("data", "indices", "indptr", "row", "col")
                   if hasattr(X, part))
    return int(np.asarray(X).nbytes)


def _check_split_sizes(y: np.ndarray, classes: list[Any], source: str, val_size: float, test_size: float) -> None:
    """Enough rows of every class for a stratified split into every part asked for; names the class."""
    parts = 1 + (val_size > 0) + (test_size > 0)
    parts_named = ["training"] + ["validation"] * (val_size > 0) + ["test"] * (test_size > 0)
    names = " and ".join(parts_named) if len(parts_named) < 3 else "training, validation and test"
    advice = "add rows, or lower --val-size/--test-size (0 turns that split off)"
    if len(y) < parts * len(classes):
        raise DataError(f"{source} has only {len(y)} rows: too few to split into {names} rows with every class "
                        f"in each (at least {parts * len(classes)} here); {advice}.")
    counts = np.bincount(y, minlength=len(classes))
    if parts > 1 and counts.min() < parts:
        small = int(np.argmin(counts))
        raise DataError(f"Class {classes[small]!r} has only {counts[small]} row(s) in {source}: too few to split "
                        f"stratified into {names} rows (at least {parts} needed); {advice}.")


def portable_path(path: str | Path) -> tuple[str, str | None]:
    """(absolute path, path relative to ``$TUNER_DATA_ROOT`` or else to the working folder).

    The relative path is what another machine resolves against its own data root (docker
    compose mounts the data at ``/data``) or working folder; ``None`` when there is none.
    """
    absolute = Path(path).resolve()
    root = os.environ.get(DATA_ROOT_ENV)
    if root:
        try:
            return str(absolute), absolute.relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    try:
        return str(absolute), Path(os.path.relpath(absolute, Path.cwd())).as_posix()
    except ValueError:  # another drive (Windows)
        return str(absolute), None


def locate(absolute: str, relative: str | None, what: str = "data file") -> Path:
    """The first existing of ``$TUNER_DATA_ROOT/relative``, ``absolute``, ``./relative``; an error lists them."""
    tried: list[tuple[Path, str]] = []
    root = os.environ.get(DATA_ROOT_ENV)
    if relative and root:
        tried.append((Path(root) / relative, f"${DATA_ROOT_ENV}/{relative}"))
    tried.append((Path(absolute), "the path given when the study was created"))
    if relative:
        tried.append((Path.cwd() / relative, "relative to the working folder"))
    for candidate, _ in tried:
        if candidate.exists():
            return candidate
    listed = "; ".join(f"{c} ({why})" for c, why in tried)
    hint = (f"set {DATA_ROOT_ENV} to the folder that holds {relative} on this machine" if relative and not root
            else "make the file available at one of these paths" + (f" or change {DATA_ROOT_ENV}" if root else ""))
    raise DataError(f"Cannot find the study's {what}; tried {listed}. {hint[0].upper()}{hint[1:]}.")
