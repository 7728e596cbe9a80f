"""Reading data sets: from a file or folder in any format of :data:`tuner.data.FORMATS`, or
scikit-learn's bundled sets by name; rows to predict on; where a study's data file lives.
Splitting is :mod:`tuner.data._split`; each format's reader is in :mod:`tuner.data._readers`.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tuner.data._compression import READ_ERRORS, cannot_read, data_suffix
from tuner.data._features import BY_POSITION, LABELS_DROPPED, LINE_OF, FeaturePipeline, is_number
from tuner.data._formats import FORMAT_CHOICES, FORMATS, TABLE_FORMATS, sniff
from tuner.data._readers import (
    BUILTIN_DATASETS,
    DataLines,
    RawData,
    ReadOptions,
    base_name,
    fingerprint,
    first_row,
    read_builtin,
    read_table_frame,
    read_text,
    text_lines,
)
from tuner.data._split import HEAD_ROWS, KEEP_RAW_BYTES, Dataset, encode_labels, prepare
from tuner.errors import ConfigError, DataError

__all__ = ["RawData", "Dataset", "load_data", "load_test_file", "load_rows", "prepare", "encode_labels", "BUILTIN_DATASETS",
           "DATA_ROOT_ENV", "portable_path", "locate", "file_fingerprint", "HEAD_ROWS", "KEEP_RAW_BYTES"]

DATA_ROOT_ENV = "TUNER_DATA_ROOT"


def file_fingerprint(path: str | Path, *, fmt: str = "auto", target: str | None = None,
                     text_column: str | None = None, encoding: str = "utf-8",
                     categorical_columns: Sequence[str] | None = None, header: bool | None = None,
                     legacy: bool = False) -> str:
    """What :attr:`RawData.fingerprint` of ``load_data(path, ...)`` will be, without parsing the file
    (the group column is not part of it: a study's spec records it beside the fingerprint);
    ``legacy``: the fingerprint older studies stored (see :func:`fingerprint`)."""
    _check_encoding(encoding)
    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {p} does not exist.")
    # without categorical columns and with a header, as before either option existed
    chosen = [*([tuple(sorted(categorical_columns))] if categorical_columns else []),
              *(["no header"] if header is False else [])]
    fmt = sniff(p, encoding, delimited=header is False) if fmt == "auto" else fmt
    return fingerprint(p, fmt, target, text_column, encoding, *chosen, legacy=legacy)


def _check_encoding(encoding: str) -> None:
    """A clear error for a text encoding Python does not know (open() raised a LookupError traceback)."""
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise ConfigError(f"Unknown encoding {encoding!r} (the 'encoding' parameter): give a name Python knows, e.g. "
                          "utf-8 or latin-1.") from None


BINARY_FORMATS = ("npz", "parquet", "builtin")
"""Formats that hold no text to decode (the 'encoding' parameter does not apply to them)."""


def _check_encoding_applies(fmt: str, source: str, encoding: str) -> None:
    """A text encoding other than the default, given for data that holds no text to decode, is an error."""
    if fmt in BINARY_FORMATS and codecs.lookup(encoding).name != "utf-8":
        raise ConfigError(f"A text encoding (the 'encoding' parameter) does not apply to {source}, read as {fmt}: "
                          "it holds no text to decode; leave the encoding out.")


def _check_options(fmt: str, source: str, target: str | None, text_column: str | None, n_features: int | None,
                   zero_based: bool | None, categorical_columns: Sequence[str] | None = None,
                   header: bool | None = None, group_column: str | None = None) -> None:
    """Options that do not apply to the format are an error, never silently ignored."""
    if header is not None and fmt not in ("csv", "tsv"):
        raise ConfigError(f"Whether a file's first line names its columns (--header/--no-header; the 'header' "
                          f"parameter) applies to CSV and TSV files; {source} is read as {fmt}.")
    given = []
    if fmt not in TABLE_FORMATS:
        given += [f"the '{name}' parameter" for name, v in (("target", target), ("text_column", text_column),
                                                            ("categorical_columns", categorical_columns or None),
                                                            ("group_column", group_column))
                  if v is not None]
    if fmt != "svmlight":
        given += [f"the '{name}' parameter" for name, v in (("n_features", n_features), ("zero_based", zero_based))
                  if v is not None]
    if given:
        raise ConfigError(f"{' and '.join(given)} do(es) not apply to {source} (read as {fmt}): the 'target' "
                          "parameter, the 'text_column' parameter, the 'categorical_columns' parameter and the "
                          "'group_column' parameter name columns of CSV/TSV/Parquet tables, the "
                          "'n_features' parameter and the 'zero_based' parameter size and index LIBSVM files.")


def load_data(path: str | Path | None = None, *, dataset: str | None = None, target: str | None = None,
              text_column: str | None = None, encoding: str = "utf-8", fmt: str = "auto",
              n_features: int | None = None, require_target: bool = True,
              zero_based: bool | None = None, categorical_columns: Sequence[str] | None = None,
              header: bool | None = None, group_column: str | None = None, require_group: bool = True) -> RawData:
    """Read a data set from a file, a folder, or scikit-learn's bundled sets (``dataset=``).

    ``categorical_columns`` names a table's columns of categories, one-hot encoded by the
    feature pipeline. ``header=False``: a CSV/TSV's first line is data, and its columns are named
    ``"0"``, ``"1"``, ... by position; None: it names the columns, and one of numbers only is
    refused as a likely row of data; True: it names them, whatever it holds.

    ``group_column`` names a table's column of row groups (a user, a patient, a sentence): it is
    no feature, and :func:`prepare` keeps each group's rows on one side of every split
    (:attr:`RawData.groups`); ``require_group=False`` accepts a table without it (a test file).

    ``zero_based`` says whether LIBSVM feature indices start at 0; ``None`` decides from the
    file (zero-based when it holds an index 0) and :attr:`RawData.zero_based` records it,
    so that every later file (test file, prediction rows) is read the same way.
    """
    if (path is None) == (dataset is None):
        raise ConfigError("Give either a data file or the 'dataset' parameter (not both).")
    if dataset is not None:
        _check_options("builtin", f"the bundled dataset {dataset!r}", target, text_column, n_features, zero_based,
                       categorical_columns, header, group_column)
        _check_encoding(encoding)
        _check_encoding_applies("builtin", f"the bundled dataset {dataset!r}", encoding)
        if fmt != "auto":
            raise ConfigError(f"A file format (the 'format' parameter, {fmt!r}) does not apply to the bundled dataset "
                              f"{dataset!r}; leave it out.")
        return read_builtin(dataset)
    assert path is not None  # exactly one of path and dataset is given
    _check_encoding(encoding)
    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {p} does not exist.")
    if fmt not in FORMAT_CHOICES:
        raise ConfigError(f"The 'format' parameter must be one of {list(FORMAT_CHOICES)}; got {fmt!r} instead.")
    fmt = sniff(p, encoding, delimited=header is False) if fmt == "auto" else fmt
    _check_options(fmt, str(p), target, text_column, n_features, zero_based, categorical_columns, header, group_column)
    _check_encoding_applies(fmt, str(p), encoding)
    fp = file_fingerprint(p, fmt=fmt, target=target, text_column=text_column, encoding=encoding,
                          categorical_columns=categorical_columns, header=header)
    opts = ReadOptions(fmt=fmt, fingerprint=fp, encoding=encoding, target=target, text_column=text_column,
                       n_features=n_features, zero_based=zero_based, require_target=require_target,
                       categorical=tuple(categorical_columns or ()), header=header is not False,
                       trust_header=header is True, group=group_column, require_group=require_group)
    try:
        return FORMATS[fmt].reader(p, opts)
    except UnicodeDecodeError as exc:
        raise DataError(f"Cannot decode {p} as {encoding}: {exc.reason}; pass the right one (the 'encoding' parameter, e.g. latin-1).") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise DataError(f"Cannot parse {p} as {fmt}: {exc}") from None
    except READ_ERRORS as exc:  # a damaged compressed file as well
        raise cannot_read(p, exc) from None


def load_test_file(path: str | Path, train: RawData, *, target: str | None = None, text_column: str | None = None,
                   encoding: str = "utf-8", fmt: str = "auto", n_features: int | None = None,
                   categorical_columns: Sequence[str] | None = None, header: bool | None = None,
                   group_column: str | None = None) -> RawData:
    """A separate labelled test file for the training data ``train``: a LIBSVM one is read with
    the training width (``n_features``, else a LIBSVM training file's) and index base; a file of
    another format takes neither (they were passed whatever its format, and refused as options
    the user had not given). A table may hold the training data's group column or not: it is
    dropped, never read as a feature (a test file is not split)."""
    p = Path(path)
    test_fmt = sniff(p, encoding, delimited=header is False) if fmt == "auto" and p.exists() else fmt
    if test_fmt in BINARY_FORMATS:  # the training data's encoding is not the test file's business
        encoding = "utf-8"
    if test_fmt != "svmlight":
        return load_data(p, target=target, text_column=text_column, encoding=encoding, fmt=fmt,
                         categorical_columns=categorical_columns,
                         header=header if test_fmt in ("csv", "tsv") else None,
                         group_column=group_column if test_fmt in TABLE_FORMATS else None, require_group=False)
    if train.fmt != "svmlight" and train.kind == "matrix":  # an .npz, a bundled set: the test file shows its base
        width = train.X.shape[1]
        raw = load_data(p, target=target, text_column=text_column, encoding=encoding, fmt=fmt, n_features=width)
        if not (raw.zero_based or (raw.X.nnz > 0 and int(raw.X.indices.max()) == width - 1)):  # index 0 or `width`
            raise DataError(f"The training data is not a LIBSVM file, so the index base of the test file {p} is "
                            f"unknown, and the file does not show it (no index 0, none equal to the {width} training "
                            "features): write it in the training data's format, or train on LIBSVM too.")
        return raw
    width = n_features or (train.X.shape[1] if train.fmt == "svmlight" else None)
    return load_data(p, target=target, text_column=text_column, encoding=encoding, fmt=fmt, n_features=width,
                     zero_based=train.zero_based)


def load_rows(path: str | Path, pipeline: FeaturePipeline, *, encoding: str = "utf-8", fmt: str = "auto",
              target: str | None = None, classes: Sequence[Any] | None = None, zero_based: bool | None = None,
              header: bool | None = None) -> Any:
    """Read rows to predict on, in the shape the model's pipeline expects (labels optional).

    A table keeps its header's names (the pipeline matches columns by name); a CSV/TSV whose
    first row is all numbers has no header and is read as such, no row lost. For a model
    trained on a file without a header, a CSV/TSV has none either, and a first row that could
    be its column positions is an error (:func:`_has_header`); ``header`` True or False says
    which, whatever the model. A LIBSVM file
    is read with the model's index base and width; for a model not trained on LIBSVM (no
    stored base), with ``zero_based``, or with the base the file proves (an index 0, or an
    index equal to the model's width), and refused when it proves neither. For a text model, a file of no table,
    archive or LIBSVM suffix holds one text per line, unless every line starts with one of
    the model's ``classes`` (``'<label> <text>'`` lines, as SST's: the labels are dropped).
    """
    _check_encoding(encoding)
    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {p} does not exist.")
    text_only = (pipeline.kind == "table" and pipeline.text_column is not None and not pipeline.numeric_columns
                 and not pipeline.categorical_columns)
    if p.is_dir() and not text_only:  # read as a folder of class files, it failed on whatever file came first
        raise DataError(f"{p} is a folder; this model reads rows of numbers: give the file of rows to predict "
                        "(CSV/TSV/Parquet, LIBSVM, .npz).")
    if text_only:
        assert pipeline.text_column is not None  # text_only says so
        if fmt == "auto" and not p.is_dir() and not any(data_suffix(p) in f.suffixes for f in FORMATS.values()):
            if target is not None:
                raise DataError(_TARGET_NOT_A_COLUMN.format(target=target, p=p, fmt="text lines"))
            lines = text_lines(read_text(p, encoding))
            while lines and not lines[-1].strip():  # after the last text: no text (blank lines between texts are)
                lines.pop()
            filled = [ln for ln in lines if ln.strip()]
            labels = {str(c) for c in classes or ()}
            if data_suffix(p) in (".txt", "") or not labels or \
                    not all(ln.split(None, 1)[0] in labels for ln in filled):
                # every line, blank ones too (an empty text): prediction i is line i's
                return pd.DataFrame({pipeline.text_column: lines})
            return _labeltext_rows(lines, pipeline.text_column, dropped=True)
        if fmt == "labeltext":
            if target is not None:
                raise DataError(_TARGET_NOT_A_COLUMN.format(target=target, p=p, fmt=fmt))
            lines = text_lines(read_text(p, encoding))
            _check_labels_lead(p, lines, {str(c) for c in classes or ()})
            return _labeltext_rows(lines, pipeline.text_column)
    if fmt == "auto":
        fmt = sniff(p, encoding, delimited=header is False or (header is None and pipeline.headerless))
    if zero_based is not None and fmt != "svmlight":
        raise DataError(f"An index base (--zero-based/--one-based) applies to LIBSVM files; {p} is read as {fmt}.")
    if header is not None and fmt not in ("csv", "tsv"):
        raise DataError(f"--header/--no-header applies to CSV/TSV files; {p} is read as {fmt}.")
    if fmt in TABLE_FORMATS:
        try:
            if header is None:
                header = fmt == "parquet" or _has_header(p, fmt, encoding, pipeline)
            frame = read_table_frame(p, fmt, encoding, header=header, as_text=_text_columns(p, fmt, encoding, pipeline,
                                                                                             header))
        except UnicodeDecodeError as exc:
            raise DataError(f"Cannot decode {p} as {encoding}: {exc.reason}; pass the right one (the 'encoding' parameter).") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
            raise DataError(f"Cannot parse {p} as {fmt}: {exc}") from None
        if len(frame) == 0:
            raise DataError(f"{p} has a header and no data rows; give a file with the rows to predict.")
        if fmt == "parquet":
            frame.columns = [str(c) for c in frame.columns]
        if header and _numbered(frame.columns) and not set(frame.columns) & set(pipeline.input_columns):
            frame.columns = list(range(frame.shape[1]))  # pandas' names for unnamed columns: by position
        if target is not None:
            key = _target_key(frame, target, header, pipeline)
            _check_target_column(p, frame, key, header)
            _check_target_is_no_feature(key, pipeline)
            frame = frame.drop(columns=[key])
        if not header:  # its columns are positions, even for a model whose columns are named 0, 1, ...
            frame.attrs[BY_POSITION] = True
        if fmt != "parquet":
            frame.attrs[LINE_OF] = DataLines(p, fmt, encoding, header)
        return frame
    if target is not None:
        raise DataError(_TARGET_NOT_A_COLUMN.format(target=target, p=p, fmt=fmt))
    if fmt == "svmlight":
        return _svmlight_rows(p, pipeline, zero_based, encoding)
    return load_data(p, encoding=encoding, fmt=fmt, require_target=False).X


_TARGET_NOT_A_COLUMN = ("The target column {target!r} (--target) names a column of a CSV/TSV/Parquet table; {p} "
                       "is read as {fmt}, which has no named columns: drop --target.")


def _text_columns(p: Path, fmt: str, encoding: str, pipeline: FeaturePipeline, header: bool) -> list[str]:
    """The columns of the rows in ``p`` to read as text: the categorical ones, by name, or without
    a header by position. Rows for a model trained by position that are as wide as its inputs
    left the label out, so their positions are the training file's less the label's."""
    names = list(pipeline.categorical_columns)
    if header or not pipeline.headerless or not names:
        return names
    if fmt != "parquet" and len(first_row(p, fmt, encoding)) == len(pipeline.input_columns):
        order = sorted(pipeline.input_columns, key=int)
        return [str(order.index(c)) for c in names]
    return names


def _target_key(frame: pd.DataFrame, target: str, header: bool, pipeline: FeaturePipeline) -> Any:
    """The column ``target`` names: for a model trained on a file without a header, rows without
    one (columns numbered by position) have ``"41"`` at position 41. A model trained on named
    columns names its label, which rows without a header do not say where it is."""
    positional = not header or all(isinstance(c, int) for c in frame.columns)
    return int(target) if pipeline.headerless and positional and target.isdigit() else target


def _check_target_column(p: Path, frame: pd.DataFrame, target: Any, header: bool) -> None:
    """Refuse a target column that the rows to predict do not have (it was ignored: a misspelt
    name went unnoticed)."""
    if target in frame.columns:
        return
    if isinstance(target, int):
        raise DataError(f"The target column {target} (--target) is not in {p}: its rows have no header and "
                        f"{frame.shape[1]} columns, numbered 0 to {frame.shape[1] - 1}.")
    if not header or all(isinstance(c, int) for c in frame.columns):
        raise DataError(f"The target column {target!r} (--target) is not in {p}: the file has no header, so no "
                        "column has a name; drop --target, or give the file a header.")
    import difflib

    names = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(target, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DataError(f"The target column {target!r} (--target) is not in {p}.{hint} Columns: {names}.")


def _check_target_is_no_feature(target: Any, pipeline: FeaturePipeline) -> None:
    """Refuse a ``--target`` that names a column the model reads: dropping it left the model one
    column short, and rows without a header were then read shifted (predictions of the wrong
    columns, exit 0)."""
    if str(target) not in pipeline.input_columns:
        return
    positions = sorted(pipeline.input_columns, key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c))
    where = (f"column {target} of rows without a header, which the model reads as a feature (it was trained on "
             f"columns {', '.join(positions)})" if pipeline.headerless else
             f"the column {target!r}, which the model reads as a feature")
    raise DataError(f"--target names {where}; give the label's column, or drop --target if the rows have no label.")


def _check_labels_lead(p: Path, lines: list[str], labels: set[str]) -> None:
    """Refuse ``--format labeltext`` lines that do not start with one of the model's classes: the
    first word was dropped as a label whatever it was, and the rest predicted (exit 0)."""
    if not labels:
        return
    for number, line in enumerate(lines, start=1):
        words = line.split(None, 1)
        if words and words[0] not in labels:
            raise DataError(f"Line {number} of {p} does not start with one of the model's classes "
                            f"({', '.join(sorted(labels))}), as --format labeltext reads '<label> <text>' lines; "
                            "drop --format to predict lines of text alone.")


def _labeltext_rows(lines: list[str], text_column: str, dropped: bool = False) -> pd.DataFrame:
    """The texts of ``'<label> <text>'`` lines under the training table's name for its text, one
    a line up to the last text: a blank line between texts is an empty text, so that prediction
    i is line i's (skipping it would shift every later prediction by a line). ``dropped``: the
    format was told from the lines (each starts with a class), which the frame's
    ``attrs[LABELS_DROPPED]`` says, for a note."""
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    texts = [parts[1] if len(parts) > 1 else "" for parts in (ln.strip().split(None, 1) for ln in lines)]
    frame = pd.DataFrame({text_column: texts})
    if dropped:
        frame.attrs[LABELS_DROPPED] = True
    return frame


def _svmlight_rows(p: Path, pipeline: FeaturePipeline, given: bool | None, encoding: str) -> Any:
    """LIBSVM rows for ``pipeline``, read once with the training file's index base, else the one
    given, else the one the file proves. Never a guess: a zero-based file without index 0 read as
    one-based would shift every feature by one column. A model trained on a numeric table gets
    the rows as a table of numbered columns, read by position (as a CSV without a header)."""
    if pipeline.kind == "table" and pipeline.text_column is not None:
        raise DataError(f"{p} is a LIBSVM file of numbers, but the model reads text (the column "
                        f"{pipeline.text_column!r}): give the texts, one a line, or a table with that column.")
    stored, width = pipeline.zero_based, pipeline.n_input_features or len(pipeline.input_columns)
    if stored is not None and given is not None and given != stored:
        raise DataError(f"The model was trained on LIBSVM indices read {base_name(stored)}; {p} cannot be read "
                        f"{base_name(given)}: drop the option or rewrite the file.")
    base = stored if stored is not None else given
    raw = load_data(p, encoding=encoding, fmt="svmlight", n_features=width, zero_based=base, require_target=False)
    proven = bool(raw.zero_based) or (raw.X.nnz > 0 and int(raw.X.indices.max()) == width - 1)  # index 0 or `width`
    if base is None and not proven:
        raise DataError(f"The model was not trained on a LIBSVM file, so the index base of {p} is unknown, and the "
                        f"file does not show it (no index 0, none equal to the model's {width} features); say "
                        "which base the file uses (the 'zero_based' parameter).")
    return raw.X if pipeline.kind == "matrix" else pd.DataFrame(raw.X.toarray())


def _has_header(p: Path, fmt: str, encoding: str, pipeline: FeaturePipeline) -> bool:
    """Whether the first row of a CSV/TSV names columns: it does unless every cell is a number,
    except 0, 1, ..., n-1 (:func:`_numbered`). For a model trained by position it does not, and
    distinct positions that include all the model's are an error: its column names, or a row of
    small integers (``1,0``)? Only the user can tell."""
    first = first_row(p, fmt, encoding)
    if pipeline.headerless or all(c.isdigit() for c in pipeline.input_columns):
        # its columns are positions, or named by numbers (pandas' 0, 1, ... written as a header): a row of
        # small integers reads like their names, and taken as a header it would be lost and reorder the rest
        cells = [c.strip() for c in first]
        if first and len(set(cells)) == len(cells) and all(c.isdigit() for c in cells) \
                and set(pipeline.input_columns) <= set(cells):
            what = "positions" if pipeline.headerless else "names"
            raise DataError(f"The first line of {p} reads {', '.join(cells[:4])}{', ...' if len(cells) > 4 else ''}: "
                            f"the model's column {what}, or a row of data? Say which: --header or --no-header "
                            "(header=True or False).")
        if pipeline.headerless:
            if cells and pipeline.numeric_columns and not any(is_number(c) for c in cells):
                # no cell a number where the model reads numbers: no row of data, most likely a header
                raise DataError(f"The first line of {p} reads {', '.join(cells[:4])}{', ...' if len(cells) > 4 else ''}"
                                ", like a header; this model was trained on rows without one and reads its columns "
                                "by position: remove that line.")
            return False
    if not first or {c.strip() for c in first} & set(pipeline.input_columns) or _numbered(first):
        return True
    if not all(is_number(c) for c in first if c.strip()) or not any(c.strip() for c in first):
        return True  # an empty cell among numbers is a missing value in a row of data, not a nameless column
    if len(first) >= 3 and [c.strip() for c in first] == [str(i) for i in range(1, len(first) + 1)]:
        # columns numbered from 1, or a row of data? Either reading loses or adds a row unseen
        raise DataError(f"The first row of {p} reads 1, 2, ..., {len(first)}: column numbers or a row of data? "
                        f"Give the file a header of the training columns ({', '.join(pipeline.input_columns[:3])}, "
                        "...), or pandas' 0, 1, ..., n-1.")
    return False


def _numbered(names: Any) -> bool:
    """Names 0, 1, ..., n-1 for n >= 3: the header pandas writes for unnamed columns
    (``DataFrame(array).to_csv(index=False)``), not a row of data."""
    names = [str(n).strip() for n in names]
    return len(names) >= 3 and names == [str(i) for i in range(len(names))]


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
    listed = "; ".join(f"{c} ({why})" for i, (c, why) in enumerate(tried)
                       if all(c.resolve() != earlier.resolve() for earlier, _ in tried[:i]))  # each path once
    hint = (f"set {DATA_ROOT_ENV} to the folder that holds {relative} on this machine" if relative and not root
            else "make the file available at one of these paths" + (f" or change {DATA_ROOT_ENV}" if root else ""))
    raise DataError(f"Cannot find the study's {what}; tried {listed}. {hint[0].upper()}{hint[1:]}.")
