"""The planted-instruction scenario as a workflow's agent, for `podium` run in a
subprocess: the shop's database is `$PODIUM_TEST_SHOP_DB`, and a mail the agent sends is
a row in its `sent` table. The subject names the process that wrote the mail, so a test
can tell the call a person approved from one written again after a restart."""

from __future__ import annotations

import os
from pathlib import Path

from podium import LLMAgent
from podium.testing import ScriptedModel
from tests.integration._planted import obedient, record_in, tools

DB = Path(os.environ.get("PODIUM_TEST_SHOP_DB", "shop.db"))

assistant = LLMAgent(
    ScriptedModel(obedient(lambda: f"Customer list (written by process {os.getpid()})")),
    name="assistant", instructions="Answer the support ticket.",
    tools=tools(DB, record_in(DB)))
