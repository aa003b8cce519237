"""The architecture, read from the code: `src/podium`'s imports have no cycle, no room
reaches into another room's private module, and the rooms point one way.

Every import counts, at module level or inside a function (a lazy import is still a
dependency; it only hides a cycle from Python). The graph is read with `ast`, nothing is
imported, so the test sees exactly what a reader of the tree sees.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import podium

ROOT = Path(podium.__file__).parent

# The rooms from the bottom up: a room may import the rooms listed before it and
# itself, never one listed after it. `podium.errors` and `podium.config` sit under all.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "config", "secrets", "sqlite_files"),
    ("core",),
    ("security", "store", "models", "memory", "tools"),
    ("agents", "patterns"),
    ("engine",),
    ("yaml",),
    ("server", "cli", "testing"),
)
"""Rooms on one line may import each other (no cycles still), not a later line."""


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = ["podium", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> Iterator[tuple[str, int]]:
    """Every Podium module `module` imports, with the line, at any depth of the code."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = _package(module)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for name in names:
            target = _resolve(name) if name.startswith("podium") else None
            if target and target != module:
                yield target, node.lineno


GRAPH = {module: sorted({target for target, _ in _imports(module)}) for module in MODULES}


def _reach(graph: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (a few hundred
    modules: reachability from each is cheap enough)."""
    reach = {node: _reach(graph, node) for node in graph}
    found: list[list[str]] = []
    placed: set[str] = set()
    for node in sorted(graph):
        if node in placed or node not in reach[node]:
            continue
        group = sorted(other for other in reach[node] if node in reach[other])
        placed.update(group)
        found.append(group)
    return found


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(room: str) -> int | None:
    for depth, rooms in enumerate(LAYERS):
        if room in rooms:
            return depth
    return None


def test_the_checker_sees_a_cycle_and_a_private_import() -> None:
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": []}) == []
    assert "podium.core.workflow" in GRAPH["podium.engine.runtime"] or any(
        target.startswith("podium.core") for target in GRAPH["podium.engine.runtime"]
    )


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_no_room_imports_another_rooms_private_module() -> None:
    offences = []
    for module in MODULES:
        package = _package(module)
        for target, line in _imports(module):
            parts = target.split(".")
            private = next(
                (i for i, part in enumerate(parts) if part.startswith("_") and part != "__main__"),
                None,
            )
            if private is None:
                continue
            owner = ".".join(parts[:private])
            inside = package == owner or (owner != "podium" and package.startswith(owner + "."))
            if not inside:
                offences.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    assert offences == []


def test_every_room_is_placed_and_imports_point_down() -> None:
    rooms = {_room(module) for module in MODULES} - {"", "__main__"}
    assert sorted(room for room in rooms if _layer(room) is None) == []
    upward = []
    for module, targets in GRAPH.items():
        here = _layer(_room(module))
        if here is None:
            continue
        for target in targets:
            there = _layer(_room(target))
            if there is not None and there > here:
                upward.append(f"{module} -> {target}")
    assert upward == []
