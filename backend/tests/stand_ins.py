"""Local stand-ins for the supervisor alert channels: a Slack incoming webhook and an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support import StandInHandler


class SlackStandIn:
    """Answers as Slack's incoming webhooks do: a JSON object with a `text` string gets 200 `ok`,
    anything else 400 `invalid_payload`; while `down`, 503. `texts` holds what was accepted."""

    def __init__(self) -> None:
        self.down = False
        self.texts: list[str] = []
        self.refused = 0
        stand_in = self
        lock = threading.Lock()

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    text = json.loads(raw)["text"] if self.headers.get("Content-Type") == "application/json" else None
                except (ValueError, KeyError, TypeError):
                    text = None
                with lock:
                    if stand_in.down:
                        status, answer = 503, b"service_unavailable"
                        stand_in.refused += 1
                    elif not isinstance(text, str) or not text:
                        status, answer = 400, b"invalid_payload"
                    else:
                        status, answer = 200, b"ok"
                        stand_in.texts.append(text)
                self.reply(status, answer, "text/html")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def containing(self, words: str) -> list[str]:
        return [t for t in self.texts if words in t]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpStandIn:
    """An SMTP server (aiosmtpd) on 127.0.0.1, without TLS; with `username`, AUTH is required and
    only that login is accepted. `messages` holds what it took, parsed."""

    def __init__(self, *, username: str | None = None, password: str | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        stand_in = self

        class Handler:
            async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
                stand_in.envelopes.append((envelope.mail_from or "", list(envelope.rcpt_tos)))
                stand_in.messages.append(message_from_bytes(envelope.original_content or b"", policy=policy.default))  # type: ignore[arg-type]
                return "250 Message accepted for delivery"

        def authenticate(
            _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and data.login.decode() == username
                and data.password.decode() == password
            )
            return AuthResult(success=ok)

        self.port = _free_port()
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate if username else None,
            auth_required=username is not None,
            auth_require_tls=False,
        )
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()
