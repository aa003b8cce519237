"""Function agents of greet.yaml."""

from __future__ import annotations


def greet(name: str, times: int) -> list[str]:
    # A print on stdout must not corrupt the MCP stdio stream the workflow is served on.
    if not name:
        raise ValueError("a name is needed")
    print(f"greeting {name}")
    return [f"Hello, {name}!"] * times


def shout(greet: list[str]) -> str:
    return " ".join(greet).upper()
