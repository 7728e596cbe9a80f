"""How many threads a fit uses: one on small steps or a busy machine, PyTorch's pool otherwise.

The busy check reads the real processor counters: another process spinning on a core is seen,
this process's own work is not.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from tuner._registry import optimizers
from tuner.train import TrainConfig, _busy, _sizing

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc")

SPIN = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass"


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_another_process_spinning_makes_the_machine_busy() -> None:
    watcher = _busy._Watcher()
    spinner = subprocess.Popen([sys.executable, "-c", SPIN.format(s=3)])
    try:
        time.sleep(1.5)
        assert watcher.others_busy() is True
    finally:
        spinner.kill()
        spinner.wait()


def test_this_process_own_work_is_not_counted() -> None:
    watcher = _busy._Watcher()
    _spin(1.0)  # a core's worth of this process's own work
    while_spinning = watcher.others_share()
    time.sleep(1.0)
    while_idle = watcher.others_share()
    assert while_spinning is not None and while_idle is not None
    # counted, the spin would add a whole core (1 / cores of the machine's time) to the share
    assert while_spinning < while_idle + 0.2


def test_a_short_window_keeps_the_previous_verdict() -> None:
    watcher = _busy._Watcher()
    watcher._busy = True
    assert watcher.others_share() is None  # asked again at once: too short a window to judge
    assert watcher.others_busy() is True


def test_one_thread_on_small_steps_or_a_busy_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sizing, "others_busy", lambda: False)
    small = sp.random(1000, 50, density=0.1, format="csr", random_state=0)  # 5,000 values
    big = sp.random(20000, 1000, density=0.05, format="csr", random_state=0)  # 1,000,000 values
    fista, sgd = optimizers.get("fista"), optimizers.get("sgd")
    config = TrainConfig()
    assert _sizing.one_thread_pays(small, 1, fista, config)
    assert not _sizing.one_thread_pays(big, 1, fista, config)
    assert _sizing.one_thread_pays(big, 1, sgd, config)  # a 256-row step reads ~12,800 values
    assert _sizing.one_thread_pays(np.zeros((20, 5)), 4, fista, config)
    monkeypatch.setattr(_sizing, "others_busy", lambda: True)
    assert _sizing.one_thread_pays(big, 1, fista, config)
