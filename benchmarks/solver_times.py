"""One trial at a time: seconds and objective of each full-batch solver at a few penalties.

    python benchmarks/solver_times.py --data ../shared/data/a9a/a9a --solvers newton,fista,lbfgs
    python benchmarks/solver_times.py --dataset breast_cancer
    python benchmarks/solver_times.py --data ../shared/data/sst2-glue/train.tsv --target label \
        --text-column sentence --solvers lbfgs,newton_cg --test-size 0 \
        --settings l2:1e-7,l2:4e-7,l2:1.6e-6,l2:6.4e-6,l2:2.6e-5,l2:1e-4,l2:4e-4,l2:1.6e-3,none

``--settings`` lists ``penalty:strength[:l1_ratio]`` (``none`` alone); a solver skips the penalties
it refuses. The last line gives each solver's total seconds over the settings it ran.

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

SETTINGS: list[tuple[str, float | None, float | None]] = [("l2", 1e-6, None), ("l2", 1e-3, None), ("l1", 1e-2, None), ("l1", 1e-4, None), ("l1", 1e-6, None),
            ("elasticnet", 1e-5, 0.5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="A data file (svmlight, CSV, ...)")
    parser.add_argument("--dataset", help="A bundled scikit-learn dataset, e.g. breast_cancer")
    parser.add_argument("--target", help="The label column of a table")
    parser.add_argument("--text-column", help="The text column of a table (TF-IDF features)")
    parser.add_argument("--solvers", default="newton,fista,lbfgs")
    parser.add_argument("--settings", help="penalty:strength[:l1_ratio],... (default: six settings)")
    parser.add_argument("--test-size", type=float, default=0.2, help="The share split off as test rows (0: none)")
    args = parser.parse_args()
    if not args.data and not args.dataset:
        args.data = os.path.join(os.environ.get("TUNER_DATA_DIR", "../shared/data"), "a9a", "a9a")
    settings = _settings(args.settings) if args.settings else SETTINGS
    raw = load_data(args.data, dataset=args.dataset, target=args.target, text_column=args.text_column)
    data = prepare(raw, val_size=0.2, test_size=args.test_size, seed=0)
    X, y, k = data.X_train, data.y_train, data.n_classes
    fit_many(X, y, k, penalties.get("l2"), [{"strength": 1e-3}], optimizers.get("lbfgs"), [{}], TrainConfig())
    print("| solver | penalty | strength | seconds | epochs | objective | non-zero weights |")
    print("|---|---|---:|---:|---:|---:|---:|")
    totals: dict[str, float] = {}
    for solver in args.solvers.split(","):
        opt = optimizers.get(solver)
        for pen, strength, l1_ratio in settings:
            pp = {} if strength is None else {"strength": strength}
            if l1_ratio is not None:
                pp["l1_ratio"] = l1_ratio
            if opt.prox_mode == "unsupported" and penalties.get(pen).has_prox:
                continue
            start = time.perf_counter()
            (result,) = fit_many(X, y, k, penalties.get(pen), [pp], opt, [{}], TrainConfig())
            seconds = time.perf_counter() - start
            totals[solver] = totals.get(solver, 0.0) + seconds
            shown = "" if strength is None else f"{strength:g}"
            print(f"| {solver} | {pen} | {shown} | {seconds:.2f} | {result.epochs_run} | {result.objective:.7f} | "
                  f"{int(np.count_nonzero(result.weight))} |", flush=True)
    print("Total seconds: " + ", ".join(f"{solver} {seconds:.2f}" for solver, seconds in totals.items()))


def _settings(text: str) -> list[tuple[str, float | None, float | None]]:
    out: list[tuple[str, float | None, float | None]] = []
    for item in text.split(","):
        name, *numbers = item.split(":")
        values = [float(v) for v in numbers] + [None, None]  # type: ignore[list-item]
        out.append((name, values[0], values[1]))
    return out


if __name__ == "__main__":
    main()
