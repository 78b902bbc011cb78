"""Checks on what the agent is about to say: does the caller ask something, and are the facts sourced.

A model may phrase an answer; it may not add a salon fact. Facts a caller could act on wrongly are
mostly numbers (prices, times, durations, phone numbers) and days, so every such token in a reply
must appear in what the agent was given this call: knowledge-base answers, the caller's own words,
its own fixed phrases. It is a net under the instructions, not a substitute for them.
"""

from __future__ import annotations

import re

from app.numbers import CARDINALS

# Not "zero": a model says "zero dollars" for the KB's "free", and the guard compares words, not meanings.
_NUMBER_WORDS = {word: value for word, value in CARDINALS.items() if value}
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "weekday", "weekend")
# Not "May" or "March": as words they start too many sentences ("May I have your name?").
_MONTHS = ("january", "february", "april", "june", "july", "august", "september", "october", "november", "december")
_OTHER = ("noon", "midnight", "free", "percent", "half")

_WORD_NUMBER = re.compile(
    r"\b(?:%s)s?(?:[\s-]+(?:and[\s-]+)?(?:%s)s?)*\b" % (("|".join(_NUMBER_WORDS),) * 2), re.IGNORECASE
)
_TOKEN = re.compile(
    r"\d+(?:[.,:]\d+)*"
    r"|\b(?:" + "|".join(_DAYS + _OTHER) + r")s?\b"
    # Months count only capitalized ("august" is also an adjective).
    r"|\b(?:" + "|".join(m.capitalize() for m in _MONTHS) + r")\b",
    re.IGNORECASE,
)


def _spelled_value(phrase: str) -> int:
    """ "sixty-five" -> 65, "one hundred and twenty" -> 120."""
    total = current = 0
    for word in re.findall(r"[a-z]+", phrase.lower()):
        word = word if word in _NUMBER_WORDS else word.removesuffix("s")
        if word == "and":
            continue
        if word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            current += _NUMBER_WORDS[word]
    return total + current


def _canonical(token: str) -> str:
    word = token.lower()
    if word[0].isdigit():
        digits = re.sub(r"[.,:]00$", "", word).replace(",", "")
        return digits.lstrip("0") or "0"
    return word.removesuffix("s") if word.removesuffix("s") in (*_DAYS, *_OTHER) else word


def fact_tokens(text: str) -> set[str]:
    tokens = set()
    for match in _WORD_NUMBER.finditer(text):
        if match.group(0).lower() != "one":  # "one moment", "the one you want": not a fact
            tokens.add(str(_spelled_value(match.group(0))))
    for match in _TOKEN.finditer(_WORD_NUMBER.sub(" ", text)):
        raw = match.group(0)
        if raw[0].isalpha() and raw.lower() in _MONTHS and not raw[0].isupper():
            continue
        tokens.add(_canonical(raw))
    return tokens


def unsourced_facts(reply: str, sources: str) -> set[str]:
    """Fact tokens of `reply` that appear nowhere in `sources`."""
    return fact_tokens(reply) - fact_tokens(sources)
