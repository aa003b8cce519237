"""`--json` output written as it is made: a run record streams to stdout a task at a
time, so a run of 100,000 `for_each` items prints without being held whole in memory.

The text is exactly `json.dumps(record, indent=2, ensure_ascii=False)` followed by a
newline, as `rich`'s `print_json` printed it before (without its cost): each value is
encoded on its own and indented to its depth.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from podium.core.state import RunState

_INDENT = "  "


_string: Callable[[str], str] = getattr(json.encoder, "c_encode_basestring", None) or (
    json.encoder.py_encode_basestring)
_INFINITIES = {float("inf"): "Infinity", -float("inf"): "-Infinity"}


def _float(value: float) -> str:
    """As json writes a float (`float.__repr__`, and NaN and the infinities as it spells
    them), without building an encoder for each."""
    if value != value:
        return "NaN"
    return _INFINITIES.get(value) or float.__repr__(value)


def _value(value: Any, depth: int) -> str:
    """`json.dumps(value, indent=2, ensure_ascii=False)`, indented to `depth`, several
    times faster: json's own indenting encoder is pure Python, its C one cannot indent."""
    return _pretty(value, _INDENT * depth)


def _pretty(value: Any, indent: str) -> str:  # noqa: C901 - one branch per JSON type
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = indent + _INDENT
        items = []
        for key, item in value.items():
            if type(key) is not str:  # json's own rules for other keys
                return json.dumps(value, indent=2, ensure_ascii=False).replace(
                    "\n", "\n" + indent)
            items.append(f"{inner}{_string(key)}: {_pretty(item, inner)}")
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        inner = indent + _INDENT
        return ("[\n" + ",\n".join(inner + _pretty(item, inner) for item in value) + "\n"
                + indent + "]")
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _float(value)
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + indent)


def write_items(items: Iterable[tuple[str, Any]], out: TextIO) -> None:
    """Write an object given as `(key, value)` pairs; a value that is an iterator is
    written as an array, one element at a time, and a big array or object (the outputs
    of a `for_each` over many items) a member at a time."""
    out.write("{")
    first = True
    for key, value in items:
        out.write(("\n" if first else ",\n") + _INDENT + json.dumps(key, ensure_ascii=False)
                  + ": ")
        first = False
        if isinstance(value, Iterator):
            _write_array(value, out, 1)
        else:
            _write(value, 1, out)
    out.write("}\n" if first else "\n}\n")


_BIG = 64
"""Members from which an array or an object is written a member at a time."""


def _write(value: Any, depth: int, out: TextIO) -> None:
    kind = type(value)
    if (kind is list or kind is tuple) and len(value) >= _BIG:
        _write_array(iter(value), out, depth)
    elif kind is dict and len(value) >= _BIG and all(type(key) is str for key in value):
        inner = _INDENT * (depth + 1)
        separator = "{\n"
        for key, item in value.items():
            out.write(f"{separator}{inner}{_string(key)}: ")
            _write(item, depth + 1, out)
            separator = ",\n"
        out.write("\n" + _INDENT * depth + "}")
    else:
        out.write(_value(value, depth))


def _write_array(elements: Iterator[Any], out: TextIO, depth: int) -> None:
    inner = _INDENT * (depth + 1)
    opened = False
    for element in elements:
        out.write(",\n" + inner if opened else "[\n" + inner)
        opened = True
        _write(element, depth + 1, out)
    out.write("\n" + _INDENT * depth + "]" if opened else "[]")


def print_record(state: RunState, out: TextIO | None = None) -> None:
    """Print the run record as JSON, streamed. A reader that stops early (`| head`) ends
    the output quietly."""
    stream = out or sys.stdout
    try:
        write_items(state.record_items(), stream)
        stream.flush()
    except BrokenPipeError:
        # Python's own advice: point stdout at /dev/null so its flush at exit cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
