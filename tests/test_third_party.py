"""Third-party plugins end to end.

The example package (examples/logreg-tuner-extras) and the fixture packages under
tests/plugin_packages are installed with pip into temporary ``--target`` folders; the
``tuner`` command then runs in subprocesses whose ``PYTHONPATH`` holds those folders, so
their entry points are found from their dist-info exactly as for an installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "logreg-tuner-extras"
FIXTURES = ROOT / "tests" / "plugin_packages"
BROKEN = ["broken_import", "wrong_interface", "bad_space", "misnamed", "dup_a", "dup_b"]
BUILTIN_PENALTIES = {"none", "l1", "l2", "elasticnet"}
BUILTIN_OPTIMIZERS = {"sgd", "adam", "rmsprop", "lbfgs", "fista", "newton", "newton_cg"}

# (group, name) -> (distribution, words the reason must contain)
EXPECTED_BROKEN = {
    ("penalty", "broken_import"): ("tuner-fixture-broken-import",
                                   ["ModuleNotFoundError", "tuner_fixture_missing_dependency"]),
    ("penalty", "wrong_interface"): ("tuner-fixture-wrong-interface", ["not a subclass of tuner.Penalty"]),
    ("penalty", "bad_space_range"): ("tuner-fixture-bad-space",
                                     ["search space", "'strength'", "low (1.0) is greater than high (0.1)"]),
    ("optimizer", "bad_space_log"): ("tuner-fixture-bad-space", ["search space", "'lr'", "log-scale", "low > 0"]),
    ("penalty", "misnamed"): ("tuner-fixture-misnamed",
                              ["'something_else' differs from its entry-point name 'misnamed'"]),
    ("optimizer", "dup_optimizer"): ("tuner-fixture-dup-a",
                                     ["claimed by 2 distributions", "tuner-fixture-dup-a", "tuner-fixture-dup-b"]),
}


def _install(sources: list[Path], target: Path, scratch: Path) -> None:
    """pip-install copies of ``sources`` (so no build/ or egg-info lands in the repository)."""
    copies = []
    for src in sources:
        dst = scratch / src.name
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
        copies.append(str(dst))
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "-q", "--target", str(target), *copies]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("plugin_sites")
    extras, broken = base / "extras", base / "broken"
    _install([EXAMPLE], extras, base / "src_extras")
    _install([FIXTURES / n for n in BROKEN] + [FIXTURES / "two_groups"], broken, base / "src_broken")
    assert (extras / "logreg_tuner_extras-0.1.0.dist-info").is_dir()
    breakers = base / "breakers"
    _install([FIXTURES / "contract_breakers"], breakers, base / "src_breakers")
    return {"extras": extras, "broken": broken, "breakers": breakers}


def run(args: list[str], paths: list[Path], env: dict[str, str] | None = None,
        python_args: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``tuner ARGS`` (or ``python PYTHON_ARGS``) with ``paths`` on PYTHONPATH."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TUNER_DISABLE_PLUGIN_AUTOLOAD")}
    full_env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    full_env["OMP_NUM_THREADS"] = "1"  # tiny problems: threads only add contention on a busy machine
    full_env.update(env or {})
    cmd = [sys.executable, *(python_args or ["-c", "from tuner.cli import main; main()", *args])]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=600)


def _rows(proc: subprocess.CompletedProcess) -> dict[tuple[str, str], dict]:
    assert proc.returncode == 0, proc.stderr
    return {(r["group"], r["name"]): r for r in json.loads(proc.stdout)}


# --- the example package --------------------------------------------------------------


def test_example_plugins_are_listed_with_their_distribution(sites):
    rows = _rows(run(["plugins", "list", "--json"], [sites["extras"]]))
    pen, opt = rows[("penalty", "group_lasso")], rows[("optimizer", "adagrad")]
    for row in (pen, opt):
        assert (row["status"], row["distribution"], row["version"]) == ("ok", "logreg-tuner-extras", "0.1.0")
    assert pen["has_prox"] is True and set(pen["search_space"]) == {"strength", "l1_ratio"}
    assert opt["prox_mode"] == "after_step" and opt["full_batch"] is False and "lr" in opt["search_space"]
    assert {n for g, n in rows if g == "penalty"} == BUILTIN_PENALTIES | {"group_lasso"}
    assert all(r["status"] == "ok" for r in rows.values())


def test_example_plugins_pass_the_contract_checks(sites):
    text = run(["plugins", "check", "group_lasso"], [sites["extras"]])
    assert text.returncode == 0, text.stdout + text.stderr
    assert "logreg-tuner-extras 0.1.0" in text.stdout
    for check in ("load", "interface", "name", "search_space", "prox_identity", "prox_shrinks", "prox_minimises"):
        assert f"PASS  {check}" in text.stdout
    assert "FAIL" not in text.stdout

    js = run(["plugins", "check", "adagrad", "--json"], [sites["extras"]])
    assert js.returncode == 0, js.stdout + js.stderr
    data = json.loads(js.stdout)
    (report,) = data["plugins"]
    assert data["ok"] is True and report["group"] == "optimizer" and report["distribution"] == "logreg-tuner-extras"
    statuses = {c["check"]: c["status"] for c in report["checks"]}
    assert statuses["decreases_loss"] == statuses["build"] == "pass"


def test_example_package_own_tests_pass(sites):
    proc = run([], [sites["extras"]], python_args=[
        "-m", "pytest", str(EXAMPLE / "tests"), "-q", "-p", "no:cacheprovider", "--rootdir", str(EXAMPLE)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_disabling_autoload_hides_every_third_party_plugin(sites):
    rows = _rows(run(["plugins", "list", "--json"], [sites["extras"], sites["broken"]],
                     env={"TUNER_DISABLE_PLUGIN_AUTOLOAD": "1"}))
    assert {n for g, n in rows if g == "penalty"} == BUILTIN_PENALTIES
    assert {n for g, n in rows if g == "optimizer"} == BUILTIN_OPTIMIZERS
    assert {r["distribution"] for r in rows.values()} == {"logreg-tuner"}


# --- broken plugins next to working ones ----------------------------------------------


def test_broken_plugins_are_listed_with_distribution_and_reason(sites):
    paths = [sites["extras"], sites["broken"]]
    rows = _rows(run(["plugins", "list", "--json"], paths))
    for key, (dist, words) in EXPECTED_BROKEN.items():
        row = rows[key]
        assert row["status"] == "broken" and row["distribution"] == dist, row
        for w in words:
            assert w in row["error"], (key, row["error"])
    broken = {k for k, r in rows.items() if r["status"] == "broken"}
    assert broken == set(EXPECTED_BROKEN)
    for name in BUILTIN_PENALTIES | {"group_lasso", "twin"}:
        assert rows[("penalty", name)]["status"] == "ok"

    text = run(["plugins", "list"], paths)
    assert text.returncode == 0, text.stderr
    assert "Traceback" not in text.stdout + text.stderr
    line = next(ln for ln in text.stdout.splitlines() if ln.strip().startswith("broken_import"))
    assert "BROKEN (tuner-fixture-broken-import 0.0.1)" in line and "ModuleNotFoundError" in line
    assert "[logreg-tuner-extras 0.1.0]" in text.stdout


def test_help_and_train_still_work_next_to_broken_plugins(sites):
    paths = [sites["extras"], sites["broken"]]
    help_ = run(["--help"], paths)
    assert help_.returncode == 0 and "plugins" in help_.stdout and "train" in help_.stdout

    train = run(["train", "--dataset", "breast_cancer", "--penalty", "l2", "--optimizer", "lbfgs", "--json"], paths)
    assert train.returncode == 0, train.stderr
    out = json.loads(train.stdout)
    assert (out["penalty"], out["optimizer"]) == ("l2", "lbfgs")
    assert out["validation"]["accuracy"] > 0.9


def test_choosing_a_broken_plugin_is_a_clear_error_naming_it(sites):
    paths = [sites["extras"], sites["broken"]]
    train = run(["train", "--dataset", "breast_cancer", "--penalty", "broken_import", "--optimizer", "lbfgs"], paths)
    assert train.returncode == 1
    err = train.stderr
    assert "Traceback" not in err
    assert "The penalty 'broken_import' (distribution 'tuner-fixture-broken-import') is broken" in err
    assert "No module named 'tuner_fixture_missing_dependency'" in err
    usable = err.split("Usable penalties:")[1].split(".")[0].replace(",", " ").split()
    assert set(usable) == BUILTIN_PENALTIES | {"group_lasso", "twin"}  # the broken ones are not offered

    check = run(["plugins", "check", "dup_optimizer"], paths)
    assert check.returncode == 1 and "Traceback" not in check.stderr
    assert "FAIL  load" in check.stdout
    assert "'tuner-fixture-dup-a', 'tuner-fixture-dup-b'" in check.stdout


def test_check_covers_both_groups_of_a_shared_name(sites):
    proc = run(["plugins", "check", "twin", "--json"], [sites["broken"]])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert [(p["group"], p["distribution"], p["ok"]) for p in data["plugins"]] == [
        ("penalty", "tuner-fixture-two-groups", True), ("optimizer", "tuner-fixture-two-groups", True)]


def _bump_version(src: Path, dst: Path, version: str) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    pyproject = dst / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', f'version = "{version}"'))
    return dst


def test_a_study_chooses_between_the_example_penalty_and_a_builtin(sites: dict[str, Path], tmp_path: Path) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    proc = run(["tune", "--dataset", "breast_cancer", "--study", "extras", "--storage", storage, "--trials", "8",
                "--sampler", "random", "--penalty", "group_lasso,l2", "--optimizer", "adagrad,fista", "--epochs", "20",
                "--no-tracking", "--json"], [sites["extras"]])
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="extras", storage=storage)
    variants = {t.params["variant"] for t in study.trials}
    assert any(v.startswith("group_lasso:") for v in variants) and any(v.startswith("l2:") for v in variants)
    for t in study.trials:
        assert "penalty.strength" in t.params  # one shared name: the two plugins declare the same range
        if t.params["variant"].startswith("group_lasso:"):
            assert "penalty.l1_ratio" in t.params
        if t.params["variant"].endswith(":adagrad"):
            assert {"optimizer.adagrad.lr", "optimizer.lr_decay"} <= set(t.params)
    spec = json.loads(study.user_attrs["spec"])
    assert spec["plugin_versions"]["penalty:group_lasso"] == "logreg-tuner-extras==0.1.0"


def test_resuming_after_a_plugin_upgrade_warns_and_records_it(sites: dict[str, Path], tmp_path: Path) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    args = ["--study", "upgrade", "--storage", storage, "--no-tracking", "--epochs", "10"]
    proc = run(["tune", "--dataset", "breast_cancer", "--trials", "2", "--penalty", "group_lasso",
                "--optimizer", "fista", *args], [sites["extras"]])
    assert proc.returncode == 0, proc.stderr
    newer = tmp_path / "newer"
    _install([_bump_version(EXAMPLE, tmp_path / "src" / EXAMPLE.name, "0.2.0")], newer, tmp_path / "scratch")
    proc = run(["tune", "--trials", "3", *args], [newer])
    assert proc.returncode == 0, proc.stderr
    assert "plugin penalty:group_lasso changed from logreg-tuner-extras==0.1.0 to logreg-tuner-extras==0.2.0" in proc.stderr
    study = optuna.load_study(study_name="upgrade", storage=storage)
    changes = study.user_attrs["plugin_version_changes"]
    assert changes[-1]["changes"]["penalty:group_lasso"] == ["logreg-tuner-extras==0.1.0", "logreg-tuner-extras==0.2.0"]
    assert json.loads(study.user_attrs["spec"])["plugin_versions"]["penalty:group_lasso"] == "logreg-tuner-extras==0.2.0"
    assert len(study.trials) == 3


# --- plugins that load but break their contract in a study ----------------------------


def test_plugins_failing_their_contract_are_listed_as_such(sites):
    rows = _rows(run(["plugins", "list", "--json"], [sites["breakers"]]))
    float_step, adam = rows[("penalty", "float_step")], rows[("optimizer", "adam_no_coord")]
    assert float_step["status"] == adam["status"] == "failing"
    assert "'prox_steps'" in float_step["error"] and "per-weight steps" in float_step["error"]
    assert "'prox_step'" in adam["error"] and "coordinate_step_size" in adam["error"]
    assert all(r["status"] == "ok" for k, r in rows.items() if k[1] not in ("float_step", "adam_no_coord"))
    text = run(["plugins", "list"], [sites["breakers"]])
    line = text.stdout.splitlines()
    at = next(i for i, ln in enumerate(line) if ln.strip().startswith("float_step"))
    assert "FAILING" in line[at + 1] and "tuner plugins check float_step" in line[at + 1]
    check = run(["plugins", "check", "float_step"], [sites["breakers"]])
    assert check.returncode == 1 and "FAIL  prox_steps" in check.stdout


def test_a_default_study_leaves_failing_plugins_out_with_a_notice(sites, tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    proc = run(["tune", "--dataset", "breast_cancer", "--study", "defaults", "--storage", storage, "--trials", "4",
                "--epochs", "5", "--no-tracking", "--json"], [sites["breakers"]])
    assert proc.returncode == 0, proc.stderr
    notices = proc.stdout + proc.stderr
    for name in ("float_step", "adam_no_coord"):
        assert f"'{name}' fails its contract checks" in notices and f"tuner plugins check {name}" in notices
    spec = json.loads(optuna.load_study(study_name="defaults", storage=storage).user_attrs["spec"])
    assert "float_step" not in spec["penalties"] and "adam_no_coord" not in spec["optimizers"]


def test_a_crash_in_plugin_code_is_one_line_naming_the_plugin(sites):
    train = run(["train", "--dataset", "breast_cancer", "--penalty", "float_step", "--optimizer", "adam",
                 "--epochs", "2"], [sites["breakers"]])
    assert train.returncode == 1 and "Traceback" not in train.stderr
    (line,) = [ln for ln in train.stderr.splitlines() if ln.strip()]
    assert "the penalty plugin 'float_step' (package tuner-fixture-contract-breakers) raised" in line
    assert "run `tuner plugins check float_step`" in line
