"""Reading a model's reply: the text it wrote (tool calls included), the JSON inside a
Markdown code block, and text a journal can hold (no lone surrogates)."""

from __future__ import annotations

from dataclasses import replace

from podium.models.base import ModelResponse, ToolCall


def reply_text(response: ModelResponse) -> str:
    """Everything the model wrote: its text and its tool calls."""
    return response.text + "".join(c.name + c.arguments for c in response.tool_calls)


def strip_fences(text: str) -> str:
    """The JSON inside a Markdown code block (```json … ```), or `text` stripped."""
    stripped = text.strip()
    if len(stripped) < 6 or not (stripped.startswith("```") and stripped.endswith("```")):
        return stripped
    inner = stripped[3:-3]
    first, newline, rest = inner.partition("\n")
    if newline and first.strip().replace("-", "").replace("_", "").isalnum():
        inner = rest  # the info string: ```json
    elif inner[:4].lower() == "json":
        inner = inner[4:]
    return inner.strip()


def clean(text: str) -> str:
    """`text` with lone surrogates (from a `\\ud800` escape in a provider's JSON) replaced,
    so that it can be journaled as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def cleaned(response: ModelResponse) -> ModelResponse:
    """The response with text the journal can hold (no lone surrogates)."""
    calls = tuple(ToolCall(id=clean(c.id), name=clean(c.name), arguments=clean(c.arguments))
                  for c in response.tool_calls)
    return replace(response, text=clean(response.text), model=clean(response.model),
                   tool_calls=calls)
