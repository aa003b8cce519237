"""YAML read by libyaml straight into plain data and the line of every key: the fast path
of `podium.yaml.source.compose`, ten times faster than PyYAML's pure-Python loader.

libyaml's parser hands over events (a mapping starts, a scalar, a sequence ends) without
recursing; they are folded here into dicts, lists and scalars, each scalar typed by the same
resolver and constructor as the safe loader's. A text this path does not take as it is (a
problem, whose words libyaml puts otherwise; anchors and aliases; a key that is not a
scalar; explicit tags; more than one document; nesting near the limit; the few things
libyaml takes and PyYAML refuses or reads otherwise: tabs, byte-order marks, a comment
right after a block scalar's indicator) gets None, and the pure-Python
loader reads it and decides.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

_CParser: Any
try:
    from yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined]
except ImportError:  # PyYAML built without libyaml
    _CParser = None

_STR = "tag:yaml.org,2002:str"
_BLOCK_COMMENT = re.compile(r"[|>][-+0-9]*#")
"""A block scalar's indicator with a comment right after it: libyaml takes it, PyYAML not."""
_SKIPPED = (StreamStartEvent, StreamEndEvent, DocumentEndEvent)


class _Scalars(yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """The safe loader's resolver and constructor, for scalars alone."""

    def __init__(self) -> None:
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def value(self, event: Any) -> Any:
        """A scalar event's value, typed as the safe loader types it."""
        tag = self.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
        if tag == _STR:
            return event.value
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark,
                               style=event.style)
        return self.construct_object(node, deep=True)


class _Open:
    """A mapping or sequence being filled, and for a mapping the key awaiting its value."""

    __slots__ = ("items", "key", "key_line", "path")

    def __init__(self, items: dict[str, Any] | list[Any], path: str) -> None:
        self.items, self.path = items, path
        self.key: str | None = None
        self.key_line = 0


def libyaml_compose(text: str, max_depth: int) -> tuple[Any, dict[str, int]] | None:
    """What `podium.yaml.source.compose` gives for `text`, or None when this path declines it."""
    if _CParser is None or "\t" in text or "\ufeff" in text or _BLOCK_COMMENT.search(text):
        return None  # where libyaml and PyYAML differ
    with _collection_paused():
        fold = _Fold(max_depth)
        take = fold.take
        try:
            for event in iter(_CParser(text).get_event, None):
                if not take(event):
                    return None
        except Exception:  # the pure-Python loader reads it again and says why
            return None
        return fold.root, fold.lines


class _Fold:
    """Events folded into data and lines, as the pure loader's nodes are built."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.scalars = _Scalars()
        self.lines: dict[str, int] = {}
        self.root: Any = None
        self.stack: list[_Open] = []
        self.documents = 0

    def take(self, event: Any) -> bool:
        """Fold in one event; False to decline the text."""
        kind = type(event)
        if kind in _SKIPPED:
            return True
        if kind is DocumentStartEvent:
            self.documents += 1
            return self.documents == 1
        if kind is MappingEndEvent or kind is SequenceEndEvent:
            self.stack.pop()
            return True
        if kind is AliasEvent or event.anchor is not None or event.tag is not None:
            return False  # anchors, aliases and explicit tags: as the pure loader takes them
        parent = self.stack[-1] if self.stack else None
        if parent is not None and isinstance(parent.items, dict) and parent.key is None:
            if kind is not ScalarEvent:
                return False  # a key that is a mapping or a list
            parent.key = str(self.scalars.value(event))
            parent.key_line = event.start_mark.line + 1
            return True
        return self._node(kind, event, parent)

    def _node(self, kind: type, event: Any, parent: _Open | None) -> bool:
        path = ""
        if parent is not None:
            if isinstance(parent.items, dict):
                path = f"{parent.path}.{parent.key}" if parent.path else str(parent.key)
                self.lines[path] = parent.key_line
            else:
                path = f"{parent.path}.{len(parent.items)}"
                self.lines[path] = event.start_mark.line + 1
        value: Any
        if kind is ScalarEvent:
            value = self.scalars.value(event)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if len(self.stack) >= self.max_depth - 2:
                return False  # the pure loader says where it is too deep
            value = {} if kind is MappingStartEvent else []
            self.stack.append(_Open(value, path))
        else:
            return False
        if parent is None:
            self.root = value
        elif isinstance(parent.items, dict):
            parent.items[str(parent.key)] = value
            parent.key = None
        else:
            parent.items.append(value)
        return True


@contextmanager
def _collection_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a document is read: it makes no cycles, and
    on a big file the collector's full passes over every object cost more than the read."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
