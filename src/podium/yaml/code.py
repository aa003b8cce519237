"""Python code a YAML file names (`module:name` in `function:`, `tools:`, `output:`, a
planner's `model:`): imported from the current folder and the file's own, and only from
the modules the access policy in force allows (`podium.security.functions`)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from podium.errors import UserError
from podium.security.functions import check_module
from podium.security.rbac import AccessPolicy

_POLICY: ContextVar[AccessPolicy | None] = ContextVar("podium_functions_policy", default=None)


@contextmanager
def functions_allowed(policy: AccessPolicy | None) -> Iterator[None]:
    """Within the block, workflow files may name code only from the modules `policy`'s
    `functions.allow` matches (None, or a policy without `functions:`: any module)."""
    token = _POLICY.set(policy)
    try:
        yield
    finally:
        _POLICY.reset(token)


@contextmanager
def importable(*folders: Path) -> Iterator[None]:
    """Within the block, modules may also be imported from `folders`."""
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            sys.path.remove(folder)


def import_ref(ref: str, *, checked: bool = True) -> Any:
    """The object named by `module:attr` (or `module.attr`). `checked`: a workflow file
    names it, so the access policy's `functions.allow` must allow its module
    (`functions_allowed`).

    Raises:
        UserError: it cannot be imported, or may not be, with the reason.
    """
    module_name, sep, attr = ref.partition(":")
    if not sep:
        module_name, _, attr = ref.rpartition(".")
    if not module_name or not attr:
        raise UserError(f"{ref!r} is not of the form 'module:name'")
    if checked:
        check_module(_POLICY.get(), ref, module_name)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # an import runs arbitrary code; report whatever it raised
        raise UserError(f"cannot import {ref!r}: {type(e).__name__}: {e}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UserError(f"cannot import {ref!r}: module {module_name!r} has no "
                            f"{attr!r}") from None
    return obj
