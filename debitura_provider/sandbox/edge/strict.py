"""The ASGI side of the strict oracle (:mod:`debitura_provider.sandbox.contract`).

Each API exchange is held until it has been checked: the request body against its operation's schema,
the answer against the schema of its status. A violation is recorded and logged, and the answer is
replaced by a 418 ProblemDetails naming it, so the test that caused it fails at once. A request that
breaks the spec but that the sandbox refused (4xx) is no violation: refusing it is right.
``/portal`` is not part of the API and is not checked.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debitura_provider.sandbox.contract import VIOLATION_STATUS, VIOLATION_TYPE, Findings, Oracle, Violation
from debitura_provider.sandbox.edge.asgi import read_body

log = logging.getLogger("debitura_provider.sandbox.contract")

EXEMPT_PREFIX = "/portal"


class StrictContractMiddleware:
    def __init__(self, app: ASGIApp, oracle: Oracle, findings: Findings) -> None:
        self.app = app
        self.oracle = oracle
        self.findings = findings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        op = None if scope["type"] != "http" else self.oracle.operation(scope["method"], scope["path"])
        if op is None or scope["path"].startswith(EXEMPT_PREFIX):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        pending = [body]

        async def replay() -> Message:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await receive()

        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, replay, hold)
        if not start:
            return  # no answer at all (a fault dropped it): nothing to check or send
        status = int(start["status"])
        answer = b"".join(chunks)
        response_type = Headers(raw=start.get("headers", [])).get("content-type")
        request_type = Headers(scope=scope).get("content-type")
        self.findings.checked += 1
        found: list[Violation] = []
        if 200 <= status < 300:
            errors = self.oracle.check_request(op, request_type, body)
            if errors:
                found.append(Violation(op.method, op.path, status, "request", tuple(errors)))
        errors = self.oracle.check_response(op, status, response_type, answer)
        if errors:
            found.append(Violation(op.method, op.path, status, "response", tuple(errors)))
        if not found:
            await send(start)
            await send({"type": "http.response.body", "body": answer})
            return
        for violation in found:
            log.error("Contract violation: %s", violation)
        self.findings.violations.extend(found)
        await _replace(send, found)


async def _replace(send: Send, found: list[Violation]) -> None:
    body = {
        "type": VIOLATION_TYPE,
        "title": "The exchange breaks Debitura's OpenAPI spec (sandbox strict mode)",
        "status": VIOLATION_STATUS,
        "detail": " | ".join(str(v) for v in found),
    }
    content = json.dumps(body).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": VIOLATION_STATUS, "headers": headers})
    await send({"type": "http.response.body", "body": content})
