"""Splitting a data set (stratified train/validation/test) and fitting its features on the training rows."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tuner.data._features import CHUNK_VALUES, FeaturePipeline, row_name
from tuner.data._readers import RawData
from tuner.errors import ConfigError, DataError

__all__ = ["Dataset", "prepare", "group_split", "encode_labels", "spaced_labels", "KEEP_RAW_BYTES", "HEAD_ROWS"]

# prepare() keeps every raw row in Dataset.raw only for a matrix up to this size; a larger one is
# dropped once split (its first HEAD_ROWS rows are kept, for a model's input example).
KEEP_RAW_BYTES = 64 << 20
HEAD_ROWS = 10


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
    groups_train: np.ndarray | None = None
    """The group of each training row, when the data was split by groups (cross-validation folds keep them too)."""
    notes: list[str] = field(default_factory=list)
    """What the split noticed and the user should hear (a test file's columns the model ignores, test
    rows of one class)."""

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def encode_labels(y: Any, line_of: Callable[[int], int] | None = None) -> tuple[np.ndarray, list[Any]]:
    """Integer class indices and the sorted class labels; clear errors for unusable targets (a
    row named by its file line, ``line_of(row)``, when the labels are a file's)."""
    y = label_values(y, line_of)
    classes, idx = np.unique(y, return_inverse=True)
    pair = spaced_labels(classes)
    if pair:
        raise DataError(f"The target's labels {pair[0]!r} and {pair[1]!r} differ only in spaces: clean the target "
                        "column.")
    if len(classes) < 2:
        only = f" ({classes[0].item()!r})" if len(classes) else ""
        raise DataError(f"The target has a single class{only}; logistic regression needs two or more.")
    if y.dtype.kind in "iu" and len(classes) > 100 and len(classes) > 0.5 * len(y):
        raise DataError(
            f"The target has {len(classes)} distinct values in {len(y)} rows; it looks continuous, not like class labels."
        )
    return idx.astype(np.int64), [c.item() if hasattr(c, "item") else c for c in classes]


def spaced_labels(classes: Any) -> tuple[str, str] | None:
    """Two distinct text labels among ``classes`` that are equal but for surrounding spaces
    (``' yes'`` and ``'yes'``), which would silently be two classes; None when there are none."""
    seen: dict[str, str] = {}
    for c in classes:
        if isinstance(c, str):
            other = seen.setdefault(c.strip(), str(c))
            if other != c:
                return (other, str(c)) if other < c else (str(c), other)
    return None


_MISSING_HINT = ("every row needs a label (an empty cell, and one that reads NA, N/A, None, null or NaN, is read as "
                 "missing): fill it in or drop the row; a class written like a missing value needs another name.")


def label_values(y: Any, line_of: Callable[[int], int] | None = None) -> np.ndarray:
    """The labels as :func:`encode_labels` compares them: whole floats as integers (``1.0`` is
    the class ``1``), numbers held as objects as numbers, other objects as strings; an error for
    missing, infinite or fractional ones."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"The target must be one column; got shape {y.shape}.")
    if y.dtype.kind in "fc":
        finite = np.isfinite(y)
        if not finite.all():
            bad, where = y[~finite][0], row_name(int(np.argmin(finite)), line_of)
            if np.isnan(bad):
                raise DataError(f"The target is missing at {where}; {_MISSING_HINT}")
            raise DataError(f"The target holds {bad} at {where}; every row needs a label.")
        if not np.all(np.mod(y, 1) == 0):
            raise DataError(
                "The target looks continuous (non-integer values such as "
                f"{y[np.mod(y, 1) != 0][0]}); logistic regression needs class labels."
            )
        y = y.astype(np.int64)
    elif y.dtype.kind == "O":
        missing = pd.isna(y)
        if missing.any():
            raise DataError(f"The target is missing at {row_name(int(np.argmax(missing)), line_of)}; {_MISSING_HINT}")
        if len(y) and all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)) for v in y):
            return label_values(np.asarray(y.tolist()), line_of)  # numbers held as objects are numbers, not their strings
        y = y.astype(str)
    return y


def prepare(raw: RawData, *, val_size: float = 0.2, test_size: float = 0.2, seed: int = 0,
            test_raw: RawData | None = None, keep_raw: bool | None = None) -> Dataset:
    """Encode labels, split stratified (train/validation/test), fit preprocessing on train.

    Rows with groups (``raw.groups``, read from a group column) are split by whole groups
    (:func:`group_split`): no group has rows on two sides.

    Each split is one copy of its rows (a sparse split is then scaled in place), so the
    splits together take the matrix's size once. ``keep_raw`` says whether
    :attr:`Dataset.raw` keeps every raw row; by default it does for tables and for matrices up
    to :data:`KEEP_RAW_BYTES`, and otherwise keeps the first :data:`HEAD_ROWS` rows only, so a
    large matrix is not held twice once split. A sparse matrix not kept is taken from ``raw``
    too (``raw.X`` and ``raw.y`` become its first rows, and a second ``prepare`` of it is an
    error) and split one array at a time.
    """
    from sklearn.model_selection import train_test_split

    for name, v in (("val_size", val_size), ("test_size", test_size)):
        if not 0 <= v < 1:
            raise ConfigError(f"The '{name}' parameter must be in [0, 1); got {v!r} instead.")
    if test_raw is not None:
        test_size = 0.0
    if val_size + test_size >= 1:
        raise ConfigError(f"The 'val_size' parameter ({val_size}) and the 'test_size' parameter ({test_size}) leave "
                          f"no rows for training (they add up to {val_size + test_size:g}): lower them.")
    if raw.released:
        raise DataError(f"The rows of {raw.source} were split once already, and their matrix released so that it is "
                        "not held twice; read the data again (tuner.data.load_data) to split it again.")
    if raw.y is None:
        raise DataError(f"{raw.source} has no labels.")
    if len(raw) == 0:
        raise DataError(f"{raw.source} holds no data rows.")
    y, classes = encode_labels(raw.y, raw.line_of)
    _check_split_sizes(y, classes, raw.source, val_size, test_size)
    idx = np.arange(len(y))

    groups = raw.groups
    if groups is not None and len(groups) != len(y):
        raise DataError(f"{raw.source} has {len(y)} rows and {len(groups)} group ids; give one group per row.")

    def split(ix: np.ndarray, frac: float) -> tuple[np.ndarray, np.ndarray]:
        if frac == 0:
            return ix, ix[:0]
        if groups is not None:
            return group_split(ix, frac, y, groups, seed, raw.source)
        try:
            return train_test_split(ix, test_size=frac, random_state=seed, stratify=y[ix])
        except ValueError as exc:
            raise DataError(f"Cannot split the {len(ix)} rows of {raw.source} stratified by class: {exc} Add rows, "
                            "or lower the 'val_size' parameter or the 'test_size' parameter (0 turns a split off).") from None

    if groups is not None:
        _refuse_fewer_groups_than_parts(groups, val_size, test_size, raw.source)
    rest, test_idx = split(idx, test_size)
    train_idx, val_idx = split(rest, val_size / (1 - test_size) if test_size else val_size)
    absent = [classes[c] for c in range(len(classes)) if not np.any(y[train_idx] == c)]
    if absent:
        raise DataError(f"The training split holds no row of class(es) {absent}; use more data or a smaller "
                        "validation/test size.")
    keep = _keeps_raw(raw, keep_raw)
    kept = raw if keep else replace(raw, X=raw.take(np.arange(min(HEAD_ROWS, len(raw)))), y=np.asarray(raw.y)[:HEAD_ROWS])
    X_train, X_val, X_test_rows = _take_splits(raw, [train_idx, val_idx, test_idx], consume=not keep)
    pipe, X_train = FeaturePipeline.fit_transform(X_train, kind=raw.kind, numeric_columns=raw.numeric_columns,
                                                  text_column=raw.text_column, feature_names=raw.feature_names,
                                                  categorical_columns=raw.categorical_columns, copy=False)
    pipe.zero_based = raw.zero_based
    pipe.headerless = raw.headerless
    if raw.class_names:
        pipe.class_names = [raw.class_names.get(c, str(c)) for c in classes]
    notes: list[str] = []
    if test_raw is not None:
        y_test, X_test = _test_file_rows(raw, test_raw, classes, pipe)
        notes = _test_file_notes(test_raw, pipe)
    else:
        y_test, X_test = y[test_idx], pipe.transform(X_test_rows, copy=False)
    X_val = pipe.transform(X_val, copy=False)
    if groups is not None:
        notes += _group_share_notes(len(y), {"validation": (val_size, len(val_idx)), "test": (test_size, len(test_idx))},
                                    len(np.unique(groups)))
    return Dataset(X_train, y[train_idx], X_val, y[val_idx], X_test, y_test, classes, pipe, kept,
                   groups_train=None if groups is None else np.asarray(groups)[train_idx],
                   notes=notes + _one_class_test_note(y_test, classes))


def _group_share_notes(n_rows: int, parts: dict[str, tuple[float, int]], n_groups: int) -> list[str]:
    """Where whole groups left a split more than a quarter off the share asked for (3 groups:
    a third each for validation and test where 0.2 was asked), so its size is not a surprise."""
    notes = []
    for name, (asked, rows) in parts.items():
        got = rows / n_rows
        if asked and abs(got - asked) > asked / 4:
            notes.append(f"the {name} split holds {got:.0%} of the rows ({rows} of {n_rows}), not the {asked:.0%} "
                         f"asked for: a split holds whole groups of the 'group_column' parameter ({n_groups} in "
                         "all here), and these came no nearer")
    return notes


def _one_class_test_note(y_test: np.ndarray, classes: list[Any]) -> list[str]:
    """What test metrics cannot tell: test rows of one class have no ROC AUC."""
    present = np.unique(y_test)
    if len(present) != 1:
        return []
    return [f"the test rows ({len(y_test)}) hold one class ({classes[int(present[0])]!r}): their roc_auc is "
            "undefined (null in JSON), and their f1 scores that class alone"]


def _test_file_notes(test_raw: RawData, pipe: FeaturePipeline) -> list[str]:
    """What a test file holds that the model does not read, as ``tuner predict`` notes it: columns
    it was not trained on, categories the training rows never held."""
    if not isinstance(test_raw.X, pd.DataFrame):
        return []
    notes = []
    unused = pipe.unused_columns(test_raw.X)
    if unused:
        notes.append(f"the test file {test_raw.source} has column(s) {unused} that the training data has not; the "
                     "model ignores them")
    for column, n in pipe.unseen_categories(test_raw.X).items():
        notes.append(f"{n} of the {len(test_raw.X)} test row(s) hold a category of {column!r} that the training rows "
                     "never held; it sets none of that column's features")
    return notes


MAX_GROUP_FOLDS = 20
"""A grouped split holds out ``m`` of ``k <= MAX_GROUP_FOLDS`` stratified group folds, ``m / k`` the
nearest such fraction to the one asked for (0.2: 1 of 5; 0.25: 1 of 4; 0.3: 3 of 10)."""


def _refuse_fewer_groups_than_parts(groups: np.ndarray, val_size: float, test_size: float, source: str) -> None:
    """Whole groups cannot fill more parts than there are groups: with two groups and a test
    share, the test split took one group and the error then spoke of the other as all the rows."""
    parts = [name for name, share in (("training", 1.0), ("validation", val_size), ("test", test_size)) if share]
    n_groups = len(np.unique(groups))
    if n_groups < len(parts):
        raise DataError(f"The {len(groups)} rows of {source} belong to {n_groups} group(s) of the 'group_column' "
                        f"parameter, and each of the {' / '.join(parts)} parts needs whole groups of its own: use "
                        "more groups, or fewer parts (a test file or the 'test_size' parameter 0; the "
                        "'val_size' parameter 0 with cross-validation).")


def group_split(ix: np.ndarray, frac: float, y: np.ndarray, groups: np.ndarray, seed: int,
                source: str = "the data") -> tuple[np.ndarray, np.ndarray]:
    """Rows ``ix`` as (kept, held out), about ``frac`` of them held out, every group whole on one
    side, and the classes as evenly spread as whole groups allow.

    scikit-learn's :class:`~sklearn.model_selection.StratifiedGroupKFold` deals the groups into
    ``k`` folds; the first ``m`` are held out. At most as many folds as groups."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(np.unique(groups[ix]))
    if n_groups < 2:
        raise DataError(f"The {len(ix)} rows of {source} to split belong to {n_groups} group; a split by groups "
                        "needs two or more (the 'group_column' parameter).")
    k, m = min(((k, max(1, min(k - 1, round(frac * k)))) for k in range(2, min(MAX_GROUP_FOLDS, n_groups) + 1)),
               key=lambda km: (abs(km[1] / km[0] - frac), km[0]))
    folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    held = np.zeros(len(ix), dtype=bool)
    with warnings.catch_warnings():  # "the least populated class has fewer members than n_splits": checked below
        warnings.simplefilter("ignore", UserWarning)
        for i, (_, fold) in enumerate(folds.split(np.zeros(len(ix)), y[ix], groups[ix])):
            if i == m:
                break
            held[fold] = True
    return ix[~held], ix[held]


def _test_file_rows(raw: RawData, test_raw: RawData, classes: list[Any], pipe: FeaturePipeline) -> tuple[np.ndarray, Any]:
    """The labels (as class indices) and features of a separate test file, checked against the training data."""
    if raw.kind == "matrix" and test_raw.kind == "matrix" and test_raw.X.shape[1] != raw.X.shape[1]:
        raise DataError(f"Test file {test_raw.source} has {test_raw.X.shape[1]} feature columns; the training "
                        f"data has {raw.X.shape[1]}.")
    if test_raw.y is None:
        raise DataError(f"Test file {test_raw.source} has no labels.")
    lookup = {str(c): i for i, c in enumerate(classes)}
    try:
        y = label_values(test_raw.y, test_raw.line_of)  # compared as the training labels were: 1.0 is the class 1
    except DataError as exc:
        raise DataError(f"Test file {test_raw.source}: {exc}") from None
    unknown = sorted({str(v) for v in y} - set(lookup))
    if unknown:
        raise DataError(f"Test file {test_raw.source} has labels {unknown} not seen in training ({classes}).")
    return np.array([lookup[str(v)] for v in y], dtype=np.int64), pipe.transform(test_raw.X)


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
    head = np.arange(min(HEAD_ROWS, len(raw)))
    raw.X, raw.y, raw.released = raw.take(head), None if raw.y is None else np.asarray(raw.y)[head], True
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
    advice = "add rows, or lower the 'val_size' parameter or the 'test_size' parameter (0 turns that split off)"
    if len(y) < parts * len(classes):
        raise DataError(f"{source} has only {len(y)} rows: too few to split into {names} rows with every class "
                        f"in each (at least {parts * len(classes)} here); {advice}.")
    counts = np.bincount(y, minlength=len(classes))
    if parts > 1 and counts.min() < parts:
        small = int(np.argmin(counts))
        raise DataError(f"Class {classes[small]!r} has only {counts[small]} row(s) in {source}: too few to split "
                        f"stratified into {names} rows (at least {parts} needed); {advice}.")
