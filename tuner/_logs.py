"""Quieting a library's logger for the span of one call."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_logger"]


@contextmanager
def quiet_logger(name: str, least: int = logging.WARNING) -> Iterator[None]:
    """The logger ``name`` at ``least`` and above while the block runs (a library's INFO line that
    says nothing the user needs, before the one line that does)."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(max(level, least))
    try:
        yield
    finally:
        log.setLevel(level)
