"""Notification outbox: every event to every sink, at least once, signed, retried, never blocking."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.services.outbox.delivery import RetryPolicy
from tests.support import WebhookReceiver, eventually, make_settings, request_body, running_app

SECRET = "s3cret-key"


def valid_signature(raw: bytes, signature: str | None) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return signature is not None and hmac.compare_digest(expected, signature)


async def test_refused_webhook_is_retried_under_the_same_event_id_with_a_valid_signature(database_url: str) -> None:
    hook = WebhookReceiver(refuse=lambda d, seen: not any(s.event_id == d.event_id for s in seen))
    settings = make_settings(database_url, notify_webhook_url=hook.url, notify_webhook_secret=SECRET)
    try:
        async with running_app(settings) as client:
            req = (await client.post("/api/help-requests", json=request_body())).json()

            async def accepted() -> list:
                return hook.accepted("help_request.created")

            [delivery] = await eventually(accepted, timeout=6)
            attempts = [d for d in hook.deliveries if d.event_id == delivery.event_id]
            assert [a.status for a in attempts] == [503, 200]
            assert attempts[0].raw == attempts[1].raw, "a retry must resend the same body"
            assert all(valid_signature(a.raw, a.signature) for a in attempts)

            body = delivery.body
            assert body["id"] == delivery.event_id
            assert body["recipient"] == "supervisor"
            assert "balayage" in body["message"]
            assert body["request"]["id"] == req["id"] and body["request"]["status"] == "pending"
            assert datetime.fromisoformat(body["created_at"]).utcoffset() == timedelta(0)

            async def timeline_says_notified() -> bool:
                detail = (await client.get(f"/api/help-requests/{req['id']}")).json()
                return any(h["message"] == "Supervisor notified via webhook" for h in detail["history"])

            await eventually(timeline_says_notified)
    finally:
        hook.close()


async def test_answer_and_unresolved_reach_the_customer(sqlite_url: str, webhook: WebhookReceiver) -> None:
    settings = make_settings(sqlite_url, notify_webhook_url=webhook.url)
    async with running_app(settings) as client:
        answered = (await client.post("/api/help-requests", json=request_body(customer_name="Ana"))).json()
        dropped = (
            await client.post(
                "/api/help-requests", json=request_body(customer_name="Bo", question="Can I bring my dog?")
            )
        ).json()
        await client.post(f"/api/help-requests/{answered['id']}/response", json={"answer": "Yes! Balayage is $220."})
        await client.post(f"/api/help-requests/{dropped['id']}/timeout")

        async def customer_events() -> dict:
            events = {d.body["request"]["id"]: d.body for d in webhook.accepted() if d.body["recipient"] == "customer"}
            return events if len(events) == 2 else {}

        events = await eventually(customer_events)
        resolved, unresolved = events[answered["id"]], events[dropped["id"]]
        assert resolved["type"] == "help_request.resolved"
        assert "$220" in resolved["message"] and "Ana" in resolved["message"]
        assert resolved["request"]["status"] == "resolved" and resolved["request"]["answer"] == "Yes! Balayage is $220."
        assert unresolved["type"] == "help_request.unresolved"
        assert "dog" in unresolved["message"] and "Bo" in unresolved["message"]
        assert webhook.signature_header_absent()


async def test_a_failing_webhook_blocks_neither_the_api_nor_the_console(sqlite_url: str) -> None:
    hook = WebhookReceiver(refuse=lambda _d, _seen: True)
    settings = make_settings(sqlite_url, notify_webhook_url=hook.url)
    try:
        async with running_app(settings) as client:
            ids = [(await client.post("/api/help-requests", json=request_body())).json()["id"] for _ in range(5)]

            async def console_done() -> bool:
                rows = (await client.get("/api/notifications")).json()
                console = [r for r in rows if r["sink"] == "console" and r["request_id"] in ids]
                return len(console) == 5 and all(r["status"] == "delivered" for r in console)

            await eventually(console_done)
            await eventually(lambda: len(hook.deliveries) >= 10, timeout=5)
            rows = (await client.get("/api/notifications", params={"status": "pending"})).json()
            webhook_rows = [r for r in rows if r["sink"] == "webhook"]
            assert len(webhook_rows) == 5
            assert all(r["attempts"] >= 1 and r["last_error"] == "DeliveryFailed: HTTP 503" for r in webhook_rows)
    finally:
        hook.close()


async def test_an_event_failing_past_its_lifetime_is_marked_dead_and_shown(sqlite_url: str) -> None:
    hook = WebhookReceiver(refuse=lambda _d, _seen: True)
    settings = make_settings(sqlite_url, notify_webhook_url=hook.url, notify_dead_after_seconds=0.5)
    try:
        async with running_app(settings) as client:
            req = (await client.post("/api/help-requests", json=request_body())).json()

            async def dead() -> list:
                return (await client.get("/api/notifications", params={"status": "dead"})).json()

            [row] = await eventually(dead, timeout=5)
            assert row["request_id"] == req["id"] and row["sink"] == "webhook"
            detail = (await client.get(f"/api/help-requests/{req['id']}")).json()
            assert any(
                h["message"].startswith("Gave up on help_request.created via webhook") for h in detail["history"]
            )
            metrics = (await client.get("/metrics")).text
            assert 'hitl_notification_attempts_total{outcome="dead",sink="webhook"}' in metrics
    finally:
        hook.close()


def test_retry_policy_backs_off_exponentially_then_gives_up() -> None:
    policy = RetryPolicy(base_seconds=2, max_seconds=300, dead_after=timedelta(days=1))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    delays = [
        (policy.next_attempt(n, now=start, first_written=start) - start).total_seconds()  # type: ignore[operator]
        for n in range(1, 12)
    ]
    assert delays[:5] == [2, 4, 8, 16, 32]
    assert delays[-1] == 300 and max(delays) == 300
    assert policy.next_attempt(3, now=start + timedelta(days=1), first_written=start) is None


@pytest.mark.parametrize("base", [0, 6])
def test_retry_base_setting_is_bounded(base: float, sqlite_url: str) -> None:
    with pytest.raises(ValueError):
        make_settings(sqlite_url, notify_retry_base_seconds=base)


async def test_a_dripping_receiver_holds_up_only_its_own_event_and_only_until_the_deadline(sqlite_url: str) -> None:
    first: list[str] = []

    def drip(d) -> float:  # type: ignore[no-untyped-def]
        first.append(first[0] if first else d.event_id)
        return 30.0 if d.event_id == first[0] else 0.0  # 30 s of one byte every 0.25 s

    hook = WebhookReceiver(drip=drip)
    settings = make_settings(sqlite_url, notify_webhook_url=hook.url, notify_timeout_seconds=1.0)
    try:
        async with running_app(settings) as client:
            slow = (await client.post("/api/help-requests", json=request_body(question="Do you do perms?"))).json()
            await eventually(lambda: hook.deliveries, timeout=5)
            others = [
                (
                    await client.post("/api/help-requests", json=request_body(question=f"Is parking free on day {i}?"))
                ).json()
                for i in range(10)
            ]

            async def others_delivered() -> bool:
                delivered = {d.body["request"]["id"] for d in hook.accepted() if d.event_id != first[0]}
                return all(o["id"] in delivered for o in others)

            await eventually(others_delivered, timeout=4)

            async def slow_send_cut_off() -> list:
                rows = (await client.get("/api/notifications", params={"status": "pending"})).json()
                return [r for r in rows if r["request_id"] == slow["id"] and r["sink"] == "webhook" and r["last_error"]]

            [cut] = await eventually(slow_send_cut_off, timeout=4)
            assert "within 1 s" in cut["last_error"]
    finally:
        hook.close()


async def test_timestamped_signature_covers_time_and_body(sqlite_url: str) -> None:
    import time

    hook = WebhookReceiver()
    settings = make_settings(sqlite_url, notify_webhook_url=hook.url, notify_webhook_secret=SECRET)
    try:
        async with running_app(settings) as client:
            await client.post("/api/help-requests", json=request_body())
            [d] = await eventually(lambda: hook.accepted(), timeout=5)
    finally:
        hook.close()
    fields = dict(part.split("=", 1) for part in d.timestamped.split(","))
    assert abs(int(fields["t"]) - time.time()) < 30
    expected = hmac.new(SECRET.encode(), fields["t"].encode() + b"." + d.raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert valid_signature(d.raw, d.signature)  # the older header stays, unchanged


async def test_a_caller_who_gave_no_name_is_greeted_without_one(client: httpx.AsyncClient) -> None:
    for name, hello in (("Phone caller", "Hi, this is"), ("Ana", "Hi Ana, this is")):
        rid = (await client.post("/api/help-requests", json=request_body(customer_name=name))).json()["id"]
        await client.post(f"/api/help-requests/{rid}/response", json={"answer": "Yes, balayage is $220."})
        sent = (await client.get("/api/notifications", params={"limit": 500})).json()
        [message] = [n["message"] for n in sent if n["request_id"] == rid and n["type"] == "help_request.resolved"]
        assert message.startswith(hello) and "Phone caller" not in message
