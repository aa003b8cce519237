"""The SQLite journal's data keys: made, wrapped, cached, shredded and re-wrapped.

Table `data_keys` holds one row per data key: its owner (`run:<id>`, `subject:<id>`,
`cache` for the reply cache, `store` for values sealed with no run or subject), the key
wrapped by a master key (NULL once shredded), and the id of that master key. The `meta` row
`master_key` names the journal's current master key: new data keys are wrapped with it
only, so once `podium keys rotate` switched it, a process still holding just the old key
can finish what it runs (its data keys are unwrapped in memory) but cannot add data the old
key would read.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from podium.core.events import ERASED
from podium.security.crypto import (
    DataKey,
    DecryptError,
    KeyConfigError,
    Keyring,
    MasterKey,
    context,
    new_data_key,
    seal,
    sealed_key_id,
    unseal,
    unwrap,
    wrap,
)
from podium.store._sums import check_event, clear_payload, event_sum
from podium.store.base import KeyStatus

DATA_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS data_keys (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    wrapped BLOB,
    master_id TEXT,
    created REAL NOT NULL,
    shredded REAL
);
CREATE INDEX IF NOT EXISTS data_keys_owner ON data_keys (owner);
"""
"""The wrapped data keys, in any SQLite file that seals data (the journal, memory.db)."""
SCHEMA = DATA_KEYS_SCHEMA + """
CREATE TABLE IF NOT EXISTS vaults (
    run_id TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    updated REAL NOT NULL
)
"""
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_HINT = ("set PODIUM_MASTER_KEY or PODIUM_MASTER_KEY_FILE (several keys may be given while "
         "a rotation is under way)")


def run_owner(run_id: str) -> str:
    return f"run:{run_id}"


def subject_owner(subject: str) -> str:
    return f"subject:{subject}"


class KeyCache:
    """What every journal's data keys share, whatever holds them: the keys unwrapped in
    memory for one store object, and unwrapping with errors that say what to configure."""

    def __init__(self, keyring: Keyring | None, location: str = "the journal") -> None:
        self.keyring = keyring
        self.location = location
        """Where the journal is, for messages."""
        self._by_owner: dict[str, DataKey] = {}
        self._by_id: dict[int, tuple[str, DataKey | None]] = {}
        self._clear_runs: set[str] = set()

    def cached(self, owner: str) -> DataKey | None:
        """`owner`'s key as last seen, to use without looking (never a subject's: another
        process may shred it at any time)."""
        if owner.startswith("subject:"):
            return None
        return self._by_owner.get(owner)

    def keep(self, owner: str, key: DataKey) -> DataKey:
        self._by_owner[owner] = key
        self._by_id[key.key_id] = (owner, key)
        return key

    def forget(self, owner: str) -> None:
        """`owner`'s keys were shredded."""
        self._by_owner.pop(owner, None)
        for key_id, (held_by, _) in list(self._by_id.items()):
            if held_by == owner:
                self._by_id[key_id] = (owner, None)

    def _unwrap(self, owner: str, wrapped: bytes, master_id: str, what: str) -> bytes:
        if self.keyring is None:
            raise KeyConfigError(f"{what} is encrypted (master key {master_id}) and this "
                                 f"process has no master key; {_HINT}")
        master = self.keyring.get(master_id)
        if master is None:
            raise KeyConfigError(
                f"{what} is encrypted under master key {master_id}, and this process holds "
                f"{', '.join(self.keyring.ids())}; if the key was rotated, configure the new "
                f"one ({_HINT})")
        return unwrap(master, wrapped, owner)

    def current_of(self, key_id: str) -> MasterKey:
        """The held master key named by the journal as its current one."""
        assert self.keyring is not None
        master = self.keyring.get(key_id)
        if master is None:
            raise KeyConfigError(
                f"this journal's current master key is {key_id} (it was rotated to it), and "
                f"this process holds {', '.join(self.keyring.ids())}; configure the current "
                f"key ({_HINT}), or switch the journal with `podium keys rotate`")
        return master

    def check_rotation(self, current: str | None) -> None:
        """Refuse to rotate away from a current master key this process does not hold."""
        assert self.keyring is not None
        if current is not None and self.keyring.get(current) is None:
            raise KeyConfigError(f"this journal's current master key is {current}; configure "
                                 f"it to rotate away from it ({_HINT})")

    def downgrade_refused(self, master_id: str) -> KeyConfigError:
        """The error for a process with no master key about to write clear data into a
        journal that holds encrypted data."""
        return KeyConfigError(
            f"{self.location} holds encrypted data (master key {master_id}) and this process "
            f"has no master key: refusing to store anything in clear text there. Restore the "
            f"key ($PODIUM_HOME/master.key, or {_HINT}); to keep data unencrypted, use "
            "another journal (--db)")

    @staticmethod
    def clear_refused(run_id: str, master_id: str) -> KeyConfigError:
        return KeyConfigError(f"run {run_id!r} is encrypted (master key {master_id}) and this "
                              f"process has no master key, so it cannot write to it; {_HINT}")

    def report(self, current: str | None, by_master: dict[str, int], shredded: int,
               clear: int) -> KeyStatus:
        return KeyStatus(encrypted=self.keyring is not None,
                         process_keys=tuple(self.keyring.ids()) if self.keyring else (),
                         current=current, data_keys=by_master, shredded=shredded,
                         clear_runs=clear)


class DataKeys(KeyCache):
    """Data keys of one SQLite journal, for one store object (which caches them unwrapped)."""

    # -- finding and making keys ------------------------------------------------------------

    def for_owner(self, db: sqlite3.Connection, owner: str, *, create: bool) -> DataKey | None:
        """The live data key of `owner`, made (in the caller's transaction) when `create`
        and a master key is held; None when there is none."""
        if (known := self.cached(owner)) is not None:
            return known
        cached = self._by_owner.get(owner)
        row = db.execute("SELECT id, wrapped, master_id FROM data_keys WHERE owner = ? AND"
                         " wrapped IS NOT NULL ORDER BY id DESC LIMIT 1", (owner,)).fetchone()
        if row is not None:
            if cached is not None and cached.key_id == row[0]:
                return cached
            key = DataKey.of(row[0], self._unwrap(owner, row[1], row[2], f"the data of {owner}"))
        elif not create or self.keyring is None:
            return None
        else:
            master = self.current_master(db)
            secret = new_data_key()
            key_id = db.execute(
                "INSERT INTO data_keys (owner, wrapped, master_id, created) VALUES (?,?,?,?)"
                " RETURNING id", (owner, wrap(master, secret, owner), master.key_id,
                                  time.time())).fetchone()[0]
            key = DataKey.of(key_id, secret)
        return self.keep(owner, key)

    def by_id(self, db: sqlite3.Connection, key_id: int, what: str
              ) -> tuple[str, DataKey | None]:
        """The owner of data key `key_id` and the key, None if it was shredded."""
        found = self._by_id.get(key_id)
        if found is not None:
            return found
        row = db.execute("SELECT owner, wrapped, master_id FROM data_keys WHERE id = ?",
                         (key_id,)).fetchone()
        if row is None:
            raise DecryptError(f"{what}: its data key #{key_id} is not in the journal")
        owner, wrapped, master_id = row
        key = None if wrapped is None else DataKey.of(key_id, self._unwrap(owner, wrapped,
                                                                           master_id, what))
        self._by_id[key_id] = (owner, key)
        return owner, key

    def current_master(self, db: sqlite3.Connection) -> MasterKey:
        """The master key new data keys are wrapped with (the journal's current one)."""
        assert self.keyring is not None
        row = db.execute("SELECT value FROM meta WHERE key = 'master_key'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('master_key', ?)", (self.keyring.primary.key_id,))
            return self.keyring.primary
        return self.current_of(row[0])

    # -- journal payloads -------------------------------------------------------------------

    def encode_event(self, db: sqlite3.Connection, run_id: str, seq: int, type_: str,
                     task: str | None, data: dict[str, Any], subject: str | None, ts: float
                     ) -> tuple[str | bytes, bytes]:
        """What the events table keeps of an event: its payload (JSON text in clear, or the
        JSON sealed under the run's, or the subject's, data key, bound to its row) and the
        row's checksum (`podium.store._sums`)."""
        text = _dumps(data)
        if self.keyring is None:
            self.refuse_clear(db, run_id)
            return text, event_sum(run_id, seq, type_, task, text, ts)
        owner = subject_owner(subject) if subject is not None else run_owner(run_id)
        key = self.for_owner(db, owner, create=True)
        assert key is not None
        sealed = seal(key, text.encode(), context("event", run_id, seq, "data"))
        return sealed, event_sum(run_id, seq, type_, task, sealed, ts, key.mac_key)

    def refuse_clear(self, db: sqlite3.Connection, run_id: str) -> None:
        """Never add clear data to a journal that holds encrypted data (its meta row
        `master_key` is written with the first data key), nor to an encrypted run."""
        if run_id in self._clear_runs:
            return
        row = db.execute("SELECT master_id FROM data_keys WHERE owner = ?",
                         (run_owner(run_id),)).fetchone()
        if row is not None:
            raise self.clear_refused(run_id, row[0])
        self.refuse_downgrade(db)
        self._clear_runs.add(run_id)

    def refuse_downgrade(self, db: sqlite3.Connection) -> None:
        """Refuse clear data in a journal that holds encrypted data."""
        row = db.execute("SELECT value FROM meta WHERE key = 'master_key'").fetchone()
        if row is not None:
            raise self.downgrade_refused(row[0])

    def decode_event(self, db: sqlite3.Connection, run_id: str, seq: int, type_: str,
                     task: str | None, raw: str | bytes, ts: float, stored: bytes | None,
                     *, sealed_run: bool, required: bool) -> dict[str, Any]:
        """An event's payload as `encode_event` wrote it, once its checksum holds.

        Args:
            sealed_run: the run holds a data key, so every row of it must be sealed.
            required: every row must have a checksum (the journal was fully migrated).

        Raises:
            JournalDamaged: the row's checksum fails, or a clear row in a sealed run.
        """
        where = f"event {seq} of run {run_id!r}"
        if isinstance(raw, str):
            return clear_payload(self.location, run_id, seq, type_, task, raw, ts, stored,
                                 sealed_run=sealed_run, required=required)
        owner, key = self.by_id(db, sealed_key_id(raw, what=where), where)
        if key is None:
            return {ERASED: owner.partition(":")[0]}
        check_event(self.location, run_id, seq, type_, task, raw, ts, stored, key.mac_key,
                    required=required)
        value: dict[str, Any] = json.loads(
            unseal(key, raw, context("event", run_id, seq, "data"), what=where))
        return value

    def sum_of(self, db: sqlite3.Connection, run_id: str, seq: int, type_: str,
               task: str | None, raw: str | bytes, ts: float) -> bytes | None:
        """The checksum a row written before checksums existed should have: empty when its
        data key was shredded (it reads as erased, unchecked), None when the master key is
        not at hand (try again when it is)."""
        if isinstance(raw, str):
            return event_sum(run_id, seq, type_, task, raw, ts)
        where = f"event {seq} of run {run_id!r}"
        try:
            _, key = self.by_id(db, sealed_key_id(raw, what=where), where)
        except (KeyConfigError, DecryptError):
            return None
        return b"" if key is None else event_sum(run_id, seq, type_, task, raw, ts,
                                                 key.mac_key)

    def seal_for(self, db: sqlite3.Connection, owner: str, plain: bytes, where: bytes
                 ) -> bytes | None:
        """`plain` sealed under `owner`'s data key (made if needed); None with no master key."""
        if self.keyring is None:
            return None
        key = self.for_owner(db, owner, create=True)
        assert key is not None
        return seal(key, plain, where)

    def open(self, db: sqlite3.Connection, blob: bytes, where: bytes, what: str
             ) -> bytes | None:
        """What `seal_for` sealed; None when its data key was shredded."""
        _, key = self.by_id(db, sealed_key_id(blob, what=what), what)
        return None if key is None else unseal(key, blob, where, what=what)

    # -- shredding and rotation -------------------------------------------------------------

    def shred(self, db: sqlite3.Connection, owner: str) -> int:
        """Destroy `owner`'s data keys; returns how many there were."""
        cur = db.execute("UPDATE data_keys SET wrapped = NULL, shredded = ? WHERE owner = ?"
                         " AND wrapped IS NOT NULL", (time.time(), owner))
        self.forget(owner)
        return cur.rowcount

    def start_rotation(self, db: sqlite3.Connection, new: MasterKey) -> None:
        """Make `new` the journal's current master key (new data keys are wrapped with it)."""
        assert self.keyring is not None
        row = db.execute("SELECT value FROM meta WHERE key = 'master_key'").fetchone()
        self.check_rotation(None if row is None else row[0])
        db.execute("INSERT INTO meta VALUES ('master_key', ?) ON CONFLICT (key) DO UPDATE SET"
                   " value = excluded.value", (new.key_id,))

    def rewrap(self, db: sqlite3.Connection, new: MasterKey, limit: int) -> int:
        """Re-wrap up to `limit` data keys not yet under `new`; returns how many."""
        rows = db.execute("SELECT id, owner, wrapped, master_id FROM data_keys WHERE wrapped"
                          " IS NOT NULL AND master_id != ? LIMIT ?",
                          (new.key_id, limit)).fetchall()
        for key_id, owner, wrapped, master_id in rows:
            secret = self._unwrap(owner, wrapped, master_id, f"the data key of {owner}")
            db.execute("UPDATE data_keys SET wrapped = ?, master_id = ? WHERE id = ?",
                       (wrap(new, secret, owner), new.key_id, key_id))
        return len(rows)

    def status(self, db: sqlite3.Connection) -> KeyStatus:
        current = db.execute("SELECT value FROM meta WHERE key = 'master_key'").fetchone()
        by_master = dict(db.execute(
            "SELECT master_id, count(*) FROM data_keys WHERE wrapped IS NOT NULL"
            " GROUP BY master_id ORDER BY master_id").fetchall())
        shredded = db.execute("SELECT count(*) FROM data_keys WHERE wrapped IS NULL"
                              ).fetchone()[0]
        clear = db.execute("SELECT count(*) FROM runs WHERE NOT EXISTS (SELECT 1 FROM data_keys"
                           " WHERE owner = 'run:' || runs.run_id)").fetchone()[0]
        return self.report(None if current is None else current[0], by_master, shredded,
                           clear)
