"""The journal: the durable, append-only record of runs, in SQLite or PostgreSQL.

What other rooms use, from here: `open_store(where)` picks the backend (`is_url` tells a
PostgreSQL URL from a file path); `Store` is the interface the engine journals through,
written once (`store/base.py`) over the primitives each backend supplies; `SQLiteStore` and
`PostgresStore` are the backends. The data-keys scheme shared with memory.db is
`podium.store.keys`, the statements-as-values protocol it is written in `podium.store.sql`;
the conformance suite every backend passes is `podium.testing.store_conformance`.
"""

from podium.store._open import is_url, open_store
from podium.store.base import (
    CircuitState,
    Conflict,
    LeaseLost,
    Owner,
    RunSummary,
    Store,
    new_owner,
)
from podium.store.keys import KeyStatus
from podium.store.postgres import PostgresStore
from podium.store.sqlite import SQLiteStore

__all__ = [
    "CircuitState",
    "Conflict",
    "KeyStatus",
    "LeaseLost",
    "Owner",
    "PostgresStore",
    "RunSummary",
    "SQLiteStore",
    "Store",
    "is_url",
    "new_owner",
    "open_store",
]
