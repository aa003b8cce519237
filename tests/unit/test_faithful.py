"""The faithfulness check's rules (podium.core.faithful), without a run: which claims an
output makes, and which the task's data supports, with the tolerance documented there."""

from __future__ import annotations

import json
from typing import Any

import pytest

from podium import Faithful, OutputInvalid, Unfaithful
from podium.core.faithful import Given

HEADLINE: dict[str, Any] = {
    "month": "October 2026", "income": 77325.13, "expenses": 73201.81, "net": 4123.32,
    "previous_net": 15452.76, "net_change_percent": -73.3,
    "largest_expenses": {"Payroll": 45496.59, "Travel": 13030.17, "Rent": 6500.0},
    "anomalies": ["Travel 12480.00 at Skyline Charter on 2026-10-14"],
}
GIVEN = Given(prompt=f"Summarise these figures: {json.dumps(HEADLINE)}")
CHECK = Faithful(sources=("prompt",))


def unsupported(text: str, check: Faithful = CHECK, given: Given = GIVEN) -> list[str]:
    return [c.text for c in check.unsupported({"text": text}, given)]


@pytest.mark.parametrize("text", [
    "Income was 77325.13.",
    "Income was 77,325.13.",
    "Income was $77,325.13.",
    "Income was USD 77,325.13.",
    "Income was 77,325.13 USD.",
    "Income was 77,325.13 dollars.",
    "Income was €77,325.13.",  # a source written without a currency supports any
    "Income was $77,325.",  # rounded to the units written
    "Income was $77.3k.",
    "Income was about 77 thousand.",
    "Income was $0.08 million.",
    "The net result fell 73.3%.",
    "The net result fell 73 percent.",
    "The net result was -4,123.32.",  # magnitudes: prose says the sign in words
    "Rent came to 6,500.00.",
])
def test_figures_in_the_data_are_supported_however_they_are_written(text: str) -> None:
    assert unsupported(text) == []


@pytest.mark.parametrize(("text", "claim"), [
    ("a total of $773,25.13", "$773,25.13"),  # the local model's misplaced separators
    ("Income was 77,325.12.", "77,325.12"),  # the precision written is the promise
    ("Income was $77.4k.", "$77.4k"),
    ("Income was 77,326.", "77,326"),
    ("The net result fell 37.3%.", "37.3%"),
    ("Spending reached $1,234.50.", "$1,234.50"),
    ("Income grew 12 percent.", "12 percent"),
    ("a total of 210 million dollars", "210 million dollars"),
])
def test_figures_not_in_the_data_are_named(text: str, claim: str) -> None:
    assert unsupported(text) == [claim]


def test_a_misplaced_separator_is_refused_with_the_reason() -> None:
    (claim,) = CHECK.unsupported({"text": "a total of $77,325,13.00"}, GIVEN)
    assert claim.kind == "currency" and "misplaced" in claim.reason


def test_percentages_match_fractions_and_currencies_must_agree() -> None:
    given = Given(args={"share": 0.125, "price": "€12.00"})
    check = Faithful()
    assert unsupported("A share of 12.5% at €12.00.", check, given) == []
    assert unsupported("A share of 12.6% at $12.00.", check, given) == ["12.6%", "$12.00"]


def test_tolerance_is_a_relative_margin() -> None:
    assert unsupported("Income was 78,000.00.") == ["78,000.00"]
    assert unsupported("Income was 78,000.00.", Faithful(sources=("prompt",),
                                                          tolerance=0.01)) == []


@pytest.mark.parametrize("text", [
    "In October 2026 the net fell.",
    "In Oct 2026 the net fell.",
    "On 2026-10-14 a charter was booked.",
    "On 14 October 2026 a charter was booked.",
    "On October 14th, 2026 a charter was booked.",
    "On October 14 a charter was booked.",
    "On 10/14/2026 a charter was booked.",
    "On 14/10/2026 a charter was booked.",
    "In 2026 the net fell.",
    "In October the net fell.",
])
def test_dates_in_the_data_are_supported_in_common_formats(text: str) -> None:
    assert unsupported(text) == []


@pytest.mark.parametrize(("text", "claim"), [
    ("On 2026-10-15 a charter was booked.", "2026-10-15"),
    ("In November 2026 the net fell.", "November 2026"),
    ("In 2025 the net fell.", "2025"),
    ("On October 15, 2026 a charter was booked.", "October 15, 2026"),
    ("On 2026-02-30 nothing happened.", "2026-02-30"),
])
def test_dates_not_in_the_data_are_named(text: str, claim: str) -> None:
    assert unsupported(text) == [claim]


def test_a_month_in_the_data_does_not_support_a_day_it_does_not_give() -> None:
    assert unsupported("On October 3, 2026 income arrived.") == ["October 3, 2026"]


def test_names_in_the_data_are_supported_and_others_named() -> None:
    assert unsupported("Spending on Travel led, with a charter at Skyline Charter.") == []
    assert unsupported("Payroll and Travel led.") == []  # two names of the data
    assert unsupported("The largest payment went to Acme Corp for Consulting.") == [
        "Acme Corp", "Consulting"]
    # A capitalised word that opens a sentence alone is not taken for a name.
    assert unsupported("Income fell. Expenses rose.") == []


def test_small_counts_and_allowed_values_pass() -> None:
    assert unsupported("Three categories led; 1 transaction stands out, the 2nd.") == []
    assert unsupported("11 transactions stand out.") == ["11"]
    assert unsupported("11 transactions stand out.",
                       Faithful(sources=("prompt",), small_numbers=20)) == []
    assert unsupported("Podium saw 42 rows in 2031.",
                       Faithful(sources=("prompt",), allow=(42, "2031", "Podium"))) == []
    assert unsupported("1 transaction stands out.",
                       Faithful(sources=("prompt",), small_numbers=-1)) == ["1"]


def test_only_the_kinds_asked_for_are_checked() -> None:
    text = "Acme Corp paid $99 on 2027-01-01, up 5%."
    assert unsupported(text) == ["2027-01-01", "$99", "5%", "Acme Corp"]
    assert unsupported(text, Faithful(sources=("prompt",), kinds=("dates", "entities"))) == [
        "2027-01-01", "Acme Corp"]
    assert unsupported(text, Faithful(sources=("prompt",), kinds=("currency",))) == ["$99"]


def test_sources_are_what_the_check_reads() -> None:
    given = Given(prompt="Write about the month.", args={"figure": 12.5},
                  inputs={"month": "2026-10"}, outputs={"analyse": {"net": 4123.32},
                                                        "extract": {"rows": 44}})
    text = "In October 2026 the net was 4,123.32 over 44 rows, 12.5 each."
    assert unsupported(text, Faithful(), given) == ["October 2026", "4,123.32", "44"]
    assert unsupported(text, Faithful(sources=("with", "inputs.month", "outputs.analyse")),
                       given) == ["44"]
    assert unsupported(text, Faithful(sources=("with", "inputs", "outputs")), given) == []


def test_structured_outputs_are_checked_field_by_field() -> None:
    output = {"summary": "Rent was 6,500.00.", "total": 99.5, "items": [{"name": "Acme Corp"}]}
    claims = CHECK.unsupported(output, GIVEN)
    assert [(c.text, c.where) for c in claims] == [("99.5", "total"),
                                                   ("Acme Corp", "items.0.name")]


def test_a_failure_is_an_output_invalid_naming_each_claim() -> None:
    with pytest.raises(Unfaithful) as caught:
        CHECK.check({"text": "A total of $773,25.13, up 12% on Acme Corp's."}, GIVEN)
    error = caught.value
    assert isinstance(error, OutputInvalid)
    assert str(error).startswith("3 claims are not in the task's data (sources: prompt): ")
    assert "'$773,25.13' (currency at text, its thousands separators are misplaced)" in str(error)
    assert [c["text"] for c in error.claims] == ["$773,25.13", "12%", "Acme Corp"]
    told = CHECK.feedback(error)
    assert "'$773,25.13', '12%', 'Acme Corp'" in told and "only figures" in told


def test_min_figures_refuses_an_output_that_states_too_few() -> None:
    check = Faithful(sources=("prompt",), min_figures=2)
    check.check({"text": "In October 2026 income was 77,325.13; 3 items."}, GIVEN)
    for empty in ("A summary of the month's figures.", "In October 2026, 3 items stood out."):
        with pytest.raises(Unfaithful, match=r"states \d figure\(s\).*at least 2") as caught:
            check.check({"text": empty}, GIVEN)
        assert caught.value.claims == []
        assert "State at least 2 of the amounts" in check.feedback(caught.value)


def test_a_claim_repeated_is_named_once() -> None:
    assert unsupported("$1.2 billion, then $1.2 billion, then $2 billion.") == [
        "$1.2 billion", "$2 billion"]


def test_long_lists_are_cut_in_the_message_but_kept_in_the_claims() -> None:
    text = " ".join(f"{n}.5" for n in range(100, 130))
    with pytest.raises(Unfaithful) as caught:
        Faithful(max_listed=3).check(text, Given())
    assert str(caught.value).endswith("and 27 more")
    assert len(caught.value.claims) == 30


@pytest.mark.parametrize(("settings", "field"), [
    ({"kinds": ("numbers", "colours")}, "kinds"),
    ({"kinds": ()}, "kinds"),
    ({"sources": ("prompt", "memory")}, "sources"),
    ({"sources": ()}, "sources"),
    ({"tolerance": 1.5}, "tolerance"),
    ({"small_numbers": -2}, "small_numbers"),
    ({"min_figures": -1}, "min_figures"),
])
def test_bad_settings_are_refused_naming_the_setting(settings: dict[str, Any],
                                                     field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Faithful(**settings)
