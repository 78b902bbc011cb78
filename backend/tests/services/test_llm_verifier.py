"""The optional LLM verifier: confirms, vetoes or promotes within the local checks; never required."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from app.config import DEFAULT_LEXICON
from app.db import Database
from app.services.kb.decision import Candidate
from app.services.kb.embeddings import load_embedder
from app.services.kb.judge import load_judge
from app.services.kb.lexicon import load_lexicon
from app.services.kb.service import KnowledgeBase
from app.services.kb.verifier import LLMVerifier, OpenAICompatibleJudge

pytestmark = pytest.mark.model


class FakeJudge:
    """Answers with a fixed choice (by question text) and records what it was shown."""

    def __init__(self, pick: str | None = None, fail: bool = False) -> None:
        self.pick, self.fail, self.shown = pick, fail, []  # type: ignore[var-annotated]

    async def choose(self, query: str, options: Sequence[Candidate]) -> int | None:
        self.shown.append([o.question for o in options])
        if self.fail:
            raise TimeoutError("no answer in time")
        return next((n for n, o in enumerate(options) if o.question == self.pick), None)


async def make_kb(url: str, judge: FakeJudge) -> KnowledgeBase:
    embedder = load_embedder()
    db = Database(url)
    await db.migrate()
    kb = KnowledgeBase(
        db,
        lexicon=load_lexicon(str(DEFAULT_LEXICON)),
        embedder=embedder,
        judge=load_judge(),
        verifier=LLMVerifier(judge),
    )
    for question, answer in [
        ("Do you do perms?", "Yes, perms start at $110."),
        ("Are you open on Sundays?", "Yes, 10 AM to 4 PM."),
        ("Where is the salon located?", "214 Maple Street."),
    ]:
        await kb.create(question=question, answer=answer, topic=None, actor="test")
    return kb


@pytest.fixture
async def urls(tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    yield f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"


async def test_verifier_confirms_a_local_match(urls: str) -> None:
    judge = FakeJudge(pick="Do you do perms?")
    kb = await make_kb(urls, judge)
    result = await kb.search("do you guys still do perms")
    assert result.match is not None and "confirmed" in result.reason
    await kb.db.dispose()


async def test_verifier_veto_escalates(urls: str) -> None:
    kb = await make_kb(urls, FakeJudge(pick=None))
    result = await kb.search("do you guys still do perms")
    assert result.match is None and "did not confirm" in result.reason
    await kb.db.dispose()


async def test_verifier_may_veto_even_the_same_question_asked_word_for_word(urls: str) -> None:
    # An entry learned with a stale answer is still the same question: the verifier reads it too.
    judge = FakeJudge(pick=None)
    kb = await make_kb(urls, judge)
    result = await kb.search("Do you do perms?")
    assert result.match is None and "did not confirm" in result.reason
    assert judge.shown and "Do you do perms?" in judge.shown[0]
    await kb.db.dispose()


async def test_verifier_may_pick_a_candidate_that_fell_short_only_of_the_judges_bar(urls: str) -> None:
    judge = FakeJudge(pick="Where is the salon located?")
    kb = await make_kb(urls, judge)
    result = await kb.search("what street are you on")
    assert result.match is not None and result.match.question == "Where is the salon located?"
    await kb.db.dispose()


async def test_verifier_is_never_shown_what_the_local_checks_ruled_out(urls: str) -> None:
    judge = FakeJudge(pick="Are you open on Sundays?")
    kb = await make_kb(urls, judge)
    result = await kb.search("are you open on Mondays")
    assert result.match is None
    assert all("Are you open on Sundays?" not in shown for shown in judge.shown)
    await kb.db.dispose()


async def test_a_failing_verifier_leaves_the_local_decision(urls: str) -> None:
    kb = await make_kb(urls, FakeJudge(fail=True))
    assert (await kb.search("do you guys still do perms")).match is not None
    assert (await kb.search("are you open on Mondays")).match is None
    await kb.db.dispose()


async def test_openai_compatible_judge_request_and_reply() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"], seen["auth"] = str(request.url), request.headers.get("Authorization")
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json={"choices": [{"message": {"content": 'Sure: {"entry": 2}'}}]})

    judge = OpenAICompatibleJudge(
        base_url="http://llm.local/v1/",
        api_key="k",
        model="m",
        timeout=1,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    options = [Candidate("a", "Q1?", "A1", 0.5, {}, {}), Candidate("b", "Q2?", "A2", 0.5, {}, {})]
    assert await judge.choose("caller question", options) == 1
    assert seen["url"] == "http://llm.local/v1/chat/completions" and seen["auth"] == "Bearer k"
    assert "caller question" in seen["body"]["messages"][1]["content"] and seen["body"]["model"] == "m"
    await judge.aclose()
