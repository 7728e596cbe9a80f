"""A real ``mlflow server`` subprocess with a study logged to it, shared by the server and UI tests.

Not a test module (no ``test_`` prefix): ``test_mlflow_server.py`` and ``test_mlflow_ui.py``
import it, and :func:`served_study` starts the server and runs the study once per session.
Also a small TCP proxy whose off switch stands for a lost network to the tracking server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.cli._serve import wait_http

STUDY = "served"
N_TRIALS = 10  # enough for the median pruner to stop some trials (they must not rank in the UI)
_CACHE: dict[str, Any] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_exe() -> str:
    exe = Path(sys.executable).with_name("mlflow")
    return str(exe) if exe.exists() else (shutil.which("mlflow") or "mlflow")


def stop_process(proc: subprocess.Popen | None) -> None:
    """SIGTERM the process group we started (start_new_session=True), SIGKILL after 15 s."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=15)


class MlflowServer:
    """``mlflow server`` on a free port: SQLite backend store, proxied artifacts, one worker."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 240) -> MlflowServer:
        cmd = [mlflow_exe(), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
               "--artifacts-destination", str(self.root / "artifacts")]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job runner: faster start
        with self.log.open("w") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=self.root,
                                         start_new_session=True)
        wait_http(f"{self.url}/health", self.proc, self.log, "the MLflow server", timeout)
        return self

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Served:
    server: MlflowServer
    storage: str
    study: str
    result: Any
    root: Path


def served_study(tmp_path_factory: Any, *, sentiment_from: Path | None = None) -> Served:
    """The session's server with a study logged to it: ``served``, 10 trials on breast_cancer,
    some pruned; or, with ``sentiment_from`` (the rt-polarity folder), ``sentiment``: the same
    search on 2,000 of its reviews (TF-IDF), the study the README's screenshots show."""
    key = STUDY if sentiment_from is None else "sentiment"
    if key in _CACHE:
        return _CACHE[key]
    from tuner.data import load_data
    from tuner.study import DataSpec, StudySpec, run_study
    from tuner.tracking import MlflowObserver

    root = tmp_path_factory.mktemp(f"mlflow-server-{key}")
    if sentiment_from is None:
        data = DataSpec(dataset="breast_cancer", fingerprint=load_data(dataset="breast_cancer").fingerprint)
    else:
        folder = root / "rt-polarity"
        folder.mkdir()
        for polarity in ("pos", "neg"):  # the first 1,000 reviews of each class, as read (Latin-1)
            lines = (sentiment_from / f"rt-polarity.{polarity}").read_bytes().splitlines(keepends=True)[:1000]
            (folder / f"rt-polarity.{polarity}").write_bytes(b"".join(lines))
        raw = load_data(folder, encoding="latin-1")
        data = DataSpec(path=str(folder), encoding="latin-1", fingerprint=raw.fingerprint)
    server = MlflowServer(root).start()
    try:
        storage = f"sqlite:///{root / 'studies.db'}"
        spec = StudySpec(data, ["l2"], ["lbfgs", "fista"], sampler="random", pruner="median", seed=1,
                         n_trials=N_TRIALS, train={"epochs": 10})
        result = run_study(spec, key, storage, observers=[MlflowObserver(server.url)])
    except BaseException:
        server.stop()
        raise
    _CACHE[key] = Served(server, storage, key, result, root)
    return _CACHE[key]


def stop_served(key: str = STUDY) -> None:
    served = _CACHE.pop(key, None)
    if served is not None:
        served.server.stop()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to an upstream port; :meth:`stop` refuses and cuts connections."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> TcpProxy:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        self._listener = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            srv, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if srv is not None:
            srv.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not srv:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
