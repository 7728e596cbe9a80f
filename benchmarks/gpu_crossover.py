"""Where CUDA starts to beat the CPU: the measurement behind ``--device auto`` (issue 10).

For each problem (a9a; SST-2 GLUE phrases as TF-IDF 1-2 grams; the generator's sentiment-like
data at 200,000 x 2**18 and 1,000,000 x 2**20, ``make_sparse_data.py``) and each solver (lbfgs
and sgd with L2, fista with L1, strength 1/n_train, the optimizer's default hyperparameters)
it times ``tuner.train.fit`` on ``cpu`` and on ``cuda``: the first epoch (placement and
transfers included) and the median later epoch, each fit cut after ``--fit-seconds`` (a
callback stops it at an epoch's end) so the whole run has a known length. Then, when it is
importable, the batched engine (``tuner.train.fit_many``, ``--k`` trials side by side), and
a small ``tuner tune`` study (``--no-tracking``) on a9a and SST-2 with ``--device cpu``,
``auto`` and ``cuda``: whole processes. Each table row also says what ``--device auto``
picks for that size today (``tuner.train.cuda_pays_off``) and whether the measurement agrees,
and the end suggests ``CUDA_CROSSOVER_SPARSE`` from the measured winners. The large study
(``--large-trials``) runs the same ``tuner tune`` study on the 1,000,000 x 2**20 set with
``--device cuda``, then ``cpu`` for at most the budget left, and compares their trials.

Writes Markdown (and the raw numbers as JSON) to ``--out`` and prints it. Without CUDA only
the CPU columns are filled: ``--dry-run`` shrinks everything to seconds, to check the script on
a machine without a GPU. ``benchmarks/gpu_check.sh`` runs it on the GPU machine.

    python benchmarks/gpu_crossover.py --data-dir ../shared/data --out /tmp/gpu_crossover.md
    python benchmarks/gpu_crossover.py --dry-run --out /tmp/gpu_dry.md
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tuner.train import Callback

ROOT = Path(__file__).resolve().parents[1]
SOLVERS = (("lbfgs", "l2"), ("fista", "l1"), ("sgd", "l2"))


@dataclass
class Problem:
    name: str
    X: Any
    y: np.ndarray
    X_val: Any
    y_val: np.ndarray
    source: str  # how to pass it to `tuner tune`, when a study runs on it ("" : none)
    tune_args: list[str] = field(default_factory=list)

    @property
    def work(self) -> int:
        return int(self.X.nnz)


@dataclass
class Timing:
    problem: str
    rows: int
    features: int
    work: int
    solver: str
    device: str
    k: int = 1
    epochs: int = 0
    first_epoch_s: float | None = None
    epoch_s: float | None = None  # median of the later epochs
    total_s: float | None = None
    error: str = ""


class _Clock(Callback):
    """A callback that notes each epoch's end and stops the fit after ``limit`` seconds."""

    def __init__(self, limit: float, sync: Any) -> None:
        self.limit, self.sync, self.marks = limit, sync, []
        self.t0 = time.perf_counter()

    def on_epoch_end(self, state: Any, logs: Any) -> None:
        self.sync()
        self.marks.append(time.perf_counter())
        if self.marks[-1] - self.t0 > self.limit:
            raise _TimeUp()


class _TimeUp(Exception):
    """Raised by the clock: the fit has run long enough to measure its epochs."""


# --- problems -----------------------------------------------------------------------------------------


def _split(X: Any, y: np.ndarray, seed: int = 0) -> tuple[Any, np.ndarray, Any, np.ndarray]:
    idx = np.random.default_rng(seed).permutation(X.shape[0])
    cut = int(0.8 * len(idx))
    return X[idx[:cut]], y[idx[:cut]], X[idx[cut:]], y[idx[cut:]]


def public_problem(name: str, data_dir: Path, rows: int | None) -> Problem:
    """a9a or SST-2 through the tuner's own loader (scaling / TF-IDF fitted on the training split)."""
    from tuner.data import load_data, prepare

    if name == "a9a":
        path, opts = data_dir / "a9a" / "a9a", {}
        tune = [str(path)]
    else:
        path, opts = data_dir / "sst2-glue" / "train.tsv", {"target": "label", "text_column": "sentence"}
        tune = [str(path), "--target", "label", "--text-column", "sentence"]
    raw = load_data(path, **opts)
    if rows and rows < len(raw):
        raw.X, raw.y = raw.take(np.arange(rows)), raw.y[:rows]
        tune = []  # a subsample: no study (the CLI reads the whole file)
    ds = prepare(raw, val_size=0.2, test_size=0.0, seed=0)
    return Problem(name, ds.X_train.tocsr(), ds.y_train, ds.X_val.tocsr(), ds.y_val, name, tune)


def generated_problem(rows: int, features: int, nnz: float) -> Problem:
    spec = importlib.util.spec_from_file_location("make_sparse_data", ROOT / "benchmarks" / "make_sparse_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    X, y, _ = mod.make_sparse(rows, features, nnz, 0)
    X_tr, y_tr, X_val, y_val = _split(X, np.asarray(y, dtype=np.int64))
    label = f"generated {rows:,} x 2^{int(np.log2(features))}"
    return Problem(label, X_tr, y_tr, X_val, y_val, "")


# --- timing -------------------------------------------------------------------------------------------


def _sync(device: str) -> Any:
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _plugins(solver: str, penalty: str) -> tuple[Any, dict[str, Any], Any, dict[str, Any]]:
    from tuner import optimizers, penalties

    opt = optimizers.get(solver)
    pen = penalties.get(penalty)
    return pen, {}, opt, {k: v.default for k, v in opt.search_space.items()}


def _measure(p: Problem, solver: str, penalty: str, device: str, k: int, args: argparse.Namespace) -> Timing:
    from tuner.train import TrainConfig

    t = Timing(p.name, p.X.shape[0], p.X.shape[1], p.work, solver, device, k)
    pen, _, opt, op = _plugins(solver, penalty)
    pp = {"strength": 1.0 / p.X.shape[0]}
    config = TrainConfig(epochs=args.epochs, device=device, dtype="float32", seed=0)
    clocks = [_Clock(args.fit_seconds, _sync(device)) for _ in range(k)]
    start = time.perf_counter()
    try:
        if k == 1:
            from tuner.train import fit

            fit(p.X, p.y, 2, pen, pp, opt, op, config, X_val=p.X_val, y_val=p.y_val, callbacks=[clocks[0]])
        else:
            from tuner.train import fit_many

            fit_many(p.X, p.y, 2, pen, [pp] * k, opt, [op] * k, config, X_val=p.X_val, y_val=p.y_val,
                     callbacks=[[c] for c in clocks])
    except _TimeUp:
        pass
    except Exception as exc:  # recorded in the table: one failure does not stop the run
        t.error = f"{type(exc).__name__}: {exc}"[:160]
    _sync(device)()
    marks = clocks[0].marks
    t.total_s = time.perf_counter() - start
    t.epochs = len(marks)
    if marks:
        t.first_epoch_s = marks[0] - start
        later = np.diff(marks)
        t.epoch_s = float(statistics.median(later)) if len(later) else t.first_epoch_s
    return t


def _warm_up(devices: list[str]) -> None:
    """Lazy imports, plugin loading, the CUDA context and cuBLAS/cuSPARSE handles: paid once per
    process, here, not by the first timed fit."""
    import scipy.sparse as sp

    X = sp.random(256, 64, density=0.1, format="csr", random_state=0)
    y = np.arange(256) % 2
    p = Problem("warm-up", X, y, X, y, "")
    ns = argparse.Namespace(epochs=2, fit_seconds=5.0)
    for device in devices:
        for solver, penalty in SOLVERS:
            _measure(p, solver, penalty, device, 1, ns)
        _sync(device)()


def auto_pick(work: int) -> str:
    """What ``--device auto`` picks for a sparse training matrix of ``work`` stored values."""
    from tuner.train import cuda_pays_off

    return "cuda" if cuda_pays_off(work, sparse=True) else "cpu"


# --- studies -----------------------------------------------------------------------------------------


def tuner_cli() -> list[str]:
    script = Path(sys.executable).with_name("tuner")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tuner.cli"]


def study(name: str, data: list[str], device: str, trials: int, work: Path, batch: bool,
          limit: float, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A whole ``tuner tune`` process on ``device``: wall time, best value, trial counts (its
    study database stays in ``work/study-NAME-DEVICE/optuna.db``)."""
    folder = work / f"study-{name}-{device}"
    folder.mkdir(parents=True, exist_ok=True)
    cmd = tuner_cli() + ["tune", *data, "--trials", str(trials), "--study", "s", "--device", device,
                         "--storage", f"sqlite:///{folder / 'optuna.db'}", "--no-tracking", "--json", *extra]
    if batch:
        cmd += ["--batch-trials", "auto"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=max(limit, 1.0))
    except subprocess.TimeoutExpired:
        return {"problem": name, "device": device, "wall": time.perf_counter() - t0,
                "error": f"killed after {max(limit, 1.0):.0f} s (the budget left)"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:] or ["no output"]
        return {"problem": name, "device": device, "wall": wall, "error": tail[0][:160]}
    out = json.loads(proc.stdout[proc.stdout.find("{"):])
    return {"problem": name, "device": device, "wall": wall, "best": out.get("best_value"),
            "trials": out.get("trials"), "batch": batch}


def stored_trials(db: Path) -> list[Any]:
    """The trials of a study database left by :func:`study` (also one whose process was killed:
    its finished trials are kept); none when it was never created."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not db.exists():
        return []
    return optuna.load_study(study_name="s", storage=f"sqlite:///{db}").get_trials(deepcopy=False)


def training_seconds(trials: list[Any]) -> float | None:
    """Seconds the study's groups of trials spent training (their ``group`` attribute), the rest
    of its wall time being start-up, data, Optuna and evaluation."""
    from trial_groups import groups_of

    return sum(seconds for _, seconds in groups_of(trials)) if trials else None


def trial_values(trials: list[Any]) -> dict[int, float]:
    """Each complete trial's value, by number."""
    import optuna

    return {t.number: float(t.value) for t in trials if t.state == optuna.trial.TrialState.COMPLETE}


def compare_trials(a: dict[int, float], b: dict[int, float]) -> dict[str, Any]:
    """The trials complete on both sides (same numbers: same seed, same sampler): how far their
    values are apart, and each side's best among them."""
    common = sorted(set(a) & set(b))
    if not common:
        return {"common": 0}
    rel = [abs(a[n] - b[n]) / max(abs(b[n]), 1e-12) for n in common]
    return {"common": len(common), "max_rel_diff": max(rel), "median_rel_diff": float(np.median(rel)),
            "best_a": min(a[n] for n in common), "best_b": min(b[n] for n in common)}


def cli_has_batch_trials() -> bool:
    proc = subprocess.run(tuner_cli() + ["tune", "--help"], capture_output=True, text=True)
    return "--batch-trials" in proc.stdout


# --- report -----------------------------------------------------------------------------------------


def _s(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def _counts(trials: dict[str, int] | None) -> str:
    return f"{trials.get('complete', 0)} / {trials.get('pruned', 0)} / {trials.get('fail', 0)}" if trials else ""


def fit_table(rows: list[Timing]) -> list[str]:
    out = ["| problem | rows | stored values | solver | K | device | epochs | first epoch s | later epoch s | "
           "cpu/cuda per epoch | auto picks | agrees |", "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---|---|"]
    for t in rows:
        speed = pick = agree = ""
        other = next((o for o in rows if (o.problem, o.solver, o.k) == (t.problem, t.solver, t.k) and o.device == "cpu"),
                     None)
        if t.device.startswith("cuda") and other and other.epoch_s and t.epoch_s:
            ratio = other.epoch_s / t.epoch_s
            speed = f"{ratio:.2f}x"
            pick = auto_pick(t.work)
            agree = "yes" if (pick == "cuda") == (ratio > 1) else "**no**"
        err = f" ({t.error})" if t.error else ""
        out.append(f"| {t.problem} | {t.rows:,} | {t.work:,} | {t.solver} | {t.k} | {t.device}{err} | {t.epochs} | "
                   f"{_s(t.first_epoch_s)} | {_s(t.epoch_s)} | {speed} | {pick} | {agree} |")
    return out


def suggestion(rows: list[Timing], full: dict[str, bool]) -> list[str]:
    """The smallest measured size (one trial) from which CUDA won at every larger size, per kind of solver."""
    lines = []
    for kind, is_full in (("full batch", True), ("mini-batch", False)):
        pairs = []
        for t in rows:
            if t.device.startswith("cuda") and t.k == 1 and full[t.solver] == is_full and t.epoch_s:
                cpu = next((o for o in rows if (o.problem, o.solver, o.k, o.device) == (t.problem, t.solver, t.k, "cpu")
                            and o.epoch_s), None)
                if cpu:
                    pairs.append((t.work, cpu.epoch_s / t.epoch_s))
        if not pairs:
            lines.append(f"- {kind}: no CUDA measurement.")
            continue
        pairs.sort()
        wins_from = next((w for i, (w, _) in enumerate(pairs) if all(r > 1 for _, r in pairs[i:])), None)
        lines.append(f"- {kind}: CUDA faster per epoch at every measured size from {wins_from:,} stored values "
                     f"(one trial)" if wins_from else f"- {kind}: CUDA not faster at the largest measured size "
                     f"({pairs[-1][0]:,} stored values).")
    return lines


class Run:
    """The measurements of one invocation, within a time budget (what does not fit is skipped)."""

    def __init__(self, args: argparse.Namespace, devices: list[str], argv: list[str]) -> None:
        self.args, self.devices, self.argv = args, devices, argv
        self.batch = False  # whether the studies ran with --batch-trials auto
        self.started = time.perf_counter()
        self.timings: list[Timing] = []
        self.studies: list[dict[str, Any]] = []
        self.skipped: list[str] = []
        self.problems: list[Problem] = []
        self.large: dict[str, Any] = {}

    def save(self) -> str:
        """Write the report so far (a run killed at its time limit still leaves its numbers)."""
        text = report(self)
        if self.args.out:
            Path(self.args.out).write_text(text)
            Path(self.args.out).with_suffix(".json").write_text(json.dumps(
                {"timings": [asdict(t) for t in self.timings], "studies": self.studies, "large": self.large,
                 "skipped": self.skipped},
                indent=1))
        return text

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.started)

    def fits(self, makers: dict[str, Any], names: str) -> None:
        """Each problem of ``names`` (comma-separated), each solver, CUDA then CPU, one trial."""
        for name in filter(None, names.split(",")):
            if self.left() <= 0:
                self.skipped.append(f"problem {name}")
                continue
            t0 = time.perf_counter()
            p = makers[name]()
            print(f"{p.name}: {p.X.shape[0]:,} x {p.X.shape[1]:,}, {p.work:,} stored values "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
            self.problems.append(p)
            for solver, penalty in SOLVERS:
                self._time(p, solver, penalty, 1)

    def batched(self) -> None:
        """The batched engine, K trials side by side, for the pairs that support it."""
        from tuner.train import batchable

        for p in self.problems:
            for solver, penalty in SOLVERS:
                pen, _, opt, _ = _plugins(solver, penalty)
                if batchable(pen, opt):
                    self._time(p, solver, penalty, self.args.k)

    def _time(self, p: Problem, solver: str, penalty: str, k: int) -> None:
        for device in reversed(self.devices):
            if self.left() <= 0:
                self.skipped.append(f"{p.name} {solver} K={k} {device}")
                continue
            t = _measure(p, solver, penalty, device, k, self.args)
            self.timings.append(t)
            self.save()
            print(f"  {solver} K={k} {device}: {t.epochs} epochs, {_s(t.epoch_s)} s/epoch {t.error}", flush=True)

    def run_studies(self, batch: bool) -> None:
        """Small whole-process studies with --device cpu, auto and cuda."""
        self.batch = batch
        with tempfile.TemporaryDirectory(prefix="gpu-crossover-") as tmp:
            self._studies(Path(tmp), batch)

    def _studies(self, work: Path, batch: bool) -> None:
        targets = [(p.name, p.tune_args) for p in self.problems if p.tune_args]
        if self.args.dry_run:  # the public sets were subsampled: check the study path on a bundled set
            targets = [("breast_cancer", ["--dataset", "breast_cancer"])]
        for name, data in targets:
            for device in [d for d in self.args.study_devices.split(",") if d in ("auto", *self.devices)]:
                if self.left() <= 0:
                    self.skipped.append(f"study {name} {device}")
                    continue
                self.studies.append(study(name, data, device, self.args.study_trials, work, batch, self.left()))
                self.save()
                print(f"  study {name} {device}: {self.studies[-1]}", flush=True)


    def large_study(self) -> None:
        """Issue 10's GPU check: the same ``--large-trials`` study on the generator's 1,000,000 x
        2**20 set (``--large-rows``), on CUDA, then on the CPU cores for at most the budget left
        (a CPU run cut short still says how much slower it is, and its finished trials are
        compared with CUDA's, number by number)."""
        if self.args.large_trials <= 0:
            return
        started = time.perf_counter()

        def left() -> float:  # the large study's own budget, within the run's
            return min(self.left(), self.args.large_budget_s - (time.perf_counter() - started))

        with tempfile.TemporaryDirectory(prefix="gpu-large-") as tmp:
            work = Path(tmp)
            data = work / "sparse.npz"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_sparse_data.py"), "--rows",
                            str(self.args.large_rows), "--out", str(data)], check=True, capture_output=True)
            self.large["generate_s"] = time.perf_counter() - t0
            print(f"large: {self.args.large_rows:,} rows generated in {self.large['generate_s']:.0f} s", flush=True)
            extra = ("--epochs", str(self.args.large_epochs))
            name = f"generated {self.args.large_rows:,} x 2^20"
            trials: dict[str, list[Any]] = {}
            for device in self.devices[::-1]:  # CUDA first: its time bounds what the CPU needs
                if left() <= 10:
                    self.skipped.append(f"large study {device}")
                    continue
                row = study(name, [str(data)], device, self.args.large_trials, work, True, left(), extra)
                trials[device] = stored_trials(work / f"study-{name}-{device}" / "optuna.db")
                row["training_s"] = training_seconds(trials[device])
                self.large.setdefault("studies", []).append(row)
                self.save()
                print(f"  large study {device}: {row}", flush=True)
            values = {d: trial_values(trials.get(d, [])) for d in self.devices}
            if len(self.devices) > 1:
                self.large["same_trials"] = compare_trials(values["cuda"], values["cpu"])
            self.large["complete"] = {d: len(v) for d, v in values.items()}
            self.save()


def large_table(run: Run) -> list[str]:
    large, args = run.large, run.args
    if not large.get("studies"):
        return []
    lines = ["", f"Large study: `tuner tune GENERATED.npz --trials {args.large_trials} --epochs {args.large_epochs} "
             f"--batch-trials auto --no-tracking --device DEVICE` on `make_sparse_data.py --rows {args.large_rows}` "
             f"(generated in {large.get('generate_s', 0):.0f} s), whole processes:", "",
             "| --device | wall s | of it training s | best val log loss | complete / pruned / failed | "
             "trials complete in the DB |", "|---|---:|---:|---:|---|---:|"]
    for s in large["studies"]:
        lines.append(f"| {s['device']} | {s['wall']:.1f} | {_s(s.get('training_s'), '.1f')} | {_s(s.get('best'), '.5f')} | "
                     f"{_counts(s.get('trials')) or s.get('error')} | {large.get('complete', {}).get(s['device'], '')} |")
    walls = {s["device"]: s for s in large["studies"]}
    if "cuda" in walls and "cpu" in walls:
        bound = "" if not walls["cpu"].get("error") else "at least "
        lines += ["", f"CPU / CUDA wall time: {bound}{walls['cpu']['wall'] / walls['cuda']['wall']:.2f}x."]
    same = large.get("same_trials")
    if same:
        lines.append(f"Trials complete on both devices: {same['common']}" + (
            f"; their values differ by at most {same['max_rel_diff']:.2e} relative (median {same['median_rel_diff']:.2e});"
            f" best among them: CUDA {same['best_a']:.5f}, CPU {same['best_b']:.5f}." if same["common"] else "."))
    return lines


def report(run: Run) -> str:
    import torch

    args, argv, batch = run.args, run.argv, run.batch
    full = {s: bool(_plugins(s, p)[2].full_batch) for s, p in SOLVERS}
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    lines = ["# CPU vs CUDA crossover (issue 10)", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {gpu}; {os.cpu_count()} CPU cores; torch "
             f"{torch.__version__}; {torch.get_num_threads()} threads; `python benchmarks/gpu_crossover.py "
             f"{' '.join(argv)}`{' (DRY RUN: tiny sizes, numbers meaningless)' if args.dry_run else ''}.", "",
             f"Fits cut at the first epoch end past {args.fit_seconds:g} s (epoch cap {args.epochs}); 'later epoch s' "
             "is the median epoch after the first; strength 1/n_train, default optimizer hyperparameters, float32.", ""]
    lines += fit_table(run.timings) + ["", "Suggested crossover (from the per-epoch winners):", ""]
    lines += suggestion(run.timings, full)
    if run.studies:
        lines += ["", f"Studies: `tuner tune --trials {args.study_trials} --no-tracking"
                  f"{' --batch-trials auto' if batch else ''}`, whole processes:", "",
                  "| problem | --device | wall s | best val log loss | complete / pruned / failed |",
                  "|---|---|---:|---:|---|"]
        lines += [f"| {s['problem']} | {s['device']} | {s['wall']:.1f} | {_s(s.get('best'), '.5f')} | "
                  f"{_counts(s.get('trials')) or s.get('error')} |" for s in run.studies]
    lines += large_table(run)
    if run.skipped:
        lines += ["", f"Skipped (past the {args.budget_s:g} s budget): {', '.join(run.skipped)}."]
    lines.append(f"\nTotal {time.perf_counter() - run.started:.0f} s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("TUNER_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--problems", default="a9a,sst2", help="Fits timed before the small studies (their data).")
    ap.add_argument("--late-problems", default="gen200k,gen1m", help="Fits timed after the small studies.")
    ap.add_argument("--epochs", type=int, default=100, help="Epoch cap of each timed fit.")
    ap.add_argument("--fit-seconds", type=float, default=8.0, help="Stop a timed fit at the first epoch end past this.")
    ap.add_argument("--k", type=int, default=16, help="Trials side by side for the batched engine (0: skip).")
    ap.add_argument("--study-trials", type=int, default=12, help="Trials of each small study (0: skip).")
    ap.add_argument("--study-devices", default="auto,cpu,cuda", help="--device values of the small studies, in order.")
    ap.add_argument("--large-trials", type=int, default=20, help="Trials of the large study (0: skip).")
    ap.add_argument("--large-rows", type=int, default=1_000_000, help="Rows of the large study's data.")
    ap.add_argument("--large-budget-s", type=float, default=330.0, help="Seconds the large study may take in all.")
    ap.add_argument("--large-epochs", type=int, default=20, help="Epoch cap of the large study's trials.")
    ap.add_argument("--budget-s", type=float, default=330.0, help="Skip what is left after this many seconds.")
    ap.add_argument("--dry-run", action="store_true", help="Tiny sizes and caps: check the script in seconds.")
    ap.add_argument("--out", default=None, help="Markdown file to write (a .json beside it holds the numbers).")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    import torch

    if args.dry_run:
        args.fit_seconds, args.epochs = 0.5, 3
        args.k, args.study_trials = min(args.k, 2), min(args.study_trials, 2)
        args.large_trials, args.large_rows, args.large_epochs = min(args.large_trials, 2), 3000, 2
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    run = Run(args, devices, argv)
    _warm_up(devices)
    scale, sub = (0.01, 3000) if args.dry_run else (1.0, None)
    data_dir = Path(args.data_dir)
    makers = {"a9a": lambda: public_problem("a9a", data_dir, sub),
              "sst2": lambda: public_problem("sst2", data_dir, sub),
              "gen200k": lambda: generated_problem(int(200_000 * scale), 2**18, 32.0),
              "gen1m": lambda: generated_problem(int(1_000_000 * scale), 2**20, 60.0)}
    run.large_study()  # first: the check that needs the longest CPU run
    run.fits(makers, args.problems)
    batch = args.study_trials > 0 and cli_has_batch_trials()
    if args.study_trials > 0:
        run.run_studies(batch)
    run.fits(makers, args.late_problems)
    if args.k > 1:
        run.batched()
    print(run.save())


if __name__ == "__main__":
    main()
