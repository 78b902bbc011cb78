"""When two questions are the same question: one key for the knowledge base, the index of pending
questions and the agent, so that what one counts as asked already the others do too."""

from __future__ import annotations

import unicodedata


def normalize_question(question: str) -> str:
    """The key under which two questions count as the same one: case, spacing and punctuation ignored."""
    folded = unicodedata.normalize("NFKC", question).casefold()
    key = "".join(ch for ch in folded if ch.isalnum())
    # A question of symbols only keeps its symbols: "???" and "😀" must not be one question.
    return key or " ".join(folded.split())
