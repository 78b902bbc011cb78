"""The questions callers are waiting on, indexed like the KB (embeddings and words), so a new request
finds a pending request with the same question without scanning every pending one.

The index is a hint, never the truth: the request it proposes is checked (still pending, still a
group's head) inside the transaction that attaches to it. Requests another API process opened
arrive within REFRESH_INTERVAL; one answered elsewhere is dropped the first time it is proposed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

from app import repository
from app.db import Database
from app.questions import normalize_question
from app.services.kb.index import IndexRow, KnowledgeIndex
from app.services.kb.lexicon import Lexicon

REFRESH_INTERVAL = 1.0  # seconds between looks for requests other processes opened


@dataclass(frozen=True, slots=True)
class _Pending:
    """What the index keeps of a request: its question (there is no answer yet)."""

    id: str
    question: str
    answer: str = ""
    retired_at: datetime | None = None


class PendingQuestions:
    def __init__(self, db: Database, lexicon: Lexicon) -> None:
        self.db = db
        self.index = KnowledgeIndex(lexicon)
        self._since: datetime | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    def add(self, rid: str, question: str, embedding: bytes | None) -> None:
        row = IndexRow(_Pending(rid, question), normalize_question(question), embedding, embedding)
        self.index.apply([row], self.index.revision)

    def discard(self, rid: str) -> None:
        self.index.apply([IndexRow(_Pending(rid, "", retired_at=datetime.min), "", None, None)], self.index.revision)

    async def refresh(self) -> None:
        """Index the heads of groups opened since the last look (by any process)."""
        if time.monotonic() - self._checked_at < REFRESH_INTERVAL:
            return
        async with self._lock:
            async with self.db.read() as session:
                rows = await repository.pending_heads_since(session=session, since=self._since)
            for row in rows:
                self.add(row.id, row.question, row.question_embedding)
                self._since = max(self._since or row.created_at, row.created_at)
            self._checked_at = time.monotonic()
