"""Fixtures for the sandbox's own tests: partners' HTTP clients and a local webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debitura_provider.sandbox import SandboxServer
from tests.fixtures.webhooks import serve, stop
from tests.sandbox.helpers import WORKBENCH, Inbox, client


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """The managing partner's client on the shared sandbox."""
    with client(sandbox) as c:
        yield c


@pytest.fixture
def workbench(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """The hand-driven collection partner's client on the shared sandbox."""
    with client(sandbox, sandbox.partner_keys[WORKBENCH]) as c:
        yield c


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox(url="")

    async def receive(request: Request) -> Response:
        body = await request.body()
        with box.lock:
            box.deliveries.append((dict(request.headers), body))
            status = box.statuses.pop(0) if box.statuses else 200
        return Response(status_code=status)

    server, thread, base = serve(Starlette(routes=[Route("/hook", receive, methods=["POST"])]))
    box.url = f"{base}/hook"
    try:
        yield box
    finally:
        stop(server, thread)
