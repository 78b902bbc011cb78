"""Stand-ins for what the operator commands talk to: LiveKit's server API and an OpenAI-compatible
model list. Real HTTP servers on loopback, each serving from its own thread."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import Message
from livekit.api import TokenVerifier
from livekit.protocol.models import ListUpdate
from livekit.protocol.room import ListRoomsRequest, ListRoomsResponse
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    ListSIPDispatchRuleRequest,
    ListSIPDispatchRuleResponse,
    ListSIPInboundTrunkRequest,
    ListSIPInboundTrunkResponse,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    UpdateSIPDispatchRuleRequest,
    UpdateSIPInboundTrunkRequest,
)

from tests.support import StandInHandler


class TwirpFault(Exception):
    """A Twirp error: the HTTP status and the JSON body `livekit-api` reads its code and message from."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _apply(target: Any, update: ListUpdate) -> None:
    """LiveKit's ListUpdate on a repeated field: set (or clear) first, then add and remove."""
    if update.set or update.clear:
        del target[:]
        target.extend(update.set)
    target.extend(v for v in update.add if v not in target)
    for value in update.remove:
        if value in target:
            target.remove(value)


class LiveKitStandIn:
    """LiveKit's server API as `livekit-api` speaks it: POST /twirp/livekit.<Service>/<Method> with a
    protobuf body, a JWT signed with the API secret (and the grant each method needs), errors as
    Twirp JSON. Keeps inbound trunks and dispatch rules; `calls` lists every method called.

    Dispatch rules are created the current way only (`dispatch_rule`, not the deprecated top-level
    fields), which is what the setup command sends."""

    def __init__(self, api_key: str = "APIstandin", api_secret: str = "stand-in-secret-of-32-characters") -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.trunks: dict[str, SIPInboundTrunkInfo] = {}
        self.rules: dict[str, SIPDispatchRuleInfo] = {}
        self.calls: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        verifier = TokenVerifier(api_key, api_secret)
        methods: dict[str, tuple[type[Message], Callable[[Any], Message], str]] = {
            "livekit.RoomService/ListRooms": (ListRoomsRequest, lambda _req: ListRoomsResponse(), "room_list"),
            "livekit.SIP/ListSIPInboundTrunk": (ListSIPInboundTrunkRequest, self._list_trunks, "sip_admin"),
            "livekit.SIP/CreateSIPInboundTrunk": (CreateSIPInboundTrunkRequest, self._create_trunk, "sip_admin"),
            "livekit.SIP/UpdateSIPInboundTrunk": (UpdateSIPInboundTrunkRequest, self._update_trunk, "sip_admin"),
            "livekit.SIP/ListSIPDispatchRule": (ListSIPDispatchRuleRequest, self._list_rules, "sip_admin"),
            "livekit.SIP/CreateSIPDispatchRule": (CreateSIPDispatchRuleRequest, self._create_rule, "sip_admin"),
            "livekit.SIP/UpdateSIPDispatchRule": (UpdateSIPDispatchRuleRequest, self._update_rule, "sip_admin"),
        }
        standin = self

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    route = methods.get(self.path.removeprefix("/twirp/"))
                    if route is None:
                        raise TwirpFault(404, "bad_route", f"no method at {self.path}")
                    request_type, handle, grant = route
                    standin._authorize(verifier, self.headers.get("Authorization", ""), grant)
                    if self.headers.get("Content-Type") != "application/protobuf":
                        raise TwirpFault(400, "malformed", "expected a protobuf body")
                    with standin._lock:
                        standin.calls.append(self.path.rsplit("/", 1)[1])
                        reply = handle(request_type.FromString(body)).SerializeToString()
                except TwirpFault as fault:
                    self._send(fault.status, "application/json", json.dumps({"code": fault.code, "msg": fault.msg}))
                    return
                self._send(200, "application/protobuf", reply)

            def _send(self, status: int, content_type: str, payload: str | bytes) -> None:
                self.reply(status, payload.encode() if isinstance(payload, str) else payload, content_type)

        self.server = _serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith("List")]

    @staticmethod
    def _authorize(verifier: TokenVerifier, header: str, grant: str) -> None:
        try:
            claims = verifier.verify(header.removeprefix("Bearer "))
        except Exception as exc:  # any bad token is the same refusal to the client
            raise TwirpFault(401, "unauthenticated", f"invalid token: {exc}") from exc
        allowed = claims.sip and claims.sip.admin if grant == "sip_admin" else claims.video and claims.video.room_list
        if not allowed:
            raise TwirpFault(403, "permission_denied", f"the token lacks the {grant} grant")

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    def _list_trunks(self, req: ListSIPInboundTrunkRequest) -> ListSIPInboundTrunkResponse:
        items = [
            t
            for t in self.trunks.values()
            if (not req.trunk_ids or t.sip_trunk_id in req.trunk_ids)
            and (not req.numbers or set(req.numbers) & set(t.numbers))
        ]
        return ListSIPInboundTrunkResponse(items=items)

    def _create_trunk(self, req: CreateSIPInboundTrunkRequest) -> SIPInboundTrunkInfo:
        trunk = SIPInboundTrunkInfo()
        trunk.CopyFrom(req.trunk)
        trunk.sip_trunk_id = self._new_id("ST")
        self.trunks[trunk.sip_trunk_id] = trunk
        return trunk

    def _update_trunk(self, req: UpdateSIPInboundTrunkRequest) -> SIPInboundTrunkInfo:
        trunk = self.trunks.get(req.sip_trunk_id)
        if trunk is None:
            raise TwirpFault(404, "not_found", f"no inbound trunk {req.sip_trunk_id}")
        if req.HasField("replace"):
            trunk.CopyFrom(req.replace)
            trunk.sip_trunk_id = req.sip_trunk_id
            return trunk
        for field in ("numbers", "allowed_addresses", "allowed_numbers"):
            if req.update.HasField(field):
                _apply(getattr(trunk, field), getattr(req.update, field))
        for field in ("name", "metadata", "auth_username", "auth_password"):
            if req.update.HasField(field):
                setattr(trunk, field, getattr(req.update, field))
        return trunk

    def _list_rules(self, req: ListSIPDispatchRuleRequest) -> ListSIPDispatchRuleResponse:
        items = [
            r
            for r in self.rules.values()
            if (not req.dispatch_rule_ids or r.sip_dispatch_rule_id in req.dispatch_rule_ids)
            and (not req.trunk_ids or set(req.trunk_ids) & set(r.trunk_ids))
        ]
        return ListSIPDispatchRuleResponse(items=items)

    def _create_rule(self, req: CreateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        if not req.HasField("dispatch_rule"):
            raise TwirpFault(400, "invalid_argument", "the stand-in takes dispatch_rule only")
        rule = SIPDispatchRuleInfo()
        rule.CopyFrom(req.dispatch_rule)
        rule.sip_dispatch_rule_id = self._new_id("SDR")
        self.rules[rule.sip_dispatch_rule_id] = rule
        return rule

    def _update_rule(self, req: UpdateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        rule = self.rules.get(req.sip_dispatch_rule_id)
        if rule is None:
            raise TwirpFault(404, "not_found", f"no dispatch rule {req.sip_dispatch_rule_id}")
        if not req.HasField("replace"):
            raise TwirpFault(400, "invalid_argument", "the stand-in takes replace only")
        rule.CopyFrom(req.replace)
        rule.sip_dispatch_rule_id = req.sip_dispatch_rule_id
        return rule


class ModelsStandIn:
    """An OpenAI-compatible server's `GET /v1/models` behind a bearer key (LLM or speech)."""

    def __init__(self, key: str, models: list[str]) -> None:
        self.requests: list[tuple[str, str | None]] = []
        standin = self

        class Handler(StandInHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                standin.requests.append((self.path, auth))
                if self.path != "/v1/models":
                    status, body = 404, {"error": {"message": "not found"}}
                elif auth != f"Bearer {key}":
                    status, body = 401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
                else:
                    status, body = 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in models]}
                self.reply(status, json.dumps(body).encode())

        self.server = _serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
