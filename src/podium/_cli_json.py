"""`--json` output written as it is made: a run record streams to stdout a task at a
time, so a run of 100,000 `for_each` items prints without being held whole in memory.

The text is exactly `json.dumps(record, indent=2, ensure_ascii=False)` followed by a
newline, as `rich`'s `print_json` printed it before (without its cost): each value is
encoded on its own and indented to its depth.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from podium.core.state import RunState

_INDENT = "  "


def _value(value: Any, depth: int) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return text.replace("\n", "\n" + _INDENT * depth) if depth else text


def write_items(items: Iterable[tuple[str, Any]], out: TextIO) -> None:
    """Write an object given as `(key, value)` pairs; a value that is an iterator is
    written as an array, one element at a time."""
    out.write("{")
    first = True
    for key, value in items:
        out.write(("\n" if first else ",\n") + _INDENT + json.dumps(key, ensure_ascii=False)
                  + ": ")
        first = False
        if isinstance(value, Iterator):
            _write_array(value, out)
        else:
            out.write(_value(value, 1))
    out.write("}\n" if first else "\n}\n")


def _write_array(elements: Iterator[Any], out: TextIO) -> None:
    opened = False
    for element in elements:
        out.write(",\n" if opened else "[\n")
        opened = True
        out.write(_INDENT * 2 + _value(element, 2))
    out.write("\n" + _INDENT + "]" if opened else "[]")


def print_record(state: RunState, out: TextIO | None = None) -> None:
    """Print the run record as JSON, streamed."""
    stream = out or sys.stdout
    write_items(state.record_items(), stream)
    stream.flush()
