"""The built-in SQL, HTTP and email agents against real parts on loopback: SQLite files,
a PostgreSQL server (when one can be started), an HTTP server and an SMTP server. Last,
the three in one workflow, whose journal must not hold a secret anywhere."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

import podium
from podium.agents.email import EmailAgent, EmailError, message_id
from podium.agents.http import HTTPAgent, HTTPError, retry_after_seconds
from podium.agents.sql import SQLAgent, SQLError
from podium.core.agent import JSON, TaskContext, TaskInput
from podium.errors import UserError
from podium.secrets import Secret
from tests.integration._postgres import PostgresServer

TOKEN = "tok-3f9Qz!7xLr/2"
PASSWORD = "pw-Vb8#kq2@Zt"


def _ctx(key: str = "run-1:task") -> TaskContext:
    return TaskContext(run_id="run-1", task_id="task", attempt=1, idempotency_key=key,
                       inputs={}, outputs={})


async def _run(agent: podium.Agent, **args: JSON) -> Any:
    return await agent.run(TaskInput(args=args), _ctx())


# -- SQL ------------------------------------------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A SQLite file with three customers."""
    path = tmp_path / "shop.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT,"
                   " balance REAL)")
        db.executemany("INSERT INTO customers (name, email, balance) VALUES (?, ?, ?)", [
            ("Ada", "ada@example.com", 120.5), ("Bob", "bob@example.com", 0.0),
            ("Cy", "cy@example.com", 42.0)])
        db.commit()
    return path


def _count(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        (n,) = conn.execute("SELECT COUNT(*) FROM customers").fetchone()
        return int(n)


async def test_sql_reads_rows_with_bound_parameters(shop: Path) -> None:
    agent = SQLAgent("db", f"sqlite:///{shop}",
                     "SELECT name, balance FROM customers WHERE balance > :min ORDER BY id",
                     params={"min": 100})
    assert await _run(agent) == {"rows": [{"name": "Ada", "balance": 120.5}], "rowcount": 1}
    out = await _run(agent, params={"min": 1})
    assert [r["name"] for r in out["rows"]] == ["Ada", "Cy"] and out["rowcount"] == 2
    listed = await _run(agent, query="SELECT name FROM customers WHERE id IN :ids ORDER BY id",
                        params={"ids": [1, 3]})
    assert listed["rows"] == [{"name": "Ada"}, {"name": "Cy"}]


async def test_sql_injection_through_a_parameter_matches_nothing(shop: Path) -> None:
    agent = SQLAgent("db", f"sqlite:///{shop}", "SELECT * FROM customers WHERE name = :name")
    assert await _run(agent, params={"name": "x' OR 1=1 --"}) == {"rows": [], "rowcount": 0}
    assert await _run(agent, params={"name": "Ada'; DELETE FROM customers; --"}) == {
        "rows": [], "rowcount": 0}
    assert _count(shop) == 3


@pytest.mark.parametrize("query", [
    "DELETE FROM customers",
    "UPDATE customers SET balance = 0",
    "INSERT INTO customers (name) VALUES ('Eve')",
    "DROP TABLE customers",
    "SELECT 1; DELETE FROM customers",
    "WITH gone AS (SELECT 1) DELETE FROM customers",
    "PRAGMA query_only = OFF",
])
async def test_sql_refuses_writes_unless_allowed(shop: Path, query: str) -> None:
    agent = SQLAgent("db", f"sqlite:///{shop}")
    with pytest.raises(UserError, match=r"'db' is read-only.*write: true"):
        await _run(agent, query=query)
    assert _count(shop) == 3


async def test_sql_read_only_is_enforced_by_sqlite_itself(shop: Path) -> None:
    # `PRAGMA name(value)` sets, yet reads like a call: the check lets it through and
    # the read-only connection is what stops it.
    agent = SQLAgent("db", f"sqlite:///{shop}")
    with pytest.raises(SQLError, match="readonly database"):
        await _run(agent, query="PRAGMA user_version(7)")
    with closing(sqlite3.connect(shop)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (0,)


async def test_sql_read_only_never_creates_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    with pytest.raises(SQLError, match="unable to open database file"):
        await _run(SQLAgent("db", f"sqlite:///{missing}"), query="SELECT 1")
    assert not missing.exists()


async def test_sql_writes_when_allowed(shop: Path) -> None:
    agent = SQLAgent("db", f"sqlite:///{shop}", write=True)
    out = await _run(agent, query="INSERT INTO customers (name, email, balance)"
                     " VALUES (:name, :email, 1)", params={"name": "x' OR 1=1 --", "email": "e"})
    assert out == {"rows": [], "rowcount": 1}
    assert _count(shop) == 4
    changed = await _run(agent, query="UPDATE customers SET balance = balance + 1"
                         " WHERE balance > 1 RETURNING name")
    assert changed["rowcount"] == 2 and {r["name"] for r in changed["rows"]} == {"Ada", "Cy"}
    with closing(sqlite3.connect(shop)) as db:
        assert db.execute("SELECT balance FROM customers WHERE name = 'Ada'").fetchone() == (
            121.5,)


async def test_sql_async_driver(shop: Path) -> None:
    pytest.importorskip("greenlet")
    pytest.importorskip("aiosqlite")
    agent = SQLAgent("db", f"sqlite+aiosqlite:///{shop}", "SELECT COUNT(*) AS n FROM customers")
    assert await _run(agent) == {"rows": [{"n": 3}], "rowcount": 1}
    with pytest.raises(SQLError, match="readonly database"):
        await _run(agent, query="PRAGMA user_version(7)")


async def test_sql_errors_and_limits(shop: Path) -> None:
    agent = SQLAgent("db", f"sqlite:///{shop}", max_rows=2)
    with pytest.raises(SQLError, match="more than 2 rows"):
        await _run(agent, query="SELECT * FROM customers")
    with pytest.raises(SQLError, match="no such table: nope") as e:
        await _run(agent, query="SELECT * FROM nope")
    assert not e.value.retryable
    with pytest.raises(UserError, match="has no query"):
        await _run(agent)
    with pytest.raises(UserError, match="not 'querry'"):
        await _run(agent, querry="SELECT 1")
    with pytest.raises(UserError, match="cannot be read"):
        SQLAgent("db", "not a url")
    with pytest.raises(UserError, match="knows no database 'nosuchdb'"):
        SQLAgent("db", "nosuchdb://x/y")


async def test_sql_url_password_is_never_shown(monkeypatch: pytest.MonkeyPatch,
                                               free_tcp_port: int) -> None:
    monkeypatch.setenv("PODIUM_TEST_DB_URL",
                       f"postgresql+psycopg://app:{quote(PASSWORD, safe='')}"
                       f"@127.0.0.1:{free_tcp_port}/shop")
    pytest.importorskip("psycopg")
    agent = SQLAgent("db", "env:PODIUM_TEST_DB_URL")
    assert PASSWORD not in repr(agent) and "***" in agent.url
    assert PASSWORD not in repr(vars(agent)) and quote(PASSWORD, safe="") not in repr(vars(agent))
    with pytest.raises(SQLError) as info:
        await _run(agent, query="SELECT 1")
    assert "app:***@127.0.0.1" in str(info.value) and info.value.retryable
    assert PASSWORD not in str(info.value) and quote(PASSWORD, safe="") not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@dataclass
class _Postgres:
    url: str
    password: str


@pytest.fixture(scope="module")
def postgres(pg_server: PostgresServer) -> _Postgres:
    """A fresh database on the session's PostgreSQL server, with password authentication."""
    url = pg_server.fresh_database().replace("postgresql://", "postgresql+psycopg://", 1)
    return _Postgres(url, pg_server.password)


async def test_postgres_read_only_transaction(postgres: _Postgres) -> None:
    writer = SQLAgent("admin", Secret(postgres.url), write=True)
    await _run(writer, query="DROP TABLE IF EXISTS items; DROP SEQUENCE IF EXISTS s")
    await _run(writer, query="CREATE TABLE items (id int, price numeric(8,2), added date)")
    await _run(writer, query="CREATE SEQUENCE s")
    await _run(writer, query="INSERT INTO items VALUES (1, :p, DATE '2026-11-24')",
               params={"p": "12.50"})
    reader = SQLAgent("reader", postgres.url)
    assert await _run(reader, query="SELECT * FROM items WHERE id = :id", params={"id": 1}) == {
        "rows": [{"id": 1, "price": 12.5, "added": "2026-11-24"}], "rowcount": 1}
    # nextval() writes though it reads like a SELECT: the READ ONLY transaction stops it.
    with pytest.raises(SQLError, match="read-only transaction"):
        await _run(reader, query="SELECT nextval('s')")
    with pytest.raises(UserError, match="read-only"):
        await _run(reader, query="SELECT 1; DELETE FROM items")
    assert (await _run(reader, query="SELECT last_value, is_called FROM s"))["rows"] == [
        {"last_value": 1, "is_called": False}]
    assert (await _run(reader, query="SELECT COUNT(*) AS n FROM items"))["rows"] == [{"n": 1}]


async def test_postgres_wrong_password_is_not_shown(postgres: _Postgres) -> None:
    wrong = "Wr0ng-" + postgres.password
    agent = SQLAgent("db", postgres.url.replace(quote(postgres.password, safe=""),
                                                quote(wrong, safe="")))
    with pytest.raises(SQLError, match="password authentication failed") as info:
        await _run(agent, query="SELECT 1")
    assert wrong not in str(info.value) and postgres.password not in str(info.value)


# -- HTTP -----------------------------------------------------------------------------------


@dataclass
class _Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class _Service:
    """A real HTTP server on 127.0.0.1; each path answers from its queue of replies (the
    last one repeats) or, given a function, from what it received."""

    base: str = ""
    routes: dict[str, list[Reply] | Callable[[_Seen], Reply]] = field(default_factory=dict)
    seen: list[_Seen] = field(default_factory=list)

    def answer(self, seen: _Seen) -> Reply:
        self.seen.append(seen)
        route = self.routes.get(seen.path)
        if route is None:
            return 404, {"Content-Type": "text/plain"}, b"no such route"
        if callable(route):
            return route(seen)
        return route.pop(0) if len(route) > 1 else route[0]

    def hits(self, path: str) -> list[_Seen]:
        return [s for s in self.seen if s.path == path]


def _json_reply(status: int, value: Any, **headers: str) -> Reply:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(value).encode()


def _echo(seen: _Seen) -> Reply:
    return _json_reply(200, {"method": seen.method, "query": seen.query,
                             "auth": seen.headers.get("authorization"),
                             "body": json.loads(seen.body) if seen.body else None})


@pytest.fixture
def service() -> Iterator[_Service]:
    state = _Service()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            seen = _Seen(self.command, url.path, parse_qs(url.query),
                         {k.lower(): v for k, v in self.headers.items()},
                         self.rfile.read(length), time.monotonic())
            status, headers, body = state.answer(seen)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_http_get_json(service: _Service) -> None:
    service.routes["/items"] = _echo
    agent = HTTPAgent("api", "GET", "/items", base_url=service.base, params={"page": 1})
    out = await _run(agent, params={"q": "café"})
    assert out["status"] == 200
    assert out["headers"] == {"content-type": "application/json"}
    assert out["json"]["query"] == {"page": ["1"], "q": ["café"]}


async def test_http_task_values_override_the_agent(service: _Service) -> None:
    service.routes["/orders"] = _echo
    service.routes["/text"] = [(201, {"Content-Type": "text/plain", "ETag": '"v1"'}, b"made")]
    agent = HTTPAgent("api", "GET", f"{service.base}/nowhere", json={"a": 1},
                      headers={"X-Team": "ops"})
    out = await _run(agent, method="post", url=f"{service.base}/orders", json={"b": [1, 2]},
                     headers={"X-Trace": "t1"})
    assert out["json"]["method"] == "POST" and out["json"]["body"] == {"b": [1, 2]}
    (seen,) = service.hits("/orders")
    assert seen.headers["x-team"] == "ops" and seen.headers["x-trace"] == "t1"
    text = await _run(agent, url=f"{service.base}/text")
    assert text == {"status": 201, "headers": {"content-type": "text/plain", "etag": '"v1"'},
                    "text": "made"}


async def test_http_honours_retry_after_on_429(service: _Service) -> None:
    service.routes["/limited"] = [
        _json_reply(429, {"error": "slow down"}, **{"Retry-After": "1"}),
        _json_reply(200, {"ok": True})]
    agent = HTTPAgent("api", "GET", f"{service.base}/limited", retries=2)
    assert (await _run(agent))["json"] == {"ok": True}
    first, second = service.hits("/limited")
    assert second.at - first.at >= 0.9


async def test_http_retries_5xx_then_succeeds(service: _Service) -> None:
    service.routes["/flaky"] = [(503, {}, b"busy"), (502, {}, b"bad gateway"),
                                _json_reply(200, {"ok": True})]
    agent = HTTPAgent("api", "POST", f"{service.base}/flaky", json={"n": 1}, retries=3)
    assert (await _run(agent))["json"] == {"ok": True}
    assert len(service.hits("/flaky")) == 3
    assert all(json.loads(s.body) == {"n": 1} for s in service.hits("/flaky"))


async def test_http_gives_up_after_its_retries(service: _Service) -> None:
    service.routes["/down"] = [(503, {"Content-Type": "text/plain"}, b"maintenance")]
    agent = HTTPAgent("api", "GET", f"{service.base}/down", retries=1)
    with pytest.raises(HTTPError, match="returned 503 Service Unavailable: maintenance") as e:
        await _run(agent)
    assert e.value.status == 503 and e.value.retryable
    assert len(service.hits("/down")) == 2


async def test_http_does_not_wait_longer_than_max_delay(service: _Service) -> None:
    service.routes["/later"] = [(429, {"Retry-After": "3600"}, b"")]
    agent = HTTPAgent("api", "GET", f"{service.base}/later", retries=5, max_delay=10)
    with pytest.raises(HTTPError) as e:
        await _run(agent)
    assert e.value.status == 429 and e.value.retryable and e.value.retry_after == 3600
    assert len(service.hits("/later")) == 1


def test_retry_after_as_seconds_or_date() -> None:
    now = 1_800_000_000.0
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Fri, 15 Jan 2027 08:00:05 GMT", now=now) == 5.0
    assert retry_after_seconds("Fri, 15 Jan 2027 07:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


async def test_http_4xx_fails_at_once_without_the_secret(
        service: _Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_TOKEN", TOKEN)
    # A server that quotes the credentials it refused, as some do.
    service.routes["/private"] = lambda seen: (
        404, {"Content-Type": "text/plain"},
        f"no such thing for {seen.headers['authorization']}".encode())
    agent = HTTPAgent("api", "GET", "/private?key=abc", base_url=service.base, retries=3,
                      headers={"Authorization": "Bearer ${env:PODIUM_TEST_TOKEN}"})
    with pytest.raises(HTTPError) as e:
        await _run(agent)
    assert e.value.status == 404 and not e.value.retryable
    (seen,) = service.hits("/private")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    message = str(e.value)
    assert "returned 404 Not Found: no such thing for ***" in message
    assert TOKEN not in message and "key=abc" not in message
    assert TOKEN not in repr(agent) and TOKEN not in repr(agent.headers)
    assert TOKEN not in repr(vars(agent))


async def test_http_output_masks_an_echoed_secret(service: _Service,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_TOKEN", TOKEN)
    service.routes["/echo"] = _echo
    agent = HTTPAgent("api", "GET", f"{service.base}/echo",
                      headers={"Authorization": "env:PODIUM_TEST_TOKEN"},
                      params={"api_key": "env:PODIUM_TEST_TOKEN", "page": "2"})
    out = await _run(agent)
    (seen,) = service.hits("/echo")
    assert seen.headers["authorization"] == TOKEN and seen.query["api_key"] == [TOKEN]
    assert out["json"]["auth"] == "***"
    assert out["json"]["query"] == {"api_key": ["***"], "page": ["2"]}


async def test_http_credentials_stay_with_their_origin(service: _Service,
                                                       free_tcp_port: int) -> None:
    agent = HTTPAgent("api", "GET", base_url=service.base,
                      headers={"Authorization": Secret(TOKEN)})
    with pytest.raises(UserError, match="sends credentials only to"):
        await _run(agent, url=f"http://127.0.0.1:{free_tcp_port}/steal")
    assert not service.seen


async def test_http_unreachable_is_retryable(free_tcp_port: int) -> None:
    agent = HTTPAgent("api", "POST", f"http://127.0.0.1:{free_tcp_port}/x", retries=1,
                      max_delay=0.01)
    with pytest.raises(HTTPError, match="ConnectError") as e:
        await _run(agent)
    assert e.value.status is None and e.value.retryable


async def test_http_configuration_errors() -> None:
    with pytest.raises(UserError, match="not an HTTP method"):
        HTTPAgent("api", "GE T", "http://x")
    with pytest.raises(UserError, match="has no URL"):
        await _run(HTTPAgent("api"))
    with pytest.raises(UserError, match="not an http:// or https:// URL"):
        await _run(HTTPAgent("api", url="/relative"))
    with pytest.raises(UserError, match="not 'body'"):
        await _run(HTTPAgent("api", url="http://127.0.0.1:9/"), body="x")
    with pytest.raises(UserError, match="PODIUM_TEST_MISSING"):
        HTTPAgent("api", headers={"X-Key": "env:PODIUM_TEST_MISSING"})


# -- email ----------------------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        return [cast(EmailMessage, message_from_bytes(e.original_content,
                                                      policy=policy.default))
                for e in self.envelopes]


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"mailer"
          and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@dataclass
class _Mail:
    inbox: _Inbox
    port: int
    client_tls: ssl.SSLContext | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[_Mail]:
    """A real SMTP server on loopback that takes a login without TLS (loopback only)."""
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(),
                            authenticator=_authenticator, auth_require_tls=False)
    controller.start()
    try:
        yield _Mail(inbox, controller.port)
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    home = tmp_path_factory.mktemp("tls")
    cert, key = home / "cert.pem", home / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def smtp_tls_server(certificate: tuple[Path, Path]) -> Iterator[_Mail]:
    """A real SMTP server on loopback that requires STARTTLS before anything else."""
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(),
                            tls_context=server_tls, require_starttls=True,
                            authenticator=_authenticator)
    controller.start()
    try:
        yield _Mail(inbox, controller.port, ssl.create_default_context(cafile=str(cert)))
    finally:
        controller.stop()


async def test_email_sends_text_and_html(smtp_server: _Mail) -> None:
    agent = EmailAgent("mail", "127.0.0.1", smtp_server.port,
                       sender="Reports <reports@example.com>")
    out = await _run(agent, to="Ada <ada@example.com>, bob@example.com",
                     cc=["cy@example.com"], bcc="audit@example.com",
                     subject="Monthly report ✓", text="Plain body", html="<p>HTML body</p>")
    assert out == {"message_id": message_id("run-1:task", "reports@example.com"),
                   "to": ["ada@example.com", "bob@example.com"]}
    (envelope,) = smtp_server.inbox.envelopes
    assert envelope.mail_from == "reports@example.com"
    assert sorted(envelope.rcpt_tos) == ["ada@example.com", "audit@example.com",
                                         "bob@example.com", "cy@example.com"]
    (msg,) = smtp_server.inbox.messages()
    assert msg["Subject"] == "Monthly report ✓" and msg["Bcc"] is None
    assert msg["Message-ID"] == out["message_id"] and msg["Cc"] == "cy@example.com"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text, html = (p.get_content().strip() for p in msg.iter_parts())
    assert (text, html) == ("Plain body", "<p>HTML body</p>")


async def test_email_resend_keeps_the_message_id(smtp_server: _Mail) -> None:
    agent = EmailAgent("mail", "127.0.0.1", smtp_server.port, sender="r@example.com")
    for _ in range(2):
        await _run(agent, to="ada@example.com", subject="s", html="<b>only html</b>")
    first, second = smtp_server.inbox.messages()
    assert first["Message-ID"] == second["Message-ID"]
    assert first.get_content_type() == "text/html"


async def test_email_header_injection_is_refused(smtp_server: _Mail) -> None:
    agent = EmailAgent("mail", "127.0.0.1", smtp_server.port, sender="r@example.com")
    with pytest.raises(UserError, match="header is invalid"):
        await _run(agent, to="ada@example.com", subject="Hi\nBcc: evil@example.com", text="x")
    with pytest.raises(UserError, match="not an address"):
        await _run(agent, to="ada@example.com\nBcc: evil@example.com", text="x")
    with pytest.raises(UserError, match="no recipient"):
        await _run(agent, subject="s", text="x")
    with pytest.raises(UserError, match="no body"):
        await _run(agent, to="ada@example.com")
    assert not smtp_server.inbox.envelopes


async def test_email_login_with_a_secret(smtp_server: _Mail,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_SMTP_PASSWORD", PASSWORD)
    agent = EmailAgent("mail", "127.0.0.1", smtp_server.port, sender="r@example.com",
                       username="mailer", password="env:PODIUM_TEST_SMTP_PASSWORD")
    await _run(agent, to="ada@example.com", subject="s", text="t")
    assert len(smtp_server.inbox.envelopes) == 1
    assert PASSWORD not in repr(agent) and PASSWORD not in repr(vars(agent))
    wrong = EmailAgent("mail", "127.0.0.1", smtp_server.port, sender="r@example.com",
                       username="mailer", password=Secret("nope-" + PASSWORD))
    with pytest.raises(EmailError, match="535") as e:
        await _run(wrong, to="ada@example.com", subject="s", text="t")
    assert e.value.code == 535 and not e.value.retryable
    assert PASSWORD not in str(e.value)


async def test_email_over_starttls(smtp_tls_server: _Mail) -> None:
    agent = EmailAgent("mail", "127.0.0.1", smtp_tls_server.port, sender="r@example.com",
                       username="mailer", password=Secret(PASSWORD), starttls=True,
                       tls_context=smtp_tls_server.client_tls)
    await _run(agent, to="ada@example.com", subject="over TLS", text="t")
    (msg,) = smtp_tls_server.inbox.messages()
    assert msg["Subject"] == "over TLS"
    plain = EmailAgent("mail", "127.0.0.1", smtp_tls_server.port, sender="r@example.com")
    with pytest.raises(EmailError, match="530") as e:
        await _run(plain, to="ada@example.com", subject="s", text="t")
    assert e.value.code == 530


async def test_email_unreachable_is_retryable(free_tcp_port: int) -> None:
    agent = EmailAgent("mail", "127.0.0.1", free_tcp_port, sender="r@example.com",
                       timeout=5)
    with pytest.raises(EmailError, match="ConnectionRefusedError") as e:
        await _run(agent, to="ada@example.com", text="t")
    assert e.value.retryable and e.value.code is None


def test_email_configuration_errors() -> None:
    with pytest.raises(UserError, match="unencrypted"):
        EmailAgent("mail", "smtp.example.com", 25, sender="r@example.com",
                   username="u", password=Secret("p"))
    with pytest.raises(UserError, match="not both"):
        EmailAgent("mail", "smtp.example.com", 465, sender="r@example.com",
                   starttls=True, ssl=True)
    with pytest.raises(UserError, match="no username"):
        EmailAgent("mail", "smtp.example.com", 465, sender="r@example.com", ssl=True,
                   password=Secret("p"))
    with pytest.raises(UserError, match="not an address"):
        EmailAgent("mail", "smtp.example.com", sender="nobody")


# -- all three in a workflow ----------------------------------------------------------------


async def test_workflow_journal_holds_no_secret(
        shop: Path, service: _Service, smtp_server: _Mail, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("PODIUM_TEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("PODIUM_TEST_DB_URL", f"sqlite:///{shop}")
    service.routes["/notify"] = _echo  # echoes the Authorization header back
    service.routes["/audit"] = lambda seen: (  # quotes the bare token, without `Bearer`
        401, {"Content-Type": "text/plain"},
        f"token {seen.headers['authorization'].split()[-1]} revoked".encode())

    wf = podium.Workflow("notify-customers")
    wf.add_agent("db", SQLAgent("db", "env:PODIUM_TEST_DB_URL"))
    wf.add_agent("api", HTTPAgent("api", "POST", base_url=service.base,
                                  headers={"Authorization": "Bearer ${env:PODIUM_TEST_TOKEN}"}))
    wf.add_agent("mail", EmailAgent("mail", "127.0.0.1", smtp_server.port,
                                    sender="reports@example.com", username="mailer",
                                    password="env:PODIUM_TEST_SMTP_PASSWORD"))
    wf.add_task("customers", agent="db", args={
        "query": "SELECT name, email FROM customers WHERE balance > :min ORDER BY id",
        "params": {"min": 10}})
    wf.add_task("notify", agent="api", needs=["customers"], args={
        "url": "/notify", "json": {"customers": "{{ outputs.customers.rows }}"}})
    wf.add_task("audit", agent="api", needs=["customers"], args={"url": "/audit"},
                retry=podium.RetryPolicy(attempts=2), default={"skipped": True})
    wf.add_task("mail", agent="mail", needs=["notify"], for_each="outputs.customers.rows",
                args={"to": "{{ item.email }}", "subject": "Hello {{ item.name }}",
                      "text": "Notified: {{ outputs.notify.status }}"})

    store = podium.SQLiteStore(tmp_path / "j.db")
    try:
        state = await podium.Engine(store).start(wf)
        record = state.record()
        events = await store.events(state.run_id)
    finally:
        await store.close()

    assert state.status == "completed", record
    # The secrets were used, for real.
    assert service.hits("/notify")[0].headers["authorization"] == f"Bearer {TOKEN}"
    # A 401 says `retryable = False`: the task's policy does not try it again.
    assert len(service.hits("/audit")) == 1
    assert sorted(e.rcpt_tos[0] for e in smtp_server.inbox.envelopes) == [
        "ada@example.com", "cy@example.com"]
    assert record["outputs"]["notify"]["json"]["body"]["customers"] == [
        {"name": "Ada", "email": "ada@example.com"}, {"name": "Cy", "email": "cy@example.com"}]
    assert record["outputs"]["notify"]["json"]["auth"] == "***"
    failures = [e.data["error"] for e in events if e.type == "attempt_failed"]
    assert len(failures) == 1 and "401 Unauthorized: token *** revoked" in failures[0]
    assert record["outputs"]["audit"] == {"skipped": True}

    # …and appear nowhere: not in the record, not in any byte of the journal's files.
    forms = [s for v in (TOKEN, PASSWORD) for s in (v, quote(v, safe=""), quote(v))]
    dumped = json.dumps(record, ensure_ascii=False) + json.dumps(
        [e.data for e in events], ensure_ascii=False)
    data = _journal_bytes(tmp_path)
    for form in forms:
        assert form not in dumped
        assert form.encode() not in data
        assert form.encode("utf-16-le") not in data


def _journal_bytes(home: Path) -> bytes:
    """Every byte of the journal: the database, and its WAL and shared-memory files."""
    files = sorted(home.glob("j.db*"))
    assert files
    return b"".join(f.read_bytes() for f in files)
