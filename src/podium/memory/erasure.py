"""Erasure: everything Podium holds about a subject (a patient, a customer), made unreadable.

`erase_subject(subject, memory=..., journal=...)`:

1. deletes every long-term memory whose `subject` is it, in every namespace, and in an
   encrypted SQLite memory store destroys the subject's memory data key too;
2. in an encrypted journal (a master key configured, `docs/encryption.md`), destroys the
   subject's data key (`Store.shred_subject`): the engine seals every event of a run whose
   workflow marks an input `subject: true` under that subject's key, so all those payloads
   (inputs, prompts, outputs, tool results, recalled memory ids) become unreadable for good
   (crypto-shredding) while the runs' shape (event types, tasks, times) remains;
3. in an unencrypted journal, deletes the runs tagged with the subject (`run_started`
   records `subjects`) outright, events and row;
4. overwrites freed bytes (`secure_delete`) and checkpoints the WALs, so deleted text is
   gone from the files too, not just unlinked;
5. records the erasure in the audit log (`memory.erase`), naming the subject only by a
   digest (`subject#...`), since the audit log must hold no personal value.

Other runs are untouched and resume as before. A run being executed right now is not
erased: the call fails (`RunBusy`) and can be repeated once the run has stopped.

Not covered: approvals' payloads (journaled outside the run's drive, under the run's key;
an unencrypted journal deletes them with the run), replies in the opt-in model reply cache
(keyed by request, not by run), and copies outside Podium's databases (exports, backups).
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from podium.errors import RunBusy, UserError
from podium.sqlite_files import retrying, write

if TYPE_CHECKING:
    from podium.memory.store import MemoryStore
    from podium.security.audit import AuditLog

_PATIENCE = 120.0
# Encrypted payloads are blobs, which SQLite's JSON functions refuse; those runs are
# crypto-shredded instead.
_CLEAR_DATA = "CASE WHEN typeof(events.data) = 'text' THEN events.data ELSE '{}' END"


@dataclass(frozen=True, kw_only=True)
class Erasure:
    """What an erasure removed."""

    subject_ref: str
    """The digest the audit log names the subject by."""
    memories: int
    """Long-term memories deleted."""
    runs: tuple[str, ...]
    """Runs deleted from the journal."""
    events: int
    """Journal events deleted with them."""
    keys: int
    """Subject data keys destroyed in an encrypted journal (crypto-shredding)."""
    audit_seq: int | None
    """The audit record of the erasure, if an audit log was given."""


def subject_ref(subject: str) -> str:
    """How the audit log names a subject: a digest, not the id itself."""
    digest = hashlib.blake2b(subject.encode(), digest_size=15,
                             person=b"podium-subject").digest()
    return "subject#" + base64.b32encode(digest).decode().lower()


def tagged_runs(journal: str | Path, subject: str) -> list[str]:
    """The runs of the SQLite journal tagged with `subject`."""
    db = sqlite3.connect(journal)
    try:
        rows = db.execute(
            "SELECT run_id FROM events WHERE seq = 1 AND type = 'run_started' AND EXISTS "
            f"(SELECT 1 FROM json_each({_CLEAR_DATA}, '$.subjects') WHERE value = ?)",
            (subject,)).fetchall()
    finally:
        db.close()
    return sorted(row[0] for row in rows)


def _erase_runs(journal: Path, subject: str) -> tuple[list[str], int]:
    db = sqlite3.connect(journal, timeout=5.0, isolation_level=None)
    try:
        db.execute("PRAGMA secure_delete=ON")

        def erase(db: sqlite3.Connection) -> tuple[list[str], int]:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone() \
                    is None:
                return [], 0  # a database with an audit log and no journal yet
            runs = [r[0] for r in db.execute(
                "SELECT run_id FROM events WHERE seq = 1 AND type = 'run_started' AND EXISTS "
                f"(SELECT 1 FROM json_each({_CLEAR_DATA}, '$.subjects') WHERE value = ?)",
                (subject,))]
            now = time.time()
            for run_id in runs:
                busy = db.execute("SELECT owner_pid, owner_host FROM runs WHERE run_id = ? AND "
                                  "owner IS NOT NULL AND lease_until > ?",
                                  (run_id, now)).fetchone()
                if busy is not None:
                    raise RunBusy(f"run {run_id!r} is being executed by process {busy[0]} on "
                                  f"{busy[1]!r}; erase again once it has stopped")
            events = 0
            for run_id in runs:
                events += db.execute("DELETE FROM events WHERE run_id = ?", (run_id,)).rowcount
                db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            return runs, events

        runs, events = write(db, erase, journal, _PATIENCE)
        retrying(lambda: db.execute("PRAGMA wal_checkpoint(TRUNCATE)"), journal, _PATIENCE)
        return runs, events
    finally:
        db.close()


async def erase_subject(subject: str, *, memory: MemoryStore | None = None,
                        journal: str | Path | None = None, audit: AuditLog | None = None,
                        actor: str = "operator") -> Erasure:
    """Erase everything about `subject`: its memories, its runs' journals, and record it.

    Args:
        subject: the subject's id, as memories and run inputs carry it.
        memory: the long-term memory store to erase from.
        journal: the SQLite journal file to erase runs from.
        audit: the audit log to record the erasure in (the caller keeps it open).
        actor: who asked, for the audit record.

    Raises:
        RunBusy: a run about the subject is being executed; nothing was erased from the
            journal (memories may already be).
        UserError: no subject, or nothing to erase from.
    """
    if not subject or not subject.strip():
        raise UserError("erasure needs a subject id")
    if memory is None and journal is None:
        raise UserError("erasure needs a memory store, a journal, or both")
    journal_path = Path(journal) if journal is not None else None
    if journal_path is not None and not journal_path.exists():
        raise UserError(f"no journal at {str(journal_path)!r}")
    memories = await memory.forget_subject(subject) if memory is not None else 0
    keys = 0
    runs: list[str] = []
    events = 0
    if journal_path is not None:
        keys = await _shred(journal_path, subject)
        runs, events = _erase_runs(journal_path, subject)
    ref = subject_ref(subject)
    seq = None
    if audit is not None:
        record = audit.append(actor=actor, action="memory.erase", subject=ref,
                              detail=f"memories={memories} runs={len(runs)} events={events} "
                                     f"keys={keys}")
        seq = record.seq
    return Erasure(subject_ref=ref, memories=memories, runs=tuple(runs), events=events,
                   keys=keys, audit_seq=seq)


async def _shred(journal: Path, subject: str) -> int:
    """Destroy the subject's data key if the journal is encrypted; how many keys."""
    from podium.store.sqlite import SQLiteStore

    store = SQLiteStore(journal)
    try:
        return await store.shred_subject(subject) if store.encrypted else 0
    finally:
        await store.close()
