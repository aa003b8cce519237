"""API tokens: bearer tokens that authenticate callers of `podium mcp serve --http`, each
bound to one principal.

A token is `pdm_ID_SECRET`, shown once when issued (`podium tokens issue PRINCIPAL`). The
store keeps its id, principal and a SHA-256 digest, never the token, in
`$PODIUM_HOME/tokens.db` (readable by its owner only). The secret carries 256 random bits,
so a fast digest is enough: guessing is hopeless, and a stolen database gives no token.
Revoking (`podium tokens revoke ID`) takes effect at the next call.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from podium import config
from podium.core.principal import PrincipalKind
from podium.errors import UserError

PREFIX = "pdm_"
_SCHEMA = """CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL, kind TEXT NOT NULL, digest TEXT NOT NULL,
    created_at REAL NOT NULL, created_by TEXT NOT NULL, revoked_at REAL)"""


@dataclass(frozen=True, kw_only=True)
class TokenRecord:
    """What the store knows of a token: never the token itself."""

    id: str
    """The token's public id (the part after `pdm_`)."""
    principal: str
    """Whom the token authenticates as."""
    kind: PrincipalKind
    """`user` or `service`."""
    created_at: float
    """When it was issued (Unix time)."""
    created_by: str
    """Who issued it."""
    revoked: bool = False
    """Whether it was revoked."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The tokens of one Podium home.

    Args:
        path: the database; None for `$PODIUM_HOME/tokens.db`.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else config.home() / "tokens.db"

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Created owner-only before SQLite opens it: digests are not secrets, but who
            # holds a token is nobody else's business.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute(_SCHEMA)
        return db

    def issue(self, principal: str, *, kind: PrincipalKind = "user", by: str
              ) -> tuple[TokenRecord, str]:
        """A new token for `principal`: its record, and the token (shown once).

        Raises:
            UserError: no principal.
        """
        if not principal.strip():
            raise UserError("a token needs a principal: podium tokens issue PRINCIPAL")
        token_id = secrets.token_hex(6)
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(id=token_id, principal=principal, kind=kind,
                             created_at=time.time(), created_by=by)
        with closing(self._connect()) as db:
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                       (token_id, principal, kind, _digest(token), record.created_at, by))
        return record, token

    def verify(self, token: str) -> TokenRecord | None:
        """The record of a valid, unrevoked token; None for anything else."""
        token_id, sep, _ = token.removeprefix(PREFIX).partition("_")
        if not token.startswith(PREFIX) or not sep or not self.path.exists():
            return None
        with closing(self._connect()) as db:
            row = db.execute("SELECT principal, kind, digest, created_at, created_by FROM "
                             "tokens WHERE id = ? AND revoked_at IS NULL",
                             (token_id,)).fetchone()
        if row is None or not hmac.compare_digest(row[2], _digest(token)):
            return None
        return TokenRecord(id=token_id, principal=row[0],
                           kind="service" if row[1] == "service" else "user",
                           created_at=row[3], created_by=row[4])

    def get(self, token_id: str) -> TokenRecord | None:
        """The record of the token with this id, revoked or not."""
        return next((r for r in self.list(revoked=True) if r.id == token_id), None)

    def revoke(self, token_id: str) -> bool:
        """Revoke a token; False if there is no such unrevoked token."""
        with closing(self._connect()) as db:
            done = db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at "
                              "IS NULL", (time.time(), token_id))
            return done.rowcount == 1

    def list(self, *, revoked: bool = False) -> list[TokenRecord]:
        """The tokens, oldest first; the revoked ones too if `revoked`."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, principal, kind, created_at, created_by, revoked_at "
                              "FROM tokens ORDER BY created_at").fetchall()
        return [TokenRecord(id=r[0], principal=r[1],
                            kind="service" if r[2] == "service" else "user",
                            created_at=r[3], created_by=r[4], revoked=r[5] is not None)
                for r in rows if revoked or r[5] is None]
