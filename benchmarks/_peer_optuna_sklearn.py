"""The peer of issue 10's benchmarks: Optuna TPE + scikit-learn + MLflow, as a user would glue them.

One process, timed whole by ``engine_vs_peers.py``: it reads the data with the same loader,
split and preprocessing as ``tuner tune`` (``tuner.data``: the same stratified split, the same
max-abs scaling or TF-IDF 1-2 grams fitted on the training rows; this imports pandas and
scikit-learn, not torch), then runs an Optuna TPE study (seed 0) over

* ``penalty`` in {none, l1, l2, elasticnet}, ``C`` (log, not for none) and ``l1_ratio``
  (elasticnet only, 0.01..0.99). ``C`` spans the strengths ``tuner tune`` searches: its penalty
  ``strength`` is ``1 / (C n_train)``, over the built-in plugins' 1e-7..10 (``DECLARED``) cut,
  as a new study of ours cuts it, at ten times the training data's ``lambda_max``
  (``tuner.study._default_ranges``, which imports no torch). A fixed 1e-4..1e4 had the peer
  spend its trials on C far beyond ours, where saga crawls; the uncut range, on strengths that
  give the constant model (2 of its 10 random start-up trials on SST-2),
* with scikit-learn's recommended solver per penalty: lbfgs for l2 and none, liblinear for l1
  (saga when multiclass: liblinear is one-vs-rest), saga for elasticnet; ``max_iter=1000`` and
  the default ``tol``; penalties given the non-deprecated way (``l1_ratio``, ``C=inf``).

Every trial is an MLflow run (parameters, validation and test metrics, the fitted estimator
pickled as an artifact), and the best trial's model is logged as an MLflow model (explicit pip
requirements, so that MLflow's requirement inference is not counted) and registered with the
alias ``champion``: as ours, which stores each trial's weights and logs one model, the best's.
(Logging an MLflow model at every trial cost the peer 14.7 s of 50 breast_cancer trials, more
than its fits.)

``--trial-limit S`` fits each trial in a forked worker process that is killed after S seconds:
the trial then counts as pruned (and took S seconds), so that TPE ranks it worst and moves away
(as failed, TPE ignored it and kept proposing the same slow region); the output's ``cut`` says
how many were. The worker dies with this process (``PR_SET_PDEATHSIG``).

Prints one JSON line: best validation log loss, test log loss, trial counts, best parameters.

    python benchmarks/_peer_optuna_sklearn.py --dataset breast_cancer --trials 50 --workdir /tmp/p
    python benchmarks/_peer_optuna_sklearn.py ../shared/data/a9a/a9a --test-file ../shared/data/a9a/a9a.t --trials 30 \
        --workdir /tmp/p --trial-limit 120
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import pickle
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

PENALTIES = ("none", "l1", "l2", "elasticnet")


class TrialCutOff(Exception):
    """A fit ran past ``--trial-limit`` and its worker was killed."""


def load(args: argparse.Namespace) -> Any:
    """The split ``tuner tune`` makes from the same options (mirrors ``tuner.study.load_dataset_for``)."""
    from tuner.data import load_data, prepare

    raw = load_data(args.data, dataset=args.dataset, target=args.target, text_column=args.text_column,
                    encoding=args.encoding, fmt=args.format, n_features=args.n_features)
    test_raw = None
    if args.test_file:
        width = args.n_features or (raw.X.shape[1] if raw.fmt == "svmlight" else None)
        test_raw = load_data(args.test_file, target=args.target, text_column=args.text_column, encoding=args.encoding,
                             fmt=args.format, n_features=width, zero_based=raw.zero_based)
    return prepare(raw, val_size=args.val_size, test_size=args.test_size, seed=args.seed, test_raw=test_raw)


def estimator_params(params: dict[str, Any], n_classes: int) -> dict[str, Any]:
    """``LogisticRegression`` arguments for a trial: the recommended solver for its penalty."""
    penalty = params["penalty"]
    if penalty == "none":
        return {"C": math.inf, "l1_ratio": 0.0, "solver": "lbfgs"}
    if penalty == "l2":
        return {"C": params["C"], "l1_ratio": 0.0, "solver": "lbfgs"}
    if penalty == "l1":
        return {"C": params["C"], "l1_ratio": 1.0, "solver": "liblinear" if n_classes == 2 else "saga"}
    return {"C": params["C"], "l1_ratio": params["l1_ratio"], "solver": "saga"}


def fit_model(ds: Any, kwargs: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter: the trial still counts, as for a user
        return LogisticRegression(max_iter=1000, random_state=0, **kwargs).fit(ds.X_train, ds.y_train)


def _serve(conn: Any, parent_end: Any, ds: Any) -> None:
    """Worker loop: fit each request on the inherited data, send back the fitted estimator.

    The worker is killed with its parent (Linux ``PR_SET_PDEATHSIG``: a benchmark's timeout kills
    the parent mid-fit, and an orphaned fit went on at 100% CPU under the next timed process);
    elsewhere, the parent's end of the pipe, closed here, ends ``recv`` in EOFError."""
    _die_with_parent()
    parent_end.close()
    while True:
        try:
            kwargs = conn.recv()
        except EOFError:
            return
        try:
            conn.send((True, fit_model(ds, kwargs)))
        except Exception as exc:  # the parent marks the trial failed with this text
            conn.send((False, f"{type(exc).__name__}: {exc}"))


def _die_with_parent() -> None:
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pipe's EOF stops an idle worker
        pass


class Worker:
    """A forked process holding the data (copy-on-write) that fits one trial at a time and can be killed."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        self.proc: Any = None
        self.conn: Any = None

    def start(self) -> None:
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.conn, self.ds), daemon=True)
        self.proc.start()
        child.close()

    def fit(self, kwargs: dict[str, Any], limit: float) -> Any:
        if self.proc is None:
            self.start()
        self.conn.send(kwargs)
        if not self.conn.poll(limit):
            self.stop()
            raise TrialCutOff(f"fit ran past the {limit:g} s limit and was killed")
        ok, payload = self.conn.recv()
        if not ok:
            raise RuntimeError(payload)
        return payload

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
            self.conn.close()
        self.proc = self.conn = None


def metrics(model: Any, X: Any, y: np.ndarray, n_classes: int) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, log_loss

    proba = model.predict_proba(X)
    return {"log_loss": float(log_loss(y, proba, labels=list(range(n_classes)))),
            "accuracy": float(accuracy_score(y, proba.argmax(axis=1)))}


DECLARED = (1e-7, 10.0)
"""The penalty strengths the built-in plugins declare (a test checks it), read here without
loading the plugins, which would import torch."""


def c_range(X: Any, y: np.ndarray, n_classes: int) -> tuple[float, float]:
    """The C of scikit-learn that spans the strengths a new ``tuner tune`` study searches on these
    training rows: C = 1 / (strength n)."""
    from tuner.study._default_ranges import lambda_max, searched_ceiling

    low, high = DECLARED
    high = searched_ceiling(lambda_max(X, y, n_classes), low, high) or high
    n_train = int(X.shape[0])
    return 1.0 / (high * n_train), 1.0 / (low * n_train)


def suggest(trial: Any, c_low: float, c_high: float) -> dict[str, Any]:
    """The search space: penalty, then C unless unpenalized, then l1_ratio for elastic net."""
    params: dict[str, Any] = {"penalty": trial.suggest_categorical("penalty", list(PENALTIES))}
    if params["penalty"] != "none":
        params["C"] = trial.suggest_float("C", c_low, c_high, log=True)
    if params["penalty"] == "elasticnet":
        params["l1_ratio"] = trial.suggest_float("l1_ratio", 0.01, 0.99)
    return params


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    ds = load(args)
    n_classes = len(ds.classes)
    worker = Worker(ds) if args.trial_limit else None
    if worker is not None:
        worker.start()  # forked before MLflow and Optuna start any thread
    import mlflow
    import optuna
    import sklearn
    from mlflow.models import infer_signature

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    name = args.study
    experiment_id = mlflow.create_experiment(name, artifact_location=(work / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reqs = [f"scikit-learn=={sklearn.__version__}"]
    example = ds.X_train[:5]
    best: dict[str, Any] = {"value": math.inf}
    cut: list[int] = []

    c_low, c_high = c_range(ds.X_train, ds.y_train, n_classes)

    def objective(trial: Any) -> float:
        params = suggest(trial, c_low, c_high)
        kwargs = estimator_params(params, n_classes)
        with mlflow.start_run(run_name=f"trial-{trial.number}") as run:
            mlflow.log_params({**params, "solver": kwargs["solver"]})
            try:
                model = worker.fit(kwargs, args.trial_limit) if worker is not None else fit_model(ds, kwargs)
            except TrialCutOff as exc:
                cut.append(trial.number)
                mlflow.set_tag("failure", "cut off at the trial limit")
                raise optuna.TrialPruned(str(exc)) from None  # the run ends FAILED; TPE ranks the trial worst
            val = metrics(model, ds.X_val, ds.y_val, n_classes)
            test = metrics(model, ds.X_test, ds.y_test, n_classes)
            mlflow.log_metrics({**{f"val_{k}": v for k, v in val.items()}, **{f"test_{k}": v for k, v in test.items()},
                                "n_iter": float(np.max(model.n_iter_))})
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.pkl"
                path.write_bytes(pickle.dumps(model))
                mlflow.log_artifact(str(path))
        if val["log_loss"] < best["value"]:
            best.update(value=val["log_loss"], test=test["log_loss"], params=params, model=model,
                        trial=trial.number, run_id=run.info.run_id)
        return val["log_loss"]

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=args.seed),
                                study_name=name)
    study.optimize(objective, n_trials=args.trials, catch=(RuntimeError,))
    if worker is not None:
        worker.stop()
    states = [t.state.name for t in study.trials]
    if "model" in best:
        with mlflow.start_run(run_id=best["run_id"]):
            model = best.pop("model")
            signature = infer_signature(example, model.predict(example))
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=reqs, signature=signature)
        version = mlflow.register_model(info.model_uri, name)
        mlflow.MlflowClient().set_registered_model_alias(name, "champion", version.version)
    return {"best_value": best["value"], "test_log_loss": best.get("test"), "best_params": best.get("params"),
            "best_trial": best.get("trial"), "complete": states.count("COMPLETE"), "failed": states.count("FAIL"),
            "pruned": states.count("PRUNED"), "cut": len(cut), "c_range": [c_low, c_high],
            "trial_limit": args.trial_limit, "inside_seconds": round(time.perf_counter() - t0, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=None)
    ap.add_argument("--dataset")
    ap.add_argument("--target")
    ap.add_argument("--text-column")
    ap.add_argument("--test-file")
    ap.add_argument("--n-features", type=int)
    ap.add_argument("--format", default="auto")
    ap.add_argument("--encoding", default="utf-8")
    ap.add_argument("--val-size", type=float, default=0.2)
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--study", default="peer")
    ap.add_argument("--workdir", required=True, help="Folder for the MLflow store and artifacts.")
    ap.add_argument("--trial-limit", type=float, default=0.0,
                    help="Seconds a fit may run (in a worker process) before it is killed and the trial "
                         "failed; 0: no limit, fit in-process.")
    print(json.dumps(run(ap.parse_args())), flush=True)


if __name__ == "__main__":
    main()
