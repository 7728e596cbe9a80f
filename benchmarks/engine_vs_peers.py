"""Issue 10's checks: `tuner tune` against Optuna + scikit-learn + MLflow, whole processes side by side.

Both sides are timed as whole processes (``subprocess`` + ``time.perf_counter``: interpreter
start, imports, data loading, every trial logged to MLflow, the best model registered), one
after the other, on the same data, split and preprocessing (the peer reads the data through
``tuner.data``, as ``tuner tune`` does: same stratified split, same scaling or TF-IDF 1-2 grams):

* ours: ``tuner tune DATA --trials N --study S --storage sqlite:///$W/optuna.db
  --tracking-uri sqlite:///$W/mlflow.db --json`` plus ``--ours-args`` (e.g. ``"--batch-trials auto"``);
* the peer: ``benchmarks/_peer_optuna_sklearn.py`` (Optuna TPE, seed 0, over penalty none/l1/l2/
  elasticnet, C over the same strengths as ours and l1_ratio, scikit-learn's recommended solver
  per penalty, every trial an MLflow run with its pickled model, the best one logged as an MLflow
  model and registered, as ours). ``--peer-trial-limit S`` kills a peer
  fit after S seconds (it counts as S seconds and pruned, which TPE ranks worst).

Each side starts cold: its own fresh ``TUNER_CACHE_DIR`` (ours keeps a migrated MLflow store
template there, 1-2 s a first run pays), and a process killed at ``--process-timeout`` is killed
with its whole process group (the peer's fitting worker too).

Checks (``--checks``, comma-separated; the targets are issue 10's):

  a9a100  a9a, 100 trials, test on a9a.t: peer/ours wall >= 20x, test log loss <= 1% above the peer's
  a9a30   a9a, 30 trials: >= 5x
  sst2    SST-2 (GLUE phrases, TF-IDF 1-2 grams, test on the labelled sentence test set), 30 trials: >= 20x
  bc50    breast_cancer, 50 trials: ours no slower than the peer, <= 10% of trials pruned as not converged
          (each side runs 3 times, alternating, and each side's median run counts: ``--repeat``)
  batch   ours alone, a 64-trial study on a9a and on SST-2 with --batch-trials 1 and auto:
          >= 4x fewer seconds per trial with auto, the same best value within noise

Each check's Markdown table (wall seconds, ratio, best validation and test log loss, the
relative test-loss difference, trials pruned/failed, the 1-minute load average before and
after, the date and the exact commands) is printed; ``--write-results`` also puts it into
benchmarks/RESULTS.md between ``<!-- engine-vs-peers:begin -->`` and ``<!-- engine-vs-peers:end -->``
(a check run again replaces its own table; the others stay). ``--trials N`` replaces every
check's trial count (for a quick end-to-end run; the section's title then says N).

    python benchmarks/engine_vs_peers.py --checks a9a100,a9a30,sst2,bc50,batch --write-results
    python benchmarks/engine_vs_peers.py --checks bc50 --trials 4 --repeat 1   # a smoke run
    python benchmarks/engine_vs_peers.py --checks a9a30 --ours-args "--batch-trials auto"

Run it on a quiet machine: both sides share its cores, and the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trial_groups import groups_of  # this folder's (a script's own folder is on the path)

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "benchmarks" / "_peer_optuna_sklearn.py"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- engine-vs-peers:begin -->", "<!-- engine-vs-peers:end -->"
CHECK_ORDER = ("a9a100", "a9a30", "sst2", "bc50", "batch")
NOT_CONVERGED = "not converged"


@dataclass(frozen=True)
class Check:
    """One of issue 10's side-by-side checks."""

    name: str
    title: str
    data: tuple[str, ...]
    trials: int
    min_ratio: float  # peer wall / ours wall (batch: s per trial with 1 / with auto)
    max_not_converged: float | None = None  # share of the budget pruned as not converged
    repeat: int = 1  # runs of each side, alternating; the table shows each side's median run


CHECKS = {
    "a9a100": Check("a9a100", "a9a", ("a9a",), 100, 20.0),
    "a9a30": Check("a9a30", "a9a", ("a9a",), 30, 5.0),
    "sst2": Check("sst2", "SST-2, TF-IDF 1-2 grams", ("sst2",), 30, 20.0),
    # ~20 s a side: within the machine's spread (a fifth, run to run) one pair decides nothing
    "bc50": Check("bc50", "breast_cancer", ("breast_cancer",), 50, 1.0, max_not_converged=0.10, repeat=3),
    "batch": Check("batch", "--batch-trials 1 vs auto", ("a9a", "sst2"), 64, 4.0),
}
MAX_TEST_EXCESS = 0.01  # ours' test log loss at most 1% above the peer's


@dataclass
class Side:
    """One timed process and what its output says."""

    label: str
    command: list[str]
    wall: float = 0.0
    best_value: float | None = None
    test_log_loss: float | None = None
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    not_converged: int = 0
    cut: int = 0
    loop_seconds: float | None = None  # first trial start to last trial end (ours)
    training_seconds: float | None = None  # the groups' training, within the loop (ours)
    training_by_optimizer: dict[str, float] = field(default_factory=dict)
    best: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --- data -------------------------------------------------------------------------------------


def data_args(name: str, data_dir: Path, prep: Path) -> list[str]:
    """The data options, the same for both sides."""
    if name == "breast_cancer":
        return ["--dataset", "breast_cancer"]
    if name == "a9a":
        return [str(data_dir / "a9a" / "a9a"), "--test-file", str(data_dir / "a9a" / "a9a.t")]
    if name == "sst2":
        return [str(data_dir / "sst2-glue" / "train.tsv"), "--target", "label", "--text-column", "sentence",
                "--test-file", str(sst2_test_file(data_dir, prep))]
    raise SystemExit(f"Unknown data set {name!r}; expected breast_cancer, a9a or sst2.")


def sst2_test_file(data_dir: Path, prep: Path) -> Path:
    """SST-2's labelled test set with the training file's column names (its text column is 'content')."""
    out = prep / "sst2-test.tsv"
    if not out.exists():
        lines = (data_dir / "sst2-glue" / "test.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
        if lines[0].split() != ["label", "content"]:
            raise SystemExit(f"Unexpected header in {data_dir / 'sst2-glue' / 'test.tsv'}: {lines[0]!r}")
        out.write_text("label\tsentence\n" + "".join(lines[1:]), encoding="utf-8")
    return out


# --- running the two sides ----------------------------------------------------------------------


def tuner_command() -> list[str]:
    """The `tuner` console script of this interpreter (what a user runs), else ``python -m tuner.cli``."""
    script = Path(sys.executable).with_name("tuner")
    if script.exists():
        return [str(script)]
    found = shutil.which("tuner")
    return [found] if found else [sys.executable, "-m", "tuner.cli"]


def subprocess_env(cwd: Path | None = None) -> dict[str, str]:
    """The caller's environment, with the repository importable (the peer imports ``tuner.data``),
    and a cache folder of its own in ``cwd`` (a cold start, as a first run is)."""
    env = dict(os.environ)
    if cwd is not None:
        env["TUNER_CACHE_DIR"] = str(cwd / ".cache")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("TUNER_STORAGE", None)
    return env


def timed(command: list[str], cwd: Path, timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds of a whole process; one past the timeout is killed and reported as failed."""
    import signal

    t0 = time.perf_counter()
    with subprocess.Popen(command, cwd=cwd, env=subprocess_env(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as child:
        try:
            out, err = child.communicate(timeout=timeout)
            proc = subprocess.CompletedProcess(command, child.returncode, out, err)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the whole group: the peer's fitting worker too
            child.communicate()
            proc = subprocess.CompletedProcess(command, 124, "", f"killed after --process-timeout {timeout:g} s")
    return time.perf_counter() - t0, proc


def last_json(text: str) -> dict[str, Any]:
    """The JSON object a process printed last on stdout (ours prints an indented one, the peer one line)."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the output")
    return json.loads(text[start:])


def failure(proc: subprocess.CompletedProcess[str]) -> str:
    """The exit code and the last line the process printed (no '|', which would split a table cell)."""
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
    return f"exit {proc.returncode}: {lines[-1] if lines else 'no output'}".replace("|", "/")


def run_ours(data: list[str], trials: int, work: Path, extra: list[str], timeout: float) -> Side:
    work.mkdir(parents=True)
    cmd = tuner_command() + ["tune", *data, "--trials", str(trials), "--study", "bench",
                             "--storage", f"sqlite:///{work / 'optuna.db'}",
                             "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}", "--json", *extra]
    side = Side("logreg-tuner (`tuner tune`)", cmd)
    side.wall, proc = timed(cmd, work, timeout)
    if proc.returncode != 0:
        side.error = failure(proc)
        return side
    out = last_json(proc.stdout)
    if not out.get("model_version"):  # MLflow logging failed, and the study went on: a cheaper run than the peer's
        said = [w for w in out.get("warnings", []) if "MLflow" in w or "mlflow" in w]
        side.error = f"exit 0 but no model version registered ({said[0] if said else 'no warning said why'})".replace("|", "/")
        return side
    side.best_value, side.test_log_loss = out.get("best_value"), (out.get("test") or {}).get("log_loss")
    counts = out.get("trials", {})
    side.complete, side.pruned, side.failed = counts.get("complete", 0), counts.get("pruned", 0), counts.get("fail", 0)
    best = out.get("best_params") or {}
    side.best = f"{best['penalty']}:{best['optimizer']}" if "penalty" in best else ""
    side.not_converged, side.loop_seconds, side.training_by_optimizer = study_facts(
        f"sqlite:///{work / 'optuna.db'}", "bench")
    side.training_seconds = sum(side.training_by_optimizer.values())
    return side


def study_facts(storage: str, study: str) -> tuple[int, float | None, dict[str, float]]:
    """Trials pruned as not converged, the span from the first trial's start to the last one's end,
    and the seconds its groups of trials trained, by optimizer (the trials' ``group`` attributes)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=study, storage=storage).trials
    not_converged = sum(str(t.user_attrs.get("prune_reason", "")).startswith(NOT_CONVERGED) for t in trials)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    span = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    training: dict[str, float] = {}
    for members, seconds in groups_of(trials):
        name = str(members[0].user_attrs.get("optimizer", "?"))
        training[name] = training.get(name, 0.0) + seconds
    return not_converged, span, training


def run_peer(data: list[str], trials: int, work: Path, limit: float, timeout: float) -> Side:
    work.mkdir(parents=True)
    cmd = [sys.executable, str(PEER), *data, "--trials", str(trials), "--study", "bench", "--workdir", str(work),
           "--trial-limit", f"{limit:g}"]
    side = Side("Optuna TPE + scikit-learn + MLflow", cmd)
    side.wall, proc = timed(cmd, work, timeout)
    if proc.returncode != 0:
        side.error = failure(proc)
        return side
    out = last_json(proc.stdout)
    side.best_value, side.test_log_loss = out["best_value"], out["test_log_loss"]
    side.complete, side.failed, side.cut = out["complete"], out["failed"], out["cut"]
    side.pruned = out.get("pruned", 0)
    p = out.get("best_params") or {}
    side.best = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())
    return side


# --- Markdown -------------------------------------------------------------------------------------


def fmt(v: float | None, spec: str = ".5f") -> str:
    return "n/a" if v is None else format(v, spec)


def shown(command: list[str], work_root: Path) -> str:
    """A command as a user would type it: the work folder as $W, the repository relative, `tuner` bare."""
    text = shlex.join(command).replace(str(work_root), "$W")
    text = text.replace(str(ROOT) + "/", "").replace(sys.executable, "python")
    return re.sub(r"^\S*/tuner ", "tuner ", text)


def side_row(s: Side) -> str:
    if s.error:
        return f"| {s.label} | {s.wall:.1f} | failed: {s.error} | | | |"
    trials = f"{s.complete} / {s.pruned} / {s.failed}"
    if s.label.startswith("logreg"):
        trials += f" (not converged: {s.not_converged})"
    elif s.cut:
        trials += f" ({s.cut} cut at the limit)"
    return f"| {s.label} | {s.wall:.1f} | {fmt(s.best_value)} | {fmt(s.test_log_loss)} | {trials} | {s.best} |"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def peer_section(check: Check, trials: int, ours: Side, peer: Side, load: tuple[float, float], limit: float,
                 work_root: Path, when: str) -> list[str]:
    lines = [f"### {check.title}, {trials} trials (`{check.name}`)", "",
             f"{when}, {os.cpu_count()} cores, 1-minute load average {load[0]:.2f} before, {load[1]:.2f} after.", "",
             "| side | wall s | best val log loss | test log loss | trials complete / pruned / failed | best |",
             "|---|---:|---:|---:|---|---|", side_row(ours), side_row(peer), ""]
    if ours.error or peer.error:
        return lines + ["No ratio: a side failed (see the table).", ""]
    ratio = peer.wall / ours.wall
    bound = " (the peer's cut trials count as the limit)" if peer.cut else ""
    target = ("ours no slower than the peer" if check.min_ratio == 1.0 else f"target >= {check.min_ratio:g}x")
    lines.append(f"**Ratio {ratio:.2f}x** (peer wall / ours){bound}; {target}: {verdict(ratio >= check.min_ratio)}.")
    if ours.test_log_loss is not None and peer.test_log_loss is not None:
        diff = (ours.test_log_loss - peer.test_log_loss) / peer.test_log_loss
        lines.append(f"Test log loss, ours relative to the peer: {diff:+.2%} (target <= {MAX_TEST_EXCESS:+.0%}: "
                     f"{verdict(diff <= MAX_TEST_EXCESS)}).")
    if check.max_not_converged is not None:
        share = ours.not_converged / trials
        lines.append(f"Pruned as not converged: {ours.not_converged} of {trials} ({share:.0%}; target <= "
                     f"{check.max_not_converged:.0%}: {verdict(share <= check.max_not_converged)}).")
    if peer.cut:
        lines.append(f"{peer.cut} peer trial(s) ran past the {limit:g} s limit and were killed (pruned: TPE ranks "
                     "them worst).")
    if ours.complete and peer.complete:
        lines.append(f"Per complete trial (pruned trials are ours' own saving, not the peer's): ours "
                     f"{ours.wall / ours.complete:.2f} s, the peer {peer.wall / peer.complete:.2f} s, "
                     f"{(peer.wall / peer.complete) / (ours.wall / ours.complete):.2f}x.")
    lines += ["", "Commands (`$W` a fresh folder per side):", "",
              f"- ours: `{shown(ours.command, work_root)}`", f"- peer: `{shown(peer.command, work_root)}`", ""]
    return lines + sst2_note(check)


def batch_section(check: Check, trials: int, runs: list[tuple[str, str, Side]], load: tuple[float, float],
                  work_root: Path, when: str) -> list[str]:
    lines = [f"### {check.title}, {trials} trials (`{check.name}`)", "",
             f"{when}, {os.cpu_count()} cores, 1-minute load average {load[0]:.2f} before, {load[1]:.2f} after. "
             "Trial loop: first trial's start to last trial's end (Optuna's timestamps); of which training: "
             "the groups' seconds (each trial's `group` attribute); the rest is asking, telling, evaluating and "
             "MLflow.", "",
             "| data | --batch-trials | wall s | wall s / trial | trial loop s / trial | of which training | rest | "
             "best val log loss | test log loss | complete / pruned / failed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for data, batch, s in runs:
        if s.error:
            lines.append(f"| {data} | {batch} | {s.wall:.1f} | failed: {s.error} | | | | | | |")
            continue
        loop = fmt(s.loop_seconds / trials if s.loop_seconds else None, ".3f")
        train = fmt(s.training_seconds / trials if s.training_seconds is not None else None, ".3f")
        rest = fmt((s.loop_seconds - s.training_seconds) / trials
                   if s.loop_seconds and s.training_seconds is not None else None, ".3f")
        lines.append(f"| {data} | {batch} | {s.wall:.1f} | {s.wall / trials:.3f} | {loop} | {train} | {rest} | "
                     f"{fmt(s.best_value)} | {fmt(s.test_log_loss)} | {s.complete} / {s.pruned} / {s.failed} |")
    lines.append("")
    for data in dict.fromkeys(d for d, _, _ in runs):
        one, auto = (next(s for d, b, s in runs if d == data and b == k) for k in ("1", "auto"))
        if one.error or auto.error or not one.loop_seconds or not auto.loop_seconds:
            lines.append(f"- {data}: no ratio (a run failed).")
            continue
        ratio = one.loop_seconds / auto.loop_seconds
        rel = (auto.best_value - one.best_value) / one.best_value
        lines.append(f"- {data}: **{ratio:.2f}x** fewer trial-loop seconds per trial with `auto` "
                     f"(whole process {one.wall / auto.wall:.2f}x); target >= {check.min_ratio:g}x: "
                     f"{verdict(ratio >= check.min_ratio)}. Best value with auto {rel:+.2%} relative to 1.")
        if auto.training_seconds is not None and auto.loop_seconds > auto.training_seconds:
            ceiling = one.loop_seconds / (auto.loop_seconds - auto.training_seconds)
            lines.append(f"  Were training free with `auto`, its loop would still take its rest: at most "
                         f"**{ceiling:.2f}x** fewer seconds per trial than with 1.")
        for batch, side in (("1", one), ("auto", auto)):
            split = ", ".join(f"{name} {sec:.1f} s" for name, sec in
                              sorted(side.training_by_optimizer.items(), key=lambda kv: -kv[1]))
            lines.append(f"  Training with {batch}, by optimizer: {split or 'none recorded'}.")
    lines += ["", "Commands (`$W` a fresh folder per run):", ""]
    lines += [f"- {data}, {batch}: `{shown(s.command, work_root)}`" for data, batch, s in runs]
    return lines + [""] + sst2_note(check)


def sst2_note(check: Check) -> list[str]:
    if "sst2" not in check.data:
        return []
    return ["`$W/sst2-test.tsv` is `sst2-glue/test.tsv` with the training file's header (`label<TAB>sentence`, not "
            "`content`); validation is 20% of the 67,349 training phrases, stratified, seed 0.", ""]


# --- the checks ---------------------------------------------------------------------------------------


def _commit() -> str:
    """The measured code's commit (``+`` when the tree differs from it), so that a table says what it measured."""
    def git(*cmd: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *cmd], capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+" if git("status", "--porcelain", "--untracked-files=no") else "")


def _without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--opt V`` or ``--opt=V``)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out


def run_check(check: Check, args: argparse.Namespace, work_root: Path) -> list[str]:
    trials = args.trials or check.trials
    data_dir = Path(args.data_dir)
    extra = shlex.split(args.ours_args)
    load_before = os.getloadavg()[0]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + f", commit {_commit()}"
    root = work_root / check.name
    root.mkdir()
    if check.name == "batch":
        runs = []
        own = _without_option(extra, "--batch-trials")  # this check sets it (the commands then show it once)
        for data in check.data:
            for batch in ("1", "auto"):
                side = run_ours(data_args(data, data_dir, work_root), trials, root / f"{data}-{batch}",
                                own + ["--batch-trials", batch], args.process_timeout)
                print(f"[{check.name}] {data} --batch-trials {batch}: {side.wall:.1f} s {side.error}", flush=True)
                runs.append((data, batch, side))
        return batch_section(check, trials, runs, (load_before, os.getloadavg()[0]), work_root, when)
    data = data_args(check.data[0], data_dir, work_root)
    repeat = args.repeat or check.repeat
    ours_runs: list[Side] = []
    peer_runs: list[Side] = []
    for i in range(repeat):  # alternating, so that a slow spell of the machine falls on both sides
        suffix = f"-{i + 1}" if repeat > 1 else ""
        ours_runs.append(run_ours(data, trials, root / f"ours{suffix}", extra, args.process_timeout))
        print(f"[{check.name}] ours: {ours_runs[-1].wall:.1f} s {ours_runs[-1].error}", flush=True)
        peer_runs.append(run_peer(data, trials, root / f"peer{suffix}", args.peer_trial_limit, args.process_timeout))
        print(f"[{check.name}] peer: {peer_runs[-1].wall:.1f} s {peer_runs[-1].error}", flush=True)
    ours, peer = median_run(ours_runs), median_run(peer_runs)
    lines = peer_section(check, trials, ours, peer, (load_before, os.getloadavg()[0]), args.peer_trial_limit,
                         work_root, when)
    if repeat > 1:
        walls = ", ".join(f"{o.wall:.1f}/{p.wall:.1f}" for o, p in zip(ours_runs, peer_runs))
        lines[1:1] = ["", f"Each side ran {repeat} times, alternating (ours/peer wall s: {walls}); the table shows "
                      "each side's median run, and the ratio is the ratio of the medians."]
    return lines


def median_run(runs: list[Side]) -> Side:
    """The run of median wall time (a failed run counts as the slowest, so that a failure shows
    once it is the median: with 3 runs, two failures)."""
    ranked = sorted(runs, key=lambda side: (bool(side.error), side.wall))
    return ranked[(len(ranked) - 1) // 2]


def parse_checks(text: str) -> list[Check]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown or not names:
        raise SystemExit(f"Unknown check(s) {unknown}; choose from {', '.join(CHECK_ORDER)}.")
    return [CHECKS[n] for n in names]


# --- RESULTS.md -----------------------------------------------------------------------------------------


def _marks(name: str) -> tuple[str, str]:
    return f"<!-- check:{name} -->", f"<!-- /check:{name} -->"


def merge_block(old_block: str, sections: dict[str, str], command: str) -> str:
    """The marked block with these checks' sections replaced and the others kept, in CHECK_ORDER."""
    kept = {}
    for name in CHECK_ORDER:
        begin, end = _marks(name)
        m = re.search(re.escape(begin) + r"\n(.*?)" + re.escape(end), old_block, flags=re.S)
        if m:
            kept[name] = m.group(1).rstrip("\n")
    kept.update(sections)
    body = [BEGIN, "", f"Last written by `{command}`; each check below names its own date and commands.", ""]
    for name in CHECK_ORDER:
        if name in kept:
            begin, end = _marks(name)
            body += [begin, kept[name], end, ""]
    return "\n".join(body + [END])


def write_results(sections: dict[str, str], command: str, path: Path = RESULTS) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    m = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), text, flags=re.S)
    block = merge_block(m.group(0) if m else "", sections, command)
    if m:
        text = text[:m.start()] + block + text[m.end():]
    else:
        text = text.rstrip() + "\n\n## Engine vs peers, whole processes (issue 10)\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", default=",".join(CHECK_ORDER), help="Comma-separated: " + ", ".join(CHECK_ORDER))
    ap.add_argument("--data-dir", default=os.environ.get("TUNER_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--trials", type=int, default=None, help="Replace every check's trial count (smoke runs).")
    ap.add_argument("--ours-args", default="", help='Extra options for `tuner tune`, e.g. "--batch-trials auto".')
    ap.add_argument("--peer-trial-limit", type=float, default=120.0,
                    help="Seconds a peer fit may run before it is killed and its trial pruned (0: no limit).")
    ap.add_argument("--process-timeout", type=float, default=7200.0,
                    help="Kill a side's process after this many seconds (reported as failed).")
    ap.add_argument("--repeat", type=int, default=None,
                    help="Runs of each side of a check against the peer, alternating; the median run counts "
                         "(default: each check's own, 3 for bc50, else 1).")
    ap.add_argument("--write-results", action="store_true", help="Also write the tables into benchmarks/RESULTS.md.")
    ap.add_argument("--keep", metavar="DIR", help="Work in DIR (kept) instead of a temporary folder.")
    args = ap.parse_args(argv)
    checks = parse_checks(args.checks)
    command = "python benchmarks/engine_vs_peers.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    sections = {}
    with tempfile.TemporaryDirectory(prefix="engine-vs-peers-") as tmp:
        work_root = Path(args.keep).resolve() / time.strftime("%Y%m%d-%H%M%S") if args.keep else Path(tmp)
        work_root.mkdir(parents=True, exist_ok=True)
        for check in checks:
            lines = run_check(check, args, work_root)
            sections[check.name] = "\n".join(lines).rstrip("\n")
            print("\n" + sections[check.name] + "\n", flush=True)
    if args.write_results:
        write_results(sections, command.strip())
        print(f"Wrote {', '.join(sections)} into {RESULTS}.")


if __name__ == "__main__":
    main()
