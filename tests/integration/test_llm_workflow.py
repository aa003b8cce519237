"""LLM agents inside workflows, on real models: the local llama.cpp model, and the
OpenAI-compatible provider against a real llama.cpp server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from podium import Engine, SQLiteStore, parse_workflow

pytestmark = pytest.mark.slow


class Weather(BaseModel):
    city: str = Field(max_length=40)
    temperature_c: int


WORKFLOW = """
name: weather
inputs:
  city: {{type: string}}
agents:
  forecaster:
    model: {model}
    {base_url}
    instructions: You report the weather as JSON.
    output: tests.integration.test_llm_workflow:Weather
    temperature: 0
    max_tokens: 64
tasks:
  forecast:
    agent: forecaster
    prompt: "Give the weather in {{{{ inputs.city }}}} as JSON with city and temperature_c."
    retry: {{attempts: 2}}
"""


async def _run(text: str, tmp_path: Path) -> dict[str, object]:
    store = SQLiteStore(tmp_path / "journal.db")
    try:
        state = await Engine(store).start(parse_workflow(text, "weather.yaml"), {"city": "Oslo"})
        return state.record()
    finally:
        await store.close()


def _check(record: dict[str, object]) -> None:
    assert record["status"] == "completed", record
    outputs = record["outputs"]
    assert isinstance(outputs, dict)
    Weather.model_validate(outputs["forecast"])
    tokens = record["tokens"]
    assert isinstance(tokens, dict)
    assert tokens["input"] > 0 and tokens["output"] > 0


async def test_local_model_gives_schema_valid_output(tmp_path: Path) -> None:
    _check(await _run(WORKFLOW.format(model="local", base_url=""), tmp_path))


async def test_openai_compatible_server_gives_schema_valid_output(
    llama_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_TEST_KEY", "sk-test")
    text = WORKFLOW.format(model="openai:smollm2",
                           base_url=f"base_url: {llama_server}\n    api_key_env: PODIUM_TEST_KEY")
    _check(await _run(text, tmp_path))
