"""PII masking: detectors, placeholders, unmasking, the encrypted vault, and recall."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from benchmarks._masking_samples import CARD_BRANDS, GENERATORS, card, recall

from podium.errors import RunError, UserError
from podium.security.masking import (
    BUILTIN_LABELS,
    JSON,
    Masker,
    MaskingPolicy,
    PolicyError,
    UnmaskError,
    Vault,
    VaultError,
)


def labels_in(text: str, policy: MaskingPolicy | None = None) -> list[tuple[str, str]]:
    masked = Masker(policy, run_id="t").mask(text)
    return [(f.label, text[f.start : f.end]) for f in masked.findings]


# -- detectors: positive and negative cases -------------------------------------------------

POSITIVE = [
    ("EMAIL", "ada.lovelace+work@example.co.uk"),
    ("EMAIL", "x_y-z@mail.example.org"),
    ("PHONE", "+44 20 7946 0958"),
    ("PHONE", "+1 415-555-2671"),
    ("PHONE", "(212) 555-0123"),
    ("PHONE", "030 901820"),
    ("PHONE", "06 12 34 56 78"),
    ("PHONE", "+81 90-1234-5678"),
    ("PHONE", "+5511961234567"),
    ("CARD", "4111 1111 1111 1111"),
    ("CARD", "4222222222222"),
    ("CARD", "5555-5555-5555-4444"),
    ("CARD", "2223 0031 2200 3222"),
    ("CARD", "3782 822463 10005"),
    ("CARD", "6011 1111 1111 1117"),
    ("CARD", "3530 1113 3330 0000"),
    ("CARD", "3056 930902 5904"),
    ("CARD", "6200 0000 0000 0005"),
    ("CARD", "6759 6498 2643 8453"),
    ("IBAN", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "GB82WEST12345698765432"),
    ("IBAN", "FR14 2004 1010 0505 0001 3M02 606"),
    ("IBAN", "NL91ABNA0417164300"),
    ("US_SSN", "536-90-4399"),
    ("UK_NINO", "AB 12 34 56 C"),
    ("UK_NINO", "JG103759A"),
    ("DE_TAX_ID", "36 574 261 809"),
    ("DE_TAX_ID", "36574261809"),
    ("FR_NIR", "2 95 10 99 126 111 93"),
    ("ES_DNI", "54362315K"),
    ("IT_CF", "RCCMNL83S18D969H"),
    ("IPV4", "192.168.1.10"),
    ("IPV4", "8.8.8.8"),
    ("IPV6", "2001:db8::8a2e:370:7334"),
    ("IPV6", "fe80:0000:0000:0000:0202:b3ff:fe1e:8329"),
    ("IPV6", "::ffff:192.0.2.128"),
]


@pytest.mark.parametrize(("label", "value"), POSITIVE)
def test_detector_finds_the_whole_value_in_a_sentence(label: str, value: str) -> None:
    assert labels_in(f"Please note ({value}), then continue.") == [(label, value)]
    assert labels_in(f"{value}.") == [(label, value)]


NEGATIVE = [
    "card 4111 1111 1111 1112 fails Luhn",
    "card 4111111111111112 fails Luhn",
    "a Luhn-valid number of no scheme: 9999 9999 9999 9995",
    "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum",
    "IBAN GB00WEST12345698765432 has a bad checksum",
    "SSN 000-12-3456 and 666-12-3456 and 900-12-3456 are never issued",
    "NINO QQ 12 34 56 C and BG 12 34 56 A are not allocated",
    "IdNr 12345678901 has a bad check digit",
    "NIR 1 85 05 78 006 084 35 has a bad key",
    "DNI 12345678A has a bad letter",
    "IP 256.1.1.1 and 1.2.3 and 01.02.03.04 are not addresses",
    "times 12:30:45 and ratios 1:2:3 and std::vector are not IPv6",
    "user@localhost and foo@bar are not addresses we mask",
]
NOT_PHONES = [
    "order 4829301 shipped",
    "ticket #123456789 closed",
    "build 20240115123045 passed",
    "phone 123-456-7890 has no such area code",
    "meeting on 2024-01-15 at 10:15",
    "total $1,234,567.89",
    "pi is 3.14159265358979",
]
NO_PHONES = MaskingPolicy(detect=frozenset(BUILTIN_LABELS) - {"PHONE"})


@pytest.mark.parametrize("text", NEGATIVE)
def test_detectors_leave_lookalikes_alone(text: str) -> None:
    # Some of these digit runs are valid phone numbers somewhere; each detector is tested
    # on its own lookalikes here, the phone detector on the next list.
    assert labels_in(text, NO_PHONES) == []


@pytest.mark.parametrize("text", NOT_PHONES)
def test_digit_runs_that_are_not_phones_are_left_alone(text: str) -> None:
    assert labels_in(text) == []


def test_card_next_to_other_digits_is_still_found() -> None:
    assert labels_in("ref 12 4111 1111 1111 1111") == [("CARD", "4111 1111 1111 1111")]


def test_iban_stops_before_a_following_upper_case_word() -> None:
    assert labels_in("send to DE89 3704 0044 0532 0130 00 AND CONFIRM") == [
        ("IBAN", "DE89 3704 0044 0532 0130 00")
    ]


def test_every_card_brand_and_length_is_a_card() -> None:
    import random

    rng = random.Random(1)
    for brand, (_, lengths) in CARD_BRANDS.items():
        for length in lengths:
            value = card(rng, brand, length)
            assert labels_in(f"card {value} ok") == [("CARD", value)], (brand, length)


def test_custom_patterns_and_deny_lists() -> None:
    policy = MaskingPolicy.from_mapping({
        "patterns": {"ORDER_ID": r"\bORD-\d{6}\b"},
        "deny": {"CUSTOMER": ["Ada Lovelace", "Grace Hopper"]},
    })
    text = "ada lovelace and Grace Hopper placed ORD-123456; Adam Lovelacey did not."
    masked = Masker(policy, run_id="r").mask(text)
    assert masked.text == (
        "<CUSTOMER_1> and <CUSTOMER_2> placed <ORDER_ID_1>; Adam Lovelacey did not."
    )
    strict_case = MaskingPolicy(deny={"CUSTOMER": ["Ada Lovelace"]}, deny_case_sensitive=True)
    assert labels_in("ada lovelace", strict_case) == []


def test_policy_can_switch_detectors_off_and_allow_values() -> None:
    policy = MaskingPolicy(detect=frozenset({"EMAIL"}), allow=frozenset({"help@podium.dev"}))
    text = "help@podium.dev, bob@example.com, 192.168.1.10"
    assert labels_in(text, policy) == [("EMAIL", "bob@example.com")]


def test_overlapping_findings_are_masked_as_one_span() -> None:
    policy = MaskingPolicy(deny={"CUSTOMER": ["Smith"]})
    assert labels_in("write to john.smith@example.com", policy) == [
        ("EMAIL", "john.smith@example.com")
    ]


@pytest.mark.parametrize(
    "data",
    [
        {"detect": ["EMAIL", "PASSPORT"]},
        {"patterns": {"ORDER_ID": "("}},
        {"patterns": {"order id": "x"}},
        {"patterns": {"ANY": ".*"}},
        {"deny": {"CUSTOMER": "Ada"}},
        {"phone_regions": ["usa"]},
        {"colour": "red"},
    ],
)
def test_bad_policies_are_user_errors_naming_the_field(data: dict[str, object]) -> None:
    with pytest.raises(PolicyError, match="masking") as info:
        MaskingPolicy.from_mapping(data)
    assert isinstance(info.value, UserError)


# -- placeholders, round trips ---------------------------------------------------------------

TEXT = (
    "Ada (ada@example.com, +44 20 7946 0958) paid with 4111 1111 1111 1111 from "
    "DE89 3704 0044 0532 0130 00; Bob (bob@example.com) too. Again: ada@example.com, "
    "IP 203.0.113.42."
)


def test_placeholders_are_stable_per_value_within_a_run() -> None:
    masker = Masker(run_id="r1")
    first = masker.mask(TEXT)
    assert first.text == (
        "Ada (<EMAIL_1>, <PHONE_1>) paid with <CARD_1> from <IBAN_1>; Bob (<EMAIL_2>) too. "
        "Again: <EMAIL_1>, IP <IPV4_1>."
    )
    assert masker.mask("bob@example.com then ada@example.com").text == "<EMAIL_2> then <EMAIL_1>"
    assert "ada@example.com" not in repr(first)
    assert "ada@example.com" not in repr(masker.vault)


def test_unmask_restores_the_original() -> None:
    masker = Masker(run_id="r1")
    result = masker.unmask(masker.mask(TEXT).text)
    assert result.text == TEXT
    assert result.ok
    assert result.restored == ("<EMAIL_1>", "<PHONE_1>", "<CARD_1>", "<IBAN_1>", "<EMAIL_2>",
                               "<IPV4_1>")


def test_mask_json_walks_dicts_lists_and_keys() -> None:
    masker = Masker(run_id="r1")
    value: JSON = {
        "to": ["ada@example.com", 3, None, True],
        "ada@example.com": {"card": "4111 1111 1111 1111"},
    }
    masked = masker.mask_json(value)
    assert masked == {"to": ["<EMAIL_1>", 3, None, True], "<EMAIL_1>": {"card": "<CARD_1>"}}
    assert masker.unmask_json(masked) == value


def test_unknown_and_mangled_placeholders_are_reported() -> None:
    masker = Masker(run_id="r1")
    masker.mask("ada@example.com 536-90-4399")
    reply = ("Sent to <EMAIL_1>. Also <EMAIL_01>, <EMAIL 1>, EMAIL_1, <email_1>, [EMAIL-1], "
             "<US-SSN 1>, <EMAIL_7>, <PERSON_1>. See email 2 in prose.")
    result = masker.unmask(reply)
    assert not result.ok
    assert result.restored == ("<EMAIL_1>",)
    assert set(result.unknown) == {"<EMAIL_7>", "<PERSON_1>"}
    assert result.mangled == ("<EMAIL_01>", "<EMAIL 1>", "EMAIL_1", "<email_1>", "[EMAIL-1]",
                              "<US-SSN 1>")
    assert result.text.startswith("Sent to ada@example.com. Also <EMAIL_01>, <EMAIL 1>")
    assert "See email 2 in prose." in result.text

    repaired = masker.unmask(reply, repair=True)
    assert repaired.text.startswith(
        "Sent to ada@example.com. Also ada@example.com, ada@example.com, ada@example.com"
    )
    assert "536-90-4399" in repaired.text
    assert "<EMAIL_7>" in repaired.text
    assert repaired.mangled == result.mangled

    with pytest.raises(UnmaskError, match="EMAIL_7") as info:
        masker.unmask(reply, strict=True)
    assert isinstance(info.value, RunError)
    assert info.value.result.unknown == result.unknown
    with pytest.raises(UnmaskError):
        masker.unmask_json({"a": ["<EMAIL_01>"]}, strict=True)
    assert masker.unmask("Sent to <EMAIL_1>.", strict=True).text == "Sent to ada@example.com."


# -- the vault -------------------------------------------------------------------------------


def test_vault_is_encrypted_and_bound_to_key_and_run() -> None:
    masker = Masker(run_id="run-42")
    masked = masker.mask(TEXT)
    key = Vault.new_key()
    data = masker.vault.dump(key)
    for secret in (b"ada@example.com", b"4111 1111 1111 1111", b"DE89", b"EMAIL_1", b"run-42"):
        assert secret not in data
    assert masker.vault.dump(key) != data  # a fresh nonce every time

    loaded = Vault.load(data, key, run_id="run-42")
    assert len(loaded) == len(masker.vault)
    again = Masker(vault=loaded)
    assert again.unmask(masked.text).text == TEXT
    assert again.mask("carol@example.com").text == "<EMAIL_3>"  # counters continue

    with pytest.raises(VaultError, match="wrong key"):
        Vault.load(data, Vault.new_key(), run_id="run-42")
    with pytest.raises(VaultError, match="run-43"):
        Vault.load(data, key, run_id="run-43")
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(VaultError):
        Vault.load(tampered, key, run_id="run-42")
    with pytest.raises(VaultError, match="not a Podium vault"):
        Vault.load(b"hello", key, run_id="run-42")
    with pytest.raises(VaultError, match="32 bytes"):
        masker.vault.dump(b"short")


# -- recall on generated values --------------------------------------------------------------

RECALL_SAMPLES = 250
RECALL_FLOOR = 0.95


@pytest.mark.parametrize("label", list(GENERATORS))
def test_recall_on_generated_values(label: str, capsys: pytest.CaptureFixture[str]) -> None:
    figure, missed = recall(label, RECALL_SAMPLES)
    with capsys.disabled():
        print(f"\nrecall {label}: {figure:.3f} over {RECALL_SAMPLES} samples")
    assert figure >= RECALL_FLOOR, missed[:10]


def test_every_builtin_label_has_a_generator() -> None:
    assert set(GENERATORS) == set(BUILTIN_LABELS)


# -- the documentation -----------------------------------------------------------------------

DOC = Path(__file__).parents[2] / "docs" / "masking.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_python_example_in_the_docs_runs() -> None:
    (code,) = _blocks("python")
    exec(compile(code, str(DOC), "exec"), {})


def test_the_yaml_policy_in_the_docs_is_valid() -> None:
    (text,) = _blocks("yaml")
    policy = MaskingPolicy.from_mapping(yaml.safe_load(text)["masking"])
    assert labels_in("E1234567 placed ORD-123456 from http://192.168.1.1/x", policy) == [
        ("EMPLOYEE_ID", "E1234567"), ("ORDER_ID", "ORD-123456"), ("IPV4", "192.168.1.1"),
    ]
