"""Helpers for testing workflows and agents: for tests only, never used by the product.

`ScriptedModel` stands in for a real model: its replies are given in advance (or
computed by a function of the messages), and every call it receives is recorded in
`.calls` as a `ModelCall`.

`podium.testing.store_conformance.StoreConformance` is the suite every journal store passes:
subclass it in a test module to run it against a store of yours (it needs pytest and
pytest-asyncio, so it is imported from its module, never from here).

Example:
    ```python
    from podium.testing import ScriptedModel

    model = ScriptedModel(['{"city": "Oslo", "temperature_c": 4}'])
    ```
"""

from __future__ import annotations

from podium.models.scripted import ModelCall, ReplyFunction, ScriptedModel, ScriptedReply

__all__ = ["ModelCall", "ReplyFunction", "ScriptedModel", "ScriptedReply"]
