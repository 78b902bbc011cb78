"""A call waiting for a supervisor hears of the answer over the backend's event stream."""

from __future__ import annotations

import asyncio
import logging

import httpx

from app.agent import call_log, follow_up
from app.agent.backend_client import BackendClient
from app.agent.call_state import FollowUpTiming
from app.agent.phrases import LIVE_ANSWER
from tests.support import eventually

QUESTION = "Do you do Plimsy braids?"
ANSWER = "Yes, Plimsy braids are $80."


class _Recorder(httpx.AsyncBaseTransport):
    """Counts the agent's requests; refuses its first `refuse_stream` connections to the event stream."""

    def __init__(self, refuse_stream: int = 0) -> None:
        self.refuse_stream = refuse_stream
        self.seen: list[tuple[str, str]] = []

    def __call__(self, inner: httpx.AsyncBaseTransport) -> _Recorder:
        self.inner = inner
        return self

    def count(self, method: str, path: str) -> int:
        return self.seen.count((method, path))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        if request.url.path == "/api/events" and self.refuse_stream > 0:
            self.refuse_stream -= 1
            return httpx.Response(503, request=request)
        return await self.inner.handle_async_request(request)


# A fallback poll that never comes within a test: an answer the call hears came over the stream.
STREAM_ONLY = FollowUpTiming(poll_seconds=3600)


async def _answer_and_hear_it(call, rid: str) -> None:
    r = await call.salon_client.post(f"/api/help-requests/{rid}/response", json={"answer": ANSWER})
    assert r.status_code == 200
    assert await follow_up.all_said(call.state, 10)
    assert call.said()[-1] == LIVE_ANSWER.format(answer=ANSWER)


async def test_a_waiting_call_reads_its_request_only_when_the_stream_says_it_changed(open_call) -> None:
    recorder = _Recorder()
    async with open_call(wrap=recorder, timing=STREAM_ONLY) as call:
        await call.session.run(user_input=QUESTION)
        [req] = await call.requests()
        await asyncio.sleep(3)
        # Once when the stream connects (a change may have come before), not once a second.
        assert recorder.count("GET", f"/api/help-requests/{req['id']}") <= 2
        await _answer_and_hear_it(call, req["id"])
        assert recorder.count("GET", "/api/events") == 1


async def test_a_failed_stream_is_reconnected(open_call) -> None:
    recorder = _Recorder(refuse_stream=1)
    async with open_call(wrap=recorder, timing=STREAM_ONLY) as call:
        await call.session.run(user_input=QUESTION)
        [req] = await call.requests()
        await eventually(lambda: recorder.count("GET", "/api/events") == 2)
        # No fallback poll runs here: the answer came over the new connection.
        await _answer_and_hear_it(call, req["id"])


async def test_with_no_stream_the_slow_poll_still_brings_the_answer(open_call) -> None:
    recorder = _Recorder(refuse_stream=1000)
    async with open_call(wrap=recorder, timing=FollowUpTiming(poll_seconds=0.3, presence_seconds=0.2)) as call:
        await call.session.run(user_input=QUESTION)
        [req] = await call.requests()
        await _answer_and_hear_it(call, req["id"])


async def test_change_notices_are_read_from_the_stream_as_sent() -> None:
    body = (
        "event: ready\r\ndata: {}\r\nretry: 1000\r\n\r\n"
        ": ping - 2025-01-01 00:00:00\r\n\r\n"
        'event: help_request\r\ndata: {"id":\r\ndata: "r1"}\r\n\r\n'
        'data: {"id": "plain"}\r\n\r\n'
    )
    stream = httpx.MockTransport(lambda request: httpx.Response(200, text=body))
    backend = BackendClient("http://127.0.0.1", None, transport=stream)
    try:
        seen = [notice async for notice in backend.changes()]
    finally:
        await backend.aclose()
    assert seen == [("ready", {}), ("help_request", {"id": "r1"}), ("message", {"id": "plain"})]


async def test_log_lines_of_a_call_name_the_call_and_the_request(open_call, caplog) -> None:
    """One call's story must come out of a worker's interleaved logs: the watcher's lines carry
    both ids (here a presence renewal the backend refuses)."""

    class _RefusePresence(_Recorder):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/presence"):
                return httpx.Response(503, request=request)
            return await super().handle_async_request(request)

    call_log.start_call("room-7")
    caplog.set_level(logging.WARNING, logger="app.agent")
    async with open_call(wrap=_RefusePresence(), timing=FollowUpTiming(presence_seconds=0.1)) as call:
        await call.session.run(user_input=QUESTION)
        [req] = await call.requests()
        await eventually(lambda: any("presence" in r.getMessage() for r in caplog.records))
    renewals = [r for r in caplog.records if "presence" in r.getMessage()]
    assert {(r.call_id, r.request_id) for r in renewals} == {("room-7", req["id"])}  # type: ignore[attr-defined]


async def test_log_lines_of_the_hang_up_name_the_request(open_call, caplog) -> None:
    """Closing the call works through each of its requests; a failure there names which one."""

    class _RefuseTranscripts(_Recorder):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "PATCH":
                return httpx.Response(503, request=request)
            return await super().handle_async_request(request)

    call_log.start_call("room-8")
    caplog.set_level(logging.WARNING, logger="app.agent")
    async with open_call(wrap=_RefuseTranscripts()) as call:
        await call.session.run(user_input=QUESTION)
        [req] = await call.requests()
    failures = [r for r in caplog.records if "could not close the call" in r.getMessage()]
    assert [(r.call_id, r.request_id) for r in failures] == [("room-8", req["id"])]  # type: ignore[attr-defined]
    logging.getLogger("app.agent").warning("after the call")
    assert caplog.records[-1].request_id is None  # type: ignore[attr-defined]
