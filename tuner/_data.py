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
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._features import FeaturePipeline, check_finite_matrix, numeric_block
from .errors import ConfigError, DataError

__all__ = ["RawData", "Dataset", "load_data", "load_rows", "prepare", "encode_labels", "BUILTIN_DATASETS"]

BUILTIN_DATASETS = ("breast_cancer", "digits", "wine", "iris")
FORMATS = ("auto", "csv", "tsv", "parquet", "npz", "svmlight", "classfiles", "labeltext")
TEXT = "text"
_SVM_LINE = re.compile(r"^\s*[-+]?[\d.eE+-]+(\s+(qid:\S+|\d+:\S+))*\s*(#.*)?$")
_SVM_PAIR = re.compile(r"\s\d+:\S")


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


def _builtin(name: str) -> RawData:
    from sklearn import datasets

    loaders = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits,
               "wine": datasets.load_wine, "iris": datasets.load_iris}
    if name not in loaders:
        raise ConfigError(f"Unknown dataset {name!r}. Bundled datasets: {', '.join(BUILTIN_DATASETS)}.")
    bunch = loaders[name]()
    names = [str(n) for n in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(bunch.data.shape[1])]
    return RawData("matrix", np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target), f"sklearn:{name}",
                   "builtin", feature_names=names, fingerprint=_fingerprint("builtin", name, bunch.data.shape))


def _table(frame: pd.DataFrame, source: str, fmt: str, target: str | None, text_column: str | None,
           require_target: bool, fingerprint: str) -> RawData:
    frame.columns = [str(c) for c in frame.columns]
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
    numeric = [c for c in frame.columns if c != text_column]
    numeric_block(frame, numeric, f" in {source}")  # validates types and finiteness now, with names
    return RawData("table", frame.reset_index(drop=True), y, source, fmt, numeric_columns=numeric,
                   text_column=text_column, feature_names=numeric, fingerprint=fingerprint)


def load_data(path: str | Path | None = None, *, dataset: str | None = None, target: str | None = None,
              text_column: str | None = None, encoding: str = "utf-8", fmt: str = "auto",
              n_features: int | None = None, require_target: bool = True) -> RawData:
    """Read a data set from a file, a folder, or scikit-learn's bundled sets (``dataset=``)."""
    if (path is None) == (dataset is None):
        raise ConfigError("Give either a data file or --dataset NAME (not both).")
    if dataset is not None:
        return _builtin(dataset)
    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {p} does not exist.")
    if fmt not in FORMATS:
        raise ConfigError(f"The 'format' parameter must be one of {list(FORMATS)}; got {fmt!r} instead.")
    fmt = _sniff(p, encoding) if fmt == "auto" else fmt
    fp = _fingerprint(p, fmt, target, text_column, encoding)
    src = str(p)
    try:
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            frame = pd.read_csv(p, sep=sep, encoding=encoding, quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL)
            return _table(frame, src, fmt, target, text_column, require_target, fp)
        if fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise DataError("Reading Parquet needs pyarrow: pip install 'logreg-tuner[parquet]'.") from None
            try:
                frame = pd.read_parquet(p)
            except (ValueError, TypeError) as exc:  # pyarrow.ArrowInvalid derives from ValueError
                raise DataError(f"Cannot read {p} as Parquet: {exc}") from None
            return _table(frame, src, fmt, target, text_column, require_target, fp)
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
                        X: Any = sp.csr_matrix((np.asarray(z["X_data"], dtype=np.float64), z["X_indices"], z["X_indptr"]),
                                               shape=tuple(int(v) for v in z["X_shape"]))
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
            from sklearn.datasets import load_svmlight_file

            try:
                X, y = load_svmlight_file(str(p), n_features=n_features, dtype=np.float64)
            except ValueError as exc:
                raise DataError(f"{p} is not a valid LIBSVM/svmlight file: {exc}") from None
            check_finite_matrix(X, f" in {p}")
            y = y.astype(np.int64) if np.all(np.mod(y, 1) == 0) else y
            names = [f"f{i + 1}" for i in range(X.shape[1])]  # LIBSVM indices are 1-based
            return RawData("matrix", X, y, src, fmt, feature_names=names, fingerprint=fp)
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
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"Cannot parse {p} as {fmt}: {exc}") from None
    except OSError as exc:
        raise DataError(f"Cannot read {p}: {exc.strerror or exc}.") from None
    raise ConfigError(f"Unsupported format {fmt!r}.")  # pragma: no cover


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
    """Read rows to predict on, in the shape the model's pipeline expects (labels optional)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {p} does not exist.")
    if pipeline.kind == "table" and pipeline.text_column is not None and not pipeline.numeric_columns:
        if fmt == "auto" and p.suffix.lower() in (".txt", "") and not p.is_dir():
            lines = [ln for ln in _lines(_read_text(p, encoding)) if ln.strip()]
            return pd.DataFrame({pipeline.text_column: lines})
    raw = load_data(p, target=target, text_column=pipeline.text_column, encoding=encoding, fmt=fmt,
                    n_features=pipeline.n_input_features or None, require_target=False)
    return raw.X


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
            test_raw: RawData | None = None) -> Dataset:
    """Encode labels, split stratified (train/validation/test), fit preprocessing on train."""
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
    y, classes = encode_labels(raw.y)
    idx = np.arange(len(y))

    def split(ix: np.ndarray, frac: float) -> tuple[np.ndarray, np.ndarray]:
        if frac == 0:
            return ix, ix[:0]
        strat = y[ix] if np.bincount(y[ix]).min(initial=len(ix)) >= 2 else None
        try:
            return train_test_split(ix, test_size=frac, random_state=seed, stratify=strat)
        except ValueError:
            return train_test_split(ix, test_size=frac, random_state=seed, stratify=None)

    rest, test_idx = split(idx, test_size)
    train_idx, val_idx = split(rest, val_size / (1 - test_size) if test_size else val_size)
    if len(np.unique(y[train_idx])) < 2:
        raise DataError("The training split holds a single class; use more data or a smaller validation/test size.")
    pipe = FeaturePipeline.fit(raw.take(train_idx), kind=raw.kind, numeric_columns=raw.numeric_columns,
                               text_column=raw.text_column, feature_names=raw.feature_names)
    if test_raw is not None:
        if test_raw.y is None:
            raise DataError(f"Test file {test_raw.source} has no labels.")
        lookup = {str(c): i for i, c in enumerate(classes)}
        unknown = sorted({str(v) for v in np.asarray(test_raw.y)} - set(lookup))
        if unknown:
            raise DataError(f"Test file {test_raw.source} has labels {unknown} not seen in training ({classes}).")
        y_test = np.array([lookup[str(v)] for v in np.asarray(test_raw.y)], dtype=np.int64)
        X_test = pipe.transform(test_raw.X)
    else:
        y_test, X_test = y[test_idx], pipe.transform(raw.take(test_idx))
    return Dataset(pipe.transform(raw.take(train_idx)), y[train_idx], pipe.transform(raw.take(val_idx)), y[val_idx],
                   X_test, y_test, classes, pipe, raw)
