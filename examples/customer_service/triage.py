"""Triage: deterministic rules first, the local model where the rules are unsure.

A 135M-parameter model is fast and always answers in the schema (llama.cpp's grammar
sees to that), but what it puts in the schema is mostly wrong: on the shipped tickets it
gets the intent right less often than answering `faq` every time would, and it invents
customer numbers (`measure.py` prints the figures). So the rules decide whenever they
have evidence, and the model is asked only about the rest:

1. Anger (abuse, threats, shouting, "third time", "lawyer"...): a complaint for a
   person. Any one cue is enough: an upset customer should not get a canned answer.
2. Complexity (legal and data requests, business orders, bereavement, divorce, split
   orders, a long message): a person, whatever the intent.
3. An account change (a verb like change/update/switch and a field: email, address,
   plan): the CRM, if the ticket names exactly one customer number and a new value the
   rules can read (an email address, a US street address ending with its ZIP code, a
   plan name); otherwise a person, with the reason.
4. A knowledge-base entry that matches well (BM25 score and word coverage above
   `FAQ_SURE`): an FAQ answer.
5. Otherwise the model's intent decides: an FAQ answer if it says `faq` and some entry
   matches at least `FAQ_POSSIBLE`; a person for anything else.

The customer number is only ever read from the ticket by regular expression; the
model's is kept for the record but never used, since the model makes them up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import kb

Route = Literal["faq", "crm", "human"]
Field = Literal["email", "address", "plan"]

FAQ_SURE = (7.0, 0.2)
"""(BM25 score, coverage) at or above which the rules answer from the knowledge base."""
FAQ_POSSIBLE = (4.0, 0.12)
"""(score, coverage) at or above which the model's `faq` is taken."""
LONG_MESSAGE = 70
"""Words above which a ticket is complex."""

_ANGER = {
    "unacceptable": r"\bunacceptable\b", "ridiculous": r"\bridiculous\b",
    "furious": r"\bfurious\b", "angry": r"\bangry\b", "worst": r"\bworst\b",
    "terrible": r"\bterrible\b", "disgusting": r"\bdisgust", "scam": r"\bscam\b",
    "fraud": r"\bfraud\b", "lawyer": r"\blawyers?\b|\blegal action\b|\bsue you\b",
    "dispute": r"\bdisput(e|ing)\b|\bchargeback\b", "pathetic": r"\bpathetic\b",
    "useless": r"\buseless\b", "incompetent": r"\bincompetent\b", "joke": r"\ba joke\b",
    "fed up": r"\bfed up\b", "sick of": r"\bsick of\b", "harassment": r"\bharass",
    "ignored": r"\bignor(ing|ed) me\b", "lied": r"\blied\b", "ruined": r"\bruined\b",
    "compensation": r"\bcompensat", "regulator": r"\bbetter business bureau\b|\bbbb\b",
    "done with you": r"\bdone with\b", "again and again": r"\b(third|fourth|fifth) (time|email)\b",
    "nobody helps": r"\b(nobody|no one) (answers|called|replied|helps)\b",
    "still waiting": r"\bstill (nothing|no refund|waiting|not)\b",
    "exclamations": r"!!|\?\?",
}
_COMPLEX = {
    "data protection": r"\bgdpr\b|\bpersonal data\b|\bdata protection\b",
    "legal": r"\blawyers?\b|\blegal\b|\bsubpoena\b",
    "business order": r"\bbusiness discount\b|\bpayment terms\b|\bwholesale\b|\bbulk\b"
                      r"|\bemployees\b|\bcentrally\b",
    "registry": r"\bregistry\b",
    "bereavement": r"\blate (mother|father|husband|wife|partner)\b|\bpassed away\b",
    "divorce": r"\bdivorce\b",
    "privacy": r"\bsomeone else'?s\b|\bthird parties\b",
    "tax": r"\bsales tax\b",
    "split order": r"\bbackordered\b|\bsplit\b",
}
_ACRONYMS = frozenset({"VAT", "GDPR", "PDF", "USA", "FAQ", "BBB", "ASAP", "LH", "ID", "UK",
                       "US", "EU", "SMS", "OK", "PIN"})
_SHOUT = re.compile(r"\b[A-Z]{3,}\b")
_CUSTOMER = re.compile(r"\bC-?\s?(\d{5})\b", re.I)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_VERB = re.compile(r"\b(change|update|replace|switch|set|move|moved|moving|upgrade|"
                   r"downgrade|put me on|new)\b", re.I)
_FIELDS: dict[Field, re.Pattern[str]] = {
    "email": re.compile(r"\be-?mail\b", re.I),
    "address": re.compile(r"(?<!e-mail )(?<!email )\baddress\b|\bmoved\b|\bmoving\b", re.I),
    "plan": re.compile(r"\bplan\b|\bmembership\b|\bupgrade\b|\bdowngrade\b", re.I),
}
_STREET = re.compile(r"\b(\d{1,5} [A-Z][^\n]*?,[^\n]*?\b[A-Z]{2} \d{5}(?:-\d{4})?)\b")
_PLAN = re.compile(r"\b(?:to|on|onto)\s+(?:the\s+)?(basic|plus|pro)\b(?!\s+member)", re.I)


@dataclass(frozen=True, kw_only=True)
class Reading:
    """What the rules read in a ticket."""

    anger: tuple[str, ...]
    complex: tuple[str, ...]
    customer_ids: tuple[str, ...]
    fields: tuple[Field, ...]
    """Account fields the ticket asks to change (a change verb and the field's word)."""
    values: Mapping[Field, str]
    """The new value of each field the rules could read."""
    best: kb.Match
    """The knowledge-base entry that matches the ticket best."""


def text_of(ticket: Mapping[str, Any]) -> str:
    return f"{ticket.get('subject') or ''}\n{ticket.get('body') or ''}".strip()


def _shouting(text: str) -> bool:
    # LARKSPUR*MEMBER on a statement is a name, not a raised voice.
    words = [w for w in _SHOUT.findall(re.sub(r"\S*\*\S*", " ", text)) if w not in _ACRONYMS]
    return len(words) >= 2 or any(len(w) >= 5 for w in words)


def _values(text: str, sender: str) -> dict[Field, str]:
    values: dict[Field, str] = {}
    emails = {e.lower() for e in _EMAIL.findall(text)} - {sender.lower()}
    if len(emails) == 1:
        values["email"] = emails.pop().rstrip(".")
    streets = set(_STREET.findall(text))
    if len(streets) == 1:
        values["address"] = streets.pop()
    plans = {p.lower() for p in _PLAN.findall(text)}
    if len(plans) == 1:
        values["plan"] = plans.pop()
    return values


def read(ticket: Mapping[str, Any], entries: tuple[kb.Entry, ...]) -> Reading:
    """Apply every rule to a ticket."""
    text = text_of(ticket)
    anger = [name for name, pattern in _ANGER.items() if re.search(pattern, text, re.I)]
    if _shouting(text):
        anger.append("shouting")
    complex_ = [name for name, pattern in _COMPLEX.items() if re.search(pattern, text, re.I)]
    if len(text.split()) > LONG_MESSAGE:
        complex_.append("long message")
    ids = tuple(dict.fromkeys(f"C-{m}" for m in _CUSTOMER.findall(text)))
    fields: tuple[Field, ...] = ()
    if _VERB.search(text):
        fields = tuple(f for f, pattern in _FIELDS.items() if pattern.search(text))
    values = {f: v for f, v in _values(text, str(ticket.get("from") or "")).items()
              if f in fields}
    # Names in greetings and sign-offs are not what the ticket is about.
    name_words = {w.lower() for w in str(ticket.get("name") or "").split()}
    query = " ".join(w for w in re.split(r"(\W+)", text) if w.lower() not in name_words)
    best = kb.search(query, entries, limit=1)[0]
    return Reading(anger=tuple(anger), complex=tuple(complex_), customer_ids=ids,
                   fields=fields, values=values, best=best)


def faq_level(score: float, coverage: float) -> int:
    """2 when an entry with this match surely answers the ticket, 1 when it may, 0 when it
    does not."""
    for level, (least_score, least_coverage) in ((2, FAQ_SURE), (1, FAQ_POSSIBLE)):
        if score >= least_score and coverage >= least_coverage:
            return level
    return 0


def _change(reading: Reading) -> tuple[Route, str, dict[str, str] | None]:
    """Where an account change goes, why, and the change itself when it can be made."""
    ids, values = reading.customer_ids, reading.values
    if not ids:
        return "human", "account change without a customer number", None
    if len(ids) > 1:
        return "human", f"several customer numbers ({', '.join(ids)})", None
    if len(values) != 1:
        asked = "/".join(reading.fields)
        why = ("several changes in one ticket" if len(values) > 1
               else f"could not read the new {asked}")
        return "human", why, None
    field, value = next(iter(values.items()))
    return "crm", f"change {field} of {ids[0]}", {"field": field, "value": value}


def _by_model(verdict: Mapping[str, Any], model: Mapping[str, Any] | None
              ) -> tuple[str, Route, str]:
    """Intent, route and reason when the rules had nothing decisive."""
    if not model:
        return "other", "human", "rules unsure and no model answer"
    intent = str(model.get("intent"))
    match = verdict["kb"]
    if intent == "faq":
        if faq_level(match["score"], match["coverage"]) >= 1:
            return "faq", "faq", f"model: faq; best entry {match['id']!r}"
        return "other", "human", "model: faq, but no knowledge-base entry matches"
    if intent == "account_change":
        return "account_change", "human", "model: account change the rules could not read"
    if intent == "complaint":
        return "complaint", "human", "model: complaint"
    return "other", "human", "model: unclear request"


def judge(ticket: Mapping[str, Any], entries: tuple[kb.Entry, ...]) -> dict[str, Any]:
    """The rules' triage of one ticket: intent, complexity, route and why.

    `sure` is False when no rule decided; the verdict then waits for `settle` with the
    model's answer.
    """
    r = read(ticket, entries)
    change: dict[str, str] | None = None
    sure = True
    complexity = "complex" if r.complex or len(r.anger) >= 2 else "simple"
    if r.anger:
        intent, route = "complaint", "human"
        reason = f"upset customer ({', '.join(r.anger)})"
    elif r.complex:
        intent = "account_change" if r.fields else "other"
        route, reason = "human", f"complex ({', '.join(r.complex)})"
    elif r.fields:
        intent = "account_change"
        route, reason, change = _change(r)
    elif faq_level(r.best.score, r.best.coverage) == 2:
        intent, route, reason = "faq", "faq", f"best entry {r.best.entry.id!r}"
    else:
        sure = False
        intent, route, reason = "other", "human", "rules unsure"
    return {
        "ticket_id": ticket["id"],
        "sender": ticket.get("from"),
        "name": ticket.get("name"),
        "subject": ticket.get("subject"),
        "body": ticket.get("body"),
        "intent": intent,
        "complexity": complexity,
        "customer_id": r.customer_ids[0] if len(r.customer_ids) == 1 else None,
        "change": change,
        "route": route,
        "reason": reason,
        "sure": sure,
        "decided_by": "rules" if sure else "model",
        "kb": {"id": r.best.entry.id, "score": round(r.best.score, 2),
               "coverage": r.best.coverage},
        "model": None,
    }


def settle(verdict: Mapping[str, Any], model: Mapping[str, Any] | None) -> dict[str, Any]:
    """The final triage: the rules' verdict when they were sure, else the model's answer
    (a `Triage` as JSON, or None when the model failed) within what the rules allow.

    The model's complexity and customer number are kept in the record, never used: the
    complexity comes from the rules, and customer numbers only from the ticket's text.
    """
    if verdict["sure"]:
        return dict(verdict)
    intent, route, reason = _by_model(verdict, model)
    return {**verdict, "intent": intent, "route": route, "reason": reason,
            "model": dict(model) if model else None}
