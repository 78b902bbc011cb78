"""What counts as a question, and when two are the same one: shared by the knowledge base, the
index of pending questions, the SMS inbox and the agent, so they never disagree."""

from __future__ import annotations

import re
import unicodedata


def normalize_question(question: str) -> str:
    """The key under which two questions count as the same one: case, spacing and punctuation ignored."""
    folded = unicodedata.normalize("NFKC", question).casefold()
    key = "".join(ch for ch in folded if ch.isalnum())
    # A question of symbols only keeps its symbols: "???" and "😀" must not be one question.
    return key or " ".join(folded.split())


# A clause that is only courtesy or talk about the call itself; the model may answer it freely.
_SOCIAL_CLAUSE = re.compile(
    r"(?:(?:hi|hello|hey|yes|yeah|yep|no|nope|ok|okay|sure|great|perfect|thanks|thank you|cheers|bye|goodbye|"
    r"please|sorry|um|uh|hmm|so|oh|well|and|alright|all right|wonderful|awesome|cool)\s*)*"
    r"(?:how are you(?: doing| today)?|are you (?:there|still there|a (?:robot|bot|machine|person|human)|real|human)|"
    r"can you hear me|who(?:'s| is) this|what(?:'s| is) your name|(?:my name is|my name's|this is) [\w'-]+(?: [\w'-]+)?|"
    r"that's (?:all|it)|that is (?:all|it)|nothing else|good (?:morning|afternoon|evening)|"
    r"have a (?:good|nice|great) (?:day|one)|you too|(?:so |very )?much|a lot|appreciate (?:it|that)|got it|"
    r"sounds good|that helps|see you(?: then| soon)?|will do|no problem|no worries)?",
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

    Courtesy, talk about the call, a name or a phone number need nothing; anything else does.
    Telling a question about the business from small talk by its words would need a word list
    for each kind of business, and a list that misses a word lets the model answer unchecked."""
    return not all(_social(clause) for clause in re.split(r"[.!?;,]+(?=\s|$)", utterance.strip()))
