"""Which replies carry facts nothing supplied, and which utterances ask something."""
from __future__ import annotations

import pytest

from app.agent.fact_guard import asks_something, unsourced_facts

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


@pytest.mark.parametrize(
    "utterance",
    [
        "Do you do balayage?",
        "how much is a beard trim",
        "Hi, what time do you close on Friday",
        "I'd like to know about parking",
        "So are you open on Sunday",
        "Parking?",
    ],
)
def test_questions_about_the_salon(utterance: str) -> None:
    assert asks_something(utterance)


@pytest.mark.parametrize(
    "utterance", ["Thanks!", "My name is Maya", "Are you a robot?", "hello, how are you?", "Can you hear me?", ""]
)
def test_small_talk_and_statements(utterance: str) -> None:
    assert not asks_something(utterance)
