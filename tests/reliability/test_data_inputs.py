"""Issue 9, data inputs: a file is read one way everywhere, or refused with one clear line.

LIBSVM index base decided once and kept; numbers and sizes that would give a silently wrong
model; workers that find the study's data on their own machine (or stop before any trial);
options that do not apply. Every test drives the real CLI on real files.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from click.testing import CliRunner, Result

from tuner.cli import cli

FAST = ("--penalty", "l2", "--optimizer", "lbfgs", "--epochs", "20")


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def tuner(*args: Any, cwd: Path, env: dict[str, str] | None = None, memory: int | None = None,
          ) -> subprocess.CompletedProcess[str]:
    """``python -m tuner.cli ARGS`` in a real process (another machine, as far as paths go)."""
    full_env = {k: v for k, v in os.environ.items() if k != "TUNER_DATA_ROOT"}
    full_env.update(env or {})

    def limit() -> None:  # a run that tried to allocate gigabytes fails fast instead of swapping
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run([sys.executable, "-m", "tuner.cli", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300, preexec_fn=limit if memory else None)


def one_line_error(result: Result | subprocess.CompletedProcess[str]) -> str:
    """The error of a failed command: exit code 1, one line, no traceback."""
    code = result.exit_code if isinstance(result, Result) else result.returncode
    text = result.output if isinstance(result, Result) else result.stderr
    assert code == 1, text
    assert "Traceback" not in text, text
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, text
    return lines[0]


def table(path: Path, n: int = 60, seed: int = 0, **extra: Any) -> Path:
    """A small numeric CSV: ``a`` decides ``label`` (up/down), ``b`` is noise."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame({"a": a, "b": b, "label": np.where(a > 0, "up", "down"), **extra})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def svm_rows(n: int, seed: int, zero: bool) -> list[str]:
    """LIBSVM rows whose label is the sign of feature index 1; ``zero`` adds noise at index 0."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        signal = rng.normal() + (2.0 if i % 2 else -2.0)
        head = f"{1 if i % 2 else -1}" + (f" 0:{rng.normal():.4f}" if zero else "")
        rows.append(f"{head} 1:{signal:.4f} 2:{rng.normal():.4f}")
    return rows


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# 1. LIBSVM index base: decided once, from the training file or --zero-based/--one-based


def test_svmlight_test_file_is_read_with_the_training_files_base(tmp_path: Path) -> None:
    """A zero-based training file and a test file that happens to use no index 0: the test rows
    keep their meaning (read shifted by one, feature 1 would land on the noise column)."""
    train = write(tmp_path / "train.svm", svm_rows(80, 0, zero=True))
    test = write(tmp_path / "test.svm", svm_rows(40, 1, zero=False))
    result = invoke("train", train, "--test-file", test, "--val-size", "0.2", *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["test"]["accuracy"] >= 0.9


def test_a_test_file_of_another_format_gets_no_libsvm_options(tmp_path: Path) -> None:
    """A LIBSVM training file with an .npz test file: the training width and index base were
    passed to the test file too, refused as '--n-features and --zero-based do(es) not apply'
    though neither was given. Also for a study read again (a resume)."""
    train = write(tmp_path / "train.svm", svm_rows(80, 0, zero=False))
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(str(write(tmp_path / "t.svm", svm_rows(40, 1, zero=False))), zero_based=False)
    np.savez(tmp_path / "test.npz", X=X.toarray(), y=y)
    result = invoke("train", train, "--test-file", tmp_path / "test.npz", *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["test"]["accuracy"] >= 0.9
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    for trials in (1, 2):  # created, then resumed: the test file read again from the study's spec
        args = ["--study", "s", "--storage", storage, "--trials", trials, "--no-tracking"]
        data = [train, "--test-file", tmp_path / "test.npz", "--penalty", "l2", "--optimizer", "lbfgs"]
        result = invoke("tune", *(data if trials == 1 else []), *args)
        assert result.exit_code == 0, result.output


def test_svmlight_index_zero_in_a_one_based_file_names_the_line(tmp_path: Path) -> None:
    train = write(tmp_path / "train.svm", svm_rows(60, 0, zero=False))
    rows = svm_rows(10, 1, zero=False)
    rows[2] = "1 0:0.5 1:2.0"
    test = write(tmp_path / "test.svm", ["# rows to test", *rows])
    line = one_line_error(invoke("train", train, "--test-file", test, *FAST))
    assert "test.svm line 4" in line and "index 0" in line and "--zero-based" in line
    # the base given on the command line is checked against the training file too
    line = one_line_error(invoke("train", test, "--one-based", *FAST))
    assert "line 4" in line and "one-based" in line


def test_svmlight_base_option_is_kept_with_the_model_and_names_follow_it(tmp_path: Path) -> None:
    data = write(tmp_path / "train.svm", svm_rows(60, 0, zero=False))
    for flag, first, zero_based in (("--zero-based", "f0", True), ("--one-based", "f1", False)):
        folder = tmp_path / flag.strip("-")
        result = invoke("train", data, flag, *FAST, "--save-model", folder)
        assert result.exit_code == 0, result.output
        pipeline = json.loads((folder / "model.json").read_text())["pipeline"]
        assert pipeline["input_feature_names"][0] == first and pipeline["zero_based"] is zero_based
        assert len(pipeline["input_feature_names"]) == (3 if zero_based else 2)


def test_study_spec_stores_the_decided_base(tmp_path: Path) -> None:
    import optuna

    train = write(tmp_path / "train.svm", svm_rows(60, 0, zero=True))
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    result = invoke("tune", train, "--study", "s", "--storage", storage, "--trials", "0", "--no-tracking", *FAST)
    assert result.exit_code == 0, result.output
    spec = json.loads(optuna.load_study(study_name="s", storage=storage).user_attrs["spec"])
    assert spec["data"]["zero_based"] is True


# ---------------------------------------------------------------------------------------------
# 3. Numbers and sizes


def test_overflowing_feature_scale_is_an_error_naming_the_column(tmp_path: Path) -> None:
    data = table(tmp_path / "big.csv")
    frame = pd.read_csv(data)
    frame.insert(1, "huge", np.where(np.arange(len(frame)) % 2, 1e308, -1e308))
    frame.to_csv(data, index=False)
    line = one_line_error(invoke("train", data, "--target", "label", *FAST))
    assert "'huge'" in line and "too large" in line
    X = np.column_stack([frame["a"], np.full(len(frame), 1.5e308)])
    np.savez(tmp_path / "big.npz", X=X, y=(frame["a"] > 0).astype(int).to_numpy())
    line = one_line_error(invoke("train", tmp_path / "big.npz", *FAST))
    assert "'x1'" in line and "too large" in line


def test_two_row_file_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "two.csv"
    data.write_text("a,label\n1.0,up\n-1.0,down\n")
    line = one_line_error(invoke("train", data, "--target", "label", *FAST))
    assert "only 2 rows" in line and "--val-size" in line


def test_class_too_small_to_stratify_is_named(tmp_path: Path) -> None:
    frame = pd.read_csv(table(tmp_path / "t.csv", n=40))
    frame.loc[5, "label"] = "rare"
    frame.to_csv(tmp_path / "rare.csv", index=False)
    line = one_line_error(invoke("train", tmp_path / "rare.csv", "--target", "label", *FAST))
    assert "'rare'" in line and "only 1 row" in line


def test_wide_svmlight_file_is_refused_without_n_features(tmp_path: Path) -> None:
    """73 bytes claiming two billion columns: refused before anything that wide is allocated
    (under a 3 GiB address-space limit, so a regression fails instead of exhausting memory)."""
    data = tmp_path / "wide.svm"
    data.write_text("1 1:0.5 2000000000:1\n-1 1:-0.5 2:1\n1 1:1.5 3:1\n-1 1:-1.5 2:2\n1 1:0.2 3:3\n")
    assert len(data.read_bytes()) == 73
    result = tuner("train", data, *FAST, cwd=tmp_path, memory=3 << 30)
    line = one_line_error(result)
    assert "2000000000" in line and "--n-features" in line
    # a width that --n-features states is accepted
    moderate = tmp_path / "moderate.svm"
    moderate.write_text("".join(f"{1 if i % 2 else -1} 1:{i} {100000 if i == 0 else 2}:1\n" for i in range(12)))
    line = one_line_error(invoke("train", moderate, *FAST))
    assert "--n-features (100000)" in line
    result = invoke("train", moderate, "--n-features", "100000", "--val-size", "0", "--test-size", "0", *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_features"] == 100000


def test_duplicate_column_names_are_an_error(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "dup.csv").write_text("a,b,a,label\n" + "".join(f"{i},{i % 3},{-i},{'up' if i % 2 else 'down'}\n"
                                                               for i in range(30)))
    line = one_line_error(invoke("train", tmp_path / "dup.csv", "--target", "label", *FAST))
    assert "['a']" in line and "more than once" in line
    (tmp_path / "dup.tsv").write_text((tmp_path / "dup.csv").read_text().replace(",", "\t"))
    assert "more than once" in one_line_error(invoke("train", tmp_path / "dup.tsv", "--target", "label", *FAST))
    columns = [pa.array(np.arange(30.0)), pa.array(np.arange(30.0) % 3), pa.array(["up", "down"] * 15)]
    pq.write_table(pa.Table.from_arrays(columns, names=["x", "x", "label"]), tmp_path / "dup.parquet")
    line = one_line_error(invoke("train", tmp_path / "dup.parquet", "--target", "label", *FAST))
    assert "['x']" in line and "more than once" in line


# ---------------------------------------------------------------------------------------------
# 4. Workers find the data (TUNER_DATA_ROOT), or stop before their first trial


def _create_study(machine: Path, storage: str, trials: int, test_file: bool = True) -> None:
    """Machine A: data under its data root ``machine/data``; the study is created with a budget."""
    table(machine / "data" / "sub" / "d.csv")
    table(machine / "data" / "sub" / "t.csv", n=20, seed=3)
    args = ["tune", "data/sub/d.csv", "--target", "label", "--study", "s", "--storage", storage,
            "--trials", trials, "--no-tracking", "--sampler", "random", *FAST]
    if test_file:
        args += ["--test-file", "data/sub/t.csv"]
    result = tuner(*args, cwd=machine, env={"TUNER_DATA_ROOT": str(machine / "data")})
    assert result.returncode == 0, result.stderr


def _trials(storage: str) -> int:
    import optuna

    return len(optuna.load_study(study_name="s", storage=storage).trials)


def test_worker_on_another_machine_finds_the_data_under_its_data_root(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    _create_study(tmp_path / "a", storage, trials=0)
    # Machine B mounts the same files elsewhere (docker compose: read-only at /data); A's path is gone.
    shutil.move(tmp_path / "a" / "data", tmp_path / "mnt")
    (tmp_path / "b").mkdir()
    result = tuner("tune", "--study", "s", "--storage", storage, "--trials", "2", "--no-tracking",
                   cwd=tmp_path / "b", env={"TUNER_DATA_ROOT": str(tmp_path / "mnt")})
    assert result.returncode == 0, result.stderr
    assert _trials(storage) == 2
    # Without a data root the file is nowhere: the error names every place tried.
    result = tuner("tune", "--study", "s", "--storage", storage, "--trials", "3", "--no-tracking", cwd=tmp_path / "b")
    line = one_line_error(result)
    assert str(tmp_path / "a" / "data" / "sub" / "d.csv") in line and str(tmp_path / "b" / "sub" / "d.csv") in line
    assert "TUNER_DATA_ROOT" in line and "sub/d.csv" in line
    assert _trials(storage) == 2


def test_changed_test_file_stops_workers_before_any_trial(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    machine = tmp_path / "a"
    _create_study(machine, storage, trials=0)
    test_file = machine / "data" / "sub" / "t.csv"
    frame = pd.read_csv(test_file)
    frame.loc[0, "label"] = "down" if frame.loc[0, "label"] == "up" else "up"  # same shape, other content
    frame.to_csv(test_file, index=False)
    env = {"TUNER_DATA_ROOT": str(machine / "data")}
    line = one_line_error(tuner("tune", "--study", "s", "--storage", storage, "--trials", "3", "--no-tracking",
                                cwd=machine, env=env))
    assert "test file" in line and "differs" in line and "t.csv" in line
    line = one_line_error(tuner("worker", "--study", "s", "--storage", storage, "--no-tracking", "--wait", "0",
                                cwd=machine, env=env))
    assert "test file" in line and "differs" in line
    assert _trials(storage) == 0  # no trial was asked for, let alone run


# ---------------------------------------------------------------------------------------------
# 5. More of the same kind


def test_options_that_do_not_apply_are_refused(tmp_path: Path) -> None:
    data = table(tmp_path / "d.csv")
    line = one_line_error(invoke("train", "--dataset", "iris", "--target", "species", *FAST))
    assert "--target" in line and "iris" in line
    line = one_line_error(invoke("train", data, "--target", "label", "--n-features", "3", *FAST))
    assert "--n-features" in line and "LIBSVM" in line
    test = table(tmp_path / "t.csv", n=20, seed=1)
    line = one_line_error(invoke("train", data, "--target", "label", "--test-file", test, "--test-size", "0.3", *FAST))
    assert "--test-size" in line and "--test-file" in line


def test_rows_longer_than_the_header_do_not_shift_columns(tmp_path: Path) -> None:
    """pandas would silently take the first field as a row index and shift every column left."""
    rows = "".join(f"{i},{i % 5 - 2.0},{(-1) ** i * 1.0},{'up' if i % 2 else 'down'}\n" for i in range(30))
    (tmp_path / "short_header.csv").write_text("a,b,label\n" + rows)
    line = one_line_error(invoke("train", tmp_path / "short_header.csv", "--target", "label", *FAST))
    assert "more fields than its header" in line


def test_unnamed_index_column_is_not_used_as_a_feature(tmp_path: Path) -> None:
    frame = pd.read_csv(table(tmp_path / "d.csv"))
    frame.to_csv(tmp_path / "with_index.csv")  # pandas' default: the row index as a first, unnamed column
    line = one_line_error(invoke("train", tmp_path / "with_index.csv", "--target", "label", *FAST))
    assert "Column 1" in line and "no name" in line


def test_target_as_text_column_and_empty_file(tmp_path: Path) -> None:
    data = tmp_path / "reviews.csv"
    pd.DataFrame({"review": ["good film", "bad film"] * 10, "label": ["pos", "neg"] * 10}).to_csv(data, index=False)
    line = one_line_error(invoke("train", data, "--target", "review", "--text-column", "review", *FAST))
    assert "both the target" in line
    (tmp_path / "empty.csv").write_text("a,b,label\n")
    line = one_line_error(invoke("train", tmp_path / "empty.csv", "--target", "label", *FAST))
    assert "no data rows" in line


def test_a_study_created_before_the_index_base_was_recorded_still_resumes_with_its_data(tmp_path: Path) -> None:
    """Specs stored before `zero_based`/`test_fingerprint` existed lack them: a resume with the
    data argument must not be refused for that, while a real change of base still is."""
    import json

    from tuner.api import DataOptions
    from tuner.api._tune import data_spec
    from tuner.study._spec import StudySpec

    train = tmp_path / "train.svm"
    train.write_text("1 1:0.5 3:1\n0 2:1\n1 1:1 2:0.5\n0 3:0.2\n" * 5)
    new = StudySpec(data_spec(DataOptions(str(train))), ["l2"], ["lbfgs"])
    old_json = json.loads(new.to_json())
    for name in ("zero_based", "test_fingerprint", "relative_path", "test_relative_path"):
        old_json["data"].pop(name)
    old = StudySpec.from_json(json.dumps(old_json))
    assert old.data.zero_based is None and new.data.zero_based is False
    assert old.differences(new) == []
    explicit = StudySpec(data_spec(DataOptions(str(train), zero_based=True)), ["l2"], ["lbfgs"])
    assert any("data reading" in d for d in new.differences(explicit))
