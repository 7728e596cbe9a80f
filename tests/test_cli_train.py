"""The `tuner train` and `tuner plugins list` commands, end to end, and their one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from tuner.cli import cli
from tuner.model._model import LogisticModel

BUILTINS = {("penalty", n) for n in ("none", "l1", "l2", "elasticnet")} | {
    ("optimizer", n) for n in ("sgd", "adam", "rmsprop", "lbfgs", "fista", "newton", "newton_cg")}


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok_json(*args: Any) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------
# plugins list


def test_plugins_list_json_parses_back() -> None:
    rows = ok_json("plugins", "list")
    by_key = {(r["group"], r["name"]): r for r in rows}
    assert BUILTINS <= set(by_key)
    for key in BUILTINS:
        row = by_key[key]
        assert row["status"] == "ok" and row["distribution"] == "logreg-tuner" and row["description"]
    assert by_key[("penalty", "l1")]["has_prox"] is True and by_key[("penalty", "l2")]["has_prox"] is False
    assert by_key[("optimizer", "lbfgs")]["prox_mode"] == "internal" and by_key[("optimizer", "lbfgs")]["full_batch"]
    assert by_key[("optimizer", "lbfgs")]["l1_only"] and not by_key[("optimizer", "fista")]["l1_only"]
    assert by_key[("optimizer", "fista")]["prox_mode"] == "internal"
    assert by_key[("optimizer", "newton_cg")]["hessian_products"] and not by_key[("optimizer", "lbfgs")]["hessian_products"]
    assert by_key[("optimizer", "newton_cg")]["prox_mode"] == "unsupported"
    strength = by_key[("penalty", "elasticnet")]["search_space"]["strength"]
    assert strength["type"] == "float" and strength["log"] is True and strength["low"] < strength["default"] < strength["high"]
    assert set(by_key[("optimizer", "sgd")]["search_space"]) == {"lr", "momentum", "nesterov"}


def test_plugins_list_text() -> None:
    result = invoke("plugins", "list")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Penalty plugins (logreg_tuner.penalties):" in out and "Optimizer plugins (logreg_tuner.optimizers):" in out
    for _, name in BUILTINS:
        assert f"  {name} " in out
    assert "penalty.strength: float [" in out and "optimizer.lr: float [" in out and "penalty.l1_ratio" in out
    assert "proximal solver (elastic-net L1 parts only)" in out and "prox after each step" in out
    assert "(full-batch; truncated Newton; smooth penalties only)" in out
    assert out.index("Penalty plugins") < out.index("elasticnet") < out.index("Optimizer plugins") < out.index("rmsprop")


# ---------------------------------------------------------------------------------------------
# train


def test_train_json_on_a_bundled_dataset() -> None:
    s = ok_json("train", "--dataset", "breast_cancer", "--penalty", "l1", "--optimizer", "fista",
                "--param", "penalty.strength=0.01", "--param", "optimizer.lr=2")
    assert (s["penalty"], s["optimizer"]) == ("l1", "fista")
    assert s["penalty_params"] == {"strength": 0.01} and s["optimizer_params"] == {"lr": 2.0}
    assert (s["n_train"], s["n_val"], s["n_test"]) == (341, 114, 114) and s["n_features"] == 30
    assert s["classes"] == [0, 1] and s["data"] == "sklearn:breast_cancer"
    assert set(s["validation"]) == set(s["test"]) == {"log_loss", "accuracy", "roc_auc", "f1"}
    assert s["test"]["accuracy"] > 0.9 and s["test"]["roc_auc"] > 0.95
    assert 0 < s["n_nonzero_weights"] < s["n_weights"] == 30  # exact zeros
    assert s["stop_reason"] in ("converged", "max_epochs") and s["epochs_run"] >= 1 and s["device"] == "cpu"


def test_train_text_output(tmp_path: Path) -> None:
    result = invoke("train", "--dataset", "iris", "--penalty", "l2", "--optimizer", "lbfgs",
                    "--save-model", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert "Trained l2 + lbfgs on sklearn:iris: 90 training rows, 4 features, 3 classes." in result.output
    assert "validation" in result.output and "test" in result.output and f"model saved to {tmp_path / 'm'}" in result.output


def test_train_reports_how_far_a_mini_batch_fit_stopped_from_the_optimum() -> None:
    result = invoke("train", "--dataset", "breast_cancer", "--penalty", "l1", "--optimizer", "rmsprop", "--epochs", "3")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "above the optimum" in x)
    assert line.startswith("  above the optimum (fista): ") and "rmsprop stopped short" in line
    s = ok_json("train", "--dataset", "breast_cancer", "--penalty", "l1", "--optimizer", "rmsprop", "--epochs", "3")
    assert s["optimality_gap"] > 0.01
    assert ok_json("train", "--dataset", "breast_cancer", "--penalty", "l1", "--optimizer", "fista")["optimality_gap"] is None


def test_train_without_validation_or_test_rows() -> None:
    s = ok_json("train", "--dataset", "wine", "--penalty", "elasticnet", "--optimizer", "adam",
                "--val-size", "0", "--test-size", "0", "--epochs", "20")
    assert (s["n_train"], s["n_val"], s["n_test"]) == (178, 0, 0)
    assert s["validation"] == {} and s["test"] == {}
    assert s["n_weights"] == 13 * 3


def test_train_with_a_test_file_and_saved_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)

    def table(n: int) -> pd.DataFrame:
        X = rng.normal(size=(n, 3))
        return pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2],
                             "y": np.where(X[:, 0] - X[:, 1] > 0, "up", "down")})

    table(200).to_csv(tmp_path / "train.csv", index=False)
    test = table(50)
    test.to_csv(tmp_path / "test.csv", index=False)
    s = ok_json("train", tmp_path / "train.csv", "--target", "y", "--test-file", tmp_path / "test.csv",
                "--penalty", "l2", "--optimizer", "sgd", "--val-size", "0.25", "--save-model", tmp_path / "model",
                "--seed", "3")
    assert (s["n_train"], s["n_val"], s["n_test"]) == (150, 50, 50)
    assert s["classes"] == ["down", "up"] and s["test"]["accuracy"] > 0.9
    model = LogisticModel.load(s["model_path"])
    predicted = model.predict(test.drop(columns=["y"]))
    assert np.mean(predicted == test["y"].to_numpy()) == pytest.approx(s["test"]["accuracy"])


def test_train_defaults_to_the_apis_l2_and_lbfgs() -> None:
    """`tuner.fit(dataset=...)` trains l2 + lbfgs, while `tuner train` said "Missing option '--penalty'"."""
    s = ok_json("train", "--dataset", "iris")
    assert (s["penalty"], s["optimizer"]) == ("l2", "lbfgs") and s["test"]["accuracy"] > 0.8


def test_predict_on_a_file_without_rows_is_an_error(tmp_path: Path) -> None:
    """An empty LIBSVM file printed a bare 'prediction' header and exited 0 (an empty CSV was
    already an error)."""
    from sklearn.datasets import dump_svmlight_file, make_classification

    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    dump_svmlight_file(X, y, str(tmp_path / "train.svm"), zero_based=False)
    ok_json("train", tmp_path / "train.svm", "--penalty", "l2", "--optimizer", "lbfgs", "--save-model", tmp_path / "m")
    (tmp_path / "empty.svm").write_text("")
    result = invoke("predict", tmp_path / "m", tmp_path / "empty.svm", "--format", "svmlight")
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"Error: {tmp_path / 'empty.svm'} holds no rows to predict; give a file with the rows."


def test_predict_refuses_to_write_over_its_own_data(tmp_path: Path) -> None:
    """-o DATA replaced the rows with their predictions, exit 0."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=60, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=y).to_csv(tmp_path / "train.csv", index=False)
    ok_json("train", tmp_path / "train.csv", "--target", "y", "--penalty", "l2", "--optimizer", "lbfgs",
            "--save-model", tmp_path / "m")
    rows = tmp_path / "rows.csv"
    pd.DataFrame(X[:4], columns=["a", "b", "c"]).to_csv(rows, index=False)
    before = rows.read_bytes()
    for target in (rows, tmp_path / "." / "rows.csv"):
        result = invoke("predict", tmp_path / "m", rows, "-o", target)
        assert result.exit_code == 1 and "is DATA itself" in result.output, result.output
        assert rows.read_bytes() == before
    result = invoke("predict", tmp_path / "m", rows, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0 and len(pd.read_csv(tmp_path / "out.csv")) == 4, result.output
    assert result.stderr == f"Wrote 4 predictions to {tmp_path / 'out.csv'}.\n"
    for quiet in (["-q", "predict"], ["predict", "-q"]):  # -q printed the same line
        result = invoke(*quiet, tmp_path / "m", rows, "-o", tmp_path / "quiet.csv")
        assert result.exit_code == 0 and result.stderr == "" and len(pd.read_csv(tmp_path / "quiet.csv")) == 4


@pytest.mark.slow
def test_sentiment_from_raw_sentences_end_to_end(data_dir: Path, tmp_path: Path) -> None:
    """The README's text example: rt-polarity (Latin-1) -> TF-IDF -> saved model -> raw sentences."""
    s = ok_json("train", data_dir / "rt-polarity", "--encoding", "latin-1", "--penalty", "l2", "--optimizer", "lbfgs",
                "--save-model", tmp_path / "model")
    assert s["classes"] == ["neg", "pos"] and s["n_train"] + s["n_val"] + s["n_test"] == 10662
    assert s["test"]["accuracy"] > 0.70 and s["n_features"] > 50_000
    model = LogisticModel.load(tmp_path / "model")
    sentences = pd.DataFrame({"text": [
        "a wonderful , moving and beautifully acted film , one of the best of the year",
        "a dull , boring and tedious mess , the worst film of the year",
    ]})
    assert list(model.predict(sentences)) == ["pos", "neg"]
    proba = model.predict_proba(sentences)
    assert proba[0, 1] > 0.7 and proba[1, 0] > 0.7
    (tmp_path / "new.txt").write_text("\n".join(sentences["text"]) + "\n")
    from tuner.data import load_rows

    np.testing.assert_allclose(model.predict_proba(load_rows(tmp_path / "new.txt", model.pipeline)), proba)


# ---------------------------------------------------------------------------------------------
# bad input: non-zero exit, one line, nothing written


def _frame(**columns: Any) -> pd.DataFrame:
    base = {"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "b": [0.5, 0.1, 0.7, 0.2, 0.9, 0.3], "label": ["x", "y"] * 3}
    base.update(columns)
    return pd.DataFrame(base)


def _write(tmp_path: Path, case: str) -> list[Any]:
    """Arguments (data and options) for one bad-input case."""
    csv = tmp_path / "data.csv"
    if case == "nan":
        _frame(b=[0.5, 0.1, np.nan, 0.2, 0.9, 0.3]).to_csv(csv, index=False)
    elif case == "inf":
        _frame(a=[1.0, 2.0, 3.0, np.inf, 5.0, 6.0]).to_csv(csv, index=False)
    elif case == "single class":
        _frame(label=["x"] * 6).to_csv(csv, index=False)
    elif case == "text feature":
        _frame(b=["p", "q", "r", "s", "t", "u"]).to_csv(csv, index=False)
    elif case == "continuous target":
        _frame(label=[0.1, 0.25, 0.5, 1.5, 2.25, 3.5]).to_csv(csv, index=False)
    elif case == "labels differing in spaces":
        _frame(label=["x", "y", " y"] * 2).to_csv(csv, index=False)
    elif case == "latin-1 read as utf-8":
        csv.write_bytes("a,b,label\n1,2,café\n3,4,thé\n5,6,café\n7,8,thé\n".encode("latin-1"))
    else:
        _frame().to_csv(csv, index=False)
    return [csv, "--target", "lable" if case == "misspelled target" else "label"]


CLI_ERRORS = {
    # case: (extra options, fragments of the message)
    "nan": ([], ["'b'", "holds nan at data row 3 (line 4)"]),
    "inf": ([], ["'a'", "holds inf at data row 4 (line 5)"]),
    "misspelled target": ([], ["'lable'", "Did you mean 'label'", "['a', 'b', 'label']"]),
    "single class": ([], ["single class"]),
    "text feature": ([], ["'b'", "not numeric", "--text-column"]),
    "continuous target": ([], ["continuous"]),
    "labels differing in spaces": ([], ["labels ' y' and 'y' differ only in spaces: clean the target column"]),
    "latin-1 read as utf-8": ([], ["Cannot decode", "--encoding"]),
    "unknown encoding": (["--encoding", "bogus"], ["Unknown encoding 'bogus' (--encoding)", "utf-8 or latin-1"]),
    "unknown penalty": (["--penalty", "lasso"], ["Unknown penalty 'lasso'", "Usable penalties: elasticnet, l1, l2, none"]),
    "unknown optimizer": (["--optimizer", "owlqn"], ["Unknown optimizer 'owlqn'", "adam, fista, lbfgs, newton, newton_cg, rmsprop, sgd"]),
    "negative strength": (["--param", "penalty.strength=-1"], ["'penalty.strength'", "got -1"]),
    "unknown hyperparameter": (["--param", "optimizer.momentum=0.5"], ["no hyperparameter 'momentum'", "optimizer.lr"]),
    "incompatible pair": (["--penalty", "l1", "--optimizer", "smooth_only"], ["'l1'", "'smooth_only'", "fista"]),
    "bad split": (["--val-size", "0.6", "--test-size", "0.5"], ["--val-size (0.6) and --test-size (0.5) leave no rows for training"]),
}


@pytest.mark.parametrize("case", sorted(CLI_ERRORS))
def test_bad_input_exits_non_zero_with_one_line_and_writes_nothing(tmp_path: Path, case: str, smooth_only: str) -> None:
    extra, fragments = CLI_ERRORS[case]
    options = {"--penalty": "l2", "--optimizer": "lbfgs"}
    rest: list[Any] = []
    it = iter(extra)
    for opt in it:
        if opt in options:
            options[opt] = next(it)
        else:
            rest += [opt, next(it)]
    out_dir = tmp_path / "model"
    result = invoke("train", *_write(tmp_path, case), *[x for kv in options.items() for x in kv], *rest,
                    "--save-model", out_dir, "--json")
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""  # --json: nothing on stdout
    assert not out_dir.exists()


def test_missing_or_unreadable_data(tmp_path: Path) -> None:
    result = invoke("train", tmp_path / "nope.csv", "--target", "y", "--penalty", "l2", "--optimizer", "lbfgs")
    assert result.exit_code == 1 and result.output.strip() == f"Error: Data file {tmp_path / 'nope.csv'} does not exist."
    (tmp_path / "folder").mkdir()
    result = invoke("train", tmp_path / "folder", "--format", "csv", "--target", "y", "--penalty", "l2",
                    "--optimizer", "lbfgs")
    assert result.exit_code == 1 and "Cannot read" in result.output and len(result.output.strip().splitlines()) == 1
    result = invoke("train", tmp_path / "folder", "--penalty", "l2", "--optimizer", "lbfgs")
    assert result.exit_code == 1 and "one text file per class" in result.output


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    _frame(b=[0.5, np.inf, 0.7, 0.2, 0.9, 0.3]).to_csv(tmp_path / "bad.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "tuner.cli", "train", str(tmp_path / "bad.csv"), "--target", "label",
                           "--penalty", "l2", "--optimizer", "lbfgs", "--save-model", str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"Error: Feature column 'b' holds inf at data row 2 (line 3) in {tmp_path / 'bad.csv'}; features must be finite numbers. "
        "Remove or impute such values first."]
    assert not (tmp_path / "m").exists()


def test_a_categorical_column_whose_name_holds_a_comma_can_be_named(tmp_path: Path) -> None:
    """--categorical was split on every comma: 'size, cm' became the columns 'size' and 'cm'."""
    rows = pd.DataFrame({"size, cm": ["s", "m", "l"] * 20, "x": np.arange(60) % 7, "label": [0, 1, 1] * 20})
    rows.to_csv(tmp_path / "t.csv", index=False)
    res = invoke("train", str(tmp_path / "t.csv"), "--target", "label", "--categorical", '"size, cm"', "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["n_features"] == 4  # three categories and x


def test_a_categorical_column_whose_name_has_spaces_around_it_can_be_named_quoted(tmp_path: Path) -> None:
    """'x, city' as a header names the column ' city': --categorical stripped every name, quoted
    or not, so no spelling reached it. Quoted, a name keeps its spaces; bare, it is stripped."""
    rows = pd.DataFrame({"x": np.arange(60) % 7, " city": ["a", "b", "c"] * 20, "label": [0, 1, 1] * 20})
    rows.to_csv(tmp_path / "t.csv", index=False)
    res = invoke("train", str(tmp_path / "t.csv"), "--target", "label", "--categorical", '" city"', "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["n_features"] == 4  # three cities and x
    bare = invoke("train", str(tmp_path / "t.csv"), "--target", "label", "--categorical", " city", "--json")
    assert bare.exit_code != 0 and "['city']" in bare.output and "' city'" in bare.output
    for broken in ('a,"b', '"a"b'):
        res = invoke("train", str(tmp_path / "t.csv"), "--target", "label", "--categorical", broken)
        assert res.exit_code == 2 and "a quote must enclose a whole name" in res.output, res.output


def test_rows_that_still_hold_the_label_of_a_headerless_model_are_told_which_column(tmp_path: Path) -> None:
    """The advice was to add a header naming the columns; the fix is to name the label's column."""
    rng = np.random.default_rng(0)
    rows = [f"{rng.normal():.3f},{'abc'[i % 3]},{rng.normal():.3f},{i % 2}" for i in range(60)]
    (tmp_path / "hl.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "new.csv").write_text("\n".join(rows[:3]) + "\n")
    model = str(tmp_path / "m")
    assert invoke("train", str(tmp_path / "hl.csv"), "--no-header", "--target", "3", "--categorical", "1",
                  "--save-model", model).exit_code == 0
    res = invoke("predict", model, str(tmp_path / "new.csv"))
    assert res.exit_code == 1 and res.output.startswith(
        "Error: These rows have 4 columns, one more than the model takes: it was trained on a file without a header "
        "whose column 3 held the labels. If these rows still hold them, say which column they are in (tuner predict "
        "--target 3)"), res.output
    res = invoke("predict", model, str(tmp_path / "new.csv"), "--target", "3")
    assert res.exit_code == 0 and len(res.output.split()) == 4, res.output


def test_plugins_list_shows_a_plugin_that_fails_its_contract_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A penalty whose prox calls float(step) loads and validates, then crashes in a study with Adam."""
    from tuner._registry import PluginInfo, penalties

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugin_packages" / "contract_breakers"))
    from tuner_fixture_contract_breakers import FloatStepLasso

    monkeypatch.setitem(penalties._load(), "float_step", PluginInfo(
        "logreg_tuner.penalties", "float_step", "tuner_fixture_contract_breakers:FloatStepLasso", "contract-breakers",
        "0.1", plugin=FloatStepLasso()))
    rows = {(r["group"], r["name"]): r for r in ok_json("plugins", "list")}
    assert rows[("penalty", "float_step")]["status"] == "failing" and rows[("penalty", "float_step")]["error"]
    assert rows[("penalty", "l1")]["status"] == "ok"
    text = invoke("plugins", "list").output
    line = next(line for line in text.splitlines() if "FAILING" in line)
    assert "tuner plugins check float_step" in line and text.count("FAILING") == 1


def test_plugins_list_keeps_one_column_of_descriptions_beside_a_long_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name of 13 characters or more pushed its description right of everyone else's."""
    from tuner._registry import PluginInfo, penalties

    long_name = "ridge_with_a_long_name"
    plugin = penalties.get("l2")
    monkeypatch.setitem(penalties._load(), long_name, PluginInfo(
        "logreg_tuner.penalties", long_name, "logreg_tuner_plugins.penalties:L2Penalty", "someone-else", "1.0",
        plugin=plugin))
    lines = invoke("plugins", "list").output.splitlines()
    starts = {name: next(line for line in lines if line.startswith(f"  {name} ")).index(plugin.description)
              for name in ("l2", long_name)}
    assert starts["l2"] == starts[long_name] == len(f"  {long_name} "), starts


def test_plugins_list_keeps_a_builtin_working_beside_a_newcomer_refused_its_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party 'l2' (refused by the registry) showed the built-in l2 as FAILING its contract
    checks ('it cannot be loaded'), though the built-in still worked."""
    from _broken_plugins import forget, install_distribution

    from tuner._registry import AUTOLOAD_ENV, penalties

    site = install_distribution(tmp_path / "site", "tuner_test_second_l2", {"penalties": {"l2": "PickyRidge"}})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    penalties.reload()
    try:
        rows = [r for r in ok_json("plugins", "list") if (r["group"], r["name"]) == ("penalty", "l2")]
        assert [(r["distribution"], r["status"]) for r in rows] == [("logreg-tuner", "ok"),
                                                                   ("tuner-test-second-l2", "broken")]
        text = invoke("plugins", "list").output
        assert "FAILING" not in text, text
        refused = next(line for line in text.splitlines() if "tuner-test-second-l2" in line)
        assert refused.split()[:3] == ["l2", "REFUSED", "(tuner-test-second-l2"], refused
        assert "belongs to a built-in penalty of logreg-tuner" in refused
        # `plugins check l2` checks the l2 that --penalty l2 uses, and reports the refused newcomer beside it
        # (it checked only the newcomer: one FAIL, the built-in never run)
        checked = invoke("plugins", "check", "l2", "--json")
        assert checked.exit_code == 1, checked.output
        reports = json.loads(checked.stdout)["plugins"]
        assert [(r["distribution"], r["ok"]) for r in reports] == [("logreg-tuner", True),
                                                                   ("tuner-test-second-l2", False)]
        assert len(reports[0]["checks"]) > 10 and [c["check"] for c in reports[1]["checks"]] == ["load"]
    finally:
        monkeypatch.undo()
        forget("tuner_test_second_l2")
        penalties.reload()


# ---------------------------------------------------------------------------------------------
# tune: where its records are (MLflow), and its progress


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 4-trial study on breast_cancer logged to a SQLite MLflow store: the --json summary and
    the text of the same study's `study show`."""
    root = tmp_path_factory.mktemp("tracked")
    store = {"storage": f"sqlite:///{root / 'studies.db'}", "tracking": f"sqlite:///{root / 'mlflow.db'}"}
    result = invoke("tune", "--dataset", "breast_cancer", "--study", "bc", "--trials", 4, "--penalty", "l2",
                    "--optimizer", "lbfgs,fista", "--epochs", 20, "--storage", store["storage"],
                    "--tracking-uri", store["tracking"], "--json")
    assert result.exit_code == 0, result.output
    return {**store, "summary": json.loads(result.stdout), "stderr": result.stderr}


def test_tune_summary_names_the_experiment_run_and_model_to_copy(tracked: dict[str, Any]) -> None:
    m = tracked["summary"]["mlflow"]
    assert m["experiment_name"] == "bc" and m["experiment_id"] and len(m["parent_run_id"]) == 32
    assert m["registered_model"] == "bc" and m["model_uri"] == f"models:/bc/{m['model_version']}"
    assert m["champion_uri"] == "models:/bc@champion" and m["champion_version"] == m["model_version"]
    assert m["ui_command"] == f"tuner ui --tracking-uri '{tracked['tracking']}'"
    assert m["ui_link"].startswith("http://127.0.0.1:5000/") and f"/experiments/{m['experiment_id']}/" in m["ui_link"]
    from mlflow import MlflowClient

    client = MlflowClient(tracked["tracking"])
    assert client.get_run(m["parent_run_id"]).info.experiment_id == m["experiment_id"]
    assert client.get_experiment(m["experiment_id"]).name == "bc"
    assert str(client.get_model_version_by_alias("bc", "champion").version) == m["champion_version"]


def test_study_show_names_the_same_mlflow_records(tracked: dict[str, Any]) -> None:
    args = ("study", "show", "bc", "--storage", tracked["storage"], "--tracking-uri", tracked["tracking"])
    shown = ok_json(*args)
    assert shown["mlflow"] == tracked["summary"]["mlflow"]
    text = invoke(*args)
    assert text.exit_code == 0, text.output
    m = shown["mlflow"]
    for piece in (f"experiment: bc (id {m['experiment_id']})", m["parent_run_id"], m["model_uri"], "models:/bc@champion",
                  f"run `{m['ui_command']}` and open {m['ui_link']}"):
        assert piece in text.stdout
    # another store holds none of its runs: showing them there (and the champion) was a wrong answer
    other = tracked["tracking"].replace("mlflow.db", "other.db")
    refused = invoke("study", "show", "bc", "--storage", tracked["storage"], "--tracking-uri", other)
    assert refused.exit_code == 1 and "parent run" not in refused.output, refused.output
    assert f"Study 'bc' logs to MLflow at {tracked['tracking']}; {other} is another store" in refused.output


def test_tune_text_summary_and_progress_lines_when_not_a_terminal(tracked: dict[str, Any]) -> None:
    """stderr is not a terminal under CliRunner: one line per trial here (4 trials), naming the metric."""
    assert " trials  best " not in tracked["stderr"]  # --json: no progress lines
    result = invoke("tune", "--study", "bc", "--trials", 6, "--storage", tracked["storage"], "--tracking-uri",
                    tracked["tracking"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stderr.splitlines() if " trials  best " in ln]
    assert [ln.split()[0] for ln in lines] == ["5/6", "6/6"]
    assert all(" best log_loss " in ln for ln in lines)
    assert "models:/bc@champion" in result.stdout and "parent run: " in result.stdout


def test_progress_line_every_tenth_of_the_budget() -> None:
    from tuner.cli._progress import line_every

    assert [line_every(n) for n in (None, 3, 10, 50, 200)] == [1, 1, 1, 5, 20]


def test_progress_bar_clears_itself_around_log_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A log record written while the bar is shown (by a handler made before the bar) comes on its
    own line: the bar is cleared first and drawn again after it."""
    import io
    import logging
    import sys

    from tuner.cli._progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    logger = logging.getLogger("tuner-test-progress")
    handler = logging.StreamHandler(term)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with Progress("bar", "roc_auc") as progress:
            progress({"done": 1, "total": 4, "best": 0.9, "elapsed": 3, "number": 0, "reason": None})
            logger.warning("a log line")
            progress({"done": 2, "total": 4, "best": 0.95, "elapsed": 5, "number": 1, "reason": None})
        assert sys.stderr is term and handler.stream is term
    finally:
        logger.removeHandler(handler)
    out = term.getvalue()
    bar1 = "[######------------------] 1/4 trials  best roc_auc 0.9  00:03"
    assert f"\r{bar1}\r\x1b[Ka log line\n\r{bar1}\r\x1b[K\r[############" in out
    assert out.endswith("2/4 trials  best roc_auc 0.95  00:05\n")


def test_commands_on_a_tracked_study_use_its_store_wherever_they_run(tracked: dict[str, Any], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --tracking-uri, a worker, a resume and `study show` started in another folder fell
    back to ./mlflow.db there: a new store, a second parent run, links to another experiment."""
    monkeypatch.chdir(tmp_path)
    first = tracked["summary"]["mlflow"]
    joined = ok_json("worker", "--study", "bc", "--storage", tracked["storage"], "--wait", 0)["mlflow"]
    assert (joined["experiment_id"], joined["parent_run_id"]) == (first["experiment_id"], first["parent_run_id"])
    shown = ok_json("study", "show", "bc", "--storage", tracked["storage"])["mlflow"]
    assert shown["experiment_id"] == first["experiment_id"] and shown["ui_command"] == first["ui_command"]
    assert not (tmp_path / "mlflow.db").exists()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    refused = invoke("tune", "--study", "bc", "--storage", tracked["storage"], "--tracking-uri", other)
    assert refused.exit_code != 0 and "Study 'bc' logs to MLflow at" in refused.output, refused.output
    assert "is another store" in refused.output and not (tmp_path / "other.db").exists()


def test_a_worker_waiting_for_its_study_logs_to_the_store_the_study_is_created_with(tmp_path: Path) -> None:
    """A worker started before `tuner tune` created the study, in another folder, with no
    --tracking-uri: it chose ./mlflow.db of its folder before the wait, and exited 1 as logging to
    another store than the study's (the README's pattern: workers first, then the study)."""
    (tmp_path / "worker").mkdir()
    (tmp_path / "tune").mkdir()
    storage, store = f"sqlite:///{tmp_path / 's.db'}", f"sqlite:///{tmp_path / 'mlf.db'}"
    worker = subprocess.Popen([sys.executable, "-m", "tuner", "worker", "--study", "w", "--storage", storage,
                               "--wait", "120", "--json"], cwd=tmp_path / "worker", stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        tune = subprocess.run([sys.executable, "-m", "tuner", "tune", "--dataset", "iris", "--study", "w", "--trials",
                               "12", "--storage", storage, "--tracking-uri", store, "--json"], cwd=tmp_path / "tune",
                              capture_output=True, text=True, timeout=300)
        out, err = worker.communicate(timeout=300)
    finally:
        worker.kill()
    assert tune.returncode == 0, tune.stderr
    assert worker.returncode == 0, err
    joined, created = json.loads(out)["mlflow"], json.loads(tune.stdout)["mlflow"]
    assert joined["tracking_uri"] == created["tracking_uri"] and joined["parent_run_id"] == created["parent_run_id"]
    assert not (tmp_path / "worker" / "mlflow.db").exists()


def test_worker_summary_names_the_same_experiment_and_champion(tracked: dict[str, Any]) -> None:
    """A worker joining the (spent) study: its summary points at the same MLflow records."""
    s = ok_json("worker", "--study", "bc", "--storage", tracked["storage"], "--tracking-uri", tracked["tracking"],
                "--wait", 0)
    m, first = s["mlflow"], tracked["summary"]["mlflow"]
    assert (m["experiment_id"], m["parent_run_id"]) == (first["experiment_id"], first["parent_run_id"])
    assert m["champion_uri"] == "models:/bc@champion" and m["ui_link"] == first["ui_link"]


def test_train_warns_when_no_penalty_leaves_the_objective_without_a_minimum() -> None:
    """breast_cancer's training rows are separable: with no penalty newton said '1 (converged)' at a
    training objective of 0.0003, weights as large as the solver happened to leave them."""
    import tuner

    res = CliRunner().invoke(cli, ["train", "--dataset", "breast_cancer", "--penalty", "none", "--optimizer", "newton",
                                   "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["warnings"] and "the objective has no minimum" in summary["warnings"][0]
    assert "warning: there is no penalty and the model separates the training rows" in res.stderr
    report = tuner.fit(dataset="breast_cancer", penalty="l2", optimizer="newton")
    assert report.warnings == []


def test_a_test_file_refuses_a_test_share_but_takes_a_share_of_zero(tmp_path: Path) -> None:
    """--test-size 0 with --test-file says the same as the file (no share split off): the CLI
    refused it, while tuner.fit(test_size=0, test_file=...) took it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    rows = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": (x[:, 0] > 0).astype(int)})
    rows.iloc[:90].to_csv(tmp_path / "train.csv", index=False)
    rows.iloc[90:].to_csv(tmp_path / "test.csv", index=False)
    args = ["train", str(tmp_path / "train.csv"), "--target", "label", "--test-file", str(tmp_path / "test.csv")]
    res = invoke(*args, "--test-size", "0.3")
    assert res.exit_code == 1 and res.output.strip().splitlines() == [
        "Error: --test-size splits a test part off the data; with --test-file the test rows come from that file "
        "instead: give one of the two."], res.output
    res = invoke(*args, "--test-size", "0", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["n_test"] == 30
    # a study created without the option resumes with it, and the other way round: both say the file's rows
    study = ["tune", *args[1:], "--study", "tf", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--no-tracking",
             "--penalty", "l2", "--optimizer", "lbfgs"]
    assert invoke(*study, "--trials", "1").exit_code == 0
    resumed = invoke(*study, "--test-size", "0", "--trials", "2")
    assert resumed.exit_code == 0, resumed.output
