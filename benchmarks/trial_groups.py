"""Where a study's time goes: each group of trials trained side by side, with its optimizer, size,
penalties, epochs and seconds, and what the study spent besides training (``tuner.tune`` in this
process, no tracking).

    python benchmarks/trial_groups.py --data ../shared/data/a9a/a9a --trials 30
    python benchmarks/trial_groups.py --dataset breast_cancer --trials 50 --optimizer newton
    python benchmarks/trial_groups.py --data ../shared/data/sst2-glue/train.tsv --target label --text-column sentence

It reads each trial's ``group`` attribute (the trials it trained with, and the seconds that took),
which every study records.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import tuner


def groups_of(trials: list[Any]) -> list[tuple[list[Any], float]]:
    """The study's groups in training order: (their trials, the group's seconds)."""
    by_number = {t.number: t for t in trials}
    out, seen = [], set()
    for t in sorted(trials, key=lambda r: r.number):
        group = t.user_attrs.get("group")
        if group is None or t.number in seen:
            continue
        seen.update(group["trials"])
        out.append(([by_number[n] for n in group["trials"] if n in by_number], float(group["seconds"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--dataset")
    parser.add_argument("--target", help="The label column of a table")
    parser.add_argument("--text-column", help="The text column of a table (TF-IDF features)")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--batch-trials", default="auto", help="K or auto (the default)")
    parser.add_argument("--optimizer", help="Comma-separated optimizers (default: the study's own choice)")
    args = parser.parse_args()
    batch = args.batch_trials if args.batch_trials == "auto" else int(args.batch_trials)
    result = tuner.tune(args.data, dataset=args.dataset, target=args.target, text_column=args.text_column,
                        trials=args.trials, batch_trials=batch,
                        optimizer=args.optimizer.split(",") if args.optimizer else None)
    groups = groups_of(result.trials)
    for members, seconds in groups:
        params = [m.public_params for m in members]
        strengths = [round(math.log10(p["penalty.strength"]), 1) if "penalty.strength" in p else None for p in params]
        print(f"group {params[0]['optimizer']}: {len(members)} trials, {seconds:.2f} s; penalties "
              f"{[p['penalty'] for p in params]}, log10 strengths {strengths}, epochs "
              f"{[m.user_attrs.get('epochs_run') for m in members]}, states {[m.state for m in members]}", flush=True)
    trained = sum(s for _, s in groups)
    print(f"total {result.elapsed:.2f} s, of which training {trained:.2f} s in {len(groups)} groups; best "
          f"{result.best_value:.6f} {result.best_params}")


if __name__ == "__main__":
    main()
