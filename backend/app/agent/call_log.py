"""Every log line a call writes names the call and, once there is one, the help request it is
about: a worker runs many calls at once, and one call's story must come out of its logs whole.

The ids ride in context variables, so they follow the call's tasks (a follow-up watcher is started
with its request's id); a log-record factory copies them onto each record, where the worker's JSON
log lines (LiveKit's formatter writes a record's extra fields) and `%(call_id)s` formats find them."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# Calls this process has run. LiveKit gives each call a process of its own in production, and
# lines outside the call's tasks (the framework's process housekeeping) belong to it as much;
# a process that has run several calls (thread executor) cannot tell, and names none.
_calls_here: set[str] = set()


def _with_ids(make: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.call_id = call_id.get() or (next(iter(_calls_here)) if len(_calls_here) == 1 else None)
        record.request_id = request_id.get()
        return record

    factory.call_log = True  # type: ignore[attr-defined]
    return factory


def start_call(ident: str) -> None:
    """From here on, in this task and the tasks it starts, log lines name call `ident`."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "call_log", False):
        logging.setLogRecordFactory(_with_ids(current))
    call_id.set(ident)
    _calls_here.add(ident)


def about_request(rid: str, coro: Coroutine[Any, Any, T]) -> tuple[Coroutine[Any, Any, T], contextvars.Context]:
    """`coro` and a context in which its log lines name request `rid`, for `asyncio.create_task`."""
    context = contextvars.copy_context()
    context.run(request_id.set, rid)
    return coro, context


@contextlib.contextmanager
def concerning(rid: str) -> Iterator[None]:
    """Within the block, log lines name request `rid` (for work on one request among a call's)."""
    token = request_id.set(rid)
    try:
        yield
    finally:
        request_id.reset(token)
