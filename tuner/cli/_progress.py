"""A study's progress on stderr: a bar on a terminal, a line every N trials otherwise.

While the bar is drawn, everything else written to stderr (MLflow's and Optuna's log records,
warnings, a failed trial's notice) goes through :class:`_BarAwareStream`, which clears the bar
first and draws it again after the line, so that a log line is never glued onto the bar.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

import click

__all__ = ["Progress", "line_every"]

_CLEAR = "\r\033[K"


def line_every(total: int | None) -> int:
    """Trials between two progress lines when stderr is not a terminal (about ten lines a study)."""
    return max(1, (total or 0) // 10)


class _BarAwareStream:
    """Stands for ``sys.stderr`` while the bar is shown: clears the bar before a write, redraws it
    once the line is complete."""

    def __init__(self, real: TextIO, progress: Progress) -> None:
        self.real, self.progress = real, progress

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # a text stream (click probes with bytes)
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
        self.progress.clear()
        n = self.real.write(text)
        if text.endswith("\n"):
            self.progress.redraw()
        return n

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, ...: the real stream's
        return getattr(self.real, name)


class Progress:
    """Called after every trial with ``{"done", "total", "best", "elapsed", "number", "reason"}``.

    ``mode``: ``"bar"`` (one status line redrawn in place; a terminal), ``"lines"`` (one line
    every :func:`line_every` trials and at the end) or ``"off"``. ``metric``: the study's metric,
    or a callable returning it (read once, when the first trial ended: a worker learns it from
    the study). A failed trial gets a line with its reason unless ``quiet``.
    """

    def __init__(self, mode: str, metric: str | Callable[[], str], quiet: bool = False) -> None:
        self.mode, self.quiet = mode, quiet
        self._metric = metric
        self.real: TextIO = sys.stderr
        self._line: str | None = None  # the bar as last drawn
        self._shown = False
        self._stream: _BarAwareStream | None = None
        self._rebound: list[logging.StreamHandler[Any]] = []

    @property
    def metric(self) -> str:
        if callable(self._metric):
            try:
                self._metric = str(self._metric())
            except Exception:  # noqa: BLE001 - a name for a status line is not worth failing for
                self._metric = "value"
        return self._metric

    # ---- the bar owns stderr while it is shown -------------------------------------------
    def __enter__(self) -> Progress:
        if self.mode == "bar":
            self.real = sys.stderr
            self._stream = _BarAwareStream(self.real, self)
            sys.stderr = self._stream
            for handler in _handlers_on(self.real):  # handlers made before now hold the real stream
                handler.setStream(self._stream)
                self._rebound.append(handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Leave the bar on its own line and give stderr back."""
        if self._stream is not None:
            # handlers made while the bar was shown (Optuna's, at its import) hold the wrapper too
            for handler in {*self._rebound, *_handlers_on(self._stream)}:
                handler.setStream(self.real)
            self._rebound.clear()
            if sys.stderr is self._stream:
                sys.stderr = self.real
            self._stream = None
        if self._shown:
            self.real.write("\n")
            self.real.flush()
            self._shown = False
        self._line = None

    def clear(self) -> None:
        if self._shown:
            self.real.write(_CLEAR)
            self._shown = False

    def redraw(self) -> None:
        if self._line is not None and not self._shown:
            self.real.write(self._line)
            self.real.flush()
            self._shown = True

    # ---- one report per trial --------------------------------------------------------------
    def __call__(self, p: dict[str, Any]) -> None:
        if p.get("reason") and not self.quiet:
            click.secho(f"warning: trial #{p['number']} failed: {p['reason']}", fg="yellow", err=True)
        if self.mode == "bar":
            self._line = "\r" + self._bar(p)
            self.clear()
            self.redraw()
        elif self.mode == "lines":
            done, total = p["done"], p["total"]
            if done % line_every(total) == 0 or (total and done >= total):
                click.echo(self._status(p), err=True)

    def _status(self, p: dict[str, Any]) -> str:
        best = "-" if p["best"] is None else f"{p['best']:.5g}"
        mins, secs = divmod(int(p["elapsed"]), 60)
        return f"{p['done']}/{p['total'] or '?'} trials  best {self.metric} {best}  {mins:02d}:{secs:02d}"

    def _bar(self, p: dict[str, Any], width: int = 24) -> str:
        frac = min(p["done"] / p["total"], 1.0) if p["total"] else 0.0
        filled = int(width * frac)
        return f"[{'#' * filled}{'-' * (width - filled)}] {self._status(p)}"


def _handlers_on(stream: Any) -> list[logging.StreamHandler[Any]]:
    """The stream handlers of every logger (root included) that write to ``stream``."""
    loggers: list[Any] = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    out = []
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                out.append(handler)
    return out
