"""HTTP agents: one request to a service, with retries the service asks for.

Errors::

    UserError          the agent or the task is misconfigured
    RunError
    └── HTTPError      the service answered with an error status, or could not be reached;
                       `.status` (None when nothing answered) and `.retryable` let a
                       task's retry policy decide
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from podium.core.agent import JSON, Agent, TaskContext, TaskInput
from podium.errors import HTTPError as HTTPError
from podium.errors import UserError
from podium.secrets import Secret, is_secret_ref, resolve_secret, scrub

_TASK_KEYS = frozenset({"url", "method", "json", "params", "headers"})
_METHOD = re.compile(r"^[A-Z]+$")
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_EXCERPT = 300
DEFAULT_RESPONSE_HEADERS = ("content-type", "etag", "last-modified", "location",
                            "x-request-id")
"""Response headers an HTTP agent returns unless told otherwise."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date), or None
    when there is no usable header."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT even when it fails to say so
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _configured(value: str | Secret) -> str | Secret:
    """A configured header or parameter value; a reference becomes the secret it names."""
    if isinstance(value, str) and is_secret_ref(value):
        return resolve_secret(value)
    return value


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _scrub_json(value: JSON, secrets: tuple[Secret, ...]) -> JSON:
    if isinstance(value, str):
        return scrub(value, *secrets)
    if isinstance(value, list):
        return [_scrub_json(v, secrets) for v in value]
    if isinstance(value, dict):
        return {scrub(str(k), *secrets): _scrub_json(v, secrets) for k, v in value.items()}
    return value


class HTTPAgent(Agent):
    """Sends one HTTP request and returns `{"status", "headers", "json" | "text"}`.

    The task's `with:` values `url`, `method`, `json`, `params` and `headers` override the
    agent's (headers are merged). A relative `url` is joined to `base_url`. The output
    holds `json` when the response says it is JSON, `text` otherwise, and the response
    headers named by `response_headers`. Redirects are returned, not followed, so that
    credentials never travel to a host the agent was not configured for.

    408, 429 and 5xx answers, and connections that fail, are tried again up to `retries` times,
    waiting what `Retry-After` asks (in seconds or as a date) or backing off
    exponentially; a wait longer than `max_delay` is not waited but raised, retryable,
    for the task's policy to schedule. Any other 4xx raises at once, with the status and
    the start of the body.

    Header and query parameter values in the agent's configuration may name secrets:
    `env:API_TOKEN`, `file:/run/secrets/token`, or `Bearer ${env:API_TOKEN}`. They are
    revealed only when the request is sent, masked in every error and output (URLs in
    messages lose their query string), and sent only to the origin of the agent's
    `base_url` or `url` when it has one. Values from a task's `with:` are taken
    literally: they may come from upstream outputs, which must not be able to read the
    environment.

    Args:
        name: the agent's name.
        method: the HTTP method.
        url: the default URL; absolute, or relative to `base_url`.
        base_url: prefix of relative URLs; also the origin credentials are bound to.
        headers: request headers; values may be `Secret`s or secret references.
        params: query parameters; values may be `Secret`s or secret references.
        json: the default JSON body.
        timeout: seconds one request may take (connect, read, write, each).
        retries: how often a 429, a 5xx or a failed connection is tried again.
        max_delay: the longest wait between tries, in seconds.
        response_headers: names of response headers to return (case-insensitive).
        idempotency_header: when set (e.g. `Idempotency-Key`), the task's idempotency key
            is sent in this header, so a service can recognise a request repeated after
            a crash.
        transport: an httpx transport, for tests and custom networking.
        description: what the agent is for, for routing and listings.
        skills: skill tags, for routing.

    Raises:
        UserError: a secret reference cannot be resolved, or the method is not a method.
    """

    def __init__(self, name: str, method: str = "GET", url: str | None = None, *,
                 base_url: str | None = None,
                 headers: Mapping[str, str | Secret] | None = None,
                 params: Mapping[str, JSON] | None = None, json: JSON = None,
                 timeout: float = 30.0, retries: int = 3, max_delay: float = 60.0,
                 response_headers: Collection[str] = DEFAULT_RESPONSE_HEADERS,
                 idempotency_header: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 description: str = "", skills: Collection[str] = ()) -> None:
        self.name = name
        self.description = description
        self.skills = tuple(skills)
        self.method = self._method(method)
        self.url = url
        self.base_url = base_url
        self.headers: dict[str, str | Secret] = {
            k: _configured(v) for k, v in (headers or {}).items()}
        self.params: dict[str, JSON] = {
            k: _configured(v) if isinstance(v, str) else v for k, v in (params or {}).items()}
        self.json = json
        self.timeout = timeout
        if retries < 0:
            raise UserError(f"HTTP agent {name!r}: retries must be 0 or more, not {retries}")
        self.retries = retries
        self.max_delay = max_delay
        self.response_headers = tuple(h.lower() for h in response_headers)
        self.idempotency_header = idempotency_header
        self._transport = transport
        self._secrets = tuple(v for v in (*self.headers.values(), *self.params.values())
                              if isinstance(v, Secret))
        home = base_url or url
        self._home = _origin(home) if home and urlsplit(home).netloc else None

    def _method(self, method: Any) -> str:
        if not isinstance(method, str) or not _METHOD.match(method.upper()):
            raise UserError(f"HTTP agent {self.name!r}: {method!r} is not an HTTP method")
        return method.upper()

    def __repr__(self) -> str:
        where = self._shown(self.url or self.base_url or "") or "(url from the task)"
        return f"HTTPAgent({self.name!r}, {self.method} {where})"

    def _shown(self, url: str) -> str:
        """A URL fit for messages: no query string, no user info, secrets masked."""
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return scrub(urlunsplit((parts.scheme, netloc, parts.path, "", "")), *self._secrets)

    def _request(self, args: Mapping[str, JSON], ctx: TaskContext) -> httpx.Request:
        unknown = sorted(set(args) - _TASK_KEYS)
        if unknown:
            raise UserError(f"HTTP agent {self.name!r} takes `with:` keys "
                            f"{', '.join(sorted(_TASK_KEYS))}, not "
                            f"{', '.join(map(repr, unknown))}")
        url = args.get("url", self.url)
        if not isinstance(url, str) or not url:
            raise UserError(f"HTTP agent {self.name!r} has no URL: give the agent a `url` "
                            "or the task `with: {url: ...}`")
        if self.base_url and not urlsplit(url).scheme:
            url = self.base_url.rstrip("/") + "/" + url.lstrip("/")
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise UserError(f"HTTP agent {self.name!r}: {self._shown(url)!r} is not an "
                            "http:// or https:// URL; give an absolute URL or a `base_url`")
        method = self._method(args.get("method", self.method))
        extra = args.get("headers") or {}
        if not isinstance(extra, Mapping):
            raise UserError(f"HTTP agent {self.name!r}: `with: headers` must be a mapping")
        if self._secrets and self._home is not None and _origin(url) != self._home:
            raise UserError(f"HTTP agent {self.name!r} sends credentials only to "
                            f"{self._home[0]}://{self._home[1]}, not to {self._shown(url)!r}")
        headers = httpx.Headers({k: v.reveal() if isinstance(v, Secret) else v
                                 for k, v in self.headers.items()})
        headers.update({str(k): str(v) for k, v in extra.items()})  # names ignore case
        if self.idempotency_header:
            headers[self.idempotency_header] = ctx.idempotency_key
        extra_params = args.get("params") or {}
        if not isinstance(extra_params, Mapping):
            raise UserError(f"HTTP agent {self.name!r}: `with: params` must be a mapping")
        params = {k: v.reveal() if isinstance(v, Secret) else v
                  for k, v in {**self.params, **extra_params}.items()}
        return httpx.Request(method, url, headers=headers, params=params or None,
                             json=args.get("json", self.json))

    async def run(self, task: TaskInput, ctx: TaskContext) -> JSON:
        request = self._request(task.args, ctx)
        async with httpx.AsyncClient(transport=self._transport,
                                     timeout=httpx.Timeout(self.timeout),
                                     follow_redirects=False) as client:
            tries = 0
            while True:
                try:
                    response = await client.send(request)
                except httpx.TransportError as e:
                    error = self._unreachable(request, e)
                else:
                    if response.status_code < 400:
                        return self._output(response)
                    error = self._failed(request, response)
                if not error.retryable or tries >= self.retries:
                    raise error
                delay = self._delay(tries, error.retry_after)
                if delay is None:
                    raise error
                tries += 1
                await asyncio.sleep(delay)

    def _delay(self, tries: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next try, or None when the wait is too long."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_delay else None
        base: float = min(self.max_delay, 0.5 * 2.0 ** tries)
        return base * random.uniform(0.8, 1.0)

    def _unreachable(self, request: httpx.Request, e: httpx.TransportError) -> HTTPError:
        # A request that may have reached the service is repeated only if repeating is
        # harmless; one that never left (no connection) always may be.
        sent = not isinstance(e, httpx.ConnectError | httpx.ConnectTimeout)
        retryable = not sent or request.method in _IDEMPOTENT
        text = str(e) or type(e).__name__
        message = (f"HTTP agent {self.name!r}: {request.method} {self._shown(str(request.url))} "
                   f"failed: {type(e).__name__}: {text}")
        return HTTPError(scrub(message, *self._secrets), retryable=retryable)

    def _failed(self, request: httpx.Request, response: httpx.Response) -> HTTPError:
        status = response.status_code
        retryable = status in (408, 429) or status >= 500
        excerpt = " ".join(response.text[:_EXCERPT].split())
        if len(response.text) > _EXCERPT:
            excerpt += " …"
        message = (f"HTTP agent {self.name!r}: {request.method} "
                   f"{self._shown(str(request.url))} returned {status} "
                   f"{response.reason_phrase}" + (f": {excerpt}" if excerpt else ""))
        return HTTPError(scrub(message, *self._secrets), status=status, retryable=retryable,
                         retry_after=retry_after_seconds(response.headers.get("retry-after"))
                         if retryable else None)

    def _output(self, response: httpx.Response) -> JSON:
        headers = {k: response.headers[k] for k in self.response_headers
                   if k in response.headers}
        output: dict[str, JSON] = {"status": response.status_code, "headers": headers}
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if response.content and (content_type == "application/json"
                                 or content_type.endswith("+json")):
            try:
                output["json"] = response.json()
            except ValueError:
                output["text"] = response.text
        else:
            output["text"] = response.text
        # A service may echo what it was sent; the output is journaled.
        scrubbed: JSON = _scrub_json(output, self._secrets)
        return scrubbed
