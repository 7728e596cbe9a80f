"""A throwaway PostgreSQL server on 127.0.0.1 for the tests (Debian's postgresql binaries)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "PostgreSQL is not installed: apt-get install -y postgresql (.ci/run does this)"
    return Path(found[-1]).parent


@contextmanager
def postgres_server(databases: tuple[str, ...] = ("studies", "mlflow"), *, user: str = "tuner",
                    password: str = "tuner", host_auth: str = "trust") -> Iterator[dict[str, str]]:
    """Start a server in a temporary folder; yield {database name: SQLAlchemy URL}; stop it after.

    ``host_auth="scram-sha-256"`` makes TCP connections prove the password (the URLs still carry
    it; a test may drop it and pass ``PGPASSWORD`` instead); the superuser works over the socket.
    """
    bindir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="tuner-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_root = os.geteuid() == 0
    prefix: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        os.chmod(root, 0o755)
    port = free_port()
    subprocess.run(prefix + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                             f"--auth-host={host_auth}", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
                             "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        psql = prefix + [str(bindir / "psql"), "-h", str(sock), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                         "-c"]
        quoted = password.replace("'", "''")
        subprocess.run(psql + [f"CREATE ROLE {user} LOGIN PASSWORD '{quoted}'"], check=True, capture_output=True)
        for db in databases:
            subprocess.run(psql + [f"CREATE DATABASE {db} OWNER {user}"], check=True, capture_output=True)
        yield {db: f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{port}/{db}" for db in databases}
    finally:
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)
