"""benchmarks/trial_groups.py (a study's groups of trials, timed) and the batch check's reading of
the same ``group`` attributes (benchmarks/engine_vs_peers.py), on a real study."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_trial_groups_lists_every_trial_once_and_splits_the_time(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "trial_groups.py"), "--dataset", "breast_cancer",
                           "--trials", "6", "--batch-trials", "3", "--optimizer", "lbfgs,fista"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    groups = re.findall(r"^group (\w+): (\d+) trials, ([\d.]+) s", proc.stdout, flags=re.M)
    assert sum(int(n) for _, n, _ in groups) == 6, proc.stdout  # every trial in exactly one group
    assert {name for name, _, _ in groups} <= {"lbfgs", "fista"} and all(int(n) <= 3 for _, n, _ in groups)
    total, trained = map(float, re.search(r"^total ([\d.]+) s, of which training ([\d.]+) s", proc.stdout,
                                          flags=re.M).groups())
    assert abs(trained - sum(float(s) for _, _, s in groups)) <= 0.005 * (len(groups) + 1)  # printed to 0.01 s
    assert 0 < trained < total


def test_the_batch_check_reads_training_seconds_by_optimizer(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import engine_vs_peers
    finally:
        sys.path.remove(str(BENCHMARKS))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = subprocess.run([sys.executable, "-m", "tuner.cli", "tune", "--dataset", "breast_cancer", "--trials", "4",
                           "--batch-trials", "4", "--optimizer", "lbfgs", "--study", "bench", "--storage", storage,
                           "--no-tracking", "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    _, span, training = engine_vs_peers.study_facts(storage, "bench")
    trials = optuna.load_study(study_name="bench", storage=storage).trials
    (seconds,) = {t.user_attrs["group"]["seconds"] for t in trials}  # one group of four
    assert list(training) == ["lbfgs"] and training["lbfgs"] == seconds
    assert span is not None and 0 < seconds < span


def test_the_batch_check_sets_batch_trials_itself_once() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import engine_vs_peers
    finally:
        sys.path.remove(str(BENCHMARKS))
    drop = engine_vs_peers._without_option
    assert drop(["--batch-trials", "auto", "--sampler", "tpe"], "--batch-trials") == ["--sampler", "tpe"]
    assert drop(["--batch-trials=4", "--cv", "3"], "--batch-trials") == ["--cv", "3"]
    assert drop(["--batch-trials-x", "1"], "--batch-trials") == ["--batch-trials-x", "1"]


def test_a_check_against_the_peer_runs_each_side_in_turn_and_keeps_the_median(
        tmp_path: Path, capsys: Any, data_dir: Path) -> None:
    """bc50's sides take ~20 s, within the machine's spread from one run to the next: each side
    runs three times, alternating, and the table shows each side's median run."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import engine_vs_peers
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert engine_vs_peers.CHECKS["bc50"].repeat == 3
    engine_vs_peers.main(["--checks", "bc50", "--trials", "2", "--keep", str(tmp_path), "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    order = re.findall(r"^\[bc50\] (ours|peer): ([\d.]+) s", out, flags=re.M)
    assert [side for side, _ in order] == ["ours", "peer"] * 3, out
    ours = sorted(float(w) for side, w in order if side == "ours")
    peer = sorted(float(w) for side, w in order if side == "peer")
    row = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\| (logreg-tuner|Optuna)[^|]*\| ([\d.]+) \|", out,
                                                               flags=re.M)}
    assert row == {"logreg-tuner": ours[1], "Optuna": peer[1]}, out
    assert "Each side ran 3 times, alternating" in out
    ratio = float(re.search(r"\*\*Ratio ([\d.]+)x\*\*", out).group(1))
    assert abs(ratio - peer[1] / ours[1]) <= 0.02 * ratio + 0.01  # walls printed to 0.1 s
    (work,) = tmp_path.iterdir()
    assert sorted(p.name for p in (work / "bc50").iterdir()) == ["ours-1", "ours-2", "ours-3",
                                                                "peer-1", "peer-2", "peer-3"]
