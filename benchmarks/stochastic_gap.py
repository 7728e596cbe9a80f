"""How close the stochastic optimizers get to the optimum with their default schedule.

On a9a (l2, C=1, i.e. strength 1/n) the objective reached by sgd, adam and rmsprop with
their default hyperparameters and ``TrainConfig()`` defaults is compared to the L-BFGS
optimum in float64.

    python benchmarks/stochastic_gap.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import tuner
from tuner._trainer import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from sklearn.datasets import load_svmlight_file

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("TUNER_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    X, y = load_svmlight_file(str(Path(args.data_dir) / "a9a" / "a9a"), n_features=123)
    y = (y > 0).astype(int)
    params = {"strength": 1 / X.shape[0]}
    l2 = tuner.penalties.get("l2")
    ref = fit(X, y, 2, l2, params, tuner.optimizers.get("lbfgs"), {"lr": 1.0, "history_size": 20},
              TrainConfig(dtype="float64", tol=1e-10, epochs=200, device="cpu")).objective
    print(f"optimum (lbfgs, float64): {ref:.8f}")
    for name in ("sgd", "adam", "rmsprop"):
        opt = tuner.optimizers.get(name)
        defaults = {k: v.default for k, v in opt.search_space.items()}
        t0 = time.perf_counter()
        r = fit(X, y, 2, l2, params, opt, defaults, TrainConfig(device="cpu"))
        print(f"{name:8s} gap {(r.objective - ref) / ref:.4%}  epochs {r.epochs_run} ({r.stop_reason})  "
              f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
