"""The peer of issue 10's benchmarks (benchmarks/_peer_optuna_sklearn.py) searches what ours
searches and treats a trial cut at its time limit as one TPE moves away from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "benchmarks" / "_peer_optuna_sklearn.py"


def test_the_peers_c_spans_our_penalty_strengths() -> None:
    """C = 1 / (strength n_train): a fixed 1e-4..1e4 reached C far beyond ours on text data."""
    sys.path.insert(0, str(PEER.parent))
    try:
        from _peer_optuna_sklearn import c_range
    finally:
        sys.path.remove(str(PEER.parent))
    import tuner

    space = tuner.penalties.get("l2").search_space["strength"]
    low, high = c_range(341)
    assert low == pytest.approx(1 / (space.high * 341)) and high == pytest.approx(1 / (space.low * 341))


def test_a_trial_cut_at_the_limit_is_pruned_so_tpe_moves_away(tmp_path: Path) -> None:
    """As FAIL, TPE ignored a cut trial and kept proposing the same slow region (19 of 20 trials cut
    on rt-polarity); as PRUNED it counts as the worst."""
    out = subprocess.run([sys.executable, str(PEER), "--dataset", "breast_cancer", "--trials", "3", "--workdir",
                          str(tmp_path), "--trial-limit", "0.001"], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["cut"] == 3 and summary["pruned"] == 3 and summary["failed"] == 0, summary
    assert summary["c_range"][0] < summary["c_range"][1]
