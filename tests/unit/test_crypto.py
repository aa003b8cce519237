"""The primitives of encryption at rest: sealing bound to a place, key wrapping, formats."""

from __future__ import annotations

import pytest

from podium.security.crypto import (
    DataKey,
    DecryptError,
    KeyConfigError,
    MasterKey,
    context,
    new_data_key,
    seal,
    sealed_key_id,
    unseal,
    unwrap,
    wrap,
)


def test_a_sealed_value_opens_only_at_its_place_and_under_its_key() -> None:
    key = DataKey.of(7, new_data_key())
    here = context("event", "run-1", 3, "data")
    blob = seal(key, b'{"output": "secret"}', here)
    assert blob[0] == 1 and sealed_key_id(blob, what="x") == 7
    assert b"secret" not in blob
    assert unseal(key, blob, here, what="x") == b'{"output": "secret"}'
    for elsewhere in (context("event", "run-1", 4, "data"), context("event", "run-2", 3, "data"),
                      context("event", "run-1", 3, "output")):
        with pytest.raises(DecryptError, match="row 9 does not decrypt"):
            unseal(key, blob, elsewhere, what="row 9")
    with pytest.raises(DecryptError):
        unseal(DataKey.of(7, new_data_key()), blob, here, what="x")
    # The header is authenticated too: the key id cannot be swapped.
    with pytest.raises(DecryptError):
        unseal(key, blob[:4] + bytes([blob[4] ^ 1]) + blob[5:], here, what="x")


def test_formats_this_version_does_not_read_are_named() -> None:
    with pytest.raises(DecryptError, match="format 2"):
        sealed_key_id(bytes([2]) + bytes(40), what="event 1")
    with pytest.raises(DecryptError, match="3 bytes"):
        sealed_key_id(b"\x01ab", what="event 1")


def test_places_made_of_different_parts_never_collide() -> None:
    assert context("ab", "c") != context("a", "bc")
    assert context("run", 1) != context("run", "1")
    assert context("x") == context("x")


def test_a_wrapped_key_unwraps_only_under_its_master_for_its_owner() -> None:
    master, other = MasterKey.generate(), MasterKey.generate()
    secret = new_data_key()
    wrapped = wrap(master, secret, "run:a")
    assert unwrap(master, wrapped, "run:a") == secret
    with pytest.raises(DecryptError, match="run:b"):
        unwrap(master, wrapped, "run:b")
    with pytest.raises(DecryptError, match=other.key_id):
        unwrap(other, wrapped, "run:a")


def test_master_keys_are_32_bytes_and_never_shown() -> None:
    key = MasterKey.generate()
    assert MasterKey.parse(key.text(), source="env") == key
    assert len(key.key_id) == 16 and key.key_id not in key.text()
    assert key.text() not in repr(key)
    with pytest.raises(KeyConfigError, match="KEY: the master key is neither"):
        MasterKey.parse("not a key!", source="KEY")
    with pytest.raises(KeyConfigError, match="has 16"):
        MasterKey(secret=bytes(16), source="KEY")
