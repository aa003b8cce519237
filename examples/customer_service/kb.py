"""The knowledge base the FAQ agent answers from, and BM25 retrieval over it.

`kb.md` holds one entry per `##` section: the title, a `keywords:` line and the answer.
Retrieval scores every entry against the ticket with Okapi BM25 (k1=1.5, b=0.75) over
lower-cased, lightly stemmed words without stop words; an entry's title and keywords
count twice, its answer once. Twenty entries need no index structure: a dictionary of
document frequencies and a loop are enough, and every score can be checked by hand.

The reply quotes the best entry's answer as it stands, so every fact in it comes from
the knowledge base.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Entry", "Match", "load", "search", "tokens"]

K1 = 1.5
B = 0.75
FIELD_WEIGHT = 2
"""How many times a title or keyword word counts against a word of the answer."""

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = frozenset("""
a about after again all am an and any are as at be been before being but by can could
dear did do does doing don't for from get got good had has have having hello hey hi how
i i'd i'm i've
if in into is it it's its just me my myself no not now of on or our please so some still
than thanks thank that the their them then there these they this those to too up us
very was we were what when where which while who why will with would yes you your
best cheers regards morning afternoon evening team
""".split())


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One answer of the knowledge base."""

    id: str
    """The title as a slug, e.g. `delivery-times`."""
    title: str
    keywords: tuple[str, ...]
    answer: str
    """Quoted to the customer as it stands."""


@dataclass(frozen=True, kw_only=True)
class Match:
    """An entry and how well it matches a ticket."""

    entry: Entry
    score: float
    """The BM25 score; 0 when no word is shared."""
    coverage: float
    """The share of the ticket's words (weighted by how rare they are in the knowledge
    base; words it never uses weigh most) that the entry contains, from 0 to 1."""


def stem(word: str) -> str:
    """A crude suffix stripper: `shipping`, `shipped`, `ships` → `ship`; `charges` →
    `charg`. It only has to map a word's forms together, not to produce words."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """The words of `text` that carry meaning, stemmed."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@functools.lru_cache(maxsize=8)
def _parse(path: str, mtime_ns: int) -> tuple[Entry, ...]:
    entries: list[Entry] = []
    sections = re.split(r"^## +", Path(path).read_text(encoding="utf-8"), flags=re.M)[1:]
    for section in sections:
        title, _, rest = section.partition("\n")
        keywords: tuple[str, ...] = ()
        lines = rest.strip().splitlines()
        if lines and lines[0].lower().startswith("keywords:"):
            keywords = tuple(k.strip() for k in lines[0].split(":", 1)[1].split(",") if k.strip())
            lines = lines[1:]
        answer = " ".join(line.strip() for line in lines if line.strip())
        if not answer:
            raise ValueError(f"knowledge base {path!r}: entry {title.strip()!r} has no answer")
        entries.append(Entry(id=_slug(title), title=title.strip(), keywords=keywords,
                             answer=answer))
    if not entries:
        raise ValueError(f"knowledge base {path!r} has no '## ' entries")
    return tuple(entries)


def load(path: str | Path) -> tuple[Entry, ...]:
    """The entries of the knowledge base at `path` (parsed again when the file changes).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file has no entries, or an entry has no answer.
    """
    file = Path(path)
    return _parse(str(file.resolve()), file.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _index(entries: tuple[Entry, ...]) -> tuple[list[Counter[str]], dict[str, int], float]:
    docs = []
    for e in entries:
        fields = tokens(" ".join([e.title, *e.keywords]))
        docs.append(Counter(fields * FIELD_WEIGHT + tokens(e.answer)))
    frequency: Counter[str] = Counter(word for doc in docs for word in doc)
    average = sum(doc.total() for doc in docs) / len(docs)
    return docs, dict(frequency), average


def search(text: str, entries: tuple[Entry, ...], *, limit: int = 3) -> list[Match]:
    """The `limit` entries that match `text` best, best first (ties by file order)."""
    docs, frequency, average = _index(entries)
    n = len(docs)
    idf = {word: math.log(1 + (n - frequency.get(word, 0) + 0.5)
                          / (frequency.get(word, 0) + 0.5)) for word in set(tokens(text))}
    weight = sum(idf.values())
    scored = []
    for position, (entry, doc) in enumerate(zip(entries, docs, strict=True)):
        length = doc.total()
        shared = idf.keys() & doc.keys()
        score = sum(idf[w] * doc[w] * (K1 + 1) / (doc[w] + K1 * (1 - B + B * length / average))
                    for w in shared)
        coverage = sum(idf[w] for w in shared) / weight if weight else 0.0
        scored.append((-round(score, 6), position, entry, round(coverage, 3)))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [Match(entry=entry, score=-neg, coverage=coverage)
            for neg, _, entry, coverage in scored[:limit]]
