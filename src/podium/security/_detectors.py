"""The offline detectors behind `podium.security.masking`: regexes that find candidates and
validators (Luhn, `phonenumbers`, `python-stdnum`, `ipaddress`) that keep only real ones.

Every detector is a function `(text) -> Iterator[Span]`; the masker runs them all and merges
overlapping spans, so a detector may over-report a little but must never report a span that
is not the whole value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import phonenumbers
from stdnum import iban as _iban
from stdnum.de import idnr as _de_idnr
from stdnum.es import dni as _es_dni
from stdnum.fr import nir as _fr_nir
from stdnum.it import codicefiscale as _it_cf
from stdnum.us import ssn as _us_ssn


@dataclass(frozen=True, slots=True)
class Span:
    """One value found in a text: `text[start:end]` is a `label`."""

    label: str
    start: int
    end: int
    priority: int
    """Breaks ties between overlapping spans of the same length; lower wins."""


Detector = Callable[[str], Iterator[Span]]


# -- email ----------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


def find_emails(text: str) -> Iterator[Span]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        yield Span("EMAIL", m.start(), m.end(), 2)


# -- payment cards --------------------------------------------------------------------------

_CARD_CANDIDATE = re.compile(r"(?<![\w+.,-])\d(?:[ -]?\d){11,18}(?![\w-])")
_GROUP_SEP = re.compile(r"[ -]")

# (first digits low, high inclusive, as strings of equal length), allowed lengths.
_IIN_RANGES: tuple[tuple[str, str, frozenset[int]], ...] = (
    ("4", "4", frozenset({13, 16, 19})),  # Visa
    ("51", "55", frozenset({16})),  # Mastercard
    ("2221", "2720", frozenset({16})),  # Mastercard 2-series
    ("34", "34", frozenset({15})),  # American Express
    ("37", "37", frozenset({15})),
    ("6011", "6011", frozenset(range(16, 20))),  # Discover
    ("644", "649", frozenset(range(16, 20))),
    ("65", "65", frozenset(range(16, 20))),
    ("622126", "622925", frozenset(range(16, 20))),
    ("3528", "3589", frozenset(range(16, 20))),  # JCB
    ("300", "305", frozenset(range(14, 20))),  # Diners Club
    ("3095", "3095", frozenset(range(14, 20))),
    ("36", "36", frozenset(range(14, 20))),
    ("38", "39", frozenset(range(14, 20))),
    ("62", "62", frozenset(range(16, 20))),  # UnionPay
    ("81", "81", frozenset(range(16, 20))),
    ("50", "50", frozenset(range(12, 20))),  # Maestro
    ("56", "58", frozenset(range(12, 20))),
    ("6304", "6304", frozenset(range(12, 20))),
    ("6759", "6759", frozenset(range(12, 20))),
    ("6761", "6763", frozenset(range(12, 20))),
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """Whether `digits` (no separators) is a Luhn-valid number of a known card scheme."""
    n = len(digits)
    if not 12 <= n <= 19 or not luhn_ok(digits):
        return False
    return any(
        low <= digits[: len(low)] <= high and n in lengths for low, high, lengths in _IIN_RANGES
    )


def find_cards(text: str) -> Iterator[Span]:
    for m in _CARD_CANDIDATE.finditer(text):
        raw = m.group()
        if is_card_number(_GROUP_SEP.sub("", raw)):
            yield Span("CARD", m.start(), m.end(), 4)
            continue
        # The candidate may have swallowed neighbouring digit groups: try every run of
        # whole groups inside it, longest first.
        found = _card_in_groups(raw)
        if found is not None:
            yield Span("CARD", m.start() + found[0], m.start() + found[1], 4)


def _card_in_groups(raw: str) -> tuple[int, int] | None:
    groups = [(g.start(), g.end()) for g in re.finditer(r"\d+", raw)]
    if len(groups) < 2:
        return None
    best: tuple[int, int] | None = None
    for i in range(len(groups)):
        for j in range(i, len(groups)):
            start, end = groups[i][0], groups[j][1]
            if best is not None and end - start <= best[1] - best[0]:
                continue
            if is_card_number(_GROUP_SEP.sub("", raw[start:end])):
                best = (start, end)
    return best


# -- IBAN -----------------------------------------------------------------------------------

_IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")


def find_ibans(text: str) -> Iterator[Span]:
    for m in _IBAN_CANDIDATE.finditer(text):
        raw = m.group()
        # Cut at the longest prefix that validates and ends at a group boundary, so that a
        # following upper-case word or number is not part of the IBAN.
        ends = [i + 1 for i, ch in enumerate(raw) if ch != " " and (i + 1 == len(raw)
                                                                    or raw[i + 1] == " ")]
        for end in reversed(ends):
            if _iban.is_valid(raw[:end]):
                yield Span("IBAN", m.start(), m.start() + end, 3)
                break


# -- national numbers -----------------------------------------------------------------------

# UK National Insurance number: HMRC's rules (stdnum has no module for it).
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
)


def _stdnum_detector(label: str, pattern: str, valid: Callable[[str], bool]) -> Detector:
    regex = re.compile(pattern)

    def find(text: str) -> Iterator[Span]:
        for m in regex.finditer(text):
            if valid(m.group()):
                yield Span(label, m.start(), m.end(), 5)

    find.__name__ = f"find_{label.lower()}"
    return find


def _always(_: str) -> bool:
    return True


NATIONAL_DETECTORS: dict[str, Detector] = {
    "US_SSN": _stdnum_detector(
        "US_SSN", r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])", _us_ssn.is_valid
    ),
    "UK_NINO": _stdnum_detector("UK_NINO", _NINO.pattern, _always),
    "DE_TAX_ID": _stdnum_detector(
        "DE_TAX_ID",
        r"(?<![\w/-])(?<!\d )\d{2} ?\d{3} ?\d{3} ?\d{3}(?![\w/-])(?! \d)",
        _de_idnr.is_valid,
    ),
    "FR_NIR": _stdnum_detector(
        "FR_NIR",
        r"(?<![\w-])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3}"
        r" ?\d{2}(?![\w-])",
        _fr_nir.is_valid,
    ),
    "ES_DNI": _stdnum_detector(
        "ES_DNI", r"(?<![\w-])\d{8}-?[A-Za-z](?![\w-])", _es_dni.is_valid
    ),
    "IT_CF": _stdnum_detector(
        "IT_CF", r"(?<![A-Za-z0-9])[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}"
        r"[A-Z][0-9LMNPQRSTUV]{3}[A-Z](?![A-Za-z0-9])", _it_cf.is_valid,
    ),
}


# -- IP addresses ---------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)(?![\w])")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})"
    r"(?:%[0-9A-Za-z]+)?(?![\w:])"
)


def find_ipv4(text: str) -> Iterator[Span]:
    for m in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        yield Span("IPV4", m.start(), m.end(), 7)


def find_ipv6(text: str) -> Iterator[Span]:
    if "::" not in text and text.count(":") < 7:
        return
    for m in _IPV6.finditer(text):
        raw = m.group()
        if sum(ch in "0123456789abcdefABCDEF" for ch in raw) < 3:
            continue
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            continue
        yield Span("IPV6", m.start(), m.end(), 6)


# -- phone numbers --------------------------------------------------------------------------

# A cheap pre-filter: `phonenumbers`' matcher only runs on windows around digit runs
# that could be a phone number (at least 6 digits with usual separators).
_PHONE_WINDOW = re.compile(r"(?:\+|\b)\(?\d(?:[\s().\-/]{0,3}\d){5,}\)?")
_PHONE_CONTEXT = 8


def _balanced(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without an opening or closing parenthesis that has no partner in it."""
    value = text[start:end]
    if value.startswith("(") and ")" not in value:
        start += 1
    elif value.endswith(")") and "(" not in value:
        end -= 1
    return start, end


PhoneDetector = Callable[[str, Sequence[Span]], Iterator[Span]]


def phone_detector(regions: tuple[str, ...]) -> PhoneDetector:
    """A detector of phone numbers valid in international format, or in the national
    format of one of `regions` (ISO 3166 alpha-2 codes).

    `phonenumbers`' matcher is by far the slowest detector, so it skips digit runs that lie
    inside spans other detectors found already (`covered`): card numbers, IBANs, addresses.
    """
    valid = phonenumbers.Leniency.VALID
    first = regions[0] if regions else "ZZ"
    others = regions[1:]

    def find(text: str, covered: Sequence[Span] = ()) -> Iterator[Span]:
        for w in _PHONE_WINDOW.finditer(text):
            if any(c.start <= w.start() and w.end() <= c.end for c in covered):
                continue
            lo = max(0, w.start() - _PHONE_CONTEXT)
            window = text[lo : w.end() + _PHONE_CONTEXT]
            seen: set[tuple[int, int]] = set()
            for region in (first, *others):
                for match in phonenumbers.PhoneNumberMatcher(window, region, leniency=valid):
                    span = _balanced(text, lo + match.start, lo + match.end)
                    if span not in seen:
                        seen.add(span)
                        yield Span("PHONE", span[0], span[1], 8)
                if w.group().startswith("+"):
                    break  # international format: the region does not matter

    return find


BUILTIN: dict[str, Detector] = {
    "EMAIL": find_emails,
    "CARD": find_cards,
    "IBAN": find_ibans,
    **NATIONAL_DETECTORS,
    "IPV4": find_ipv4,
    "IPV6": find_ipv6,
}
"""Built-in detectors by label, except PHONE, which depends on the policy's regions."""
