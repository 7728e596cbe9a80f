"""One trial at a time: seconds and objective of each full-batch solver at a few penalties.

    python benchmarks/solver_times.py --data ../shared/data/a9a/a9a --solvers newton,fista,lbfgs
    python benchmarks/solver_times.py --dataset breast_cancer

Each fit is ``tuner.train.fit_many`` with one trial, float32, the default stopping rule; the
first fit of the run also pays PyTorch's warm-up, so a throw-away fit runs first. The objective
is the penalized training loss at the end (lower is better; exact solvers agree to ~1e-6).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tuner import optimizers, penalties
from tuner.data import load_data, prepare
from tuner.train import TrainConfig, fit_many

SETTINGS = [("l2", 1e-6, None), ("l2", 1e-3, None), ("l1", 1e-2, None), ("l1", 1e-4, None), ("l1", 1e-6, None),
            ("elasticnet", 1e-5, 0.5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="A data file (svmlight, CSV, ...)")
    parser.add_argument("--dataset", help="A bundled scikit-learn dataset, e.g. breast_cancer")
    parser.add_argument("--solvers", default="newton,fista,lbfgs")
    args = parser.parse_args()
    if not args.data and not args.dataset:
        args.data = os.path.join(os.environ.get("TUNER_DATA_DIR", "../shared/data"), "a9a", "a9a")
    data = prepare(load_data(args.data, dataset=args.dataset), val_size=0.2, test_size=0.2, seed=0)
    X, y, k = data.X_train, data.y_train, data.n_classes
    fit_many(X, y, k, penalties.get("l2"), [{"strength": 1e-3}], optimizers.get("lbfgs"), [{}], TrainConfig())
    print("| solver | penalty | strength | seconds | epochs | objective | non-zero weights |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for solver in args.solvers.split(","):
        opt = optimizers.get(solver)
        for pen, strength, l1_ratio in SETTINGS:
            pp = {"strength": strength, **({"l1_ratio": l1_ratio} if l1_ratio is not None else {})}
            if opt.prox_mode == "unsupported" and penalties.get(pen).has_prox:
                continue
            start = time.perf_counter()
            (result,) = fit_many(X, y, k, penalties.get(pen), [pp], opt, [{}], TrainConfig())
            seconds = time.perf_counter() - start
            print(f"| {solver} | {pen} | {strength:g} | {seconds:.2f} | {result.epochs_run} | {result.objective:.7f} | "
                  f"{int(np.count_nonzero(result.weight))} |", flush=True)


if __name__ == "__main__":
    main()
