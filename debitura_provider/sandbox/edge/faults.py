"""Fault injection: the sandbox fails some requests on purpose, the way networks and servers do.

``debitura-sandbox --faults error=0.1,commit_then_timeout=0.05 --seed 7`` (or
``SandboxConfig(faults="error=0.1,...")``): each API request draws one fault kind, or none, with
these probabilities:

* ``error``: 500 or 503 before the request is handled (nothing is written);
* ``commit_then_error``: the request is handled (the write is done, an ``Idempotency-Key`` answer is
  stored), then the answer is replaced by a 500;
* ``commit_then_timeout``: the request is handled, then no answer comes: the connection is held until
  the client gives up (or until ``delay`` has passed, then dropped);
* ``reset``: the connection drops without an answer, before or after the request is handled (drawn);
* ``slow``: the request is handled only after ``delay`` seconds, past the client's timeout, so the
  late original usually meets the client's own retry;
* ``rate_limit``: a spurious 429 with the documented body and ``retryAfter``.

The draw is seeded by the sandbox seed, a fingerprint of the request (method, path, query, body,
``Idempotency-Key``) and its attempt number (how many identical requests came before it). Arrival order
plays no part, so concurrent clients meet the same faults for the same requests in every run with the
same seed, as long as they send the same requests.

Faults sit outside rate limiting and idempotency, where the network is. ``/test/*`` (the test driver)
and ``/portal`` (HTML pages, the webhook sink) are exempt, so tests can arrange and inspect cases
reliably. Each injected fault is logged (kind, method, path, attempt: never headers or bodies) and
counted in :attr:`FaultPlan.counts`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debitura_provider.sandbox.config import FaultSpec
from debitura_provider.sandbox.domain.clock import rng
from debitura_provider.sandbox.domain.problems import business_error
from debitura_provider.sandbox.edge.asgi import read_body
from debitura_provider.sandbox.edge.ratelimit import MESSAGE as RATE_LIMIT_MESSAGE

log = logging.getLogger("debitura_provider.sandbox.faults")

EXEMPT_PREFIXES = ("/test/", "/portal")
TRACKED_REQUESTS = 100_000
"""Attempt counts are kept for this many distinct requests (least recently seen forgotten first)."""


class FaultPlan:
    """Decides, deterministically, which request gets which fault; counts what it injected."""

    def __init__(self, spec: FaultSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.requests = 0
        self.active = 0
        """Faulted requests still being handled (held, sleeping, or running behind a fault)."""
        self.counts: Counter[str] = Counter()
        self._attempts: dict[str, int] = {}

    def draw(
        self, method: str, path: str, query: bytes, key: str | None, body: bytes
    ) -> tuple[str | None, random.Random]:
        """The fault for this request (None: serve it normally), and the generator its details come from."""
        digest = hashlib.sha256()
        for part in (method.encode(), path.encode(), query, (key or "").encode(), body):
            digest.update(len(part).to_bytes(8, "big") + part)
        fingerprint = digest.hexdigest()
        attempt = self._attempts.pop(fingerprint, 0)
        self._attempts[fingerprint] = attempt + 1  # re-inserted: the dict's order is least recently seen first
        if len(self._attempts) > TRACKED_REQUESTS:
            del self._attempts[next(iter(self._attempts))]
        self.requests += 1
        chance = rng(self.seed, "fault", fingerprint, attempt)
        roll = chance.random()
        if self.spec.attempts_faulted is not None and attempt >= self.spec.attempts_faulted:
            return None, chance
        for kind, rate in self.spec.rates:
            if roll < rate:
                self.counts[kind] += 1
                log.warning(
                    "Injecting fault %s into %s %s (attempt %d, request %s)",
                    kind,
                    method,
                    path,
                    attempt + 1,
                    fingerprint[:12],
                )
                return kind, chance
            roll -= rate
        return None, chance


class FaultMiddleware:
    """The ASGI side of :class:`FaultPlan`: reads the body once, then fails the request as drawn."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan
        logging.getLogger("uvicorn.error").addFilter(_not_about_dropped_answers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        key = Headers(scope=scope).get("idempotency-key")
        kind, chance = self.plan.draw(scope["method"], scope["path"], scope.get("query_string", b""), key, body)
        replay = _replaying(body, receive)
        if kind is None:
            await self.app(scope, replay, send)
            return
        self.plan.active += 1
        try:
            await self._inject(kind, chance, scope, receive, replay, send)
        finally:
            self.plan.active -= 1

    async def _inject(
        self, kind: str, chance: random.Random, scope: Scope, receive: Receive, replay: Receive, send: Send
    ) -> None:
        spec = self.plan.spec
        if kind == "error":
            status = chance.choice((500, 503))
            await _fail(send, status, "ServiceUnavailable" if status == 503 else "InternalServerError")
        elif kind == "commit_then_error":
            await self.app(scope, replay, _discard)
            await _fail(send, 500, "InternalServerError")
        elif kind == "commit_then_timeout":
            await self.app(scope, replay, _discard)
            await _pause(_disconnected(receive), spec.delay)
            await _drop(send)
        elif kind == "reset":
            if chance.random() < 0.5:  # the request got through before the connection dropped
                await self.app(scope, replay, _discard)
            await _drop(send)
        elif kind == "slow":
            if await _pause(asyncio.sleep(spec.delay), spec.delay):
                await self.app(scope, replay, send)
            else:
                await _drop(send)
        else:
            limited = {"error": "rate_limit_exceeded", "message": RATE_LIMIT_MESSAGE, "retryAfter": spec.retry_after}
            await _answer(send, 429, limited)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body over once, then listens to the connection again."""
    pending = [body]

    async def replay() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replay


async def _discard(message: Message) -> None:
    """The handler's answer goes nowhere: the client gets the fault instead."""


async def _pause(waiting: Coroutine[Any, Any, None], seconds: float) -> bool:
    """Wait for ``waiting``, at most ``seconds``; False when the server is stopping.

    uvicorn cancels the requests still running when its shutdown grace period ends. A held or slow
    request then drops its connection and ends quietly rather than as a crashed task answering 500.
    """
    try:
        await asyncio.wait_for(waiting, seconds)
    except asyncio.TimeoutError:
        pass
    except asyncio.CancelledError:
        log.info("The sandbox is stopping: dropping a held request")
        return False
    return True


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _fail(send: Send, status: int, kind: str) -> None:
    """A 5xx in the shape of the sandbox's own 500s: ``businessErrors`` only."""
    message = f"Injected fault: the sandbox answered {status} on purpose (--faults)."
    await _answer(send, status, {"businessErrors": [business_error(kind, message)]})


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    content = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def _not_about_dropped_answers(record: logging.LogRecord) -> bool:
    """uvicorn logs each answer ``reset`` cuts short as an error; the fault's own log line says why."""
    return record.getMessage() != "ASGI callable returned without completing response."


async def _drop(send: Send) -> None:
    """Start an answer and stop: the server closes the connection mid-response (ASGI cannot reset it)."""
    await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"application/json")]})
