"""Podium's SQLite files (the journal, the audit log, memory.db): opened owner-only, written
by writers that wait out other writers, and read through a connection that turns SQLite's
errors into ones that name the file and say what to do.

Owner-only: a file Podium creates is made 0600 before SQLite opens it (SQLite gives its
`-wal` and `-shm` files the database file's mode), and the folders it creates 0700. A file
or folder found readable by group or others is reported once per process on stderr, not
changed: the operator may share it on purpose.

Errors: SQLite reports a damaged or truncated file ("database disk image is malformed",
"file is not a database"), a read-only file or folder, a full disk, as bare
`sqlite3.Error`s raised wherever a statement happens to run. Every statement on a
connection from `connect()` raises `JournalDamaged` or `JournalError` instead (both
`UserError`s, naming the file), except "locked"/"busy", which `retrying` waits out.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from podium.errors import JournalDamaged, JournalError, PodiumError, StoreLocked

T = TypeVar("T")
_warned: set[Path] = set()


def _locked(e: sqlite3.Error) -> bool:
    text = str(e)
    return isinstance(e, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def translate(e: sqlite3.Error, path: Path) -> PodiumError:
    """SQLite's error `e` on the file `path` as a Podium error that names the file."""
    text = str(e)
    if "malformed" in text or "not a database" in text or "disk I/O" in text:
        return JournalDamaged(
            f"{path}: the database file is damaged or truncated (SQLite: {text}); nothing "
            f"was written. Keep a copy of the file, then restore it from a backup or "
            f"salvage it with `sqlite3 {path} .recover`")
    if "readonly" in text or "read-only" in text:
        return JournalError(
            f"{path}: cannot write to the database: the file or its folder is read-only "
            f"(SQLite: {text}); make both writable by this user, or point --db elsewhere")
    if "unable to open" in text:
        return JournalError(
            f"{path}: cannot open the database (SQLite: {text}); check that its folder "
            "exists and that this user may read and write the file and the folder")
    if "full" in text:
        return JournalError(
            f"{path}: the disk is full (SQLite: {text}); nothing journaled was lost: free "
            "some space and go on (`podium resume RUN` continues a run)")
    return JournalError(f"{path}: {text}")


class _Cursor(sqlite3.Cursor):
    path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            super().execute(sql, parameters)
        except sqlite3.DatabaseError as e:
            if _locked(e) or not _fatal(e):
                raise
            raise translate(e, self.path) from e
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> _Cursor:
        try:
            super().executemany(sql, seq_of_parameters)
        except sqlite3.DatabaseError as e:
            if _locked(e) or not _fatal(e):
                raise
            raise translate(e, self.path) from e
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as e:
            if _locked(e) or not _fatal(e):
                raise
            raise translate(e, self.path) from e

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as e:
            if _locked(e) or not _fatal(e):
                raise
            raise translate(e, self.path) from e

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(size)
        except sqlite3.DatabaseError as e:
            if _locked(e) or not _fatal(e):
                raise
            raise translate(e, self.path) from e

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as e:
            if _locked(e) or not _fatal(e):
                raise
            raise translate(e, self.path) from e


def _fatal(e: sqlite3.DatabaseError) -> bool:
    """Errors of the file, not of the statement (a constraint or a bug stays as it is)."""
    return not isinstance(e, sqlite3.IntegrityError | sqlite3.ProgrammingError
                          | sqlite3.InterfaceError)


class Connection(sqlite3.Connection):
    """A connection whose statements raise `JournalError`s naming its file."""

    path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        cursor = self.cursor(_Cursor)
        cursor.path = self.path
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> _Cursor:
        cursor = self.cursor(_Cursor)
        cursor.path = self.path
        return cursor.executemany(sql, parameters)


def private_folder(folder: Path) -> None:
    """Make `folder`, and its missing parents, owner-only (0700). An existing folder is left
    as it is: the files inside are owner-only, and a shared parent (/tmp, a home) is
    normal."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def private_file(path: Path) -> None:
    """Create `path` owner-only (0600) if it is missing, in a folder made owner-only if it
    is missing too; if it exists but group or others may read it, say so once on stderr."""
    private_folder(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # SQLite will report the folder's problem, naming the file
    warn_if_open(path)


def warn_if_open(path: Path) -> None:
    """Say once per process on stderr that `path` may be read by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and path not in _warned:
        _warned.add(path)
        print(f"warning: {path} may be read by other users (mode {stat.filemode(mode)}); "
              f"make it owner-only: chmod 600 {path}", file=sys.stderr)


def connect(path: Path, *, timeout: float) -> Connection:
    """Open the SQLite file `path` (created owner-only) for any thread, in autocommit mode.

    Raises:
        JournalError: the file cannot be opened.
    """
    private_file(path)
    try:
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                             check_same_thread=False, factory=Connection)
    except sqlite3.Error as e:
        raise translate(e, path) from e
    db.path = path
    return db


def retrying(fn: Callable[[], T], path: Path, patience: float) -> T:
    """`fn()`, tried again while the database is locked (switching a new file to WAL
    needs it to itself, and SQLite may answer "locked" there without waiting).

    Raises:
        StoreLocked: still locked after `patience` seconds.
    """
    deadline = time.monotonic() + patience
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() > deadline:
                raise StoreLocked(f"{path}: still locked by another writer after "
                                  f"{patience:.0f}s; is a process stuck?") from e
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def write(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], path: Path,
          patience: float) -> T:
    """Run `fn` in one write transaction, taking the write lock up front (`BEGIN
    IMMEDIATE`) so writers queue instead of deadlocking."""
    retrying(lambda: db.execute("BEGIN IMMEDIATE"), path, patience)
    try:
        result = fn(db)
    except BaseException:
        # SQLite may have rolled back already (a full disk, a damaged page).
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result
