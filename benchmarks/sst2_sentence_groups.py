"""SST-2's training phrases with the sentence each one was cut from, for ``--group-column``.

GLUE's SST-2 ``train.tsv`` holds 67,349 phrases of the Stanford Sentiment Treebank's training
sentences, without saying which sentence a phrase comes from, so a random validation split puts
pieces of one sentence on both sides. The treebank's training sentences (``sst/stsa.fine.train``,
all 8,544 of them, neutral ones included) say it: a phrase belongs to the first sentence that holds
its tokens as one contiguous span. A phrase found in no sentence is a group of its own.

Writes ``label<TAB>sentence<TAB>sentence_id`` (the training file's columns, plus the group) and
prints how many phrases were found, and in how many sentences each::

    python benchmarks/sst2_sentence_groups.py --out $W/sst2-grouped.tsv
    tuner tune $W/sst2-grouped.tsv --target label --text-column sentence --group-column sentence_id ...
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path


def sentence_spans(sentences: list[list[str]], longest: int) -> dict[tuple[str, ...], int]:
    """Every contiguous token span of up to ``longest`` tokens -> the first sentence holding it."""
    first: dict[tuple[str, ...], int] = {}
    for sid, tokens in enumerate(sentences):
        for start in range(len(tokens)):
            for stop in range(start + 1, min(len(tokens), start + longest) + 1):
                first.setdefault(tuple(tokens[start:stop]), sid)
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("TUNER_DATA_DIR", "../shared/data"),
                        help="The shared data folder [env TUNER_DATA_DIR; default ../shared/data].")
    parser.add_argument("--out", required=True, type=Path, help="The TSV to write (never under the data folder).")
    args = parser.parse_args(argv)
    data = Path(args.data_dir)
    with open(data / "sst2-glue" / "train.tsv", encoding="utf-8", newline="") as fh:
        rows = [(r["label"], r["sentence"].strip()) for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    sentences = [line.split(" ", 1)[1].split() for line in
                 (data / "sst" / "stsa.fine.train").read_text(encoding="utf-8").splitlines() if line.strip()]
    phrases = [text.split() for _, text in rows]
    first = sentence_spans(sentences, max(len(p) for p in phrases))
    found = alone = 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        out.writerow(["label", "sentence", "sentence_id"])
        for (label, text), tokens in zip(rows, phrases):
            sid = first.get(tuple(tokens))
            if sid is None:
                alone += 1
            found += sid is not None
            out.writerow([label, text, f"s{sid}" if sid is not None else f"p{alone}"])
    groups = {first[tuple(t)] for t in phrases if tuple(t) in first}
    print(f"{len(rows):,} phrases, {found:,} ({found / len(rows):.1%}) found in {len(groups):,} of the "
          f"{len(sentences):,} training sentences; wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
