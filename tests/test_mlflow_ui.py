"""The MLflow UI (a React app served by ``mlflow server``) shows the study, in headless Chromium.

Debian's ``chromium`` renders each page with a virtual-time budget (the runs only reach the
DOM after the app's JavaScript has fetched them), dumps the DOM and saves a screenshot to
``test-artifacts/`` (gitignored). The experiment page must list the study's parent run and
count every run; the parent run's page must list every trial run as a child.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from _mlflow_fixtures import N_TRIALS, Served, served_study, stop_served
from mlflow import MlflowClient

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package 'chromium')")]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield served_study(tmp_path_factory)
    stop_served()


def render(url: str, screenshot: Path, profile: Path) -> str:
    """The page's text after its scripts ran (virtual time: no waiting for real seconds)."""
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", "--window-size=1400,900", "--virtual-time-budget=30000",
           f"--screenshot={screenshot}", "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", proc.stdout, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def test_ui_lists_the_study_and_its_trial_runs(served: Served, tmp_path: Path) -> None:
    client = MlflowClient(served.server.url)
    exp = client.get_experiment_by_name(served.study)
    parent = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("tuner.role") == "study"][0]
    base = f"{served.server.url}/#/experiments/{exp.experiment_id}"

    text = render(f"{base}/runs", ARTIFACTS / "mlflow-ui-experiment.png", tmp_path / "profile1")
    assert "Training runs" in text and served.study in text
    assert re.search(rf"\b{N_TRIALS + 1} matching runs\b", text), text[:2000]

    text = render(f"{base}/runs/{parent.info.run_id}", ARTIFACTS / "mlflow-ui-study-run.png", tmp_path / "profile2")
    child_runs = re.search(r"Child runs (.*?) Source", text)
    assert child_runs, text[:3000]
    listed = set(re.findall(r"trial-\d{4}", child_runs.group(1)))
    assert listed == {f"trial-{n:04d}" for n in range(N_TRIALS)}
    best = optuna.load_study(study_name=served.study, storage=served.storage).best_value
    shown = re.search(r"best_log_loss ([0-9.eE+-]+)", text)  # the study's best-value metric is shown
    assert shown and float(shown.group(1)) == pytest.approx(best, rel=1e-3)
