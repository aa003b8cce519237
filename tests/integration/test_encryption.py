"""Encryption at rest on a real SQLite journal: what is on disk, what a moved or altered
ciphertext does, the wrong key, rotation of the master key, and the masking vault kept per
run. (The store conformance suite runs every store behaviour with encryption on and off.)"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import pytest

from podium import HUMAN, Engine, InputSpec, LLMAgent, SQLiteStore, Workflow
from podium.core.events import NewEvent
from podium.errors import JournalDamaged
from podium.models.base import Message
from podium.security import MaskingPolicy
from podium.security.crypto import (
    DecryptError,
    KeyConfigError,
    Keyring,
    MasterKey,
    load_keyring,
)
from podium.store.base import Owner
from podium.testing import ScriptedModel

CANARY = "zebra-canary-7731@example.org"
OLD, NEW = MasterKey.generate(), MasterKey.generate()
ME = Owner(token="me", pid=os.getpid(), host="here")


def ring(*keys: MasterKey) -> Keyring:
    return Keyring(keys=keys)


def on_disk(db: Path) -> bytes:
    """Every byte of the journal: the file and its WAL."""
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


def canary_workflow() -> Workflow:
    wf = Workflow("canary", inputs={"who": InputSpec(type="string")})
    wf.add_task("echo", agent=lambda who: {"greeting": f"hello {who}"},
                args={"who": "{{ inputs.who }}"})
    wf.add_task("again", agent=lambda echo: echo["greeting"].upper(), needs=["echo"])
    return wf


async def run_canary(db: Path, keys: Keyring | None) -> None:
    store = SQLiteStore(db, keys=keys)
    try:
        state = await Engine(store).start(canary_workflow(), {"who": CANARY})
        assert state.status == "completed", state.error
        assert state.outputs()["again"] == f"HELLO {CANARY.upper()}"
        await store.cache_put("k", {"text": CANARY})
    finally:
        await store.close()


async def test_no_plaintext_of_a_canary_input_on_disk_when_encrypted(tmp_path: Path) -> None:
    await run_canary(tmp_path / "clear.db", None)
    assert CANARY.encode() in on_disk(tmp_path / "clear.db")  # the check can fail

    db = tmp_path / "sealed.db"
    await run_canary(db, ring(OLD))
    raw = on_disk(db)
    assert CANARY.encode() not in raw and CANARY.upper().encode() not in raw
    with closing(sqlite3.connect(db)) as conn:
        kinds = {row[0] for row in conn.execute("SELECT typeof(data) FROM events")}
        assert kinds == {"blob"}
        assert {row[0][0] for row in conn.execute("SELECT data FROM events")} == {1}
    store = SQLiteStore(db, keys=ring(OLD))
    try:
        run_id = (await store.runs())[0].run_id
        state = await Engine(store).state(run_id)
        assert state.inputs == {"who": CANARY}
        assert await store.cache_get("k") == {"text": CANARY}
    finally:
        await store.close()


async def _journal(db: Path, keys: Keyring | None = None) -> SQLiteStore:
    store = SQLiteStore(db, keys=keys or ring(OLD))
    for run in ("a", "b"):
        await store.create_run(run, "w", NewEvent(type="run_started", data={"n": run}), ME)
        await store.append(run, [NewEvent(type="task_completed", task="t",
                                          data={"output": f"{run}{i}"}) for i in range(2)], ME)
    return store


def _move(db: Path, source: tuple[str, int], target: tuple[str, int]) -> None:
    with closing(sqlite3.connect(db)) as conn:
        (data,) = conn.execute("SELECT data FROM events WHERE run_id = ? AND seq = ?",
                               source).fetchone()
        conn.execute("UPDATE events SET data = ? WHERE run_id = ? AND seq = ?",
                     (data, *target))
        conn.commit()


@pytest.mark.parametrize(("source", "target"), [(("a", 2), ("a", 3)), (("a", 2), ("b", 2))],
                         ids=["same-run", "other-run"])
async def test_a_ciphertext_moved_to_another_row_fails_to_decrypt(
        tmp_path: Path, source: tuple[str, int], target: tuple[str, int]) -> None:
    store = await _journal(tmp_path / "j.db")
    await store.close()
    _move(tmp_path / "j.db", source, target)
    store = SQLiteStore(tmp_path / "j.db", keys=ring(OLD))
    try:
        # The row's keyed checksum (store/_sums.py) catches the move before decryption.
        with pytest.raises(JournalDamaged, match=rf"event {target[1]} of run '{target[0]}'"
                                                 " is damaged"):
            await store.events(target[0])
    finally:
        await store.close()


async def test_an_altered_ciphertext_or_wrapped_key_fails_to_decrypt(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    await (await _journal(db)).close()
    with closing(sqlite3.connect(db)) as conn:
        (data,) = conn.execute("SELECT data FROM events WHERE run_id='a' AND seq=1").fetchone()
        flipped = data[:-1] + bytes([data[-1] ^ 1])
        conn.execute("UPDATE events SET data = ? WHERE run_id='a' AND seq=1", (flipped,))
        conn.execute("UPDATE data_keys SET wrapped = (SELECT wrapped FROM data_keys WHERE"
                     " owner='run:a') WHERE owner='run:b'")  # b's row now holds a's key
        conn.commit()
    store = SQLiteStore(db, keys=ring(OLD))
    try:
        with pytest.raises(JournalDamaged, match="event 1 of run 'a' is damaged"):
            await store.events("a")
        with pytest.raises(DecryptError, match="data key of run:b"):
            await store.events("b")
    finally:
        await store.close()


async def test_the_wrong_key_or_no_key_reads_nothing_and_says_why(tmp_path: Path) -> None:
    await (await _journal(tmp_path / "j.db")).close()
    wrong = SQLiteStore(tmp_path / "j.db", keys=ring(NEW))
    keyless = SQLiteStore(tmp_path / "j.db", keys=None)
    try:
        with pytest.raises(KeyConfigError, match=f"under master key {OLD.key_id}.*holds "
                                                 f"{NEW.key_id}"):
            await wrong.events("a")
        with pytest.raises(KeyConfigError, match="current master key"):
            await wrong.create_run("c", "w", NewEvent(type="run_started"), ME)
        with pytest.raises(KeyConfigError, match="no master key"):
            await keyless.events("a")
        with pytest.raises(KeyConfigError, match="cannot write"):
            await keyless.append("a", [NewEvent(type="run_resumed")], None)
        assert [e.type for e in await keyless.events("a", after=10)] == []
    finally:
        await wrong.close()
        await keyless.close()


async def test_after_rotation_the_old_key_reads_nothing_and_the_new_one_everything(
        tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    live = await _journal(db)  # keeps running its runs through the rotation
    await live.vault_put("a", {"<EMAIL_1>": CANARY})
    await live.cache_put("k", {"text": "cached"})
    await live.seal(b"fact", where=b"memory/1", subject="s-1")
    with closing(sqlite3.connect(db)) as conn:
        old_wrapped = [row[0] for row in conn.execute("SELECT wrapped FROM data_keys")]

    rotator = SQLiteStore(db, keys=ring(NEW, OLD))
    try:
        # The keys of runs a and b (a's vault is under a's key), the cache's and s-1's.
        assert await rotator.rotate_master_key(NEW, batch=3) == 4
        assert await rotator.rotate_master_key(NEW) == 0  # again: nothing left to do
        status = await rotator.key_status()
        assert (status.current, status.data_keys) == (NEW.key_id, {NEW.key_id: 4})
    finally:
        await rotator.close()

    # The process that held only the old key goes on with the runs it has under way...
    await live.append("a", [NewEvent(type="run_completed")], ME)
    # ...but adds nothing the old key would read.
    with pytest.raises(KeyConfigError, match=f"current master key is {NEW.key_id}"):
        await live.create_run("c", "w", NewEvent(type="run_started"), ME)
    await live.close()

    old = SQLiteStore(db, keys=ring(OLD))
    new = SQLiteStore(db, keys=ring(NEW))
    try:
        for run in ("a", "b"):
            with pytest.raises(KeyConfigError, match=f"under master key {NEW.key_id}"):
                await old.events(run)
        with pytest.raises(KeyConfigError):
            await old.vault_get("a")
        with pytest.raises(KeyConfigError):
            await old.cache_get("k")
        assert [e.data for e in await new.events("a")] == [
            {"n": "a"}, {"output": "a0"}, {"output": "a1"}, {}]
        assert await new.vault_get("a") == {"<EMAIL_1>": CANARY}
        assert await new.cache_get("k") == {"text": "cached"}
        await new.create_run("c", "w", NewEvent(type="run_started"), ME)
    finally:
        await old.close()
        await new.close()
    raw = on_disk(db)
    assert not [w for w in old_wrapped if w in raw], "an old wrapped key is left on disk"


async def test_a_run_started_before_rotation_resumes_after_it(tmp_path: Path) -> None:
    wf = Workflow("review")
    wf.add_task("review", agent=HUMAN, prompt="Pay?")
    wf.add_task("pay", agent=lambda review: f"paid {review['amount']}", needs=["review"])
    store = SQLiteStore(tmp_path / "j.db", keys=ring(OLD))
    state = await Engine(store).start(wf)
    assert state.status == "waiting"
    await store.close()

    rotator = SQLiteStore(tmp_path / "j.db", keys=ring(NEW, OLD))
    assert await rotator.rotate_master_key(NEW) == 1
    await rotator.close()

    store = SQLiteStore(tmp_path / "j.db", keys=ring(NEW))
    try:
        engine = Engine(store)
        await engine.approve(state.run_id, "review", {"amount": 100})
        state = await engine.resume(wf, state.run_id)
        assert state.status == "completed"
        assert state.outputs() == {"review": {"amount": 100}, "pay": "paid 100"}
    finally:
        await store.close()


def test_a_master_key_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert load_keyring({"PODIUM_HOME": str(tmp_path)}) is None
    (tmp_path / "master.key").write_text(f"# made by podium keys init\n{OLD.text()}\n")
    assert load_keyring({"PODIUM_HOME": str(tmp_path)}) == ring(OLD)
    import base64

    both = f"{base64.b64encode(NEW.secret).decode()},{OLD.text()}"
    assert load_keyring({"PODIUM_MASTER_KEY": both, "PODIUM_HOME": str(tmp_path)}) == ring(
        NEW, OLD)
    (tmp_path / "other.key").write_text(NEW.text())
    assert load_keyring({"PODIUM_MASTER_KEY_FILE": str(tmp_path / "other.key")}) == ring(NEW)
    with pytest.raises(KeyConfigError, match="PODIUM_MASTER_KEY: a master key is 32 bytes"):
        load_keyring({"PODIUM_MASTER_KEY": "abcd"})
    with pytest.raises(KeyConfigError, match=r"missing\.key: cannot read"):
        load_keyring({"PODIUM_MASTER_KEY_FILE": str(tmp_path / "missing.key")})
    assert OLD.secret.hex() not in repr(OLD)


# -- the masking vault, kept per run -----------------------------------------------------------


def _seen(model: ScriptedModel) -> list[str]:
    return [m.content for call in model.calls for m in call.messages if m.role == "user"]


def _echo(messages: Sequence[Message], schema: object) -> str:
    return f"noted: {messages[-1].content}"


async def test_placeholders_are_stable_across_tasks_and_processes_of_a_run(
        tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    other = "grace.hopper@example.net"

    def workflow(model: ScriptedModel) -> Workflow:
        wf = Workflow("vault")
        wf.add_agent("writer", LLMAgent(model, name="writer", masking=MaskingPolicy()))
        wf.add_task("first", agent="writer", prompt=f"Write to {CANARY}.")
        wf.add_task("review", agent=HUMAN, prompt="OK?", needs=["first"])
        wf.add_task("second", agent="writer", needs=["review"],
                    prompt=f"Copy {other} and {CANARY}.")
        return wf

    model = ScriptedModel(_echo, external=True)
    store = SQLiteStore(db, keys=ring(OLD))
    state = await Engine(store).start(workflow(model))
    assert state.status == "waiting"
    assert _seen(model) == ["Write to <EMAIL_1>."]
    await store.close()

    # A new process (store and engine) takes the run on: the vault comes from the journal.
    model = ScriptedModel(_echo, external=True)
    store = SQLiteStore(db, keys=ring(OLD))
    try:
        engine = Engine(store)
        await engine.approve(state.run_id, "review")
        state = await engine.resume(workflow(model), state.run_id)
        assert state.status == "completed", state.error
        assert _seen(model) == ["Copy <EMAIL_2> and <EMAIL_1>."]
        assert state.outputs()["second"] == f"noted: Copy {other} and {CANARY}."
        assert await store.vault_get(state.run_id) == {"<EMAIL_1>": CANARY,
                                                       "<EMAIL_2>": other}
    finally:
        await store.close()
    assert CANARY.encode() not in on_disk(db)
