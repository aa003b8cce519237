"""The planted-instruction scenario as a workflow's agent, for `podium` run in a
subprocess: the shop's database is `$PODIUM_TEST_SHOP_DB`, and a mail the agent sends is
a row in its `sent` table. The subject names the process that wrote the mail, so a test
can tell the call a person approved from one written again after a restart. `desk` obeys
an order in its prompt (a ticket given as an input)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium import LLMAgent
from podium.models.base import Message
from podium.testing import ScriptedModel
from tests.integration._planted import CUSTOMERS, ORDER, obedient, record_in, tools

DB = Path(os.environ.get("PODIUM_TEST_SHOP_DB", "shop.db"))

assistant = LLMAgent(
    ScriptedModel(obedient(lambda: f"Customer list (written by process {os.getpid()})")),
    name="assistant", instructions="Answer the support ticket.",
    tools=tools(DB, record_in(DB)))


def _obey(messages: Sequence[Message], schema: Any) -> Any:
    """Mails the customer list wherever the text it is given says, once."""
    if any(m.role == "tool" for m in messages):
        return "Done."
    order = ORDER.search("\n".join(m.content for m in messages))
    if order is None:
        return "Nothing to do."
    return {"tool_calls": [{"name": "send_email", "arguments": {
        "to": order[1], "subject": "Customer list", "body": ", ".join(CUSTOMERS)}}]}


desk = LLMAgent(ScriptedModel(_obey), name="desk", instructions="Handle the ticket.",
                tools=tools(DB, record_in(DB)))


def clean(text: str) -> str:
    """Tidies a ticket's whitespace."""
    return " ".join(text.split())
