"""`podium tokens issue|list|revoke`: the API tokens callers of `podium mcp serve --http`
authenticate with.

Under the access policy: issuing a token for PRINCIPAL needs `token:issue` on it, revoking
one `token:revoke` on its principal; `list` shows the tokens whose principal the caller
may revoke. Issuing and revoking are audited (`token.issue`, `token.revoke`; subject: the
principal, detail: the token's id).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from podium.cli._shared import PolicyOption, acting, fail, out

app = typer.Typer(no_args_is_help=True,
                  help="API tokens for `podium mcp serve --http`: issue, list, revoke.")

TokensDb = Annotated[Path | None, typer.Option(
    "--tokens-db", help="Token database (default: $PODIUM_HOME/tokens.db).")]


@app.command("issue")
def issue(
    principal: Annotated[str, typer.Argument(help="Whom the token authenticates as.")],
    service: Annotated[bool, typer.Option(
        "--service", help="The principal is a service, not a person.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    db: TokensDb = None,
    policy: PolicyOption = None,
) -> None:
    """Issue a token for PRINCIPAL; it is printed once, and only its digest is kept."""
    from podium.security.tokens import TokenStore

    with acting(None, policy) as access:
        access.check("token:issue", principal)
        record, token = TokenStore(db).issue(principal, kind="service" if service else "user",
                                             by=access.principal.id)
        access.record("token.issue", principal, detail=record.id)
    if as_json:
        out.print_json(json.dumps({**asdict(record), "token": token}))
    else:
        out.print(token)


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    db: TokensDb = None,
    policy: PolicyOption = None,
) -> None:
    """Tokens not revoked whose principal you may revoke tokens of: id, principal, issued."""
    from rich.table import Table

    from podium.core.state import iso
    from podium.security.tokens import TokenStore

    with acting(None, policy) as access:
        shown = [r for r in TokenStore(db).list() if access.allows("token:revoke", r.principal)]
    if as_json:
        out.print_json(json.dumps([asdict(r) for r in shown]))
        return
    table = Table("id", "principal", "kind", "issued", "by")
    for r in shown:
        table.add_row(r.id, r.principal, r.kind, iso(r.created_at), r.created_by)
    out.print(table)


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id.")],
    db: TokensDb = None,
    policy: PolicyOption = None,
) -> None:
    """Revoke a token: calls with it are refused from then on."""
    from podium.security.tokens import TokenStore

    store = TokenStore(db)
    with acting(None, policy) as access:
        record = store.get(token_id)
        if record is None or record.revoked:
            raise fail(f"no token {token_id!r} to revoke; `podium tokens list` shows them")
        access.check("token:revoke", record.principal)
        store.revoke(token_id)
        access.record("token.revoke", record.principal, detail=token_id)
    out.print(f"revoked {token_id} ({record.principal})")
