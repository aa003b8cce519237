"""Generated personal data for the masking figures of `benchmarks/security.py`: values of
every type formatted as people write them, their recall, and realistic texts.

The generated sets live here so that `tests/unit/test_masking.py` asserts a floor on the
same figures the benchmark reports.
"""

from __future__ import annotations

import ipaddress
import random
import string
import time
from collections.abc import Callable, Iterator

import phonenumbers
from stdnum import iban as _iban
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.iso7064 import mod_11_10
from stdnum.it import codicefiscale
from stdnum.us import ssn

from podium.security.masking import Masker

# -- generated values -----------------------------------------------------------------------

SENTENCES = (
    "Please contact me at {} as soon as possible.",
    "The customer gave {}, see the ticket.",
    "{} is what we have on file.",
    "Update the record: value={}; thanks!",
    "Hi team,\nthe details are ({}) and nothing else.\n",
    "Can you check «{}»?",
    "Reference: {}.",
)


def _emails(rng: random.Random) -> str:
    user = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 10)))
    if rng.random() < 0.5:
        user += rng.choice("._-+") + "".join(rng.choices(string.ascii_lowercase + string.digits,
                                                          k=rng.randint(1, 6)))
    domain = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10)))
    if rng.random() < 0.3:
        domain += "." + "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 6)))
    tld = rng.choice(("com", "org", "de", "co.uk", "io", "fr", "info", "travel"))
    return f"{user}@{domain}.{tld}"


_PHONE_REGIONS = ("US", "GB", "DE", "FR", "JP", "BR", "IN", "AU", "ES", "IT", "CA", "NL")
_NATIONAL_OK = ("US", "GB", "DE", "FR", "CA")
"""Regions whose national format the default policy reads (CA shares +1 with the US)."""


def _phones(rng: random.Random) -> str:
    while True:
        region = rng.choice(_PHONE_REGIONS)
        kind = rng.choice((phonenumbers.PhoneNumberType.MOBILE,
                           phonenumbers.PhoneNumberType.FIXED_LINE))
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        national = str(example.national_number)
        tail = "".join(rng.choices(string.digits, k=4))
        number = phonenumbers.parse(
            f"+{example.country_code}{national[:-4]}{tail}", None
        )
        if not phonenumbers.is_valid_number(number):
            continue
        formats = [phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                   phonenumbers.PhoneNumberFormat.E164]
        if region in _NATIONAL_OK:
            formats.append(phonenumbers.PhoneNumberFormat.NATIONAL)
        text = phonenumbers.format_number(number, rng.choice(formats))
        if rng.random() < 0.3:  # people's own separators
            text = text.replace("-", rng.choice(" .")).replace("(", "").replace(")", "")
        return text


# brand: (prefixes, lengths)
CARD_BRANDS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "visa": (("4",), (13, 16, 19)),
    "mastercard": (("51", "53", "55", "2221", "2500", "2720"), (16,)),
    "amex": (("34", "37"), (15,)),
    "discover": (("6011", "644", "649", "65", "622126", "622925"), (16, 17, 18, 19)),
    "jcb": (("3528", "3550", "3589"), (16, 17, 18, 19)),
    "diners": (("300", "305", "36", "38", "39"), (14, 16, 19)),
    "unionpay": (("62", "81"), (16, 17, 18, 19)),
    "maestro": (("5018", "5020", "5038", "5893", "6304", "6759", "6761"),
                (12, 13, 14, 15, 16, 17, 18, 19)),
}


def _luhn_complete(partial: str) -> str:
    for check in string.digits:
        digits = partial + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def card(rng: random.Random, brand: str, length: int) -> str:
    """A Luhn-valid number of `brand` and `length`, formatted as people write them."""
    prefixes, _ = CARD_BRANDS[brand]
    prefix = rng.choice(prefixes)
    body = prefix + "".join(rng.choices(string.digits, k=length - len(prefix) - 1))
    digits = _luhn_complete(body)
    sep = rng.choice(("", " ", "-"))
    if not sep:
        return digits
    if length == 15:
        groups = [digits[:4], digits[4:10], digits[10:]]
    elif length == 14:
        groups = [digits[:4], digits[4:10], digits[10:]]
    else:
        groups = [digits[i : i + 4] for i in range(0, length, 4)]
    return sep.join(groups)


def _cards(rng: random.Random) -> str:
    brand = rng.choice(list(CARD_BRANDS))
    return card(rng, brand, rng.choice(CARD_BRANDS[brand][1]))


_IBAN_EXAMPLES = (
    "DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
    "NL91ABNA0417164300", "ES9121000418450200051332", "IT60X0542811101000000123456",
    "BE68539007547034", "CH9300762011623852957", "AT611904300234573201",
    "PL61109010140000071219812874", "SE4550000000058398257466", "IE29AIBK93115212345678",
)


def _ibans(rng: random.Random) -> str:
    while True:
        example = rng.choice(_IBAN_EXAMPLES)
        bban = list(example[4:])
        for i in rng.sample(range(len(bban)), k=min(6, len(bban))):
            if bban[i].isdigit():
                bban[i] = rng.choice(string.digits)
        base = example[:2] + "00" + "".join(bban)
        number = base[:2] + _iban.calc_check_digits(base) + base[4:]
        if _iban.is_valid(number):
            return _iban.format(number) if rng.random() < 0.6 else number


def _ssns(rng: random.Random) -> str:
    while True:
        value = f"{rng.randint(1, 899):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        if ssn.is_valid(value):
            return value


def _ninos(rng: random.Random) -> str:
    first = "ABCEGHJKLMNOPRSTWXYZ"
    second = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        prefix = rng.choice(first) + rng.choice(second)
        if prefix in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            continue
        digits = "".join(rng.choices(string.digits, k=6))
        suffix = rng.choice("ABCD")
        if rng.random() < 0.5:
            return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
        return f"{prefix}{digits}{suffix}"


def _de_tax_ids(rng: random.Random) -> str:
    while True:
        digits = str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=9))
        value = digits + mod_11_10.calc_check_digit(digits)
        if idnr.is_valid(value):
            return idnr.format(value) if rng.random() < 0.5 else value


def _fr_nirs(rng: random.Random) -> str:
    while True:
        body = (f"{rng.randint(1, 2)}{rng.randint(0, 99):02d}{rng.randint(1, 12):02d}"
                f"{rng.randint(1, 95):02d}{rng.randint(1, 990):03d}{rng.randint(1, 999):03d}")
        value = body + nir.calc_check_digits(body)
        if nir.is_valid(value):
            return nir.format(value) if rng.random() < 0.5 else value


def _es_dnis(rng: random.Random) -> str:
    digits = f"{rng.randint(0, 99_999_999):08d}"
    return digits + ("-" if rng.random() < 0.3 else "") + dni.calc_check_digit(digits)


def _it_cfs(rng: random.Random) -> str:
    while True:
        body = ("".join(rng.choices(string.ascii_uppercase, k=6))
                + f"{rng.randint(0, 99):02d}" + rng.choice("ABCDEHLMPRST")
                + f"{rng.choice([rng.randint(1, 28), rng.randint(41, 68)]):02d}"
                + rng.choice(string.ascii_uppercase) + f"{rng.randint(1, 999):03d}")
        value = body + codicefiscale.calc_check_digit(body)
        if codicefiscale.is_valid(value):
            return value


def _ipv4s(rng: random.Random) -> str:
    return str(ipaddress.IPv4Address(rng.getrandbits(32)))


def _ipv6s(rng: random.Random) -> str:
    value = rng.getrandbits(128)
    if rng.random() < 0.4:  # runs of zeros, written with "::"
        value &= ~(((1 << 64) - 1) << 32)
    address = ipaddress.IPv6Address(value)
    return address.compressed if rng.random() < 0.7 else address.exploded


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "EMAIL": _emails, "PHONE": _phones, "CARD": _cards, "IBAN": _ibans, "US_SSN": _ssns,
    "UK_NINO": _ninos, "DE_TAX_ID": _de_tax_ids, "FR_NIR": _fr_nirs, "ES_DNI": _es_dnis,
    "IT_CF": _it_cfs, "IPV4": _ipv4s, "IPV6": _ipv6s,
}
"""A generator of valid values for each label, formatted as people write them."""


def samples(label: str, n: int, seed: int = 7) -> Iterator[tuple[str, str]]:
    """`n` (value, sentence containing it) pairs of `label`; cards cycle through every
    brand and length so that each combination appears."""
    rng = random.Random(f"{label}-{seed}")
    combos = [(b, length) for b, (_, lengths) in CARD_BRANDS.items() for length in lengths]
    for i in range(n):
        if label == "CARD":
            brand, length = combos[i % len(combos)]
            value = card(rng, brand, length)
        else:
            value = GENERATORS[label](rng)
        yield value, rng.choice(SENTENCES).format(value)


def recall(label: str, n: int, seed: int = 7) -> tuple[float, list[str]]:
    """The share of `n` generated values of `label` masked whole, and the values missed."""
    missed = []
    for value, sentence in samples(label, n, seed):
        masker = Masker(run_id="recall")
        masked = masker.mask(sentence)
        hits = [f for f in masked.findings
                if sentence[f.start : f.end] == value and f.label == label]
        if not hits:
            missed.append(value)
    return 1 - len(missed) / n, missed


# -- throughput -----------------------------------------------------------------------------

_CLEAN = (
    "Thanks for getting back to us about the delayed shipment. We checked with the warehouse "
    "and the parcel left on Tuesday; tracking should update within 24 hours. If it has not "
    "arrived by the end of next week, reply to this message and we will send a replacement "
    "at no cost. Version 2.4.1 of the app fixes the login loop some of you saw at 09:30. "
)
PII = (
    "Customer Jane Roe (jane.roe@example.org, +44 20 7946 0958) asked to move the refund to "
    "IBAN GB82 WEST 1234 5698 7654 32 instead of card 4111 1111 1111 1111. Her SSN on file "
    "is 536-90-4399; the request came from 203.0.113.42. "
)


def text(size: int, with_pii: bool) -> str:
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        parts.append(_CLEAN)
        if with_pii:
            parts.append(PII)
    return "".join(parts)[:size]


def time_calls(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall times of `repeat` calls of `fn`, after one warm-up call."""
    fn()
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
    return walls
