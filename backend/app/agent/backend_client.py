"""The agent's view of the backend: the HTTP endpoints it may call with the agent token."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

# The backend pings its event stream every 15 s: three pings missed and the connection is dead.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=45.0)


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in (429, 502, 503, 504)
    return isinstance(exc, httpx.TransportError)


@dataclass(frozen=True)
class KbAnswer:
    entry_id: str
    question: str
    answer: str


class FollowUpGone(Exception):
    """The follow-up has already gone out as a text (or there is none yet): the agent must not say it."""


class BackendClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        # Each request this agent opened, with its call key: the agent token alone may not touch it.
        self._call_keys: dict[str, str] = {}

    def _for_call(self, rid: str) -> dict[str, str]:
        key = self._call_keys.get(rid)
        return {"X-Call-Key": key} if key else {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, attempts: int = 3, **kwargs: Any) -> httpx.Response:
        """A caller is waiting: a few quick retries on a blip, then the error surfaces."""
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception(_worth_retrying),
            reraise=True,
        ):
            with attempt:
                response = await self._http.request(method, path, **kwargs)
                if response.status_code >= 400 and response.status_code != 409:
                    response.raise_for_status()
                return response
        raise AssertionError("unreachable: AsyncRetrying re-raises the last error")

    async def ping(self) -> None:
        (await self._http.get("/health")).raise_for_status()

    async def refusal(self) -> str | None:
        """Why the backend will not take this agent's calls (None when it will), in one line."""
        response = await self._http.get("/api/knowledge-base", params={"limit": 1})
        if response.status_code == 401:
            if "Authorization" not in self._http.headers:
                return "it has auth on and no token was given: set AGENT_TOKEN (or SUPERVISOR_TOKEN) to the server's"
            return "AGENT_TOKEN is not the server's agent token (nor SUPERVISOR_TOKEN its supervisor token)"
        if response.status_code == 403:
            return f"the token may not read the knowledge base ({response.text[:200]})"
        return None

    async def search(self, question: str) -> KbAnswer | None:
        """The KB's answer when it is safe to say to this caller; None means escalate."""
        body = (await self._call("GET", "/api/knowledge-base/search", params={"q": question})).json()
        match = body.get("match")
        if not match:
            return None
        return KbAnswer(entry_id=match["id"], question=match["question"], answer=match["answer"])

    async def record_use(self, entry_id: str) -> None:
        await self._call("POST", f"/api/knowledge-base/{entry_id}/uses", attempts=1)

    async def open_request(
        self,
        *,
        customer_name: str,
        question: str,
        customer_contact: str | None,
        transcript: list[dict[str, str]],
        channel: str = "phone",
    ) -> dict[str, Any]:
        # More patience here than for a lookup: this is the caller's question, it must not be lost.
        response = await self._call(
            "POST",
            "/api/help-requests",
            attempts=5,
            json={
                "customer_name": customer_name,
                "question": question,
                "customer_contact": customer_contact,
                "channel": channel,
                "transcript": transcript,
                "caller_on_line": True,
            },
        )
        created = response.json()
        self._call_keys[created["id"]] = created["call_key"]
        return created

    async def update_request(self, rid: str, **fields: Any) -> None:
        await self._call("PATCH", f"/api/help-requests/{rid}", json=fields, headers=self._for_call(rid))

    async def get_request(self, rid: str) -> dict[str, Any]:
        return (await self._call("GET", f"/api/help-requests/{rid}", attempts=1, headers=self._for_call(rid))).json()

    async def set_presence(self, rid: str, *, on_line: bool) -> None:
        await self._call(
            "POST", f"/api/help-requests/{rid}/presence", json={"on_line": on_line}, headers=self._for_call(rid)
        )

    async def take_follow_up(self, rid: str) -> dict[str, Any]:
        response = await self._call("POST", f"/api/help-requests/{rid}/follow-up", headers=self._for_call(rid))
        if response.status_code == 409:
            raise FollowUpGone(response.json().get("detail", "the follow-up is not the agent's to say"))
        return response.json()

    async def give_back_follow_up(self, rid: str) -> None:
        await self._call("DELETE", f"/api/help-requests/{rid}/follow-up", headers=self._for_call(rid))

    async def changes(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The backend's change notices (`GET /api/events`) as (event, data) pairs, until the stream ends."""
        async with self._http.stream("GET", "/api/events", timeout=STREAM_TIMEOUT) as response:
            response.raise_for_status()
            kind, data = "message", []
            async for line in response.aiter_lines():
                if line:
                    # Comments (the pings) have no field name; "retry" is ours to choose.
                    name, _, value = line.partition(":")
                    if name == "event":
                        kind = value.strip()
                    elif name == "data":
                        data.append(value.removeprefix(" "))
                    continue
                if data:
                    yield kind, json.loads("\n".join(data))
                kind, data = "message", []
