"""The audit log: who did what to which subject, tamper-evident and free of personal data.

Records are appended to their own tables (`audit_log`, `audit_heads`, `audit_meta`) in a
SQLite file, by default the journal's (`podium.config.database_path()`), in WAL mode, each
append in one `BEGIN IMMEDIATE` transaction, so threads and processes appending at once
queue on the write lock and keep one unbroken chain.

The chain: record *n* carries `mac = HMAC-SHA256(key, prev_mac + "\\n" + content)`, where
`prev_mac` is record *n-1*'s MAC in hex (64 zeros for the first record) and `content` is the
record's canonical JSON (sorted keys, no spaces, UTF-8) including its `seq`. Editing,
inserting, deleting or reordering records breaks it for anyone without the key.

The key is `$PODIUM_AUDIT_KEY` (hex or base64, at least 16 bytes), or else the file
`$PODIUM_AUDIT_KEY_FILE`, else `$PODIUM_HOME/audit.key`, created with mode 0600 from
`secrets.token_bytes(32)` on first use.

Signed heads: every `sign_every` records (100 by default), on `sign_head()` and when a log
that appended closes, the chain's head `(seq, mac, time)` is signed with Ed25519, kept in
`audit_heads` and appended to the witness file (`_audit_witness.py`,
`$PODIUM_AUDIT_WITNESS` or `$PODIUM_HOME/audit.witness`), which the database's writer
should not be able to rewrite (append-only). A head pins everything up to it even against
someone holding the HMAC key; a witnessed head also survives the database: cutting the
newest records with their heads (`truncated`), emptying the log (`emptied`), rewriting the
chain with the keys (`rewritten`) or replacing the file (`replaced`) is named by `verify()`.
The private key is `$PODIUM_AUDIT_SIGNING_KEY_FILE`, else `$PODIUM_HOME/audit_signing.key`
(PKCS#8 PEM, mode 0600) unless one is given; `public_key_pem()` exports the public half for
auditors, who pass it to `verify()`.

What no check can see: the removal of records appended after the last signed head,
together with nothing else (sign often, or ship `export()` to a SIEM and pass its last head
to `verify(trusted_head=...)`), and anything done by someone who can also rewrite the
witness.

Records name data classes (`EMAIL`, `CARD`), never personal values: `append` refuses text
that holds an e-mail address or a long run of digits (`ValueError`).
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from podium import config
from podium.errors import AuditKeyMismatch as AuditKeyMismatch
from podium.errors import UserError
from podium.security import _audit_keys as keys
from podium.security import _audit_witness as _witness
from podium.security._audit_records import GENESIS as GENESIS
from podium.security._audit_records import AuditRecord as AuditRecord
from podium.security._audit_records import Finding as Finding
from podium.security._audit_records import FindingKind as FindingKind
from podium.security._audit_records import SignedHead as SignedHead
from podium.security._audit_records import VerifyReport as VerifyReport
from podium.security._audit_records import head_of as _head_of
from podium.security._audit_records import mac as _mac
from podium.security._audit_records import row_record as _row_record
from podium.sqlite_files import connect, retrying, write

T = TypeVar("T")
_LOCK_PATIENCE = 120.0
"""Seconds an append waits out another writer before it reports the lock."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    time_us INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    outcome TEXT NOT NULL,
    data_classes TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_mac TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_heads (
    seq INTEGER PRIMARY KEY,
    mac TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
"""
_COLUMNS = "seq, time_us, actor, action, subject, outcome, data_classes, detail, prev_mac, mac"
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_ACTION = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_DATA_CLASS = re.compile(r"[A-Z][A-Z0-9_]*")
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[A-Za-z]{2,}")
# A long run of digits on its own (phone, account, national id), or digits in short groups
# (cards, IBANs, phone numbers, IP addresses). Ids that mix letters and digits pass.
_DIGITS = re.compile(r"(?<![A-Za-z0-9])\d{9,}(?![A-Za-z0-9])"
                     r"|(?<![A-Za-z0-9])\+?\d{1,5}(?:[ .\-]\d{1,5}){2,}(?![A-Za-z0-9])")


def _refuse_personal(name: str, value: str) -> None:
    if _EMAIL.search(value):
        raise ValueError(f"audit {name} {_redact(value)!r} holds an e-mail address; record "
                         "the data class (e.g. 'EMAIL') in data_classes, never the value")
    for match in _DIGITS.finditer(value):
        if sum(c.isdigit() for c in match.group()) >= 9:
            raise ValueError(f"audit {name} {_redact(value)!r} holds a long run of digits "
                             "(a card, phone or account number?); record its data class "
                             "instead")


def _redact(value: str) -> str:
    return re.sub(r"[0-9]", "#", re.sub(r"[^\s@]+@", "***@", value))[:80]


class AuditLog:
    """The tamper-evident audit log in a SQLite file. Thread-safe; one per process is enough.

    Args:
        path: the database file; the journal's by default.
        key: the HMAC key; `$PODIUM_AUDIT_KEY` or `$PODIUM_HOME/audit.key` by default.
        signing_key: the Ed25519 key that signs heads; `$PODIUM_HOME/audit_signing.key`
            (created on first use) by default.
        sign_every: sign the head every this many records; None to sign only on demand.
        sign_on_close: sign the head on `close()` if this log appended since the last head.
        witness: the file every signed head is also appended to (`_audit_witness`):
            `$PODIUM_AUDIT_WITNESS` or `$PODIUM_HOME/audit.witness` by default; None: none.
        synchronous: SQLite's `synchronous` for this connection; `NORMAL` (the journal's)
            keeps every commit through a process crash, `FULL` also through power loss.
        busy_timeout: seconds to wait for another writer's lock.
    """

    def __init__(self, path: str | Path | None = None, *, key: bytes | None = None,
                 signing_key: Ed25519PrivateKey | None = None, sign_every: int | None = 100,
                 sign_on_close: bool = True,
                 witness: str | Path | Literal["default"] | None = "default",
                 synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
                 busy_timeout: float = 30.0) -> None:
        if sign_every is not None and sign_every < 1:
            raise UserError(f"sign_every={sign_every!r}: use a positive number or None")
        self.path = Path(path) if path is not None else config.database_path()
        self._key = key if key is not None else keys.load_audit_key()
        self._signing_key = signing_key
        self._sign_every = sign_every
        self._sign_on_close = sign_on_close
        self._appended = False
        self.witness = (_witness.witness_path() if witness == "default"
                        else None if witness is None else Path(witness))
        """Where signed heads are also appended; None: nowhere."""
        self.log_id = ""
        """This log's id (kept in `audit_meta`), naming it in the witness."""
        self._pending: list[SignedHead] = []
        self._lock = threading.Lock()
        self._db = connect(self.path, timeout=busy_timeout)
        try:
            self._retrying(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._write(self._create_schema)
        except BaseException:
            self._db.close()
            raise

    # -- connection -------------------------------------------------------------------

    def _create_schema(self, db: sqlite3.Connection) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("INSERT OR IGNORE INTO audit_meta VALUES ('log_id', ?)",
                   (secrets.token_hex(8),))
        self.log_id = str(db.execute("SELECT value FROM audit_meta WHERE key='log_id'"
                                     ).fetchone()[0])
        kid = keys.hmac_key_id(self._key)
        row = db.execute("SELECT value FROM audit_meta WHERE key='key_id'").fetchone()
        if row is None:
            db.execute("INSERT INTO audit_meta VALUES ('key_id', ?)", (kid,))
        elif row[0] != kid:
            raise AuditKeyMismatch(
                f"{self.path}: the audit log was written with HMAC key {row[0]!r}, not the "
                f"one at hand ({kid!r}); set ${keys.KEY_ENV} or restore "
                f"$PODIUM_HOME/{keys.KEY_FILE}")

    def _retrying(self, fn: Callable[[], T]) -> T:
        return retrying(fn, self.path, _LOCK_PATIENCE)

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            self._pending.clear()
            result = write(self._db, fn, self.path, _LOCK_PATIENCE)
            heads, self._pending = self._pending, []
            # After the commit: a head witnessed must be one the database holds.
            if self.witness is not None:
                for head in heads:
                    _witness.append(self.witness, self.log_id, self.path, head.fields())
            return result

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        """Sign the head if this log appended since, then close the connection."""
        try:
            if self._sign_on_close and self._appended:
                self.sign_head()
        finally:
            self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- keys -------------------------------------------------------------------------

    def _signer(self) -> Ed25519PrivateKey:
        if self._signing_key is None:
            key = keys.load_signing_key(keys.signing_key_path())
            assert key is not None
            self._signing_key = key
        return self._signing_key

    def public_key(self) -> Ed25519PublicKey:
        """The public key that verifies this log's heads."""
        return self._signer().public_key()

    def public_key_pem(self) -> bytes:
        """The public key as PEM, for auditors to pin and pass to `verify()`."""
        return keys.public_key_pem(self.public_key())

    # -- writing ----------------------------------------------------------------------

    def append(self, *, actor: str, action: str, subject: str, outcome: str = "ok",
               data_classes: Iterable[str] = (), detail: str = "") -> AuditRecord:
        """Append one record, durably, and return it.

        Raises:
            ValueError: a field holds what looks like a personal value (an e-mail address,
                a long run of digits), a data class is not an upper-case name, or the
                action is not a dotted lower-case name.
        """
        if not _ACTION.fullmatch(action):
            raise ValueError(f"audit action {action!r}: use a dotted lower-case name such "
                             "as 'tool.call'")
        classes = tuple(sorted(set(data_classes)))
        for c in classes:
            if not _DATA_CLASS.fullmatch(c):
                raise ValueError(f"audit data class {_redact(c)!r}: data classes are "
                                 "upper-case names such as 'EMAIL', never values")
        for name, value in (("actor", actor), ("subject", subject), ("outcome", outcome),
                            ("detail", detail)):
            _refuse_personal(name, value)

        def append(db: sqlite3.Connection) -> AuditRecord:
            last = db.execute("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1"
                              ).fetchone()
            seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
            record = AuditRecord(seq=seq, time_us=time.time_ns() // 1000, actor=actor,
                                 action=action, subject=subject, outcome=outcome,
                                 data_classes=classes, detail=detail, prev_mac=prev)
            mac = _mac(self._key, prev, record.content())
            db.execute(f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (seq, record.time_us, actor, action, subject, outcome,
                        _dumps(list(classes)), detail, prev, mac))
            if self._sign_every is not None and seq % self._sign_every == 0:
                self._insert_head(db, seq, mac)
            return replace(record, mac=mac)

        record = self._write(append)
        self._appended = True
        return record

    def _insert_head(self, db: sqlite3.Connection, seq: int, mac: str) -> SignedHead:
        signer = self._signer()
        unsigned = SignedHead(seq=seq, mac=mac, time_us=time.time_ns() // 1000,
                              key_id=keys.key_id(signer.public_key()), signature="")
        head = replace(unsigned, signature=signer.sign(unsigned.message()).hex())
        db.execute("INSERT OR REPLACE INTO audit_heads VALUES (?,?,?,?,?)",
                   (head.seq, head.mac, head.time_us, head.key_id, head.signature))
        self._pending.append(head)
        return head

    def sign_head(self) -> SignedHead | None:
        """Sign the chain's current head now; None while the log is empty."""
        self._signer()  # load or create the key outside the write lock

        def sign(db: sqlite3.Connection) -> SignedHead | None:
            last = db.execute("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1"
                              ).fetchone()
            if last is None:
                return None
            signed = db.execute("SELECT seq, mac, time_us, key_id, signature FROM audit_heads"
                                " ORDER BY seq DESC LIMIT 1").fetchone()
            if signed is not None and (signed[0], signed[1]) == (last[0], last[1]):
                return _head_of(signed)
            return self._insert_head(db, int(last[0]), str(last[1]))

        head = self._write(sign)
        self._appended = False
        return head

    # -- reading ----------------------------------------------------------------------

    def records(self, *, after: int = 0, batch: int = 1000) -> Iterator[AuditRecord]:
        """The records with seq above `after`, in seq order."""
        while True:
            rows = self._read(f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq "
                              "LIMIT ?", (after, batch))
            for row in rows:
                yield _row_record(row)
            if len(rows) < batch:
                return
            after = int(rows[-1][0])

    def heads(self) -> list[SignedHead]:
        """Every signed head, oldest first."""
        return [_head_of(r) for r in self._read("SELECT seq, mac, time_us, key_id, signature "
                                                "FROM audit_heads ORDER BY seq")]

    def export(self, out: str | Path | IO[str], *, after: int = 0) -> int:
        """Write the records as JSON lines for a SIEM (one per line, with seq, mac and
        prev_mac); return how many were written."""
        if isinstance(out, str | Path):
            with Path(out).open("w", encoding="utf-8") as f:
                return self.export(f, after=after)
        n = 0
        for record in self.records(after=after):
            out.write(json.dumps(record.to_json(), ensure_ascii=False,
                                 separators=(",", ":")) + "\n")
            n += 1
        return n

    # -- verifying --------------------------------------------------------------------

    def verify(self, *, public_key: Ed25519PublicKey | bytes | str | Path | None = None,
               trusted_head: SignedHead | None = None) -> VerifyReport:
        """Check the chain and the signed heads; report every sign of tampering.

        Args:
            public_key: the key that verifies heads (a key, PEM, a PEM file or 32 raw
                bytes); by default the public half of the signing key, if it exists.
            trusted_head: a head kept outside this database (e.g. the last one shipped to
                a SIEM); the chain must still reach and contain it.
        """
        from podium.security._audit_verify import verify_chain

        warnings: list[str] = []
        public = self._public_for_verify(public_key, warnings)
        records = [_row_record(r) for r in self._read(
            f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")]
        return verify_chain(self._key, records, self.heads(), public,
                            trusted_head=trusted_head, warnings=warnings,
                            witnessed=_witness.gather(self.witness, self.log_id, self.path,
                                                      warnings))


    def _public_for_verify(self, given: Ed25519PublicKey | bytes | str | Path | None,
                           warnings: list[str]) -> Ed25519PublicKey | None:
        if isinstance(given, Ed25519PublicKey):
            return given
        if given is not None:
            return keys.load_public_key(given)
        if self._signing_key is not None:
            return self._signing_key.public_key()
        private = keys.load_signing_key(keys.signing_key_path(), create=False)
        if private is None:
            warnings.append("no public key given and no signing key found: signed heads "
                            "were not checked")
            return None
        return private.public_key()


__all__ = ["GENESIS", "AuditKeyMismatch", "AuditLog", "AuditRecord", "Finding",
           "FindingKind", "SignedHead", "VerifyReport"]
