"""Model calls: concurrent callers share batches yet each gets exactly its own results; a question
searched and then escalated is embedded once."""

import asyncio
import threading

import numpy as np
import pytest
from numpy.typing import NDArray

from app.db import Database
from app.services.batching import MicroBatcher, in_a_thread
from app.services.kb.lexicon import load_lexicon
from app.services.kb.service import KnowledgeBase


class SlowDoubler:
    """Doubles numbers; the first run waits until released, so later callers pile up behind it."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.runs.append(list(items))
        if len(self.runs) == 1:
            self.release.wait(5)
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [2 * i for i in items]


async def test_callers_waiting_behind_a_run_share_the_next_one() -> None:
    fn = SlowDoubler()
    batcher = MicroBatcher(in_a_thread(fn), max_batch=8)
    first = asyncio.ensure_future(batcher.run([1]))
    await asyncio.sleep(0.05)
    rest = [asyncio.ensure_future(batcher.run([10 * n, 10 * n + 1])) for n in range(1, 4)]
    await asyncio.sleep(0.05)
    fn.release.set()
    assert await first == [2]
    assert [await r for r in rest] == [[20, 22], [40, 42], [60, 62]]
    assert fn.runs == [[1], [10, 11, 20, 21, 30, 31]]


async def test_a_batch_never_grows_past_its_cap() -> None:
    fn = SlowDoubler()
    batcher = MicroBatcher(in_a_thread(fn), max_batch=3)
    first = asyncio.ensure_future(batcher.run([0]))
    await asyncio.sleep(0.05)
    rest = [asyncio.ensure_future(batcher.run([n])) for n in range(1, 6)]
    fn.release.set()
    await asyncio.gather(first, *rest)
    assert fn.runs == [[0], [1, 2, 3], [4, 5]]


async def test_a_failed_run_fails_its_callers_only() -> None:
    fn = SlowDoubler()
    fn.release.set()
    batcher = MicroBatcher(in_a_thread(fn))
    with pytest.raises(ValueError):
        await batcher.run([-1])
    assert await batcher.run([4]) == [8]


async def test_a_cancelled_caller_does_not_strand_the_others() -> None:
    fn = SlowDoubler()
    batcher = MicroBatcher(in_a_thread(fn))
    starter = asyncio.ensure_future(batcher.run([1]))
    await asyncio.sleep(0.05)
    other = asyncio.ensure_future(batcher.run([2]))
    await asyncio.sleep(0.05)
    starter.cancel()
    fn.release.set()
    assert await asyncio.wait_for(other, 5) == [4]


async def test_a_failed_item_fails_its_caller_only() -> None:
    async def halve(items: list[int]) -> list[int | Exception]:
        return [ValueError(f"odd {i}") if i % 2 else i // 2 for i in items]

    batcher = MicroBatcher(halve)
    even, odd = batcher.run([4]), batcher.run([3])
    results = await asyncio.gather(even, odd, return_exceptions=True)
    assert results[0] == [2] and isinstance(results[1], ValueError)


class CountingEmbedder:
    """Vectors of ones; counts the texts it was asked to embed."""

    name = "counting"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        self.texts.extend(texts)
        vectors = np.ones((len(texts), 384), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def is_common_word(self, word: str) -> bool:
        return True


async def test_a_question_searched_then_escalated_is_embedded_once(sqlite_url: str) -> None:
    """The model lowercases and splits on whitespace, so the cache may key on that form."""
    db = Database(sqlite_url)
    await db.migrate()
    embedder = CountingEmbedder()
    kb = KnowledgeBase(db, lexicon=load_lexicon(""), embedder=embedder)
    await kb.embed_query("Do you do perms?")
    await kb.embed_query("do you  do PERMS?")
    await kb.embed_query("Do you do perms")
    assert embedder.texts == ["Do you do perms?", "Do you do perms"]
    await db.dispose()
