"""Memory and time of a study on the 1,000,000 x 2**20 sparse set (issue 10, "Large data").

Generates (or reuses) the set of ``benchmarks/make_sparse_data.py`` under a work folder, then
runs, each as its own process under ``/usr/bin/time -v``:

* ``load``: ``tuner.data.load_data`` on the file, nothing else;
* ``prepare``: ``load_data`` + ``prepare`` (labels, stratified splits, max-abs scaling);
* ``tune``: the whole ``tuner tune FILE --trials N ...`` process (SQLite study in the work
  folder, ``--no-tracking`` unless ``--tracking``); ``--batch-trials K`` is passed only if given;
* ``imports``: ``import tuner.cli, torch, optuna, mlflow`` alone, the floor under every phase.

It records each phase's wall time and peak RSS, the feature matrix's stored bytes (values +
indices + indptr as stored in the ``.npz``) and the ratio peak RSS / stored bytes (the goal:
at most 3 for the whole study, imports included). ``--write-results`` puts the table into
``benchmarks/RESULTS.md`` between ``<!-- large-study:begin -->`` and ``<!-- large-study:end -->``.

    python benchmarks/large_study.py --trials 2 --epochs 2                       # 1M rows
    python benchmarks/large_study.py --rows 100000 --phases load,prepare,tune     # smaller
    python benchmarks/large_study.py --trials 20 --batch-trials 8 --write-results

The project must be importable by the interpreter running this script (``pip install -e .``);
the child processes get the repository root on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- large-study:begin -->", "<!-- large-study:end -->"
PHASES = ("imports", "load", "prepare", "tune")
MATRIX_PARTS = ("X_data", "X_indices", "X_indptr")
_SNIPPETS = {
    "imports": "import tuner.cli, torch, optuna, mlflow",
    "load": 'from tuner.data import load_data; raw = load_data("{path}")',
    "prepare": 'from tuner.data import load_data, prepare; ds = prepare(load_data("{path}"))',
}


def stored_bytes(path: Path) -> dict[str, Any]:
    """Bytes of the CSR parts as stored in the ``.npz`` (read from the array headers, no data loaded)."""
    parts: dict[str, Any] = {}
    with zipfile.ZipFile(path) as zf:
        for name in MATRIX_PARTS:
            with zf.open(name + ".npy") as fh:
                major, _ = np.lib.format.read_magic(fh)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(fh)
                parts[name] = {"dtype": str(dtype), "shape": list(shape), "bytes": int(np.prod(shape)) * dtype.itemsize}
    parts["total"] = sum(p["bytes"] for p in parts.values())
    return parts


def ensure_data(work: Path, rows: int | None, seed: int) -> Path:
    """The generated set under ``work`` (made once per row count and seed)."""
    name = f"sparse_{rows or 1_000_000}_s{seed}.npz"
    out = work / name
    if not out.exists():
        cmd = [sys.executable, str(ROOT / "benchmarks" / "make_sparse_data.py"), "--out", str(out), "--seed", str(seed)]
        if rows:
            cmd += ["--rows", str(rows)]
        print("generating:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run ``cmd`` under ``/usr/bin/time -v``: exit code, wall seconds, peak RSS (MiB), output tail."""
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {"rc": proc.returncode, "wall_s": round(wall, 2), "peak_rss_mib": int(rss.group(1)) / 1024 if rss else None,
            "tail": (proc.stdout + proc.stderr)[-1500:] if proc.returncode else ""}


def tune_command(path: Path, work: Path, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, "-m", "tuner.cli", "tune", str(path), "--trials", str(args.trials),
           "--epochs", str(args.epochs), "--storage", f"sqlite:///{work / 'studies.db'}",
           "--study", f"large-{int(time.time())}", "--penalty", args.penalty, "--optimizer", args.optimizer,
           "--device", args.device, "--dtype", args.dtype]
    if args.batch_trials:
        cmd += ["--batch-trials", args.batch_trials]
    if args.tracking:
        cmd += ["--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"]
    else:
        cmd += ["--no-tracking"]
    return cmd + shlex.split(args.extra)


def run_phases(path: Path, work: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    results: dict[str, dict[str, Any]] = {}
    for phase in args.phases:
        if phase == "tune":
            cmd = tune_command(path, work, args)
        else:
            cmd = [sys.executable, "-c", _SNIPPETS[phase].format(path=str(path))]
        print(f"{phase}: {shlex.join(cmd)}", flush=True)
        shown = shlex.join(["python", *cmd[1:]])  # the interpreter's path says nothing to a reader
        results[phase] = {"command": shown, **timed(cmd, env, work)}
        print(json.dumps({k: v for k, v in results[phase].items() if k != "command"}), flush=True)
    return results


def table(results: dict[str, dict[str, Any]], stored: dict[str, Any], args: argparse.Namespace) -> str:
    """The Markdown section for ``RESULTS.md``."""
    mib = stored["total"] / 2**20
    dtypes = ", ".join(f"{k[2:]} {v['dtype']}" for k, v in stored.items() if k != "total")
    lines = [
        f"Measured {dt.date.today().isoformat()} by `python benchmarks/large_study.py {' '.join(args.argv)}` "
        f"({os.cpu_count()} CPUs). Feature matrix as stored: {mib:.0f} MiB ({dtypes}); "
        "peak RSS from `/usr/bin/time -v`, whole processes, imports included.",
        "",
        "| phase | wall (s) | peak RSS (MiB) | peak / stored matrix | exit |",
        "|---|---:|---:|---:|---:|",
    ]
    for phase, r in results.items():
        peak = r["peak_rss_mib"]
        ratio = f"{peak / mib:.2f}" if peak else "?"
        shown = f"{peak:.0f}" if peak else "?"  # /usr/bin/time printed no RSS line
        lines.append(f"| {phase} | {r['wall_s']:.1f} | {shown} | {ratio} | {r['rc']} |")
    lines += ["", "Commands:", ""] + [f"- {phase}: `{r['command']}`" for phase, r in results.items()]
    return "\n".join(lines)


def write_results(section: str) -> None:
    text = RESULTS.read_text()
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Large sparse data: a study on it (issue 10)\n\n" + block + "\n"
    RESULTS.write_text(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="An existing .npz to use instead of generating one.")
    ap.add_argument("--work", type=Path, help="Work folder (data, study database); default: a tmp folder kept between runs.")
    ap.add_argument("--rows", type=int, help="Rows to generate (default: the generator's 1,000,000).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phases", default="imports,load,prepare,tune", help=f"Comma-separated, of {PHASES}.")
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-trials", help="Passed to `tuner tune --batch-trials` only when given.")
    ap.add_argument("--penalty", default="l2")
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--tracking", action="store_true", help="Log to MLflow (a SQLite store in the work folder).")
    ap.add_argument("--extra", default="", help="More `tuner tune` options, as one string.")
    ap.add_argument("--json-out", type=Path, help="Also write the measurements as JSON here.")
    ap.add_argument("--write-results", action="store_true", help="Update the large-study section of RESULTS.md.")
    args = ap.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(args.phases) - set(PHASES))
    if unknown:
        ap.error(f"unknown phase(s) {unknown}; choose from {', '.join(PHASES)}")
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    work = args.work or Path(tempfile.gettempdir()) / "tuner-large-study"
    work.mkdir(parents=True, exist_ok=True)
    path = args.data.resolve() if args.data else ensure_data(work, args.rows, args.seed)
    stored = stored_bytes(path)
    results = run_phases(path, work, args)
    section = table(results, stored, args)
    print(section)
    if args.json_out:
        args.json_out.write_text(json.dumps({"data": str(path), "stored": stored, "results": results}, indent=2))
    if args.write_results:
        write_results(section)
    return max((r["rc"] for r in results.values()), default=0)


if __name__ == "__main__":
    sys.exit(main())
