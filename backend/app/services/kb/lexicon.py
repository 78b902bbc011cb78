"""Words: tokens, stems, contrast facets and question intents, for the answer-or-escalate decision."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app.numbers import CARDINALS, ORDINALS

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "for",
        "on",
        "in",
        "at",
        "by",
        "with",
        "from",
        "about",
        "as",
        "into",
        "than",
        "then",
        "so",
        "do",
        "does",
        "did",
        "doing",
        "done",
        "be",
        "is",
        "are",
        "was",
        "were",
        "been",
        "being",
        "am",
        "have",
        "has",
        "had",
        "having",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "i",
        "me",
        "my",
        "mine",
        "we",
        "us",
        "our",
        "ours",
        "you",
        "your",
        "yours",
        "he",
        "him",
        "his",
        "she",
        "her",
        "hers",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "there",
        "here",
        "any",
        "some",
        "all",
        "each",
        "every",
        "no",
        "not",
        "yes",
        "just",
        "also",
        "too",
        "very",
    ]
)


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return text.replace("\u2019", "'").replace("-", " ")


def stem(word: str) -> str:
    """A light English stemmer: enough to make 'colored', 'coloring' and 'colors' meet."""
    if word.endswith("'s"):
        word = word[:-2]
    for suffix, keep in (("ies", 4), ("ing", 5), ("ed", 5), ("es", 5), ("s", 4)):
        if word.endswith(suffix) and len(word) >= keep and not word.endswith("ss"):
            base = word[: -len(suffix)]
            if suffix == "ies":
                return base + "y"
            if suffix == "es" and not base.endswith(("s", "x", "z", "ch", "sh")):
                return base + "e"
            if suffix in ("ing", "ed") and len(base) > 2 and base[-1] == base[-2] and base[-1] not in "ls":
                return base[:-1]  # 'trimmed' -> 'trim', 'shopping' -> 'shop'
            return base
    return word


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def stems(text: str) -> list[str]:
    return [stem(w) for w in words(text)]


def content_stems(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOPWORDS}


# --- intents: what kind of fact the caller wants ----------------------------------------------

_AMOUNT_ASKED = re.compile(
    r"\bhow much\b(?! time)|\bcosts?\b|\bprices?\b(?! (?:different|differ|based|by))|\bwhat do you charge\b|"
    r"\bwhat(?:'s| is| are) (?:the|your) (?:fee|rate|charge)s?\b|\bfees?\b|\brates?\b|\bexpensive\b|\bcheap\b"
)
_AMOUNT_GIVEN = re.compile(r"[$€£]\s?\d|\d+\s?(?:dollars|usd|euros?|pounds)\b|\bfree\b|\bno charge\b|\bpercent\b|%")
_DURATION_ASKED = re.compile(
    r"\bhow long\b|\bhow much time\b|\bhow many (?:minutes|hours)\b|\bduration\b|\btakes? long\b|\bset aside\b"
)
_LASTING_ASKED = re.compile(
    r"\bhow long (?:does|do|will|would) .{0,40}\blast\b|\bhow many (?:weeks|months)\b|\blasts? how long\b|"
    r"\bwash(?:es)? out\b|\bgrow(?:s)? out\b"
)
_LASTING_GIVEN = re.compile(r"\b(?:\d+|a few|several|one|two|three|four|six)\s?(?:-\s?\d+\s?)?(?:weeks?|months?)\b")
_DURATION_GIVEN = re.compile(
    r"\b(?:\d+(?:\.\d+)?|an?|one|two|three|four|half an?)\s?(?:-\s?\d+\s?)?(?:minutes?|mins?|hours?|hrs?)\b"
    r"(?!'?s? (?:before|ahead|notice|in advance|prior))"
)
_CLOCK_ASKED = re.compile(
    r"\bwhat time\b|\b(?:your|opening|business|salon|the) hours\b|\bhours (?:on|for|today|this)\b|\bwhen (?:do|does|are|will) (?:you|the salon|it) (?:open|close)|\bhow late (?:are|is|do|does) (?:you|the salon|it)\b|\bhow early\b(?= .*\bopen)|\bopen until\b|\bclose at\b|\bopening times\b"
)
_CLOCK_GIVEN = re.compile(
    r"\b\d{1,2}(?::\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)|\bnoon\b|\bmidnight\b|\bclosed\b|\b\d{1,2}:\d{2}\b"
)


@dataclass(frozen=True)
class Intent:
    name: str
    asked: re.Pattern[str]
    given: re.Pattern[str]


INTENTS = (
    Intent("amount", _AMOUNT_ASKED, _AMOUNT_GIVEN),
    Intent("duration", _DURATION_ASKED, _DURATION_GIVEN),
    Intent("clock time", _CLOCK_ASKED, _CLOCK_GIVEN),
    Intent("how long it lasts", _LASTING_ASKED, _LASTING_GIVEN),
)


def asked_intents(query: str) -> frozenset[str]:
    q = fold(query)
    return frozenset(i.name for i in INTENTS if i.asked.search(q))


def unmet_intent(query: str, answer: str) -> str | None:
    """The kind of fact the query asks for that the answer does not contain, if any."""
    q, a = fold(query), fold(answer)
    for intent in INTENTS:
        if intent.asked.search(q) and not intent.given.search(a):
            return intent.name
    return None


# --- facets: contrast sets ---------------------------------------------------------------------


Facets = dict[str, frozenset[str]]

# Read a word at a time: up to twelve (larger spoken numbers are mostly compounds, "twenty five"),
# and not "one" ("the one with highlights").
_NUMBER_WORDS = {
    word: str(value) for word, value in (CARDINALS | ORDINALS).items() if value <= 12 and word != "one"
} | {"twice": "2"}
_NUMBER = re.compile(r"^(\d+(?:[.,]\d+)?)(?:st|nd|rd|th)?$")


def numbers(tokens: list[str]) -> frozenset[str]:
    """Numbers named in words or digits ('second' and '2nd' are both 2): 'question 1' is not 'question 2'."""
    found = set()
    for token in tokens:
        if token in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[token])
        elif m := _NUMBER.match(token):
            found.add(m.group(1).replace(",", "."))
    return frozenset(found)


@dataclass(frozen=True, eq=False)
class Lexicon:
    # facet -> first stem of a phrase -> [(stemmed phrase, value)], longest phrases first
    phrases: dict[str, dict[str, list[tuple[tuple[str, ...], str]]]]
    # facet -> value -> values it covers (and is covered by): an umbrella and its members
    related: dict[str, dict[str, frozenset[str]]]
    fillers: frozenset[str]
    modifiers: frozenset[str]

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        data = json.loads(path.read_text(encoding="utf-8"))
        phrases: dict[str, dict[str, list[tuple[tuple[str, ...], str]]]] = {}
        for facet, values in data["facets"].items():
            # A weak form ('~husband') names its value as "~men": enough to agree, never required.
            entries = [
                (tuple(stems(form.lstrip("~"))), f"~{value}" if form.startswith("~") else value)
                for value, forms in values.items()
                for form in forms
            ]
            by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
            for phrase, value in sorted({e for e in entries if e[0]}, key=lambda e: -len(e[0])):
                by_first.setdefault(phrase[0], []).append((phrase, value))
            phrases[facet] = by_first
        related: dict[str, dict[str, set[str]]] = {}
        for facet, umbrellas in data.get("covers", {}).items():
            for umbrella, members in umbrellas.items():
                for member in members:
                    related.setdefault(facet, {}).setdefault(umbrella, set()).add(member)
                    related[facet].setdefault(member, set()).add(umbrella)
        frozen = {f: {v: frozenset(r) for v, r in m.items()} for f, m in related.items()}
        return cls(
            phrases=phrases,
            related=frozen,
            fillers=frozenset(stems(" ".join(data.get("fillers", [])))),
            modifiers=frozenset(data.get("modifiers", [])) | {"number"},
        )

    def facets(self, text: str) -> Facets:
        """Facet values named in `text`: per facet, the longest phrase at each place, left to right."""
        return self._facets(text)

    @lru_cache(maxsize=8192)  # noqa: B019 (one Lexicon per process; entries' texts recur as candidates)
    def _facets(self, text: str) -> Facets:
        tokens = stems(text)
        found: dict[str, frozenset[str]] = {}
        named = numbers(words(text))
        if named:
            found["number"] = named
        for facet, by_first in self.phrases.items():
            values: set[str] = set()
            i = 0
            while i < len(tokens):
                step = 1
                for phrase, value in by_first.get(tokens[i], ()):
                    if tuple(tokens[i : i + len(phrase)]) == phrase:
                        values.add(value)
                        step = len(phrase)
                        break
                i += step
            if values:
                found[facet] = frozenset(values)
        return found

    def agree(self, facet: str, a: str, b: str) -> bool:
        a, b = a.lstrip("~"), b.lstrip("~")
        return a == b or b in self.related.get(facet, {}).get(a, frozenset())

    def conflict(self, query: Facets, question: Facets, answer: Facets) -> str | None:
        """Why an entry (its question's and answer's facets) cannot answer the query, if it cannot.

        1. every value the caller named must be named by the entry (question or answer) -- numbers
           excepted: an answer may correct the caller's figure;
        2. where the caller names a subject (a service, a day, ...), the entry's question must be
           about one of them: an answer that merely mentions it is about something else;
        3. every value the entry's question names must be matched by the caller's: the entry is
           about it, and the caller did not ask about it."""
        for facet, wanted in query.items():
            if facet == "number":
                continue
            # Only what the entry names outright counts: "do you sell gift cards" does not offer products.
            offered = {v for v in question.get(facet, frozenset()) | answer.get(facet, frozenset()) if v[0] != "~"}
            for value in wanted:
                if not value.startswith("~") and not any(self.agree(facet, value, o) for o in offered):
                    return f"{facet} '{value}' is not what this entry is about"
        subjects = [(f, v) for f, vs in query.items() if f not in self.modifiers for v in vs if not v.startswith("~")]
        if subjects and not any(self.agree(f, v, about) for f, v in subjects for about in question.get(f, frozenset())):
            names = ", ".join(sorted(v for _, v in subjects))
            return f"the entry's question is not about {names}"
        for facet, about in question.items():
            if facet in self.modifiers and facet != "number":
                continue  # "full highlights are $185" answers "how much are highlights" truthfully
            asked = query.get(facet, frozenset())
            for value in about:
                if not value.startswith("~") and not any(self.agree(facet, value, a) for a in asked):
                    return f"the entry is about {facet} '{value}', which the caller did not ask about"
        return None


@lru_cache
def load_lexicon(path: str) -> Lexicon:
    """The business's lexicon, or an empty one (no facets) when `path` is empty."""
    if not path:
        return Lexicon(phrases={}, related={}, fillers=frozenset(), modifiers=frozenset({"number"}))
    return Lexicon.load(Path(path))
