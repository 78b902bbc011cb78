"""Micro-batching: concurrent callers' items run as one batch.

For the models: on two cores the encoder embeds ~240 questions a second one at a time and ~380 in
batches of 16 (padding is per batch, and a batch's matrix products use the cores better). For
writes: one transaction opening many help requests holds SQLite's single write lock about as long
as one opening a single request. Under load the callers queue anyway, so whoever arrives while a
batch runs goes into the next one; alone, a caller runs at once, with no waiting for company."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 32  # items per run: past this, batches only add latency


def in_a_thread(fn: Callable[[list[T]], Sequence[R]]) -> Callable[[list[T]], Awaitable[Sequence[R]]]:
    """A blocking batch function (a model's) as one a MicroBatcher runs off the event loop."""

    async def run(items: list[T]) -> Sequence[R]:
        return await asyncio.to_thread(fn, items)

    return run


class MicroBatcher(Generic[T, R]):
    """Runs `fn` (a function of a list of items, one result per item) over the items of every
    caller waiting when a run starts. A result that is an exception is raised to its caller alone;
    an exception `fn` raises goes to every caller of that run."""

    def __init__(self, fn: Callable[[list[T]], Awaitable[Sequence[R | Exception]]], max_batch: int = MAX_BATCH) -> None:
        self.fn = fn
        self.max_batch = max_batch
        self._queue: deque[tuple[list[T], asyncio.Future[list[R]]]] = deque()
        self._runner: asyncio.Task[None] | None = None

    async def run(self, items: list[T]) -> list[R]:
        if not items:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[R]] = loop.create_future()
        self._queue.append((items, future))
        # The runner is a task of its own, so a caller that is cancelled never strands the others.
        if self._runner is None or self._runner.done() or self._runner.get_loop() is not loop:
            # Left over from a closed event loop (one per test, say): nobody waits for those.
            self._queue = deque(entry for entry in self._queue if entry[1].get_loop() is loop)
            self._runner = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch = [self._queue.popleft()]
            size = len(batch[0][0])
            while self._queue and size + len(self._queue[0][0]) <= self.max_batch:
                batch.append(self._queue.popleft())
                size += len(batch[-1][0])
            flat = [item for items, _ in batch for item in items]
            try:
                results = list(await self.fn(flat))
            except Exception as exc:  # each caller gets the failure of the run it was in
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for items, future in batch:
                mine = results[start : start + len(items)]
                start += len(items)
                if future.done():
                    continue
                failure = next((r for r in mine if isinstance(r, Exception)), None)
                if failure is not None:
                    future.set_exception(failure)
                else:
                    future.set_result(mine)  # type: ignore[arg-type]
