"""The words of texts to callers, their numbers, and how long the acknowledgement promises."""

from __future__ import annotations

import pytest

from app.phones import e164
from app.services.sms.acknowledgement import expected_minutes
from app.services.sms.inbound import keyword
from app.services.sms.texts import compose, segments

SALON = "Maple & Shear Salon"


def request(**fields: object) -> dict:
    return {"customer_name": "Ana", "question": "Do you do balayage?", "answer": None} | fields


def text(kind: str, phone: str | None = "+14155550100", **fields: object) -> str:
    return compose(f"help_request.{kind}", request(**fields), salon_name=SALON, salon_phone=phone, expected_minutes=15)


@pytest.mark.parametrize(
    ("contact", "region", "number"),
    [
        ("+14155550101", "US", "+14155550101"),
        ("(415) 555-0101", "US", "+14155550101"),
        ("sms:+1 415 555 0101", "US", "+14155550101"),
        ("020 7183 8750", "GB", "+442071838750"),
        ("020 7183 8750", "US", None),
        ("ana@example.com", "US", None),
        ("12345", "US", None),
        ("", "US", None),
        (None, "US", None),
    ],
)
def test_contacts_become_e164_numbers_or_nothing(contact: str | None, region: str, number: str | None) -> None:
    assert e164(contact, region) == number


def test_segments_count_gsm_and_unicode_texts() -> None:
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("a" * 306) == 2
    assert segments("a" * 307) == 3
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2  # two septets each
    assert segments("é" * 160) == 1, "é is in the GSM alphabet"
    assert segments("á" * 70) == 1 and segments("á" * 71) == 2 and segments("á" * 135) == 3


def test_a_short_answer_is_sent_whole_with_the_question() -> None:
    assert text("resolved", answer="Yes, from $220.") == (
        'Hi Ana, it\'s Maple & Shear Salon. About "Do you do balayage?": Yes, from $220.'
    )


def test_a_long_question_is_cut_and_the_answer_kept_whole() -> None:
    question = "I was wondering, " + "and also whether on a weekday afternoon, " * 8 + "do you do balayage?"
    answer = "Yes: balayage is $220 for shoulder-length hair, and takes about three hours; book a consult first."
    sent = text("resolved", question=question, answer=answer)
    assert sent.endswith(answer) and '..."' in sent
    assert segments(sent) == 2
    assert '"I was wondering, and also' in sent


def test_an_answer_too_long_for_two_segments_says_so_and_how_to_call() -> None:
    answer = "Here is everything about our colour services. " * 10
    sent = text("resolved", answer=answer)
    assert "Here is everything" not in sent, "never part of an answer"
    assert "too long for a text" in sent and "call us at +14155550100" in sent
    assert '"Do you do balayage?"' in sent and segments(sent) <= 2


def test_typographic_punctuation_does_not_halve_what_fits() -> None:
    answer = "We’re open “late” on Thursdays – until 9 pm… " * 3
    sent = text("resolved", answer=answer)
    assert segments(sent) == 2 and 'We\'re open "late" on Thursdays - until 9 pm...' in sent


def test_a_caller_with_no_name_is_greeted_without_one() -> None:
    for kind in ("acknowledged", "resolved", "unresolved"):
        sent = text(kind, customer_name="Phone caller", answer="Yes.")
        assert sent.startswith("Hi, it's Maple & Shear Salon.") and "Phone caller" not in sent


def test_acknowledgement_and_unresolved_texts() -> None:
    assert text("acknowledged") == (
        "Hi Ana, it's Maple & Shear Salon. We're checking with the team about \"Do you do balayage?\"; "
        "we'll text you here, usually within 15 minutes."
    )
    assert text("unresolved", phone=None) == (
        "Hi Ana, it's Maple & Shear Salon. Sorry, we haven't found an answer to \"Do you do balayage?\" yet. "
        "Please call us and we'll do our best to help."
    )
    long_question = "Could you tell me " + "very " * 200 + "much?"
    for kind in ("acknowledged", "unresolved"):
        assert segments(text(kind, question=long_question)) <= 2


@pytest.mark.parametrize(
    ("waits", "limit", "minutes"),
    [
        ([], 30, 15),  # no history: a sane default
        ([3, 4], 30, 15),  # too little to go by
        ([3, 4, 6], 30, 5),  # median 4, rounded up to 5
        ([12, 21, 22, 40], 30, 25),  # median 21.5
        ([90, 120, 200], 240, 60),  # capped at an hour
        ([90, 120, 200], 30, 30),  # never past the request's timeout
        ([], 2.5, 2),
    ],
)
def test_the_promised_wait_is_the_recent_median(waits: list[float], limit: float, minutes: int) -> None:
    assert expected_minutes(waits, limit=limit) == minutes


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ("STOP", "STOP"),
        (" stop. ", "STOP"),
        ("Unsubscribe", "UNSUBSCRIBE"),
        ("STOPALL", "STOPALL"),
        ("cancel", "CANCEL"),
        ("End", "END"),
        ("quit!", "QUIT"),
        ("start", "START"),
        ("YES", "YES"),
        ("unstop", "UNSTOP"),
        ("stop by at noon?", None),
        ("can I cancel my appointment", None),
        ("", None),
    ],
)
def test_opt_out_and_in_words_are_the_whole_text(body: str, word: str | None) -> None:
    assert keyword(body) == word
