"""Runs the real LiveKit worker (`python -m app.livekit_worker ...`) with the one part no test
machine has replaced: the WebRTC room. Each call's room is a stand-in holding a phone caller; the
caller hangs up when the file `<STAND_IN_CALLS>/<room>.hangup` appears, and the room then closes
as LiveKit closes an emptied room. `<room>.connected` appears when the agent joins.

The worker's call processes are forked from a server that imports this module again (as
`__mp_main__`), so the stand-in is in place there too."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

from livekit import rtc

CALLS = Path(os.environ["STAND_IN_CALLS"])


class StandInRoom(rtc.EventEmitter[str]):
    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        super().__init__()
        self._info = create_autospec(rtc.room.proto_room.RoomInfo, instance=True)
        self.local_participant = create_autospec(rtc.LocalParticipant, instance=True)
        self.local_participant.sid, self.local_participant.identity = "PA_agent", "agent"
        self.local_participant.track_publications = {}
        caller = create_autospec(rtc.RemoteParticipant, instance=True)
        caller.identity, caller.sid, caller.name = "sip_+14155550123", "PA_caller", "Phone +14155550123"
        caller.kind = rtc.ParticipantKind.PARTICIPANT_KIND_SIP
        caller.state = rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
        caller.attributes = {"sip.phoneNumber": "+14155550123"}
        caller.track_publications = {}
        self._caller = caller
        self.remote_participants: dict[str, Any] = {}
        self.connection_state = rtc.ConnectionState.CONN_DISCONNECTED
        self.metadata, self.departure_timeout, self.empty_timeout = "", 0, 0

    @property
    def name(self) -> str:
        return self._info.name

    async def sid(self) -> str:
        return "RM_stand_in"

    def isconnected(self) -> bool:
        return self.connection_state == rtc.ConnectionState.CONN_CONNECTED

    def register_text_stream_handler(self, *_args: Any) -> None: ...
    def unregister_text_stream_handler(self, *_args: Any) -> None: ...
    def register_byte_stream_handler(self, *_args: Any) -> None: ...
    def unregister_byte_stream_handler(self, *_args: Any) -> None: ...

    async def connect(self, *_args: Any, **_kwargs: Any) -> None:
        self.connection_state = rtc.ConnectionState.CONN_CONNECTED
        self.remote_participants = {self._caller.identity: self._caller}
        (CALLS / f"{self.name}.connected").touch()
        self._hang_up = asyncio.get_running_loop().create_task(self._hang_up_when_told())

    async def disconnect(self) -> None:
        self.connection_state = rtc.ConnectionState.CONN_DISCONNECTED

    async def _hang_up_when_told(self) -> None:
        # The test signals from another process; a file is the plainest wire for that.
        while not (CALLS / f"{self.name}.hangup").exists():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        self.remote_participants = {}
        self.emit("participant_disconnected", self._caller)
        await asyncio.sleep(0.2)
        self.connection_state = rtc.ConnectionState.CONN_DISCONNECTED
        self.emit("disconnected", rtc.DisconnectReason.ROOM_DELETED)


rtc.Room = StandInRoom  # type: ignore[misc,assignment]

if __name__ == "__main__":
    from app.livekit_worker import main

    sys.exit(main(sys.argv[1:]))
