"""Personal data masked before it leaves: detect, replace with placeholders, restore.

A `Masker` replaces every value its `MaskingPolicy` detects with a placeholder such as
`<EMAIL_1>`; the same value gets the same placeholder for the whole run. The mapping lives
in the run's `Vault`, which is encrypted (AES-256-GCM, the run id as associated data) when
serialised. `Masker.unmask` puts the values back into a reply and reports placeholders it
could not restore: `unknown` ones (well formed, not in the vault) and `mangled` ones
(`<EMAIL_01>`, `<email 1>`, `EMAIL_1`), so none is ever left behind silently.

Detection is offline: regexes with validators (Luhn, `phonenumbers`, `python-stdnum`,
`ipaddress`), custom regexes and deny-lists. What is not detected is listed in
`docs/masking.md`.

Errors::

    PodiumError
    ├── UserError
    │   ├── PolicyError       an invalid masking policy; names the field
    │   └── VaultError        a vault cannot be decrypted: wrong key, wrong run id, altered
    └── RunError
        └── UnmaskError       strict unmasking met unknown or mangled placeholders
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from podium.errors import PolicyError, UnmaskError, VaultError
from podium.security import _detectors
from podium.security._detectors import Detector, Span

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None

BUILTIN_LABELS: tuple[str, ...] = ("EMAIL", "PHONE", *_detectors.BUILTIN)
"""Every built-in detector's label, in the order they are documented."""

DEFAULT_PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR")

_LABEL = re.compile(r"[A-Z][A-Z0-9_]*[A-Z0-9]|[A-Z]")
_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_([1-9][0-9]*)>")


# -- policy ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MaskingPolicy:
    """What to mask. Build one in Python or from a mapping (`from_mapping`, e.g. YAML)."""

    detect: frozenset[str] = frozenset(BUILTIN_LABELS)
    """Built-in detectors to run, by label (`EMAIL`, `PHONE`, `CARD`, `IBAN`, `US_SSN`,
    `UK_NINO`, `DE_TAX_ID`, `FR_NIR`, `ES_DNI`, `IT_CF`, `IPV4`, `IPV6`)."""
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    """Regions whose national phone formats are recognised (ISO 3166 alpha-2). Numbers in
    international format (`+…`) are recognised for every country."""
    patterns: Mapping[str, str] = field(default_factory=dict)
    """Custom regexes by label, e.g. `{"ORDER_ID": r"\\bORD-\\d{6}\\b"}`; the whole match is
    masked."""
    deny: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Exact terms by label, e.g. `{"CUSTOMER": ["Ada Lovelace"]}`, matched as whole words."""
    deny_case_sensitive: bool = False
    """Whether deny-list terms match only with the same letter case."""
    allow: frozenset[str] = frozenset()
    """Values never masked even when detected, e.g. the company's own support address."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.detect) - set(BUILTIN_LABELS))
        if unknown:
            raise PolicyError(
                f"masking.detect: unknown detectors {unknown!r}; "
                f"choose among {list(BUILTIN_LABELS)!r}"
            )
        for region in self.phone_regions:
            if not re.fullmatch(r"[A-Z]{2}", region):
                raise PolicyError(
                    f"masking.phone_regions: {region!r} is not an ISO 3166 alpha-2 code "
                    "such as 'US'"
                )
        for where, labels in (("patterns", self.patterns), ("deny", self.deny)):
            for label in labels:
                if not _LABEL.fullmatch(label):
                    raise PolicyError(
                        f"masking.{where}.{label}: labels are upper-case letters, digits and "
                        "underscores, starting with a letter, e.g. 'CUSTOMER_NAME'"
                    )
        for label, pattern in self.patterns.items():
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise PolicyError(f"masking.patterns.{label}: invalid regex: {exc}") from None
            if compiled.match(""):
                raise PolicyError(
                    f"masking.patterns.{label}: the regex {pattern!r} matches the empty string"
                )
        for label, terms in self.deny.items():
            if isinstance(terms, str) or not all(isinstance(t, str) and t for t in terms):
                raise PolicyError(f"masking.deny.{label}: give a list of non-empty strings")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MaskingPolicy:
        """A policy from plain data, such as a workflow file's `masking:` section.

        Keys: `detect` (list of labels), `phone_regions`, `patterns` (label → regex),
        `deny` (label → list of terms), `deny_case_sensitive`, `allow` (list of values).
        """
        known = {"detect", "phone_regions", "patterns", "deny", "deny_case_sensitive", "allow"}
        extra = sorted(set(data) - known)
        if extra:
            raise PolicyError(f"masking: unknown keys {extra!r}; known keys are {sorted(known)!r}")
        kwargs: dict[str, Any] = {}
        for key in ("detect", "allow"):
            if key in data:
                kwargs[key] = frozenset(_strings(data[key], f"masking.{key}"))
        if "phone_regions" in data:
            regions = _strings(data["phone_regions"], "masking.phone_regions")
            kwargs["phone_regions"] = tuple(regions)
        for key in ("patterns", "deny"):
            if key in data:
                if not isinstance(data[key], Mapping):
                    raise PolicyError(f"masking.{key}: give a mapping of label to value")
                kwargs[key] = dict(data[key])
        if "deny" in kwargs:
            deny = kwargs["deny"]
            kwargs["deny"] = {k: _strings(v, f"masking.deny.{k}") for k, v in deny.items()}
        if "deny_case_sensitive" in data:
            kwargs["deny_case_sensitive"] = bool(data["deny_case_sensitive"])
        return cls(**kwargs)

    def labels(self) -> frozenset[str]:
        """Every label this policy can produce."""
        return frozenset(self.detect) | frozenset(self.patterns) | frozenset(self.deny)


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise PolicyError(f"{where}: give a list of strings")
    if not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: give a list of strings")
    return list(value)


# -- vault ----------------------------------------------------------------------------------

_MAGIC = b"PODV\x01"
_NONCE = 12


class Vault:
    """The placeholders of one run and the values behind them.

    Keep it in memory for the run; serialise it only encrypted (`dump`, `load`). The values
    never appear in `repr`.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._by_value: dict[str, str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counters: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Vault(run_id={self.run_id!r}, placeholders={len(self._by_placeholder)})"

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def placeholder(self, value: str, label: str) -> str:
        """The placeholder of `value`, made on first sight: `<LABEL_n>`."""
        found = self._by_value.get(value)
        if found is not None:
            return found
        n = self._counters.get(label, 0) + 1
        self._counters[label] = n
        placeholder = f"<{label}_{n}>"
        self._by_value[value] = placeholder
        self._by_placeholder[placeholder] = value
        return placeholder

    def value(self, placeholder: str) -> str | None:
        """The value behind a placeholder, or None when this vault did not make it."""
        return self._by_placeholder.get(placeholder)

    def placeholders(self) -> list[str]:
        return list(self._by_placeholder)

    def labels(self) -> set[str]:
        return set(self._counters)

    def entries(self) -> dict[str, str]:
        """Every placeholder and its value, in the order they were made."""
        return dict(self._by_placeholder)

    @classmethod
    def from_entries(cls, run_id: str, entries: Mapping[str, str]) -> Vault:
        """The vault of run `run_id` holding `entries` (what `entries()` gave); new
        placeholders continue each label's numbering."""
        vault = cls(run_id)
        for placeholder, value in entries.items():
            m = _PLACEHOLDER.fullmatch(placeholder)
            if m is None:
                raise VaultError(f"vault of run {run_id!r} holds a bad placeholder "
                                 f"{placeholder!r}")
            label, n = m.group(1), int(m.group(2))
            vault._by_value.setdefault(value, placeholder)
            vault._by_placeholder[placeholder] = value
            vault._counters[label] = max(vault._counters.get(label, 0), n)
        return vault

    @staticmethod
    def new_key() -> bytes:
        """A fresh random 256-bit key."""
        return AESGCM.generate_key(bit_length=256)

    def dump(self, key: bytes) -> bytes:
        """The vault encrypted with AES-256-GCM under `key` (32 bytes), bound to the run id."""
        aead = AESGCM(_check_key(key))
        nonce = os.urandom(_NONCE)
        plain = json.dumps(
            {"run_id": self.run_id, "entries": list(self._by_placeholder.items())},
            ensure_ascii=False, separators=(",", ":"),
        ).encode()
        return _MAGIC + nonce + aead.encrypt(nonce, plain, self._aad(self.run_id))

    @classmethod
    def load(cls, data: bytes, key: bytes, *, run_id: str) -> Vault:
        """The vault `dump` wrote for run `run_id`.

        Raises:
            VaultError: the key or run id is not the one it was written with, or the data
                was altered or is not a vault.
        """
        aead = AESGCM(_check_key(key))
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _NONCE + 16:
            raise VaultError(f"the data for run {run_id!r} is not a Podium vault")
        nonce = data[len(_MAGIC) : len(_MAGIC) + _NONCE]
        try:
            plain = aead.decrypt(nonce, data[len(_MAGIC) + _NONCE :], cls._aad(run_id))
        except InvalidTag:
            raise VaultError(
                f"cannot decrypt the vault of run {run_id!r}: wrong key, a vault of another "
                "run, or altered data"
            ) from None
        return cls.from_entries(run_id, dict(json.loads(plain)["entries"]))

    @staticmethod
    def _aad(run_id: str) -> bytes:
        return _MAGIC + run_id.encode()


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != 32:
        raise VaultError("the vault key must be 32 bytes (AES-256); make one with Vault.new_key()")
    return bytes(key)


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MaskedSpan:
    """One masked value. It does not hold the value itself, so it is safe to log."""

    label: str
    placeholder: str
    start: int
    """Offset of the value in the original text."""
    end: int


@dataclass(frozen=True, kw_only=True)
class MaskedText:
    """A text with its personal data replaced by placeholders."""

    text: str
    findings: tuple[MaskedSpan, ...] = ()

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, kw_only=True)
class UnmaskResult:
    """A reply with the placeholders put back, and those that could not be."""

    text: str
    restored: tuple[str, ...] = ()
    """Placeholders replaced by their values (each once, in order of first appearance)."""
    unknown: tuple[str, ...] = ()
    """Well-formed placeholders the vault did not make; left in the text."""
    mangled: tuple[str, ...] = ()
    """Near-placeholders (`<EMAIL_01>`, `<email 1>`, `EMAIL_1`), as written in the reply;
    left in the text unless unmasking was asked to `repair` them."""

    @property
    def ok(self) -> bool:
        """Whether every placeholder in the reply was restored exactly."""
        return not self.unknown and not self.mangled

    def __str__(self) -> str:
        return self.text


# -- masker ---------------------------------------------------------------------------------


class Masker:
    """Masks texts and JSON for one run, and restores replies.

    Args:
        policy: what to detect; every built-in detector when omitted.
        vault: the run's vault; a new one for `run_id` when omitted.
        run_id: the run, when no vault is given.
    """

    def __init__(
        self,
        policy: MaskingPolicy | None = None,
        *,
        vault: Vault | None = None,
        run_id: str = "",
    ) -> None:
        self.policy = policy if policy is not None else MaskingPolicy()
        self.vault = vault if vault is not None else Vault(run_id)
        self._detectors = self._build_detectors(self.policy)
        self._phones = (
            _detectors.phone_detector(self.policy.phone_regions)
            if "PHONE" in self.policy.detect else None
        )
        self._labels = self.policy.labels()

    @staticmethod
    def _build_detectors(policy: MaskingPolicy) -> list[Detector]:
        detectors: list[Detector] = [
            d for label, d in _detectors.BUILTIN.items() if label in policy.detect
        ]
        for label, pattern in policy.patterns.items():
            detectors.append(_regex_detector(label, re.compile(pattern), 1))
        flags = 0 if policy.deny_case_sensitive else re.IGNORECASE
        for label, terms in policy.deny.items():
            alternation = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
            regex = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", flags)
            detectors.append(_regex_detector(label, regex, 0))
        return detectors

    def find(self, text: str) -> list[Span]:
        """The spans to mask in `text`, merged so that overlapping findings become one."""
        spans = [s for d in self._detectors for s in d(text)]
        if self._phones is not None:
            spans.extend(self._phones(text, spans))
        spans = [s for s in spans if text[s.start : s.end] not in self.policy.allow]
        return _merge(spans)

    def mask(self, text: str) -> MaskedText:
        """`text` with each detected value replaced by its placeholder."""
        spans = self.find(text)
        if not spans:
            return MaskedText(text=text)
        out: list[str] = []
        findings: list[MaskedSpan] = []
        pos = 0
        for s in spans:
            placeholder = self.vault.placeholder(text[s.start : s.end], s.label)
            out.append(text[pos : s.start])
            out.append(placeholder)
            findings.append(
                MaskedSpan(label=s.label, placeholder=placeholder, start=s.start, end=s.end)
            )
            pos = s.end
        out.append(text[pos:])
        return MaskedText(text="".join(out), findings=tuple(findings))

    def mask_json(self, value: JSON) -> JSON:
        """`value` with every string in it masked, keys included; other values kept."""
        if isinstance(value, str):
            return self.mask(value).text
        if isinstance(value, list):
            return [self.mask_json(v) for v in value]
        if isinstance(value, dict):
            return {self.mask(k).text: self.mask_json(v) for k, v in value.items()}
        return value

    def unmask(self, text: str, *, strict: bool = False, repair: bool = False) -> UnmaskResult:
        """`text` with this run's placeholders replaced by their values.

        Args:
            text: a reply, typically from a model that saw masked text.
            strict: raise `UnmaskError` when any placeholder is unknown or mangled.
            repair: also restore mangled placeholders that name a placeholder of the vault
                unambiguously (`<email_01>` → the value of `<EMAIL_1>`); they are still
                reported in `mangled`.
        """
        labels = self._labels | self.vault.labels()
        by_key = {_label_key(label): label for label in labels}
        restored: dict[str, None] = {}
        unknown: dict[str, None] = {}
        mangled: dict[str, None] = {}

        def replace(m: re.Match[str]) -> str:
            raw = m.group()
            label = by_key[_label_key(m.group("label"))]
            canonical = f"<{label}_{int(m.group('n'))}>"
            if raw == canonical:
                value = self.vault.value(raw)
                if value is None:
                    unknown[raw] = None
                    return raw
                restored[raw] = None
                return value
            if not (m.group("open") or m.group("close")) and m.group("sep") != "_":
                return raw  # "email 2" in prose is not a placeholder
            mangled[raw] = None
            value = self.vault.value(canonical)
            if repair and value is not None:
                return value
            return raw

        for m in _PLACEHOLDER.finditer(text):
            if m.group(1) not in labels:
                unknown[m.group()] = None
        regex = _near_placeholder(frozenset(labels))
        out = regex.sub(replace, text) if regex is not None else text
        result = UnmaskResult(
            text=out, restored=tuple(restored), unknown=tuple(unknown), mangled=tuple(mangled)
        )
        if strict and not result.ok:
            raise UnmaskError(result)
        return result

    def unmask_json(self, value: JSON, *, strict: bool = False) -> JSON:
        """`value` with placeholders restored in every string; `strict` as in `unmask`."""
        if isinstance(value, str):
            return self.unmask(value, strict=strict).text
        if isinstance(value, list):
            return [self.unmask_json(v, strict=strict) for v in value]
        if isinstance(value, dict):
            return {
                self.unmask(k, strict=strict).text: self.unmask_json(v, strict=strict)
                for k, v in value.items()
            }
        return value


def _regex_detector(label: str, regex: re.Pattern[str], priority: int) -> Detector:
    def find(text: str) -> Iterator[Span]:
        for m in regex.finditer(text):
            if m.end() > m.start():
                yield Span(label, m.start(), m.end(), priority)

    return find


def _merge(spans: Iterable[Span]) -> list[Span]:
    """Overlapping spans become one covering them all, labelled by the longest (then by
    priority), so that no part of a value is ever left out."""
    result: list[Span] = []
    group: list[Span] = []
    end = -1
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if group and s.start >= end:
            result.append(_union(group))
            group = []
        group.append(s)
        end = max(end, s.end) if len(group) > 1 else s.end
    if group:
        result.append(_union(group))
    return result


def _union(group: Sequence[Span]) -> Span:
    best = min(group, key=lambda s: (s.start - s.end, s.priority))
    return Span(best.label, min(s.start for s in group), max(s.end for s in group), best.priority)


def _label_key(label: str) -> str:
    return re.sub(r"[ _-]", "", label).upper()


_NEAR_CACHE: dict[frozenset[str], re.Pattern[str] | None] = {}


def _near_placeholder(labels: frozenset[str]) -> re.Pattern[str] | None:
    """A regex for placeholders and near-misses of them, for the given labels."""
    if labels in _NEAR_CACHE:
        return _NEAR_CACHE[labels]
    if not labels:
        return None
    names = "|".join(
        r"[ _-]?".join(re.escape(part) for part in label.split("_"))
        for label in sorted(labels, key=len, reverse=True)
    )
    regex = re.compile(
        rf"(?:(?P<open>[<\[{{])\s*|(?<![\w<\[{{]))(?P<label>{names})"
        rf"(?P<sep>[ _-]?)(?P<n>\d+)(?!\d)"
        rf"(?P<close>\s*[>\]}}])?",
        re.IGNORECASE,
    )
    if len(_NEAR_CACHE) > 64:
        _NEAR_CACHE.clear()
    _NEAR_CACHE[labels] = regex
    return regex


__all__ = [
    "BUILTIN_LABELS",
    "DEFAULT_PHONE_REGIONS",
    "JSON",
    "MaskedSpan",
    "MaskedText",
    "Masker",
    "MaskingPolicy",
    "PolicyError",
    "UnmaskError",
    "UnmaskResult",
    "Vault",
    "VaultError",
]
