"""The MLflow UI (a React app served by ``mlflow server``) shows the study, in headless Chromium.

Debian's ``chromium`` renders each page with a virtual-time budget (the runs only reach the
DOM after the app's JavaScript has fetched them), dumps the DOM and saves a screenshot to
``test-artifacts/`` (gitignored). Every page is opened with a fresh browser profile, as a new
reviewer would: the link tuner prints (:func:`tuner.tracking.ui_link`) must open the training
runs (not MLflow's GenAI overview), the trials with their metric and hyperparameter columns,
sorted by the study's metric with the champion's trial first and the pruned ones last; the
models page must show the registered model with its ``champion`` alias. The runs table and
the coefficient plot are copied to ``docs/images/`` for the README (small PNGs).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from _mlflow_fixtures import N_TRIALS, Served, served_study, stop_served
from mlflow import MlflowClient

from tuner.tracking import CHAMPION_ALIAS, ui_link

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# the README's screenshots are refreshed on request (TUNER_README_IMAGES=1), so a test run leaves the tree clean
README_IMAGES = (Path(__file__).resolve().parents[1] / "docs" / "images" if os.environ.get("TUNER_README_IMAGES") == "1"
                 else ARTIFACTS / "readme-images")
MAX_README_IMAGE = 300_000  # bytes

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package 'chromium')")]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Served]:
    """A sentiment study (rt-polarity reviews): the README's walkthrough, whose screenshots these are."""
    yield served_study(tmp_path_factory, sentiment_from=data_dir / "rt-polarity")
    stop_served("sentiment")


def render(url: str, screenshot: Path, profile: Path, size: str = "1400,900") -> str:
    """The page's text after its scripts ran (virtual time: no waiting for real seconds)."""
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", f"--window-size={size}", "--virtual-time-budget=30000",
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


def readme_image(src: Path, name: str, crop: tuple[int, int, int, int] | None = None) -> Path:
    """Copy ``src`` to ``README_IMAGES/name`` (cropped, shrunk until under MAX_README_IMAGE bytes)."""
    from PIL import Image

    README_IMAGES.mkdir(parents=True, exist_ok=True)
    dest = README_IMAGES / name
    img = Image.open(src).convert("RGB")
    if crop is not None:
        img = img.crop(crop)
    while True:
        img.save(dest, format="PNG", optimize=True)
        if dest.stat().st_size < MAX_README_IMAGE:
            return dest
        img = img.resize((img.width * 3 // 4, img.height * 3 // 4))


def test_printed_link_opens_the_trials_ranked_by_the_metric(served: Served, tmp_path: Path) -> None:
    client = MlflowClient(served.server.url)
    exp = client.get_experiment_by_name(served.study)
    study = optuna.load_study(study_name=served.study, storage=served.storage)
    trials = {r.data.tags["tuner.trial"]: r for r in client.search_runs([exp.experiment_id], max_results=100)
              if r.data.tags.get("tuner.role") == "trial"}
    complete = sorted((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    others = {f"trial-{t.number:04d}" for t in study.trials if t.state.name != "COMPLETE"}
    assert complete and others, "the served study should have complete and pruned trials"

    shot = ARTIFACTS / "mlflow-ui-trials.png"
    text = render(ui_link(served.server.url, exp.experiment_id), shot, tmp_path / "fresh-profile", "1800,800")
    # the training-runs table (the GenAI overview has neither a sort control nor run rows)
    assert "Sort: val_log_loss" in text and "Run Name" in text, text[:3000]
    assert "Evaluation runs" not in text and "Detect issues" not in text, text[:3000]
    assert re.search(rf"\b{N_TRIALS} matching runs\b", text), text[:3000]  # the trials, not the parent
    header = text[text.index("Run Name"):text.index("trial-")]
    for column in ("val_log_loss", "test_log_loss", "penalty", "optimizer", "penalty.strength", "optimizer.lr",
                   "tuner.state"):
        assert re.search(rf"(^|\s){re.escape(column)}(\s|$)", header), (column, header)
    assert "optimizer.lbfgs.lr" not in text and "optimizer.fista.lr" not in text  # one naming scheme
    shown = list(dict.fromkeys(re.findall(r"trial-\d{4}", text)))
    assert shown[:len(complete)] == [f"trial-{t.number:04d}" for t in complete]  # best first
    assert set(shown[len(complete):]) == others  # pruned trials never rank above a finished one
    champion = client.get_model_version_by_alias(served.study, CHAMPION_ALIAS)
    assert shown[0] == f"trial-{int(champion.tags['tuner.trial']):04d}"
    best_value = trials[champion.tags["tuner.trial"]].data.metrics["val_log_loss"]
    assert str(best_value)[:8] in text  # its metric is in the table
    readme_image(shot, "mlflow-runs.png", crop=(0, 0, 1330, 640))  # without the assistant side panel


def test_models_page_shows_the_champion_and_its_plot(served: Served, tmp_path: Path) -> None:
    client = MlflowClient(served.server.url)
    mv = client.get_model_version_by_alias(served.study, CHAMPION_ALIAS)
    text = render(f"{served.server.url}/#/models/{served.study}", ARTIFACTS / "mlflow-ui-model.png",
                  tmp_path / "fresh-profile")
    assert re.search(rf"Version {mv.version}\b.*@ {CHAMPION_ALIAS}\b", text), text[:3000]
    exp = client.get_experiment_by_name(served.study)
    parent = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("tuner.role") == "study"][0]
    plot = Path(client.download_artifacts(parent.info.run_id, "plots/coefficients.png", str(tmp_path)))
    link = ui_link(served.server.url, exp.experiment_id, run_id=parent.info.run_id, artifact="plots/coefficients.png")
    text = render(link, ARTIFACTS / "mlflow-ui-coefficients.png", tmp_path / "fresh-profile-2")
    assert "plots/coefficients.png" in text and "Model metrics" in text, text[:3000]
    assert "Evaluation runs" not in text and "Evaluations" not in text, text[:3000]  # not the GenAI view
    dest = readme_image(plot, "coefficients.png")
    assert 10_000 < dest.stat().st_size < MAX_README_IMAGE
