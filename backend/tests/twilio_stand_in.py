"""A local stand-in for Twilio: the Messages REST API the SMS sink's client is pointed at (recording
every text asked for, with its idempotency token), and signed incoming-message webhooks."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
from twilio.request_validator import RequestValidator

from app.config import Settings
from tests.support import StandInHandler, make_settings

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "stand-in-auth-token"
SALON_NUMBER = "+14155550100"


@dataclass
class Post:
    """One POST to the Messages resource, as Twilio would have seen it."""

    to: str
    body: str
    sender: str | None
    token: str | None  # I-Twilio-Idempotency-Token
    authorized: bool
    status: int = 201


@dataclass
class TwilioStandIn:
    """Answers 201 with a message resource; `refuse` may name another status for a post (seeing the
    posts before it), and `hold` may keep a post waiting that many seconds before any answer."""

    refuse: Callable[[Post, list[Post]], int | None] = lambda _p, _seen: None
    hold: Callable[[Post], float] = lambda _p: 0.0
    posts: list[Post] = field(default_factory=list)

    def __post_init__(self) -> None:
        stand_in = self
        lock = threading.Lock()
        expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()

        class Handler(StandInHandler):
            def do_GET(self) -> None:
                # The account resource, as `python -m app doctor` reads it to check the credentials.
                if self.path != f"/2010-04-01/Accounts/{ACCOUNT_SID}.json":
                    status, payload = 404, {"code": 20404, "message": "not found"}
                elif self.headers.get("Authorization") != expected_auth:
                    status, payload = 401, {"code": 20003, "message": "Authenticate"}
                else:
                    status, payload = 200, {"sid": ACCOUNT_SID, "status": "active"}
                self.reply(status, json.dumps(payload).encode())

            def do_POST(self) -> None:
                form = dict(parse_qsl(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()))
                post = Post(
                    to=form.get("To", ""),
                    body=form.get("Body", ""),
                    sender=form.get("From"),
                    token=self.headers.get("I-Twilio-Idempotency-Token"),
                    authorized=self.headers.get("Authorization") == expected_auth,
                )
                if self.path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
                    post.status = 404
                with lock:
                    post.status = stand_in.refuse(post, list(stand_in.posts)) or post.status
                    stand_in.posts.append(post)
                time.sleep(stand_in.hold(post))
                if post.status == 201:
                    payload: dict[str, Any] = {
                        "sid": "SM" + uuid.uuid4().hex,
                        "account_sid": ACCOUNT_SID,
                        "to": post.to,
                        "from": post.sender,
                        "body": post.body,
                        "status": "queued",
                    }
                else:
                    payload = {"code": 20500, "message": "stand-in refused", "status": post.status}
                try:
                    self.reply(post.status, json.dumps(payload).encode())
                except OSError:  # the app was killed while this post was held
                    return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sent(self, to: str | None = None) -> list[Post]:
        """The texts as the provider keeps them: accepted posts, one per idempotency token."""
        seen: set[str] = set()
        kept = []
        for post in self.posts:
            if post.status != 201 or (to is not None and post.to != to) or (post.token and post.token in seen):
                continue
            if post.token:
                seen.add(post.token)
            kept.append(post)
        return kept

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sms_settings(database_url: str, stand_in: TwilioStandIn, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from": SALON_NUMBER,
        "twilio_messaging_service_sid": None,
        "twilio_api_base_url": stand_in.url,
        "sms_default_region": "US",
        "salon_phone": None,
        "public_base_url": None,
        "sms_on_call": None,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


def signed_form(url: str, form: dict[str, str], auth_token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send with this form posted to `url`."""
    return RequestValidator(auth_token).compute_signature(url, form)


async def text_in(
    client: httpx.AsyncClient,
    *,
    sender: str,
    body: str,
    message_sid: str | None = None,
    signed_as: str = "http://127.0.0.1/api/sms/inbound",
) -> httpx.Response:
    """Twilio posting a caller's text to the app, signed as Twilio signs it."""
    form = {
        "MessageSid": message_sid or "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": SALON_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }
    headers = {"X-Twilio-Signature": signed_form(signed_as, form)}
    return await client.post("/api/sms/inbound", data=form, headers=headers)
