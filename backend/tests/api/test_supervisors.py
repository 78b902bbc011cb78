"""Named supervisors: their own tokens, their names on everything they change, who is signed in,
revocation that works at once in every process, and the accounts turning auth on."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from app.services.errors import Conflict
from app.services.supervisors import RECHECK_SECONDS, SupervisorAccounts
from tests.support import eventually, make_settings, request_body, running_app

ADMIN, AGENT = "adm-5e1d", "agt-77c0"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def add(client: httpx.AsyncClient, name: str) -> str:
    return (await client.app.state.services.supervisors.add(name)).token  # type: ignore[attr-defined]


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(sqlite_url, supervisor_token=ADMIN, agent_token=AGENT)) as c:
        yield c


async def test_me_says_who_is_signed_in(client: httpx.AsyncClient) -> None:
    priya = await add(client, "Priya")
    assert (await client.get("/api/me", headers=bearer(priya))).json() == {
        "name": "Priya",
        "role": "supervisor",
        "auth": True,
    }
    assert (await client.get("/api/me", headers=bearer(ADMIN))).json() == {
        "name": "admin",
        "role": "admin",
        "auth": True,
    }
    assert (await client.get("/api/me", headers=bearer(AGENT))).status_code == 403
    assert (await client.get("/api/me")).status_code == 401
    assert (await client.get("/api/me", headers=bearer(priya + "x"))).status_code == 401


async def test_with_auth_off_me_is_this_machines_operator(sqlite_url: str) -> None:
    async with running_app(make_settings(sqlite_url, supervisor_name="Front desk")) as local:
        assert (await local.get("/api/me")).json() == {"name": "Front desk", "role": "admin", "auth": False}


async def test_every_change_is_recorded_under_the_signed_in_name(client: httpx.AsyncClient) -> None:
    priya, bob = await add(client, "Priya"), await add(client, "Bob")
    rid = (await client.post("/api/help-requests", json=request_body(), headers=bearer(AGENT))).json()["id"]
    # A named token is always its holder: `answered_by` cannot put the answer on someone else.
    answered = await client.post(
        f"/api/help-requests/{rid}/response",
        json={"answer": "Yes, from $150.", "answered_by": "Bob"},
        headers=bearer(priya),
    )
    assert answered.json()["answered_by"] == "Priya"
    detail = (await client.get(f"/api/help-requests/{rid}", headers=bearer(bob))).json()
    assert [r["responder"] for r in detail["responses"]] == ["Priya"]
    assert any(h["message"] == "Answered by Priya: Yes, from $150." for h in detail["history"])
    assert detail["customer_contact"] == "+14155550101", "a named supervisor sees the caller, as the admin does"

    eid = (await client.get("/api/knowledge-base", headers=bearer(bob))).json()[0]["id"]
    assert (
        await client.patch(f"/api/knowledge-base/{eid}", json={"answer": "Yes, from $160."}, headers=bearer(bob))
    ).status_code == 200
    added = await client.post(
        f"/api/knowledge-base/{eid}/phrasings", json={"text": "balayage price?"}, headers=bearer(bob)
    )
    phrasing = added.json()["phrasings"][0]["id"]
    await client.delete(f"/api/knowledge-base/{eid}/phrasings/{phrasing}?by=Mallory", headers=bearer(priya))
    await client.delete(f"/api/knowledge-base/{eid}", headers=bearer(priya))
    made = await client.post(
        "/api/knowledge-base", json={"question": "Is there parking?", "answer": "Yes."}, headers=bearer(ADMIN)
    )
    # The shared admin token may say on whose behalf it acts; without that it acts as itself.
    await client.patch(
        f"/api/knowledge-base/{made.json()['id']}", json={"answer": "Yes, free.", "by": "Dana"}, headers=bearer(ADMIN)
    )

    history = (await client.get(f"/api/knowledge-base/{eid}", headers=bearer(bob))).json()["history"]
    assert [(c["action"], c["actor"]) for c in history] == [
        ("learned", "Priya"),
        ("edited", "Bob"),
        ("phrasing added", "Bob"),
        ("phrasing removed", "Priya"),
        ("retired", "Priya"),
    ]
    other = (await client.get(f"/api/knowledge-base/{made.json()['id']}", headers=bearer(bob))).json()["history"]
    assert [(c["action"], c["actor"]) for c in other] == [("learned", "admin"), ("edited", "Dana")]


async def test_a_409_says_who_closed_the_request_when_and_how(client: httpx.AsyncClient) -> None:
    priya, bob = await add(client, "Priya"), await add(client, "Bob")
    answered = (await client.post("/api/help-requests", json=request_body(), headers=bearer(AGENT))).json()["id"]
    other = request_body(question="Do you do perms?")
    timed_out = (await client.post("/api/help-requests", json=other, headers=bearer(AGENT))).json()["id"]
    await client.post(f"/api/help-requests/{answered}/response", json={"answer": "Yes, $90."}, headers=bearer(priya))
    assert (await client.post(f"/api/help-requests/{timed_out}/timeout", headers=bearer(bob))).status_code == 200

    late = await client.post(f"/api/help-requests/{answered}/response", json={"answer": "No."}, headers=bearer(bob))
    assert late.status_code == 409
    assert late.json()["detail"] == "Priya answered just now: Yes, $90."
    late = await client.post(f"/api/help-requests/{timed_out}/response", json={"answer": "No."}, headers=bearer(priya))
    assert late.json()["detail"] == "Bob timed it out just now"
    history = (await client.get(f"/api/help-requests/{timed_out}", headers=bearer(bob))).json()["history"]
    assert "Timed out by Bob" in [h["message"] for h in history]


async def test_a_revoked_token_is_refused_at_once_by_every_process(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, supervisor_token=ADMIN)
    async with running_app(settings) as one, running_app(settings) as two:
        priya = await add(one, "Priya")
        for app in (one, two):
            assert (await app.get("/api/help-requests", headers=bearer(priya))).status_code == 200
        # Revoked by a third party on the same database, as `python -m app supervisors revoke` does.
        db = one.app.state.db  # type: ignore[attr-defined]
        await SupervisorAccounts(db, admin_name="admin").revoke("priya")
        for app in (one, two):
            refused = await app.get("/api/help-requests", headers=bearer(priya))
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert (await two.get("/api/help-requests", headers=bearer(ADMIN))).status_code == 200


async def test_names_are_one_per_active_account_and_never_someone_elses(client: httpx.AsyncClient) -> None:
    accounts: SupervisorAccounts = client.app.state.services.supervisors  # type: ignore[attr-defined]
    first = await accounts.add("Priya  Shah")
    with pytest.raises(Conflict):
        await accounts.add("priya shah")
    for taken in ("admin", "Agent", "timeout", "supervisor", "  ", "!!", "Eve\x00"):
        with pytest.raises(ValueError):
            await accounts.add(taken)
    await accounts.revoke(first.account.id)
    again = await accounts.add("Priya Shah")  # a new token for the same person, the old one stays dead
    assert (await client.get("/api/me", headers=bearer(again.token))).json()["name"] == "Priya Shah"
    assert (await client.get("/api/me", headers=bearer(first.token))).status_code == 401
    assert sorted((a.name, a.revoked_at is None) for a in await accounts.list()) == [
        ("Priya Shah", False),
        ("Priya Shah", True),
    ]


async def test_an_account_turns_auth_on_and_revoking_the_last_keeps_it_on(sqlite_url: str) -> None:
    """No SUPERVISOR_TOKEN: the first account locks the API within a second, and the last one revoked
    leaves it locked (fail closed), never open again."""
    async with running_app(make_settings(sqlite_url, agent_token=AGENT)) as client:
        assert (await client.get("/api/help-requests")).status_code == 200
        accounts = SupervisorAccounts(client.app.state.db, admin_name="admin")  # type: ignore[attr-defined]
        priya = (await accounts.add("Priya")).token

        async def locked() -> bool:
            return (await client.get("/api/help-requests")).status_code == 401

        await eventually(locked, timeout=RECHECK_SECONDS + 2)
        assert (await client.get("/api/help-requests", headers=bearer(priya))).status_code == 200
        # The agent token, ignored while auth was off, now does the agent's part and no more.
        assert (await client.post("/api/help-requests", json=request_body(), headers=bearer(AGENT))).status_code == 201
        assert (await client.get("/api/help-requests", headers=bearer(AGENT))).status_code == 403
        await accounts.revoke("Priya")
        assert (await client.get("/api/help-requests", headers=bearer(priya))).status_code == 401
        assert (await client.get("/api/help-requests")).status_code == 401


async def test_accounts_do_not_open_the_server_to_other_machines(sqlite_url: str) -> None:
    """Only SUPERVISOR_TOKEN does (shared/CONTRACT.md): exposure is the configuration's to decide."""
    app = create_app(make_settings(sqlite_url))
    async with LifespanManager(app) as manager:
        token = (await app.state.services.supervisors.add("Priya")).token
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://salon.example") as remote:
            refused = await remote.get("/api/help-requests", headers=bearer(token))
        assert refused.status_code == 403 and "SUPERVISOR_TOKEN" in refused.json()["detail"]


def test_the_409_wording() -> None:
    from app.services.requests.conflicts import ago

    assert [ago(s) for s in (-0.3, 0.4, 20.9, 61, 7200, 3 * 86400)] == [
        "just now",
        "just now",
        "20 s ago",
        "1 min ago",
        "2 h ago",
        "3 days ago",
    ]
    assert re.fullmatch(r"\d+ s ago", ago(59.99))
