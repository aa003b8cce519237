"""`podium memory add|search|list|forget|promote`: long-term memory from the terminal.

The memory store is `--memory-db` (or `$PODIUM_MEMORY_DB`): a SQLite file (default:
`$PODIUM_HOME/memory.db`) or a `postgresql://` URL of a server with pgvector. Erasing a
subject (`forget --subject`) also erases its runs from the journal (`--db`), which must
then be a SQLite file.

Each command acts for the principal every command acts for (`acting`), under the access
policy, and checks before it opens the memory database: `list` and `search` need
`memory:read` on the namespace, `add` `memory:write` (and `memory:trust` with
`--trusted`), `forget ID` `memory:forget`, `promote` `memory:trust`, and `forget
--subject` `subject:erase` on the subject. Making a memory trusted is audited
(`memory.trust`), as is an erasure (`memory.erase`).

Exit status: 0 done, 1 nothing found to forget or promote, 2 invalid input or a denial.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from podium.cli._shared import (
    DbOption,
    PolicyOption,
    acting,
    err,
    fail,
    out,
    sqlite_only,
)
from podium.config import memory_path

if TYPE_CHECKING:
    from podium.core.memory import Memory
    from podium.memory.store import MemoryStore
    from podium.server.access import Access

T = TypeVar("T")
app = typer.Typer(no_args_is_help=True, help="Long-term memory: add, search, list, forget.")

MemoryDb = Annotated[str | None, typer.Option(
    "--memory-db", help="Memory database: a SQLite file (default: $PODIUM_HOME/memory.db) "
    "or a postgresql://USER:PASSWORD@HOST/DB URL (with pgvector).",
    envvar="PODIUM_MEMORY_DB")]
Namespace = Annotated[str, typer.Option("--namespace", "-n", help="The namespace, exactly "
                                        "(e.g. patients/p-102).")]
Subject = Annotated[str | None, typer.Option("--subject", help="Whom the memory is about.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def open_memory(where: str | None) -> MemoryStore:
    """The long-term memory store at `where` (None: `$PODIUM_MEMORY_DB`, else
    `$PODIUM_HOME/memory.db`): PostgreSQL for a `postgresql://` URL, else a SQLite file.
    Says on stderr when a SQLite store keeps memories unencrypted."""
    from podium.store import is_url

    where = where or os.environ.get("PODIUM_MEMORY_DB") or None
    if is_url(where):
        from podium.memory.postgres import PostgresMemoryStore

        return PostgresMemoryStore(str(where))
    from podium.memory.sqlite import SQLiteMemoryStore

    store = SQLiteMemoryStore(Path(where) if where else memory_path())
    notice(store)
    return store


def memory_for(workflow: Any) -> MemoryStore | None:
    """The default memory store when `workflow` has tasks that declare memory, else None."""
    if not any(task.memory is not None for task in workflow.tasks.values()):
        return None
    return open_memory(None)


def notice(store: Any) -> None:
    """Say on stderr, in one line, when memories are stored unencrypted."""
    if not store.encrypted:
        err.print(f"note: memories are stored unencrypted in {store.path}: no master key is "
                  "configured (PODIUM_MASTER_KEY, PODIUM_MASTER_KEY_FILE or "
                  "$PODIUM_HOME/master.key); `podium keys init` makes one",
                  markup=False, highlight=False)


def _run(make: Callable[[Any, Access], Coroutine[Any, Any, T]], db: str | None,
         policy: Path | None, need: Sequence[tuple[str, str, str | None]], *,
         journal: str | None = None) -> T:
    """Check each `(action, resource, audit subject)` of `need`, then open the memory store
    and run `make(store, access)`."""
    import asyncio

    with acting(journal, policy) as access:
        for action, resource, subject in need:
            access.check(action, resource, subject=subject)

        async def main() -> T:
            store = open_memory(db)
            try:
                return await make(store, access)
            finally:
                await store.close()

        return asyncio.run(main())


def _show(memories: Sequence[Memory], as_json: bool) -> None:
    from rich.table import Table

    if as_json:
        out.print_json(json.dumps([m.to_json() for m in memories], ensure_ascii=False))
        return
    if not memories:
        out.print("no memories")
        return
    table = Table("id", "score", "trust", "subject", "source", "text")
    for m in memories:
        table.add_row(m.id, "" if m.score is None else f"{m.score:.3f}", m.trust,
                      m.subject or "", m.source, m.text)
    out.print(table)


@app.command("add")
def add(
    text: Annotated[str, typer.Argument(help="What to remember.")],
    namespace: Namespace,
    subject: Subject = None,
    source: Annotated[str | None, typer.Option(
        help="Where it came from (default: operator:PRINCIPAL).")] = None,
    trusted: Annotated[bool, typer.Option(
        "--trusted", help="Store it trusted (only for operator or system sources).")] = False,
    expires_in: Annotated[float | None, typer.Option(
        "--expires-in", help="Seconds until it stops being returned.")] = None,
    as_json: AsJson = False,
    db: MemoryDb = None,
    policy: PolicyOption = None,
) -> None:
    """Remember a text in a namespace."""
    async def go(store: Any, access: Access) -> Memory:
        memory: Memory = await store.add(
            namespace, text, source=source or f"operator:{access.principal.id}",
            subject=subject, trust="trusted" if trusted else "untrusted",
            expires=time.time() + expires_in if expires_in is not None else None)
        if trusted:
            access.record("memory.trust", namespace, detail=f"added {memory.id}")
        return memory

    need = [("memory:write", namespace, None)]
    if trusted:
        need.append(("memory:trust", namespace, None))
    memory = _run(go, db, policy, need)
    if as_json:
        out.print_json(json.dumps(memory.to_json(), ensure_ascii=False))
    else:
        out.print(f"remembered {memory.id} in {memory.namespace} ({memory.trust})")


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    namespace: Namespace,
    subject: Subject = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many at most.")] = 5,
    trusted_only: Annotated[bool, typer.Option("--trusted-only")] = False,
    as_json: AsJson = False,
    db: MemoryDb = None,
    policy: PolicyOption = None,
) -> None:
    """Find memories by meaning, best first."""
    async def go(store: Any, access: Access) -> list[Memory]:
        found: list[Memory] = await store.search(namespace, query, top_k=top_k,
                                                 trusted_only=trusted_only, subject=subject)
        return found

    _show(_run(go, db, policy, [("memory:read", namespace, None)]), as_json)


@app.command("list")
def list_(
    namespace: Namespace,
    subject: Subject = None,
    limit: Annotated[int, typer.Option(help="How many at most.")] = 100,
    trusted_only: Annotated[bool, typer.Option("--trusted-only")] = False,
    as_json: AsJson = False,
    db: MemoryDb = None,
    policy: PolicyOption = None,
) -> None:
    """List a namespace's memories, newest first."""
    async def go(store: Any, access: Access) -> list[Memory]:
        found: list[Memory] = await store.recent(namespace, subject=subject, limit=limit,
                                                 trusted_only=trusted_only)
        return found

    _show(_run(go, db, policy, [("memory:read", namespace, None)]), as_json)


@app.command("forget")
def forget(
    memory_id: Annotated[str | None, typer.Argument(
        metavar="[ID]", help="The memory to delete (with --namespace).")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    subject: Annotated[str | None, typer.Option(
        "--subject", help="Erase everything about this subject: its memories in every "
        "namespace and its runs in the journal; recorded in the audit log.")] = None,
    journal: DbOption = None,
    as_json: AsJson = False,
    db: MemoryDb = None,
    policy: PolicyOption = None,
) -> None:
    """Delete one memory, or erase a subject."""
    if (memory_id is None) == (subject is None):
        raise fail("give a memory ID with --namespace, or --subject ID")
    if subject is not None:
        _erase(subject, journal, as_json, db, policy)
        return
    if namespace is None:
        raise fail("forgetting a memory by id needs its --namespace")
    ns, mid = namespace, memory_id or ""

    async def go(store: Any, access: Access) -> bool:
        done: bool = await store.forget(ns, mid)
        return done

    done = _run(go, db, policy, [("memory:forget", ns, None)])
    if as_json:
        out.print_json(json.dumps({"id": mid, "namespace": ns, "forgotten": done}))
    else:
        out.print(f"forgot {mid}" if done else f"no memory {mid!r} in {ns!r}")
    raise typer.Exit(0 if done else 1)


def _erase(subject: str, journal: str | None, as_json: bool, db: str | None,
           policy: Path | None) -> None:
    from podium.config import database_path
    from podium.memory.erasure import Erasure, erase_subject, subject_ref

    # The runs are erased from a SQLite journal only: a PostgreSQL one is refused before
    # anything is erased, rather than read as a file that is not there.
    found = sqlite_only(journal, "podium memory forget --subject") or database_path()
    runs = found if found.exists() else None

    async def go(store: Any, access: Access) -> Erasure:
        return await erase_subject(subject, memory=store, journal=runs, audit=access.audit,
                                   actor=access.principal.id)

    # The audit log names the subject by its digest, as the erasure does.
    done = _run(go, db, policy, [("subject:erase", subject, subject_ref(subject))],
                journal=journal)
    if as_json:
        out.print_json(json.dumps({"subject_ref": done.subject_ref, "memories": done.memories,
                                   "runs": list(done.runs), "events": done.events,
                                   "keys": done.keys, "audit_seq": done.audit_seq}))
    else:
        out.print(f"erased {done.memories} memories, {len(done.runs)} unencrypted runs "
                  f"({done.events} events) and {done.keys} subject keys; audit record "
                  f"{done.audit_seq} "
                  f"({done.subject_ref})")


@app.command("promote")
def promote(
    memory_id: Annotated[str, typer.Argument(metavar="ID", help="The memory to trust.")],
    namespace: Namespace,
    reason: Annotated[str, typer.Option(help="Why it can be trusted.")] = "",
    as_json: AsJson = False,
    db: MemoryDb = None,
    policy: PolicyOption = None,
) -> None:
    """Trust an untrusted memory, as the principal at the terminal (human:PRINCIPAL)."""
    from podium.memory.trust import HumanApproval, Verdict

    async def go(store: Any, access: Access) -> Verdict:
        verdict: Verdict = await store.promote(
            namespace, memory_id, HumanApproval(access.principal.id, approved=True,
                                                reason=reason))
        access.record("memory.trust", namespace, detail=f"promoted {memory_id}")
        return verdict

    verdict = _run(go, db, policy, [("memory:trust", namespace, None)])
    if as_json:
        out.print_json(json.dumps({"id": memory_id, "trust": "trusted", "by": verdict.by}))
    else:
        out.print(f"{memory_id} is trusted ({verdict.by})")
