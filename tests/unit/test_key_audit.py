"""Key lifecycle audit records on real SQLite journals and audit logs: failures recorded
as errors, key ids that look like numbers still recordable, subjects by digest only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium import SQLiteStore
from podium.security import AuditLog
from podium.security.crypto import KeyConfigError, Keyring, MasterKey, context
from podium.security.key_audit import key_ref, record_init, subject_ref


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.db", key=b"k" * 32, sign_every=None,
                  signing_key=Ed25519PrivateKey.generate()) as log:
        yield log


def test_a_key_id_made_of_digits_is_still_recorded(audit: AuditLog) -> None:
    with pytest.raises(ValueError, match="long run of digits"):
        audit.append(actor="a", action="key.init", subject="1234567890123456")

    record_init(audit, "a", "1234567890123456", "PODIUM_HOME")  # 16 hex digits, all decimal

    assert next(iter(audit.records())).subject == "master_key/0x1234567890123456"
    assert key_ref("00ff") == "master_key/0x00ff"


async def test_failures_are_recorded_as_errors(tmp_path: Path, audit: AuditLog) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    clear = SQLiteStore(tmp_path / "clear.db", keys=None, audit=audit, actor="ops")
    keyed = SQLiteStore(tmp_path / "keyed.db", keys=Keyring(keys=(old,)), audit=audit,
                        actor="ops")
    try:
        with pytest.raises(KeyConfigError):
            await clear.shred_subject("cust-7")
        with pytest.raises(KeyConfigError):
            await keyed.rotate_master_key(new)  # the store does not hold the new key
        await keyed.seal(b"x", where=context("t", "1", "f"), subject="cust-7")
        assert await keyed.shred_subject("cust-7") == 1
    finally:
        await clear.close()
        await keyed.close()

    records = [(r.actor, r.action, r.subject, r.outcome, r.detail) for r in audit.records()]
    assert records == [
        ("ops", "key.shred", subject_ref("cust-7"), "error", "KeyConfigError"),
        ("ops", "key.rotate", key_ref(new.key_id), "error", "KeyConfigError"),
        ("ops", "key.shred", subject_ref("cust-7"), "ok", "keys=1")]
    assert subject_ref("cust-7") != subject_ref("cust-8")
    assert audit.verify().ok
