"""Encryption at rest for the SQLite memory store: each memory's text, metadata and vector
sealed with AES-256-GCM.

The scheme is the journal's (`podium.security.crypto`, `podium.store.keys.DataKeys`), in
tables of memory.db itself: `data_keys` holds one data key per owner, wrapped by the master
key, and `meta` names the current master key. A memory about a subject is sealed under the
key `subject:<id>`, one without a subject under `namespace:<name>`. Each field is bound to
its row by associated data (`context("memory", id, field)`), so a ciphertext copied into
another row, or into another field, does not decrypt.

Erasing a subject deletes its rows and destroys its key in one transaction; rotation
re-wraps the keys under a new master key (`podium keys rotate` does both databases).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from podium.security.crypto import (
    DataKey,
    DecryptError,
    KeyConfigError,
    Keyring,
    MasterKey,
    context,
    seal,
)
from podium.store.keys import DATA_KEYS_SCHEMA, DataKeys, subject_owner
from podium.store.sql import run_sqlite

SCHEMA = DATA_KEYS_SCHEMA + """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""


def owner_of(namespace: str, subject: str | None) -> str:
    """Whose data key seals a memory: its subject's, else its namespace's."""
    return subject_owner(subject) if subject is not None else f"namespace:{namespace}"


def where(memory_id: str, field: str) -> bytes:
    """The associated data binding a sealed field to its memory."""
    return context("memory", memory_id, field)


class MemoryKeys:
    """The data keys of one memory.db, for one store object."""

    def __init__(self, keyring: Keyring | None, path: str) -> None:
        self.keys = DataKeys(keyring)
        self.path = path

    @property
    def encrypted(self) -> bool:
        return self.keys.keyring is not None

    def key(self, db: sqlite3.Connection, owner: str) -> DataKey:
        """`owner`'s live data key, made in the caller's transaction if it has none (a
        subject's is looked up again each time: another process may have shredded it)."""
        key = run_sqlite(db, self.keys.for_owner(owner, create=True))
        assert key is not None
        return key

    @staticmethod
    def seal(key: DataKey, memory_id: str, field: str, plain: bytes) -> bytes:
        """`plain` sealed under `key`, bound to its memory and field."""
        return seal(key, plain, where(memory_id, field))

    def open(self, db: sqlite3.Connection, memory_id: str, field: str, value: Any
             ) -> bytes | None:
        """A field as stored: clear text/bytes as they are, a sealed blob decrypted; None
        when its key was destroyed (the memory was erased)."""
        what = f"the {field} of memory {memory_id!r} in {self.path}"
        if isinstance(value, str):
            return value.encode()
        return run_sqlite(db, self.keys.open(value, where(memory_id, field), what))

    def refuse_clear(self, db: sqlite3.Connection) -> None:
        """Never add clear memories to a memory.db that ever held encrypted ones (even if
        every one was erased since: a deleted master key must not downgrade it)."""
        row = db.execute("SELECT master_id FROM data_keys LIMIT 1").fetchone()
        if row is not None:
            raise KeyConfigError(
                f"{self.path} holds encrypted memories (master key {row[0]}) and this "
                "process has no master key, so it would add memories in clear; set "
                "PODIUM_MASTER_KEY or PODIUM_MASTER_KEY_FILE")

    def shred_subject(self, db: sqlite3.Connection, subject: str) -> int:
        return run_sqlite(db, self.keys.shred(subject_owner(subject)))

    def start_rotation(self, db: sqlite3.Connection, new: MasterKey) -> None:
        run_sqlite(db, self.keys.start_rotation(new))

    def rewrap(self, db: sqlite3.Connection, new: MasterKey, limit: int) -> int:
        return run_sqlite(db, self.keys.rewrap(new, limit))


__all__ = ["SCHEMA", "DecryptError", "MemoryKeys", "owner_of", "where"]
