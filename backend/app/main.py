"""FastAPI entry point: wires settings, database, services and background workers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import lru_cache

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.body_limit import MAX_BODY_BYTES, BodySizeLimit
from app.api.console import mount_console
from app.api.db_faults import DatabaseFaults
from app.api.deps import Services, auth_is_on
from app.api.loopback import LoopbackOnly
from app.api.rate_limit import TokenBucket
from app.api.routes import routers
from app.config import Settings, get_settings
from app.db import Database
from app.logs import configure_logging
from app.phones import e164
from app.services.changes import Changes
from app.services.errors import Conflict, InvalidTransition, NotFound
from app.services.kb.embeddings import Embedder, load_embedder
from app.services.kb.judge import AnswerJudge, load_judge
from app.services.kb.lexicon import load_lexicon
from app.services.kb.service import KnowledgeBase
from app.services.kb.verifier import LLMVerifier, OpenAICompatibleJudge
from app.services.live.feed import ChangeFeed
from app.services.live.relay import PostgresChangeRelay
from app.services.loops import WakeableLoop, stop_loops
from app.services.outbox.alerts import EmailSink, SlackSink
from app.services.outbox.deliveries import OutboxView
from app.services.outbox.delivery import RetryPolicy, build_workers
from app.services.outbox.events import Outbox
from app.services.outbox.sinks import ConsoleSink, Sink, WebhookSink
from app.services.outbox.sms import OnCallSmsSink, SmsSink
from app.services.requests.expiry import ExpirySweeper
from app.services.requests.follow_up import LiveFollowUp
from app.services.requests.lifecycle import HelpRequestService
from app.services.requests.reminders import ReminderLoop, Reminders
from app.services.sms.acknowledgement import Acknowledgements
from app.services.sms.inbound import SmsInbox
from app.services.stats import Overview
from app.services.supervisors import SupervisorAccounts

log = logging.getLogger(__name__)


def build_sms_sink(settings: Settings, db: Database) -> SmsSink | None:
    sid, token = settings.twilio_account_sid, settings.twilio_auth_token
    if not (settings.sms_enabled and sid and token):
        return None
    return SmsSink(
        db=db,
        account_sid=sid,
        auth_token=token.get_secret_value(),
        sender=settings.twilio_from,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        api_base_url=settings.twilio_api_base_url,
        region=settings.sms_default_region,
        salon_name=settings.salon_name,
        # A sender ID ("MapleShear") is no number to call.
        salon_phone=settings.salon_phone or e164(settings.twilio_from, settings.sms_default_region),
        timeout=settings.notify_timeout_seconds,
    )


def build_sinks(settings: Settings, db: Database) -> list[Sink]:
    sinks: list[Sink] = [ConsoleSink()]
    if settings.notify_webhook_url:
        sinks.append(
            WebhookSink(
                settings.notify_webhook_url, settings.notify_webhook_secret, timeout=settings.notify_timeout_seconds
            )
        )
    if settings.slack_webhook_url:
        sinks.append(SlackSink(settings.slack_webhook_url, timeout=settings.notify_timeout_seconds))
    if settings.smtp_host and settings.alert_email_from:
        sinks.append(
            EmailSink(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                starttls=settings.smtp_starttls,
                sender=settings.alert_email_from,
                to=settings.alert_email_recipients,
                salon_name=settings.salon_name,
                timeout=settings.notify_timeout_seconds,
            )
        )
    if sms := build_sms_sink(settings, db):
        sinks.append(sms)
        if settings.sms_on_call:  # the settings refuse a number that is none
            sinks.append(OnCallSmsSink(sms, e164(settings.sms_on_call, settings.sms_default_region) or ""))
    return sinks


@lru_cache(maxsize=1)
def shared_embedder() -> Embedder | None:
    """The model is ~90 MB of weights: loaded once per process, shared by every app instance."""
    return load_embedder()


@lru_cache(maxsize=1)
def shared_judge() -> AnswerJudge | None:
    return load_judge()


def build_llm_chooser(settings: Settings) -> OpenAICompatibleJudge | None:
    if not settings.llm_base_url:
        return None
    return OpenAICompatibleJudge(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=settings.llm_model,
        timeout=settings.llm_timeout_seconds,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    db = Database(settings.database_url)
    await db.migrate()
    llm = build_llm_chooser(settings)
    changes = Changes()
    kb = KnowledgeBase(
        db,
        lexicon=load_lexicon(settings.kb_lexicon_file),
        embedder=shared_embedder(),
        judge=shared_judge(),
        verifier=LLMVerifier(llm) if llm else None,
        changes=changes,
    )
    await kb.load_seed(settings.kb_seed_file)
    await kb.backfill_embeddings()
    await kb.sync()

    sinks = build_sinks(settings, db)
    texting = any(isinstance(sink, SmsSink) for sink in sinks)
    outbox = Outbox(sinks=sinks, salon_name=settings.salon_name)
    timeout = timedelta(seconds=settings.request_timeout_seconds)
    reminders = Reminders(
        db=db,
        outbox=outbox,
        changes=changes,
        timeout=timeout,
        before_timeout=timedelta(seconds=settings.remind_before_timeout_seconds),
    )
    help_requests = HelpRequestService(
        db=db,
        kb=kb,
        outbox=outbox,
        follow_up=LiveFollowUp(db=db, changes=changes),
        reminders=reminders,
        changes=changes,
        timeout=timeout,
        merge_duplicates=settings.merge_duplicates,
        acknowledgements=Acknowledgements(outbox=outbox, region=settings.sms_default_region) if texting else None,
    )
    app.state.sms_inbox = (
        SmsInbox(
            db=db,
            kb=kb,
            help_requests=help_requests,
            outbox=outbox,
            changes=changes,
            region=settings.sms_default_region,
        )
        if texting
        else None
    )
    sweeper = ExpirySweeper(help_requests, changes)
    reminder_loop = ReminderLoop(reminders)
    changes.subscribe(reminder_loop.changed)
    deliverers = build_workers(
        db,
        sinks,
        RetryPolicy(
            base_seconds=settings.notify_retry_base_seconds,
            max_seconds=settings.notify_retry_max_seconds,
            dead_after=timedelta(seconds=settings.notify_dead_after_seconds),
        ),
        changes,
    )
    loops: list[WakeableLoop] = [sweeper, reminder_loop, *deliverers]
    feed = ChangeFeed()
    changes.subscribe(lambda change: feed.publish(change.subject, change.id))

    app.state.db = db
    app.state.services = Services(
        help_requests=help_requests,
        kb=kb,
        outbox=OutboxView(db),
        overview=Overview(db),
        feed=feed,
        supervisors=SupervisorAccounts(db, admin_name=settings.supervisor_name),
    )
    tasks = [asyncio.create_task(loop.run(), name=type(loop).__name__) for loop in loops]
    relay = None if db.is_sqlite else PostgresChangeRelay(settings.database_url, feed)
    relay_task = asyncio.create_task(relay.run(), name="PostgresChangeRelay") if relay else None
    app.state.change_relay = relay
    log.info(
        "serving with %s; request timeout %ss; sinks: %s; auth %s; KB search %s (%d entries)%s",
        db.engine.url.render_as_string(hide_password=True),
        settings.request_timeout_seconds,
        ", ".join(s.name for s in sinks),
        "on" if await auth_is_on(app) else "off (loopback only)",
        kb.mode,
        len(kb.index),
        ", LLM verifier on" if llm else "",
    )
    try:
        yield
    finally:
        if relay_task is not None:
            relay_task.cancel()
            await asyncio.gather(relay_task, return_exceptions=True)
        await stop_loops(loops, tasks)
        try:
            await asyncio.wait_for(asyncio.gather(*(d.drain() for d in deliverers)), timeout=5)
        except TimeoutError:
            log.warning("notification sends still under way at shutdown; they will be retried")
        for sink in sinks:
            if isinstance(sink, WebhookSink | SlackSink | SmsSink):
                await sink.aclose()
        if llm:
            await llm.aclose()
        await db.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format)
    app = FastAPI(
        title="Frontdesk HITL",
        summary="Human-in-the-loop backend for an AI salon receptionist",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.agent_rate = TokenBucket(settings.agent_rate_per_second, 2 * settings.agent_rate_per_second)
    app.add_middleware(DatabaseFaults)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    if settings.supervisor_token is None:
        app.add_middleware(LoopbackOnly)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    for router in routers:
        app.include_router(router)
    mount_console(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        # ASCII-escaped: a lone surrogate echoed back from the input must not break the encoder.
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True, default=str)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI could not parse the body (bad UTF-8, nesting too deep)
            return JSONResponse({"detail": f"malformed request body: {exc.detail}"}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def _clash(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(InvalidTransition)
    async def _conflict(_: Request, exc: InvalidTransition) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "current": exc.current}, status_code=409)

    return app


app = create_app()
