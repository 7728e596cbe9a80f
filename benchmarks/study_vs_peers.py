"""A 50-trial study against the two peers a user would otherwise run, side by side in one run.

Peers, on the same train/validation/test split and preprocessing as ours:
  1. Optuna TPE + scikit-learn ``LogisticRegression(solver="saga", l1_ratio=..., C=...)``
     (elastic net), each trial logged to MLflow with its model (``mlflow.sklearn.log_model``
     with explicit pip requirements, so MLflow's ~10 s requirement inference is not counted);
  2. ``LogisticRegressionCV`` (saga, Cs=10 x l1_ratios [0, .25, .5, .75, 1] = 50 configs)
     scored by log loss on the validation split (``PredefinedSplit``).
Ours: ``tuner tune`` (run_study) with MLflow tracking into a local store.

Writes a Markdown table (wall time, best validation log loss, test log loss, ratios) into
benchmarks/RESULTS.md between markers, and prints it.

    python benchmarks/study_vs_peers.py [--data-dir ../shared/data] [--trials 50] [--sets breast_cancer,a9a]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- study-vs-peers:begin -->", "<!-- study-vs-peers:end -->"


def dataset(name: str, data_dir: Path):
    from tuner.data import load_data, prepare

    if name == "a9a":
        raw = load_data(data_dir / "a9a" / "a9a", n_features=123)
    else:
        raw = load_data(dataset=name)
    return raw, prepare(raw, val_size=0.2, test_size=0.2, seed=0)


def log_loss_of(model, X, y) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, model.predict_proba(X), labels=[0, 1]))


def run_ours(name: str, data_dir: Path, trials: int, workdir: Path) -> dict:
    from tuner.study import DataSpec, StudySpec, run_study

    raw, _ = dataset(name, data_dir)
    spec = StudySpec(
        data=DataSpec(path=str(data_dir / "a9a" / "a9a") if name == "a9a" else None,
                      dataset=None if name == "a9a" else name, n_features=123 if name == "a9a" else None,
                      fingerprint=raw.fingerprint),
        penalties=["none", "l1", "l2", "elasticnet"], optimizers=["sgd", "adam", "rmsprop", "lbfgs", "fista"],
        n_trials=trials, seed=0,
    )
    observers = []
    try:
        from tuner.tracking import MlflowObserver

        observers.append(MlflowObserver(f"sqlite:///{workdir / 'ours-mlflow.db'}"))
    except ImportError:
        pass
    t0 = time.perf_counter()
    res = run_study(spec, f"bench-{name}", f"sqlite:///{workdir / 'ours-studies.db'}", observers=observers)
    wall = time.perf_counter() - t0
    return {"wall": wall, "val": res.best_value, "test": res.best_outcome.test_metrics["log_loss"],
            "best": f"{res.best_params.get('penalty')}:{res.best_params.get('optimizer')}", "tracked": bool(observers)}


def run_optuna_sklearn(name: str, data_dir: Path, trials: int, workdir: Path) -> dict:
    import mlflow
    import optuna
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    _, ds = dataset(name, data_dir)
    n = len(ds.y_train)
    client_uri = f"sqlite:///{workdir / 'peer-mlflow.db'}"
    mlflow.set_tracking_uri(client_uri)
    experiment_id = mlflow.create_experiment(f"peer-{name}", artifact_location=(workdir / "peer-artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reqs = [f"scikit-learn=={__import__('sklearn').__version__}"]
    X_example = ds.X_train[:5]
    models = {}

    def objective(trial):
        C = trial.suggest_float("C", 1e-4, 1e4, log=True)
        l1_ratio = trial.suggest_float("l1_ratio", 0.0, 1.0)
        with mlflow.start_run(run_name=f"trial-{trial.number}"):
            model = LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", max_iter=1000, tol=1e-4)
            model.fit(ds.X_train, ds.y_train)
            val = log_loss_of(model, ds.X_val, ds.y_val)
            mlflow.log_params({"C": C, "l1_ratio": l1_ratio, "strength": 1 / (C * n)})
            mlflow.log_metric("val_log_loss", val)
            mlflow.sklearn.log_model(model, name="model", pip_requirements=reqs,
                                     signature=infer_signature(X_example, model.predict(X_example)))
        models[trial.number] = model
        return val

    t0 = time.perf_counter()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=trials)
    wall = time.perf_counter() - t0
    best = models[study.best_trial.number]
    return {"wall": wall, "val": study.best_value, "test": log_loss_of(best, ds.X_test, ds.y_test),
            "best": f"C={study.best_params['C']:.3g}, l1_ratio={study.best_params['l1_ratio']:.2f}"}


def run_lrcv(name: str, data_dir: Path) -> dict:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import PredefinedSplit

    _, ds = dataset(name, data_dir)
    X = sp.vstack([ds.X_train, ds.X_val]).tocsr() if sp.issparse(ds.X_train) else np.vstack([ds.X_train, ds.X_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    fold = np.r_[np.full(len(ds.y_train), -1), np.zeros(len(ds.y_val))]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = LogisticRegressionCV(Cs=10, l1_ratios=[0, 0.25, 0.5, 0.75, 1], solver="saga", cv=PredefinedSplit(fold),
                                  scoring="neg_log_loss", max_iter=1000, tol=1e-4, refit=True,
                                  use_legacy_attributes=False).fit(X, y)
    wall = time.perf_counter() - t0
    # scores_ is (folds, l1_ratios, Cs); the chosen configuration is refitted on the training split
    # alone for the test figure (LogisticRegressionCV's own refit also uses the validation rows).
    l1_idx, c_idx = np.unravel_index(np.argmax(cv.scores_[0]), cv.scores_[0].shape)
    C, l1_ratio = float(cv.Cs_[c_idx]), [0, 0.25, 0.5, 0.75, 1][l1_idx]
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", max_iter=1000, tol=1e-4).fit(ds.X_train, ds.y_train)
    return {"wall": wall, "val": float(-np.max(cv.scores_)), "test": log_loss_of(best, ds.X_test, ds.y_test),
            "best": f"C={C:.3g}, l1_ratio={l1_ratio:.2f}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("TUNER_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--sets", default="breast_cancer,a9a")
    ap.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone.")
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    rows = []
    for name in args.sets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            ours = run_ours(name, data_dir, args.trials, work)
            peer1 = run_optuna_sklearn(name, data_dir, args.trials, work)
            peer2 = run_lrcv(name, data_dir)
        for label, r in (("logreg-tuner (tune, MLflow)" if ours["tracked"] else "logreg-tuner (tune)", ours),
                         ("Optuna TPE + sklearn saga + MLflow", peer1), ("LogisticRegressionCV (saga, 50 configs)", peer2)):
            rows.append((name, label, r))
        print(name, ours, peer1, peer2, flush=True)
    lines = [BEGIN, "", f"Command: `python benchmarks/study_vs_peers.py --trials {args.trials} --sets {args.sets}` "
             f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, one run).", "",
             "| data | tool | wall s | best val log loss | test log loss | wall ratio vs ours | val ratio vs ours | best config |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for name, label, r in rows:
        ours = next(x for n, lab, x in rows if n == name and lab.startswith("logreg-tuner"))
        lines.append(f"| {name} | {label} | {r['wall']:.1f} | {r['val']:.5f} | {r['test']:.5f} | "
                     f"{r['wall'] / ours['wall']:.2f} | {r['val'] / ours['val']:.4f} | {r['best']} |")
    lines += ["", END]
    block = "\n".join(lines)
    print(block)
    if not args.no_write:
        path = ROOT / "benchmarks" / "RESULTS.md"
        text = path.read_text() if path.exists() else "# Benchmark results\n"
        if BEGIN in text:
            text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), block, text, flags=re.S)
        else:
            text = text.rstrip() + "\n\n## 50-trial study vs peers\n\n" + block + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
