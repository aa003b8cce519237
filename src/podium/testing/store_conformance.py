"""The conformance suite every journal store passes: subclass `StoreConformance` in a test
module and pytest runs it against your store, the way Podium runs it against SQLite (a file)
and PostgreSQL (a real server), with encryption at rest off and on.

Needs pytest and pytest-asyncio (imported here only: `import podium` never imports them).

Example:
    ```python
    import pytest

    from podium.security.crypto import Keyring, MasterKey
    from podium.testing.store_conformance import StoreConformance


    class TestMyStore(StoreConformance):
        @pytest.fixture
        def journal(self, tmp_path):
            return str(tmp_path / "journal.db")  # where a fresh, empty journal is

        def open_store(self, journal, *, keys):
            return MyStore(journal, keys=keys)


    class TestMyStoreEncrypted(TestMyStore):
        keys = Keyring(keys=(MasterKey(secret=bytes(range(32)), source="test"),))
    ```

Override `alter` too, to run the tests of damaged and altered journals.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium.core.events import ERASED, NewEvent
from podium.errors import JournalDamaged, RunBusy, UnknownRun
from podium.security.audit import AuditLog
from podium.security.crypto import DecryptError, KeyConfigError, Keyring, MasterKey, context
from podium.security.key_audit import subject_ref
from podium.store import CircuitState, Conflict, LeaseLost, Owner, Store

START = NewEvent(type="run_started", data={"workflow": "w", "inputs": {}})
"""The first event of the suite's runs."""


def owner(token: str, pid: int | None = None) -> Owner:
    """An owner on this host (a live process unless `pid` says otherwise)."""
    return Owner(token=token, pid=pid or os.getpid(), host="here")


class StoreConformance:
    """What every `Store` does, as pytest tests: subclass it (naming the subclass `Test...`),
    give the `journal` fixture and `open_store`, and set `keys` for an encrypting store."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]
    keys: ClassVar[Keyring | None] = None
    """The master keys the store under test encrypts with; None: it writes in clear."""

    @pytest.fixture
    def journal(self) -> str:
        """Where a fresh, empty journal is (a path, a URL): override this fixture."""
        raise NotImplementedError(f"{type(self).__name__} must give the `journal` fixture")

    def open_store(self, journal: str, *, keys: Keyring | None) -> Store:
        """A store on `journal`, encrypting with `keys` (None: in clear). A test may open
        several on one journal, one after another or at once."""
        raise NotImplementedError(f"{type(self).__name__} must define open_store")

    def alter(self, journal: str, statement: str, *params: object) -> None:
        """Change the journal behind the store's back, as damage or someone with access to
        it would: run `statement` (SQL in which `{events}` names the events table and `%s`
        marks a parameter). By default the tests that need it are skipped."""
        pytest.skip(f"{type(self).__name__} does not define alter()")

    @pytest_asyncio.fixture
    async def store(self, journal: str) -> AsyncIterator[Store]:
        """The store under test, on a fresh journal, closed after the test."""
        made = self.open_store(journal, keys=self.keys)
        try:
            yield made
        finally:
            await made.close()

    async def test_events_append_in_order_with_their_data(self, store: Store) -> None:
        me = owner("a")
        first = await store.create_run("r1", "w", START, me)
        assert first.seq == 1
        appended = await store.append("r1", [
            NewEvent(type="task_started", task="t", data={"agent": "x", "attempt": 1}),
            NewEvent(type="task_completed", task="t", data={"output": {"n": [1, "é", None]}}),
        ], me)
        assert [e.seq for e in appended] == [2, 3]
        events = await store.events("r1")
        assert [(e.seq, e.type, e.task) for e in events] == [
            (1, "run_started", None), (2, "task_started", "t"), (3, "task_completed", "t")]
        assert events[2].data == {"output": {"n": [1, "é", None]}}
        assert [e.seq for e in await store.events("r1", after=2)] == [3]

    @staticmethod
    async def _seven(store: Store) -> None:
        me = owner("a")
        await store.create_run("r1", "w", START, me)
        await store.append("r1", [NewEvent(type="task_started", task=f"t{i}",
                                           data={"agent": "x", "attempt": 1})
                                  for i in range(6)], me)

    async def test_events_are_read_in_pages(self, store: Store) -> None:
        await self._seven(store)
        everything = await store.events("r1")
        for size in (1, 3, 7, 100):
            pages = [page async for page in store.event_pages("r1", size=size)]
            assert all(len(page) == size for page in pages[:-1])
            assert [e for page in pages for e in page] == everything
        assert [[e.seq for e in page] async for page in store.event_pages(
            "r1", after=4, size=2)] == [[5, 6], [7]]
        with pytest.raises(UnknownRun):
            [page async for page in store.event_pages("nope")]

    async def test_events_missing_from_a_page_are_named(self, store: Store, journal: str
                                                        ) -> None:
        await self._seven(store)
        self.alter(journal, "DELETE FROM {events} WHERE run_id = 'r1' AND seq = 7")
        with pytest.raises(JournalDamaged, match=r"counts 7 events but event\(s\) 7..7"):
            [page async for page in store.event_pages("r1", size=3)]
        self.alter(journal, "DELETE FROM {events} WHERE run_id = 'r1' AND seq = 2")
        with pytest.raises(JournalDamaged, match=r"run 'r1' lacks event\(s\) 2..2"):
            [page async for page in store.event_pages("r1", size=3)]

    async def test_unknown_runs_are_named(self, store: Store) -> None:
        with pytest.raises(UnknownRun, match="'nope'"):
            await store.events("nope")
        with pytest.raises(UnknownRun):
            await store.append("nope", [NewEvent(type="run_completed")], None)
        with pytest.raises(UnknownRun):
            await store.find_run("nope")

    async def test_a_run_is_found_by_a_unique_prefix(self, store: Store) -> None:
        await store.create_run("20261124-aaa", "w", START, owner("a"))
        await store.create_run("20261124-abb", "w", START, owner("a"))
        assert await store.find_run("20261124-aa") == "20261124-aaa"
        with pytest.raises(UnknownRun, match="ambiguous"):
            await store.find_run("20261124-a")

    async def test_only_the_lease_holder_appends(self, store: Store) -> None:
        me, other = owner("a"), owner("b")
        await store.create_run("r", "w", START, me)
        assert await store.acquire("r", other, 30) == me  # a live owner keeps it
        with pytest.raises(LeaseLost):
            await store.append("r", [NewEvent(type="run_resumed")], other)
        await store.release("r", me)
        assert await store.acquire("r", other, 30) is None
        with pytest.raises(LeaseLost):
            await store.append("r", [NewEvent(type="run_resumed")], me)
        with pytest.raises(LeaseLost):
            await store.renew("r", me, 30)
        await store.renew("r", other, 30)

    async def test_a_dead_owner_is_taken_over_at_once(self, store: Store) -> None:
        dead = Owner(token="dead", pid=2**22 + 12345, host=owner("x").host)  # no such pid
        await store.create_run("r", "w", START, dead)
        assert await store.acquire("r", owner("b"), 30) is None

    async def test_an_expired_lease_is_taken_over(self, store: Store) -> None:
        first = owner("a")
        await store.create_run("r", "w", START, first)
        await store.acquire("r", first, 0.0)  # renew with a lease that is already over
        assert await store.acquire("r", owner("b"), 30) is None

    async def test_expect_last_detects_a_grown_journal(self, store: Store) -> None:
        me = owner("a")
        await store.create_run("r", "w", START, me)
        await store.append("r", [NewEvent(type="task_approved", task="t")], None)
        with pytest.raises(Conflict):
            await store.append("r", [NewEvent(type="run_waiting")], me, expect_last=1)
        await store.append("r", [NewEvent(type="run_waiting")], me, expect_last=2, release=True)
        assert await store.acquire("r", owner("b"), 30) is None  # released with the append

    async def test_runs_are_listed_newest_first_with_their_status(self, store: Store) -> None:
        me = owner("a")
        await store.create_run("r1", "w", START, me)
        await asyncio.sleep(0.01)
        await store.create_run("r2", "w", START, me)
        await store.append("r1", [NewEvent(type="run_completed")], me)
        runs = await store.runs()
        assert [r.run_id for r in runs] == ["r2", "r1"]
        assert {r.run_id: r.status for r in runs} == {"r1": "completed", "r2": "running"}
        assert runs[1].finished_at is not None and runs[1].events == 2
        assert [r.run_id for r in await store.runs(status="completed")] == ["r1"]

    async def test_runs_of_a_session_are_listed_in_start_order(self, store: Store) -> None:
        me = owner("a")
        in_session = NewEvent(type="run_started", data={"workflow": "w", "session": "chat-1"})
        await store.create_run("r1", "w", in_session, me)
        await store.create_run("other", "w", NewEvent(
            type="run_started", data={"workflow": "w", "session": "chat-2"}), me)
        await store.create_run("alone", "w", START, me)
        await store.create_run("r2", "w", in_session, me)
        assert await store.session_runs("chat-1") == ["r1", "r2"]
        assert await store.session_runs("chat-2") == ["other"]
        assert await store.session_runs("nobody") == []

    async def test_circuits_are_kept(self, store: Store) -> None:
        assert await store.circuit("w/a") == CircuitState()
        await store.set_circuit("w/a", CircuitState(failures=3, opened_at=12.5))
        assert await store.circuit("w/a") == CircuitState(failures=3, opened_at=12.5)

    async def test_cached_replies_are_kept_and_replaced(self, store: Store) -> None:
        key = "a" * 64
        assert await store.cache_get(key) is None
        reply = {"text": '{"total": 5}', "model": "m", "tool_calls": [],
                 "usage": {"input_tokens": 3, "output_tokens": 2}, "note": ["é", None, 1.5]}
        await store.cache_put(key, reply)
        assert await store.cache_get(key) == reply
        assert await store.cache_get("b" * 64) is None
        await store.cache_put(key, {"text": "newer"})
        assert await store.cache_get(key) == {"text": "newer"}

    async def test_cached_replies_outlive_the_store_and_runs(self, journal: str) -> None:
        first = self.open_store(journal, keys=self.keys)
        await first.cache_put("k", {"text": "kept"})
        await first.close()
        second = self.open_store(journal, keys=self.keys)
        try:
            assert await second.cache_get("k") == {"text": "kept"}
        finally:
            await second.close()

    async def test_concurrent_appends_keep_a_gapless_sequence(self, store: Store) -> None:
        me = owner("a")
        await store.create_run("r", "w", START, me)
        await asyncio.gather(*(store.append("r", [NewEvent(type="model_call", task=f"t{i}")] * 3,
                                            me) for i in range(50)))
        assert [e.seq for e in await store.events("r")] == list(range(1, 152))

    async def test_a_run_vault_is_kept_and_replaced(self, store: Store) -> None:
        await store.create_run("r", "w", START, owner("a"))
        assert await store.vault_get("r") is None
        await store.vault_put("r", {"<EMAIL_1>": "ada@example.com"})
        await store.vault_put("r", {"<EMAIL_1>": "ada@example.com", "<CARD_1>": "4111"})
        assert await store.vault_get("r") == {"<EMAIL_1>": "ada@example.com", "<CARD_1>": "4111"}
        assert await store.vault_get("other") is None

    async def test_sealed_values_open_only_where_they_were_sealed(self, store: Store) -> None:
        here, there = context("memory", "row", 1, "text"), context("memory", "row", 2, "text")
        blob = await store.seal(b"secret fact", where=here, subject="s-1")
        assert await store.unseal(blob, where=here) == b"secret fact"
        if store.encrypted:
            assert b"secret fact" not in blob
            with pytest.raises(DecryptError, match="another row"):
                await store.unseal(blob, where=there)

    async def test_a_shredded_run_reads_as_erased(self, store: Store) -> None:
        me = owner("a")
        await store.create_run("r", "w", NewEvent(type="run_started", data={
            "workflow": "w", "inputs": {"email": "ada@example.com"}}), me)
        await store.append("r", [NewEvent(type="task_completed", task="t", data={"output": 1})], me)
        await store.create_run("kept", "w", START, me)
        await store.vault_put("r", {"<EMAIL_1>": "ada@example.com"})
        with pytest.raises(RunBusy):
            await store.shred_run("r")  # its owner is alive and holds the lease
        await store.release("r", me)
        await store.shred_run("r")
        events = await store.events("r")
        assert [(e.seq, e.type, e.task) for e in events] == [
            (1, "run_started", None), (2, "task_completed", "t")]
        assert all(e.data == {ERASED: "run"} for e in events)
        assert await store.vault_get("r") is None
        assert (await store.events("kept"))[0].data == START.data
        with pytest.raises(UnknownRun):
            await store.shred_run("nope")

    async def test_a_shredded_subject_reads_as_erased_in_every_run(self, store: Store) -> None:
        me = owner("a")
        for run in ("r1", "r2"):
            await store.create_run(run, "w", START, me)
            await store.append(run, [
                NewEvent(type="tool_call", task="t", data={"result": "Ada's file"}, subject="s-1"),
                NewEvent(type="tool_call", task="t", data={"result": "Bob's file"}, subject="s-2"),
            ], me)
        if not store.encrypted:
            with pytest.raises(KeyConfigError, match="not encrypted"):
                await store.shred_subject("s-1")
            return
        assert await store.shred_subject("s-1") == 1
        assert await store.shred_subject("nobody") == 0
        for run in ("r1", "r2"):
            events = await store.events(run)
            assert [e.data for e in events] == [
                START.data, {ERASED: "subject"}, {"result": "Bob's file"}]
        # New data about the subject gets a new key, readable until it too is shredded.
        await store.append("r1", [NewEvent(type="tool_call", task="t", data={"n": 2},
                                           subject="s-1")], me)
        assert (await store.events("r1", after=3))[0].data == {"n": 2}

    async def test_key_status_counts_data_keys(self, store: Store) -> None:
        await store.create_run("r", "w", START, owner("a"))
        status = await store.key_status()
        assert status.encrypted == store.encrypted
        if store.encrypted:
            assert self.keys is not None
            assert status.current == self.keys.primary.key_id
            assert status.data_keys == {self.keys.primary.key_id: 1}
            assert status.clear_runs == 0
        else:
            assert (status.current, status.data_keys, status.clear_runs) == (None, {}, 1)

    async def test_shredding_and_rotation_are_audited(self, store: Store, tmp_path: Path) -> None:
        me = owner("a")
        await store.create_run("r", "w", START, me)
        await store.release("r", me)
        await store.vault_put("r", {"<EMAIL_1>": "ada@example.com", "<EMAIL_2>": "b@example.org"})
        await store.seal(b"fact", where=context("memory", "row", 1, "text"), subject="s-1")
        with AuditLog(tmp_path / "audit.db", key=b"k" * 32, sign_every=None,
                      signing_key=Ed25519PrivateKey.generate()) as log:
            store.audit, store.actor = log, "dpo"
            await store.shred_run("r")
            with pytest.raises(UnknownRun):
                await store.shred_run("nope")
            if store.encrypted:
                assert await store.shred_subject("s-1") == 1
            else:
                with pytest.raises(KeyConfigError):
                    await store.shred_subject("s-1")
            with pytest.raises(KeyConfigError):  # the store does not hold the new key
                await store.rotate_master_key(MasterKey(secret=b"n" * 32, source="test"))
            records = [(r.actor, r.action, r.subject, r.outcome, r.detail, r.data_classes)
                       for r in log.records()]
            assert log.verify().ok
        keys = 1 if store.encrypted else 0
        new_id = MasterKey(secret=b"n" * 32, source="test").key_id
        assert records == [
            ("dpo", "key.shred", "run/r", "ok", f"keys={keys} vault", ("EMAIL",)),
            ("dpo", "key.shred", "run/nope", "error", "UnknownRun", ()),
            ("dpo", "key.shred", subject_ref("s-1"), "ok" if keys else "error",
             "keys=1" if keys else "KeyConfigError", ("SUBJECT",)),
            ("dpo", "key.rotate", f"master_key/0x{new_id}", "error", "KeyConfigError", ())]

    @staticmethod
    async def _completed(store: Store) -> None:
        me = owner("a")
        await store.create_run("r", "w", START, me)
        await store.append("r", [NewEvent(type="task_completed", task="t", data={"output": 1}),
                                 NewEvent(type="run_completed", data={})], me, release=True)
        await store.create_run("other", "w", START, me)

    @pytest.mark.parametrize("change", [
        "UPDATE {events} SET type = 'run_started' WHERE run_id = 'r' AND seq = 3",
        "UPDATE {events} SET task = 'u' WHERE run_id = 'r' AND seq = 2",
        "UPDATE {events} SET ts = ts + 1 WHERE run_id = 'r' AND seq = 2",
    ], ids=["type", "task", "time"])
    async def test_an_altered_event_is_named_as_damaged(self, store: Store, journal: str,
                                                         change: str) -> None:
        await self._completed(store)
        self.alter(journal, change)
        with pytest.raises(JournalDamaged, match=r"event \d of run 'r' is damaged"):
            await store.events("r")
        assert [e.type for e in await store.events("other")] == ["run_started"]

    async def test_a_lost_checksum_is_named(self, store: Store, journal: str) -> None:
        await self._completed(store)
        self.alter(journal, "UPDATE {events} SET sum = NULL WHERE run_id = 'r' AND seq = 2")
        with pytest.raises(JournalDamaged, match=r"event 2 of run 'r'.*no checksum"):
            await store.events("r")

    async def test_events_missing_from_a_run_are_named(self, store: Store, journal: str
                                                      ) -> None:
        await self._completed(store)
        self.alter(journal, "DELETE FROM {events} WHERE run_id = 'r' AND seq = 2")
        with pytest.raises(JournalDamaged, match=r"run 'r' lacks event\(s\) 2..2"):
            await store.events("r")
        self.alter(journal, "DELETE FROM {events} WHERE run_id = 'r' AND seq = 3")
        with pytest.raises(JournalDamaged, match=r"run 'r' counts 3 events but event\(s\) 2..3"):
            await store.events("r")

    async def test_a_journal_holding_encrypted_data_refuses_clear_writes(
            self, store: Store, journal: str) -> None:
        if not store.encrypted:
            pytest.skip("the journal holds no encrypted data")
        await self._completed(store)
        keyless = self.open_store(journal, keys=None)
        try:
            with pytest.raises(KeyConfigError, match=r"holds encrypted data.*no master key"):
                await keyless.create_run("clear", "w", START, owner("b"))
            with pytest.raises(KeyConfigError, match="holds encrypted data"):
                await keyless.cache_put("k", {"text": "clear"})
        finally:
            await keyless.close()
        assert [r.run_id for r in await store.runs()] == ["other", "r"]
