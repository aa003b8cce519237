"""The audit witness: every signed head also appended to a file the log's database cannot
rewrite, so that cutting the newest records, emptying the log or rewriting its chain shows.

Heads kept in the database (`audit_heads`) go down with it: whoever can write the database
can delete the newest records together with their heads, or empty both tables, and the
chain that is left verifies. The witness is a JSON-lines file, one line per signed head:

    {"log": LOG_ID, "db": "/abs/path/audit.db", "seq": 57, "mac": "...", "time_us": ...,
     "key_id": "...", "signature": "..."}

`seq` is the number of records the chain had (seq numbers have no gaps) and `mac` its hash
at that point, signed with the Ed25519 key. `podium audit verify` reads the lines of its log
(by `log`, and by `db` to notice a log deleted and made anew at the same place) and fails,
naming what is gone: "records 41-57 cut", "log emptied", "chain rewritten", "log replaced".

The file is `$PODIUM_AUDIT_WITNESS`, else `audit.witness` in `$PODIUM_HOME`. It only helps
if the journal's writer cannot rewrite it: make it append-only (`chattr +a`, as root), or
owned by another OS user with a writable pipe or socket in front, or ship its lines to a
remote sink (a SIEM, a syslog host, object storage with retention) - see docs/security.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium import config
from podium.errors import UserError
from podium.sqlite_files import private_folder

WITNESS_ENV = "PODIUM_AUDIT_WITNESS"
"""The environment variable naming the witness file."""
WITNESS_FILE = "audit.witness"
"""The witness file in `$PODIUM_HOME`, used when `PODIUM_AUDIT_WITNESS` is unset."""


def witness_path() -> Path:
    """Where signed heads are witnessed: `$PODIUM_AUDIT_WITNESS`, else
    `$PODIUM_HOME/audit.witness`."""
    configured = os.environ.get(WITNESS_ENV)
    return Path(configured) if configured else config.home() / WITNESS_FILE


@dataclass(frozen=True, kw_only=True)
class WitnessLine:
    """One head as the witness keeps it."""

    line: int
    """Its line number in the file, from 1."""
    log: str
    """The id of the log that signed it."""
    db: str
    """The database file that log was in, absolute."""
    head: dict[str, Any]
    """`seq`, `mac`, `time_us`, `key_id`, `signature`."""


def append(path: Path, log_id: str, db: Path, head: dict[str, Any]) -> None:
    """Append one signed head to the witness at `path` (created owner-only), durably, in
    one `write` (appends of one line are not interleaved with other writers').

    Raises:
        UserError: the witness cannot be written.
    """
    record = {"log": log_id, "db": str(db.resolve()), **head}
    line = (json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode()
    try:
        private_folder(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise UserError(f"{path}: cannot append the audit log's signed head to its witness "
                        f"({e.strerror}); make it writable (append-only is enough) or set "
                        f"${WITNESS_ENV}") from None


def read(path: Path, log_id: str, db: Path) -> tuple[list[WitnessLine], list[WitnessLine],
                                                      list[str]]:
    """The witness's lines for the log `log_id`, the lines of other logs kept for the same
    database file (that log was deleted or replaced), and unreadable lines described."""
    mine: list[WitnessLine] = []
    others: list[WitnessLine] = []
    bad: list[str] = []
    where = str(db.resolve())
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                entry = WitnessLine(line=n, log=str(record.pop("log")),
                                    db=str(record.pop("db")), head=record)
            except (ValueError, KeyError, TypeError, AttributeError):
                bad.append(f"{path}:{n}: not a witness line")
                continue
            if entry.log == log_id:
                mine.append(entry)
            elif entry.db == where:
                others.append(entry)
    return mine, others, bad


@dataclass(frozen=True, kw_only=True)
class Witnessed:
    """What the witness file says of one log."""

    path: Path | None = None
    """The witness file read; None when there is none."""
    heads: list[WitnessLine] = field(default_factory=list)
    """This log's heads."""
    other_logs: list[WitnessLine] = field(default_factory=list)
    """Heads of other logs once kept in the same database file."""
    unreadable: list[str] = field(default_factory=list)
    """Lines that are not witness lines, described."""


def gather(path: Path | None, log_id: str, db: Path, warnings: list[str]) -> Witnessed:
    """What the witness at `path` holds for the log `log_id` in `db`; what it cannot tell
    is added to `warnings`.

    Raises:
        UserError: the witness exists but cannot be read.
    """
    if path is None or not path.exists():
        where = "configured" if path is None else f"at {path}"
        warnings.append(f"no witness {where}: cutting the newest records together with "
                        "their heads, or emptying the log, would go unseen")
        return Witnessed()
    try:
        mine, others, bad = read(path, log_id, db)
    except OSError as e:
        raise UserError(f"{path}: cannot read the audit witness ({e.strerror})") from None
    return Witnessed(path=path, heads=mine, other_logs=others, unreadable=bad)
