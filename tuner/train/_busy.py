"""How busy other processes keep this machine's processors: the CPU time they took since the
last look, from ``/proc/stat`` (all processes) less ``/proc/self/stat`` (this one, every
thread). The trainer asks before each fit whether its intra-op thread pool pays: on a machine
whose other cores are busy, PyTorch's pool threads wait for cores and an op costs milliseconds
instead of microseconds; on a quiet one two threads train a full-batch solver 1.3-1.6x faster
than one. No torch at import.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

__all__ = ["others_busy", "BUSY_SHARE", "MIN_WINDOW_SECONDS"]

BUSY_SHARE = 0.25
"""Other processes taking at least this share of the machine's processor time count as busy
(on 2 cores: half a core)."""

MIN_WINDOW_SECONDS = 0.5
"""A look shorter than this after the previous one (a few clock ticks of 10 ms) says too little:
the previous verdict stands."""


@dataclass(frozen=True)
class _Sample:
    wall: float
    total: int  # every processor's ticks, busy or idle
    idle: int
    own: int  # this process's user and system ticks


def _sample() -> _Sample | None:
    """The machine's and this process's processor ticks now; None where ``/proc`` has no such files."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        with open("/proc/self/stat", encoding="ascii") as f:
            own_fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] != "cpu" or len(own_fields) < 13:
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal (guest is in user)
    # /proc/self/stat after the command name: state is field 3, utime and stime fields 14 and 15
    own = int(own_fields[11]) + int(own_fields[12])
    return _Sample(time.monotonic(), sum(ticks), ticks[3] + ticks[4], own)


class _Watcher:
    """The previous sample and verdict, shared by the process's fits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = _sample()
        self._busy = False

    def others_share(self) -> float | None:
        """The share of the machine's processor time that other processes took since the previous
        look (which this one replaces); None when that window is too short or unknown."""
        with self._lock:
            now, last = _sample(), self._last
            if now is None or last is None or now.wall - last.wall < MIN_WINDOW_SECONDS or now.total <= last.total:
                return None
            self._last = now
            d_total = now.total - last.total
            others = (d_total - (now.idle - last.idle)) - (now.own - last.own)
            return max(0.0, others / d_total)

    def others_busy(self) -> bool:
        share = self.others_share()
        if share is not None:
            self._busy = share >= BUSY_SHARE
        return self._busy


_WATCHER = _Watcher()  # its first sample is taken at import (with tuner.train): the first fit compares with that


def others_busy() -> bool:
    """Whether other processes took at least :data:`BUSY_SHARE` of the machine's processor time
    since the previous call (or since this module was imported). False where ``/proc`` is missing
    (not Linux): the thread pool then stays as PyTorch set it."""
    return _WATCHER.others_busy()
