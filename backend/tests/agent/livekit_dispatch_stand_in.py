"""A stand-in for the LiveKit server's side of the worker protocol: the `/agent` WebSocket a worker
registers on, is offered jobs through (availability request, then assignment) and reports its
status to. Protobuf messages from `livekit-protocol`, as the real server sends them.

Serves from its own thread and event loop, so a test can drive it while a worker process runs."""

from __future__ import annotations

import asyncio
import itertools
import threading

from aiohttp import WSMsgType, web
from livekit.protocol import agent, models


class DispatchStandIn:
    def __init__(self, agent_name: str) -> None:
        self.agent_name = agent_name
        self.registered = threading.Event()
        self.statuses: list[int] = []  # every UpdateWorkerStatus the worker sent, in order
        self._ws: web.WebSocketResponse | None = None
        self._answers: dict[str, asyncio.Future[agent.AvailabilityResponse]] = {}
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        started.wait(10)
        self.url = f"ws://127.0.0.1:{self._port}"

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/agent", self._worker_connection)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self._port = runner.addresses[0][1]
        started.set()
        self._loop.run_forever()

    async def _worker_connection(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        async for frame in ws:
            if frame.type != WSMsgType.BINARY:
                continue
            msg = agent.WorkerMessage()
            msg.ParseFromString(frame.data)
            kind = msg.WhichOneof("message")
            if kind == "register":
                reply = agent.ServerMessage()
                reply.register.worker_id = "AW_stand_in"
                await ws.send_bytes(reply.SerializeToString())
                self.registered.set()
            elif kind == "update_worker":
                self.statuses.append(msg.update_worker.status)
            elif kind == "availability":
                self._answers[msg.availability.job_id].set_result(msg.availability)
            elif kind == "ping":
                pong = agent.ServerMessage()
                pong.pong.last_timestamp = msg.ping.timestamp
                await ws.send_bytes(pong.SerializeToString())
        return ws

    async def _offer(self, room: str) -> bool:
        assert self._ws is not None, "no worker has connected"
        n = next(self._ids)
        job = agent.Job(
            id=f"AJ_{n}",
            room=models.Room(sid=f"RM_{n}", name=room),
            type=agent.JobType.JT_ROOM,
            agent_name=self.agent_name,
        )
        answer = self._answers[job.id] = self._loop.create_future()
        offer = agent.ServerMessage()
        offer.availability.job.CopyFrom(job)
        await self._ws.send_bytes(offer.SerializeToString())
        accepted = (await asyncio.wait_for(answer, 20)).available
        if accepted:
            assignment = agent.ServerMessage()
            assignment.assignment.job.CopyFrom(job)
            assignment.assignment.url = self.url
            assignment.assignment.token = "stand-in"
            await self._ws.send_bytes(assignment.SerializeToString())
        return accepted

    def offer_call(self, room: str) -> bool:
        """Offer the worker a call in `room`; whether it took it."""
        return asyncio.run_coroutine_threadsafe(self._offer(room), self._loop).result(30)
