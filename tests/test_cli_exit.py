"""The ``tuner`` script exits without the interpreter's teardown, yet nothing is lost: the exit
handlers run, buffered output is flushed, and the exit code keeps ``SystemExit``'s meaning."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys, threading
from tuner.cli._main import _exit_now
atexit.register(lambda: print("handler ran", flush=False))
sys.stdout.write("buffered output;")
{extra}
_exit_now({code})
print("never reached")
"""


@pytest.mark.parametrize("code, rc, err", [("None", 0, ""), ("3", 3, ""), ("'a message'", 1, "a message")])
def test_exit_runs_the_handlers_and_flushes(code: str, rc: int, err: str) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(code=code, extra="")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == rc
    assert done.stdout == "buffered output;handler ran\n"
    assert done.stderr.strip() == err


def test_a_live_worker_thread_is_joined_by_the_normal_exit() -> None:
    extra = ("import time\n"
             "threading.Thread(target=lambda: (time.sleep(0.5), print('worker finished')), daemon=False).start()")
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(code="0", extra=extra)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "worker finished" in done.stdout and "handler ran" in done.stdout


@pytest.mark.parametrize("module", ["tuner", "tuner.cli"])
def test_the_package_runs_as_the_tuner_command(module: str) -> None:
    """``python -m tuner`` is the ``tuner`` command, as ``python -m tuner.cli`` is."""
    from tuner import __version__

    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and __version__ in done.stdout, done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-m", module, "plugins", "list"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "lbfgs" in done.stdout, done.stdout + done.stderr
