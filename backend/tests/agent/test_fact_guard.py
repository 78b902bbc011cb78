"""Which replies carry facts nothing supplied, and which utterances ask something."""

from __future__ import annotations

import pytest

from app.agent.fact_guard import fact_tokens, unsourced_facts
from app.numbers import CARDINALS
from app.questions import needs_the_kb

SOURCE = "A women's cut is $65 and takes about 45 minutes. We're open 10 to 4 on Sundays."


@pytest.mark.parametrize(
    "reply",
    [
        "It's sixty-five dollars.",  # a number word that the source has as digits
        "That's $65.00, about forty-five minutes.",
        "On Sundays we open at 10:00 and close at 4.",
        "May I help with anything else?",  # "May" is not a month here
        "One moment please.",
    ],
)
def test_rephrasings_add_no_facts(reply: str) -> None:
    assert unsourced_facts(reply, SOURCE) == set()


@pytest.mark.parametrize(
    ("reply", "added"),
    [
        ("A women's cut is $40.", {"40"}),
        ("We're open on Mondays too.", {"monday"}),
        ("It takes thirty minutes.", {"30"}),
        ("We close at 8 on Saturdays.", {"8", "saturday"}),
        ("Bookings open in August.", {"august"}),
        ("Half price for kids!", {"half"}),
    ],
)
def test_new_numbers_days_and_months_are_caught(reply: str, added: set[str]) -> None:
    assert unsourced_facts(reply, SOURCE) == added


@pytest.mark.parametrize(("word", "value"), CARDINALS.items())
def test_number_words_are_read_from_the_apps_one_table(word: str, value: int) -> None:
    # Not "one" ("one moment") nor "zero" (a model's way of saying the KB's "free").
    assert fact_tokens(f"It takes {word} minutes.") == (set() if value < 2 else {str(value)})


@pytest.mark.parametrize(
    "utterance",
    [
        "Do you do balayage?",
        "how much is a beard trim",
        "Hi, what time do you close on Friday",
        "I'd like to know about parking",
        "So are you open on Sunday",
        "Parking?",
        "Hi, is this the salon? Do you take walk-ins",  # small talk first, then the question
        "I heard you're open Sundays",
        "Need the price for highlights",
        "Your haircut is twenty dollars, right",
        "I'm looking for a keratin treatment",
        # Other businesses, in words no salon list holds: the same rule must catch them.
        "my brakes grind when I stop",
        "the pup's got fleas again",
        "a filling came out yesterday",
        "Renewing my membership",
    ],
)
def test_questions_and_claims_about_the_business_need_the_kb(utterance: str) -> None:
    assert needs_the_kb(utterance)


@pytest.mark.parametrize(
    "utterance",
    [
        "Thanks!",
        "Thanks so much!",
        "Got it, thanks",
        "Sounds good, see you then",
        "My name is Maya",
        "Are you a robot?",
        "hello, how are you?",
        "Can you hear me?",
        "",
        "Sure, it's 415 555 0123.",
        "+1 (415) 555-0123",
        "Okay, thank you, bye!",
        "No, that's all",
    ],
)
def test_courtesy_names_and_numbers_do_not(utterance: str) -> None:
    assert not needs_the_kb(utterance)
