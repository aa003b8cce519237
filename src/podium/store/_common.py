"""Small pieces of the journal: run statuses, JSON text, process liveness, run-id prefixes."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from podium.errors import UnknownRun

RUN_STATUS = {"run_started": "running", "run_resumed": "running", "run_waiting": "waiting",
              "run_completed": "completed", "run_failed": "failed",
              "run_cancelled": "cancelled"}
"""The run status each run-level event sets."""
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def busy(pid: int | None, host: str | None) -> bool:
    """Whether the process named by a live lease may still run (see `holds`)."""
    return host != socket.gethostname() or (pid is not None and alive(pid))


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching what starts with `prefix` (escape character `\\`)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def one_run(prefix: str, ids: set[str], location: object) -> str:
    """The run a prefix names, given the ids (at most 3) that equal it or start with it.

    Raises:
        UnknownRun: none does, or several do.
    """
    if prefix in ids:
        return prefix
    if len(ids) == 1:
        return ids.pop()
    if not ids:
        raise UnknownRun(f"no run {prefix!r} in the journal at {location}; "
                         "`podium runs list` shows the runs")
    raise UnknownRun(f"run id {prefix!r} is ambiguous; give more of it")
