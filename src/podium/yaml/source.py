"""YAML read into plain data together with the line of every key, for errors that name
the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from podium.core.inputs import MAX_DEPTH
from podium.yaml._events import libyaml_compose


class YAMLSyntaxError(ValueError):
    """The text is not valid YAML; `line` is 1-based, when known."""

    def __init__(self, problem: str, line: int | None) -> None:
        self.problem, self.line = problem, line
        super().__init__(problem)


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing documents nested deeper than MAX_DEPTH at the line where
    they do (its composer recurses once per level)."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep",
                self.peek_event().start_mark)  # type: ignore[no-untyped-call]
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def read_text(file: Path) -> str:
    """A YAML file's text, which must be UTF-8.

    Raises:
        OSError: the file cannot be read.
        YAMLSyntaxError: it is not UTF-8; the problem names the line and column.
    """
    data = file.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        raise YAMLSyntaxError(
            f"not UTF-8 text: byte 0x{data[e.start]:02x} at column {e.start - line_start + 1}; "
            "save the file as UTF-8", data.count(b"\n", 0, e.start) + 1) from None


def compose(text: str) -> tuple[Any, dict[str, int]]:
    """Parse YAML (safe subset) into plain data, and the line of every mapping key and list
    item by dotted path (`roles.analyst.tools`, `principals.ada.0`).

    Raises:
        YAMLSyntaxError: the text is not valid YAML.
    """
    fast = libyaml_compose(text, MAX_DEPTH)
    if fast is not None:
        return fast
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        raise YAMLSyntaxError(str(e.problem), mark.line + 1 if mark else None) from None
    lines: dict[str, int] = {}
    constructor = yaml.SafeLoader("")

    def build(node: yaml.Node, path: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(constructor.construct_object(key_node, deep=True))
                child = f"{path}.{key}" if path else key
                lines[child] = key_node.start_mark.line + 1
                out[key] = build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                lines[f"{path}.{i}"] = item.start_mark.line + 1
                items.append(build(item, f"{path}.{i}"))
            return items
        return constructor.construct_object(node, deep=True)

    return (None if root is None else build(root, "")), lines


def line_of(path: str, lines: dict[str, int]) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    while path and path not in lines:
        path = path.rpartition(".")[0]
    return lines.get(path)
