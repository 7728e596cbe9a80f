"""Generate a large, sentiment-like sparse binary data set with a known optimum (issue 10).

What it makes: a CSR matrix of TF-IDF-like rows (non-negative values, every row L2-normalised,
sorted int32 column indices, float32 values) whose column frequencies follow a Zipf law (a few
stop-word-like columns in nearly every row, a long tail of rare ones), and labels drawn from a
logistic model on planted weights: most columns carry a small weight (a tenth of a strong one),
a few percent (a fifth of the common words) are strong positive or negative "sentiment"
columns, and the 50 most frequent columns carry almost none. The weights
are scaled so that the Bayes classifier (the sign of the true margin) reaches a chosen accuracy
(``--bayes-accuracy``, 0.90 by default), so the problem is learnable but noisy, and the
intercept centres the margins so the classes are balanced.

Why: the public sets (a9a, rt-polarity) are small; this one is big enough (1,000,000 rows x
2**20 columns, ~60 non-zeros a row, by default) to measure the tuner's memory and speed on
sparse data, and, because the generating weights are known, to check how close a fit gets to
the optimum direction and to the Bayes accuracy / log loss.

How: a row's token count is Poisson(lambda) (at least 1), its tokens are drawn with replacement
from the Zipf distribution over columns (a fixed random permutation maps frequency ranks to
column ids), repeated tokens become the term frequency tf, and a value is
``(1 + log tf) * idf``, with ``idf = 1 + log(1 / q)`` and q the probability that a row holds
the column (its expected document frequency share: one pass suffices, and the distribution does
not depend on ``--rows``: the first N rows of a seed are the same whatever ``--rows`` is).
lambda is chosen so that the expected count of *distinct* columns a row is ``--nnz-per-row``.
Rows are made in fixed chunks, each from its own seeded stream, straight into preallocated CSR
arrays: no dense matrix, peak memory close to the final arrays (the loader keeps the float32
values and int32 indices as they are).

Output: ``OUT`` (``.npz`` with ``X_data``, ``X_indices``, ``X_indptr``, ``X_shape``, ``y``, the
layout ``tuner.data.load_data`` reads), ``OUT`` with ``.json`` (parameters, planted weights'
norm, Bayes accuracy and log loss, timings) and ``OUT`` with ``.weights.npy`` (the planted
weights, float64, and the intercept is in the JSON).

    python benchmarks/make_sparse_data.py --out /tmp/sparse_1m.npz            # 1M x 2**20, seed 0
    python benchmarks/make_sparse_data.py --rows 20000 --features 16384 --seed 3 --out /tmp/s.npz
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_ROWS = 16384  # rows per generated block; fixed, so the output does not depend on it
CALIBRATION_ROWS = 20000  # rows drawn (from their own stream) to scale the planted weights
STOP_RANKS = 50  # the most frequent columns: function words, no sentiment
SENTIMENT_FRACTION = 0.02  # share of the other columns that carry a strong weight
SENTIMENT_BAND = 1 / 64  # ... except the next features / 64 ranks (common words), where it is
SENTIMENT_BAND_FRACTION = 0.2  # this share: "good", "bad", "great" are frequent words
NOISE_SCALE = 0.1  # weight scale of the remaining columns, relative to a strong one

# Streams spawned from the seed: one per purpose, and one per chunk of rows.
_MODEL, _CALIBRATION, _LENGTHS, _ROWS, _LABELS = range(5)


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for one purpose (and chunk) of a seed."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _zipf_probabilities(features: int, exponent: float) -> np.ndarray:
    """Probability of each frequency rank (rank 0 the most frequent)."""
    p = 1.0 / np.arange(1, features + 1, dtype=np.float64) ** exponent
    return p / p.sum()


def _token_rate(p: np.ndarray, nnz_per_row: float) -> float:
    """Poisson token rate lambda whose expected count of distinct columns is ``nnz_per_row``.

    With a Poisson token count, column j's count is Poisson(lambda p_j), independently, so
    E[distinct] = sum_j 1 - exp(-lambda p_j), increasing in lambda: bisect.
    """
    lo, hi = float(nnz_per_row), float(nnz_per_row)
    while np.sum(-np.expm1(-hi * p)) < nnz_per_row:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.sum(-np.expm1(-mid * p)) < nnz_per_row else (lo, mid)
    return 0.5 * (lo + hi)


class _Model:
    """The fixed parts of the generator: column frequencies, idf, planted weights."""

    def __init__(self, features: int, nnz_per_row: float, seed: int, zipf: float) -> None:
        rng = _stream(seed, _MODEL)
        self.features = features
        p_rank = _zipf_probabilities(features, zipf)
        self.rate = _token_rate(p_rank, nnz_per_row)
        self.cdf = np.cumsum(p_rank)
        self.cdf[-1] = 1.0
        self.rank_to_col = rng.permutation(features).astype(np.int32)
        p_col = np.empty(features)
        p_col[self.rank_to_col] = p_rank
        # idf from the probability that a row holds the column (its expected document frequency
        # share), not from counts, so the distribution, and the optimum, do not depend on ``rows``.
        self.idf = 1.0 - np.log(-np.expm1(-self.rate * p_col))
        # Planted weights by rank: strong +-(1 + Exp(1)) on a few columns, small noise elsewhere,
        # almost nothing on the stop-word-like ranks.
        band = np.arange(features) < STOP_RANKS + features * SENTIMENT_BAND
        strong = rng.random(features) < np.where(band, SENTIMENT_BAND_FRACTION, SENTIMENT_FRACTION)
        strong[:STOP_RANKS] = False
        w_rank = rng.normal(0.0, NOISE_SCALE, features)
        w_rank[strong] = rng.choice([-1.0, 1.0], int(strong.sum())) * (1.0 + rng.exponential(1.0, int(strong.sum())))
        w_rank[:STOP_RANKS] *= 0.1
        self.weights = np.empty(features)
        self.weights[self.rank_to_col] = w_rank
        self.n_strong = int(strong.sum())
        self.intercept = 0.0

    def lengths(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Token counts of ``n`` rows: Poisson(rate), at least 1 (no empty rows)."""
        return np.maximum(rng.poisson(self.rate, n), 1)

    def rows(self, rng: np.random.Generator, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR parts of one block of rows: per-row counts, int32 columns, float32 values."""
        n = len(lengths)
        row = np.repeat(np.arange(n, dtype=np.int64), lengths)
        ranks = np.searchsorted(self.cdf, rng.random(row.size), side="right")
        np.minimum(ranks, self.features - 1, out=ranks)
        key = row * self.features + self.rank_to_col[ranks]
        del ranks, row
        key, tf = np.unique(key, return_counts=True)  # sorted: by row, then column
        row = key // self.features
        cols = (key - row * self.features).astype(np.int32)
        del key
        vals = (1.0 + np.log(tf)) * self.idf[cols]
        vals /= np.sqrt(np.bincount(row, weights=vals * vals, minlength=n))[row]
        return np.bincount(row, minlength=n), cols, vals.astype(np.float32)

    def margins(self, counts: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """x . w for the rows of one block, from the stored (float32) values."""
        row = np.repeat(np.arange(len(counts)), counts)
        return np.bincount(row, weights=vals.astype(np.float64) * self.weights[cols], minlength=len(counts))

    def calibrate(self, seed: int, bayes_accuracy: float) -> None:
        """Scale the weights and set the intercept: balanced classes, the Bayes accuracy asked for."""
        rng = _stream(seed, _CALIBRATION)
        counts, cols, vals = self.rows(rng, self.lengths(rng, CALIBRATION_ROWS))
        m = self.margins(counts, cols, vals)
        centred = np.abs(m - np.median(m))
        lo, hi = 0.0, 1.0
        while np.mean(_sigmoid(hi * centred)) < bayes_accuracy and hi < 1e6:
            hi *= 2.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if np.mean(_sigmoid(mid * centred)) < bayes_accuracy else (lo, mid)
        scale = 0.5 * (lo + hi)
        self.weights *= scale
        self.intercept = -scale * float(np.median(m))


def _generate(rows: int, features: int, nnz_per_row: float, seed: int, *, zipf: float = 1.0,
              bayes_accuracy: float = 0.90) -> tuple[dict[str, np.ndarray], dict[str, Any], np.ndarray]:
    """The npz arrays, the info dict, and the planted weights."""
    if rows < 1 or features < 2:
        raise ValueError("rows must be >= 1 and features >= 2")
    if not 0 < nnz_per_row < 0.5 * features:
        raise ValueError(f"nnz_per_row must be in (0, features / 2); got {nnz_per_row}")
    if not 0.5 < bayes_accuracy < 1.0:
        raise ValueError(f"bayes_accuracy must be in (0.5, 1); got {bayes_accuracy}")
    t0 = time.perf_counter()
    model = _Model(features, nnz_per_row, seed, zipf)
    model.calibrate(seed, bayes_accuracy)
    lengths = model.lengths(_stream(seed, _LENGTHS), rows)
    capacity = int(lengths.sum())  # distinct columns <= tokens; the unused tail is never touched
    index_dtype = np.int32 if capacity < 2**31 else np.int64
    data = np.empty(capacity, dtype=np.float32)
    indices = np.empty(capacity, dtype=np.int32)
    indptr = np.zeros(rows + 1, dtype=index_dtype)
    y = np.empty(rows, dtype=np.int8)
    bayes_acc = bayes_loss = sign_hits = 0.0
    nnz = 0
    for k, start in enumerate(range(0, rows, CHUNK_ROWS)):
        stop = min(start + CHUNK_ROWS, rows)
        rng = _stream(seed, _ROWS, k)
        counts, cols, vals = model.rows(rng, lengths[start:stop])
        data[nnz:nnz + len(vals)] = vals
        indices[nnz:nnz + len(cols)] = cols
        indptr[start + 1:stop + 1] = nnz + np.cumsum(counts)
        nnz += len(vals)
        z = model.margins(counts, cols, vals) + model.intercept
        prob = _sigmoid(z)
        # labels from their own stream: after the tokens, a chunk cut short by --rows drew them from
        # another point of its stream, so the first N rows' labels depended on --rows
        y[start:stop] = _stream(seed, _LABELS, k).random(stop - start) < prob
        confident = _sigmoid(np.abs(z))
        bayes_acc += float(confident.sum())
        bayes_loss += float(np.sum(np.logaddexp(0.0, -np.abs(z)) + (1.0 - confident) * np.abs(z)))
        sign_hits += float(np.sum((z > 0) == (y[start:stop] == 1)))
    del lengths
    arrays = {"X_data": data[:nnz], "X_indices": indices[:nnz], "X_indptr": indptr,
              "X_shape": np.array([rows, features], dtype=np.int64), "y": y}
    info: dict[str, Any] = {
        "rows": rows, "features": features, "nnz_per_row_asked": nnz_per_row, "seed": seed,
        "zipf_exponent": zipf, "bayes_accuracy_target": bayes_accuracy,
        "nnz": nnz, "nnz_per_row": nnz / rows, "token_rate": model.rate,
        "positive_rate": float(y.mean()),
        "weights_norm": float(np.linalg.norm(model.weights)),
        "weights_strong_columns": model.n_strong, "intercept": model.intercept,
        "bayes_accuracy": bayes_acc / rows,  # E[max(p, 1 - p)]: the sign rule's expected accuracy
        "bayes_log_loss": bayes_loss / rows,  # E[entropy]: the true model's expected log loss
        "bayes_rule_accuracy_realised": sign_hits / rows,
        "data_dtype": "float32", "index_dtype": np.dtype(index_dtype).name,
        "seconds_generate": time.perf_counter() - t0,
    }
    return arrays, info, model.weights


def make_sparse(rows: int, features: int, nnz_per_row: float, seed: int, *, zipf: float = 1.0,
                bayes_accuracy: float = 0.90) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """``(X, y, info)``: a CSR matrix, 0/1 labels, and what the generator knows (``info["weights"]``)."""
    import scipy.sparse as sp

    arrays, info, weights = _generate(rows, features, nnz_per_row, seed, zipf=zipf, bayes_accuracy=bayes_accuracy)
    X = sp.csr_matrix((arrays["X_data"], arrays["X_indices"], arrays["X_indptr"]), shape=(rows, features), copy=False)
    info["weights"] = weights
    return X, arrays["y"], info


def _peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=2**20)
    ap.add_argument("--nnz-per-row", type=float, default=60.0, help="Expected distinct columns a row.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of the column frequencies.")
    ap.add_argument("--bayes-accuracy", type=float, default=0.90, help="Accuracy of the true model's sign rule.")
    ap.add_argument("--compress", action="store_true", help="Write a compressed .npz (smaller, slower).")
    ap.add_argument("--out", default="sparse_data.npz", help="Output .npz path.")
    given = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(given)

    out = Path(args.out)
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays, info, weights = _generate(args.rows, args.features, args.nnz_per_row, args.seed,
                                      zipf=args.zipf, bayes_accuracy=args.bayes_accuracy)
    t0 = time.perf_counter()
    tmp = out.with_name(out.name + ".partial.npz")
    (np.savez_compressed if args.compress else np.savez)(tmp, **arrays)
    os.replace(tmp, out)
    np.save(out.with_suffix(".weights.npy"), weights)
    info.update(seconds_write=time.perf_counter() - t0, file_bytes=out.stat().st_size,
                peak_rss_mib=_peak_rss_mib(), compressed=args.compress,
                command=" ".join(["python", "benchmarks/make_sparse_data.py", *given]))
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
