"""The public API: what `podium/__init__.py` imports is exactly `__all__`, kept sorted within
the groups its comments draw (by concept)."""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import re
import tokenize
from pathlib import Path
from types import ModuleType

import pytest

import podium
import podium.errors
import podium.testing

PUBLIC_MODULES = [podium, podium.testing]


def _imports(module: ModuleType) -> list[ast.stmt]:
    """The module's top-level statements, with those of its `if TYPE_CHECKING:` block (where
    a module that imports its names on first use, `podium`, imports them for type checkers)."""
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    return [inner for node in tree.body
            for inner in (node.body if isinstance(node, ast.If)
                          and ast.unparse(node.test) == "TYPE_CHECKING" else [node])]


def _imported_names(module: ModuleType) -> list[str]:
    """Public names the module's source imports explicitly."""
    names = []
    for node in _imports(module):
        if isinstance(node, ast.ImportFrom) and node.module not in ("__future__", "typing"):
            names += [alias.asname or alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.asname or alias.name.partition(".")[0] for alias in node.names]
    return [n for n in names if not n.startswith("_")]


def _isort_key(name: str) -> tuple[int, list[int | str]]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then everything else, each naturally."""
    if name.isupper() or re.fullmatch(r"[A-Z0-9_]+", name):
        group = 0
    elif name[0].isupper():
        group = 1
    else:
        group = 2
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return group, natural


def _all_groups(module: ModuleType) -> list[list[str]]:
    """The names of the module's `__all__` as its source writes them, in groups: a comment
    on a line of its own starts a new group."""
    assert module.__file__ is not None
    source = Path(module.__file__).read_text(encoding="utf-8")
    groups: list[list[str]] = [[]]
    depth, inside = 0, False
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if not inside:
            inside = tok.type == tokenize.NAME and tok.string == "__all__" and tok.start[1] == 0
            continue
        if tok.type == tokenize.OP and tok.string in "[]":
            depth += 1 if tok.string == "[" else -1
            if depth == 0:
                break
        elif tok.type == tokenize.COMMENT and tok.line.strip().startswith("#") and depth:
            if groups[-1]:
                groups.append([])
        elif tok.type == tokenize.STRING:
            groups[-1].append(ast.literal_eval(tok.string))
    return groups


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted_per_group_without_duplicates(module: ModuleType) -> None:
    names = list(module.__all__)
    groups = _all_groups(module)

    assert [name for group in groups for name in group] == names
    for group in groups:
        assert group == sorted(group, key=_isort_key)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_lists_exactly_what_the_module_imports(module: ModuleType) -> None:
    imported = _imported_names(module)

    assert sorted(imported) == sorted(set(imported)), "a name is imported twice"
    assert set(module.__all__) == set(imported)


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_name_in_all_exists(module: ModuleType) -> None:
    missing = [name for name in module.__all__ if not hasattr(module, name)]

    assert missing == []


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_name_is_the_object_the_module_imports(module: ModuleType) -> None:
    # `podium` imports its names on first use: each must be the one its imports name.
    for node in _imports(module):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("podium"):
            source = importlib.import_module(node.module)
            for alias in node.names:
                assert getattr(module, alias.asname or alias.name) is getattr(source, alias.name)


def test_star_import_gives_exactly_all() -> None:
    scope: dict[str, object] = {}
    exec("from podium import *", scope)

    assert set(scope) - {"__builtins__"} == set(podium.__all__)


def test_every_public_error_is_exported() -> None:
    errors = {name for name, obj in vars(podium.errors).items()
              if inspect.isclass(obj) and issubclass(obj, BaseException)
              and obj.__module__ == "podium.errors" and not name.startswith("_")}

    assert errors <= set(podium.__all__)
    assert podium.Problem is podium.errors.Problem


def test_the_error_tree_has_one_root() -> None:
    for name in podium.__all__:
        obj = getattr(podium, name)
        if not (inspect.isclass(obj) and issubclass(obj, Exception)):
            continue
        if name in ("Retry", "Escalate", "ApprovalRequired"):
            # Signals an agent raises on purpose live apart from Podium's errors.
            assert not issubclass(obj, podium.PodiumError)
        else:
            assert issubclass(obj, podium.PodiumError), name
            assert issubclass(obj, podium.UserError | podium.RunError) or (
                obj is podium.PodiumError), name


def test_every_exported_class_and_function_is_documented() -> None:
    undocumented = [name for name in podium.__all__
                    if (inspect.isclass(getattr(podium, name))
                        or inspect.isfunction(getattr(podium, name)))
                    and not inspect.getdoc(getattr(podium, name))]

    assert undocumented == []
