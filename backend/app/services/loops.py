"""Background loops that sleep until their next due time, a wake-up, or a stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from datetime import datetime

log = logging.getLogger(__name__)


def seconds_until(when: datetime | None, now: datetime) -> float | None:
    # A hair past the due time, so the next step does not find it still a microsecond away.
    return None if when is None else max(0.0, (when - now).total_seconds()) + 0.01


class WakeableLoop(ABC):
    # Cap on any sleep: another process sharing the database may create work we are not woken for.
    max_sleep: float = 30.0
    retry_after_error: float = 1.0

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = False

    @abstractmethod
    async def step(self) -> float | None:
        """Do what is due; return seconds until more is due (None: nothing known)."""

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self.step()
            except Exception:  # a failed step (database away, say) must not end the loop
                log.exception("%s failed; retrying in %ss", type(self).__name__, self.retry_after_error)
                delay = self.retry_after_error
            if self._stopping or delay == 0:
                continue
            timeout = self.max_sleep if delay is None else min(delay, self.max_sleep)
            with contextlib.suppress(TimeoutError):  # woken early or not: the next step decides
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)


async def stop_loops(loops: list[WakeableLoop], tasks: list[asyncio.Task[None]], grace: float = 5.0) -> None:
    """Let each loop finish its current step; cancel what is still busy after `grace` seconds
    (a lease or a deadline in the database makes any interrupted work come round again)."""
    for loop in loops:
        loop.stop()
    _done, busy = await asyncio.wait(tasks, timeout=grace)
    for task in busy:
        task.cancel()
    await asyncio.gather(*busy, return_exceptions=True)
