"""The README's walkthrough runs: its commands, read from README.md, in a fresh folder.

The block between ``<!-- walkthrough ... -->`` and ``<!-- /walkthrough -->`` is run command by
command with two substitutions: the data folder (``../shared/data``) becomes the test data
folder, and the trial budget becomes ``WALKTHROUGH_TRIALS`` (default 2, to keep it short).
``tuner ui`` serves until Ctrl-C: it is started (on a free port), checked to print the study's
link, and stopped (``tests/test_ui_commands.py`` checks that it answers HTTP).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _mlflow_fixtures import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"<!-- walkthrough\b[^>]*-->\s*```bash\n(.*?)```\s*<!-- /walkthrough -->", re.S)


def walkthrough_commands(readme: str) -> list[str]:
    """The walkthrough's commands, continuation lines joined."""
    found = _BLOCK.findall(readme)
    assert len(found) == 1, "README.md must hold exactly one marked walkthrough block"
    text = found[0].replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_walkthrough_block_is_what_a_new_user_runs() -> None:
    commands = walkthrough_commands((ROOT / "README.md").read_text())
    starts = ("tuner tune ", "tuner study show ", "tuner ui ", "printf ", "tuner predict ")
    assert len(commands) == len(starts) and all(c.startswith(s) for c, s in zip(commands, starts, strict=True))
    assert "rt-polarity" in commands[0] and "models:/sentiment@champion" in commands[-1]


def test_readme_walkthrough_runs(tmp_path: Path, data_dir: Path) -> None:
    trials = os.environ.get("WALKTHROUGH_TRIALS", "2")
    env = {k: v for k, v in os.environ.items() if k not in ("TUNER_STORAGE", "MLFLOW_TRACKING_URI")}  # the defaults
    port = free_port()
    outputs = []
    for command in walkthrough_commands((ROOT / "README.md").read_text()):
        command = command.replace("../shared/data", shlex.quote(str(data_dir)))
        command = re.sub(r"--trials \d+", f"--trials {trials}", command)
        if command.startswith("tuner ui"):  # on a free port rather than 5000
            outputs.append(_serve_once(f"{command} --port {port}", tmp_path, env))
            continue
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    tune, show, ui, _, predict = outputs
    for text in (tune, show):
        assert "models:/sentiment@champion" in text
        assert re.search(r"registered model: sentiment version \d+  ->  models:/sentiment/\d+", text)
    assert re.search(rf"Study sentiment: http://127\.0\.0\.1:{port}/#/experiments/\d+/runs", ui)
    rows = predict.splitlines()
    assert rows[0] == "prediction,proba_neg,proba_pos"
    assert [r.split(",")[0] for r in rows[1:]] == ["pos", "neg"]


def _serve_once(command: str, cwd: Path, env: dict[str, str]) -> str:
    """Start ``tuner ui ...``, read what it prints once its server answers, stop it."""
    args = shlex.split(command)
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli", *args[1:]], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]  # the UI's URL, then the study's link
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        stop_process(proc)
    if not lines[0]:
        pytest.fail(f"{command} exited with {proc.returncode} before printing its URL")
    return "".join(lines)
