"""MCP servers' tools as Podium Tools, through the official `mcp` SDK (extra `mcp`).

A server is configured by an `MCPServer`: a command run as a subprocess that speaks MCP
over stdio, or the URL of a streamable HTTP endpoint. `MCPConnection` opens a session
and turns each of the server's tools into a `Tool` named `<server>.<tool>`::

    calc = MCPServer(name="calc", command="python", args=["calc_server.py"])
    async with MCPConnection(calc) as conn:
        tools = {t.name: t for t in await conn.tools()}
        await tools["calc.add"]({"a": 1, "b": 2})   # {"result": 3}

Arguments are checked against the tool's input schema before the server is called, so a
model's mistake costs no round trip. The SDK is imported when a connection opens; building
an `MCPServer` (as the workflow loader does) never needs it.

The errors::

    UserError                   the configuration cannot work: no command or url, a command
                                that is not installed, a missing cwd, an unset secret, no SDK
    RunError
    ├── MCPUnavailable          the server could not be started or reached, or answered
    │                           nothing usable; the message names the server and what to check
    ├── ToolArgumentsInvalid    arguments do not fit the tool's input schema (nothing was sent)
    └── ToolFailed              the server said the tool failed, the call timed out, or the
                                connection broke during the call

The session lives in a task the connection owns: it is entered and exited there, so the
SDK's anyio cancel scopes never straddle tasks. Tools may be called from any task while the
connection is open, and a connection may be closed by a task other than the one that
opened it. Header values, `env` values written as secret references and a URL written as a
reference are resolved when the connection opens and are masked in every message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fnmatch
import importlib
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TextIO

from podium.errors import MCPUnavailable, PodiumError, UserError
from podium.secrets import Secret, as_secret, is_secret_ref, scrub
from podium.tools.tool import Tool, ToolArgumentsInvalid, ToolFailed

if TYPE_CHECKING:
    import mcp
    import mcp.types

__all__ = ["MCPConnection", "MCPServer", "MCPUnavailable"]

log = logging.getLogger("podium.mcp")

_INSTALL_HINT = "install it with: pip install 'podium[mcp]'"
_STDERR_TAIL_CHARS = 2000
_STDERR_TAIL_LINES = 40
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True, kw_only=True)
class MCPServer:
    """An MCP server Podium connects to: a command speaking MCP over stdio, or a URL.

    Give `command` (with `args`, `env`, `cwd`) or `url` (with `headers`), not both.
    """

    name: str
    """The server's name in Podium: letters, digits, `_` and `-`. Its tools are named
    `<name>.<tool>` unless `prefix` is False."""
    command: str | None = None
    """The executable that runs the server (stdio transport), e.g. `npx`, `uvx`, `python`."""
    args: Sequence[str] = ()
    """Arguments of `command`. An argument may be a secret reference (a database URL with
    its password, say): resolved when the connection opens, shown as written."""
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Environment variables for `command`, added to the few the SDK passes on (`HOME`,
    `PATH`, `USER`, …). Values may be secret references (`env:NAME`, `file:PATH`,
    `${env:NAME}`), resolved when the connection opens."""
    cwd: str | None = None
    """The folder `command` runs in; None for the current one."""
    url: str | None = None
    """The streamable HTTP endpoint, e.g. `http://127.0.0.1:8000/mcp`. May be a secret
    reference when it carries a token."""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """HTTP headers sent with every request, e.g. `{"Authorization": "Bearer ${env:TOKEN}"}`.
    Every value is treated as a secret: resolved when a reference, never shown."""
    timeout: float | None = 30.0
    """Seconds one tool call may take; None for no limit."""
    connect_timeout: float = 30.0
    """Seconds to start or reach the server and complete the MCP handshake."""
    tags: frozenset[str] = frozenset()
    """Permission tags given to every tool of this server (`read`, `write`, `send`, …)."""
    external: bool = False
    """The server is a third party's: tool arguments are masked with the calling agent's
    masking policy before they are sent, and placeholders restored in results."""
    include: Sequence[str] | None = None
    """Only these tools (names as the server gives them; shell-style patterns allowed);
    None for all."""
    exclude: Sequence[str] = ()
    """Tools to leave out (names or shell-style patterns), applied after `include`."""
    prefix: bool = True
    """Name tools `<name>.<tool>`; False to use the server's tool names as they are."""
    max_result_bytes: int | None = None
    """The bound on one of its tools' results, as JSON text in UTF-8 bytes; None for the
    calling agent's `max_tool_result_bytes`, else `DEFAULT_MAX_RESULT_BYTES`."""

    def __post_init__(self) -> None:
        # YAML gives lists; keep the config immutable and comparable.
        for attr in ("args", "exclude"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        if self.include is not None:
            object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "tags", frozenset(self.tags))
        where = f"MCP server {self.name!r}"
        if not self.name or not set(self.name) <= _NAME_CHARS:
            raise UserError(f"MCP server name {self.name!r}: use letters, digits, '_' and '-' "
                            "(it prefixes the names of the server's tools)")
        if (self.command is None) == (self.url is None):
            raise UserError(f"{where}: give either 'command' (a program that speaks MCP over "
                            "stdio) or 'url' (a streamable HTTP endpoint), not "
                            + ("both" if self.command else "neither"))
        if self.command is not None and not self.command.strip():
            raise UserError(f"{where}: 'command' is empty")
        if self.url is not None:
            if self.args or self.env or self.cwd:
                raise UserError(f"{where}: 'args', 'env' and 'cwd' are for a command; a server "
                                "at a url takes 'headers'")
            if not is_secret_ref(self.url) and not self.url.startswith(("http://", "https://")):
                raise UserError(f"{where}: url {self.url!r} must start with http:// or https://")
        elif self.headers:
            raise UserError(f"{where}: 'headers' are for a server at a url; pass a command's "
                            "credentials in 'env'")
        if self.timeout is not None and self.timeout <= 0:
            raise UserError(f"{where}: 'timeout' must be positive, or null for no limit")
        if self.connect_timeout <= 0:
            raise UserError(f"{where}: 'connect_timeout' must be positive")

    @property
    def transport(self) -> Literal["stdio", "streamable-http"]:
        """How Podium talks to the server."""
        return "stdio" if self.command is not None else "streamable-http"

    def describe(self) -> str:
        """The server as messages show it: its command line or its url, never a secret."""
        if self.command is not None:
            return " ".join([self.command, *self.args])
        return str(self.url)

    def selects(self, tool_name: str) -> bool:
        """Whether a tool of this name passes `include` and `exclude`."""
        if self.include is not None and not any(fnmatch.fnmatchcase(tool_name, pattern)
                                                for pattern in self.include):
            return False
        return not any(fnmatch.fnmatchcase(tool_name, pattern) for pattern in self.exclude)


@dataclass(frozen=True)
class _Resolved:
    """What a connection needs at the moment it opens: secrets resolved, paths checked."""

    args: list[str]
    env: dict[str, str]
    url: str | None
    headers: dict[str, str]
    secrets: tuple[Secret, ...]


def _resolve(server: MCPServer) -> _Resolved:
    where = f"MCP server {server.name!r}"
    secrets: list[Secret] = []

    def secret(value: str, what: str) -> Secret:
        try:
            resolved = as_secret(value)
        except UserError as e:
            raise UserError(f"{where}: {what}: {e}") from None
        secrets.append(resolved)
        return resolved

    args = [secret(a, f"argument {i + 1}").reveal() if is_secret_ref(a) else a
            for i, a in enumerate(server.args)]
    env = {k: secret(v, f"env {k!r}").reveal() if is_secret_ref(v) else v
           for k, v in server.env.items()}
    headers = {k: secret(v, f"header {k!r}").reveal() for k, v in server.headers.items()}
    url = server.url
    if url is not None and is_secret_ref(url):
        url = secret(url, "url").reveal()
        if not url.startswith(("http://", "https://")):
            raise UserError(f"{where}: the url its reference names must start with http:// "
                            "or https://")
    if server.command is not None:
        _check_command(server, env)
    return _Resolved(args=args, env=env, url=url, headers=headers, secrets=tuple(secrets))


def _check_command(server: MCPServer, env: Mapping[str, str]) -> None:
    """A missing cwd or command fails the same way in the SDK; tell them apart here."""
    where = f"MCP server {server.name!r}"
    assert server.command is not None
    cwd = Path(server.cwd) if server.cwd else None
    if cwd is not None and not cwd.is_dir():
        raise UserError(f"{where}: cwd {server.cwd!r} is not a folder; check 'cwd'")
    command = server.command
    if os.sep in command or (os.altsep and os.altsep in command):
        path = Path(command) if cwd is None or Path(command).is_absolute() else cwd / command
        if not path.is_file():
            raise UserError(f"{where}: command {command!r} does not exist; check 'command'")
        if not os.access(path, os.X_OK):
            raise UserError(f"{where}: command {command!r} is not executable")
        return
    search = env.get("PATH", os.environ.get("PATH", os.defpath))
    if shutil.which(command, path=search) is None:
        raise UserError(f"{where}: command {command!r} not found on PATH; install it, or give "
                        "its full path in 'command'")


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, in order."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


class _Stderr:
    """A pipe for a stdio server's stderr: each line goes to the `podium.mcp` log at debug
    level, and the last ones are kept to quote when the server fails."""

    def __init__(self, server: str) -> None:
        self.server = server
        read, write = os.pipe()
        self.file: TextIO = os.fdopen(write, "w", encoding="utf-8", errors="replace")
        """The end the server writes to."""
        self._read = os.fdopen(read, "rb", buffering=0)
        self._lines: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self._pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._pump = asyncio.create_task(self._run(), name=f"podium-mcp-{self.server}-stderr")

    async def _run(self) -> None:
        reader = asyncio.StreamReader()
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), self._read)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # a line longer than the reader's limit
                    line = await reader.read(2**16)
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip()
                self._lines.append(text)
                log.debug("MCP server %r: %s", self.server, text)
        finally:
            transport.close()

    async def close(self) -> None:
        """Stop reading once the server's output ends (a grandchild holding the pipe open
        gets a second), and release both ends."""
        self.file.close()
        if self._pump is not None:
            done, _ = await asyncio.wait({self._pump}, timeout=1.0)
            if not done:
                self._pump.cancel()
                await asyncio.wait({self._pump})
        self._read.close()

    def tail(self) -> str:
        text = "\n".join(self._lines).strip()
        return text[-_STDERR_TAIL_CHARS:]


def _connect_failure(server: MCPServer, error: BaseException, stderr: str,
                     secrets: Sequence[Secret]) -> PodiumError:
    """The Podium error for a failure to connect: what happened and what to check."""
    import httpx2
    from mcp import MCPError

    where = f"MCP server {server.name!r}"
    said = f"\nits stderr ended with:\n{_indent(stderr)}" if stderr else ""
    leaves = _leaves(error)
    for leaf in leaves:
        if isinstance(leaf, FileNotFoundError | PermissionError) and server.command:
            reason = "not found" if isinstance(leaf, FileNotFoundError) else "not executable"
            return UserError(f"{where}: command {server.command!r} {reason}; check 'command'")
        if isinstance(leaf, httpx2.ConnectError | httpx2.ConnectTimeout):
            return MCPUnavailable(f"{where}: nothing accepted a connection at {server.url!r} "
                                  f"({_text(leaf, secrets)}); check that the server is running "
                                  "and that 'url' names its host and port")
        if isinstance(leaf, httpx2.HTTPStatusError):
            status = leaf.response.status_code
            hint = ("check its 'headers' (credentials)" if status in (401, 403) else
                    "check the path in 'url' (servers often serve /mcp)" if status in (404, 405)
                    else "check 'url' and the server's log")
            return MCPUnavailable(f"{where}: {server.url!r} answered HTTP {status}; {hint}")
        if isinstance(leaf, httpx2.HTTPError):
            return MCPUnavailable(f"{where}: the HTTP request to {server.url!r} failed "
                                  f"({_text(leaf, secrets)}); check 'url' and the server")
    for leaf in leaves:
        if isinstance(leaf, MCPError) and server.command:
            return MCPUnavailable(f"{where} ({server.describe()}) closed the connection before "
                                  f"the MCP handshake ({_text(leaf, secrets)}); check "
                                  "'command', 'args' and 'env', and run the command by hand to "
                                  f"see why it stops{said}")
        if isinstance(leaf, MCPError):
            return MCPUnavailable(f"{where}: {server.url!r} did not accept the MCP handshake "
                                  f"({_text(leaf, secrets)}); check the path in 'url' (servers "
                                  "often serve /mcp) and 'headers'")
    first = leaves[0]
    return MCPUnavailable(f"{where} ({server.describe()}): cannot connect "
                          f"({type(first).__name__}: {_text(first, secrets)}){said}")


def _text(error: BaseException, secrets: Sequence[Secret]) -> str:
    return scrub(str(error) or type(error).__name__, *secrets)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


class MCPConnection:
    """An open MCP session with one server: `async with MCPConnection(server) as conn:`.

    Args:
        server: what to connect to.

    Raises (on entering):
        UserError: the configuration cannot work (see `MCPServer`), or the `mcp` SDK is not
            installed.
        MCPUnavailable: the server did not start, could not be reached, or did not complete
            the MCP handshake within `server.connect_timeout`.
    """

    def __init__(self, server: MCPServer) -> None:
        self.server = server
        self._client: mcp.Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._secrets: tuple[Secret, ...] = ()
        self._lost: str | None = None
        """Why the session ended while the connection was open, once it has."""

    @property
    def server_info(self) -> dict[str, Any]:
        """The name and version the server gave, when it did."""
        info = self._client.server_info if self._client is not None else None
        return {} if info is None else info.model_dump(mode="json", exclude_none=True)

    async def __aenter__(self) -> Self:
        if self._runner is not None:
            raise UserError(f"the connection to MCP server {self.server.name!r} was already "
                            "opened; make a new MCPConnection")
        try:
            # The SDK takes about a second to import: not on the event loop's time.
            await asyncio.to_thread(importlib.import_module, "mcp")
        except ImportError as e:
            raise UserError(f"MCP server {self.server.name!r}: the 'mcp' SDK is missing ({e}); "
                            f"{_INSTALL_HINT}") from None
        resolved = _resolve(self.server)
        self._secrets = resolved.secrets
        ready: asyncio.Future[mcp.Client] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(resolved, ready),
                                           name=f"podium-mcp-{self.server.name}")
        try:
            async with asyncio.timeout(self.server.connect_timeout):
                self._client = await asyncio.shield(ready)
        except TimeoutError:
            await self._stop(cancel=True)
            failed = ready.exception() if ready.done() and not ready.cancelled() else None
            if failed is not None:
                raise failed from None  # it failed just as time ran out
            raise MCPUnavailable(
                f"MCP server {self.server.name!r} ({self.server.describe()}) did not complete "
                f"the MCP handshake within {self.server.connect_timeout:g}s; check that it "
                "speaks MCP on "
                + ("stdout (and logs only to stderr)" if self.server.command else "this url")
                + ", or raise 'connect_timeout'") from None
        except BaseException:
            await self._stop(cancel=True)
            if ready.done() and not ready.cancelled():
                ready.exception()  # seen: asyncio must not report it as never retrieved
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stop(cancel=False)

    async def _run(self, resolved: _Resolved, ready: asyncio.Future[mcp.Client]) -> None:
        """The task that owns the session: enters it, waits to be told to close, exits it."""
        stderr = _Stderr(self.server.name) if self.server.command else None
        failure: Exception | None = None
        try:
            if stderr is not None:
                stderr.start()
            await self._session_until_closed(resolved, ready, stderr)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            failure = e
        finally:
            if stderr is not None:
                await stderr.close()
        if failure is None:
            return
        said = scrub(stderr.tail(), *self._secrets) if stderr else ""
        if not ready.done():
            ready.set_exception(_connect_failure(self.server, failure, said, self._secrets))
            return
        self._lost = (f"{type(failure).__name__}: {_text(failure, self._secrets)}"
                      + (f"\nits stderr ended with:\n{_indent(said)}" if said else ""))
        log.warning("MCP server %r: the session ended: %s", self.server.name, self._lost)

    async def _session_until_closed(self, resolved: _Resolved,
                                    ready: asyncio.Future[mcp.Client],
                                    stderr: _Stderr | None) -> None:
        from mcp import Client
        from mcp.types import Implementation

        async with contextlib.AsyncExitStack() as stack:
            transport = await self._transport(resolved, stack, stderr)
            client = Client(transport, cache=None, client_info=Implementation(
                name="podium", version=_podium_version()))
            await stack.enter_async_context(client)
            if ready.done():  # the opener gave up while the handshake finished
                return
            ready.set_result(client)
            await self._closing.wait()

    async def _transport(self, resolved: _Resolved, stack: contextlib.AsyncExitStack,
                         stderr: _Stderr | None) -> Any:
        if self.server.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            assert stderr is not None
            params = StdioServerParameters(command=self.server.command,
                                           args=resolved.args,
                                           env=resolved.env or None, cwd=self.server.cwd)
            return stdio_client(params, errlog=stderr.file)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        assert resolved.url is not None
        http = await stack.enter_async_context(httpx2.AsyncClient(
            headers=resolved.headers,
            timeout=httpx2.Timeout(self.server.connect_timeout, read=300.0)))
        return streamable_http_client(resolved.url, http_client=http)

    async def _stop(self, *, cancel: bool) -> None:
        """Close the session and wait for its task, which stops a stdio server's process."""
        runner = self._runner
        if runner is None or runner.done():
            self._client = None
            return
        self._closing.set()
        if cancel:
            runner.cancel()
        try:
            await asyncio.wait({runner})
        except asyncio.CancelledError:
            # Our caller is cancelled: still give the SDK its bounded, shielded shutdown so
            # no server process outlives the connection.
            runner.cancel()
            await asyncio.wait({runner})
            raise
        finally:
            self._client = None

    def _session(self) -> mcp.Client:
        if self._client is None or self._lost is not None:
            state = (f"the session ended ({self._lost})" if self._lost else
                     "the connection is not open; use the tools inside "
                     "`async with MCPConnection(...)`")
            raise ToolFailed(f"MCP server {self.server.name!r}: {state}")
        return self._client

    async def list_tools(self) -> list[mcp.types.Tool]:
        """Every tool the server offers (all pages), as the SDK describes them."""
        client = self._session()
        tools: list[mcp.types.Tool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def tools(self) -> list[Tool]:
        """The server's tools that `include`/`exclude` select, as Podium Tools.

        Raises:
            UserError: `include` names a tool the server does not offer, or a tool's input
                schema is not a valid JSON schema (leave it out with `exclude`).
        """
        offered = await self.list_tools()
        names = {t.name for t in offered}
        for pattern in self.server.include or ():
            if not any(c in pattern for c in "*?[") and pattern not in names:
                raise UserError(f"MCP server {self.server.name!r}: 'include' names "
                                f"{pattern!r}, which it does not offer; it offers "
                                + (", ".join(sorted(names)) or "no tools"))
        return [self._tool(t) for t in offered if self.server.selects(t.name)]

    def _tool(self, spec: mcp.types.Tool) -> Tool:
        name = f"{self.server.name}.{spec.name}" if self.server.prefix else spec.name
        parameters = {k: v for k, v in spec.input_schema.items() if k != "title"}
        parameters.setdefault("type", "object")
        parameters.setdefault("properties", {})
        remote = spec.name

        async def call(arguments: Mapping[str, Any]) -> Any:
            return await self.call(remote, arguments, tool_name=name)

        title = spec.title or (spec.annotations.title if spec.annotations else None)
        return Tool(name=name, description=spec.description or title or "",
                    parameters=parameters, call=call, tags=self.server.tags,
                    timeout=self.server.timeout, external=self.server.external,
                    max_result_bytes=self.server.max_result_bytes,
                    validate=_schema_validator(name, self.server.name, parameters))

    async def call(self, tool: str, arguments: Mapping[str, Any], *,
                   tool_name: str | None = None) -> Any:
        """Call a tool by the server's name for it; the result as a JSON value.

        Structured content when the server gives it, else the text content joined by
        newlines (non-text content is noted, not inlined), None when there is neither.
        Arguments are not checked here: the Tools from `tools()` check them first.

        Raises:
            ToolFailed: the server reported an error, or the connection broke.
        """
        import anyio
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        shown = tool_name or tool
        client = self._session()
        try:
            result = await client.call_tool(tool, dict(arguments))
        except MCPError as e:
            if e.error.code == CONNECTION_CLOSED:
                raise ToolFailed(self._broken(shown, e)) from None
            raise ToolFailed(f"tool {shown!r} failed: "
                             f"{_text(e, self._secrets)}") from None
        except (OSError, EOFError, anyio.ClosedResourceError, anyio.BrokenResourceError,
                anyio.EndOfStream) as e:
            raise ToolFailed(self._broken(shown, e)) from None
        if result.is_error:
            text = _content_text(result.content) or "the server gave no reason"
            raise ToolFailed(f"tool {shown!r} failed: {scrub(text, *self._secrets)}")
        if result.structured_content is not None:
            return result.structured_content
        text = _content_text(result.content)
        return text if result.content else None

    def _broken(self, tool: str, error: BaseException) -> str:
        why = self._lost or f"{type(error).__name__}: {_text(error, self._secrets)}"
        return (f"tool {tool!r}: the connection to MCP server {self.server.name!r} broke "
                f"({why}); check that the server is still running")


def _content_text(content: Sequence[mcp.types.ContentBlock]) -> str:
    """Text blocks as they are; other blocks as a short note a model can read."""
    from mcp.types import EmbeddedResource, ResourceLink, TextContent, TextResourceContents

    parts: list[str] = []
    for block in content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, EmbeddedResource) and isinstance(block.resource,
                                                                TextResourceContents):
            parts.append(block.resource.text)
        elif isinstance(block, ResourceLink):
            parts.append(f"[resource {block.uri}]")
        else:
            mime = getattr(block, "mime_type", None) or "binary"
            parts.append(f"[{block.type} content ({mime}) not shown]")
    return "\n".join(parts)


def _schema_validator(name: str, server: str, schema: dict[str, Any]
                      ) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A `Tool.validate` that checks arguments against the tool's JSON schema."""
    import jsonschema
    from jsonschema.exceptions import SchemaError, best_match

    with warnings.catch_warnings():
        # An unknown `$schema` gets the latest draft, which is what MCP specifies anyway.
        warnings.simplefilter("ignore", DeprecationWarning)
        cls = jsonschema.validators.validator_for(schema,
                                                  default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as e:
        raise UserError(f"MCP server {server!r}: tool {name!r} has an invalid input schema "
                        f"({e.message}); leave it out with 'exclude'") from None
    validator = cls(schema)

    def validate(arguments: Mapping[str, Any]) -> dict[str, Any]:
        checked = dict(arguments)
        errors = sorted(validator.iter_errors(checked),
                        key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e.absolute_path) or '(arguments)'}: "
                # For anyOf/oneOf, the branch that came closest says more than "not valid
                # under any of the given schemas".
                f"{(best_match(e.context) or e).message if e.context else e.message}"
                for e in errors[:8])
            raise ToolArgumentsInvalid(
                f"arguments for tool {name!r} do not fit its schema: {problems}")
        return checked

    return validate


def _podium_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("podium")
    except PackageNotFoundError:
        return "0"
