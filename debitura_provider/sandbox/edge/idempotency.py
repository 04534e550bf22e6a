"""``Idempotency-Key`` semantics (API-NOTES §7.3), as an ASGI middleware around the handlers.

* Same key, same body: the first terminal response is replayed verbatim (status, headers, body).
* Same key, different body: 422 ``IdempotencyConflict``.
* Same key while the first request is still being handled: 409, retry after a second.
* 400s are not stored, so a caller may fix the request and retry with the same key.
* ``POST /cases/{id}/chats`` differs, as documented: the key is scoped per body, so a different
  message with the same key posts a new message instead of conflicting.

Keys are scoped per partner and path. Stored answers are 2xx and 422 (business outcomes); they are kept
24 hours (the only retention the docs state, for chats; assumed for all) and survive a ``--state`` restart.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debitura_provider.sandbox.domain.problems import ApiProblem, api_error, business_error, invalid_field
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.domain.state import StoredResponse
from debitura_provider.sandbox.edge.asgi import read_body
from debitura_provider.sandbox.edge.errors import respond

RETENTION_SECONDS = 24 * 3600.0
MAX_KEY_LENGTH = 255
CONFLICT = "IdempotencyConflict"


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    per_body: bool  # chat semantics: a different body is a different request
    business_body: bool  # 422 as BusinessErrorResponseApiDTO (POST /managed-cases) rather than ApiErrorResponseDto


_ROUTES = (
    _Route(re.compile(r"^/managed-cases/?$"), per_body=False, business_body=True),
    _Route(re.compile(r"^/cases/[^/]+/payments/?$"), per_body=False, business_body=False),
    _Route(re.compile(r"^/ingestion-jobs/?$"), per_body=False, business_body=False),
    _Route(re.compile(r"^/cases/[^/]+/chats/?$"), per_body=True, business_body=False),
)


def _fingerprint(body: bytes) -> str:
    """Equal JSON documents match whatever their key order or spacing."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def _stored(status: int) -> bool:
    return 200 <= status < 300 or status == 422


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox
        self._in_flight: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope)
        headers = Headers(scope=scope) if route else None
        key = headers.get("idempotency-key") if headers else None
        partner = self.sandbox.store.partner_by_key(headers.get("xapikey")) if headers and key else None
        if route is None or not key or partner is None:
            await self.app(scope, receive, send)
            return
        if len(key) > MAX_KEY_LENGTH:
            await self._send(send, invalid_field("Idempotency-Key", f"must be at most {MAX_KEY_LENGTH} characters"))
            return
        body = await read_body(receive)
        fingerprint = _fingerprint(body)
        scope_key = f"{partner.id}|{scope['path']}|{key}" + (f"|{fingerprint}" if route.per_body else "")
        stored = self._lookup(scope_key)
        if stored is not None:
            if stored.fingerprint == fingerprint:
                await _replay(send, stored)
            else:
                await self._send(send, self._conflict(route))
            return
        if scope_key in self._in_flight:
            message = "A request with this Idempotency-Key is still being processed; retry after 1 second."
            problem = api_error(409, message, business=[business_error("IdempotencyRequestInProgress", message)])
            problem.headers["Retry-After"] = "1"
            await self._send(send, problem)
            return
        self._in_flight.add(scope_key)
        try:
            await self._handle(scope, body, send, scope_key, fingerprint)
        finally:
            self._in_flight.discard(scope_key)

    def _route(self, scope: Scope) -> _Route | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        return next((r for r in _ROUTES if r.pattern.match(scope["path"])), None)

    def _lookup(self, scope_key: str) -> StoredResponse | None:
        stored = self.sandbox.store.responses.get(scope_key)
        if stored is not None and self.sandbox.clock.epoch() - stored.created > RETENTION_SECONDS:
            del self.sandbox.store.responses[scope_key]
            self.sandbox.store.forget("response", scope_key)
            return None
        return stored

    @staticmethod
    def _conflict(route: _Route) -> ApiProblem:
        message = "This Idempotency-Key was already used with a different request body."
        if route.business_body:
            return ApiProblem(422, {"businessErrors": [business_error(CONFLICT, message)]})
        return api_error(422, message, business=[business_error(CONFLICT, message)])

    async def _handle(self, scope: Scope, body: bytes, send: Send, scope_key: str, fingerprint: str) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive_again() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive_again, capture)
        status = int(start.get("status", 500))
        if _stored(status):
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
            record = StoredResponse(
                fingerprint=fingerprint,
                status=status,
                headers=headers,
                body=b"".join(chunks).decode("utf-8"),
                created=self.sandbox.clock.epoch(),
            )
            self.sandbox.store.responses[scope_key] = record
            self.sandbox.store.touch(record, key=scope_key)

    @staticmethod
    async def _send(send: Send, problem: ApiProblem) -> None:
        response = respond(problem)
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


async def _replay(send: Send, stored: StoredResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body.encode("utf-8")})
