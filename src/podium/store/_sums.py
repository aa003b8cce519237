"""Per-event checksums: how a journal notices a damaged or altered event row when it reads it.

Every event row carries `sum`: a format byte and a 16-byte BLAKE2b digest of the row as
stored (run id, sequence number, type, task, payload bytes, time), computed on append and
checked on every read, before the payload is decoded or folded into a run's state.

- Format 0, unkeyed, for payloads kept in clear (no master key): detects accidental damage
  (a torn or overwritten page, a flipped bit, a row changed by a tool or a bad restore)
  but not a deliberate edit, since anyone who can write the file can recompute it.
- Format 1, keyed, for sealed payloads (a master key is configured): the key is derived from
  the data key that sealed the payload (`DataKey.mac_key`), so without the master key
  nobody can change a row's type, task, time or position, nor move rows between runs,
  unnoticed. (The payload itself is already authenticated by AES-GCM.) A run that holds a
  data key must have only sealed rows: a clear row there is refused as tampering.

Together with the row count a run's record keeps (`last_seq`), a read also notices events
that went missing. What neither sees: an event row deleted together with the run's count
lowered to match, in a journal without a master key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from typing import Any

from podium.errors import JournalDamaged

CLEAR_SUM = 0
"""The format byte of an unkeyed checksum."""
KEYED_SUM = 1
"""The format byte of a checksum keyed by the payload's data key."""
_HEAD = struct.Struct("<qd")
_LEN = struct.Struct("<I")


def event_sum(run_id: str, seq: int, type_: str, task: str | None, data: str | bytes,
              ts: float, key: bytes | None = None) -> bytes:
    """The checksum of an event row as stored; keyed with `key` when one is given."""
    h = hashlib.blake2b(digest_size=16, key=key or b"", person=b"podium.event")
    h.update(_HEAD.pack(seq, ts))
    payload = b"s" + data if isinstance(data, bytes) else b"t" + data.encode()
    for part in (run_id.encode(), type_.encode(),
                 b"-" if task is None else b"+" + task.encode(), payload):
        h.update(_LEN.pack(len(part)))
        h.update(part)
    return bytes([KEYED_SUM if key else CLEAR_SUM]) + h.digest()


def check_event(location: str, run_id: str, seq: int, type_: str, task: str | None,
                data: str | bytes, ts: float, stored: bytes | None, key: bytes | None,
                *, required: bool) -> None:
    """Raise `JournalDamaged` unless `stored` is the row's checksum under `key` (None: the
    unkeyed one). A missing checksum passes unless `required` (rows written before
    checksums existed, in a journal not yet fully migrated)."""
    if stored is None:
        if required:
            raise damaged(location, run_id, seq, "it has no checksum")
        return
    if not hmac.compare_digest(bytes(stored), event_sum(run_id, seq, type_, task, data, ts,
                                                        key)):
        raise damaged(location, run_id, seq, "its checksum does not match (the row was "
                      "overwritten or altered)")


def clear_payload(location: str, run_id: str, seq: int, type_: str, task: str | None,
                  text: str, ts: float, stored: bytes | None, *, sealed_run: bool,
                  required: bool) -> dict[str, Any]:
    """A clear (unsealed) event payload, once its checksum holds, for every backend.

    Raises:
        JournalDamaged: a clear row in an encrypted run, a failing checksum, or not JSON.
    """
    if sealed_run:
        raise damaged(location, run_id, seq, "its payload is in clear text in an encrypted "
                      "run (the row was replaced)")
    check_event(location, run_id, seq, type_, task, text, ts, stored, None, required=required)
    try:
        value: dict[str, Any] = json.loads(text)
    except ValueError:
        raise damaged(location, run_id, seq, "its payload is not JSON") from None
    return value


def damaged(location: str, run_id: str, seq: int, why: str) -> JournalDamaged:
    """The error for event `seq` of `run_id` found damaged in the journal at `location`."""
    return JournalDamaged(
        f"{location}: event {seq} of run {run_id!r} is damaged: {why}; the run's state "
        "cannot be trusted. Other runs are not affected. Keep a copy of the journal and "
        "restore it from a backup")


def check_count(location: str, run_id: str, after: int, seqs: list[int],
                last_seq: int | None) -> None:
    """Raise `JournalDamaged` if the events read (`seqs`, above `after`) skip a number or
    stop short of the count the run's record keeps (`last_seq`, read before them)."""
    expected = after + 1
    for seq in seqs:
        if seq != expected:
            raise JournalDamaged(
                f"{location}: run {run_id!r} lacks event(s) {expected}..{seq - 1}: the "
                "journal is damaged. Keep a copy of the journal and restore it from a backup")
        expected += 1
    if last_seq is not None and expected <= last_seq:
        raise JournalDamaged(
            f"{location}: run {run_id!r} counts {last_seq} events but event(s) "
            f"{expected}..{last_seq} are missing: the journal is damaged. Keep a copy of "
            "the file and restore it from a backup")
