"""How close the stochastic optimizers get to the optimum with their default schedule.

On a9a (l2, C=1, i.e. strength 1/n) the objective reached by sgd, adam and rmsprop with
their default hyperparameters and ``TrainConfig()`` defaults (100 epochs, batches of 256,
cosine decay, stop on the training objective's convergence; float32) is compared to the
L-BFGS optimum in float64, for several seeds; then the same optimizers with an L1 penalty
(C = 0.01) against FISTA: objective and exact zeros.

    python benchmarks/stochastic_gap.py [--data-dir ../shared/data] [--seeds 5] [--write]

``--write`` replaces the results table in benchmarks/STOCHASTIC.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
import warnings
from pathlib import Path

import numpy as np

import tuner
from tuner.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "STOCHASTIC.md"
BEGIN, END = "<!-- stochastic-gap:begin -->", "<!-- stochastic-gap:end -->"


def main() -> None:
    from sklearn.datasets import load_svmlight_file

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("TUNER_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--seeds", type=int, default=5, help="Seeds 0..N-1 for each optimizer.")
    ap.add_argument("--write", action="store_true", help=f"Write the table into {RESULTS.name}.")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    X, y = load_svmlight_file(str(Path(args.data_dir) / "a9a" / "a9a"), n_features=123)
    y = (y > 0).astype(int)
    params = {"strength": 1 / X.shape[0]}
    l2 = tuner.penalties.get("l2")
    ref = fit(X, y, 2, l2, params, tuner.optimizers.get("lbfgs"), {"lr": 1.0, "history_size": 20},
              TrainConfig(dtype="float64", tol=1e-10, epochs=200, device="cpu")).objective
    print(f"optimum (lbfgs, float64): {ref:.8f}")
    rows = []
    for name in ("sgd", "adam", "rmsprop"):
        opt = tuner.optimizers.get(name)
        defaults = {k: v.default for k, v in opt.search_space.items()}
        gaps, epochs, seconds = [], [], []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            r = fit(X, y, 2, l2, params, opt, defaults, TrainConfig(device="cpu", seed=seed))
            seconds.append(time.perf_counter() - t0)
            gaps.append((r.objective - ref) / ref)
            epochs.append(r.epochs_run)
            print(f"{name:8s} seed {seed}: gap {gaps[-1]:.4%}  epochs {r.epochs_run} ({r.stop_reason})  "
                  f"{seconds[-1]:.1f} s")
        rows.append((name, defaults, gaps, epochs, seconds))
    table = [
        f"Command: `python benchmarks/stochastic_gap.py --seeds {args.seeds} --write` "
        f"({time.strftime('%Y-%m-%d')}, torch {__import__('torch').__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs). Optimum (L-BFGS, float64): {ref:.8f}.",
        "",
        "| optimizer | default hyperparameters | relative gap, each seed | worst | epochs | seconds (median) |",
        "|---|---|---|---:|---|---:|",
    ]
    for name, defaults, gaps, epochs, seconds in rows:
        table.append(
            f"| {name} | {', '.join(f'{k}={v}' for k, v in defaults.items())} | "
            f"{' '.join(f'{g:.3%}' for g in gaps)} | {max(gaps):.3%} | {' '.join(map(str, epochs))} | "
            f"{np.median(seconds):.1f} |"
        )
    # L1 (C = 0.01): exact zeros from the proximal step after each mini-batch step
    strength = 1 / (0.01 * X.shape[0])
    l1 = tuner.penalties.get("l1")
    fista = fit(X, y, 2, l1, {"strength": strength}, tuner.optimizers.get("fista"), {"lr": 1.0},
                TrainConfig(dtype="float64", tol=1e-9, patience=2, epochs=200, device="cpu"))
    table += [
        "",
        f"L1 with strength 1/(0.01 n) (C = 0.01), seed 0; FISTA (float64): objective {fista.objective:.8f}, "
        f"{int((fista.weight == 0).sum())} of {fista.weight.size} weights exactly zero.",
        "",
        "| optimizer | relative gap to FISTA | exact zeros | epochs |",
        "|---|---:|---:|---:|",
    ]
    for name in ("sgd", "adam", "rmsprop"):
        opt = tuner.optimizers.get(name)
        r = fit(X, y, 2, l1, {"strength": strength}, opt, {k: v.default for k, v in opt.search_space.items()},
                TrainConfig(device="cpu"))
        gap = (r.objective - fista.objective) / fista.objective
        print(f"l1 {name:8s} gap {gap:.4%}  zeros {int((r.weight == 0).sum())}  epochs {r.epochs_run}")
        table.append(f"| {name} | {gap:.4%} | {int((r.weight == 0).sum())} | {r.epochs_run} |")
    text = "\n".join(table)
    print(text)
    if args.write:
        doc = RESULTS.read_text()
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n\n{text}\n\n{END}", doc, flags=re.S)
        RESULTS.write_text(doc)


if __name__ == "__main__":
    main()
