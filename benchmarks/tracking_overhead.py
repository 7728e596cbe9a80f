"""Per-trial MLflow tracking overhead on the default local store (SQLite + local artifacts).

Drives :class:`tuner.tracking.MlflowObserver` the way the search loop does (trial start,
one callback call per epoch, trial end with a fitted model) without training anything, so
what is timed is tracking alone: run creation, parameters, per-epoch and final metrics,
tags, the weights artifact and run termination.

Three ways are measured, each on a fresh ``sqlite:///.../mlflow.db``:

* ``background`` (the default of the observer): the time the trial loop spends in the hooks
  (the critical path) while "training" (sleeping) between them, and the CPU time of the whole
  process per trial (the tracking thread's work included);
* ``inline``: the same work done synchronously in the hooks (``background=False``);
* ``naive``: what a straightforward client does: ``log_param``/``log_metric`` per value,
  ``set_tag`` per tag, ``log_artifact`` via a temporary file, on a database in SQLite's
  default rollback-journal mode.

Usage::

    python benchmarks/tracking_overhead.py                       # 40 trials x 30 epochs
    python benchmarks/tracking_overhead.py --write-results       # also update RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _outcome(seed: int = 0) -> Any:
    """A TrainOutcome for breast_cancer with random weights (no training: tracking is timed)."""
    from tuner.data import load_data, prepare
    from tuner.model import LogisticModel
    from tuner.study import TrainOutcome
    from tuner.train import FitResult

    ds = prepare(load_data(dataset="breast_cancer"), seed=seed)
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(ds.pipeline.n_features, 1)), np.zeros(1)
    res = FitResult(w, b, 0.1, epochs_run=30, best_epoch=28, fit_seconds=0.2, stop_reason="max_epochs")
    model = LogisticModel(ds.classes, w, b, ds.pipeline, info={"penalty": "l2", "optimizer": "adam"})
    metrics = {"log_loss": 0.1, "accuracy": 0.95, "roc_auc": 0.99, "f1": 0.95}
    return TrainOutcome(model, res, dict(metrics), dict(metrics), {"strength": 1e-3}, {"lr": 0.01})


def _study(name: str) -> Any:
    from tuner.study import StudyInfo

    spec = {"data": {"dataset": "breast_cancer", "fingerprint": "0123456789abcdef", "val_size": 0.2,
                     "test_size": 0.2, "seed": 0}, "penalties": ["l2"], "optimizers": ["adam"], "metric": "roc_auc",
            "sampler": "tpe", "pruner": "median", "seed": 0, "n_trials": 40, "train": {"epochs": 30}}
    return StudyInfo(name, "sqlite:///studies.db", spec, "maximize", "roc_auc")


def _trial(n: int) -> Any:
    from tuner.study import TrialInfo

    params = {"variant": "l2:adam", "penalty.strength": 1e-3 * (n + 1), "optimizer.lr": 0.01}
    return TrialInfo(n, "l2", "adam", params, {"strength": params["penalty.strength"]}, {"lr": 0.01})


def _epochs(cbs: Any, epochs: int, train_s: float = 0.0) -> float:
    """Call the callbacks once per epoch ("training" = sleeping ``train_s`` in all); returns hook time."""
    from tuner.train import TrainingState

    state = TrainingState(None, None, 2)  # type: ignore[arg-type]
    spent = 0.0
    for e in range(1, epochs + 1):
        if train_s:
            time.sleep(train_s / epochs)
        logs = {"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "val_roc_auc": 1 - 0.5 / e}
        state.epoch = e
        t0 = time.perf_counter()
        for cb in cbs:
            cb.on_epoch_end(state, logs)
        spent += time.perf_counter() - t0
    return spent


def bench_observer(folder: Path, trials: int, epochs: int, background: bool, train_s: float) -> dict[str, float]:
    from tuner.tracking import MlflowObserver

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    obs = MlflowObserver(uri, background=background, register_model=False, plots=False, flush_interval=None)
    study = _study("bench")
    obs.on_study_start(study)
    outcome = _outcome()
    # Warm-up trial (first-use costs: plugin metadata, artifact folders, statement caches).
    cbs, _ = obs.on_trial_start(study, _trial(10_000))
    _epochs(cbs, epochs)
    obs.on_trial_end(study, _trial(10_000), "COMPLETE", 0.99, outcome, None)
    obs.flush()
    crit, cpu = [], []
    for n in range(trials):
        c0 = time.process_time()
        t0 = time.perf_counter()
        cbs, _ = obs.on_trial_start(study, _trial(n))
        hooks = time.perf_counter() - t0
        hooks += _epochs(cbs, epochs, train_s)
        t0 = time.perf_counter()
        attrs = obs.on_trial_end(study, _trial(n), "COMPLETE", 0.99, outcome, None)
        hooks += time.perf_counter() - t0
        crit.append(hooks)
        cpu.append(time.process_time() - c0)
        assert attrs.get("mlflow_run_id"), attrs
    obs.flush()
    runs = obs.child_runs("bench")
    assert len(runs) == trials + 1, len(runs)
    obs.close()
    return {"median_ms": 1000 * statistics.median(crit), "p90_ms": 1000 * float(np.percentile(crit, 90)),
            "cpu_ms": 1000 * statistics.median(cpu)}


def bench_naive(folder: Path, trials: int, epochs: int) -> dict[str, float]:
    """One call per value, the way most scripts log (rollback-journal SQLite, no batching)."""
    from mlflow import MlflowClient
    from safetensors.numpy import save_file

    client = MlflowClient(f"sqlite:///{folder / 'naive.db'}")
    exp = client.create_experiment("naive", artifact_location=(folder / "naive-artifacts").as_uri())
    parent = client.create_run(exp).info.run_id
    outcome = _outcome()
    times = []
    for n in range(trials):
        t0 = time.perf_counter()
        run = client.create_run(exp, tags={"mlflow.parentRunId": parent}, run_name=f"trial-{n:04d}").info.run_id
        for k, v in _trial(n).params.items():
            client.log_param(run, k, v)
        for k in ("tuner.study", "tuner.trial", "tuner.penalty", "tuner.optimizer", "tuner.data.fingerprint"):
            client.set_tag(run, k, "x")
        for e in range(1, epochs + 1):
            for k, v in (("train_loss", 1.0 / e), ("val_loss", 1.1 / e), ("val_roc_auc", 1 - 0.5 / e)):
                client.log_metric(run, k, v, step=e)
        for k, v in outcome.val_metrics.items():
            client.log_metric(run, f"val_{k}", v)
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "weights.safetensors"
            save_file({"coef": outcome.model.coef_, "intercept": outcome.model.intercept_}, str(p))
            client.log_artifact(run, str(p))
        client.set_terminated(run)
        times.append(time.perf_counter() - t0)
    return {"median_ms": 1000 * statistics.median(times)}


def run(trials: int, epochs: int, naive_trials: int, train_s: float) -> dict[str, dict[str, float]]:
    out = {}
    for name, fn in (("background", lambda d: bench_observer(d, trials, epochs, True, train_s)),
                     ("inline", lambda d: bench_observer(d, trials, epochs, False, 0.0)),
                     ("naive", lambda d: bench_naive(d, naive_trials, epochs))):
        if name == "naive" and naive_trials <= 0:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out[name] = fn(Path(tmp))
        print(f"{name:>10}: " + ", ".join(f"{k} {v:.1f}" for k, v in out[name].items()), flush=True)
    return out


def _loadavg() -> str:
    """The 1-minute load average (other processes competing for the CPUs)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def write_results(res: dict[str, dict[str, float]], args: argparse.Namespace, load_before: str) -> Path:
    import mlflow

    b, i = res["background"], res["inline"]
    lines = [
        "## Tracking overhead",
        "",
        f"Median per-trial MLflow tracking overhead on the default local store "
        f"(`sqlite:///.../mlflow.db` + local artifacts), {args.trials} trials x {args.epochs} epochs "
        "(3 per-epoch metrics, 8 parameters, ~25 tags, 14 final metrics, the weights artifact), "
        f"MLflow {mlflow.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"1-minute load average {load_before} before and {_loadavg()} after.",
        "",
        "| mode | trial loop waits, median | p90 | CPU per trial (all threads) |",
        "|---|---|---|---|",
        f"| background thread (default), {args.train_ms:.0f} ms simulated training | **{b['median_ms']:.1f} ms** | "
        f"{b['p90_ms']:.1f} ms | {b['cpu_ms']:.1f} ms |",
        f"| inline (`background=False`) | {i['median_ms']:.1f} ms | {i['p90_ms']:.1f} ms | {i['cpu_ms']:.1f} ms |",
    ]
    if "naive" in res:
        lines.append(f"| naive: one call per value, rollback journal ({args.naive_trials} trials) | "
                     f"{res['naive']['median_ms']:.1f} ms | | |")
    lines += [
        "",
        f"Target: <= 30 ms per trial. The trial loop waits {b['median_ms']:.1f} ms per trial (median); "
        f"the logging itself costs about {i['cpu_ms']:.0f} ms of CPU per trial, almost all of it in MLflow's "
        "SQLAlchemy store (ORM objects per metric row, several transactions per call), and runs on the "
        "tracking thread while the next trial trains: on an idle machine with a core to spare it is hidden; "
        "on a saturated one it competes with training for the CPU. What makes it fast: one `log_batch` "
        "per trial for parameters, metrics and tags (the count of store calls dominates: compare the naive "
        "row), tags given at run creation, epoch metrics buffered in the callback, the weights written "
        "straight into the local artifact folder, the database in WAL mode, the duplicate per-epoch "
        "`val_log_loss` (= `val_loss`) not logged. MLflow 3.17's SQLite store caches its engine per URI "
        "(no engine per call). The pyfunc model (and MLflow's ~10 s requirement inference, never "
        "triggered: requirements are explicit) is logged once per study, for the best trial only.",
        "",
        "Reproduce:",
        "",
        "```bash",
        f"python benchmarks/tracking_overhead.py --trials {args.trials} --epochs {args.epochs} --write-results",
        "```",
        "",
    ]
    section = "\n".join(lines)
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    pattern = re.compile(r"^## Tracking overhead\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda m: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text.rstrip() + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--train-ms", type=float, default=200.0,
                    help="simulated training time per trial (sleep) in background mode")
    ap.add_argument("--naive-trials", type=int, default=10, help="0 skips the naive comparison")
    ap.add_argument("--write-results", action="store_true", help="update the section in benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    load_before = _loadavg()
    res = run(args.trials, args.epochs, args.naive_trials, args.train_ms / 1000)
    if args.write_results:
        print(f"wrote {write_results(res, args, load_before)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
