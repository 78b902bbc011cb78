"""The words of each text to a caller, kept to at most two SMS segments.

A segment holds 160 GSM-7 characters alone or 153 when the text is split (70 and 67 when any
character needs UCS-2). What gives way, in order: the quoted question is shortened, then left out;
the answer never is. An answer that cannot fit whole is not sent cut: the text says there is an
answer and how to call for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from app.callers import UNKNOWN_CALLER

MAX_SEGMENTS = 2

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")  # two septets each

# Typographic punctuation typed by people and phones: one of these alone makes a text UCS-2, and
# halves what two segments hold. Their plain forms read the same.
_PLAIN = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " ", "…": "..."})

# A question cut shorter than this says nothing; then "your question" says as much.
_MIN_QUOTE = 12
# A long name is more likely a note the agent wrote than what to call someone.
_MAX_NAME = 30


def plain(text: str) -> str:
    return " ".join(text.translate(_PLAIN).split())


def segments(text: str) -> int:
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        units = len(text) + sum(ch in _GSM_EXTENDED for ch in text)
        single, part = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else math.ceil(units / part)


def fits(text: str) -> bool:
    return segments(text) <= MAX_SEGMENTS


def _hello(name: str | None) -> str:
    name = plain(name or "")
    return "Hi" if not name or name == UNKNOWN_CALLER or len(name) > _MAX_NAME else f"Hi {name}"


def _with_question(render: Callable[[str], str], question: str) -> str | None:
    """`render(quote)` with as much of the question quoted as fits; "your question" when not even a
    few words do; None when the text is too long without it."""
    question = plain(question)
    if fits(text := render(f'"{question}"')):
        return text
    longest, low, high = None, _MIN_QUOTE, len(question) - 1
    while low <= high:  # the longest cut that fits
        middle = (low + high) // 2
        if fits(render(_cut(question, middle))):
            longest, low = middle, middle + 1
        else:
            high = middle - 1
    if longest is not None:
        return render(_cut(question, longest))
    text = render("your question")
    return text if fits(text) else None


def _cut(question: str, length: int) -> str:
    head = question[:length]
    space = head.rfind(" ")
    if space >= length // 2:  # end on a whole word when that loses little
        head = head[:space]
    return f'"{head.rstrip(" ,;:")}..."'


def compose(
    kind: str,
    request: Mapping[str, Any],
    *,
    salon_name: str,
    salon_phone: str | None,
    expected_minutes: int | None = None,
) -> str:
    """The text for one customer event (`kind`: its type), from the request as the event recorded it."""
    hello, salon = _hello(request.get("customer_name")), plain(salon_name)
    call = f"call us at {salon_phone}" if salon_phone else "call us"
    question = request.get("question") or ""
    text: str | None
    if kind == "help_request.acknowledged":
        text = _with_question(
            lambda q: (
                f"{hello}, it's {salon}. We're checking with the team about {q}; "
                f"we'll text you here, usually within {expected_minutes} minutes."
            ),
            question,
        )
    elif kind == "help_request.resolved":
        answer = plain(request.get("answer") or "")
        text = _with_question(lambda q: f"{hello}, it's {salon}. About {q}: {answer}", question)
        if text is None and fits(whole := f"{hello}, it's {salon}: {answer}"):
            text = whole
        if text is None:
            text = _with_question(
                lambda q: (
                    f"{hello}, it's {salon}. We have an answer to {q}, but it's too long for a text: "
                    f"please {call} and we'll go through it."
                ),
                question,
            )
    else:
        text = _with_question(
            lambda q: (
                f"{hello}, it's {salon}. Sorry, we haven't found an answer to {q} yet. "
                f"Please {call} and we'll do our best to help."
            ),
            question,
        )
    # Only a salon name or number too long for any text gets here; sent as is, it is still read.
    return text or f"{hello}, it's {salon}. Please {call}."
