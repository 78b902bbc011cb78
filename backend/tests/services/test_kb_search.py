"""Answer-or-escalate on a salon KB: paraphrases answered, near-misses escalated, odd input safe."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.config import DEFAULT_LEXICON
from app.db import Database
from app.services.kb.embeddings import load_embedder
from app.services.kb.judge import load_judge
from app.services.kb.lexicon import load_lexicon
from app.services.kb.service import KnowledgeBase

ENTRIES = [
    ("How much is a women's haircut?", "A women's cut is $65 and takes about 45 minutes."),
    ("How much is a men's haircut?", "A men's cut is $40 and takes about 30 minutes."),
    ("Are you open on Sundays?", "Yes, we're open on Sundays from 10 AM to 4 PM."),
    ("How much do highlights cost?", "Partial highlights are $130 and full highlights are $185."),
    ("Do you do eyebrow waxing?", "Yes, an eyebrow wax is $18."),
    ("Do you sell gift cards?", "Yes, gift cards come in any amount and never expire."),
    ("Do you offer Olaplex treatments?", "Yes, an Olaplex treatment is $45."),
]

pytestmark = pytest.mark.model

# Known: the judge reads "buy products with a gift card" as answered by "we sell gift cards".
JUDGE_ALONE_MISSES = {"can I use a gift card to buy products"}


@pytest.fixture(params=["lexicon", "no lexicon"])
async def kb(sqlite_url: str, request: pytest.FixtureRequest) -> AsyncIterator[KnowledgeBase]:
    """The salon's KB, with its lexicon and without: the decision must hold either way."""
    embedder = load_embedder()
    db = Database(sqlite_url)
    await db.migrate()
    lexicon = load_lexicon(str(DEFAULT_LEXICON) if request.param == "lexicon" else "")
    knowledge = KnowledgeBase(db, lexicon=lexicon, embedder=embedder, judge=load_judge())
    for question, answer in ENTRIES:
        await knowledge.create(question=question, answer=answer, topic=None, actor="test")
    yield knowledge
    await db.dispose()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("what do you charge for a ladies' cut", "How much is a women's haircut?"),
        ("um hi, how much for a haircut for a guy", "How much is a men's haircut?"),
        ("are you guys open sunday", "Are you open on Sundays?"),
        ("what's the price of full highlights", "How much do highlights cost?"),
        ("can I get my brows waxed", "Do you do eyebrow waxing?"),
        ("how much is an olaplex treatment", "Do you offer Olaplex treatments?"),
    ],
)
async def test_paraphrases_are_answered_from_the_right_entry(kb: KnowledgeBase, query: str, expected: str) -> None:
    result = await kb.search(query)
    assert result.match is not None, result.reason
    assert result.match.question == expected


@pytest.mark.parametrize("name", ["Zx6d85c", "Zx1f0a3", "Qv93kd2", "Brimlexa"])
async def test_a_rewording_about_a_name_the_vocabulary_does_not_know_is_answered(kb: KnowledgeBase, name: str) -> None:
    # A code or a made-up product name is noise to the judge; matched in both texts, it must not
    # decide whether a plain rewording is answered.
    await kb.create(
        question=f"Do you offer {name} scalp treatments?",
        answer=f"Yes, {name} scalp treatments are $55 and take 40 minutes.",
        topic=None,
        actor="test",
    )
    result = await kb.search(f"how much is a {name} scalp treatment")
    assert result.match is not None and name in result.match.question, result.reason


@pytest.mark.parametrize("query", ["How much is a men's haircut?", "um hi, how much for a haircut for a guy"])
async def test_only_the_match_is_shown_as_what_the_agent_would_say(kb: KnowledgeBase, query: str) -> None:
    """The console shows each near entry with why it was not said; the match alone has no reason."""
    result = await kb.search(query)
    assert result.match is not None and len(result.candidates) > 1
    unrejected = [c.entry.question for c in result.candidates if c.rejected is None]
    assert unrejected == [result.match.question], [(c.entry.question, c.rejected) for c in result.candidates]


@pytest.mark.parametrize(
    "query",
    [
        "are you open on Mondays",  # Monday is not Sunday
        "how long do highlights take",  # duration, not cost
        "how much is a kids' haircut",  # kids are neither women nor men
        "how much is a haircut",  # which one? the entries are about women's and men's
        "do you do eyelash tinting",  # eyelashes are not eyebrows
        "how much are lowlights",  # lowlights are not highlights
        "can I use a gift card to buy products",  # the entry says nothing about what they buy
        "what's the wifi password",
        "how much is a hair treatment",  # the only treatment entry is a named one the caller did not name
    ],
)
async def test_near_misses_escalate(kb: KnowledgeBase, query: str) -> None:
    if not kb.lexicon.phrases and query in JUDGE_ALONE_MISSES:
        pytest.xfail("the judge alone answers this near miss; the salon's lexicon vetoes it")
    result = await kb.search(query)
    assert result.match is None, f"{query!r} answered with {result.match.question!r}" if result.match else ""
    assert result.reason


async def test_candidates_explain_why_they_were_not_the_match(kb: KnowledgeBase) -> None:
    result = await kb.search("are you open on Mondays")
    assert result.match is None and result.reason
    sunday = next(c for c in result.candidates if c.entry.question == "Are you open on Sundays?")
    assert sunday.rejected
    # The lexicon names the clash, and the judge is not asked about an entry already ruled out;
    # without one, the judge's reading is the reason.
    if kb.lexicon.phrases:
        assert sunday.rejected.startswith("day 'monday' is not what this entry is about"), sunday.rejected
        assert sunday.judged is None
    else:
        assert sunday.rejected.startswith("does not answer this question"), sunday.rejected
        assert sunday.judged is not None


@pytest.mark.parametrize(
    "query",
    ["¿Abren los domingos?", "日曜日は営業していますか", "x" * 2000, "Do you do highlights? " * 90, "?!?", "🙂"],
)
async def test_odd_input_never_crashes_and_escalates_unless_sure(kb: KnowledgeBase, query: str) -> None:
    result = await kb.search(query)
    if query.startswith("Do you do highlights?"):  # the same question over and over, cut to fit: still it
        assert result.match is not None and result.match.question == "How much do highlights cost?"
    else:
        assert result.match is None, result.match


async def test_retired_entry_stops_matching_and_edit_takes_effect(kb: KnowledgeBase) -> None:
    sunday = (await kb.search("are you open on Sundays")).match
    assert sunday is not None
    await kb.edit(sunday.id, question=None, answer="No, we're closed on Sundays.", topic=None, actor="test")
    edited = (await kb.search("are you open on Sundays")).match
    assert edited is not None and edited.answer == "No, we're closed on Sundays."

    await kb.retire(sunday.id, actor="test")
    result = await kb.search("are you open on Sundays")
    assert result.match is None
    assert all(c.entry.id != sunday.id for c in result.candidates)


async def test_an_exact_question_matches_even_without_the_model(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'lexical.db'}")
    await db.migrate()
    plain = KnowledgeBase(db, lexicon=load_lexicon(str(DEFAULT_LEXICON)), embedder=None)
    await plain.create(question="Do you do perms?", answer="Yes, from $110.", topic=None, actor="test")
    assert (await plain.search("do you do PERMS")).match is not None
    assert (await plain.search("do you do perms or relaxers")).match is None
    assert plain.mode == "exact-only"
    await db.dispose()


def test_a_pairs_score_does_not_depend_on_what_is_judged_beside_it() -> None:
    # Concurrent searches share the judge's runs: another caller's question must not move this
    # caller's score (an int8 batch shares its quantization ranges).
    judge = load_judge()
    assert judge is not None
    mine = ("how much are lowlights", "How much do highlights cost? | Partial highlights are $130.")
    other = (
        "my daughter wants balayage and a gloss on a Saturday morning, how long would all that take",
        "Do you do balayage? | Yes, balayage starts at $180 and takes about three hours with toner and a blowout.",
    )
    alone = judge.score([mine])[0]
    assert judge.score([mine, other])[0] == alone
    assert judge.score([other, mine])[1] == alone
