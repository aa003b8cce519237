"""`podium keys init|status|rotate`: the master key of encryption at rest.

Under the access policy: `status` needs `keys:status`; `init` and `rotate` need
`keys:manage`. The principal and the audit log are the command's (`acting`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from podium import config
from podium.cli._shared import DbOption, PolicyOption, acting, fail, out

if TYPE_CHECKING:
    from podium.security.crypto import Keyring, MasterKey
    from podium.server.access import Access
    from podium.store import KeyStatus, Store

app = typer.Typer(no_args_is_help=True,
                  help="Encryption at rest: the master key that wraps data keys.")


def unencrypted_notice(store: Store, path: str | Path) -> str | None:
    """The line `podium run` prints on stderr when data is stored unencrypted."""
    if store.encrypted:
        return None
    from podium.security.crypto import KEY_ENV, KEY_FILE_ENV

    return (f"note: run data is stored unencrypted in {path}: no master key is configured "
            f"({KEY_ENV}, {KEY_FILE_ENV} or $PODIUM_HOME/master.key); `podium keys init` "
            "makes one")


@contextmanager
def _keys(db: str | None, policy: Path | None, action: str) -> Iterator[Access]:
    """The command's access, once the policy allows `action` on the journal's keys."""
    with acting(db, policy) as access:
        access.check(action, db or str(config.database_path()))
        yield access


@app.command("init")
def keys_init(
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Write the key here (default: $PODIUM_HOME/master.key).")] = None,
    policy: PolicyOption = None,
) -> None:
    """Make a master key file (readable by its owner only); data written from then on is
    encrypted. Keep a copy somewhere safe: without it the data cannot be read."""
    from podium.errors import PodiumError
    from podium.security import key_audit
    from podium.security.crypto import MasterKey, default_key_file, write_key_file

    path = out_file or default_key_file()
    with _keys(None, policy, "keys:manage") as access:
        if path.exists():
            raise fail(f"{path} exists already; `podium keys rotate` replaces a key")
        key = MasterKey.generate()
        write_key_file(path, key)
        try:
            log = access.audit
            if log is not None:
                key_audit.record_init(log, access.principal.id, key.key_id,
                                      "--out" if out_file else "PODIUM_HOME")
        except (PodiumError, OSError) as e:
            raise fail(f"master key {key.key_id} written to {path}, but not audited: {e}"
                       ) from None
    out.print(f"master key {key.key_id} written to {path}")


@app.command("status")
def keys_status(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    policy: PolicyOption = None,
) -> None:
    """Whether encryption is on, and how many data keys each master key wraps."""
    import asyncio

    with _keys(db, policy, "keys:status"):
        status = asyncio.run(_status(db))
    if as_json:
        out.print_json(json.dumps(asdict(status)))
        return
    if status.encrypted:
        out.print(f"encryption: on (AES-256-GCM); this process holds master key(s) "
                   f"{', '.join(status.process_keys)}")
    else:
        out.print("encryption: OFF: no master key configured; new data is stored "
                   "unencrypted (`podium keys init` makes a key)")
    out.print(f"journal's current master key: {status.current or 'none yet'}")
    for master, n in status.data_keys.items():
        out.print(f"  {n} data key(s) wrapped by master key {master}")
    out.print(f"shredded data keys: {status.shredded}; runs stored unencrypted: "
               f"{status.clear_runs}")


async def _status(db: str | None) -> KeyStatus:
    from podium.store import open_store

    store = open_store(db)
    try:
        return await store.key_status()
    finally:
        await store.close()


@app.command("rotate")
def keys_rotate(
    db: DbOption = None,
    new_key_file: Annotated[Path | None, typer.Option(
        "--new-key-file", help="The new master key (default: make one, kept in "
                               "$PODIUM_HOME/master.key.new until the rotation is done).")
    ] = None,
    policy: PolicyOption = None,
) -> None:
    """Re-wrap every data key under a new master key, the journal's and the memory
    database's ($PODIUM_MEMORY_DB or $PODIUM_HOME/memory.db). Runs go on meanwhile: only
    wrapped keys are rewritten, a few per transaction. Afterwards the old key reads nothing."""
    with _keys(db, policy, "keys:manage") as access:
        _rotate_all(db, new_key_file, access)


def _rotate_all(db: str | None, new_key_file: Path | None, access: Access) -> None:
    import asyncio

    from podium.errors import PodiumError
    from podium.security.crypto import (
        KEY_ENV,
        KEY_FILE_ENV,
        Keyring,
        MasterKey,
        default_key_file,
        load_keyring,
        read_key_file,
        write_key_file,
    )

    try:
        current = load_keyring()
        if current is None:
            raise fail("no master key is configured, so nothing is encrypted to rotate; "
                       "`podium keys init` makes one")
        generated = new_key_file is None
        path = new_key_file or default_key_file().with_name("master.key.new")
        if generated and not path.exists():
            write_key_file(path, MasterKey.generate())
        new = read_key_file(path).primary
        keyring = Keyring(keys=(new, *(k for k in current.keys if k.key_id != new.key_id)))
        n = asyncio.run(_rotate(db, keyring, new, access))
        memory = config.memory_path()
        m = asyncio.run(_rotate_memory(memory, keyring, new)) if memory.exists() else None
    except PodiumError as e:
        raise fail(str(e)) from None
    out.print(f"{n} data key(s) re-wrapped under master key {new.key_id}")
    if m is not None:
        out.print(f"{m} memory data key(s) re-wrapped in {memory}")
    old = [k.key_id for k in current.keys if k.key_id != new.key_id]
    uses_default = not (os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV))
    if generated and uses_default:
        os.replace(path, default_key_file())
        out.print(f"{default_key_file()} now holds the new key; the old one "
                   f"({', '.join(old)}) is gone and reads nothing")
    else:
        out.print(f"configure the new key everywhere ({KEY_FILE_ENV}={path}), "
                   f"then destroy the old one ({', '.join(old) or 'none'}): it reads nothing now")


async def _rotate_memory(path: Path, keyring: Keyring, new: MasterKey) -> int:
    from podium.memory.sqlite import SQLiteMemoryStore

    store = SQLiteMemoryStore(path, keys=keyring)
    try:
        return await store.rotate_master_key(new)
    finally:
        await store.close()


async def _rotate(db: str | None, keyring: Keyring, new: MasterKey, access: Access) -> int:
    from podium.store import open_store

    store = open_store(db, keys=keyring, audit=access.audit, actor=access.principal.id)
    try:
        return await store.rotate_master_key(new)
    finally:
        await store.close()
