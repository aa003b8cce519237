"""Secrets: values that must never be seen in journals, logs, prompts or error messages.

A `Secret` wraps a string and shows `Secret('***')` whatever prints it; `.reveal()` gives
the value, and an agent calls it only at the moment of use (opening a connection, sending a
request). Configuration names a secret by reference rather than by value:

- `env:NAME`: the environment variable `NAME`;
- `file:PATH`: the contents of the file at `PATH`, surrounding whitespace stripped (as
  Docker and Kubernetes mount secrets);
- text with `${env:NAME}` or `${file:PATH}` placeholders, e.g. `Bearer ${env:API_TOKEN}`:
  the whole text, placeholders filled, becomes the secret.

An agent that raises an error about a failed call passes its text through
`scrub(text, *secrets)` first, since a server or a driver may quote what it was sent.
"""

from __future__ import annotations

import hmac
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from podium.errors import UserError

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue
    from pydantic_core import CoreSchema

MASK = "***"
"""What a secret's value is replaced with wherever it would be shown."""

_PREFIXES = ("env:", "file:")
_PLACEHOLDER = re.compile(r"\$\{((?:env|file):[^}]+)\}")


class Secret:
    """A string that never shows itself: `repr`, `str` and f-strings give `Secret('***')`,
    JSON serialisation through pydantic gives `"***"`. Only `reveal()` gives the value.

    Two secrets are equal when their values are (compared in constant time).

    Args:
        value: the secret value itself (not a reference; see `resolve_secret`).
    """

    __slots__ = ("_parts", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret wraps a str, not {type(value).__name__}")
        self._value = value
        self._parts: tuple[str, ...] = ()
        """The values of the references a text with placeholders was filled from: each is
        secret on its own (a server may quote the token without its `Bearer `)."""

    def reveal(self) -> str:
        """The value. Call it only where the value is used, never to show or store it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler
                                     ) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            _validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda _: MASK, when_used="json"),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        return {"type": "string", "format": "password", "writeOnly": True}


def _validate(value: Any) -> Secret:
    """Pydantic's way in: a Secret as it is, a string through `as_secret`."""
    from pydantic_core import PydanticCustomError

    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("secret_type", "expected a string or a secret reference")
    try:
        return as_secret(value)
    except UserError as e:
        # A ValueError-like error lets a pydantic-validated document (the YAML loader's)
        # report the problem at its field and line, with every other problem.
        raise PydanticCustomError("secret_missing", str(e)) from None


def is_secret_ref(value: object) -> bool:
    """Whether `value` is a string that names a secret (`env:`, `file:` or `${…}`)."""
    return isinstance(value, str) and (
        value.startswith(_PREFIXES) or _PLACEHOLDER.search(value) is not None)


def _lookup(ref: str) -> str:
    scheme, _, name = ref.partition(":")
    if not name.strip():
        raise UserError(f"secret reference {ref!r} names nothing; write {scheme}:NAME")
    if scheme == "env":
        value = os.environ.get(name)
        if value is None:
            raise UserError(f"secret {ref!r}: environment variable {name!r} is not set; "
                            "set it before running the workflow")
        return value
    path = Path(name).expanduser()
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise UserError(f"secret {ref!r}: cannot read {str(path)!r} "
                        f"({e.strerror or type(e).__name__})") from None


def resolve_secret(ref: str) -> Secret:
    """The secret a reference names.

    Args:
        ref: `env:NAME`, `file:PATH`, or text with `${env:NAME}` / `${file:PATH}`
            placeholders (the filled text is the secret).

    Raises:
        UserError: the variable is not set, the file cannot be read, or `ref` is not a
            reference. The message names the reference and never a value.
    """
    if ref.startswith(_PREFIXES):
        return Secret(_lookup(ref))
    if _PLACEHOLDER.search(ref) is None:
        # Not echoed: a string that is not a reference may be a secret pasted in by mistake.
        raise UserError("not a secret reference: write env:NAME, file:PATH, or text with "
                        "${env:NAME} placeholders")
    parts: list[str] = []

    def fill(match: re.Match[str]) -> str:
        parts.append(_lookup(match.group(1)))
        return parts[-1]

    secret = Secret(_PLACEHOLDER.sub(fill, ref))
    secret._parts = tuple(parts)
    return secret


def as_secret(value: str | Secret) -> Secret:
    """A Secret from configuration: a Secret as it is, a reference resolved, any other
    string taken as the secret value itself.

    Raises:
        UserError: a reference that cannot be resolved (see `resolve_secret`).
    """
    if isinstance(value, Secret):
        return value
    return resolve_secret(value) if is_secret_ref(value) else Secret(value)


def scrub(text: str, *secrets: Secret | None) -> str:
    """`text` with every secret's value, and its URL-encoded forms, replaced by `***`.

    A secret filled from `${…}` placeholders has each placeholder's value masked too.

    Use it on any text an agent raises or returns that a server, a driver or a user
    wrote: they may quote the credentials they were sent.
    """
    values: set[str] = set()
    for secret in secrets:
        if secret is None:
            continue
        for value in (secret.reveal(), *secret._parts):
            if value:
                values.update({value, quote(value, safe=""), quote_plus(value), quote(value)})
    # Longest first, so that a secret containing another is masked whole.
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
