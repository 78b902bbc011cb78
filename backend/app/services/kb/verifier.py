"""Optional second opinion from an LLM (any OpenAI-compatible endpoint) on the KB decision.

It may confirm or veto the local match, or pick one of the candidates that passed every hard check
but fell short of the KB judge's bar. It can never bring in an entry the local checks ruled out, and when
it fails or times out the local decision stands."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Protocol

import httpx

from app.config import PROMPTS_DIR
from app.services.kb.decision import GRAY_FLOOR, Candidate, Decision

log = logging.getLogger(__name__)


class Verifier(Protocol):
    async def review(self, query: str, ranked: Sequence[Candidate], decision: Decision) -> Decision: ...


class Judge(Protocol):
    async def choose(self, query: str, options: Sequence[Candidate]) -> int | None:
        """Index into `options` of the entry that answers `query`, or None."""


def eligible(ranked: Sequence[Candidate]) -> list[Candidate]:
    return [c for c in ranked if c.blocked is None and (c.judged or 0.0) >= GRAY_FLOOR][:5]


class LLMVerifier:
    def __init__(self, judge: Judge) -> None:
        self.judge = judge

    async def review(self, query: str, ranked: Sequence[Candidate], decision: Decision) -> Decision:
        options = eligible(ranked)
        if not options:
            return decision
        try:
            choice = await self.judge.choose(query, options)
        except Exception as exc:  # the verifier is advisory: any failure leaves the local decision
            log.warning("LLM verifier failed (%s); keeping the local decision", exc)
            return decision
        picked = options[choice] if choice is not None and 0 <= choice < len(options) else None
        if decision.match is not None:
            if picked is decision.match:
                return Decision(decision.match, decision.reason + "; confirmed by the LLM verifier")
            decision.match.rejected = "the LLM verifier did not confirm it"
            return Decision(None, "the LLM verifier did not confirm the match")
        if picked is not None:
            picked.rejected = None
            return Decision(picked, "chosen by the LLM verifier among entries that passed every check")
        return decision


class OpenAICompatibleJudge:
    """Asks `POST {base_url}/chat/completions` for {"entry": n | null}."""

    def __init__(
        self, *, base_url: str, api_key: str | None, model: str, timeout: float, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.AsyncClient(timeout=timeout)
        self.instructions = (PROMPTS_DIR / "kb_verifier.md").read_text(encoding="utf-8")

    async def choose(self, query: str, options: Sequence[Candidate]) -> int | None:
        listing = "\n".join(f"{n}. Q: {c.question}\n   A: {c.answer}" for n, c in enumerate(options, 1))
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": self.instructions},
                {"role": "user", "content": f"Caller asked: {query}\n\nEntries:\n{listing}"},
            ],
        }
        response = await self.client.post(self.url, json=body, headers=self.headers)
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        found = re.search(r"\{.*\}", content, re.DOTALL)
        if not found:
            raise ValueError(f"no JSON in the verifier's reply: {content[:100]!r}")
        entry = json.loads(found.group(0)).get("entry")
        return None if entry is None else int(entry) - 1

    async def aclose(self) -> None:
        await self.client.aclose()
