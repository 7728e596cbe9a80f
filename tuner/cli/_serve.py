"""``tuner ui`` and ``tuner dashboard``: the MLflow UI and optuna-dashboard as child processes.

Each starts its server in its own process group, waits until it answers HTTP, prints its URL
(and, for ``tuner ui --study NAME``, the link that opens the study's training runs), and
stops it on Ctrl-C or SIGTERM. The server's own output goes to a log file, named when the
server fails to start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from tuner.cli._mlflow_info import DEFAULT_UI_PORT, ui_url
from tuner.cli._options import storage_option, tracking_uri_option
from tuner.errors import ConfigError

__all__ = ["ui", "dashboard", "wait_http", "DASHBOARD_PORT", "START_TIMEOUT_S"]

DASHBOARD_PORT = 8080
START_TIMEOUT_S = 180.0
"""How long a server may take to answer its first request (the MLflow server imports a lot)."""

_HOST_HELP = "Interface to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)."


@click.command("ui")
@tracking_uri_option("MLflow tracking URI to show [env MLFLOW_TRACKING_URI; default sqlite:///mlflow.db]; "
                     "an http(s) server is not started again, its links are printed.")
@click.option("--host", default="127.0.0.1", show_default=True, help=_HOST_HELP)
@click.option("--port", default=DEFAULT_UI_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the MLflow UI.")
@click.option("--study", "study_name", help="Also print the link that opens this study's training runs.")
@storage_option()
def ui(tracking_uri: str | None, host: str, port: int, study_name: str | None, storage: str | None) -> None:
    """The MLflow UI on the tracking store: every study an experiment, every trial a run.

    Starts `mlflow server` on the store (a local SQLite file by default), prints its URL and
    stops it on Ctrl-C."""
    from tuner.study import redact
    from tuner.tracking._home import check_same_store, study_tracking_uri, tracking_uri_for

    uri = tracking_uri or tracking_uri_for(storage, study_name)  # --study: the store it logs to
    experiment_id = _experiment_of(study_name, storage) if study_name else None
    if study_name and tracking_uri:  # an experiment id means nothing in another store
        from tuner.study import default_storage_url

        check_same_store(study_tracking_uri(storage or default_storage_url(), study_name), tracking_uri, study_name,
                         reading=True)
    if uri.lower().startswith(("http://", "https://")):
        click.echo(f"MLflow UI: {redact(uri)} (a tracking server: nothing to start)")
        if experiment_id is not None:
            click.echo(f"Study {study_name}: {ui_url(uri, experiment_id)}")
        return
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
           "--port", str(port), "--workers", "1"]
    db = _sqlite_file(uri)
    if db is not None:
        if not db.exists():
            raise ConfigError(f"No MLflow store at {db}: run `tuner tune` first, or give --tracking-uri.")
        from tuner.tracking._store import check_store_exists

        check_store_exists(uri)  # a study database, or a damaged file: one line, not the server's traceback
        cmd += ["--artifacts-destination", str(db.resolve().parent / "mlartifacts")]
    base = f"http://{_browse_host(host)}:{port}"
    lines = [f"MLflow UI: {base}  (store {redact(uri)}; Ctrl-C stops it)"]
    if experiment_id is not None:
        lines.append(f"Study {study_name}: {ui_url(uri, experiment_id, port=port, host=_browse_host(host))}")
    _serve(cmd, f"{base}/health", lines, "mlflow server", {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, host, port)


@click.command("dashboard")
@storage_option()
@click.option("--host", default="127.0.0.1", show_default=True, help=_HOST_HELP)
@click.option("--port", default=DASHBOARD_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="Port of optuna-dashboard.")
def dashboard(storage: str | None, host: str, port: int) -> None:
    """optuna-dashboard on the study storage: histories, parameter plots, importances.

    Needs the optional extra: pip install 'logreg-tuner[dashboard]'. Prints the URL and stops
    the dashboard on Ctrl-C."""
    from tuner.study import default_storage_url, open_storage, redact

    url = storage or default_storage_url()
    # read first: a mistyped path or an unreachable server is one line here, not a 0-byte file
    # and the dashboard's traceback
    open_storage(url, heartbeat=False, writable=False)
    exe = _dashboard_exe()
    base = f"http://{_browse_host(host)}:{port}"
    cmd = [exe, url, "--host", host, "--port", str(port)]
    _serve(cmd, f"{base}/", [f"optuna-dashboard: {base}  (storage {redact(url)}; Ctrl-C stops it)"],
           "optuna-dashboard", {}, host, port)


def _dashboard_exe() -> str:
    """The optuna-dashboard script of this environment; a one-line error naming the extra when missing."""
    import importlib.util

    exe = Path(sys.executable).with_name("optuna-dashboard")
    found = str(exe) if exe.exists() else shutil.which("optuna-dashboard")
    if importlib.util.find_spec("optuna_dashboard") is None or found is None:
        raise ConfigError("optuna-dashboard is not installed: pip install 'logreg-tuner[dashboard]'")
    return found


def _experiment_of(study_name: str, storage: str | None) -> str:
    """The MLflow experiment id a study logged to (its ``mlflow_experiment_id`` attribute)."""
    from tuner.study import study_record

    experiment_id = study_record(storage, study_name).user_attrs.get("mlflow_experiment_id")
    if experiment_id is None:
        raise ConfigError(f"Study {study_name!r} was not logged to MLflow (it ran with --no-tracking, or its "
                          f"tracking failed: `tuner study sync-mlflow {study_name}` logs it).")
    return str(experiment_id)


def _sqlite_file(uri: str) -> Path | None:
    if not uri.lower().startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):]
    return None if path in ("", ":memory:") else Path(path)


def _browse_host(host: str) -> str:
    """The address to print for a listening interface (0.0.0.0 is not one to browse to)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _serve(cmd: list[str], health_url: str, lines: list[str], what: str, env: dict[str, str], host: str,
           port: int) -> None:
    """Run ``cmd`` until Ctrl-C/SIGTERM: print ``lines`` once ``health_url`` answers 200 from it.

    The port is checked free first: another server on it would answer the health check, and
    the links printed would be to that server, while this one fails to bind."""
    _check_port_free(host, port, what)
    log_fd, log_name = tempfile.mkstemp(prefix="tuner-serve-", suffix=".log")
    log = Path(log_name)
    proc: subprocess.Popen[bytes] | None = None
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        proc = subprocess.Popen(cmd, stdout=log_fd, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**env, **os.environ})
        wait_http(health_url, proc, log, what)
        time.sleep(0.2)  # the port taken between the check and the start: the answer was another's
        if proc.poll() is not None:
            raise ConfigError(f"{what} exited with code {proc.returncode} as it started: {_tail(log)}")
        click.echo("\n".join(lines))  # one write: a SIGTERM right after it cannot cut the study link off
        proc.wait()
        raise ConfigError(f"{what} stopped with exit code {proc.returncode}: {_tail(log)}")
    except KeyboardInterrupt:
        click.echo(f"Stopped {what}.", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(proc)
        os.close(log_fd)
        log.unlink(missing_ok=True)


def _check_port_free(host: str, port: int, what: str) -> None:
    """A :class:`ConfigError` when ``host:port`` cannot be bound (another server listens there)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        raise ConfigError(f"Cannot serve {what} on host {host!r}: {exc.strerror or exc}; check --host.") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: a closing socket is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"Port {port} on {host} is in use ({exc.strerror or exc}): another server runs there; "
                              f"stop it or give another --port for {what}.") from None


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, what: str,
              timeout: float = START_TIMEOUT_S) -> None:
    """Poll ``url`` until it answers 200; a :class:`ConfigError` with the tail of ``log`` when
    ``proc`` (the server, called ``what``) exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"{what} exited with code {proc.returncode} before answering: {_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise ConfigError(f"{what} did not answer at {url} within {timeout:.0f} s: {_tail(log)}")


def _tail(log: Path, n: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return " | ".join(text[-n:]) or "(no output)"


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the server's process group, SIGKILL after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
