"""`podium audit verify|export`: the tamper-evident audit log, checked or written out.

Under the access policy: `verify` needs `audit:verify` on the log's file, `export`
`audit:export`. The log is the one `podium run` writes: `$PODIUM_AUDIT`, else the
journal's SQLite file (`--db`), else the default journal's (also with a PostgreSQL
journal: the audit log stays local).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from podium import config
from podium.cli._shared import DbOption, PolicyOption, acting, audit_db, err, out

app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")


@app.command("verify")
def audit_verify(
    db: DbOption = None,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="Pinned Ed25519 public key (PEM) the heads must be signed with.")
    ] = None,
    policy: PolicyOption = None,
) -> None:
    """Check the audit chain and its signed heads; exit 1 if anything was tampered with."""
    with acting(db, policy) as access:
        access.check("audit:verify", str(log_path(audit_db(db))))
    raise typer.Exit(audit_verify_command(audit_db(db), public_key))


@app.command("export")
def audit_export(
    db: DbOption = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="JSON-lines file (default: standard output).")] = None,
    policy: PolicyOption = None,
) -> None:
    """Write the audit log as JSON lines for a SIEM."""
    with acting(db, policy) as access:
        access.check("audit:export", str(log_path(audit_db(db))))
    raise typer.Exit(audit_export_command(audit_db(db), out_file))


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
    from podium.errors import PodiumError
    from podium.security.audit import AuditLog

    db = config.audit_path(db)
    if db is not None and not db.exists():
        err.print(f"[red]audit verify:[/] no database at {escape(str(db))}", markup=True)
        return 2
    try:
        with AuditLog(db, sign_on_close=False) as log:
            report = log.verify(public_key=public_key)
    except (PodiumError, ValueError, OSError) as e:
        err.print(f"[red]audit verify:[/] {escape(str(e))}", markup=True)
        return 2
    style = "green" if report.ok else "bold red"
    head = f", latest signed head #{report.head.seq}" if report.head else ""
    out.print(f"[{style}]{'OK' if report.ok else 'TAMPERED'}[/]: {report.records} "
              f"records, chain to #{report.chain_length}, {report.heads_checked} signed "
              f"heads checked{head}", markup=True)
    for finding in report.findings:
        out.print(f"  [red]#{finding.seq} {finding.kind}[/]: {escape(finding.message)}",
                  markup=True)
    for warning in report.warnings:
        out.print(f"  [yellow]warning[/]: {escape(warning)}", markup=True)
    return 0 if report.ok else 1


def audit_export_command(db: Path | None, out_file: Path | None) -> int:
    """Write the audit log (found as `audit_verify_command` finds it) as JSON lines to
    `out_file`, or to standard output.

    Returns:
        0 on success, 2 if the log could not be read or the file written.
    """
    from podium.errors import PodiumError
    from podium.security.audit import AuditLog

    db = config.audit_path(db)
    try:
        with AuditLog(db, sign_on_close=False) as log:
            n = log.export(out_file if out_file is not None else sys.stdout)
    except (PodiumError, OSError) as e:
        err.print(f"[red]audit export:[/] {escape(str(e))}", markup=True)
        return 2
    if out_file is not None:
        err.print(f"{n} audit records written to {out_file}")
    return 0
