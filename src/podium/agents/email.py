"""Email agents: send one message over SMTP.

Errors::

    UserError          the agent or the task is misconfigured (no recipient, no body, a
                       header with a line break, credentials over a plain connection)
    RunError
    └── EmailError     the server refused the message or could not be reached; `.code`
                       is the SMTP reply code when there was one, `.retryable` whether a
                       later try may succeed (4xx replies, network errors)
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import ssl as ssl_lib
from collections.abc import Collection, Mapping
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.errors import EmailError as EmailError
from podium.errors import UserError
from podium.secrets import Secret, as_secret, scrub

_TASK_KEYS = frozenset({"to", "cc", "bcc", "reply_to", "subject", "text", "html"})
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def message_id(idempotency_key: str, sender: str) -> str:
    """The Message-ID for a task's message: the same for every attempt of the task, so a
    message sent again after a crash is recognised as the same message."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "podium.invalid"
    return f"<podium.{digest}@{domain}>"


class EmailAgent(Agent):
    """Sends the task's message over SMTP and returns `{"message_id", "to"}` (and
    `refused`, the recipients the server refused while accepting others).

    The message comes from the task's `with:` values: `to` (an address, a list, or a
    comma-separated string), optional `cc`, `bcc` and `reply_to`, `subject`, and `text`
    and/or `html` (both make a multipart/alternative message). Its Message-ID derives
    from the task's idempotency key, so a message resent after a crash carries the same
    id and receivers can drop the duplicate. The stdlib `smtplib` runs in a worker thread.

    Args:
        name: the agent's name.
        host: the SMTP server.
        port: its port: usually 25 or 587 (STARTTLS), 465 (TLS).
        sender: the From address, e.g. `Reports <reports@example.com>`.
        username: the login, when the server needs one.
        password: the password: a `Secret`, a reference (`env:SMTP_PASSWORD`), or the
            value itself. Revealed only to log in.
        starttls: upgrade the connection with STARTTLS before anything else is sent.
        ssl: connect with TLS from the start (port 465).
        timeout: seconds each network operation may take.
        tls_context: the TLS settings; by default the system's trusted certificates and
            hostname checking.
        description: what the agent is for, for routing and listings.
        skills: skill tags, for routing.

    Raises:
        UserError: both `starttls` and `ssl`; a password without a username; credentials
            that would cross the network unencrypted; an unresolvable secret reference.
    """

    def __init__(self, name: str, host: str, port: int = 25, *, sender: str,
                 username: str | None = None, password: str | Secret | None = None,
                 starttls: bool = False, ssl: bool = False, timeout: float = 30.0,
                 tls_context: ssl_lib.SSLContext | None = None, description: str = "",
                 skills: Collection[str] = ()) -> None:
        self.name = name
        self.description = description
        self.skills = tuple(skills)
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self._password = as_secret(password) if password is not None else None
        self.starttls = starttls
        self.ssl = ssl
        self.timeout = timeout
        self.tls_context = tls_context
        if starttls and ssl:
            raise UserError(f"email agent {name!r}: choose `starttls` (port 587) or `ssl` "
                            "(port 465), not both")
        if self._password is not None and not username:
            raise UserError(f"email agent {name!r} has a password but no username")
        if username and not (starttls or ssl) and host.lower() not in _LOOPBACK:
            raise UserError(f"email agent {name!r} would send its password to {host!r} "
                            "unencrypted; set `starttls: true` or `ssl: true`")
        if "@" not in parseaddr(sender)[1]:
            raise UserError(f"email agent {name!r}: sender {sender!r} is not an address")

    def __repr__(self) -> str:
        return f"EmailAgent({self.name!r}, {self.host}:{self.port})"

    def _addresses(self, args: Mapping[str, JSON], key: str) -> list[str]:
        value = args.get(key)
        if value is None or value == "":
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise UserError(f"email agent {self.name!r}: `with: {key}` must be an address "
                            "or a list of addresses")
        found = [addr for _, addr in getaddresses(items) if addr]
        # A line break is how one address smuggles in a header or another recipient.
        if any("\r" in i or "\n" in i for i in items) or len(found) < len(
                [i for i in items if i.strip()]) or any("@" not in a for a in found):
            raise UserError(f"email agent {self.name!r}: `with: {key}` holds something "
                            f"that is not an address: {items!r}")
        return found

    def message(self, args: Mapping[str, JSON], ctx: TaskContext) -> EmailMessage:
        """The message a task asks for, as it will be sent."""
        unknown = sorted(set(args) - _TASK_KEYS)
        if unknown:
            raise UserError(f"email agent {self.name!r} takes `with:` keys "
                            f"{', '.join(sorted(_TASK_KEYS))}, not "
                            f"{', '.join(map(repr, unknown))}")
        to, cc = self._addresses(args, "to"), self._addresses(args, "cc")
        if not (to or cc or self._addresses(args, "bcc")):
            raise UserError(f"email agent {self.name!r}: the task gives no recipient "
                            "(`with: {to: ...}`)")
        text, html = args.get("text"), args.get("html")
        if text is None and html is None:
            raise UserError(f"email agent {self.name!r}: the task gives no body "
                            "(`with: {text: ...}` and/or `html`)")
        msg = EmailMessage()
        try:
            msg["From"] = self.sender
            if to:
                msg["To"] = ", ".join(to)
            if cc:
                msg["Cc"] = ", ".join(cc)
            if args.get("reply_to"):
                msg["Reply-To"] = ", ".join(self._addresses(args, "reply_to"))
            msg["Subject"] = str(args.get("subject") or "").strip()
        except ValueError as e:  # a line break in a header: never let it add headers
            raise UserError(f"email agent {self.name!r}: a header is invalid: {e}") from None
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = message_id(ctx.idempotency_key, self.sender)
        if text is not None:
            msg.set_content(str(text))
            if html is not None:
                msg.add_alternative(str(html), subtype="html")
        else:
            msg.set_content(str(html), subtype="html")
        return msg

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        msg = self.message(task.args, ctx)
        recipients = [*self._addresses(task.args, "to"), *self._addresses(task.args, "cc"),
                      *self._addresses(task.args, "bcc")]
        refused = await asyncio.to_thread(self._send, msg, recipients)
        output: dict[str, JSON] = {"message_id": msg["Message-ID"],
                                   "to": self._addresses(task.args, "to")}
        if refused:
            # Not raised: the others have the message, and a retry would send it twice.
            output["refused"] = refused
        return output

    def _send(self, msg: EmailMessage, recipients: list[str]) -> list[str]:
        """Sends the message; returns the recipients the server refused (when it accepted
        others: refusing them all raises)."""
        context = self.tls_context or ssl_lib.create_default_context()
        try:
            smtp = (smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                     context=context) if self.ssl
                    else smtplib.SMTP(self.host, self.port, timeout=self.timeout))
            with smtp:
                if self.starttls:
                    smtp.starttls(context=context)
                if self.username:
                    password = self._password.reveal() if self._password else ""
                    smtp.login(self.username, password)
                refused = smtp.send_message(msg, from_addr=parseaddr(self.sender)[1],
                                            to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as e:
            codes = sorted({code for code, _ in e.recipients.values()})
            listed = ", ".join(f"{addr} ({code})" for addr, (code, _) in e.recipients.items())
            raise self._error(f"every recipient was refused: {listed}", code=codes[0],
                              retryable=all(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as e:
            reply = e.smtp_error.decode("utf-8", "replace") if isinstance(
                e.smtp_error, bytes) else str(e.smtp_error)
            raise self._error(f"{type(e).__name__} {e.smtp_code}: {reply}", code=e.smtp_code,
                              retryable=400 <= e.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as e:
            # No reply code: the connection failed or broke, and another try may get
            # through; unless the server lacks what was asked or its certificate is bad.
            permanent = isinstance(e, smtplib.SMTPNotSupportedError
                                   | ssl_lib.SSLCertVerificationError)
            raise self._error(f"{type(e).__name__}: {e}", retryable=not permanent) from None
        return sorted(refused)

    def _error(self, detail: str, *, code: int | None = None,
               retryable: bool = False) -> EmailError:
        message = f"email agent {self.name!r} via {self.host}:{self.port} failed: {detail}"
        return EmailError(scrub(message, self._password), code=code, retryable=retryable)
