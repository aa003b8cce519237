"""Bounds on what a model may send back.

A reply is read within a byte limit and refused, not buffered, once it passes it: a
hostile or broken server cannot make Podium hold (or journal) a reply of any size. The
limit is on the reply's text (its content and any tool calls' names and arguments) in
UTF-8 bytes:

- `max_reply_bytes` when it is set: on the model (`OpenAICompatModel(max_reply_bytes=…)`,
  a YAML agent's `options: {max_reply_bytes: …}`) or on the agent
  (`LLMAgent(max_reply_bytes=…)`, a YAML agent's `max_reply_bytes:`, which also sets an
  `openai:NAME` model's);
- else, with `max_tokens`, `BYTES_PER_TOKEN` bytes a token plus `SLACK_BYTES`: no
  tokenizer's token is that long, so an honest reply never reaches it;
- else `DEFAULT_MAX_REPLY_BYTES`.

What is read off the wire is bounded too, with room for the format's overhead: a JSON
body at most `JSON_OVERHEAD` times the text limit (escapes) plus `SLACK_BYTES`; a stream
of server-sent events at most `STREAM_OVERHEAD` times the text limit plus 1 MiB (each
event wraps a token or two in a few hundred bytes of JSON).
"""

from __future__ import annotations

from podium.errors import ReplyTooLarge as ReplyTooLarge

DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024
"""The bound on a reply's text when neither `max_reply_bytes` nor `max_tokens` is set."""
BYTES_PER_TOKEN = 64
"""Bytes of text a token may take, for the bound derived from `max_tokens`."""
SLACK_BYTES = 4096
JSON_OVERHEAD = 6
"""A JSON string escape (`\\u0001`) takes at most six bytes a byte of text."""
STREAM_OVERHEAD = 64
STREAM_SLACK_BYTES = 1024 * 1024


def reply_limit(max_tokens: int | None, max_reply_bytes: int | None = None) -> int:
    """The bound, in UTF-8 bytes, on the text of a reply to a call with `max_tokens`."""
    if max_reply_bytes is not None:
        return max_reply_bytes
    if max_tokens is not None:
        return max_tokens * BYTES_PER_TOKEN + SLACK_BYTES
    return DEFAULT_MAX_REPLY_BYTES


def body_limit(text_limit: int, *, stream: bool) -> int:
    """The bound on the bytes read off the wire for a reply whose text has `text_limit`."""
    if stream:
        return text_limit * STREAM_OVERHEAD + STREAM_SLACK_BYTES
    return text_limit * JSON_OVERHEAD + SLACK_BYTES


def limit_source(max_tokens: int | None, max_reply_bytes: int | None) -> str:
    """Where a limit came from, in words, for error messages."""
    if max_reply_bytes is not None:
        return "max_reply_bytes"
    if max_tokens is not None:
        return f"{BYTES_PER_TOKEN} bytes a token of max_tokens={max_tokens}"
    return "the default"


def size(n: int) -> str:
    """A byte count as people read it: `812 bytes`, `4.0 KiB`, `30.0 MiB`."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"
