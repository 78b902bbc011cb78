"""A lost database connection: a read is tried once more and succeeds; a write, or a read that loses
it twice, is a 503 with Retry-After (never a 500), and a write is never run twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import event

from tests.support import request_body


@contextmanager
def connection_lost(client: httpx.AsyncClient, *, times: int, on: str) -> Iterator[list[str]]:
    """The next `times` statements that mention `on` (in their SQL or their parameters) fail as a
    dropped connection would. Background loops run their own statements meanwhile: `on` picks out
    the request's."""
    engine = client.app.state.db.engine.sync_engine  # type: ignore[attr-defined]
    failed: list[str] = []

    def drop(_conn, _cursor, statement: str, parameters, *_args) -> None:  # type: ignore[no-untyped-def]
        if len(failed) < times and (on in statement or on in map(str, parameters or ())):
            failed.append(statement)
            raise sqlite3.OperationalError("server closed the connection unexpectedly")

    def mark(context) -> None:  # type: ignore[no-untyped-def]
        if "closed the connection" in str(context.original_exception):
            context.is_disconnect = True

    event.listen(engine, "before_cursor_execute", drop)
    event.listen(engine, "handle_error", mark)
    try:
        yield failed
    finally:
        event.remove(engine, "before_cursor_execute", drop)
        event.remove(engine, "handle_error", mark)


async def test_a_read_that_loses_its_connection_is_tried_again(client: httpx.AsyncClient) -> None:
    rid = (await client.post("/api/help-requests", json=request_body())).json()["id"]
    with connection_lost(client, times=1, on=rid) as failed:
        response = await client.get(f"/api/help-requests/{rid}")
    assert len(failed) == 1 and response.status_code == 200 and response.json()["id"] == rid


async def test_a_read_that_loses_it_twice_is_a_503(client: httpx.AsyncClient) -> None:
    rid = (await client.post("/api/help-requests", json=request_body())).json()["id"]
    with connection_lost(client, times=2, on=rid) as failed:
        response = await client.get(f"/api/help-requests/{rid}")
    assert len(failed) == 2
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "database unavailable" in response.json()["detail"]


async def test_a_write_that_loses_its_connection_is_not_run_again(client: httpx.AsyncClient) -> None:
    with connection_lost(client, times=1, on="INSERT INTO help_requests") as failed:
        response = await client.post("/api/help-requests", json=request_body(question="Do you do perms?"))
    assert len(failed) == 1
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert (await client.get("/api/help-requests")).json() == []
