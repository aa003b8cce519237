"""Statements as values: how the journal's logic is written once for SQLite and PostgreSQL.

The logic (`store/base.py`, the data keys in `store/keys.py`) is written as *flows*:
generators that yield a `Query` and receive its result, with no I/O of their own (in the
manner of httpx's `Auth.auth_flow`). A backend *drives* a flow: SQLite runs its statements
on a `sqlite3` connection, synchronously (`run_sqlite`); PostgreSQL awaits them on a
psycopg connection (`run_async`). A flow that fails raises out of its driver; an error a
statement raises is thrown into the flow at the `yield`, so a flow may catch it.

SQL is written once, with `?` placeholders and a few tokens a `Dialect` replaces: `{p}`
before every table name (`podium_` on PostgreSQL, whose tables share a database with an
application), and the clauses only one dialect has (row locks, an upsert's target).

Example:
    ```python
    def last_seq(run_id: str) -> Flow[int | None]:
        row = yield one("SELECT last_seq FROM {p}runs WHERE run_id = ?", run_id)
        return None if row is None else row[0]
    ```
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]


class Query(NamedTuple):
    """One statement a flow asks its driver to run, and what it wants back."""

    sql: str
    """The statement, in the dialect-neutral form (`?` placeholders, `{p}` tokens)."""
    params: Sequence[Any] = ()
    """Its parameters; for `many`, one sequence of parameters per row."""
    want: Literal["one", "all", "count", "many"] = "one"
    """`one`: the first row or None; `all`: every row; `count`: the rows changed;
    `many`: run once per row of `params`, nothing back."""


Flow = Generator[Query, Any, T]
"""A journal operation as statements: yields `Query`s, receives their results, returns T."""
_new = tuple.__new__  # makes a Query without NamedTuple's Python-level __new__ (hot path)


def one(sql: str, *params: Any) -> Query:
    """A statement whose first row (or None) the flow receives."""
    return _new(Query, (sql, params, "one"))


def rows(sql: str, *params: Any) -> Query:
    """A statement whose rows the flow receives."""
    return _new(Query, (sql, params, "all"))


def count(sql: str, *params: Any) -> Query:
    """A statement whose count of changed rows the flow receives."""
    return _new(Query, (sql, params, "count"))


def many(sql: str, params: Sequence[Sequence[Any]]) -> Query:
    """A statement run once per row of `params`."""
    return _new(Query, (sql, params, "many"))


class Dialect:
    """How one database spells the neutral SQL: its table prefix, placeholder and clauses.

    Args:
        tokens: what each `{token}` becomes (`{p}` the table prefix, ...).
        placeholder: what `?` becomes (`%s` for psycopg, which then needs `%` doubled).
    """

    def __init__(self, tokens: dict[str, str], placeholder: str = "?") -> None:
        self.tokens = tokens
        self.placeholder = placeholder
        self._cache: dict[str, str] = {}

    def __call__(self, sql: str) -> str:
        """`sql` in this dialect (translated once per distinct statement)."""
        done = self._cache.get(sql)
        if done is None:
            done = sql
            for token, text in self.tokens.items():
                done = done.replace(token, text)
            if self.placeholder != "?":
                done = done.replace("%", "%%").replace("?", self.placeholder)
            self._cache[sql] = done
        return done


SQLITE = Dialect({"{p}": "", "{for_update}": "", "{for_share}": "", "{new_key}": "",
                  "{sealed}": "NULL", "{is_clear}": "typeof(data) = 'text'",
                  "{started}": "rowid"})
"""SQLite: no table prefix; writers are serialised, so no row locks."""
POSTGRES = Dialect({"{p}": "podium_", "{for_update}": " FOR UPDATE",
                    "{for_share}": " FOR SHARE",
                    "{new_key}": " ON CONFLICT (owner) WHERE wrapped IS NOT NULL DO NOTHING",
                    "{sealed}": "sealed", "{is_clear}": "data IS NOT NULL",
                    "{started}": "n"}, "%s")
"""PostgreSQL: tables named `podium_*`; payloads in `data` (clear) or `sealed`."""


def run_sqlite(db: sqlite3.Connection, flow: Flow[T]) -> T:
    """Drive `flow` on a SQLite connection: in the caller's transaction, if one is open."""
    known = SQLITE._cache
    try:
        query = next(flow)
        while True:
            sql, params, want = query
            try:
                sql = known.get(sql) or SQLITE(sql)
                if want == "many":
                    db.executemany(sql, params)
                    result: Any = None
                else:
                    cursor = db.execute(sql, params)
                    result = (cursor.fetchone() if want == "one"
                              else cursor.fetchall() if want == "all"
                              else cursor.rowcount)
            except Exception as e:
                query = flow.throw(e)
            else:
                query = flow.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


async def run_async(flow: Flow[T], step: Callable[[Query], Awaitable[Any]]) -> T:
    """Drive `flow` with an async `step` that runs one query and returns its result."""
    try:
        query = next(flow)
        while True:
            try:
                result = await step(query)
            except Exception as e:
                query = flow.throw(e)
            else:
                query = flow.send(result)
    except StopIteration as done:
        value: T = done.value
        return value
