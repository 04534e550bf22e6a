"""The webhook endpoint: verify, queue durably, answer; Asset events are recorded in the background.

Answers: 202 accepted (queued), 200 for a redelivery or an event type no asset covers,
401 missing/bad/stale signature, 400 malformed or oversized body, 503 when the receiver is not
configured or the database cannot take the event in time (Debitura retries). Never 500, and no
answer carries the secret or a stack trace. What is queued and recorded is the envelope with only the
allow-listed fields of its ``data`` (:func:`~debitura_provider.api.personal_data.event_envelope`):
ids, lifecycle, close code and money, never the debtor's personal data or free text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from debitura_provider.api.errors import EnvelopeError, ReceiverNotConfigured, SignatureError
from debitura_provider.api.personal_data import event_envelope
from debitura_provider.api.webhooks import SIGNATURE_HEADER, parse_event, verify
from debitura_provider.assets import EVENT_ASSETS
from debitura_provider.hooks.debitura import WEBHOOK_SECRET_FIELD
from debitura_provider.receiver import inbox
from debitura_provider.receiver.portfolio_data import RECEIVER_HEALTH
from debitura_provider.receiver.recorder import Recorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiverSettings:
    """How the receiver is configured; ``from_config`` reads Airflow's ``[debitura]`` section."""

    conn_id: str = "debitura_default"
    max_body_bytes: int = 1024 * 1024
    enqueue_timeout: float = 8.0
    """Seconds the database may take to queue an event; beyond it we answer 503 inside Debitura's 10 s."""
    record_interval: float = 30.0

    @classmethod
    def from_config(cls) -> ReceiverSettings:
        from debitura_provider.compat import conf

        return cls(
            conn_id=conf.get("debitura", "webhook_conn_id", fallback=cls.conn_id),
            max_body_bytes=conf.getint("debitura", "webhook_max_body_bytes", fallback=cls.max_body_bytes),
            enqueue_timeout=conf.getfloat("debitura", "webhook_enqueue_timeout", fallback=cls.enqueue_timeout),
            record_interval=conf.getfloat("debitura", "webhook_record_interval", fallback=cls.record_interval),
        )


def read_secret(conn_id: str) -> str:
    """The signing secret from the connection's ``webhook_secret`` field, read on every delivery
    so that a re-key takes effect without restarting the API server."""
    from airflow.models.connection import Connection

    from debitura_provider.compat import AirflowNotFoundException

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        raise ReceiverNotConfigured(f"connection {conn_id!r} does not exist") from None
    secret = str(conn.extra_dejson.get(WEBHOOK_SECRET_FIELD) or "").strip()
    if not secret:
        raise ReceiverNotConfigured(f"connection {conn_id!r} has no {WEBHOOK_SECRET_FIELD} (see debitura-webhooks)")
    return secret


def _answer(status: int, message: str, **fields: str) -> JSONResponse:
    return JSONResponse({"status": status, "message": message, **fields}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or ``None`` as soon as it exceeds ``limit`` (never buffered beyond it)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: ReceiverSettings | None = None) -> FastAPI:
    """The FastAPI app that Airflow's API server mounts (see ``debitura_provider.receiver.plugin``).

    Its settings live on ``app.state.settings`` and are read per delivery and at startup.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Airflow's API server enters the lifespan of mounted FastAPI apps; leftovers are drained at once.
        recorder = Recorder(app.state.settings.record_interval)
        app.state.recorder = recorder
        recorder.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(recorder.stop)
            app.state.recorder = None

    app = FastAPI(title="Debitura webhooks", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings or ReceiverSettings.from_config()
    app.state.recorder = None

    @app.post("/")
    async def receive(request: Request) -> JSONResponse:
        try:
            answer = await _receive(request, request.app.state.settings, request.app.state.recorder)
        except Exception:
            log.exception("Debitura webhook delivery failed unexpectedly; answering 503 so Debitura retries")
            answer = _answer(503, "temporarily unable to accept the event; retry later")
        if answer.status_code >= 400:  # the "Debitura" page shows why deliveries were refused
            RECEIVER_HEALTH.rejected(answer.status_code, json.loads(bytes(answer.body))["message"])
        return answer

    return app


async def _receive(request: Request, config: ReceiverSettings, recorder: Recorder | None) -> JSONResponse:
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        return _answer(401, f"missing {SIGNATURE_HEADER} header")
    body = await _read_body(request, config.max_body_bytes)
    if body is None:
        return _answer(400, f"body larger than {config.max_body_bytes} bytes")
    try:
        secret = await anyio.to_thread.run_sync(read_secret, config.conn_id)
    except ReceiverNotConfigured as exc:
        log.error("Debitura webhook receiver is not configured: %s", exc)
        return _answer(503, "receiver not configured")
    try:
        verify(secret, body, header)
    except SignatureError as exc:
        log.warning("Debitura webhook refused: %s", exc)
        return _answer(401, str(exc))
    try:
        event = parse_event(body)
    except EnvelopeError as exc:
        return _answer(400, str(exc))
    event_id = str(event.id)
    # Only the allow-listed ids, lifecycle and money of ``data`` are queued and recorded: never debtor data.
    envelope = event_envelope(json.loads(body))
    if event.event not in EVENT_ASSETS:
        return _answer(200, f"{event.event} is not recorded as an Asset event", eventId=event_id)
    with anyio.move_on_after(config.enqueue_timeout):
        new = await anyio.to_thread.run_sync(inbox.enqueue, event_id, event.event, envelope, abandon_on_cancel=True)
        if not new:
            return _answer(200, "event already accepted", eventId=event_id)
        log.info("Debitura event %s (%s) queued", event_id, event.event)
        if recorder is not None:  # without a lifespan (no recorder) the queue waits for the next start
            recorder.nudge()
        return _answer(202, "accepted", eventId=event_id)
    log.warning("Debitura event %s not queued within %s s; answering 503", event_id, config.enqueue_timeout)
    return _answer(503, "busy; retry later", eventId=event_id)
