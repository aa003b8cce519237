"""Memory: short-term (the run and its session) and long-term (namespaced, searchable by
meaning, erasable per subject), and the embeddings that make search by meaning work.

Long-term memory in brief::

    store = SQLiteMemoryStore(home() / "memory.db")          # or PostgresMemoryStore(url)
    await store.add("patients/p-102", "Allergic to penicillin.", source="operator:ada",
                    trust="trusted", subject="p-102")
    hits = await store.search("patients/p-102", "drug allergies", top_k=5)
    await erase_subject("p-102", memory=store, journal=journal_path)   # erasure

PostgreSQL is imported lazily (`podium[postgres]`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podium.core.memory import Memory, MemoryQuery, Trust
from podium.memory.erasure import Erasure, erase_subject
from podium.memory.sqlite import SQLiteMemoryStore
from podium.memory.store import MemoryStore, NewMemory, UntrustedSource
from podium.memory.trust import (
    HumanApproval,
    ModelJudge,
    RuleValidator,
    Validator,
    Verdict,
)

if TYPE_CHECKING:
    from podium.memory.postgres import PostgresMemoryStore

__all__ = [
    "Erasure",
    "HumanApproval",
    "Memory",
    "MemoryQuery",
    "MemoryStore",
    "ModelJudge",
    "NewMemory",
    "PostgresMemoryStore",
    "RuleValidator",
    "SQLiteMemoryStore",
    "Trust",
    "UntrustedSource",
    "Validator",
    "Verdict",
    "erase_subject",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresMemoryStore":
        from podium.memory.postgres import PostgresMemoryStore

        return PostgresMemoryStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
