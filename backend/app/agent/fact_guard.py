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


_QUESTION_START = re.compile(
    r"^\W*(?:(?:hi|hello|hey|yes|so|and|ok|okay|um|uh|also|oh)\W+)*"
    r"(?:what|what's|whats|when|where|which|who|whose|why|how|do|does|did|can|could|is|are|was|were|will|would|"
    r"should|shall|may|might|have|has|any|got)\b",
    re.IGNORECASE,
)
_INQUIRY = re.compile(
    r"\b(?:i(?: want| need| would like|'d like| wanna) to (?:know|ask|find out|book)|tell me|wondering|curious|"
    r"price|cost|how much|looking for|interested in|right$)\b",
    re.IGNORECASE,
)
# Words that make a statement a claim about the salon ("I heard you're open late", "need a trim").
_SALON_SUBJECT = re.compile(
    r"\b(?:price|cost|charge|fee|dollars?|bucks|pay|paid|cash|card|deposit|refund|return|discount|gift|open|close[sd]?|"
    r"hours?|minutes?|book(?:ing)?|appointment|cancel\w*|reschedul\w*|walk-?ins?|parking|park|late|wait|"
    r"hair|haircut|cut|trim|colou?r|highlights?|balayage|keratin|perm|blow-?out|beard|styl\w*|bridal|wedding|updo|"
    r"treatments?|products?|shampoo|conditioner|wash|nails?|wax\w*|brows?|lash\w*|kids?|child\w*|"
    r"accessib\w*|wheelchair|dogs?|pets?|animals?|stylists?|salon|service\w*|offer\w*)\b|\$",
    re.IGNORECASE,
)
# A clause that is only courtesy or talk about the call itself; the model may answer it freely.
_SOCIAL_CLAUSE = re.compile(
    r"(?:(?:hi|hello|hey|yes|yeah|yep|no|nope|ok|okay|sure|great|perfect|thanks|thank you|cheers|bye|goodbye|"
    r"please|sorry|um|uh|hmm|so|oh|well|and|alright|all right|wonderful|awesome|cool)\s*)*"
    r"(?:how are you(?: doing| today)?|are you (?:there|still there|a (?:robot|bot|machine|person|human)|real|human)|"
    r"can you hear me|who(?:'s| is) this|what(?:'s| is) your name|(?:my name is|my name's|this is) [\w'-]+(?: [\w'-]+)?|"
    r"that's (?:all|it)|that is (?:all|it)|nothing else|good (?:morning|afternoon|evening)|"
    r"have a (?:good|nice|great) (?:day|one)|you too)?",
    re.IGNORECASE,
)
# A phone number as callers say or type it: "+1 (415) 555-0123", "415 555 0123".
PHONE_NUMBER = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def _social(clause: str) -> bool:
    words = clause.strip()
    if not words or _SOCIAL_CLAUSE.fullmatch(words):
        return True
    return bool(PHONE_NUMBER.fullmatch(re.sub(r"^(?:it's|its|it is|sure)\s*", "", words, flags=re.I)))


def needs_the_kb(utterance: str) -> bool:
    """Must the caller's words be answered from the KB (or by a human)? Doubt counts as yes.

    Courtesy, talk about the call, a name or a phone number need nothing; a question, or any
    statement touching what the salon offers, costs or does, does."""
    text = utterance.strip()
    if all(_social(clause) for clause in re.split(r"[.!?;,]+(?=\s|$)", text)):
        return False
    return (
        "?" in text
        or bool(_QUESTION_START.search(text))
        or bool(_INQUIRY.search(text))
        or bool(_SALON_SUBJECT.search(text))
        or bool(fact_tokens(text))
    )
