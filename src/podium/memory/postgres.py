"""Long-term memory in PostgreSQL with the pgvector extension (extra: `podium[postgres]`).

One table, `podium_memories`; vectors in a pgvector `vector` column, compared by cosine
distance (`<=>`). Searches are exact within the namespace (a b-tree on the namespace, then
the distance to each of its rows): an approximate HNSW index over all namespaces would
filter by namespace after choosing neighbours and could return fewer than asked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from podium.core.memory import Memory, Trust
from podium.errors import UserError
from podium.memory.store import Filter, MemoryStore, scored

if TYPE_CHECKING:
    from podium.memory.embeddings import Embedder, Vectors

_SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    """CREATE TABLE IF NOT EXISTS podium_memories (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        text TEXT NOT NULL,
        source TEXT NOT NULL,
        trust TEXT NOT NULL,
        subject TEXT,
        validated_by TEXT,
        created DOUBLE PRECISION NOT NULL,
        expires DOUBLE PRECISION,
        metadata JSONB NOT NULL,
        model TEXT NOT NULL,
        embedding vector NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS podium_memories_namespace "
    "ON podium_memories (namespace, model, created)",
    "CREATE INDEX IF NOT EXISTS podium_memories_subject ON podium_memories (subject)",
]
_COLUMNS = ("id, namespace, text, source, trust, subject, validated_by, created, expires, "
            "metadata, model")


def _literal(vector: Vectors) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


class PostgresMemoryStore(MemoryStore):
    """Memories in PostgreSQL with pgvector.

    Args:
        url: a libpq URL, `postgresql://user:password@host:port/db` (a SQLAlchemy-style
            `postgresql+psycopg://` works too).
        embedder: the embedding model; the local MiniLM by default.
    """

    def __init__(self, url: str, embedder: Embedder | None = None) -> None:
        super().__init__(embedder)
        self._url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> Any:
        if self._conn is None:
            try:
                import psycopg
            except ImportError as e:
                raise UserError("PostgreSQL memory needs psycopg: "
                                "pip install 'podium[postgres]'") from e
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            except psycopg.OperationalError as e:
                raise UserError(f"cannot connect to the PostgreSQL memory store: "
                                f"{str(e).splitlines()[0]}") from None
            try:
                for statement in _SCHEMA:
                    await conn.execute(statement)
            except psycopg.errors.FeatureNotSupported as e:
                await conn.close()
                raise UserError("the PostgreSQL server lacks the pgvector extension: install "
                                "it (Debian: postgresql-NN-pgvector)") from e
            except psycopg.errors.UndefinedFile as e:
                await conn.close()
                raise UserError("the PostgreSQL server lacks the pgvector extension: install "
                                "it (Debian: postgresql-NN-pgvector)") from e
            self._conn = conn
        return self._conn

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._lock:
            conn = await self._connection()
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall()) if cursor.description else []

    async def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            conn = await self._connection()
            cursor = await conn.execute(sql, params)
            return int(cursor.rowcount)

    async def _insert(self, memories: Sequence[Memory], vectors: Vectors) -> None:
        rows = [(m.id, m.namespace, m.text, m.source, m.trust, m.subject, m.validated_by,
                 m.created, m.expires, json.dumps(dict(m.metadata), ensure_ascii=False),
                 m.model, _literal(v)) for m, v in zip(memories, vectors, strict=True)]
        async with self._lock:
            conn = await self._connection()
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(
                    f"INSERT INTO podium_memories ({_COLUMNS}, embedding) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::vector)", rows)

    async def _get(self, namespace: str, ids: Sequence[str]) -> list[Memory]:
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM podium_memories "
                                 "WHERE namespace = %s AND id = ANY(%s)", (namespace, list(ids)))
        return [_memory(row) for row in rows]

    def _where(self, namespace: str, where: Filter) -> tuple[str, list[Any]]:
        sql = "namespace = %s AND (expires IS NULL OR expires > %s)"
        params: list[Any] = [namespace, where.now]
        for column, value in (("subject", where.subject), ("source", where.source)):
            if value is not None:
                sql += f" AND {column} = %s"
                params.append(value)
        if where.trusted_only:
            sql += " AND trust = 'trusted'"
        if where.metadata:
            sql += " AND metadata @> %s::jsonb"
            params.append(json.dumps(dict(where.metadata)))
        return sql, params

    async def _knn(self, namespace: str, vector: Vectors, k: int, where: Filter
                   ) -> list[Memory]:
        condition, params = self._where(namespace, where)
        query = _literal(vector)
        rows = await self._fetch(
            f"SELECT {_COLUMNS}, 1 - (embedding <=> %s::vector) FROM podium_memories "
            f"WHERE {condition} AND model = %s ORDER BY embedding <=> %s::vector LIMIT %s",
            (query, *params, self.embedder.name, query, k))
        return [scored(_memory(row), row[11]) for row in rows]

    async def _list(self, namespace: str, where: Filter, limit: int) -> list[Memory]:
        condition, params = self._where(namespace, where)
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM podium_memories WHERE {condition} "
                                 "ORDER BY created DESC, id DESC LIMIT %s", (*params, limit))
        return [_memory(row) for row in rows]

    async def _set_trust(self, namespace: str, id: str, trust: Trust,
                         validated_by: str | None) -> None:
        await self._exec("UPDATE podium_memories SET trust = %s, validated_by = %s "
                         "WHERE namespace = %s AND id = %s", (trust, validated_by, namespace, id))

    async def _delete(self, namespace: str, id: str) -> int:
        return await self._exec("DELETE FROM podium_memories WHERE namespace = %s AND id = %s",
                                (namespace, id))

    async def _delete_subject(self, subject: str) -> int:
        return await self._exec("DELETE FROM podium_memories WHERE subject = %s", (subject,))

    async def _purge(self, now: float) -> int:
        return await self._exec("DELETE FROM podium_memories WHERE expires IS NOT NULL "
                                "AND expires <= %s", (now,))

    async def count(self, namespace: str | None = None) -> int:
        if namespace is None:
            rows = await self._fetch("SELECT count(*) FROM podium_memories")
        else:
            rows = await self._fetch("SELECT count(*) FROM podium_memories WHERE namespace = %s",
                                     (namespace,))
        return int(rows[0][0])

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def _memory(row: Sequence[Any]) -> Memory:
    metadata = row[9] if isinstance(row[9], dict) else json.loads(row[9])
    return Memory(id=row[0], namespace=row[1], text=row[2], source=row[3], trust=row[4],
                  subject=row[5], validated_by=row[6], created=row[7], expires=row[8],
                  metadata=metadata, model=row[10])
