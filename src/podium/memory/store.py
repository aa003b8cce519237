"""The long-term memory store: one interface, backends for SQLite (default) and PostgreSQL.

Every read and write names exactly one namespace, checked here before a backend sees it,
and backends match it exactly; so a query never reaches a namespace it was not given. The
one operation across namespaces is erasure by subject (`forget_subject`), which must reach
everything about a person wherever it is.

Texts are embedded once, when written, by the store's embedder; the vector is stored with
the embedding model's name, and searches compare only vectors of the current model.
"""

from __future__ import annotations

import json
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from podium.core.memory import (
    TRUSTED_SOURCES,
    Memory,
    Trust,
    check_namespace,
    source_kind,
)
from podium.errors import UntrustedSource as UntrustedSource
from podium.errors import UserError

if TYPE_CHECKING:
    from podium.memory.embeddings import Embedder, Vectors
    from podium.memory.trust import Validator, Verdict


@dataclass(frozen=True, kw_only=True)
class NewMemory:
    """A memory to write (`MemoryStore.add_many`)."""

    text: str
    """What to remember."""
    source: str
    """Where it came from (`tool:fetch_page`, `user:ada`, `operator:ada`, `system`)."""
    subject: str | None = None
    """Whom it is about, for erasure."""
    trust: Trust = "untrusted"
    """`trusted` is allowed only from operator and system sources."""
    expires: float | None = None
    """When it stops being returned (seconds since the epoch)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Free JSON metadata."""


@dataclass(frozen=True, kw_only=True)
class Filter:
    """Exact filters on a namespace's memories; what a backend receives."""

    subject: str | None = None
    source: str | None = None
    trusted_only: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Every key must be present with exactly this JSON value."""
    now: float = 0.0
    """Memories that expired by then are left out."""

    def keeps(self, memory: Memory) -> bool:
        """Whether `memory` passes (for backends that filter in Python)."""
        return ((self.subject is None or memory.subject == self.subject)
                and (self.source is None or memory.source == self.source)
                and (not self.trusted_only or memory.trust == "trusted")
                and (memory.expires is None or memory.expires > self.now)
                and all(memory.metadata.get(k) == v for k, v in self.metadata.items()))


def new_memory_id() -> str:
    """A memory id that sorts by time: `m-<ms since epoch hex>-<random>`."""
    return f"m-{int(time.time() * 1000):011x}-{secrets.token_hex(5)}"


class MemoryStore(ABC):
    """Namespaced long-term memories with exact filters and search by meaning.

    Args:
        embedder: turns texts into vectors; the local MiniLM model by default.
    """

    def __init__(self, embedder: Embedder | None = None) -> None:
        if embedder is None:
            from podium.memory.embeddings import default_embedder

            embedder = default_embedder()
        self.embedder = embedder

    # -- writing ------------------------------------------------------------------------

    async def add(self, namespace: str, text: str, *, source: str,
                  subject: str | None = None, trust: Trust = "untrusted",
                  expires: float | None = None,
                  metadata: Mapping[str, Any] | None = None) -> Memory:
        """Remember `text` in `namespace`, embedding it once.

        Raises:
            UntrustedSource: `trust="trusted"` from a source that is not an operator or
                the system; promote it with a validator instead.
            UserError: an invalid namespace, an empty text or metadata that is not JSON.
        """
        (memory,) = await self.add_many(namespace, [NewMemory(
            text=text, source=source, subject=subject, trust=trust, expires=expires,
            metadata=dict(metadata or {}))])
        return memory

    async def add_many(self, namespace: str, items: Sequence[NewMemory], *,
                       vectors: Vectors | None = None) -> list[Memory]:
        """Remember several texts in one namespace, embedded in one batch (or with the
        given `vectors`, one unit row per item, made by this store's embedding model)."""
        namespace = _namespace(namespace)
        now = time.time()
        memories = [self._checked(namespace, item, now) for item in items]
        if vectors is None:
            vectors = await self.embedder.embed([m.text for m in memories])
        if len(vectors) != len(memories):
            raise UserError(f"{len(vectors)} vectors given for {len(memories)} memories")
        await self._insert(memories, vectors)
        return memories

    def _checked(self, namespace: str, item: NewMemory, now: float) -> Memory:
        if not isinstance(item.text, str) or not item.text.strip():
            raise UserError(f"a memory in {namespace!r} needs a non-empty text")
        if not item.source or not isinstance(item.source, str):
            raise UserError(f"a memory in {namespace!r} needs a source, e.g. 'tool:NAME'")
        if item.trust not in ("trusted", "untrusted"):
            raise UserError(f"trust must be 'trusted' or 'untrusted', got {item.trust!r}")
        if item.trust == "trusted" and source_kind(item.source) not in TRUSTED_SOURCES:
            raise UntrustedSource(
                f"content from {item.source!r} is untrusted and cannot be stored as trusted; "
                "store it untrusted and promote it with a validator (a rule, a model judge "
                "or a person): MemoryStore.promote(...)")
        try:
            json.dumps(dict(item.metadata))
        except (TypeError, ValueError) as e:
            raise UserError(f"metadata of a memory in {namespace!r} is not JSON: {e}") from None
        return Memory(id=new_memory_id(), namespace=namespace, text=item.text,
                      source=item.source, trust=item.trust, subject=item.subject,
                      validated_by=("source:" + source_kind(item.source))
                      if item.trust == "trusted" else None,
                      created=now, expires=item.expires, metadata=dict(item.metadata),
                      model=self.embedder.name)

    async def promote(self, namespace: str, id: str, validator: Validator) -> Verdict:
        """Ask `validator` whether an untrusted memory may become trusted, and promote it
        if it says yes (recording `validated_by`). The only way untrusted content becomes
        trusted.

        Raises:
            UserError: no such memory in `namespace`.
        """
        memory = await self.get(namespace, id)
        if memory is None:
            raise UserError(f"no memory {id!r} in namespace {namespace!r}")
        verdict = await validator.validate(memory)
        if verdict.accepted and memory.trust != "trusted":
            await self._set_trust(memory.namespace, id, "trusted", verdict.by)
        return verdict

    # -- reading ------------------------------------------------------------------------

    async def get(self, namespace: str, id: str) -> Memory | None:
        """The memory `id` if it is in `namespace` and not expired."""
        found = await self._get(_namespace(namespace), [id])
        now = time.time()
        return next((m for m in found if m.expires is None or m.expires > now), None)

    async def search(self, namespace: str, query: str, *, top_k: int = 5,
                     trusted_only: bool = False, subject: str | None = None,
                     source: str | None = None, metadata: Mapping[str, Any] | None = None,
                     min_score: float | None = None) -> list[Memory]:
        """The memories of `namespace` closest in meaning to `query`, best first, each with
        its `score` (cosine similarity), after the exact filters."""
        vector = await self.embedder.embed_one(query)
        return await self.search_vector(namespace, vector, top_k=top_k,
                                        trusted_only=trusted_only, subject=subject,
                                        source=source, metadata=metadata, min_score=min_score)

    async def search_vector(self, namespace: str, vector: Vectors, *, top_k: int = 5,
                            trusted_only: bool = False, subject: str | None = None,
                            source: str | None = None,
                            metadata: Mapping[str, Any] | None = None,
                            min_score: float | None = None) -> list[Memory]:
        """Like `search`, with the query's unit vector already made by this store's model."""
        namespace = _namespace(namespace)
        if top_k < 1:
            raise UserError(f"top_k must be at least 1, got {top_k!r}")
        where = Filter(subject=subject, source=source, trusted_only=trusted_only,
                       metadata=dict(metadata or {}), now=time.time())
        found = await self._knn(namespace, vector, top_k, where)
        return [m for m in found if min_score is None or (m.score or 0.0) >= min_score]

    async def recent(self, namespace: str, *, subject: str | None = None,
                   source: str | None = None, trusted_only: bool = False,
                   metadata: Mapping[str, Any] | None = None,
                   limit: int = 100) -> list[Memory]:
        """The memories of `namespace` passing the exact filters, newest first."""
        where = Filter(subject=subject, source=source, trusted_only=trusted_only,
                       metadata=dict(metadata or {}), now=time.time())
        return await self._list(_namespace(namespace), where, limit)

    # -- forgetting -----------------------------------------------------------------------

    async def forget(self, namespace: str, id: str) -> bool:
        """Delete memory `id` from `namespace`; whether it was there."""
        return await self._delete(_namespace(namespace), id) > 0

    async def forget_subject(self, subject: str) -> int:
        """Delete every memory about `subject`, in every namespace, so that its bytes are
        gone from the database too; how many. Part of erasure (`podium.memory.erase`)."""
        if not subject:
            raise UserError("forget_subject needs a subject")
        return await self._delete_subject(subject)

    async def purge_expired(self) -> int:
        """Delete memories that have expired; how many."""
        return await self._purge(time.time())

    # -- backends -------------------------------------------------------------------------

    @abstractmethod
    async def _insert(self, memories: Sequence[Memory], vectors: Vectors) -> None: ...

    @abstractmethod
    async def _get(self, namespace: str, ids: Sequence[str]) -> list[Memory]:
        """The memories with these ids that are in `namespace` (expired ones included)."""

    @abstractmethod
    async def _knn(self, namespace: str, vector: Vectors, k: int, where: Filter
                   ) -> list[Memory]:
        """The `k` memories of `namespace` made by this store's embedding model, passing
        `where`, with the highest cosine similarity to `vector`, best first, scored."""

    @abstractmethod
    async def _list(self, namespace: str, where: Filter, limit: int) -> list[Memory]: ...

    @abstractmethod
    async def _set_trust(self, namespace: str, id: str, trust: Trust,
                         validated_by: str | None) -> None: ...

    @abstractmethod
    async def _delete(self, namespace: str, id: str) -> int: ...

    @abstractmethod
    async def _delete_subject(self, subject: str) -> int: ...

    @abstractmethod
    async def _purge(self, now: float) -> int: ...

    @abstractmethod
    async def count(self, namespace: str | None = None) -> int:
        """How many memories (in `namespace`, or in all), expired ones included."""

    @abstractmethod
    async def close(self) -> None:
        """Release the database."""

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _namespace(namespace: str) -> str:
    try:
        return check_namespace(namespace)
    except ValueError as e:
        raise UserError(str(e)) from None


def scored(memory: Memory, score: float) -> Memory:
    """`memory` with its search score."""
    return replace(memory, score=round(float(score), 6))
