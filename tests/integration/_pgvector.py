"""A real PostgreSQL server with pgvector on loopback, for the memory tests.

The system's PostgreSQL is used when its pgvector package is installed
(`postgresql-NN-pgvector`, which `scripts/test` installs where Debian has it); otherwise
the PostgreSQL 16 build with pgvector that the `pgserver` package (a dev dependency)
ships. Either runs from a temporary folder as the `postgres` user when we are root.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PASSWORD = "mem-Pw'd 1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binaries() -> Path | None:
    """The bin folder of a PostgreSQL that has pgvector."""
    for bin_dir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        version = bin_dir.parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/vector.control").exists():
            return bin_dir
    # Found, not imported: importing pgserver warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bundled = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bundled if (bundled / "initdb").exists() else None


@contextmanager
def pgvector_server() -> Iterator[str]:
    """Start a PostgreSQL server with pgvector on 127.0.0.1; yields its libpq URL."""
    pytest.importorskip("psycopg")
    bin_dir = _binaries()
    if bin_dir is None:
        pytest.fail("no PostgreSQL with pgvector: install postgresql-NN-pgvector, or the dev "
                    "extra (it brings pgserver)")
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="podium-pgvector-"))
    pwfile = home / "pw"
    pwfile.write_text(PASSWORD)
    if as_user:
        shutil.chown(home, "postgres")
        shutil.chown(pwfile, "postgres")
    port, data = _free_port(), home / "data"
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "app",
                        f"--pwfile={pwfile}", "-A", "scram-sha-256", "--no-sync"],
                       check=True, capture_output=True)
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l",
                        str(home / "log"), "-w", "-o",
                        f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -F", "start"],
                       check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        log = (home / "log").read_text(errors="replace") if (home / "log").exists() else ""
        shutil.rmtree(home, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL from {bin_dir}: "
                    f"{e.stderr.decode(errors='replace')[-400:]}{log[-400:]}")
    from urllib.parse import quote

    try:
        yield f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
