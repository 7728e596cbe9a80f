"""Seconds an epoch of K identical trials side by side, for K = 1, 2, 4, 8, ...: how much of a
full-batch or mini-batch epoch a group shares (the products over the data, the Python and
autograd overhead) and how much each trial adds (its dense weight and state updates). The
measure behind ``tuner/study/_trial_batches.py: paying_group_size``.

    python benchmarks/group_scaling.py --data ../shared/data/sst2-glue/train.tsv --target label \\
        --text-column sentence --optimizer fista --penalty l1 --strength 7.9e-5
    python benchmarks/group_scaling.py --data ../shared/data/a9a/a9a --optimizer sgd --sizes 1,4,16,64
    python benchmarks/group_scaling.py --data ../shared/data/a9a/a9a --optimizer fista --threads 1
    python benchmarks/group_scaling.py --data ../shared/data/sst2-glue/train.tsv --target label \
        --text-column sentence --optimizer adam --penalty l1,l2,none,elasticnet --sizes 1,6

``--penalty a,b,...`` gives the trials of a group these penalties in turn (a mixed group).

``--threads N`` caps PyTorch's intra-op threads (the trainer only ever lowers them: one thread on
small steps or a busy machine, ``tuner/train/_sizing.py: one_thread_pays``); ``auto`` leaves them.

Prints one line per K, then the fit ``seconds = shared + K x own`` from the smallest and largest K.
"""

from __future__ import annotations

import argparse
import time

import torch

from tuner import optimizers, penalties
from tuner.data import load_data, prepare
from tuner.train import TrainConfig, fit_many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--target", help="The label column of a table")
    parser.add_argument("--text-column", help="The text column of a table (TF-IDF features)")
    parser.add_argument("--optimizer", default="fista")
    parser.add_argument("--penalty", default="l1", help="A penalty, or several given to the trials in turn")
    parser.add_argument("--strength", type=float, default=1e-4)
    parser.add_argument("--sizes", default="1,2,4,8", help="Comma-separated group sizes")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", default="auto", help="PyTorch's intra-op threads: auto (the trainer's choice) or N")
    args = parser.parse_args()
    if args.threads != "auto":
        torch.set_num_threads(int(args.threads))
    raw = load_data(args.data, target=args.target, text_column=args.text_column)
    data = prepare(raw, val_size=0.2, test_size=0.2, seed=0)
    pens, opt = [penalties.get(name) for name in args.penalty.split(",")], optimizers.get(args.optimizer)
    oparams = {name: spec.default for name, spec in opt.search_space.items()}
    config = TrainConfig(epochs=args.epochs, patience=args.epochs + 1)
    per_epoch: dict[int, float] = {}
    for k in (int(s) for s in args.sizes.split(",")):
        start = time.perf_counter()
        group = [pens[i % len(pens)] for i in range(k)]
        results = fit_many(data.X_train, data.y_train, data.n_classes, group, [_params(pen, args.strength) for pen in group],
                           opt, [oparams] * k, config)
        seconds = time.perf_counter() - start
        first = results[0]
        if isinstance(first, BaseException):
            raise SystemExit(f"K={k}: the trials failed: {first}")
        epochs = max(1, first.epochs_run)
        per_epoch[k] = seconds / epochs
        print(f"K={k} ({torch.get_num_threads()} threads at most): {seconds:.2f} s for {epochs} epochs: {per_epoch[k]:.3f} s an epoch, "
              f"{per_epoch[k] / k:.3f} s a trial", flush=True)
    lo, hi = min(per_epoch), max(per_epoch)
    if hi > lo:
        own = (per_epoch[hi] - per_epoch[lo]) / (hi - lo)
        shared = per_epoch[lo] - lo * own
        print(f"fit: an epoch = {shared:.3f} s shared + K x {own:.3f} s")


def _params(pen: object, strength: float) -> dict[str, float]:
    space = getattr(pen, "search_space", {})
    params = {"strength": strength} if "strength" in space else {}
    if "l1_ratio" in space:
        params["l1_ratio"] = 0.5
    return params


if __name__ == "__main__":
    main()
