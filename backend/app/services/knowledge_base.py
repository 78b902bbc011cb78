"""The knowledge base: learning answers, listing, searching, and the starter entries."""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.db import Database
from app.models import KnowledgeBaseEntry, utcnow
from app.services.snapshots import KnowledgeBaseEntryView

log = logging.getLogger(__name__)

_STOPWORDS = frozenset(
    "a an the do does did you your yours we our is are was were be can could i me my to of for on in at"
    " and or it its how what when where which who there have has any".split()
)


def normalize_question(question: str) -> str:
    """The key under which two questions count as the same one: case, spacing and punctuation ignored."""
    folded = unicodedata.normalize("NFKC", question).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def _terms(text: str) -> set[str]:
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOPWORDS}


@dataclass(frozen=True)
class Candidate:
    entry: KnowledgeBaseEntryView
    score: float


@dataclass(frozen=True)
class SearchResult:
    query: str
    match: KnowledgeBaseEntryView | None
    candidates: list[Candidate]


class KnowledgeBase:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    async def list(self) -> list[KnowledgeBaseEntryView]:
        async with self.db.read() as session:
            return [KnowledgeBaseEntryView.model_validate(e) for e in await repository.list_entries(session=session)]

    async def learn(
        self,
        *,
        session: AsyncSession,
        question: str,
        answer: str,
        topic: str | None,
        source_request_id: str | None,
        now: datetime,
    ) -> KnowledgeBaseEntry:
        """Write an answer into the KB inside the caller's transaction; the same question updates its entry."""
        return await repository.upsert_entry(
            session=session,
            values={
                "question": question.strip(),
                "normalized_question": normalize_question(question),
                "answer": answer.strip(),
                "topic": topic,
                "source_request_id": source_request_id,
                "created_at": now,
                "updated_at": now,
            },
        )

    async def search(self, query: str, *, limit: int = 5) -> SearchResult:
        """Rank by shared content words; only the same question (normalized) counts as a match."""
        wanted, key = _terms(query), normalize_question(query)
        async with self.db.read() as session:
            entries = await repository.list_entries(session=session)
        scored: list[tuple[float, KnowledgeBaseEntry]] = []
        for entry in entries:
            terms = _terms(entry.question)
            union = wanted | terms
            score = 1.0 if entry.normalized_question == key else (len(wanted & terms) / len(union) if union else 0.0)
            if score > 0:
                scored.append((score, entry))
        scored.sort(key=lambda pair: pair[0], reverse=True)
        candidates = [Candidate(KnowledgeBaseEntryView.model_validate(e), round(s, 4)) for s, e in scored[:limit]]
        match = next((c.entry for c in candidates if normalize_question(c.entry.question) == key and key), None)
        return SearchResult(query=query, match=match, candidates=candidates)

    async def load_seed(self, path: str) -> int:
        """Load the starter entries into a KB that has never had any; returns how many were written."""
        if not path:
            return 0
        items = json.loads(Path(path).read_text(encoding="utf-8"))
        async with self.db.transaction() as session:
            if await repository.count_entries(session=session):
                return 0
            now = self.clock()
            for item in items:
                await self.learn(
                    session=session,
                    question=item["question"],
                    answer=item["answer"],
                    topic=item.get("topic"),
                    source_request_id=None,
                    now=now,
                )
        log.info("loaded %d starter KB entries from %s", len(items), path)
        return len(items)
