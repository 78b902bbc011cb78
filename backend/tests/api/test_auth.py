"""Bearer tokens per role (shared/CONTRACT.md, Auth) and the refusal to serve openly without them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.config import BACKEND_DIR, Settings
from app.main import create_app
from tests.support import make_settings, request_body, running_app

SUP, AGENT = "sup-7f3a", "agt-91bc"


@pytest.fixture
async def auth_client(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(sqlite_url, supervisor_token=SUP, agent_token=AGENT)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


SUPERVISOR_ONLY = [
    ("GET", "/api/help-requests", None, 200),
    ("POST", "/api/help-requests/{rid}/response", {"answer": "Yes."}, 200),
    ("POST", "/api/help-requests/{rid}/timeout", None, 200),
    ("GET", "/api/notifications", None, 200),
    ("GET", "/metrics", None, 200),
    ("POST", "/api/knowledge-base", {"question": "Is there parking?", "answer": "Yes."}, 201),
    ("PATCH", "/api/knowledge-base/{eid}", {"answer": "Yes, from $120."}, 200),
    ("DELETE", "/api/knowledge-base/{eid}", None, 200),
    ("GET", "/api/me", None, 200),
]
AGENT_ALLOWED = [
    ("POST", "/api/help-requests", request_body(), 201),
    ("GET", "/api/help-requests/{rid}", None, 200),
    ("GET", "/api/knowledge-base", None, 200),
    ("GET", "/api/knowledge-base/search?q=perms", None, 200),
    ("GET", "/api/knowledge-base/{eid}", None, 200),
    ("POST", "/api/knowledge-base/{eid}/uses", None, 204),
]


async def _ids(client: httpx.AsyncClient) -> dict[str, str]:
    """A pending request and a KB entry to aim the calls at."""
    rid = (await client.post("/api/help-requests", json=request_body(), headers=bearer(SUP))).json()["id"]
    entry = {"question": f"Do you do perms ({rid})?", "answer": "Yes, from $110."}
    eid = (await client.post("/api/knowledge-base", json=entry, headers=bearer(SUP))).json()["id"]
    return {"rid": rid, "eid": eid}


@pytest.mark.parametrize(("method", "path", "body", "_ok"), SUPERVISOR_ONLY + AGENT_ALLOWED)
@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": SUP}, {"Authorization": "Basic abc"}])
async def test_no_valid_token_is_401(
    auth_client: httpx.AsyncClient, method: str, path: str, body: dict | None, _ok: int, headers: dict
) -> None:
    response = await auth_client.request(method, path.format(**await _ids(auth_client)), json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body", "_ok"), SUPERVISOR_ONLY)
async def test_agent_token_is_403_on_supervisor_endpoints(
    auth_client: httpx.AsyncClient, method: str, path: str, body: dict | None, _ok: int
) -> None:
    ids = await _ids(auth_client)
    response = await auth_client.request(method, path.format(**ids), json=body, headers=bearer(AGENT))
    assert response.status_code == 403
    detail = (await auth_client.get(f"/api/help-requests/{ids['rid']}", headers=bearer(SUP))).json()
    assert detail["status"] == "pending", "a refused call must change nothing"
    entry = (await auth_client.get(f"/api/knowledge-base/{ids['eid']}", headers=bearer(SUP))).json()
    assert entry["answer"] == "Yes, from $110." and entry["retired_at"] is None


@pytest.mark.parametrize(("method", "path", "body", "ok"), AGENT_ALLOWED)
@pytest.mark.parametrize("token", [AGENT, SUP])
async def test_agent_endpoints_open_to_both_tokens(
    auth_client: httpx.AsyncClient, method: str, path: str, body: dict | None, ok: int, token: str
) -> None:
    response = await auth_client.request(
        method, path.format(**await _ids(auth_client)), json=body, headers=bearer(token)
    )
    assert response.status_code == ok, response.text


@pytest.mark.parametrize(("method", "path", "body", "ok"), SUPERVISOR_ONLY)
async def test_supervisor_token_opens_everything(
    auth_client: httpx.AsyncClient, method: str, path: str, body: dict | None, ok: int
) -> None:
    response = await auth_client.request(method, path.format(**await _ids(auth_client)), json=body, headers=bearer(SUP))
    assert response.status_code == ok, response.text


@pytest.mark.parametrize(("method", "path", "body", "ok"), SUPERVISOR_ONLY + AGENT_ALLOWED)
async def test_a_named_supervisors_token_opens_what_the_admin_token_opens(
    auth_client: httpx.AsyncClient, method: str, path: str, body: dict | None, ok: int
) -> None:
    token = (await auth_client.app.state.services.supervisors.add("Priya")).token  # type: ignore[attr-defined]
    response = await auth_client.request(
        method, path.format(**await _ids(auth_client)), json=body, headers=bearer(token)
    )
    assert response.status_code == ok, response.text


@pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json"])
async def test_public_paths_need_no_token(auth_client: httpx.AsyncClient, path: str) -> None:
    assert (await auth_client.get(path)).status_code == 200


async def test_agent_token_without_supervisor_token_leaves_auth_off(sqlite_url: str) -> None:
    async with running_app(make_settings(sqlite_url, agent_token=AGENT)) as client:
        assert (await client.get("/api/help-requests")).status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("salon.example", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert Settings(_env_file=None, host=host).bind_is_loopback() is loopback


def test_server_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_TOKEN", "AGENT_TOKEN")}
    env.update(HOST="0.0.0.0", PORT="8123", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / uuid.uuid4().hex}.db")
    proc = subprocess.run(
        [sys.executable, "-m", "app"], cwd=BACKEND_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "SUPERVISOR_TOKEN" in proc.stderr


def test_invalid_settings_are_named_not_dumped(tmp_path: Path) -> None:
    env = dict(os.environ, PORT="0", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    proc = subprocess.run(
        [sys.executable, "-m", "app"], cwd=BACKEND_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("invalid settings: PORT")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("client_address", "host", "status"),
    [
        (("127.0.0.1", 5000), "127.0.0.1:8000", 200),
        (("::1", 5000), "[::1]:8000", 200),
        (("127.0.0.1", 5000), "localhost", 200),
        (("192.0.2.7", 5000), "127.0.0.1:8000", 403),  # another machine, however it names us
        (("127.0.0.1", 5000), "attacker.example:8000", 403),  # DNS rebinding: a page elsewhere, via this browser
    ],
)
async def test_with_auth_off_only_this_machine_is_served(
    sqlite_url: str, client_address: tuple[str, int], host: str, status: int
) -> None:
    app = create_app(make_settings(sqlite_url))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=client_address)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.get("/api/help-requests", headers={"Host": host})
    assert response.status_code == status
    if status == 403:
        assert "SUPERVISOR_TOKEN" in response.json()["detail"]


async def test_with_auth_on_other_machines_are_served(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, supervisor_token="sup"))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://salon.example") as client:
            response = await client.get("/api/help-requests", headers={"Authorization": "Bearer sup"})
    assert response.status_code == 200


def test_uvicorn_started_by_hand_on_all_interfaces_without_tokens_serves_only_this_machine(tmp_path: Path) -> None:
    from tests.server_process import ServerProcess

    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "{port}"]
    server = ServerProcess(tmp_path, command=command).start()
    try:
        assert httpx.get(f"{server.base}/api/help-requests", timeout=5).status_code == 200
        rebound = httpx.get(f"{server.base}/api/help-requests", headers={"Host": "attacker.example"}, timeout=5)
        assert rebound.status_code == 403 and "SUPERVISOR_TOKEN" in rebound.json()["detail"]
    finally:
        server.stop()


@pytest.fixture
async def leaked(sqlite_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(the agent token's client, the supervisor's), on one app."""
    settings = make_settings(sqlite_url, supervisor_token="sup", agent_token="agt")
    async with running_app(settings, token="agt") as agent:
        transport = agent.transport  # type: ignore[attr-defined]
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers={"Authorization": "Bearer sup"}
        ) as supervisor:
            yield agent, supervisor


async def test_a_leaked_agent_token_reaches_no_other_call(leaked: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    agent, supervisor = leaked
    theirs = (
        await agent.post("/api/help-requests", json=request_body(transcript=[{"role": "caller", "text": "hi"}]))
    ).json()
    mine = (await agent.post("/api/help-requests", json=request_body(question="Do you do perms?"))).json()
    assert theirs["call_key"] and theirs["call_key"] != mine["call_key"]
    rid, wrong = theirs["id"], {"X-Call-Key": mine["call_key"]}

    # Redirect the answer, silence the follow-up, rewrite the call: refused without that call's key.
    for headers in ({}, wrong):
        assert (
            await agent.patch(f"/api/help-requests/{rid}", json={"customer_contact": "+15550000000"}, headers=headers)
        ).status_code == 403
        assert (
            await agent.patch(f"/api/help-requests/{rid}", json={"transcript": []}, headers=headers)
        ).status_code == 403
        assert (
            await agent.post(f"/api/help-requests/{rid}/presence", json={"on_line": True}, headers=headers)
        ).status_code == 403
        assert (await agent.post(f"/api/help-requests/{rid}/follow-up", headers=headers)).status_code == 403
        assert (await agent.delete(f"/api/help-requests/{rid}/follow-up", headers=headers)).status_code == 403
    # Harvest: no list, and a read by id tells where the request stands, nothing of the caller.
    assert (await agent.get("/api/help-requests")).status_code == 403
    seen = (await agent.get(f"/api/help-requests/{rid}", headers=wrong)).json()
    assert (seen["status"], seen["customer_name"], seen["customer_contact"], seen["question"]) == (
        "pending",
        "",
        None,
        "",
    )
    assert seen["transcript"] == [] and seen["history"] == []
    assert "call_key" not in seen

    own = {"X-Call-Key": theirs["call_key"]}
    assert (await agent.get(f"/api/help-requests/{rid}", headers=own)).json()["customer_contact"] == "+14155550101"
    assert (
        await agent.patch(f"/api/help-requests/{rid}", json={"customer_contact": "+14155550199"}, headers=own)
    ).status_code == 200
    assert (await supervisor.get(f"/api/help-requests/{rid}")).json()["customer_contact"] == "+14155550199"
    assert (await agent.get("/api/help-requests/nope", headers=own)).status_code == 404


async def test_nothing_about_the_caller_changes_once_answered(
    leaked: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    agent, supervisor = leaked
    req = (await agent.post("/api/help-requests", json=request_body())).json()
    own = {"X-Call-Key": req["call_key"]}
    assert (
        await supervisor.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes."})
    ).status_code == 200
    for change in ({"customer_contact": "+15550000000"}, {"customer_name": "Eve"}, {"transcript": []}):
        response = await agent.patch(f"/api/help-requests/{req['id']}", json=change, headers=own)
        assert response.status_code == 409, change


async def test_the_agent_token_is_rate_limited(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, supervisor_token="sup", agent_token="agt", agent_rate_per_second=2)
    async with running_app(settings, token="agt") as agent:
        codes = [(await agent.get("/api/knowledge-base")).status_code for _ in range(12)]
        limited = await agent.get("/api/knowledge-base")
    assert codes[:4] == [200] * 4 and 429 in codes
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
