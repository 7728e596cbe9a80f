"""Stopping a study cleanly: SIGINT/SIGTERM wait for a safe point (an epoch end, a trial start).

Deferring keeps a signal from landing inside a database write; a second signal while one is
pending interrupts at once, except in a ``critical`` part (registering the best model), which
always runs to its end.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tuner.train import Callback, TrainingState

__all__ = ["Interrupted", "StopRequest", "StopCallback", "deferred_signals"]


class Interrupted(KeyboardInterrupt):
    """The study was stopped by SIGINT or SIGTERM; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """Set by SIGINT/SIGTERM; acted on at the next safe point (see the module docstring)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.critical = False

    def check(self) -> None:
        """Raise :class:`Interrupted` when a signal is pending."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    @property
    def signal_name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name


class StopCallback(Callback):
    """Stops training at an epoch end when a signal is pending."""

    def __init__(self, request: StopRequest) -> None:
        self.request = request

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        self.request.check()


@contextmanager
def deferred_signals(request: StopRequest) -> Iterator[None]:
    """While searching, SIGINT and SIGTERM ask the study to stop at the next safe point
    (only in the main thread, where Python delivers signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if request.signum is not None and not request.critical:
            raise Interrupted(signum)
        request.signum = request.signum or signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
