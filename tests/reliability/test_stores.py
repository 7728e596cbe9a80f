"""Stores (issue 9): many processes on a new store, damaged, read-only and unreachable stores,
database drivers, and passwords that never show.

Everything runs for real: SQLite files, a throwaway PostgreSQL server (tests/_postgres.py),
MLflow stores, and the ``tuner`` CLI in subprocesses.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _postgres import postgres_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Sw0rdf1sh-n0t-Here"
FAST = ("--trials", "2", "--epochs", "3", "--penalty", "l2", "--optimizer", "lbfgs")

# What `tuner tune` does with its stores before the first trial, in one process: open the
# study storage, create a study, open the MLflow store and the study's experiment and parent
# run. Each child waits for the others (a go file), so the four really start together.
CHILD = r"""
import sys, time
from pathlib import Path
import optuna
from tuner.study import StudyInfo, open_storage
from tuner.tracking import MlflowObserver

storage_url, tracking_uri, name, folder = sys.argv[1:5]
optuna.logging.set_verbosity(optuna.logging.WARNING)
(Path(folder) / f"ready-{name}").touch()
while not (Path(folder) / "go").exists():
    time.sleep(0.01)
storage = open_storage(storage_url)
optuna.create_study(study_name=name, storage=storage)
obs = MlflowObserver(tracking_uri, register_model=False, plots=False, background=False)
obs.on_study_start(StudyInfo(name, storage_url, {}, "minimize", "log_loss"))
obs.close()
"""

# Runs the CLI with some database drivers made unimportable (as if not installed).
WITHOUT = r"""
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
sys.argv = ["tuner", *sys.argv[2:]]
from tuner.cli import main
main()
"""


def tuner(*args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def invoke(*args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (click's CliRunner), for the commands that train nothing."""
    from click.testing import CliRunner

    from tuner.cli import cli

    res = CliRunner().invoke(cli, list(args))
    return subprocess.CompletedProcess(args, res.exit_code, res.stdout, res.stderr)


def one_line_error(res: subprocess.CompletedProcess) -> str:
    """The CLI's one-line error (exit 1, no traceback)."""
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def start_together(storage_url: str, tracking_uri: str, folder: Path, n: int = 4) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, storage_url, tracking_uri, f"s{i}", str(folder)],
                              cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n)]
    deadline = time.time() + 180
    while len(list(folder.glob("ready-*"))) < n and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.05)
    (folder / "go").touch()
    return procs


def assert_all_started(procs: list[subprocess.Popen], storage_url: str, tracking_uri: str) -> None:
    import optuna
    from mlflow import MlflowClient

    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    names = {f"s{i}" for i in range(len(procs))}
    assert {s.study_name for s in optuna.get_all_study_summaries(storage_url)} == names
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    assert names <= {e.name for e in client.search_experiments()}
    client.search_registered_models()  # the registry tables are there too


@pytest.fixture(scope="module")
def pg() -> Iterator[dict[str, str]]:
    """One server, a fresh pair of databases per test, a role whose password TCP logins must prove."""
    names = ("race_studies", "race_mlflow", "drv_studies", "drv_mlflow", "sec_studies", "sec_mlflow")
    with postgres_server(names, user="spy", password=SECRET, host_auth="scram-sha-256") as urls:
        yield urls


# ---- 1. a first start of many processes ---------------------------------------------------------
def test_four_processes_start_together_on_new_sqlite_stores(tmp_path: Path) -> None:
    studies, mlflow_db = f"sqlite:///{tmp_path / 'studies.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"
    procs = start_together(studies, mlflow_db, tmp_path)
    assert_all_started(procs, studies, mlflow_db)


def test_four_workers_start_together_on_a_new_postgresql(pg: dict[str, str], tmp_path: Path) -> None:
    procs = start_together(pg["race_studies"], pg["race_mlflow"], tmp_path)
    assert_all_started(procs, pg["race_studies"], pg["race_mlflow"])


def test_a_process_killed_while_creating_the_mlflow_store_leaves_no_half_made_store(tmp_path: Path) -> None:
    for delay in (0.3, 1.0):  # early and late in MLflow's migrations
        folder = tmp_path / f"after-{delay}s"
        folder.mkdir()
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        code = f"from tuner.tracking import MlflowObserver; MlflowObserver({uri!r}).check()"
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=folder, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:
            if "Creating initial MLflow database tables" in line:
                break
        time.sleep(delay)
        proc.kill()
        proc.wait()
        res = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-1500:]
        from mlflow import MlflowClient

        assert "Default" in {e.name for e in MlflowClient(tracking_uri=uri).search_experiments()}
        assert not list(folder.glob(".mlflow.db.*.new*"))  # what the killed process left is cleared


# ---- 2. damaged, read-only, missing and unreachable stores ---------------------------------------
def _study_db(path: Path) -> str:
    import optuna

    url = f"sqlite:///{path}"
    study = optuna.create_study(study_name="kept", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0) ** 2, n_trials=3)
    return url


def _unshare_ok() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_a_store_on_a_read_only_mount_can_be_listed_and_shown(tmp_path: Path) -> None:
    if not _unshare_ok():
        pytest.skip("needs `unshare -m` (a private mount namespace) for a read-only bind mount")
    ro = tmp_path / "ro"
    ro.mkdir()
    url = _study_db(ro / "studies.db")
    before = sorted(p.name for p in ro.iterdir())

    def on_ro_mount(*args: str) -> subprocess.CompletedProcess:
        cmd = " ".join(["exec", sys.executable, "-m", "tuner.cli", *[f"'{a}'" for a in args]])
        script = f"mount --bind '{ro}' '{ro}' && mount -o remount,bind,ro '{ro}' && {cmd}"
        return subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)

    res = on_ro_mount("study", "list", "--json", "--storage", url)
    assert res.returncode == 0, res.stderr
    assert [r["name"] for r in json.loads(res.stdout)] == ["kept"]
    res = on_ro_mount("study", "show", "kept", "--storage", url)
    assert res.returncode == 0 and "Study kept" in res.stdout and "3 complete" in res.stdout, res.stderr
    line = one_line_error(on_ro_mount("tune", "--dataset", "iris", "--study", "kept", *FAST, "--storage", url,
                                      "--no-tracking"))
    assert "read-only" in line and str(ro / "studies.db") in line
    line = one_line_error(on_ro_mount("tune", "--dataset", "iris", *FAST, "--storage", f"sqlite:///{tmp_path / 'w.db'}",
                                      "--tracking-uri", f"sqlite:///{ro / 'mlflow.db'}"))
    assert "read-only" in line and "MLflow" in line
    assert sorted(p.name for p in ro.iterdir()) == before


def test_a_command_leaves_a_database_file_that_holds_everything(tmp_path: Path) -> None:
    """The CLI ends with os._exit, which closed no connection: SQLite never folded its write-ahead
    log into the file, so tuner-studies.db was 4 KiB of nothing and a copy of it alone was 'not a
    study database'."""
    res = tuner("tune", "--dataset", "iris", *FAST, "--study", "s", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for name in ("tuner-studies.db", "mlflow.db"):
        wal = tmp_path / f"{name}-wal"
        assert not wal.exists() or wal.stat().st_size == 0, name
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "tuner-studies.db").write_bytes((tmp_path / "tuner-studies.db").read_bytes())
    res = tuner("study", "list", "--json", cwd=copy)
    assert res.returncode == 0, res.stderr
    assert [(r["name"], r["trials"]) for r in json.loads(res.stdout)] == [("s", {"complete": 2})]


def test_a_write_ahead_log_on_a_read_only_mount_is_not_skipped(tmp_path: Path) -> None:
    """Read-only, the file was opened immutable, which reads it without its -wal: a study list
    showed the trials of before the log, with exit 0."""
    import shutil
    import sqlite3

    if not _unshare_ok():
        pytest.skip("needs `unshare -m` (a private mount namespace) for a read-only bind mount")
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    _study_db(src / "studies.db")
    holder = sqlite3.connect(src / "studies.db")  # open while trials are added: they stay in the log
    holder.execute("PRAGMA journal_mode=WAL")
    try:
        import optuna

        optuna.load_study(study_name="kept", storage=f"sqlite:///{src / 'studies.db'}").optimize(
            lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=2)
        assert (src / "studies.db-wal").stat().st_size > 0
        for name in ("studies.db", "studies.db-wal"):
            shutil.copy(src / name, ro / name)
    finally:
        holder.close()
    cmd = f"exec {sys.executable} -m tuner.cli study list --storage 'sqlite:///{ro / 'studies.db'}'"
    script = f"mount --bind '{ro}' '{ro}' && mount -o remount,bind,ro '{ro}' && {cmd}"
    line = one_line_error(subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=tmp_path, capture_output=True,
                                         text=True, timeout=300))
    assert "write-ahead log beside it (studies.db-wal)" in line and "copy both files" in line, line


def test_a_read_only_url_is_read_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "studies.db"
    _study_db(path)
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    res = tuner("study", "list", "--json", "--storage", url, cwd=cwd)
    assert res.returncode == 0, res.stderr
    assert [r["name"] for r in json.loads(res.stdout)] == ["kept"]
    assert list(cwd.iterdir()) == []  # nothing created beside it (no folder named "file:")
    line = one_line_error(tuner("tune", "--dataset", "iris", "--study", "kept", *FAST, "--storage", url,
                                "--no-tracking", cwd=cwd))
    assert "read-only" in line
    line = one_line_error(tuner("study", "delete", "kept", "--yes", "--storage", url, cwd=cwd))
    assert "read-only" in line and "deleting a study needs a writable one" in line, line  # it spoke of trials only


def test_reading_a_store_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "studies.db"
    line = one_line_error(tuner("study", "list", "--storage", f"sqlite:///{missing}", cwd=tmp_path))
    assert "no study database" in line and str(missing) in line
    assert not missing.parent.exists()


def test_an_in_memory_store_that_would_lose_the_study_or_a_folder_is_refused(tmp_path: Path) -> None:
    line = one_line_error(tuner("tune", "--dataset", "iris", *FAST, "--storage", "sqlite://", "--no-tracking",
                                cwd=tmp_path))
    assert "in-memory" in line
    line = one_line_error(tuner("tune", "--dataset", "iris", *FAST, "--tracking-uri", "sqlite:///:memory:",
                                cwd=tmp_path))
    assert "in-memory" in line and "MLflow" in line
    (tmp_path / "runs").mkdir()  # a folder: 'unable to open database file' from SQLite
    line = one_line_error(tuner("tune", "--dataset", "iris", *FAST, "--tracking-uri", f"sqlite:///{tmp_path / 'runs'}",
                                cwd=tmp_path))
    assert f"names a folder, {tmp_path / 'runs'}; name a database file in it" in line, line


def test_a_corrupted_file_for_either_store_is_one_line_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(os.urandom(8192))
    line = one_line_error(tuner("study", "list", "--storage", f"sqlite:///{bad}", cwd=tmp_path))
    assert str(bad) in line and "not a database" in line
    line = one_line_error(tuner("tune", "--dataset", "iris", *FAST, "--tracking-uri", f"sqlite:///{bad}",
                                cwd=tmp_path))
    assert str(bad) in line and "MLflow" in line
    assert bad.stat().st_size == 8192


FOREIGN_SCHEMAS = {
    "other columns": ["CREATE TABLE studies (id INTEGER PRIMARY KEY, title TEXT)"],
    # Optuna's two columns among others: it added its tables and wrote a study into it
    "one more column": ["CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT NOT NULL, pi TEXT)",
                        "INSERT INTO studies VALUES (1, 'heart-2024', 'Dr X')"],
    # Optuna's columns without a key: a traceback (KeyError: 'Record does not exist.') after writing to it
    "no primary key": ["CREATE TABLE studies (study_id INT, study_name TEXT)"],
    # Optuna's own table beside another program's
    "beside other tables": ["CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name VARCHAR(512) NOT NULL)",
                            "CREATE TABLE patients (id INT, name TEXT)"],
}


@pytest.mark.parametrize("schema", list(FOREIGN_SCHEMAS))
@pytest.mark.parametrize("command", [("study", "list"), ("tune", "--dataset", "iris", "--trials", "1", "--epochs", "2",
                                                 "--no-tracking")])
def test_a_database_with_a_foreign_studies_table_is_one_line(tmp_path: Path, command: tuple[str, ...],
                                                             schema: str) -> None:
    """An application's own `studies` table: Optuna keeps it, then fails on its columns (a traceback),
    or, where its columns include Optuna's, adds its tables and writes a study into it."""
    import sqlite3

    db = tmp_path / "app.db"
    with sqlite3.connect(db) as con:
        for statement in FOREIGN_SCHEMAS[schema]:
            con.execute(statement)
    before = db.read_bytes()
    line = one_line_error(tuner(*command, "--storage", f"sqlite:///{db}", cwd=tmp_path))
    assert str(db) in line and "not a study database" in line, line
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()  # left as it was: nothing added to it


def test_a_store_locked_past_the_busy_timeout_is_one_line_and_the_study_resumes(tmp_path: Path) -> None:
    """Another connection holding SQLite's write lock gave six chained tracebacks, and the running
    trial failed with Optuna's guess, 'invalid data in the commit'."""
    import sqlite3

    import optuna

    db = tmp_path / "s.db"
    url = f"sqlite:///{db}?timeout=1"  # the busy timeout from the URL: the default waits 30 s
    assert tuner("tune", "--dataset", "iris", *FAST, "--study", "s", "--storage", url, "--no-tracking",
                 cwd=tmp_path).returncode == 0
    holder = sqlite3.connect(db, isolation_level=None, timeout=60)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        line = one_line_error(tuner("tune", "--study", "s", "--storage", url, "--no-tracking", "--trials", "4",
                                    cwd=tmp_path))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert line.startswith("Error: A database failed: database is locked: another process held a write lock")
    assert "?timeout=SECONDS" in line
    resumed = tuner("tune", "--study", "s", "--storage", url, "--no-tracking", "--trials", "4", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    trials = optuna.load_study(study_name="s", storage=url).trials
    assert sum(t.state.name == "COMPLETE" for t in trials) == 4
    assert all("invalid data in the commit" not in str(t.system_attrs.get("fail_reason", "")) for t in trials)


def test_a_damaged_or_half_made_study_database_is_one_line_for_every_command(tmp_path: Path) -> None:
    import sqlite3

    good = tmp_path / "good.db"
    assert tuner("tune", "--dataset", "iris", *FAST, "--study", "s", "--storage", f"sqlite:///{good}",
                 "--no-tracking", cwd=tmp_path).returncode == 0
    damaged, half = tmp_path / "damaged.db", tmp_path / "half.db"
    for copy in (damaged, half):  # SQLite's backup: the file alone may lack what its WAL holds
        with sqlite3.connect(good) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
        sqlite3.connect(copy).execute("PRAGMA journal_mode=DELETE").close()
    with open(damaged, "r+b") as fh:  # past the header: a readable file whose pages are garbage
        fh.seek(4096)
        fh.write(b"\xff" * 8192)
    with sqlite3.connect(half) as con:
        con.execute("DROP TABLE trial_values")
    line = one_line_error(tuner("tune", "--dataset", "iris", *FAST, "--study", "s", "--storage",
                                f"sqlite:///{damaged}", "--no-tracking", cwd=tmp_path))
    assert "malformed" in line and "restore it from a copy" in line
    worker = one_line_error(tuner("worker", "--study", "s", "--storage", f"sqlite:///{damaged}", "--no-tracking",
                                  "--wait", "1", cwd=tmp_path))
    assert "malformed" in worker and "appeared" not in worker  # not 'no study appeared'
    for command in (("study", "list"), ("study", "show", "s"), ("study", "export", "s"),
                    ("study", "delete", "s", "--yes")):
        line = one_line_error(tuner(*command, "--storage", f"sqlite:///{half}", cwd=tmp_path))
        assert "no such table: trial_values" in line and "lacks tables that a study database has" in line


def test_a_lock_file_that_cannot_be_created_fails_at_once(tmp_path: Path) -> None:
    """filelock took the failed create for a lock another process held, and waited 10 minutes."""
    started = time.monotonic()
    line = one_line_error(tuner("tune", "--dataset", "iris", *FAST, "--storage", "sqlite:////proc/x.db",
                                "--no-tracking", cwd=tmp_path, timeout=120))
    assert "Cannot create the lock file /proc/.x.db.lock" in line and time.monotonic() - started < 60


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung or firewalled server)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        yield srv.getsockname()[1]


def test_an_unreachable_postgresql_store_fails_within_seconds(tmp_path: Path, silent_server: int) -> None:
    url = f"postgresql+psycopg2://spy:{SECRET}@127.0.0.1:{silent_server}/studies"
    t0 = time.monotonic()
    res = tuner("study", "list", "--storage", url, cwd=tmp_path, timeout=60)
    line = one_line_error(res)
    assert "Cannot reach the study database" in line and SECRET not in res.stderr + res.stdout
    res = tuner("tune", "--dataset", "iris", *FAST, "--storage", f"sqlite:///{tmp_path / 's.db'}",
                "--tracking-uri", url.replace("/studies", "/mlflow"), cwd=tmp_path, timeout=60)
    line = one_line_error(res)
    assert "Cannot reach the MLflow tracking store" in line and SECRET not in res.stderr + res.stdout
    assert time.monotonic() - t0 < 60


# ---- 3. drivers ------------------------------------------------------------------------------------
def test_postgresql_urls_work_with_either_driver_for_both_stores(pg: dict[str, str], tmp_path: Path) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("psycopg[binary]") for r in extras["postgres"])  # what `postgresql://` needs
    plain = {k: v.replace("postgresql+psycopg2://", "postgresql://") for k, v in pg.items()}
    for i, urls in enumerate((plain, pg)):
        res = tuner("tune", "--dataset", "iris", "--study", f"form{i}", *FAST, "--storage", urls["drv_studies"],
                    "--tracking-uri", urls["drv_mlflow"], "--json", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["best_value"] is not None


def test_a_missing_driver_is_mapped_or_named_with_the_pip_command(pg: dict[str, str], tmp_path: Path) -> None:
    plain = {k: v.replace("postgresql+psycopg2://", "postgresql://") for k, v in pg.items()}
    args = ["tune", "--dataset", "iris", "--study", "no-psycopg3", *FAST, "--storage", plain["drv_studies"],
            "--tracking-uri", plain["drv_mlflow"], "--json"]
    res = subprocess.run([sys.executable, "-c", WITHOUT, "psycopg", *args], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr  # plain postgresql:// falls back to psycopg2
    res = subprocess.run([sys.executable, "-c", WITHOUT, "psycopg,psycopg2", *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    line = one_line_error(res)
    assert "pip install 'logreg-tuner[postgres]'" in line and SECRET not in line


# ---- 4. secrets ---------------------------------------------------------------------------------------
def test_the_password_shows_nowhere(pg: dict[str, str], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    st, ml = pg["sec_studies"], pg["sec_mlflow"]
    runs = [
        tuner("tune", "--dataset", "iris", "--study", "sec", *FAST, "--storage", st, "--tracking-uri", ml, cwd=tmp_path),
        tuner("tune", "--study", "sec", "--storage", st, "--tracking-uri", ml, "--json", cwd=tmp_path),
        tuner("worker", "--study", "sec", "--storage", st, "--no-tracking", "--json", cwd=tmp_path),
        tuner("worker", "--study", "sec", "--storage", st, "--no-tracking", cwd=tmp_path),
        invoke("study", "list", "--storage", st),
        invoke("study", "list", "--json", "--storage", st),
        invoke("study", "show", "sec", "--storage", st),
        invoke("study", "show", "sec", "--json", "--storage", st),
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-800:] for r in runs if r.returncode]
    assert json.loads(runs[1].stdout)["storage"].startswith("postgresql+psycopg2://spy:***@")
    errors = [
        invoke("worker", "--study", "nosuch", "--wait", "0", "--storage", st, "--no-tracking"),
        invoke("study", "show", "nosuch", "--storage", st),
        invoke("study", "list", "--storage", st.replace("/sec_studies", "/nodb")),
        invoke("tune", "--dataset", "iris", *FAST, "--storage", st, "--tracking-uri", st),
    ]
    for res in errors:
        one_line_error(res)
    for res in runs + errors:
        assert SECRET not in res.stdout + res.stderr, res.stdout + res.stderr
    client = MlflowClient(tracking_uri=ml)
    exp = client.get_experiment_by_name("sec")
    parents = client.search_runs([exp.experiment_id], filter_string="tags.`tuner.role` = 'study'")
    assert parents and parents[0].data.tags["tuner.storage"].startswith("postgresql+psycopg2://spy:***@")
    for run in client.search_runs([exp.experiment_id]):
        assert SECRET not in json.dumps([run.data.tags, run.data.params])


@pytest.mark.parametrize("url,shown", [
    ("postgresql://tuner:S3cretPw@db:5432/studies", "postgresql://tuner:***@db:5432/studies"),
    # Azure's user@server logins: SQLAlchemy takes the host after the last @ (the password leaked)
    ("postgresql://tuner@myserver:S3cretPw@myserver.postgres.database.azure.com:5432/studies",
     "postgresql://tuner@myserver:***@myserver.postgres.database.azure.com:5432/studies"),
    ("mysql+pymysql://u:pa:ss@h/db", "mysql+pymysql://u:***@h/db"),
    ("postgresql://tuner@db/studies", "postgresql://tuner@db/studies"),  # no password: unchanged
    ("sqlite:////tmp/studies.db", "sqlite:////tmp/studies.db"),
])
def test_redact_hides_the_password_of_any_url(url: str, shown: str) -> None:
    from tuner.study._storage import BARE_SECRET_MIN, _parse, redact

    password = _parse(url).password
    text = f"Cannot open {url}: connection refused (host={url})"
    assert redact(text, url) == f"Cannot open {shown}: connection refused (host={shown})"
    if password and len(password) >= BARE_SECRET_MIN:
        assert password not in redact(f"driver said: {password} rejected", url)


def test_a_short_password_is_hidden_in_its_url_forms_and_leaves_words_alone() -> None:
    """A one-letter password was replaced wherever its letter stood: '"127.0.0.1", ***ort 1
    failed', '***assword authentication failed'."""
    from urllib.parse import quote

    from tuner.study._storage import redact

    url = "postgresql://rev:p@127.0.0.1:1/x"
    driver = 'connection to server at "127.0.0.1", port 1 failed: password authentication failed for user "rev"'
    assert redact(driver, url) == driver
    text = f"{url} | {quote(url, safe='')} | rev:p@127.0.0.1:1"
    assert redact(text, url) == ("postgresql://rev:***@127.0.0.1:1/x | "
                                 f"{quote('postgresql://rev:***@127.0.0.1:1/x', safe='')} | rev:***@127.0.0.1:1")


def test_a_long_password_is_hidden_wherever_the_driver_echoes_it() -> None:
    from tuner.study._storage import redact

    url = "postgresql://rev:Tr0ub4dor%263@db/x"  # the password is Tr0ub4dor&3
    said = 'FATAL: password "Tr0ub4dor&3" rejected for "rev:Tr0ub4dor%263@db" (rev:Tr0ub4dor&3@db); port 5432'
    assert redact(said, url) == 'FATAL: password "***" rejected for "rev:***@db" (rev:***@db); port 5432'


def test_the_mlflow_database_given_as_the_study_storage_is_one_line_and_left_alone(tmp_path: Path) -> None:
    """Optuna added its 12 tables to the MLflow store, then failed on a schema-version message."""
    import sqlite3

    import mlflow

    mlruns = tmp_path / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{mlruns}").search_experiments()  # MLflow creates its tables
    with sqlite3.connect(mlruns) as con:
        before = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    line = one_line_error(tuner("tune", "--dataset", "iris", *FAST, "--storage", f"sqlite:///{mlruns}",
                                "--tracking-uri", f"sqlite:///{tmp_path / 'other.db'}", cwd=tmp_path))
    assert str(mlruns) in line and "is an MLflow tracking database, not a study database" in line, line
    with sqlite3.connect(mlruns) as con:
        assert sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")) == before
    other = tmp_path / "app.db"  # any other application's SQLite file likewise
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    line = one_line_error(tuner("tune", "--dataset", "iris", *FAST, "--storage", f"sqlite:///{other}", cwd=tmp_path))
    assert "holds other tables (orders) and none of Optuna's" in line, line
