"""A real PostgreSQL server on loopback for the integration tests, and fresh databases on it.

The server runs from a temporary folder (as the `postgres` user when we are root, since
PostgreSQL refuses to run as root) with password authentication, fsync off, and stops when
the session ends. `scripts/test` installs PostgreSQL where it is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

PASSWORD = "s3cr3t-Pw'd %40"


@dataclass(frozen=True)
class PostgresServer:
    """A running server: `url(db)` is a libpq URL of database `db` on it."""

    host: str
    port: int
    user: str
    password: str

    def url(self, database: str = "postgres") -> str:
        return (f"postgresql://{self.user}:{quote(self.password, safe='')}@{self.host}:"
                f"{self.port}/{database}")

    def fresh_schema(self) -> str:
        """Make an empty schema and return a URL whose connections use it (cheaper than a
        database per test; the journal's tables go in the first schema of `search_path`)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")  # type: ignore[arg-type]
        return f"{self.url()}?options=-csearch_path%3D{name}"

    def fresh_database(self) -> str:
        """Make an empty database and return its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return self.url(name)


def _binaries() -> tuple[str, str] | None:
    found = shutil.which("initdb"), shutil.which("pg_ctl")
    if found[0] and found[1]:
        return found[0], found[1]
    for bin_dir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return str(bin_dir / "initdb"), str(bin_dir / "pg_ctl")
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL server on 127.0.0.1; skipped where PostgreSQL's tools or the
    psycopg driver are missing."""
    pytest.importorskip("psycopg")
    binaries = _binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    initdb, pg_ctl = binaries
    as_user: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser")
        as_user = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="podium-pg-"))  # pytest's tmp is private to root
    pwfile = home / "pw"
    pwfile.write_text(PASSWORD)
    if as_user:
        shutil.chown(home, "postgres")
        shutil.chown(pwfile, "postgres")
    port, data = _free_port(), home / "data"
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "app", f"--pwfile={pwfile}",
                        "-A", "scram-sha-256", "--no-sync"], check=True, capture_output=True)
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(home / "log"), "-w",
                        "-o", f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -F"
                        " -c max_connections=200", "start"], check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {e.stderr.decode(errors='replace')[-300:]}")
    try:
        yield PostgresServer(host="127.0.0.1", port=port, user="app", password=PASSWORD)
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
