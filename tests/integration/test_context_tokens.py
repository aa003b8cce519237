"""Token counting with the local model's own tokenizer (llama.cpp) against the estimate,
in a real run: the assembled prompt's count matches what llama.cpp then reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from podium import ContextOptions, Engine, LLMAgent, SQLiteStore, TaskContext, Workflow
from podium.models.tokens import TokenCounter, estimate_tokens
from podium.testing import ScriptedModel

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                reason="the local model needs: pip install 'podium[local]'")

TEXT = ("The quarterly report covers revenue, costs and the outlook for the next quarter. "
        "Revenue grew by eight percent while costs stayed flat, so the margin improved.")


def test_the_local_model_counts_with_its_tokenizer_and_the_estimate_is_conservative() -> None:
    from podium.models import LocalModel

    local = TokenCounter(LocalModel())
    assert local.counted == "tokenizer"
    assert TokenCounter(ScriptedModel(["x"])).counted == "estimate"
    exact = local(TEXT)
    assert 20 < exact < estimate_tokens(TEXT)
    assert local("") == 0


async def test_the_assembled_count_matches_what_llama_cpp_reports(tmp_path: Path) -> None:
    from podium.models import resolve_model

    async def scout(ctx: TaskContext) -> str:
        await ctx.note(TEXT)
        return "ok"

    wf = Workflow("count")
    wf.add_agent("scout", scout)
    wf.add_agent("bot", LLMAgent(resolve_model("local"), name="bot", max_tokens=8,
                                 temperature=0, instructions="Answer in one word.",
                                 context=ContextOptions(notes=True)))
    wf.add_task("scout", agent="scout")
    wf.add_task("ask", agent="bot", prompt="Did revenue grow?", needs=["scout"])
    store = SQLiteStore(tmp_path / "j.db")
    try:
        state = await Engine(store).start(wf)
        events = await store.events(state.run_id)
    finally:
        await store.close()

    assert state.status == "completed", state.error
    [assembled] = [e.data for e in events if e.type == "context_assembled"]
    [call] = [e.data for e in events if e.type == "model_call"]
    assert assembled["counted"] == "tokenizer"
    assert assembled["budget"] == 2048 - 8 and assembled["budget_source"] == "window"
    # llama.cpp counts the prompt rendered with the chat template (and its BOS); the
    # assembly counts each message's text plus a fixed overhead per message.
    assert 0 <= assembled["used"] - call["input_tokens"] <= 3, (assembled, call)
    assert assembled["sections"]["notes"]["kept"] == 1
