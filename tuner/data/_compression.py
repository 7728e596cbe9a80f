"""Compressed data files: ``data.csv.gz``, ``a9a.bz2``, ``reviews.tsv.xz`` are read as what they hold.

Every reader opens its file through :func:`open_binary` / :func:`open_text`, so that a header
check, a format sniff or a line search sees the same bytes as the parser (pandas alone would
decompress a ``.gz`` by its suffix while a check read the compressed bytes). The format of a
compressed file is told by the suffix before the compression's (:func:`data_suffix`).
Archives of several files (``.zip``, ``.tar``) and compressions the standard library does not
read are refused in one line.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from pathlib import Path
from typing import IO, Literal, cast

from tuner.errors import DataError

__all__ = ["COMPRESSIONS", "compression_of", "data_suffix", "open_binary", "open_text", "READ_ERRORS", "cannot_read"]

Compression = Literal["gzip", "bz2", "xz"]

COMPRESSIONS: dict[str, Compression] = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
"""File suffix -> compression (pandas' name for it), read transparently."""

_REFUSED = {".zip": "a zip archive", ".tar": "a tar archive", ".tgz": "a tar archive", ".zst": "zstandard",
            ".lz4": "lz4", ".7z": "a 7-Zip archive", ".rar": "a RAR archive", ".z": "compress (.Z)"}

READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError)
"""What reading a damaged compressed file raises (gzip.BadGzipFile is an OSError; a truncated
stream is an EOFError)."""


def cannot_read(path: Path, exc: BaseException) -> DataError:
    """The one-line error for one of :data:`READ_ERRORS` while reading ``path``."""
    return DataError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}.")


def compression_of(path: Path) -> Compression | None:
    """The compression of ``path`` by its suffix (None: a plain file); one this tool cannot read
    is a :class:`DataError`."""
    suffix = path.suffix.lower()
    if suffix in _REFUSED and not path.is_dir():
        raise DataError(f"{path} is {_REFUSED[suffix]}; unpack it first (compressed files read as they are: "
                        f"{', '.join(COMPRESSIONS)}).")
    return COMPRESSIONS.get(suffix)


def data_suffix(path: Path) -> str:
    """The suffix that tells the format, lower-case: ``.csv`` for ``data.CSV.gz``."""
    suffix = path.suffix.lower()
    return Path(path.stem).suffix.lower() if suffix in COMPRESSIONS else suffix


def open_binary(path: Path) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed."""
    kind = compression_of(path)
    if kind == "gzip":
        return cast("IO[bytes]", gzip.open(path, "rb"))
    if kind == "bz2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    return path.open("rb")


def open_text(path: Path, encoding: str, *, newline: str | None = None, errors: str = "strict") -> IO[str]:
    """``path`` opened for reading text, decompressed."""
    if compression_of(path) is None:
        return path.open("r", encoding=encoding, newline=newline, errors=errors)
    return io.TextIOWrapper(open_binary(path), encoding=encoding, newline=newline, errors=errors)
