"""What model calls cost: USD per million input and output tokens, by model name.

`cost("openai:gpt-4o-mini", 1200, 300)` is the price of one call. Names are matched
with or without their provider prefix (`openai:gpt-4o-mini` or `gpt-4o-mini`), and a
name that is not in the table takes the price of its longest known prefix that ends
where a `-` or `@` begins, so dated variants and aliases (`gpt-4o-mini-2024-07-18`,
`claude-3-5-haiku-latest`) cost what their family costs. A one- or two-digit number
right after the known name is a newer version, not a variant (`claude-opus-4-7` is not
`claude-opus-4`), and is not priced by it. A name nothing matches has no price: `cost`
returns None rather than guess.

The built-in table (`BUILTIN_PRICES`) was taken from OpenAI's and Anthropic's public
price lists as of `PRICES_DATE`, standard tier, without prompt caching or batch
discounts. Prices change: check the providers' pages, and correct or extend the table
with `register_price`, or with a file named by the `PODIUM_PRICES` environment
variable, YAML or TOML, mapping model names to prices::

    # prices.yaml                       # prices.toml
    gpt-4o-mini:                        ["gpt-4o-mini"]
      input: 0.15                       input = 0.15
      output: 0.60                      output = 0.60

A price given with a provider prefix (`openai:my-model`) applies to that provider only.
Later sources win: `register_price` over the `PODIUM_PRICES` file over the built-in table.
`local` and `scripted` models cost nothing.
"""

from __future__ import annotations

import math
import os
import re
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from podium.errors import UserError

PRICES_ENV = "PODIUM_PRICES"
"""Environment variable naming a YAML or TOML file of extra prices."""

PRICES_DATE = "2025-11"
"""When the built-in prices were taken from the providers' price lists."""

_BOUNDARY = "-@"


@dataclass(frozen=True, kw_only=True)
class Price:
    """What a model's tokens cost."""

    input_per_million: float
    """USD per million input (prompt) tokens."""
    output_per_million: float
    """USD per million output (completion) tokens."""

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one call that used these many tokens."""
        total = input_tokens * self.input_per_million + output_tokens * self.output_per_million
        # Rounded so journals show 0.0003, not 0.00030000000000000003.
        return round(total / 1_000_000, 10)


def _p(input_per_million: float, output_per_million: float) -> Price:
    return Price(input_per_million=input_per_million, output_per_million=output_per_million)


BUILTIN_PRICES: Mapping[str, Price] = MappingProxyType({
    # Podium's own
    "local": _p(0.0, 0.0),
    "scripted": _p(0.0, 0.0),
    # OpenAI
    "gpt-3.5-turbo": _p(0.50, 1.50),
    "gpt-4-turbo": _p(10.00, 30.00),
    "gpt-4o": _p(2.50, 10.00),
    "gpt-4o-2024-05-13": _p(5.00, 15.00),
    "gpt-4o-mini": _p(0.15, 0.60),
    "gpt-4.1": _p(2.00, 8.00),
    "gpt-4.1-mini": _p(0.40, 1.60),
    "gpt-4.1-nano": _p(0.10, 0.40),
    "gpt-5": _p(1.25, 10.00),
    "gpt-5-mini": _p(0.25, 2.00),
    "gpt-5-nano": _p(0.05, 0.40),
    "gpt-5-pro": _p(15.00, 120.00),
    "o1": _p(15.00, 60.00),
    "o1-mini": _p(1.10, 4.40),
    "o1-pro": _p(150.00, 600.00),
    "o3": _p(2.00, 8.00),
    "o3-mini": _p(1.10, 4.40),
    "o3-pro": _p(20.00, 80.00),
    "o4-mini": _p(1.10, 4.40),
    # Anthropic (Sonnet 4 and 4.5 prompts over 200k tokens cost more; not modelled)
    "claude-3-haiku": _p(0.25, 1.25),
    "claude-3-5-haiku": _p(0.80, 4.00),
    "claude-haiku-4-5": _p(1.00, 5.00),
    "claude-3-5-sonnet": _p(3.00, 15.00),
    "claude-3-7-sonnet": _p(3.00, 15.00),
    "claude-sonnet-4": _p(3.00, 15.00),
    "claude-sonnet-4-0": _p(3.00, 15.00),
    "claude-sonnet-4-5": _p(3.00, 15.00),
    "claude-3-opus": _p(15.00, 75.00),
    "claude-opus-4": _p(15.00, 75.00),
    "claude-opus-4-0": _p(15.00, 75.00),
    "claude-opus-4-1": _p(15.00, 75.00),
    "claude-opus-4-5": _p(5.00, 25.00),
})
"""Built-in prices, USD per million tokens, as of `PRICES_DATE`; check before relying."""

_lock = threading.Lock()
_registered: dict[str, Price] = {}
_file_cache: tuple[tuple[str, int], dict[str, Price]] | None = None


def register_price(model: str, input_per_million: float, output_per_million: float) -> None:
    """Set the price of `model` for this process, over the built-in table and any file.

    Args:
        model: a model name, e.g. `gpt-4o-mini`; with a provider prefix
            (`openai:my-model`) the price applies to that provider's model only. Names
            that extend it at a `-` or `@` (dated variants) get the same price unless
            they have their own.
        input_per_million: USD per million input tokens.
        output_per_million: USD per million output tokens.

    Raises:
        UserError: the name is empty or a price is negative or not a finite number.
    """
    name = _normalize(model)
    if not name:
        raise UserError("register_price needs a model name, e.g. 'gpt-4o-mini'")
    where = f"register_price({model!r})"
    price = _p(
        _amount(input_per_million, f"{where}: input_per_million"),
        _amount(output_per_million, f"{where}: output_per_million"),
    )
    with _lock:
        _registered[name] = price


def find_price(model: str) -> Price | None:
    """The price of `model`, or None when no known name matches it; see the module doc.

    Raises:
        UserError: the `PODIUM_PRICES` file cannot be read or is invalid.
    """
    table = _table()
    name = _normalize(model)
    provider, colon, bare = name.partition(":")
    candidates = [(name, len(provider) + 1 if colon else 0, 1)]
    if colon and bare:
        candidates.append((bare, 0, 0))
    best: tuple[int, int] | None = None
    found: Price | None = None
    for candidate, prefix_len, specific in candidates:
        for key, price in table.items():
            if candidate == key or _extends(candidate, key):
                # The most model name matched wins; on a tie, a provider-specific price.
                score = (len(key) - prefix_len, specific)
                if best is None or score > best:
                    best, found = score, price
    return found


def cost(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """USD that one call to `model` cost, or None when the model's price is unknown.

    Example:
        ```python
        cost("openai:gpt-4o-mini-2024-07-18", 1_000_000, 0)  # 0.15
        cost("local", 500, 80)                               # 0.0
        cost("my-finetune", 500, 80)                         # None
        ```

    Raises:
        UserError: the `PODIUM_PRICES` file cannot be read or is invalid.
    """
    price = find_price(model)
    return None if price is None else price.cost(input_tokens, output_tokens)


def check_prices() -> None:
    """Read the `PODIUM_PRICES` file now, if one is named.

    Call it before a run starts, so a broken file is reported before any model is paid
    for rather than after the first call.

    Raises:
        UserError: the file cannot be read or is invalid.
    """
    _table()


def load_prices(path: str | os.PathLike[str]) -> dict[str, Price]:
    """Read a prices file (`.yaml`, `.yml` or `.toml`); see the module doc for its shape.

    Raises:
        UserError: the file cannot be read or parsed, or an entry is not a price; the
            message names the file, and the line (YAML) or the model name.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read prices file {str(file)!r}: {exc.strerror or exc}; "
                        f"fix the path in ${PRICES_ENV}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"prices file {str(file)!r} is not UTF-8 text: {exc.reason}") from None
    suffix = file.suffix.lower()
    if suffix in (".yaml", ".yml"):
        entries = _yaml_entries(file, text)
    elif suffix == ".toml":
        entries = _toml_entries(file, text)
    else:
        raise UserError(
            f"prices file {str(file)!r}: unknown format {suffix or '(no suffix)'!r}; "
            f"name it .yaml, .yml or .toml"
        )
    prices: dict[str, Price] = {}
    for model, where, value in entries:
        prices[_normalize(model)] = _price(value, where)
    return prices


def _table() -> dict[str, Price]:
    global _file_cache
    table = dict(BUILTIN_PRICES)
    setting = os.environ.get(PRICES_ENV)
    if setting:
        try:
            stamp = (setting, Path(setting).stat().st_mtime_ns)
        except OSError as exc:
            raise UserError(f"${PRICES_ENV} names {setting!r}, which cannot be read: "
                            f"{exc.strerror or exc}") from None
        with _lock:
            cached = _file_cache
        if cached is None or cached[0] != stamp:
            cached = (stamp, load_prices(setting))
            with _lock:
                _file_cache = cached
        table.update(cached[1])
    with _lock:
        table.update(_registered)
    return table


def _extends(name: str, known: str) -> bool:
    if not (name.startswith(known) and len(name) > len(known) and name[len(known)] in _BOUNDARY):
        return False
    segment = re.split(r"[-@.]", name[len(known) + 1:], maxsplit=1)[0]
    return not (segment.isdigit() and len(segment) <= 2)


def _yaml_entries(file: Path, text: str) -> Iterator[tuple[str, str, Any]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise UserError(f"{file}{line}: invalid YAML: {problem}") from None
    if data is None:
        return
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        raise UserError(f"{file}:1: expected a mapping of model names to prices, e.g. "
                        f"'gpt-4o-mini: {{input: 0.15, output: 0.60}}'")
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in root.value}
    for model, value in data.items():
        yield str(model), f"{file}:{lines.get(str(model), 1)}: {str(model)!r}", value


def _toml_entries(file: Path, text: str) -> Iterator[tuple[str, str, Any]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{file}: invalid TOML: {exc}") from None
    for model, value in data.items():
        yield model, f"{file}: [{model!r}]", value


def _price(value: Any, where: str) -> Price:
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected 'input' and 'output' (USD per million tokens), "
                        f"got {type(value).__name__} {value!r}")
    unknown = sorted(map(str, set(value) - {"input", "output"}))
    missing = [field for field in ("input", "output") if field not in value]
    if unknown or missing:
        raise UserError(
            f"{where}: a price has exactly 'input' and 'output' (USD per million tokens); "
            + "; ".join(
                ([f"unknown {', '.join(map(repr, unknown))}"] if unknown else [])
                + ([f"missing {', '.join(map(repr, missing))}"] if missing else [])
            )
        )
    return _p(_amount(value["input"], f"{where}: input"),
              _amount(value["output"], f"{where}: output"))


def _amount(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise UserError(f"{where}: expected a number of USD >= 0, got {value!r}")
    return float(value)


def _normalize(model: str) -> str:
    return model.strip().lower()
