"""Encryption at rest of the SQLite memory store: real files, the real local embedder, real
AES-256-GCM. What is on disk, moved ciphertexts, search, erasure and rotation."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from podium.memory import NewMemory, SQLiteMemoryStore
from podium.memory.embeddings import default_embedder
from podium.security.crypto import DecryptError, KeyConfigError, Keyring, MasterKey, unwrap

CANARY = "wombat-canary-7731"
META = "numbat-meta-5120"
FACTS = [
    f"{CANARY} is allergic to penicillin.",
    "Takes 10 mg of lisinopril every morning for blood pressure.",
    "Prefers appointments on Tuesday afternoons.",
    "Walks the dog for an hour every day.",
]


def _ring(*keys: MasterKey) -> Keyring:
    return Keyring(keys=keys)


def _open(path: Path, keys: Keyring | None) -> SQLiteMemoryStore:
    return SQLiteMemoryStore(path, default_embedder(), keys=keys)


async def _fill(store: SQLiteMemoryStore) -> list[str]:
    added = await store.add_many("patients/p-1", [
        NewMemory(text=text, source="operator:ada", trust="trusted",
                  subject="p-1" if i < 2 else None, metadata={"tag": META, "i": i})
        for i, text in enumerate(FACTS)])
    return [m.id for m in added]


def _on_disk(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.mark.parametrize("encrypted", [True, False])
async def test_the_canary_is_on_disk_only_without_a_key(tmp_path: Path,
                                                        encrypted: bool) -> None:
    path = tmp_path / "memory.db"
    store = _open(path, _ring(MasterKey.generate()) if encrypted else None)
    await _fill(store)
    assert (tmp_path / "memory.db-wal").exists()  # the WAL is read too, not only the file
    on_disk = _on_disk(path)
    assert (CANARY.encode() in on_disk) is not encrypted
    assert (META.encode() in on_disk) is not encrypted
    await store.close()
    assert (CANARY.encode() in _on_disk(path)) is not encrypted
    assert store.encrypted is encrypted


async def test_a_moved_ciphertext_does_not_decrypt(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    store = _open(path, _ring(MasterKey.generate()))
    ids = await _fill(store)
    db = sqlite3.connect(path)
    # Same subject, so same data key: only the row binding stops it.
    db.execute("UPDATE memories SET text = (SELECT text FROM memories WHERE id = ?) "
               "WHERE id = ?", (ids[0], ids[1]))
    db.commit()
    with pytest.raises(DecryptError, match=f"the text of memory '{ids[1]}'.*another row"):
        await store.get("patients/p-1", ids[1])
    # Another field of the same row does not take it either.
    db.execute("UPDATE memories SET metadata = text WHERE id = ?", (ids[0],))
    db.commit()
    db.close()
    with pytest.raises(DecryptError, match=f"the metadata of memory '{ids[0]}'"):
        await store.get("patients/p-1", ids[0])
    assert (await store.get("patients/p-1", ids[2])) is not None
    await store.close()


async def test_search_is_the_same_with_and_without_encryption(tmp_path: Path) -> None:
    clear = _open(tmp_path / "clear.db", None)
    sealed = _open(tmp_path / "sealed.db", _ring(MasterKey.generate()))
    embedder = default_embedder()
    items = [NewMemory(text=t, source="user:bo", subject=f"s{i % 2}", metadata={"i": i})
             for i, t in enumerate(FACTS * 3)]
    vectors = await embedder.embed([i.text for i in items])
    a = await clear.add_many("ns", items, vectors=vectors)
    b = await sealed.add_many("ns", items, vectors=vectors)
    same = dict(zip((m.id for m in b), (m.id for m in a), strict=True))
    for query, kw in [("allergy", {}), ("blood pressure", {"subject": "s1"}),
                      ("dog", {"metadata": {"i": 3}}), ("visit", {"top_k": 12})]:
        want = await clear.search("ns", query, **kw)  # type: ignore[arg-type]
        got = await sealed.search("ns", query, **kw)  # type: ignore[arg-type]
        assert [(same[m.id], m.text, m.score, m.metadata) for m in got] == \
               [(m.id, m.text, m.score, m.metadata) for m in want]
    listed = await sealed.recent("ns", metadata={"i": 2})
    assert [m.text for m in listed] == [m.text for m in await clear.recent("ns",
                                                                            metadata={"i": 2})]
    await clear.close()
    await sealed.close()


async def test_erasure_destroys_the_subjects_key(tmp_path: Path) -> None:
    path, backup = tmp_path / "memory.db", tmp_path / "backup.db"
    keys = _ring(MasterKey.generate())
    store = _open(path, keys)
    ids = await _fill(store)
    await store.add("other", "Beth's notes", source="user:bo", subject="p-2")
    store.checkpoint()
    shutil.copy(path, backup)  # a backup taken before the erasure

    assert await store.forget_subject("p-1") == 2
    db = sqlite3.connect(path)
    wrapped = db.execute("SELECT owner, wrapped IS NULL FROM data_keys ORDER BY id").fetchall()
    assert ("subject:p-1", 1) in wrapped and ("subject:p-2", 0) in wrapped
    assert CANARY.encode() not in _on_disk(path)
    # Rows restored from the backup into the live file do not read: their key is gone.
    db.execute("ATTACH ? AS old", (str(backup),))
    db.execute("INSERT INTO memories SELECT * FROM old.memories WHERE subject = 'p-1'")
    db.commit()
    db.close()
    assert await store.get("patients/p-1", ids[0]) is None
    found = await store.search("patients/p-1", "penicillin allergy", top_k=10)
    assert {m.id for m in found} == set(ids[2:])
    assert [m.text for m in await store.recent("other")] == ["Beth's notes"]
    await store.close()
    # The guarantee's limit, stated by a test: the key table lives in memory.db, so a
    # backup taken before the erasure, together with the master key, still reads. Rotating
    # the master key and destroying the old one ends that too (see the rotation test).
    old = _open(backup, keys)
    assert (await old.get("patients/p-1", ids[0])) is not None
    await old.close()


async def test_after_rotation_the_old_key_reads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    old, new = MasterKey.generate(), MasterKey.generate()
    store = _open(path, _ring(old))
    ids = await _fill(store)
    await store.close()
    rotating = _open(path, _ring(new, old))
    assert await rotating.rotate_master_key(new) == 2  # the subject's and the namespace's
    await rotating.close()

    db = sqlite3.connect(path)
    rows = db.execute("SELECT owner, wrapped, master_id FROM data_keys").fetchall()
    db.close()
    assert {r[2] for r in rows} == {new.key_id}
    for owner, wrapped, _ in rows:
        with pytest.raises(DecryptError):
            unwrap(old, wrapped, owner)
    stale = _open(path, _ring(old))
    with pytest.raises(KeyConfigError, match=new.key_id):
        await stale.get("patients/p-1", ids[0])
    with pytest.raises(KeyConfigError):
        await stale.add("patients/p-1", "more", source="user:bo")  # nothing old could read
    await stale.close()
    fresh = _open(path, _ring(new))
    assert (await fresh.get("patients/p-1", ids[0])).text == FACTS[0]  # type: ignore[union-attr]
    await fresh.close()


async def test_no_clear_memories_in_an_encrypted_file(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    store = _open(path, _ring(MasterKey.generate()))
    await _fill(store)
    await store.close()
    keyless = _open(path, None)
    with pytest.raises(KeyConfigError, match="holds encrypted memories"):
        await keyless.add("patients/p-1", CANARY, source="user:bo")
    with pytest.raises(KeyConfigError, match="no master key"):
        await keyless.recent("patients/p-1")
    await keyless.close()
    assert await _open_count(path) == 4


async def _open_count(path: Path) -> int:
    store = _open(path, None)
    try:
        return await store.count()
    finally:
        await store.close()
