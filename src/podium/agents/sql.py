"""SQL agents: one query against any database SQLAlchemy can reach.

Read-only unless the agent says `write=True`, and enforced by the database where it can
be, not by looking at the query alone:

- every query is first checked to be a single read statement (SELECT, WITH, VALUES,
  EXPLAIN, SHOW, …) with no data-changing keyword anywhere outside strings and comments;
- SQLite files are opened read-only (`mode=ro`) with `PRAGMA query_only` on;
- PostgreSQL runs the query in a `READ ONLY` transaction;
- every other database runs it in a transaction that is rolled back.

Errors::

    UserError          the agent or the task is misconfigured, or a read-only agent was
                       asked to write
    RunError
    └── SQLError       the database refused the query or could not be reached
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import math
import os
import uuid
from collections.abc import Collection, Iterator, Mapping
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.errors import SQLError as SQLError
from podium.errors import UserError
from podium.secrets import Secret, as_secret, scrub

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import URL, Connection, make_url
    from sqlalchemy.exc import (
        ArgumentError,
        DBAPIError,
        InterfaceError,
        OperationalError,
        SQLAlchemyError,
    )
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("SQL agents need SQLAlchemy: pip install 'sqlalchemy>=2.0'") from e

_TASK_KEYS = frozenset({"query", "params"})
_READ_FIRST = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "EXPLAIN", "SHOW", "DESCRIBE",
                         "DESC", "PRAGMA"})
_WRITE_WORDS = frozenset({
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "INTO", "CREATE", "DROP", "ALTER",
    "TRUNCATE", "RENAME", "GRANT", "REVOKE", "ATTACH", "DETACH", "COPY", "CALL", "EXEC",
    "EXECUTE", "LOCK", "UNLOCK", "VACUUM", "REINDEX", "CLUSTER", "COMMIT", "ROLLBACK",
    "SAVEPOINT", "RELEASE", "LOAD", "IMPORT", "REFRESH", "NOTIFY", "LISTEN",
})
Dialect = Literal["standard", "mysql", "postgres"]
_LOCK_CLAUSE = frozenset({"FOR", "KEY"})  # SELECT … FOR UPDATE / FOR NO KEY UPDATE locks only


# -- the read-only check ------------------------------------------------------------------


def _skip_string(sql: str, i: int, quote_char: str, backslash: bool) -> int:
    """The index just past the quoted text that starts at `i`."""
    i += 1
    while i < len(sql):
        c = sql[i]
        if backslash and c == "\\":
            i += 2
            continue
        if c == quote_char:
            if sql.startswith(quote_char, i + 1):  # a doubled quote is an escaped quote
                i += 2
                continue
            return i + 1
        i += 1
    return i


def _dollar_tag(sql: str, i: int) -> str | None:
    """The PostgreSQL dollar-quote tag (`$$`, `$body$`) starting at `i`, if one does."""
    end = sql.find("$", i + 1)
    if end < 0:
        return None
    inner = sql[i + 1:end]
    if inner and not (inner.replace("_", "a").isalnum() and not inner[0].isdigit()):
        return None
    return sql[i:end + 1]


def _comment_end(sql: str, i: int, dialect: Dialect) -> int | None:
    """Where the comment starting at `i` ends, or None when no comment starts there."""
    if sql.startswith("--", i):
        # MySQL reads `--` as a comment only before whitespace: `1--1` is `1 - -1`.
        if dialect == "mysql" and i + 2 < len(sql) and not sql[i + 2].isspace():
            return None
        return _line_end(sql, i)
    if dialect == "mysql" and sql[i] == "#":
        return _line_end(sql, i)
    # MySQL executes the content of `/*! … */`: there it is code, not a comment.
    if sql.startswith("/*", i) and not (dialect == "mysql" and sql.startswith("/*!", i)):
        end = sql.find("*/", i + 2)
        return len(sql) if end < 0 else end + 2
    return None


def _line_end(sql: str, i: int) -> int:
    end = sql.find("\n", i)
    return len(sql) if end < 0 else end + 1


def _tokens(sql: str, dialect: Dialect) -> Iterator[str]:
    """Upper-cased words and the punctuation `;`, `=` of `sql`, outside strings, quoted
    identifiers and comments, as `dialect` quotes them."""
    i, n = 0, len(sql)
    mysql = dialect == "mysql"
    while i < n:
        c = sql[i]
        if (end := _comment_end(sql, i, dialect)) is not None:
            i = end
        elif c == "'" or c == '"' or (mysql and c == "`"):
            i = _skip_string(sql, i, c, mysql and c != "`")
        elif dialect == "postgres" and c == "$" and (tag := _dollar_tag(sql, i)) is not None:
            end = sql.find(tag, i + len(tag))
            i = n if end < 0 else end + len(tag)
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            word = sql[i:j].upper()
            if dialect == "postgres" and word == "E" and sql.startswith("'", j):
                i = _skip_string(sql, j, "'", True)  # E'…' strings take backslash escapes
                continue
            yield word
            i = j
        else:
            if c in ";=":
                yield c
            i += 1


def _violation(words: list[str]) -> str | None:
    """Why these tokens are not one read-only statement, or None when they are."""
    if ";" in words and any(w != ";" for w in words[words.index(";"):]):
        return "it holds more than one statement"
    if not words or words[0] == ";":
        return "it is empty"
    first = words[0]
    if first not in _READ_FIRST:
        return f"it starts with {first}"
    for before, word in zip(["", *words], words, strict=False):
        if word in _WRITE_WORDS and not (word == "UPDATE" and before in _LOCK_CLAUSE):
            return f"it contains {word}"
    if first == "PRAGMA" and "=" in words:
        return "it sets a PRAGMA"
    return None


def read_only_violation(sql: str) -> str | None:
    """Why `sql` is not a single read-only statement, or None when it is.

    The statement is read as standard SQL, as MySQL (backslash escapes, `#` comments,
    executable `/*! */` comments) and as PostgreSQL (dollar quoting, `E''` strings); a
    write found by any reading refuses it, so a dialect's quoting cannot hide one. The
    check refuses rather than guesses: a query it refuses needs an agent with
    `write=True`.
    """
    for dialect in ("standard", "mysql", "postgres"):
        reason = _violation(list(_tokens(sql, dialect)))
        if reason is not None:
            return reason
    return None


# -- results as JSON ------------------------------------------------------------------------


def _json_value(value: Any) -> JSON:
    """A database value as JSON: dates as ISO 8601, decimals as numbers, bytes as base64."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        # Exactness past float's 15 significant digits is rare in query results; a number
        # is what every consumer (templates, schemas, LLMs) expects.
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(v) for v in value]
    return str(value)


# -- the agent ------------------------------------------------------------------------------


class SQLAgent(Agent):
    """Runs one SQL query and returns `{"rows": [{column: value}, …], "rowcount": n}`.

    The query is the task's `with: {query: …}`, or else the agent's `query`. Parameters
    are the agent's `params` updated by the task's `with: {params: {…}}`, and are always
    bound (`:name` in the query), never formatted into it; a list value binds as a list,
    for `IN :ids`. Values come back JSON-safe: dates and times as ISO 8601 strings,
    decimals as numbers, bytes as base64. For statements that return no rows, `rowcount`
    is the number of rows changed.

    Blocking drivers run in a worker thread; async drivers (`sqlite+aiosqlite`,
    `postgresql+asyncpg`) run on the event loop and need `greenlet`. Each task opens its
    own connection and closes it, so nothing is left open between tasks or event loops.

    Args:
        name: the agent's name.
        url: a SQLAlchemy URL, a `Secret` holding one, or a reference (`env:DB_URL`,
            `file:/run/secrets/db_url`). Shown only with its password hidden.
        query: the default query, when tasks do not give theirs.
        write: allow statements that change data or schema, committed on success.
            Only the agent can allow it: a task's `with:` values may come from upstream
            outputs, which must not be able to turn a reader into a writer.
        params: default bind parameters.
        max_rows: the most rows a query may return; more fail the task rather than
            truncate silently (a journaled output should stay small: aggregate in SQL).
        description: what the agent is for, for routing and listings.
        skills: skill tags, for routing.

    Raises:
        UserError: the URL cannot be read, or names a database SQLAlchemy does not know.
    """

    def __init__(self, name: str, url: str | Secret | URL, query: str | None = None, *,
                 write: bool = False, params: Mapping[str, JSON] | None = None,
                 max_rows: int = 10_000, description: str = "",
                 skills: Collection[str] = ()) -> None:
        self.name = name
        self.description = description
        self.skills = tuple(skills)
        self.query = query
        self.write = write
        self.params: dict[str, JSON] = dict(params or {})
        if max_rows < 1:
            raise UserError(f"SQL agent {name!r}: max_rows must be at least 1, not {max_rows}")
        self.max_rows = max_rows
        if isinstance(url, URL):
            parsed = url  # a URL object shows itself with its password hidden
        else:
            try:
                parsed = make_url(as_secret(url).reveal())
            except ArgumentError:
                # SQLAlchemy's message quotes the whole URL, password included.
                raise UserError(f"SQL agent {name!r}: the database URL cannot be read; "
                                "expected dialect+driver://user:password@host/database") from None
        self._password = Secret(parsed.password) if parsed.password else None
        self.url = parsed.render_as_string(hide_password=True)
        """The database URL with its password hidden, for messages."""
        try:
            self._is_async = bool(parsed.get_dialect().is_async)
        except (ArgumentError, SQLAlchemyError):
            raise UserError(f"SQL agent {name!r}: SQLAlchemy knows no database "
                            f"{parsed.drivername!r} (in {self.url!r})") from None
        self._dialect = parsed.get_backend_name()
        self._connect_url = parsed if write else self._read_only_url(parsed)

    def _read_only_url(self, url: URL) -> URL:
        """For a SQLite file, the URL that opens it read-only; other URLs as they are."""
        if self._dialect != "sqlite" or url.database in (None, "", ":memory:") or (
                url.query.get("mode") == "memory"):
            return url
        query = {**url.query, "mode": "ro", "uri": "true"}
        if str(url.query.get("uri", "")).lower() in ("true", "1"):
            return url.update_query_dict(query)
        path = os.path.abspath(url.database or "")
        return url.set(database=f"file:{quote(path)}", query=query)

    def __repr__(self) -> str:
        mode = "write" if self.write else "read-only"
        return f"SQLAgent({self.name!r}, {self.url!r}, {mode})"

    def _request(self, args: Mapping[str, JSON]) -> tuple[str, dict[str, JSON]]:
        unknown = sorted(set(args) - _TASK_KEYS)
        if unknown:
            raise UserError(f"SQL agent {self.name!r} takes `with:` keys query and params, "
                            f"not {', '.join(map(repr, unknown))}")
        query = args.get("query", self.query)
        if not isinstance(query, str) or not query.strip():
            raise UserError(f"SQL agent {self.name!r} has no query: give the agent a `query` "
                            "or the task `with: {query: ...}`")
        extra = args.get("params") or {}
        if not isinstance(extra, Mapping):
            raise UserError(f"SQL agent {self.name!r}: `with: params` must be a mapping of "
                            f"names to values, not {type(extra).__name__}")
        return query, {**self.params, **extra}

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        query, params = self._request(task.args)
        if not self.write and (reason := read_only_violation(query)) is not None:
            raise UserError(f"SQL agent {self.name!r} is read-only and refused the query: "
                            f"{reason}. Give the agent `write: true` to allow writes")
        try:
            if self._is_async:
                return await self._run_async(query, params)
            return await asyncio.to_thread(self._run_blocking, query, params)
        except SQLAlchemyError as e:
            raise self._error(e) from None
        except ImportError as e:
            raise UserError(f"SQL agent {self.name!r}: the database driver for {self.url!r} "
                            f"is not installed ({e.name or e}); install it, e.g. "
                            "psycopg for postgresql+psycopg://") from None

    def _engine_options(self) -> dict[str, Any]:
        # One connection per task, closed at its end: no pool outlives the task, nor the
        # event loop an async driver's connection belongs to.
        return {"poolclass": NullPool}

    def _run_blocking(self, query: str, params: dict[str, JSON]) -> JSON:
        engine = sa.create_engine(self._connect_url, **self._engine_options())
        try:
            self._on_connect(engine)
            with engine.connect() as conn:
                return self._execute(conn, query, params)
        finally:
            engine.dispose()

    async def _run_async(self, query: str, params: dict[str, JSON]) -> JSON:
        engine = create_async_engine(self._connect_url, **self._engine_options())
        try:
            self._on_connect(engine.sync_engine)
            async with engine.connect() as conn:
                return await conn.run_sync(self._execute, query, params)
        finally:
            await engine.dispose()

    def _on_connect(self, engine: sa.Engine) -> None:
        if self.write or self._dialect != "sqlite":
            return

        @sa.event.listens_for(engine, "connect")
        def query_only(dbapi_connection: Any, record: Any) -> None:
            # Also covers `:memory:` and URIs whose mode the user chose.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only = ON")
            cursor.close()

    def _statement(self, query: str, params: Mapping[str, JSON]) -> sa.TextClause:
        clause = sa.text(query)
        for key, value in params.items():
            if isinstance(value, list | tuple):
                try:
                    clause = clause.bindparams(sa.bindparam(key, expanding=True))
                except ArgumentError:
                    continue  # not used by the query: unused parameters are ignored
        return clause

    def _execute(self, conn: Connection, query: str, params: dict[str, JSON]) -> JSON:
        if not self.write and self._dialect == "postgresql":
            conn.execute(sa.text("SET TRANSACTION READ ONLY"))
        result = conn.execute(self._statement(query, params), params)
        if result.returns_rows:
            keys = list(result.keys())
            fetched = result.fetchmany(self.max_rows + 1)
            result.close()
            if len(fetched) > self.max_rows:
                raise SQLError(f"SQL agent {self.name!r}: the query returned more than "
                               f"{self.max_rows} rows; aggregate or add a LIMIT, or raise "
                               "the agent's max_rows")
            rows = [{k: _json_value(v) for k, v in zip(keys, row, strict=True)}
                    for row in fetched]
            output = {"rows": rows, "rowcount": len(rows)}
        else:
            output = {"rows": [], "rowcount": max(result.rowcount, 0)}
        if self.write:
            conn.commit()
        else:
            conn.rollback()
        return output

    def _error(self, e: SQLAlchemyError) -> SQLError:
        orig = getattr(e, "orig", None)
        cause = orig if isinstance(orig, BaseException) else e
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        detail = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
        message = f"SQL agent {self.name!r} on {self.url!r} failed: {detail}"
        return SQLError(scrub(message, self._password), retryable=self._retryable(e, text))

    def _retryable(self, e: SQLAlchemyError, text: str) -> bool:
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        if not isinstance(e, OperationalError | InterfaceError):
            return False  # programming, integrity and data errors fail the same way again
        if self._dialect == "sqlite":
            # sqlite3 reports a missing table or a read-only file as OperationalError too.
            return "locked" in text or "busy" in text
        return True
