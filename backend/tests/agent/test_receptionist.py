"""The receptionist in a text-only AgentSession with scripted models, against a running backend."""

from __future__ import annotations

import httpx
import pytest

from app.agent import follow_up
from app.agent.call_state import Caller
from app.agent.local_responder import reply_text, tool_call
from app.agent.phrases import ALREADY_ASKED, ASK_CONTACT, CANNOT_REACH, CHECKING, CONTACT_UNCLEAR, LIVE_ANSWER
from app.callers import UNKNOWN_CALLER
from tests.agent.conftest import CUT_A, CUT_Q, SUNDAY_A, SUNDAY_Q, script
from tests.support import eventually


def _message(assertion) -> str:
    return assertion.is_message(role="assistant").event().item.text_content


async def test_kb_answer_is_looked_up_and_said(open_call) -> None:
    async with open_call() as call:
        result = await call.session.run(user_input=SUNDAY_Q)
        result.expect.next_event().is_function_call(name="lookup_knowledge_base", arguments={"question": SUNDAY_Q})
        result.expect.next_event().is_function_call_output()
        assert _message(result.expect.next_event()) == SUNDAY_A
        result.expect.no_more_events()
        assert await call.requests() == []
        entries = (await call.salon_client.get("/api/knowledge-base")).json()
        assert next(e for e in entries if e["question"] == SUNDAY_Q)["times_used"] == 1


async def test_unknown_question_escalates_with_the_callers_details(open_call) -> None:
    question = "Do you sell Qwirlo hair serum?"
    async with open_call() as call:
        result = await call.session.run(user_input=question)
        result.expect.next_event().is_function_call(name="lookup_knowledge_base", arguments={"question": question})
        result.expect.next_event().is_function_call_output()
        result.expect.next_event().is_function_call(name="request_supervisor_help", arguments={"question": question})
        result.expect.next_event().is_function_call_output()
        said = _message(result.expect.next_event())
        assert said.startswith(CHECKING) and "+14155550123" in said
        result.expect.no_more_events()

        [req] = await call.requests()
        assert (req["question"], req["customer_name"], req["customer_contact"]) == (question, "Maya", "+14155550123")
        assert {"role": "caller", "text": question} in req["transcript"]
        assert req["status"] == "pending"


async def test_model_that_answers_a_question_without_the_kb_is_overruled(open_call) -> None:
    # The model improvises a price; the KB says otherwise. The caller hears the KB.
    model = script(reply_text("A women's cut is $40."))
    async with open_call(model) as call:
        result = await call.session.run(user_input=CUT_Q)
        assert _message(result.expect.next_event()) == CUT_A


async def test_model_that_improvises_an_unknown_fact_escalates_instead(open_call) -> None:
    model = script(reply_text("Yes, we're open until 9 pm on Mondays!"))
    async with open_call(model) as call:
        result = await call.session.run(user_input="Are you open late on Mondays?")
        assert _message(result.expect.next_event()).startswith(CHECKING)
        [req] = await call.requests()
        assert req["question"] == "Are you open late on Mondays?"


@pytest.mark.parametrize(
    ("worded", "said"),
    [
        # Rephrasing is fine; a fact the KB did not give is not, and the KB's own words are said instead.
        ("On Sundays we're open from 10 until 4.", "On Sundays we're open from 10 until 4."),
        ("We're open 10 to 4 on Sundays, and from 7 on Mondays.", SUNDAY_A),
    ],
)
async def test_model_may_rephrase_a_kb_answer_but_not_add_to_it(open_call, worded: str, said: str) -> None:
    model = script(tool_call("lookup_knowledge_base", question=SUNDAY_Q), reply_text(worded))
    async with open_call(model) as call:
        result = await call.session.run(user_input=SUNDAY_Q)
        result.expect.next_event().is_function_call(name="lookup_knowledge_base")
        result.expect.next_event().is_function_call_output()
        assert _message(result.expect.next_event()) == said


async def test_model_rewording_a_question_into_a_known_one_is_overruled(open_call) -> None:
    # The model "helpfully" looks up the women's price for a man: the caller's own words decide.
    model = script(tool_call("lookup_knowledge_base", question=CUT_Q), reply_text(CUT_A))
    async with open_call(model) as call:
        result = await call.session.run(user_input="How much is a men's cut?")
        result.expect.next_event().is_function_call(name="lookup_knowledge_base")
        result.expect.next_event().is_function_call_output()
        assert _message(result.expect.next_event()).startswith(CHECKING)
        [req] = await call.requests()
        assert req["question"] == "How much is a men's cut?"


async def test_small_talk_needs_no_lookup(open_call) -> None:
    model = script(reply_text("I'm the salon's virtual receptionist. How can I help?"))
    async with open_call(model) as call:
        result = await call.session.run(user_input="Are you a robot?")
        assert "virtual receptionist" in _message(result.expect.next_event())
        assert await call.requests() == []


async def test_a_model_stuck_calling_tools_is_stopped(open_call) -> None:
    model = script(tool_call("lookup_knowledge_base", question=SUNDAY_Q))
    async with open_call(model) as call:
        result = await call.session.run(user_input=SUNDAY_Q)
        # Three tool steps, then the session asks for words with tools off; the caller hears the KB.
        calls = [e for e in result.events if e.type == "function_call"]
        assert len(calls) <= 4
        assert call.said()[-1] == SUNDAY_A


async def test_caller_with_no_number_is_asked_for_one(open_call) -> None:
    question = "Can I bring my Zorbel ferret to my appointment?"
    async with open_call(caller=Caller(name=None, contact=None)) as call:
        result = await call.session.run(user_input=question)
        assert ASK_CONTACT in call.said()[-1]
        [req] = await call.requests()
        assert req["customer_contact"] is None and req["customer_name"] == UNKNOWN_CALLER

        result = await call.session.run(user_input="Sure, it's 415 555 0123.")
        result.expect.next_event().is_function_call(name="save_caller_contact")
        result.expect.next_event().is_function_call_output()
        assert "4155550123" in _message(result.expect.next_event())
        [req] = await call.requests()
        assert req["customer_contact"] == "4155550123"


async def test_answer_arriving_during_the_call_is_said_live(open_call) -> None:
    question = "Do you do Plimsy braids?"
    answer = "Yes, Plimsy braids are $80."
    async with open_call() as call:
        await call.session.run(user_input=question)
        [req] = await call.requests()
        r = await call.salon_client.post(f"/api/help-requests/{req['id']}/response", json={"answer": answer})
        assert r.status_code == 200
        assert await follow_up.all_said(call.state, 10)
        assert call.said()[-1] == LIVE_ANSWER.format(answer=answer)
        notes = (await call.salon_client.get("/api/notifications")).json()
        assert {d["status"] for d in notes if d["request_id"] == req["id"] and d["recipient"] == "customer"} == {
            "said_in_call"
        }


async def test_caller_who_hangs_up_first_gets_the_text(open_call) -> None:
    async with open_call() as call:
        await call.session.run(user_input="Do you do Plimsy braids?")
        [req] = await call.requests()
        await follow_up.end_call(call.session)
        r = await call.salon_client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes, $80."})
        assert r.status_code == 200

        async def texted() -> bool:
            notes = (await call.salon_client.get("/api/notifications")).json()
            return {d["status"] for d in notes if d["request_id"] == req["id"] and d["recipient"] == "customer"} == {
                "delivered"
            }

        await eventually(texted)
        transcript = (await call.salon_client.get(f"/api/help-requests/{req['id']}")).json()["transcript"]
        assert any(line["role"] == "agent" and line["text"].startswith(CHECKING) for line in transcript)


class _LoseFirstTakeReply(httpx.AsyncBaseTransport):
    """The backend takes the follow-up, but its reply never reaches the agent (a timeout)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/follow-up") and not self.lost:
            self.lost = True
            await response.aread()
            raise httpx.ReadTimeout("reply lost", request=request)
        return response


async def test_a_lost_reply_to_the_take_still_ends_with_the_answer_said(open_call) -> None:
    async with open_call(wrap=_LoseFirstTakeReply) as call:
        await call.session.run(user_input="Do you do Plimsy braids?")
        [req] = await call.requests()
        await call.salon_client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes, $80."})
        assert await follow_up.all_said(call.state, 10)
        assert call.said()[-1] == LIVE_ANSWER.format(answer="Yes, $80.")
        notes = (await call.salon_client.get("/api/notifications")).json()
        assert {d["status"] for d in notes if d["request_id"] == req["id"] and d["recipient"] == "customer"} == {
            "said_in_call"
        }


class _NoNewRequests(httpx.AsyncBaseTransport):
    """The backend fails every attempt to open a help request."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/help-requests":
            return httpx.Response(500, request=request)
        return await self.inner.handle_async_request(request)


async def test_tool_failures_are_tool_errors_with_the_same_words(open_call) -> None:
    question = "Can I bring my Zorbel ferret to my appointment?"
    async with open_call(caller=Caller(name=None, contact=None)) as call:
        result = await call.session.run(user_input=question)
        result.expect.next_event().is_function_call(name="lookup_knowledge_base")
        result.expect.next_event().is_function_call_output(is_error=False)  # no answer is no failure
        result.expect.next_event().is_function_call(name="request_supervisor_help")
        result.expect.next_event().is_function_call_output(is_error=False)
        assert ASK_CONTACT in _message(result.expect.next_event())

        result = await call.session.run(user_input="It's 1 2 3 4.")
        result.expect.next_event().is_function_call(name="save_caller_contact")
        result.expect.next_event().is_function_call_output(is_error=True)
        assert _message(result.expect.next_event()) == CONTACT_UNCLEAR

    async with open_call(wrap=_NoNewRequests) as call:
        result = await call.session.run(user_input=question)
        result.expect.skip_next_event_if(type="function_call")
        result.expect.skip_next_event_if(type="function_call_output")
        result.expect.next_event().is_function_call(name="request_supervisor_help")
        result.expect.next_event().is_function_call_output(is_error=True)
        assert _message(result.expect.next_event()) == CANNOT_REACH


async def test_the_call_state_is_the_sessions_userdata_and_outlives_the_session(open_call) -> None:
    async with open_call() as call:
        assert call.session.userdata is call.state
        await call.session.run(user_input="Do you do Plimsy braids?")
        [req] = await call.requests()
        assert [e.request_id for e in call.state.escalations.values()] == [req["id"]]
        # A worker's shutdown callback runs once the session has closed: the hang-up work must still happen.
        await call.session.aclose()
        await follow_up.end_call(call.session)
        after = (await call.salon_client.get(f"/api/help-requests/{req['id']}")).json()
        assert after["caller_on_line_until"] is None
        assert any(line["role"] == "agent" and line["text"].startswith(CHECKING) for line in after["transcript"])


async def test_a_question_counts_as_asked_already_by_the_backends_own_key(open_call) -> None:
    # Only letters outside a-z: they are the whole question, not noise to drop.
    async with open_call() as call:
        for question in ("Κάνετε μανικιούρ;", "Κάνετε πεντικιούρ;"):
            await call.session.run(user_input=question)
            assert call.said()[-1].startswith(CHECKING)
        await call.session.run(user_input="κάνετε  Μανικιούρ?")
        assert call.said()[-1] == ALREADY_ASKED
        assert len(await call.requests()) == 2
