"""The monthly report sent through a real SMTP server: `-i smtp=HOST:PORT`.

An aiosmtpd server listens on loopback; the run waits for approval (exit 3), and the
approval sends the report to that server instead of writing an `.eml` file.
"""

from __future__ import annotations

import email.policy
import socket
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from podium import TaskContext
from tests.e2e._cli import podium_json

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `examples` is imported from the repository root, as Podium does
    sys.path.insert(0, str(ROOT))

from examples.finance import agents  # noqa: E402

WORKFLOW = ROOT / "examples" / "monthly_report.yaml"
DB = ROOT / "examples" / "finance" / "transactions.db"
PODIUM = Path(sys.executable).with_name("podium")


class _Inbox:
    def __init__(self, refuse: str = "") -> None:
        self.received: list[tuple[str, list[str], EmailMessage]] = []
        self.refuse = refuse
        """An SMTP reply to give to every message instead of accepting it."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse
        msg = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        assert isinstance(msg, EmailMessage)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()




def _ctx() -> TaskContext:
    return TaskContext(run_id="r", task_id="send", attempt=1, idempotency_key="r:send",
                       inputs={}, outputs={})


def _net(month: str) -> float:
    with closing(sqlite3.connect(DB)) as conn:
        ((net,),) = conn.execute(
            "SELECT ROUND(SUM(amount), 2) FROM transactions WHERE date LIKE ? || '-%'", (month,)
        ).fetchall()
    return float(net)


def test_the_approved_report_is_sent_through_smtp(
    tmp_path: Path, smtp_server: tuple[_Inbox, int]
) -> None:
    inbox, port = smtp_server
    home, outbox = tmp_path / "home", tmp_path / "outbox"
    code, waiting = podium_json(
        "run", str(WORKFLOW), "-i", "month=2026-10", "-i", f"outbox={outbox}",
        "-i", f"smtp=127.0.0.1:{port}", "-i", "recipient=cfo@example.com", "--json", home=home,
    )
    assert code == 3, waiting
    assert not inbox.received  # nothing leaves before the approval

    code, record = podium_json("approve", waiting["run_id"], "approve", "--json", home=home)
    assert code == 0, record
    sent = record["outputs"]["send"]
    report = record["outputs"]["report"]
    assert sent == {"to": "cfo@example.com", "subject": report["subject"],
                    "message_id": sent["message_id"], "smtp": f"127.0.0.1:{port}"}
    assert not outbox.exists()  # sent, not written

    ((mail_from, recipients, msg),) = inbox.received
    assert (mail_from, recipients) == ("podium@localhost", ["cfo@example.com"])
    assert msg["Subject"] == report["subject"] and "October 2026" in msg["Subject"]
    assert msg["Message-ID"] == sent["message_id"]
    assert msg["X-Podium-Run"] == record["run_id"]
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and rich is not None
    net = f"{_net('2026-10'):,.2f}"
    assert net in plain.get_content() and net in rich.get_content()
    assert "Skyline Charter" in plain.get_content() and "Skyline Charter" in rich.get_content()


def test_an_smtp_server_that_is_not_there_fails_the_send_after_retries(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, waiting = podium_json(
        "run", str(WORKFLOW), "-i", "month=2026-10", "-i", f"smtp=127.0.0.1:{_free_port()}",
        "--json", home=home,
    )
    assert code == 3, waiting
    code, record = podium_json("approve", waiting["run_id"], "approve", "--json", home=home)
    assert code == 1 and record["status"] == "failed"
    send = {t["id"]: t for t in record["tasks"]}["send"]
    assert send["attempts"] == 3
    assert "DeliveryError: cannot send through 127.0.0.1:" in send["error"]


@pytest.mark.parametrize(("smtp", "address"), [
    ("127.0.0.1:2525", ("127.0.0.1", 2525)),
    ("mail.example.com", ("mail.example.com", 25)),
    (" [::1]:587 ", ("::1", 587)),
])
def test_the_smtp_input_is_host_and_port(smtp: str, address: tuple[str, int]) -> None:
    assert agents.smtp_address(smtp) == address


@pytest.mark.parametrize("smtp", ["host:port", "a b:25", "host:0", "host:70000", "http://x:25"])
def test_a_malformed_smtp_input_is_refused_before_anything_is_sent(smtp: str) -> None:
    with pytest.raises(ValueError, match="smtp"):
        agents.send(report={"subject": "s", "markdown": "m", "html": "h"}, approve=None,
                    outbox="unused", to="a@example.com", smtp=smtp,
                    ctx=_ctx())


@pytest.mark.parametrize(("reply", "retryable"), [
    ("550 5.7.1 relaying denied", False), ("451 4.3.0 try again later", True)])
def test_a_refusal_says_whether_a_retry_may_help(reply: str, retryable: bool) -> None:
    inbox = _Inbox(refuse=reply)
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        with pytest.raises(agents.DeliveryError, match=reply.split()[0]) as caught:
            agents.send(report={"subject": "s", "markdown": "m", "html": "<p>h</p>"},
                        approve=None, outbox="unused", to="a@example.com",
                        smtp=f"127.0.0.1:{controller.port}",
                        ctx=_ctx())
    finally:
        controller.stop()
    assert caught.value.retryable is retryable and not inbox.received
