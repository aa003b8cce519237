"""Prices: name matching, user prices from code and from the PODIUM_PRICES file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium.errors import UserError
from podium.models import cost, pricing, register_price
from podium.models.pricing import Price, check_prices, find_price, load_prices


@pytest.fixture(autouse=True)
def _fresh_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing, "_registered", {})
    monkeypatch.setattr(pricing, "_file_cache", None)
    monkeypatch.delenv("PODIUM_PRICES", raising=False)


def _prices_file(tmp_path: Path, name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    monkeypatch.setenv("PODIUM_PRICES", str(file))
    return file


# --- matching -----------------------------------------------------------------------------


def test_cost_is_tokens_times_the_price_per_million() -> None:
    assert cost("gpt-4o-mini", 1_000_000, 0) == 0.15
    assert cost("gpt-4o-mini", 2000, 1000) == 0.0009
    assert cost("claude-3-5-haiku", 1000, 1000) == 0.0048


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("openai:gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai:gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("o3-pro-2025-06-10", "o3-pro"),
        ("anthropic:claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-haiku-4-5@20251001", "claude-haiku-4-5"),
        ("  GPT-4o-Mini ", "gpt-4o-mini"),
    ],
)
def test_names_match_with_or_without_provider_and_dated_variants_take_their_family(
    model: str, family: str
) -> None:
    assert find_price(model) == pricing.BUILTIN_PRICES[family]


def test_the_longest_known_prefix_wins() -> None:
    # gpt-4o is a prefix of gpt-4o-mini, and a dated gpt-4o had its own price.
    assert find_price("gpt-4o-mini-2024-07-18") == Price(input_per_million=0.15,
                                                          output_per_million=0.60)
    assert find_price("gpt-4o-2024-05-13") == Price(input_per_million=5.0,
                                                     output_per_million=15.0)
    assert find_price("o3-pro") != find_price("o3")


@pytest.mark.parametrize(
    "model",
    ["my-finetune", "gpt-4", "gpt-4ox", "gpt-5.1", "claude-opus-4-7", "claude-sonnet-4-6",
     "openai:", "", "azure.gpt-4o"],
)
def test_unknown_models_and_newer_versions_have_no_price(model: str) -> None:
    assert find_price(model) is None
    assert cost(model, 100, 100) is None


def test_local_and_scripted_models_cost_nothing() -> None:
    assert cost("local", 10_000, 10_000) == 0.0
    assert cost("scripted", 10_000, 10_000) == 0.0


# --- register_price -----------------------------------------------------------------------


def test_register_price_adds_and_overrides() -> None:
    register_price("my-finetune", 1.0, 2.0)
    register_price("GPT-4o-mini", 0.1, 0.2)

    assert cost("my-finetune", 1_000_000, 1_000_000) == 3.0
    assert cost("my-finetune-2026-01-01", 1_000_000, 0) == 1.0
    assert cost("openai:gpt-4o-mini-2024-07-18", 1_000_000, 0) == 0.1


def test_a_price_with_a_provider_prefix_applies_to_that_provider_only() -> None:
    register_price("openai:llama3", 0.0, 0.0)
    register_price("openai:gpt-4o", 9.0, 9.0)

    assert cost("openai:llama3", 10, 10) == 0.0
    assert cost("llama3", 10, 10) is None
    assert find_price("openai:gpt-4o") == Price(input_per_million=9.0, output_per_million=9.0)
    assert find_price("gpt-4o") == pricing.BUILTIN_PRICES["gpt-4o"]
    # The provider's gpt-4o price does not reach gpt-4o-mini, which has its own.
    assert find_price("openai:gpt-4o-mini") == pricing.BUILTIN_PRICES["gpt-4o-mini"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", 1.0, 1.0), r"needs a model name"),
        (("m", -1.0, 1.0), r"register_price\('m'\): input_per_million: expected a number"),
        (("m", 1.0, float("nan")), r"output_per_million: expected a number of USD >= 0"),
        (("m", 1.0, "2"), r"output_per_million: expected a number of USD >= 0, got '2'"),
    ],
)
def test_register_price_rejects_bad_prices(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(UserError, match=message):
        register_price(*args)  # type: ignore[arg-type]


# --- the PODIUM_PRICES file ---------------------------------------------------------------


def test_prices_load_from_a_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _prices_file(tmp_path, "prices.yaml", "my-model:\n  input: 1\n  output: 4.5\n"
                 "gpt-4o-mini: {input: 0.2, output: 0.8}\n", monkeypatch)

    assert find_price("openai:my-model-v2") == Price(input_per_million=1.0,
                                                     output_per_million=4.5)
    assert cost("gpt-4o-mini", 1_000_000, 0) == 0.2


def test_prices_load_from_a_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _prices_file(tmp_path, "prices.toml", '["gpt-4.1"]\ninput = 1.5\noutput = 6\n', monkeypatch)

    assert cost("gpt-4.1-2025-04-14", 1_000_000, 1_000_000) == 7.5


def test_register_price_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _prices_file(tmp_path, "p.yml", "my-model: {input: 1, output: 1}\n", monkeypatch)
    register_price("my-model", 2.0, 2.0)

    assert cost("my-model", 1_000_000, 0) == 2.0


def test_an_edited_file_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = _prices_file(tmp_path, "p.yaml", "m: {input: 1, output: 1}\n", monkeypatch)
    assert cost("m", 1_000_000, 0) == 1.0

    file.write_text("m: {input: 3, output: 1}\n", encoding="utf-8")
    stat = file.stat()
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    assert cost("m", 1_000_000, 0) == 3.0


def test_an_empty_yaml_file_adds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _prices_file(tmp_path, "p.yaml", "# nothing yet\n", monkeypatch)

    assert cost("gpt-4o", 1_000_000, 0) == 2.5


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.yaml", "a: {input: 1, output: 1}\nb:\n  input: 1\n  output: -2\n",
         r"p\.yaml:2: 'b': output: expected a number of USD >= 0, got -2"),
        ("p.yaml", "a: {input: 1, output: 1}\n\nc: {input: 1}\n",
         r"p\.yaml:3: 'c': a price has exactly 'input' and 'output'.*missing 'output'"),
        ("p.yaml", "d: {input: 1, output: 1, cached: 0.5}\n",
         r"p\.yaml:1: 'd': .*unknown 'cached'"),
        ("p.yaml", "e: 0.15\n", r"p\.yaml:1: 'e': expected 'input' and 'output'.*got float"),
        ("p.yaml", "a: {input: 1\nb: 2\n", r"p\.yaml:2: invalid YAML"),
        ("p.yaml", "- gpt-4o\n", r"p\.yaml:1: expected a mapping of model names to prices"),
        ("p.toml", '["gpt-4o"]\ninput = "cheap"\noutput = 1\n',
         r"p\.toml: \['gpt-4o'\]: input: expected a number of USD >= 0, got 'cheap'"),
        ("p.toml", '["gpt-4o"]\ninput = 1\noutput =\n', r"p\.toml: invalid TOML: .*line 3"),
        ("p.json", "{}", r"p\.json': unknown format '\.json'; name it \.yaml, \.yml or \.toml"),
    ],
)
def test_a_bad_prices_file_names_the_file_and_the_line_or_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, message: str
) -> None:
    _prices_file(tmp_path, name, text, monkeypatch)

    with pytest.raises(UserError, match=message):
        cost("gpt-4o", 1, 1)
    with pytest.raises(UserError, match=message):
        check_prices()


def test_a_missing_prices_file_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_PRICES", str(tmp_path / "nope.yaml"))

    with pytest.raises(UserError, match=r"\$PODIUM_PRICES names '.*nope\.yaml', which cannot"):
        cost("gpt-4o", 1, 1)
    with pytest.raises(UserError, match=r"cannot read prices file '.*nope\.yaml'"):
        load_prices(tmp_path / "nope.yaml")
