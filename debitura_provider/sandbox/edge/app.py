"""The FastAPI application: routers, error handlers and the middleware stack, around one :class:`Sandbox`.

Middleware, outermost first: ``edge_middleware`` (fault-injection seam: looks like the network) →
``--faults`` (:mod:`~debitura_provider.sandbox.edge.faults`) → ``--strict-spec`` oracle
(:mod:`~debitura_provider.sandbox.edge.strict`) → rate limits → ``Idempotency-Key`` →
``handler_middleware`` (seam: slow or failing handlers) → routers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from debitura_provider.sandbox.config import FaultSpec
from debitura_provider.sandbox.contract import Findings, Oracle
from debitura_provider.sandbox.domain.ingest import Ingestor
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.domain.simulation import Simulator
from debitura_provider.sandbox.edge import errors
from debitura_provider.sandbox.edge.faults import FaultMiddleware, FaultPlan
from debitura_provider.sandbox.edge.idempotency import IdempotencyMiddleware
from debitura_provider.sandbox.edge.ratelimit import RateLimitMiddleware
from debitura_provider.sandbox.edge.routers import cases, ingestion, managed_cases, partner, portal, testing, webhooks
from debitura_provider.sandbox.edge.strict import StrictContractMiddleware


def create_app(sb: Sandbox) -> FastAPI:
    """An app serving the Collection Partner API at the root, with no path prefix, like Debitura."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sb.start()
        try:
            yield
        finally:
            await sb.stop()

    app = FastAPI(
        title="Debitura Collection Partner API sandbox",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.sandbox = sb
    app.state.contract = Findings()  # what the strict oracle found: app.state.contract.violations
    app.state.simulator = Simulator(sb)
    app.state.ingestor = Ingestor(sb)
    errors.install(app)
    for module in (managed_cases, cases, partner, testing, webhooks, ingestion, portal):
        app.include_router(module.router)
    config = sb.config
    # add_middleware puts each new layer outside the previous ones: add from the inside out.
    for layer in reversed(config.handler_middleware):
        app.add_middleware(layer)
    app.add_middleware(IdempotencyMiddleware, sandbox=sb)
    if config.rate_limits:
        app.add_middleware(
            RateLimitMiddleware, limits=config.limits, is_key=lambda key: sb.store.partner_by_key(key) is not None
        )
    if config.strict_spec is not None:
        app.add_middleware(StrictContractMiddleware, oracle=Oracle(config.strict_spec), findings=app.state.contract)
    if isinstance(config.faults, FaultSpec):
        app.state.faults = FaultPlan(config.faults, config.seed)  # what was injected: app.state.faults.counts
        app.add_middleware(FaultMiddleware, plan=app.state.faults)
    for layer in reversed(config.edge_middleware):
        app.add_middleware(layer)
    return app
