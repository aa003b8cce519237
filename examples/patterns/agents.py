"""The function agents of the pattern examples (`examples/patterns/*.yaml`).

Each is a plain function: Podium fills its parameters by name from the task's `with:`
values (a chain step's `input`, a worker's `item`, a loop's `draft`, `feedback`,
`thread`, `context`), upstream outputs and run inputs. They do real, small work on text,
so every example runs without a model, and each result can be checked by hand.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from podium.patterns import Handoff

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z']+")
_MONEY = re.compile(r"(?<![\w-])\d+\.\d{2}\b")


# -- chain: extract → total → report ---------------------------------------------------------


def extract(text: str) -> list[float]:
    """The numbers written in the text, in order."""
    return [float(n) for n in _NUMBER.findall(text)]


def total(input: list[float]) -> dict[str, float]:
    """Count, sum and mean of the numbers."""
    count = len(input)
    return {"count": count, "sum": round(sum(input), 2),
            "mean": round(sum(input) / count, 2) if count else 0.0}


def report(input: Mapping[str, float]) -> str:
    """The totals as one sentence."""
    return (f"{int(input['count'])} amounts, {input['sum']:.2f} in all, "
            f"{input['mean']:.2f} on average")


# -- route: which desk takes a message ------------------------------------------------------

_DESKS = {
    "billing": ("invoice", "refund", "charge", "charged", "payment", "bill", "price"),
    "technical": ("error", "crash", "bug", "login", "password", "broken", "install"),
}


def classify(message: str) -> dict[str, str]:
    """The desk whose keywords the message mentions most; `general` when none."""
    words = [w.lower() for w in _WORD.findall(message)]
    scores = {desk: sum(words.count(k) for k in keys) for desk, keys in _DESKS.items()}
    best = max(scores, key=lambda d: scores[d])
    return {"route": best if scores[best] else "general"}


def billing_desk(message: str) -> str:
    amounts = _NUMBER.findall(message)
    about = f" about {amounts[0]}" if amounts else ""
    return f"Billing will look into the charge{about} within two working days."


def technical_desk(message: str) -> str:
    return "Support opened a technical case; please send the exact error text you see."


def general_desk(message: str) -> str:
    return "Thanks for writing; a member of the team will reply shortly."


# -- parallel: review a text in sections, then vote on its tone ------------------------------


def length_review(text: str) -> dict[str, Any]:
    words = _WORD.findall(text)
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    return {"words": len(words), "sentences": len(sentences),
            "words_per_sentence": round(len(words) / max(1, len(sentences)), 1)}


def repetition_review(text: str) -> dict[str, Any]:
    words = [w.lower() for w in _WORD.findall(text) if len(w) > 3]
    repeated = sorted(w for w, n in Counter(words).items() if n > 2)
    return {"repeated": repeated}


def shouting_review(text: str) -> dict[str, Any]:
    loud = [w for w in _WORD.findall(text) if len(w) > 1 and w.isupper()]
    return {"capitalised_words": loud, "exclamations": text.count("!")}


def summary_card(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One verdict from the sections' findings."""
    issues = []
    if sections["length"]["words_per_sentence"] > 25:
        issues.append("long sentences")
    if sections["repetition"]["repeated"]:
        issues.append("repeats " + ", ".join(sections["repetition"]["repeated"]))
    if sections["tone"]["capitalised_words"] or sections["tone"]["exclamations"] > 1:
        issues.append("shouting")
    return {"verdict": "ready" if not issues else "revise", "issues": issues}


_POSITIVE = {"great", "love", "thanks", "excellent", "happy", "good", "fast", "helpful"}
_NEGATIVE = {"bad", "slow", "broken", "angry", "refund", "never", "worst", "late", "poor"}


def tone_by_words(text: str) -> str:
    words = {w.lower() for w in _WORD.findall(text)}
    score = len(words & _POSITIVE) - len(words & _NEGATIVE)
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def tone_by_punctuation(text: str) -> str:
    if text.count("!") >= 2 or any(w.isupper() and len(w) > 2 for w in _WORD.findall(text)):
        return "negative"
    return "positive" if ":)" in text else "neutral"


def tone_by_ending(text: str) -> str:
    last = [s for s in re.split(r"[.!?]+", text) if s.strip()][-1:]
    return tone_by_words(last[0]) if last else "neutral"


# -- orchestrate: outline a document, summarise each part, assemble ---------------------------


def outline(document: str) -> dict[str, list[dict[str, str]]]:
    """The document's parts: each `# Heading` and the text under it."""
    items, title, lines = [], None, []
    for line in document.splitlines():
        if line.startswith("# "):
            if title is not None:
                items.append({"title": title, "text": " ".join(lines).strip()})
            title, lines = line[2:].strip(), []
        elif line.strip():
            lines.append(line.strip())
    if title is not None:
        items.append({"title": title, "text": " ".join(lines).strip()})
    return {"items": items}


def summarise(item: Mapping[str, str]) -> dict[str, Any]:
    """A part's first sentence and its length."""
    first = re.split(r"(?<=[.!?])\s", item["text"], maxsplit=1)[0]
    return {"title": item["title"], "summary": first, "words": len(_WORD.findall(item["text"]))}


def assemble(results: Sequence[Mapping[str, Any]], planned: int) -> str:
    lines = [f"- {r['title']} ({r['words']} words): {r['summary']}" for r in results]
    cut = planned - len(results)
    return "\n".join(lines + ([f"({cut} more parts not summarised)"] if cut > 0 else []))


# -- refine: shorten a text until an editor accepts it ---------------------------------------

_FILLER = ("really", "very", "just", "actually", "basically", "quite", "simply", "truly",
           "that", "in order")


def shorten(text: str, draft: str | None = None, feedback: str | None = None) -> str:
    """Round 1 drops filler words; each later round also drops the draft's last sentence
    part after a comma, as the feedback asked for fewer words."""
    current = draft if draft is not None else text
    if draft is None:
        for filler in _FILLER:
            current = re.sub(rf"\b{filler}\s+", "", current, flags=re.IGNORECASE)
        return re.sub(r"\s{2,}", " ", current).strip()
    head, comma, _ = current.rpartition(",")
    return (head.rstrip() + ".") if comma else current


def word_limit(draft: str, limit: int) -> dict[str, Any]:
    """Accept a draft of at most `limit` words; otherwise say by how much it is over."""
    count = len(_WORD.findall(draft))
    if count <= limit:
        return {"accept": True, "feedback": f"{count} words: within {limit}"}
    return {"accept": False, "feedback": f"{count} words: cut {count - limit} more"}


# -- supervisor: a lead hands requests to specialists, with the context it chooses ------------


def lead(request: str | None = None, context: Any = None, **_: Any) -> Any:
    """Hands a new request to the right specialist, passing only what it needs; answers
    with what a specialist hands back."""
    if context is not None:  # a specialist handed back its finding
        return f"Resolved: {context}"
    text = request or ""
    order = re.search(r"\b[A-Z]{2}-\d{4}\b", text)
    amounts = [float(a) for a in _MONEY.findall(text)]
    if "refund" in text.lower() or "charged" in text.lower():
        return Handoff(to="refunds", context={"order": order[0] if order else None,
                                              "amount": amounts[:1]})
    if "password" in text.lower() or "login" in text.lower():
        return Handoff(to="accounts", context={"issue": "login"})
    return "Thanks, noted: no specialist is needed for this."


def refunds(context: Mapping[str, Any], **_: Any) -> Any:
    """Refunds an order it is told about; without an order number, asks the lead again
    (the context is all it knows of the conversation)."""
    if not context.get("order"):
        return Handoff(to="lead", context="refund refused: no order number was given")
    amount = (context.get("amount") or [0.0])[0]
    return Handoff(to="lead", context=f"refunded {amount:.2f} on {context['order']}")


def accounts(context: Mapping[str, Any], **_: Any) -> str:
    return "A password reset link is on its way."


def bouncer(context: Any = None, **_: Any) -> Handoff:
    """Always hands the conversation on: the example of a loop that only the bound ends."""
    return Handoff(to="lead", context=context)


# -- discussion: agree on a meeting day --------------------------------------------------------

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def _proposal(thread: Sequence[Mapping[str, Any]]) -> str | None:
    for turn in reversed(thread):
        found = re.search(r"propose (\w+day)", str(turn["message"]))
        if found:
            return found[1]
    return None


def _busy(days: str) -> set[str]:
    return {d.strip() for d in days.split(",") if d.strip()}


def planner(thread: Sequence[Mapping[str, Any]], busy_planner: str) -> str:
    """Proposes the first day after the last one proposed that it is free."""
    last = _proposal(thread)
    start = _DAYS.index(last) + 1 if last else 0
    for day in _DAYS[start:]:
        if day not in _busy(busy_planner):
            return f"I propose {day}."
    return "I have no free day left this week."


def colleague(thread: Sequence[Mapping[str, Any]], busy_colleague: str) -> str:
    day = _proposal(thread)
    if day is None:
        return "Please propose a day."
    if day in _busy(busy_colleague):
        return f"{day} does not work for me."
    return f"{day} works for me. AGREED"
