"""The audit log's records as values: an entry, a signed head, what verifying found, and
the MAC that chains entries. Shared by the log (`audit.py`) and the verifier
(`_audit_verify.py`), which import it and not each other."""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
"""The `prev_mac` of the first record."""
FindingKind = Literal["edited", "inserted", "reordered", "deleted", "truncated",
                      "emptied", "rewritten", "replaced", "bad_signature"]
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One entry of the audit log."""

    seq: int
    """Position in the chain, from 1."""
    time_us: int
    """When it was appended, in microseconds since the Unix epoch."""
    actor: str
    """The principal who acted: a user, a service, `engine`."""
    action: str
    """What was done, dotted: `run.start`, `tool.call`, `policy.deny`, `memory.erase`…"""
    subject: str
    """What it was done to: a run id, a task, a tool, a memory namespace."""
    outcome: str
    """How it ended: `ok`, `denied`, `error`, `approved`…"""
    data_classes: tuple[str, ...] = ()
    """Names of the classes of personal data involved (`EMAIL`, `CARD`), never values."""
    detail: str = ""
    """A short free-form note (a policy's name, a reason); no personal values."""
    prev_mac: str = GENESIS
    """The previous record's MAC, hex."""
    mac: str = ""
    """HMAC-SHA256 over `prev_mac` and this record's canonical content, hex."""

    @property
    def time(self) -> datetime:
        """`time_us` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time_us / 1e6, UTC)

    def content(self, seq: int | None = None) -> bytes:
        """The canonical JSON the MAC covers (with `seq` replaced, when given)."""
        return _dumps({"v": 1, "seq": self.seq if seq is None else seq,
                       "time_us": self.time_us, "actor": self.actor, "action": self.action,
                       "subject": self.subject, "outcome": self.outcome,
                       "data_classes": list(self.data_classes),
                       "detail": self.detail}).encode()

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object, as `export()` writes it."""
        return {"seq": self.seq, "time": self.time.isoformat(), "time_us": self.time_us,
                "actor": self.actor, "action": self.action, "subject": self.subject,
                "outcome": self.outcome, "data_classes": list(self.data_classes),
                "detail": self.detail, "prev_mac": self.prev_mac, "mac": self.mac}


@dataclass(frozen=True, kw_only=True)
class SignedHead:
    """The chain's head at some record, signed with Ed25519."""

    seq: int
    """The last record the head covers."""
    mac: str
    """That record's MAC."""
    time_us: int
    """When it was signed."""
    key_id: str
    """Fingerprint of the public key that verifies `signature`."""
    signature: str
    """Ed25519 signature of `message()`, hex."""

    def message(self) -> bytes:
        """What is signed: the canonical JSON of seq, mac and time."""
        return _dumps({"v": 1, "seq": self.seq, "mac": self.mac,
                       "time_us": self.time_us}).encode()

    def fields(self) -> dict[str, Any]:
        """The head as a JSON object (as the witness keeps it)."""
        return {"seq": self.seq, "mac": self.mac, "time_us": self.time_us,
                "key_id": self.key_id, "signature": self.signature}

    def valid(self, public: Ed25519PublicKey) -> bool:
        """Whether `signature` is `public`'s signature of this head."""
        try:
            public.verify(bytes.fromhex(self.signature), self.message())
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One sign of tampering."""

    kind: FindingKind
    """`edited`, `inserted`, `reordered`, `deleted`; `truncated` (the newest records cut),
    `emptied` (every record gone), `rewritten` (a signed head's record is not in the chain),
    `replaced` (the witness knows another log in this file); `bad_signature`."""
    seq: int
    """The record (or, for `bad_signature`, the head) concerned."""
    message: str
    """What was found, for people."""

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """What `AuditLog.verify()` found."""

    records: int
    """Rows in the log."""
    chain_length: int
    """The last position of the chain that was followed."""
    heads_checked: int
    """Signed heads whose signatures were checked."""
    head: SignedHead | None
    """The latest head with a valid signature, if any."""
    findings: tuple[Finding, ...] = ()
    """Every sign of tampering, by seq."""
    warnings: tuple[str, ...] = field(default=())
    """Limits of this verification (no public key to check heads, no signed head)."""

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.findings

    def __str__(self) -> str:
        status = "OK" if self.ok else f"TAMPERED ({len(self.findings)} findings)"
        lines = [f"audit log {status}: {self.records} records, {self.heads_checked} signed "
                 f"heads checked" + (f", latest at #{self.head.seq}" if self.head else "")]
        lines += [f"  {f}" for f in self.findings]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def mac(key: bytes, prev_mac: str, content: bytes) -> str:
    return hmac.new(key, prev_mac.encode() + b"\n" + content, sha256).hexdigest()


def head_of(row: Sequence[Any]) -> SignedHead:
    return SignedHead(seq=int(row[0]), mac=str(row[1]), time_us=int(row[2]),
                      key_id=str(row[3]), signature=str(row[4]))


def row_record(row: Sequence[Any]) -> AuditRecord:
    try:
        classes = tuple(str(c) for c in json.loads(row[6]))
    except (ValueError, TypeError):
        classes = (str(row[6]),)
    return AuditRecord(seq=int(row[0]), time_us=int(row[1]), actor=str(row[2]),
                       action=str(row[3]), subject=str(row[4]), outcome=str(row[5]),
                       data_classes=classes, detail=str(row[7]), prev_mac=str(row[8]),
                       mac=str(row[9]))
