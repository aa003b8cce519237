"""Choosing the journal's backend from where it is: a file path, or a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from podium.config import database_path
from podium.security.audit import AuditLog
from podium.security.crypto import Keyring
from podium.store.base import Store


def is_url(where: str | Path | None) -> bool:
    """Whether `where` names a PostgreSQL journal (`postgresql://...` or `postgres://...`)."""
    from podium.store.postgres import URL_SCHEMES

    return isinstance(where, str) and where.startswith(URL_SCHEMES)


def open_store(where: str | Path | None = None, *,
               keys: Keyring | Literal["env"] | None = "env", audit: AuditLog | None = None,
               actor: str = "engine") -> Store:
    """The journal at `where`: a `PostgresStore` for a `postgresql://` URL, else a
    `SQLiteStore` for a file path (by default `$PODIUM_HOME/podium.db`).

    Args:
        where: a libpq URL or a file path; None for the default file.
        keys: the master keys to encrypt with (see `SQLiteStore`).
        audit: where key rotations and crypto-shredding are recorded; None: nowhere.
        actor: who those records name as having acted.
    """
    if is_url(where):
        from podium.store.postgres import PostgresStore

        return PostgresStore(str(where), keys=keys, audit=audit, actor=actor)
    from podium.store.sqlite import SQLiteStore

    return SQLiteStore(Path(where) if where else database_path(), keys=keys, audit=audit,
                       actor=actor)
