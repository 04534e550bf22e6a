"""A faithful local stand-in for Debitura's Collection Partner API (managed cases included).

    from debitura_provider.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(port=0)) as server:
        server.base_url, server.api_key, server.partner_keys, server.portal_url

Or from a shell: ``debitura-sandbox --port 8642 --api-key sandbox-key``. See docs/sandbox.md.

Rooms: :mod:`.edge` (the HTTP edge: app, routers, dependencies, error handlers, middleware),
:mod:`.domain` (records, store, clock, money, lifecycle, payments, simulation, events) and
:mod:`.delivery` (webhook delivery); :mod:`.config` holds the settings and :mod:`.server` runs it all.

The sandbox needs the ``[sandbox]`` extra (FastAPI, uvicorn). Importing this package does not:
``SandboxServer`` is imported on first use, so the settings (and the CLI's message naming the extra)
work without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from debitura_provider.sandbox.config import (
    DEFAULT_PARTNERS,
    FaultSpec,
    PartnerSpec,
    RateLimitSettings,
    SandboxConfig,
)

if TYPE_CHECKING:
    from debitura_provider.sandbox.server import SandboxServer

EXTRA = "pip install 'airflow-provider-debitura[sandbox]'"
"""How to install what the sandbox needs to serve."""

__all__ = [
    "DEFAULT_PARTNERS",
    "EXTRA",
    "FaultSpec",
    "PartnerSpec",
    "RateLimitSettings",
    "SandboxConfig",
    "SandboxServer",
]


def __getattr__(name: str) -> Any:
    if name == "SandboxServer":
        from debitura_provider.sandbox.server import SandboxServer

        return SandboxServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
