"""Audit records of the key lifecycle: a master key made, data keys re-wrapped under a new
one, data keys destroyed (crypto-shredding).

- `key.init`, subject `master_key/0x<id>`: a master key was made (`podium keys init`);
  detail: where its file is kept (`PODIUM_HOME` or `--out`).
- `key.rotate`, subject `master_key/0x<new id>`: outcome `ok` with detail
  `rewrapped=N previous=0x<id>,...`, or `error` with the error's type.
- `key.shred`, subject `run/<run id>`: detail `keys=N` (0: a run stored in clear, whose
  payloads were overwritten instead) and `vault` when its masking vault was deleted; data
  classes: the classes of personal data its vault held (`EMAIL`, `CARD`, ...).
- `key.shred`, subject `subject#<digest>`: detail `keys=N`; data class `SUBJECT`.

A failed shred is recorded too, outcome `error`, detail the error's type.
Key ids are written `0x<16 hex digits>` (a bare run of digits could pass for a personal
number, which the audit log refuses); a data subject by a BLAKE2b digest of its id, never the
id itself (`subject_ref`, the same digest the memory room's erasure records name it by).
The stores write these records when given an audit log (`SQLiteStore(audit=...)`,
`PostgresStore(audit=...)`, `open_store(audit=...)`; `podium.store.base.Store` does it for
every backend); `podium keys init` and `podium keys rotate` give theirs.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection

from podium.security.audit import AuditLog


def key_ref(key_id: str) -> str:
    """How the audit log names a master key."""
    return f"master_key/0x{key_id}"


def subject_ref(subject: str) -> str:
    """How the audit log names a data subject: a digest, not the id itself."""
    digest = hashlib.blake2b(subject.encode(), digest_size=15,
                             person=b"podium-subject").digest()
    return "subject#" + base64.b32encode(digest).decode().lower()


def record_init(log: AuditLog, actor: str, key_id: str, where: str) -> None:
    """A master key was made (`podium keys init`)."""
    log.append(actor=actor, action="key.init", subject=key_ref(key_id), detail=where)


def record_rotate(log: AuditLog, actor: str, new: str, previous: Collection[str],
                  rewrapped: int | None, error: BaseException | None = None) -> None:
    """A rotation to master key `new` finished (`rewrapped` data keys), or failed."""
    if error is not None:
        log.append(actor=actor, action="key.rotate", subject=key_ref(new), outcome="error",
                   detail=type(error).__name__)
        return
    olds = ",".join(f"0x{k}" for k in sorted(previous)) or "none"
    log.append(actor=actor, action="key.rotate", subject=key_ref(new),
               detail=f"rewrapped={rewrapped} previous={olds}")


def record_shred_run(log: AuditLog, actor: str, run_id: str, keys: int, *, vault: bool,
                     data_classes: Collection[str], error: BaseException | None = None
                     ) -> None:
    """The run's data key was destroyed (or, stored in clear, its payloads overwritten)."""
    if error is not None:
        log.append(actor=actor, action="key.shred", subject=f"run/{run_id}",
                   outcome="error", detail=type(error).__name__)
        return
    log.append(actor=actor, action="key.shred", subject=f"run/{run_id}",
               detail=f"keys={keys}" + (" vault" if vault else ""),
               data_classes=set(data_classes))


def record_shred_subject(log: AuditLog, actor: str, subject: str, keys: int,
                         error: BaseException | None = None) -> None:
    """The subject's data keys were destroyed."""
    log.append(actor=actor, action="key.shred", subject=subject_ref(subject),
               outcome="ok" if error is None else "error",
               detail=f"keys={keys}" if error is None else type(error).__name__,
               data_classes={"SUBJECT"})
