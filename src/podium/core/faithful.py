"""Faithfulness: every figure, date and name in an output must appear in the task's data.

A check declared on a model agent or a task (`checks: {faithful: …}` in YAML,
`checks=[Faithful(…)]` in Python). It reads the claims an output makes and looks each one
up in the data the task was given (its sources)::

    output ──► claims: numbers, currency amounts, percentages, dates, names
                 │ each looked up in the sources (the rendered prompt, `with:`, …)
                 ▼
               unsupported claims ──► Unfaithful (an OutputInvalid) naming each of them

What counts as the same value (the tolerance), decided once here:

- **numbers** are compared by magnitude (prose says the sign in words: "a loss of", "down"),
  after removing thousands separators (`1,234.50`), currency symbols and codes (`$`, `€`,
  `USD`) and scale words (`1.2k`, `3 million`). A claim is rounded to the precision it is
  written with: `1,235` and `$1.2k` both stand for 1234.5, `1,234.5` does not stand for
  1234.46. `tolerance` adds a relative margin on top (0.01 accepts 1% off). A number whose
  thousands separators are misplaced (`773,25.13`) is never supported.
- **percentages** (`12.5%`, `12.5 percent`) match a source number of 12.5 or a fraction
  0.125, at the precision written.
- **currency** amounts are numbers; a source amount written with another currency does not
  support them, an amount written without one does.
- **dates** (`2026-10-14`, `14 Oct 2026`, `October 14, 2026`, `October 2026`, `10/14/2026`,
  a month name, a year between 1900 and 2099) are normalised by python-dateutil; every part
  a claim gives (year, month, day) must be given alike by one source date. `10/11/2026`
  may be read either way round.
- **entities**: runs of capitalised words (`Skyline Charter`, `Bank of Leeds`) and single
  capitalised words inside a sentence (`Travel`), leading articles and prepositions dropped;
  matched case-insensitively as whole words anywhere in the sources' text, keys included.
  A capitalised word that starts a sentence alone is not a name.
- plain integers up to `small_numbers` (counts: "3 categories"), their ordinals ("2nd"),
  and the values listed in `allow` are always supported. Numbers written in words are not
  read.

Everything here is pure: the engine and the LLM agent gather the sources and journal.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from dateutil import parser as dateparser

from podium.errors import Unfaithful

Kind = Literal["numbers", "currency", "percentages", "dates", "entities"]
KINDS: tuple[Kind, ...] = ("numbers", "currency", "percentages", "dates", "entities")
_FIGURES: tuple[Kind, ...] = KINDS[:4]
"""What is read from the data by pattern: names are looked up in its words instead."""
SOURCE_ROOTS = ("prompt", "with", "inputs", "outputs")
"""Where sources come from: the rendered prompt, the task's `with:` values, the run's inputs
(`inputs.NAME` for one), the outputs of the tasks it depends on (`outputs.TASK` for one)."""


@dataclass(frozen=True, kw_only=True)
class Given:
    """Everything a task was given, from which a check picks its sources."""

    prompt: str | None = None
    """The rendered prompt."""
    args: Mapping[str, Any] = field(default_factory=dict)
    """The rendered `with:` values."""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    """The run's inputs."""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    """Upstream outputs by task id."""


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One checkable statement of an output."""

    kind: Kind
    text: str
    """As written in the output."""
    where: str
    """The output field it was read from (`text`, `items.0.name`; `(root)` for the output)."""
    reason: str = ""
    """Why it cannot be supported whatever the data (a malformed number), if so."""

    def __str__(self) -> str:
        why = f", {self.reason}" if self.reason else ""
        return f"{self.text!r} ({self.kind} at {self.where}{why})"


@dataclass(frozen=True, kw_only=True)
class Faithful:
    """Every number, date and name in the output must appear in the task's sources.

    Raises:
        ValueError: a setting is out of range or names an unknown kind or source; the
            message names the setting.
    """

    kinds: tuple[Kind, ...] = KINDS
    """Which kinds of claim are checked."""
    sources: tuple[str, ...] = ("prompt", "with")
    """Where supporting data may be: `prompt`, `with`, `inputs`, `inputs.NAME`, `outputs`,
    `outputs.TASK`. By default what the task's prompt and `with:` values show the agent."""
    tolerance: float = 0.0
    """A relative margin on numbers, on top of rounding to the precision written."""
    allow: tuple[str | int | float, ...] = ()
    """Values always supported: numbers, dates or names (`2026`, `"Podium"`)."""
    small_numbers: int = 10
    """Plain integers (and ordinals) up to this are supported: counts, ranks. -1: none."""
    max_listed: int = 10
    """How many unsupported claims a failure spells out."""
    min_figures: int = 0
    """How many figures of the data (numbers, amounts, percentages, dates; not counts
    under `small_numbers` nor `allow`ed values) the output must state: an output that
    states nothing checkable is faithful, but may be of no use."""

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"kinds: {unknown or 'none'} not among {list(KINDS)}; "
                             "list one or more of them")
        for source in self.sources:
            if source.partition(".")[0] not in SOURCE_ROOTS or source in ("prompt.", "with."):
                raise ValueError(f"sources: {source!r} is not one of 'prompt', 'with', "
                                 "'inputs', 'inputs.NAME', 'outputs', 'outputs.TASK'")
        if not self.sources:
            raise ValueError("sources: give at least one source")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"tolerance: {self.tolerance!r} is not a fraction in [0, 1)")
        if self.small_numbers < -1 or self.max_listed < 1 or self.min_figures < 0:
            raise ValueError(f"small_numbers must be >= -1, max_listed >= 1 and min_figures "
                             f">= 0, got {self.small_numbers!r}, {self.max_listed!r} and "
                             f"{self.min_figures!r}")

    def unsupported(self, output: Any, given: Given) -> list[Claim]:
        """The claims of `output` that no source supports, in the order written, each
        once (per field)."""
        return self._judge(output, given)[0]

    def _judge(self, output: Any, given: Given) -> tuple[list[Claim], int]:
        """The unsupported claims, and how many figures the data supports."""
        facts = _Facts.of(self._sources(given))
        allowed = _Facts.of(list(self.allow))
        found, figures = [], 0
        for claim, value in _claims(output, self.kinds):
            if allowed.supports(claim, value, 0.0) or self._small(claim, value):
                continue
            if not claim.reason and facts.supports(claim, value, self.tolerance):
                figures += claim.kind != "entities"
            else:
                found.append(claim)
        return list(dict.fromkeys(found)), figures

    def check(self, output: Any, given: Given) -> None:
        """Raises:
            Unfaithful: some claims are unsupported, naming them (up to `max_listed`); or
                the output states fewer than `min_figures` figures of the data.
        """
        claims, figures = self._judge(output, given)
        if not claims and figures < self.min_figures:
            raise Unfaithful(f"the output states {figures} figure(s) of the task's data; at "
                             f"least {self.min_figures} are required (min_figures)")
        if not claims:
            return
        listed = ", ".join(map(str, claims[:self.max_listed]))
        more = len(claims) - self.max_listed
        noun = "claim is" if len(claims) == 1 else "claims are"
        raise Unfaithful(
            f"{len(claims)} {noun} not in the task's data (sources: "
            f"{', '.join(self.sources)}): {listed}" + (f" and {more} more" if more > 0 else ""),
            claims=[{"kind": c.kind, "text": c.text, "where": c.where,
                     **({"reason": c.reason} if c.reason else {})} for c in claims])

    def feedback(self, error: Unfaithful) -> str:
        """What a model is told after a reply with unsupported claims (beside the task,
        not after the reply)."""
        if not error.claims:
            return (f"An earlier reply to this stated too few of the figures given. State "
                    f"at least {self.min_figures} of the amounts, percentages and dates of "
                    "the data, written as they appear there.")
        texts = ", ".join(repr(c["text"]) for c in error.claims[:self.max_listed])
        return (f"An earlier reply to this stated things that are not in the data given: "
                f"{texts}. Use only figures, dates and names that appear in the data, "
                "written as they appear there; leave out anything you cannot take from it.")

    def _sources(self, given: Given) -> list[Any]:
        picked: list[Any] = []
        for source in self.sources:
            root, _, name = source.partition(".")
            if root == "prompt":
                picked.append(given.prompt or "")
            elif root == "with":
                picked.append(given.args)
            else:
                values = given.inputs if root == "inputs" else given.outputs
                picked.append(values.get(name) if name else values)
        return picked

    def _small(self, claim: Claim, value: Any) -> bool:
        return (claim.kind == "numbers" and isinstance(value, _Number) and value.plain
                and value.value <= self.small_numbers)


# -- reading claims --------------------------------------------------------------------------

_MONTHS = ("january february march april may june july august september october november "
           "december").split()
_MONTH_WORD = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|"
               r"Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_ORD = r"(?:st|nd|rd|th)?"
_DATE = re.compile(
    r"(?<![\w.])(?:"
    r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?"  # 2026-10-14
    r"|\d{4}/\d{1,2}/\d{1,2}"  # 2026/10/14
    r"|\d{1,2}[/.]\d{1,2}[/.]\d{4}"  # 14/10/2026, 10.14.2026
    r"|\d{4}-(?:0[1-9]|1[0-2])(?![\d-])"  # 2026-10
    rf"|\d{{1,2}}{_ORD}\s+(?:of\s+)?{_MONTH_WORD}(?:,?\s+\d{{4}})?"  # 14 October 2026
    rf"|{_MONTH_WORD}(?:\s+\d{{1,2}}{_ORD}(?!\d))?(?:,?\s+\d{{4}})?"  # October 14, 2026
    r")(?![\w])")
_NUMBER = re.compile(
    r"(?<![\w.,])(?P<neg>[-\u2212])?(?P<cur>[$€£¥]|(?:USD|EUR|GBP|JPY|CHF|CAD|AUD)\s?)?[-\u2212]?"
    r"(?P<num>\d[\d,]*\d(?:\.\d+)?|\d(?:\.\d+)?|\.\d+)"
    r"(?P<ord>st|nd|rd|th)?"
    r"(?P<scale>\s?(?:k|K|bn|BN|[mM](?!\w))(?![\w])|\s(?:thousand|million|billion)\b)?"
    r"(?P<pct>\s?%|\s(?:percent|per\s?cent)\b)?"
    r"(?P<code>\s(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|dollars?|euros?|pounds?)\b)?"
    r"(?![\w])")
_SCALES = {"k": 3, "thousand": 3, "m": 6, "million": 6, "bn": 9, "billion": 9}
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_WORDS = {"dollar": "USD", "euro": "EUR", "pound": "GBP"}
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+")
_WORD = r"[A-Z][\w'\u2019&.-]*[\w]|[A-Z]"
_NAME = re.compile(rf"(?:{_WORD})(?:\s+(?:(?:of|and|&|de|du|la|van|von|der)\s+)?(?:{_WORD}))*")
_LEADING = frozenset(
    "the a an in on at for of to by from with this that these those its it our their his her "
    "overall however also and but or so then total net while during since after before as "
    "all each every both".split())
_CALENDAR = frozenset([*_MONTHS, *(m[:3] for m in _MONTHS), "sept", "monday", "tuesday",
                       "wednesday", "thursday", "friday", "saturday", "sunday", "i",
                       "usd", "eur", "gbp", "jpy", "chf", "cad", "aud"])


@dataclass(frozen=True)
class _Number:
    value: Decimal
    """The magnitude."""
    unit: Decimal
    """The place of the last digit written (0.01 for `1.50`, 100 for `1.2k`)."""
    percent: bool = False
    currency: str | None = None
    plain: bool = False
    """A bare integer: no currency, percent, decimals or scale."""


@dataclass(frozen=True)
class _Date:
    year: int | None
    month: int | None
    day: int | None


_A = datetime(2001, 1, 1)
_B = datetime(2002, 2, 2)


_ISO = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?")


@functools.lru_cache(maxsize=4096)
def _date(text: str) -> tuple[_Date, ...]:
    """The dates `text` may mean (two for an ambiguous day/month), none if it is no date."""
    iso = _ISO.fullmatch(text)
    if iso:  # the commonest form in data, read without dateutil's general parser
        year, month, day = (int(part) if part else None for part in iso.groups())
        try:
            datetime(year or 1, month or 1, day or 1)
        except ValueError:
            return ()
        return (_Date(year, month, day),)
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text.replace(" of ", " "))
    found = []
    firsts = (False, True) if re.fullmatch(r"\d{1,2}[/.]\d{1,2}[/.]\d{4}", text) else (False,)
    for dayfirst in firsts:
        try:
            a = dateparser.parse(text, default=_A, dayfirst=dayfirst)
            b = dateparser.parse(text, default=_B, dayfirst=dayfirst)
        except (ValueError, OverflowError):
            continue
        found.append(_Date(a.year if a.year == b.year else None,
                           a.month if a.month == b.month else None,
                           a.day if a.day == b.day else None))
    return tuple(dict.fromkeys(found))


def _number(m: re.Match[str]) -> _Number | None:
    """The number a `_NUMBER` match writes; None when its grouping is malformed."""
    digits = m["num"]
    if not _GROUPED.fullmatch(digits):
        return None
    try:
        value = Decimal(digits.replace(",", ""))
    except InvalidOperation:
        return None
    decimals = len(digits.partition(".")[2])
    scale = _SCALES.get((m["scale"] or "").strip().lower(), 0)
    written = (m["cur"] or m["code"] or "").strip()
    currency = _SYMBOLS.get(written) or _WORDS.get(written.rstrip("s"), written)
    return _Number(value=value.scaleb(scale), unit=Decimal(1).scaleb(scale - decimals),
                   percent=bool(m["pct"]), currency=currency or None,
                   plain=not (m["pct"] or currency or decimals or scale))


def _text_claims(text: str, where: str, kinds: tuple[Kind, ...]
                 ) -> Iterator[tuple[Claim, Any]]:
    masked = list(text)

    def mask(m: re.Match[str]) -> None:
        masked[m.start():m.end()] = " " * (m.end() - m.start())

    for m in _DATE.finditer(text):
        dates = _date(m[0])
        if "dates" in kinds:
            yield (Claim(kind="dates", text=m[0], where=where) if dates else
                   Claim(kind="dates", text=m[0], where=where, reason="not a real date")), dates
        mask(m)
    rest = "".join(masked)
    for m in _NUMBER.finditer(rest):
        number = _number(m)
        kind: Kind = ("percentages" if m["pct"] else
                      "currency" if (m["cur"] or m["code"]) else "numbers")
        if number is not None and number.plain and 1900 <= number.value <= 2099 \
                and not m["ord"]:
            if "dates" in kinds:
                yield Claim(kind="dates", text=m[0].strip(), where=where), [
                    _Date(int(number.value), None, None)]
        elif kind in kinds:
            yield (Claim(kind=kind, text=m[0].strip(), where=where) if number else
                   Claim(kind=kind, text=m[0].strip(), where=where,
                         reason="its thousands separators are misplaced")), number
        mask(m)
    if "entities" in kinds:
        yield from _entities("".join(masked), where)


def _entities(text: str, where: str) -> Iterator[tuple[Claim, Any]]:
    for m in _NAME.finditer(text):
        words = m[0].split()
        before = text[:m.start()].rstrip()
        starts = not before or before[-1] in ".!?:;\n•*-\"(“"
        while words and words[0].lower().strip(".") in _LEADING:
            words, starts = words[1:], False
        words = [w for w in words if w.lower().strip(".") not in _CALENDAR] if len(
            words) == 1 else words
        if not words or (len(words) == 1 and starts):
            continue
        name = " ".join(words).rstrip(".")
        name = re.sub(r"['\u2019]s$", "", name)
        if len(name) > 1 and name.lower() not in _CALENDAR:
            yield Claim(kind="entities", text=name, where=where), name


def _claims(output: Any, kinds: tuple[Kind, ...]) -> Iterator[tuple[Claim, Any]]:
    for where, value in _leaves(output, "(root)"):
        if isinstance(value, str):
            yield from _text_claims(value, where, kinds)
        elif "numbers" in kinds and isinstance(value, int | float) \
                and not isinstance(value, bool):
            text = repr(value)
            decimals = len(text.partition(".")[2]) if "e" not in text else 0
            number = _Number(value=abs(Decimal(text)), unit=Decimal(1).scaleb(-decimals),
                             plain=isinstance(value, int))
            yield Claim(kind="numbers", text=text, where=where), number


def _leaves(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, str(key) if where == "(root)" else f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _leaves(item, str(i) if where == "(root)" else f"{where}.{i}")
    else:
        yield where, value


# -- the data --------------------------------------------------------------------------------


@dataclass
class _Facts:
    numbers: list[_Number] = field(default_factory=list)
    dates: set[_Date] = field(default_factory=set)
    words: str = " "
    """Every source string and key, lower-cased, words separated by single spaces."""

    @classmethod
    def of(cls, sources: list[Any]) -> _Facts:
        facts = cls()
        # One text read once: a pattern run over a few large strings costs far less than
        # over thousands of small ones. The separator stops a date or number across two.
        text = " \u00a6 ".join(t for source in sources for t in _strings(source))
        for claim, value in _text_claims(text, "", _FIGURES):
            if isinstance(value, _Number):
                facts.numbers.append(value)
            elif claim.kind == "dates":
                facts.dates.update(value)
        for source in sources:
            for number in _source_numbers(source):
                facts.numbers.append(number)
                if number.value == number.value.to_integral() and 1900 <= number.value <= 2099:
                    facts.dates.add(_Date(int(number.value), None, None))  # a year
        facts.numbers.sort(key=lambda n: n.value)
        facts.words = f" {_words(text)} "
        return facts

    def supports(self, claim: Claim, value: Any, tolerance: float) -> bool:
        if isinstance(value, _Number):
            return any(_same(value, fact, tolerance) for fact in self._near(value, tolerance))
        if claim.kind == "dates":
            return any(_covers(fact, date) for date in value for fact in self.dates)
        # "Payroll and Travel" may be two names as well as one ("Marks and Spencer").
        names = [str(value), *re.split(r"\s+(?:and|&)\s+", str(value))]
        return f" {_words(names[0])} " in self.words or (len(names) > 2 and all(
            f" {_words(name)} " in self.words for name in names[1:]))


    def _near(self, claim: _Number, tolerance: float) -> Iterator[_Number]:
        """The numbers that may be within tolerance of `claim` (as fractions, too)."""
        keys = [n.value for n in self.numbers]
        low = (claim.value - claim.unit / 2) / (1 + Decimal(str(tolerance)))
        high = (claim.value + claim.unit / 2) / (1 - Decimal(str(tolerance)))
        for scale in (1, 100) if claim.percent else (1,):
            start = bisect.bisect_left(keys, low / scale)
            end = bisect.bisect_right(keys, high / scale)
            yield from self.numbers[start:end]


def _same(claim: _Number, fact: _Number, tolerance: float) -> bool:
    if claim.currency and fact.currency and claim.currency != fact.currency:
        return False
    margin = claim.unit / 2 + Decimal(str(tolerance)) * fact.value
    candidates = [fact.value]
    if claim.percent and not fact.percent:
        candidates.append(fact.value * 100)  # a fraction: 0.125 is 12.5%
    return any(abs(candidate - claim.value) <= margin for candidate in candidates)


def _covers(fact: _Date, claim: _Date) -> bool:
    return all(c is None or c == f for c, f in ((claim.year, fact.year),
                                                (claim.month, fact.month),
                                                (claim.day, fact.day)))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif value is not None and not isinstance(value, bool | int | float):
        yield json.dumps(value, default=str)


def _source_numbers(value: Any) -> Iterator[_Number]:
    for _, leaf in _leaves(value, "(root)"):
        if isinstance(leaf, int | float) and not isinstance(leaf, bool):
            try:
                exact = abs(Decimal(repr(leaf)))
            except InvalidOperation:
                continue  # NaN or infinity: supports nothing
            if exact.is_finite():
                yield _Number(value=exact, unit=Decimal(0))


def _words(text: str) -> str:
    text = re.sub(r"['\u2019]s\b", "", text.casefold())
    return " ".join(re.findall(r"[\w&]+", text))
