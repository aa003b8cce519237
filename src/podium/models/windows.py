"""How many tokens each model takes, prompt and reply together: its context window.

The local model's window is its llama.cpp `n_ctx`. Providers' models are looked up here by
the longest prefix of their name (`openai:gpt-4o-mini-2024-07-18` matches
`openai:gpt-4o-mini`); `register_window` adds or corrects one. A model found nowhere has
no known window: an agent then needs `context_budget`, or gets the documented default.
"""

from __future__ import annotations

import threading

from podium.errors import UserError

_WINDOWS: dict[str, int] = {
    "openai:gpt-3.5-turbo": 16_385,
    "openai:gpt-4": 8_192,
    "openai:gpt-4-turbo": 128_000,
    "openai:gpt-4o": 128_000,
    "openai:gpt-4o-mini": 128_000,
    "openai:gpt-4.1": 1_047_576,
    "openai:gpt-5": 400_000,
    "openai:o1": 200_000,
    "openai:o3": 200_000,
    "openai:o4-mini": 200_000,
    "anthropic:claude-": 200_000,
}
_lock = threading.Lock()


def known_window(name: str) -> int | None:
    """The context window of the model named `name` (`provider:model`), or None."""
    with _lock:
        matches = [prefix for prefix in _WINDOWS if name.startswith(prefix)]
        return _WINDOWS[max(matches, key=len)] if matches else None


def register_window(prefix: str, tokens: int) -> None:
    """Declare the context window of models whose name starts with `prefix`, e.g.
    `register_window("openai:llama-3.1-8b", 131_072)` for a model served by vLLM.

    Raises:
        UserError: `tokens` is not a positive integer, or `prefix` names no provider.
    """
    if not isinstance(tokens, int) or tokens < 1:
        raise UserError(f"register_window({prefix!r}): tokens must be a positive integer, "
                        f"got {tokens!r}")
    if ":" not in prefix:
        raise UserError(f"register_window({prefix!r}): name the provider too, "
                        f"e.g. 'openai:{prefix}'")
    with _lock:
        _WINDOWS[prefix] = tokens
