"""Where Podium keeps its data."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """`$PODIUM_HOME`, else the per-user data folder."""
    configured = os.environ.get("PODIUM_HOME")
    if configured:
        return Path(configured)
    from platformdirs import user_data_dir  # only here: `podium --help` never needs it

    return Path(user_data_dir("podium", appauthor=False))


def database_path() -> Path:
    """The default journal database."""
    return home() / "podium.db"


def audit_off() -> bool:
    """Whether `$PODIUM_AUDIT` is `off`: the command then keeps no audit log."""
    return os.environ.get("PODIUM_AUDIT", "").lower() == "off"


def audit_path(db: Path | None = None) -> Path | None:
    """Where the audit log is: `$PODIUM_AUDIT`, else the journal database `db` (None: the
    default journal's), so that `podium audit verify` finds what `podium run` wrote."""
    configured = os.environ.get("PODIUM_AUDIT")
    if configured and not audit_off():
        return Path(configured)
    return db


def memory_path() -> Path:
    """The default long-term memory database: `$PODIUM_MEMORY_DB`, else
    `$PODIUM_HOME/memory.db`."""
    configured = os.environ.get("PODIUM_MEMORY_DB")
    return Path(configured) if configured else home() / "memory.db"
