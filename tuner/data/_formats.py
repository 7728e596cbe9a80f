"""The data formats: the one list of what the loaders read (name, file suffixes, reader).

The CLI's ``--format`` choices and help, the study spec's check and :func:`tuner.data.load_data`
all read :data:`FORMATS`; a new format is one entry here and its reader in
:mod:`tuner.data._readers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tuner.data._compression import READ_ERRORS, cannot_read, data_suffix, open_text
from tuner.data._readers import (
    RawData,
    ReadOptions,
    read_classfiles,
    read_labeltext,
    read_npz,
    read_svmlight,
    read_table,
)
from tuner.errors import DataError

__all__ = ["DataFormat", "FORMATS", "FORMAT_CHOICES", "TABLE_FORMATS", "sniff", "formats_help"]

_SVM_LINE = re.compile(r"^\s*[-+]?[\d.eE+-]+(\s+(qid:\S+|\d+:\S+))*\s*(#.*)?$")
_SVM_PAIR = re.compile(r"\s\d+:\S")
_NUMBERS_LINE = re.compile(r"^\s*\S+(\s+[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)+\s*$")  # a label, then numbers only


@dataclass(frozen=True)
class DataFormat:
    """A format the loaders read.

    ``suffixes``: file suffixes read as this format when none is given (``"auto"``); ``columns``:
    whether the data has named columns (``target``/``text_column`` apply); ``summary``: one line
    for help texts; ``reader``: path and options in, :class:`RawData` out."""

    name: str
    suffixes: tuple[str, ...]
    columns: bool
    summary: str
    reader: Callable[[Path, ReadOptions], RawData]


FORMATS: dict[str, DataFormat] = {f.name: f for f in (
    DataFormat("csv", (".csv",), True, "comma-separated table with a header; the target names the label column",
               read_table),
    DataFormat("tsv", (".tsv",), True, "tab-separated table with a header", read_table),
    DataFormat("parquet", (".parquet", ".pq"), True, "Parquet table (needs pyarrow)", read_table),
    DataFormat("npz", (".npz",), False, "NumPy archive with arrays X and y (a sparse X as X_data, X_indices, "
               "X_indptr, X_shape)", read_npz),
    DataFormat("svmlight", (".svm", ".libsvm", ".svmlight"), False, "LIBSVM/svmlight lines '<label> <index>:<value> ...'",
               read_svmlight),
    DataFormat("classfiles", (), False, "a folder of one text file per class, STEM.CLASS (the class is the suffix)",
               read_classfiles),
    DataFormat("labeltext", (), False, "'<label> <text>' lines (the SST layout)", read_labeltext),
)}
"""Every format by name, in the order help texts list them."""

FORMAT_CHOICES: tuple[str, ...] = ("auto", *FORMATS)
"""What a ``format`` option accepts: ``"auto"`` (decided from the path) or a format's name."""

TABLE_FORMATS: tuple[str, ...] = tuple(name for name, f in FORMATS.items() if f.columns)
"""The formats with named columns."""


def formats_help() -> str:
    """One line per format, for a ``--format`` help text."""
    return "; ".join(f"{f.name}: {f.summary}" for f in FORMATS.values())


def _tab_table_with_header(lines: list[str]) -> bool:
    """Whether the first lines are a TSV whose first line names its columns: every line has the
    same tabs, and the first line's first cell is none of the labels the other lines repeat. Read
    as ``<label> <text>`` lines, that header would be a class of one row (``label``)."""
    if len(lines) < 3 or "\t" not in lines[0]:
        return False
    cells = [ln.rstrip("\r\n").split("\t") for ln in lines]
    if len({len(c) for c in cells}) != 1:
        return False
    firsts = [c[0].strip() for c in cells[1:]]
    return cells[0][0].strip() not in firsts and len(set(firsts)) <= len(firsts) // 2


def sniff(path: Path, encoding: str, delimited: bool = False) -> str:
    """The format of ``path``: a folder is ``classfiles``; else by suffix; else by its first lines.

    ``delimited``: the file is known to be a CSV or TSV (one read without a header, such as
    kddcup99's ``kddcup.data_10_percent.gz``): without a suffix saying which, a tab in its first
    line makes it TSV, else CSV.
    """
    if path.is_dir():
        return "classfiles"
    suffix = data_suffix(path)
    for f in FORMATS.values():
        if suffix in f.suffixes:
            return f.name
    try:
        with open_text(path, encoding, errors="replace") as fh:
            lines = [ln for ln in (fh.readline() for _ in range(20)) if ln.strip()]
    except READ_ERRORS as exc:
        raise cannot_read(path, exc) from None
    if lines:
        lines[0] = lines[0].lstrip("\ufeff")  # a byte-order mark is no part of the first label
    if delimited:
        return "tsv" if lines and "\t" in lines[0] else "csv"
    # a line without features ("0": every value zero) is valid LIBSVM, as long as another line has some
    if lines and all(_SVM_LINE.match(ln) for ln in lines) and any(_SVM_PAIR.search(ln) for ln in lines):
        return "svmlight"
    if lines and all(_NUMBERS_LINE.match(ln) for ln in lines):
        raise DataError(f"The lines of {path} are numbers separated by spaces, which this tool does not read as a "
                        "table (read as '<label> <text>' lines, the numbers would be words): write it as a CSV/TSV "
                        "with a header naming the columns, or as LIBSVM; --format labeltext reads the numbers as "
                        "words if that is meant.")
    if _tab_table_with_header(lines):
        return "tsv"
    if lines and all(re.match(r"^\S+\s+\S", ln) for ln in lines):
        return "labeltext"
    raise DataError(f"Cannot tell the format of {path}; give the 'fmt' parameter (one of {', '.join(FORMATS)}).")
