"""Where a study's training time goes: each group of trials trained side by side, with its
optimizer, size, penalties, epochs and seconds (``tuner.tune`` in this process, no tracking).

    python benchmarks/trial_groups.py --data ../shared/data/a9a/a9a --trials 30
    python benchmarks/trial_groups.py --dataset breast_cancer --trials 50 --optimizer newton
    python benchmarks/trial_groups.py --data ../shared/data/sst2-glue/train.tsv --target label --text-column sentence

It wraps ``TrialBatches.train`` (the one place a study trains a group) to time each call.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import tuner
from tuner.study import _trial_batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--dataset")
    parser.add_argument("--target", help="The label column of a table")
    parser.add_argument("--text-column", help="The text column of a table (TF-IDF features)")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--optimizer", help="Comma-separated optimizers (default: the study's own choice)")
    args = parser.parse_args()
    groups: list[tuple[str, int, float]] = []
    train = _trial_batches.TrialBatches.train

    def timed(self: Any, group: Any, heartbeat: Any) -> Any:
        start = time.perf_counter()
        out = train(self, group, heartbeat)
        seconds = time.perf_counter() - start
        groups.append((group[0].optimizer, len(group), seconds))
        strengths = [round(math.log10(p.penalty_params["strength"]), 1) if "strength" in p.penalty_params else None
                     for p in group]
        epochs = [getattr(getattr(o, "result", None), "epochs_run", None) for o in out]
        print(f"group {group[0].optimizer}: {len(group)} trials, {seconds:.2f} s; penalties "
              f"{[p.penalty for p in group]}, log10 strengths {strengths}, epochs {epochs}", flush=True)
        return out

    _trial_batches.TrialBatches.train = timed  # type: ignore[method-assign]
    start = time.perf_counter()
    result = tuner.tune(args.data, dataset=args.dataset, target=args.target, text_column=args.text_column,
                        trials=args.trials,
                        optimizer=args.optimizer.split(",") if args.optimizer else None)
    total = time.perf_counter() - start
    trained = sum(s for _, _, s in groups)
    print(f"total {total:.2f} s, of which training {trained:.2f} s in {len(groups)} groups; best "
          f"{result.best_value:.6f} {result.best_params}")


if __name__ == "__main__":
    main()
