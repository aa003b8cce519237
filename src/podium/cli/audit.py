"""`podium audit verify` and `podium audit export`, as plain functions the CLI wires in."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from podium import config
from podium.errors import PodiumError
from podium.security.audit import AuditLog


def log_path(db: Path | None) -> Path:
    """The audit log's file, as the commands find it: `$PODIUM_AUDIT`, else `db`, else the
    default journal's."""
    return config.audit_path(db) or config.database_path()


def audit_verify_command(db: Path | None, public_key: Path | None = None) -> int:
    """Verify the audit log in `$PODIUM_AUDIT`, else `db`, else the journal's database (where
    the engine writes it), and print a report.

    Returns:
        0 if the log is intact, 1 if tampering was found, 2 if it could not be checked.
    """
    console = Console(highlight=False)
    db = config.audit_path(db)
    if db is not None and not db.exists():
        Console(stderr=True, highlight=False).print(f"[red]audit verify:[/] no database at "
                                                    f"{escape(str(db))}")
        return 2
    try:
        with AuditLog(db, sign_on_close=False) as log:
            report = log.verify(public_key=public_key)
    except (PodiumError, ValueError, OSError) as e:
        Console(stderr=True, highlight=False).print(f"[red]audit verify:[/] {escape(str(e))}")
        return 2
    style = "green" if report.ok else "bold red"
    head = f", latest signed head #{report.head.seq}" if report.head else ""
    console.print(f"[{style}]{'OK' if report.ok else 'TAMPERED'}[/]: {report.records} "
                  f"records, chain to #{report.chain_length}, {report.heads_checked} signed "
                  f"heads checked{head}")
    for finding in report.findings:
        console.print(f"  [red]#{finding.seq} {finding.kind}[/]: {escape(finding.message)}")
    for warning in report.warnings:
        console.print(f"  [yellow]warning[/]: {escape(warning)}")
    return 0 if report.ok else 1


def audit_export_command(db: Path | None, out: Path | None) -> int:
    """Write the audit log (found as `audit_verify_command` finds it) as JSON lines to
    `out`, or to standard output.

    Returns:
        0 on success, 2 if the log could not be read or the file written.
    """
    db = config.audit_path(db)
    try:
        with AuditLog(db, sign_on_close=False) as log:
            n = log.export(out if out is not None else sys.stdout)
    except (PodiumError, OSError) as e:
        Console(stderr=True, highlight=False).print(f"[red]audit export:[/] {escape(str(e))}")
        return 2
    if out is not None:
        Console(stderr=True, highlight=False).print(f"{n} audit records written to {out}")
    return 0
