"""Long-term memory in a SQLite file (`$PODIUM_HOME/memory.db` by default).

Vectors are float32 blobs beside their text. Search is exact: the namespace's vectors are
read once into a numpy matrix (kept until the database changes) and scored with one
matrix product. At the sizes one SQLite file serves (up to ~10^5 memories per namespace)
that is faster than the `sqlite-vec` extension's scan and needs no extension loading, which
Python's own `sqlite3` often cannot do (see `benchmarks/memory.py` for both).

Deletes overwrite the freed bytes (`secure_delete`), and erasure checkpoints the WAL, so a
forgotten memory's text is not left in the file.

With a master key configured (as for the journal: `PODIUM_MASTER_KEY`,
`PODIUM_MASTER_KEY_FILE` or `$PODIUM_HOME/master.key`), each memory's text, metadata and
vector are sealed with AES-256-GCM under its subject's (else its namespace's) data key,
kept wrapped in the same file (`podium.memory._sealing`). Ids, namespaces, sources, trust,
subjects and times stay in clear, for filtering.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from podium.core.memory import Memory, Trust
from podium.memory import _sealing
from podium.memory._sealing import MemoryKeys, owner_of
from podium.memory.store import Filter, MemoryStore, scored
from podium.security.crypto import DataKey, KeyConfigError, Keyring, MasterKey, load_keyring
from podium.sqlite_files import connect, retrying, write

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from podium.memory.embeddings import Embedder, Vectors

T = TypeVar("T")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    trust TEXT NOT NULL,
    subject TEXT,
    validated_by TEXT,
    created REAL NOT NULL,
    expires REAL,
    metadata TEXT NOT NULL,
    model TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS memories_namespace ON memories (namespace, model, created);
CREATE INDEX IF NOT EXISTS memories_subject ON memories (subject);
"""
_COLUMNS = ("id, namespace, text, source, trust, subject, validated_by, created, expires, "
            "metadata, model")


@dataclass
class _Matrix:
    """One namespace's vectors and the columns filters need, in row order."""

    ids: list[str]
    vectors: npt.NDArray[np.float32]
    trusted: npt.NDArray[np.bool_]
    expires: npt.NDArray[np.float64]
    subjects: list[str | None]
    sources: list[str]


class SQLiteMemoryStore(MemoryStore):
    """Memories in a SQLite file (WAL mode), searched exactly with numpy.

    Args:
        path: the database file (created with its folder).
        embedder: the embedding model; the local MiniLM by default.
        keys: the master keys; `"env"` (default) loads them from the environment
            (`load_keyring`); None stores memories unencrypted.
    """

    def __init__(self, path: str | Path, embedder: Embedder | None = None, *,
                 busy_timeout: float = 5.0, lock_patience: float = 120.0,
                 keys: Keyring | Literal["env"] | None = "env") -> None:
        super().__init__(embedder)
        self.path = Path(path)
        self._patience = lock_patience
        self._db = connect(self.path, timeout=busy_timeout)
        retrying(lambda: self._db.execute("PRAGMA journal_mode=WAL"), self.path,
                 self._patience)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._matrices: dict[str, _Matrix] = {}
        self._seen: tuple[int, int] = (-1, -1)
        self._writes = 0
        self._lock = asyncio.Lock()
        self._keys = MemoryKeys(load_keyring() if keys == "env" else keys, str(self.path))
        self._write(lambda db: [db.execute(s) for s in (_SCHEMA + ";" + _sealing.SCHEMA)
                                .split(";") if s.strip()])

    @property
    def encrypted(self) -> bool:
        """Whether memories written by this store are encrypted (a master key is held)."""
        return self._keys.encrypted

    def _write(self, fn: Any) -> Any:
        self._writes += 1
        return write(self._db, fn, self.path, self._patience)

    def _fresh(self) -> None:
        """Drop cached matrices if anyone (this process or another) wrote since."""
        version = (self._writes, self._db.execute("PRAGMA data_version").fetchone()[0])
        if version != self._seen:
            self._matrices.clear()
            self._seen = version

    async def _insert(self, memories: Sequence[Memory], vectors: Vectors) -> None:
        import numpy as np

        plain = [(m, m.text.encode(), json.dumps(dict(m.metadata), ensure_ascii=False).encode(),
                  np.ascontiguousarray(v, dtype=np.float32).tobytes())
                 for m, v in zip(memories, vectors, strict=True)]

        def insert(db: sqlite3.Connection) -> None:
            keys = self._keys
            if not keys.encrypted:
                keys.refuse_clear(db)
            rows: list[tuple[Any, ...]] = []
            held: dict[str, DataKey] = {}
            for m, text, metadata, vector in plain:
                fields: tuple[Any, Any, Any] = (text.decode(), metadata.decode(), vector)
                if keys.encrypted:
                    owner = owner_of(m.namespace, m.subject)
                    key = held.get(owner) or held.setdefault(owner, keys.key(db, owner))
                    fields = (keys.seal(key, m.id, "text", text),
                              keys.seal(key, m.id, "metadata", metadata),
                              keys.seal(key, m.id, "vector", vector))
                rows.append((m.id, m.namespace, fields[0], m.source, m.trust, m.subject,
                             m.validated_by, m.created, m.expires, fields[1], m.model,
                             fields[2]))
            db.executemany(f"INSERT INTO memories ({_COLUMNS}, vector) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

        self._write(insert)

    async def _get(self, namespace: str, ids: Sequence[str]) -> list[Memory]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        # `+namespace`: look the ids up by primary key, not by scanning the namespace's index.
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM memories WHERE id IN ({marks}) "
                                "AND +namespace = ?", (*ids, namespace)).fetchall()
        return self._memories(rows)

    def _memories(self, rows: Sequence[Sequence[Any]]) -> list[Memory]:
        """Rows as memories, sealed fields opened; rows whose key was destroyed left out."""
        found = []
        for row in rows:
            text = self._keys.open(self._db, row[0], "text", row[2])
            metadata = self._keys.open(self._db, row[0], "metadata", row[9])
            if text is None or metadata is None:
                continue
            found.append(_memory((*row[:2], text.decode(), *row[3:9], metadata.decode(),
                                  row[10])))
        return found

    def _vectors(self, rows: Sequence[Sequence[Any]]) -> tuple[list[Sequence[Any]], bytes]:
        """The rows whose vectors can be read, and those vectors joined."""
        kept, blobs = [], []
        for row in rows:
            vector = row[5] if not row[6] else self._keys.open(self._db, row[0], "vector",
                                                                 row[5])
            if vector is not None:
                kept.append(row)
                blobs.append(vector)
        return kept, b"".join(blobs)

    def _matrix(self, namespace: str) -> _Matrix:
        import numpy as np

        self._fresh()
        found = self._matrices.get(namespace)
        if found is None:
            rows = self._db.execute(
                "SELECT id, trust, expires, subject, source, vector, typeof(text) = 'blob' "
                "FROM memories WHERE namespace = ? AND model = ?",
                (namespace, self.embedder.name)).fetchall()
            dim = self.embedder.dim
            rows, joined = self._vectors(rows)
            vectors = (np.frombuffer(joined, dtype=np.float32)
                       .reshape(len(rows), -1) if rows else np.zeros((0, dim), np.float32))
            found = _Matrix(ids=[r[0] for r in rows], vectors=vectors,
                            trusted=np.array([r[1] == "trusted" for r in rows], dtype=bool),
                            expires=np.array([np.inf if r[2] is None else r[2] for r in rows],
                                             dtype=np.float64),
                            subjects=[r[3] for r in rows], sources=[r[4] for r in rows])
            self._matrices[namespace] = found
        return found

    async def _knn(self, namespace: str, vector: Vectors, k: int, where: Filter
                   ) -> list[Memory]:
        import numpy as np

        async with self._lock:
            matrix = self._matrix(namespace)
        if not matrix.ids:
            return []
        # einsum, not `@`: BLAS spreads a matrix-vector product over threads, which costs
        # far more than it saves on a busy machine with few cores (20x at 5,000 rows).
        scores = np.einsum("ij,j->i", matrix.vectors, np.asarray(vector, dtype=np.float32))
        keep = matrix.expires > where.now
        if where.trusted_only:
            keep &= matrix.trusted
        if where.subject is not None:
            keep &= np.array([s == where.subject for s in matrix.subjects], dtype=bool)
        if where.source is not None:
            keep &= np.array([s == where.source for s in matrix.sources], dtype=bool)
        scores = np.where(keep, scores, -np.inf)
        # Metadata filters are checked on the rows themselves; ask for more until enough pass.
        want = k if not where.metadata else min(len(scores), k * 4)
        while True:
            take = min(want, int(keep.sum()))
            if take == 0:
                return []
            top = np.argpartition(-scores, take - 1)[:take]
            top = top[np.argsort(-scores[top], kind="stable")]
            rows = {m.id: m for m in await self._get(namespace, [matrix.ids[i] for i in top])}
            found = [scored(rows[matrix.ids[i]], scores[i]) for i in top
                     if matrix.ids[i] in rows and where.keeps(rows[matrix.ids[i]])]
            if len(found) >= k or take == int(keep.sum()):
                return found[:k]
            want *= 4

    async def _list(self, namespace: str, where: Filter, limit: int) -> list[Memory]:
        sql = f"SELECT {_COLUMNS} FROM memories WHERE namespace = ? AND " \
              "(expires IS NULL OR expires > ?)"
        params: list[Any] = [namespace, where.now]
        for column, value in (("subject", where.subject), ("source", where.source)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        if where.trusted_only:
            sql += " AND trust = 'trusted'"
        if self.encrypted and where.metadata:
            # Sealed metadata cannot be filtered in SQL: filter the opened rows instead.
            sql += " ORDER BY created DESC, id DESC"
            rows = self._db.execute(sql, params).fetchall()
            return [m for m in self._memories(rows) if where.keeps(m)][:limit]
        for key, value in where.metadata.items():
            sql += (" AND typeof(metadata) = 'text' AND"
                    " json_extract(metadata, ?) IS json_extract(?, '$')")
            params += [f"$.{json.dumps(key)}", json.dumps(value)]
        sql += " ORDER BY created DESC, id DESC LIMIT ?"
        return self._memories(self._db.execute(sql, (*params, limit)).fetchall())

    async def _set_trust(self, namespace: str, id: str, trust: Trust,
                         validated_by: str | None) -> None:
        self._write(lambda db: db.execute(
            "UPDATE memories SET trust = ?, validated_by = ? WHERE namespace = ? AND id = ?",
            (trust, validated_by, namespace, id)))

    async def _delete(self, namespace: str, id: str) -> int:
        count: int = self._write(lambda db: db.execute(
            "DELETE FROM memories WHERE namespace = ? AND id = ?", (namespace, id)).rowcount)
        return count

    async def _delete_subject(self, subject: str) -> int:
        def erase(db: sqlite3.Connection) -> int:
            count: int = db.execute("DELETE FROM memories WHERE subject = ?",
                                    (subject,)).rowcount
            # Crypto-shredding too: whatever copy of the rows survives (a restored page, a
            # row copied back) no longer decrypts with this file's keys.
            self._keys.shred_subject(db, subject)
            return count

        count: int = self._write(erase)
        self.checkpoint()
        return count

    async def rotate_master_key(self, new: MasterKey, *, batch: int = 100) -> int:
        """Re-wrap every memory data key under `new` (held in this store's keyring), a
        batch per transaction; how many. No memory is re-encrypted.

        Raises:
            KeyConfigError: this store holds no master key, or not `new`, or not the
                current one it rotates away from.
        """
        keyring = self._keys.keys.keyring
        if keyring is None or keyring.get(new.key_id) is None:
            raise KeyConfigError(f"rotating {self.path} to master key {new.key_id} needs "
                                 "that key in the store's keyring")
        self._write(lambda db: self._keys.start_rotation(db, new))
        total = 0
        while n := int(self._write(lambda db: self._keys.rewrap(db, new, batch))):
            total += n
        self.checkpoint()
        return total

    async def _purge(self, now: float) -> int:
        count: int = self._write(lambda db: db.execute(
            "DELETE FROM memories WHERE expires IS NOT NULL AND expires <= ?", (now,)).rowcount)
        return count

    def checkpoint(self) -> None:
        """Copy the WAL into the file and truncate it, so that overwritten bytes do not
        linger in the WAL (a reader holding an old snapshot can delay this)."""
        retrying(lambda: self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)"), self.path,
                 self._patience)

    async def count(self, namespace: str | None = None) -> int:
        if namespace is None:
            row = self._db.execute("SELECT count(*) FROM memories").fetchone()
        else:
            row = self._db.execute("SELECT count(*) FROM memories WHERE namespace = ?",
                                   (namespace,)).fetchone()
        return int(row[0])

    async def close(self) -> None:
        self._matrices.clear()
        self._db.close()


def _memory(row: Sequence[Any]) -> Memory:
    return Memory(id=row[0], namespace=row[1], text=row[2], source=row[3], trust=row[4],
                  subject=row[5], validated_by=row[6], created=row[7], expires=row[8],
                  metadata=json.loads(row[9]), model=row[10])
