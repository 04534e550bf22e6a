"""Fixtures for the sandbox's own tests: HTTP clients for the managing partner and a collection partner."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from debitura_provider.sandbox import SandboxServer
from tests.sandbox.helpers import WORKBENCH, client


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
