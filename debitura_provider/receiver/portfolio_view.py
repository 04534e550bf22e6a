"""The "Debitura" page and the "Referral report" tab, served by the plugin's FastAPI app (``/debitura/ui``).

On Airflow 3.1+ the plugin puts the page in the navigation and the tab on every DAG run
(``external_views``); on 3.0 they are the same URLs, opened directly. Every route needs a logged-in
Airflow user (the JWT cookie or bearer token Airflow's own API takes) whom the auth manager lets read
the connection (the page) or the DAG run (the report); anonymous requests get 401. Charts are inline
SVG drawn here: nothing is loaded from elsewhere.
"""

from __future__ import annotations

import html
import inspect
import json
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from debitura_provider.api import endpoints
from debitura_provider.api.models import Case
from debitura_provider.api.ratelimit import RateLimits
from debitura_provider.api.watch.scan import normalize_event
from debitura_provider.assets import DEBITURA_PAYMENTS
from debitura_provider.links import WATCHED_CASES_PATH
from debitura_provider.receiver import inbox
from debitura_provider.receiver.portfolio_data import (
    RECEIVER_HEALTH,
    Portfolio,
    PortfolioCache,
    Totals,
)

UI_PATH = "/debitura/ui"
DEFAULT_CONN_ID = "debitura_default"
REPORT_TASK_ID = "write_report"
"""The referral DAG's task whose return value is the object-storage URL of the run's report."""


def load_portfolio(conn_id: str) -> tuple[list[Case], str, int, RateLimits]:
    """Every case the connection's managing partner referred: one ``GET /managed-cases`` per 100 cases."""
    from airflow.models.connection import Connection

    from debitura_provider.api.client import DebituraClient
    from debitura_provider.hooks.debitura import ClientSettings

    settings = ClientSettings.from_connection(Connection.get_connection_from_secrets(conn_id))
    cases: list[Case] = []
    sent = 0
    with DebituraClient(**settings.client_kwargs()) as client:
        page = 1
        while True:
            result = client.send(endpoints.list_managed_cases(page=page, page_size=endpoints.MAX_PAGE_SIZE))
            sent += 1
            cases.extend(result.cases)
            info = result.page
            if not result.cases or info.current_page >= info.total_pages or info.response_count < info.page_size:
                break
            page += 1
    return cases, settings.portal_url, sent, settings.rate_limits


CACHE = PortfolioCache(load_portfolio)
"""One cache per API server process, shared by every viewer of every page."""


async def airflow_user(request: Request) -> Any:
    """The logged-in Airflow user of this request, as Airflow's own API finds it: a bearer token, else
    the UI's JWT cookie, checked by the auth manager. None or an invalid one: 401 or 403."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    token = credentials if scheme.lower() == "bearer" and credentials else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    if not token:
        raise HTTPException(401, "Not authenticated: log in to Airflow first", {"WWW-Authenticate": "Bearer"})
    try:
        user = get_auth_manager().get_user_from_token(token)
        return await user if inspect.isawaitable(user) else user  # a coroutine from Airflow 3.1
    except Exception:  # expired or invalid (the JWT library's errors): as Airflow's API answers them
        raise HTTPException(401, "Not authenticated: the token is invalid or expired") from None


async def connection_reader(request: Request, conn_id: str = Query(DEFAULT_CONN_ID)) -> str:
    """The connection id, once the auth manager lets the logged-in user read that connection."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    user = await airflow_user(request)
    if not get_auth_manager().is_authorized_connection(
        method="GET", details=ConnectionDetails(conn_id=conn_id), user=user
    ):
        raise HTTPException(403, f"Forbidden: you may not read connection {conn_id!r}")
    return conn_id


async def dag_run_reader(request: Request, dag_id: str = Query(...), run_id: str = Query(...)) -> tuple[str, str]:
    """The DAG run, once the auth manager lets the logged-in user read that DAG's runs."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    user = await airflow_user(request)
    if not get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    ):
        raise HTTPException(403, f"Forbidden: you may not read the runs of {dag_id!r}")
    return dag_id, run_id


ConnectionReader = Annotated[str, Depends(connection_reader)]
DagRunReader = Annotated[tuple[str, str], Depends(dag_run_reader)]


def create_ui_app() -> FastAPI:
    """The page's app; Airflow's API server mounts it at :data:`UI_PATH` (see the plugin)."""
    app = FastAPI(title="Debitura", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    async def portfolio_page(conn_id: ConnectionReader) -> HTMLResponse:
        portfolio = await anyio.to_thread.run_sync(CACHE.get, conn_id)
        payments, health = await anyio.to_thread.run_sync(_recorded)
        return HTMLResponse(render_page(portfolio, payments, health, CACHE))

    @app.get("/data.json")
    async def portfolio_data(conn_id: ConnectionReader) -> dict[str, Any]:
        """The page's figures as JSON (the same cache), for scripts and tests."""
        portfolio = await anyio.to_thread.run_sync(CACHE.get, conn_id)
        return figures(portfolio)

    @app.get(WATCHED_CASES_PATH.removeprefix(UI_PATH), response_class=HTMLResponse)
    async def watched_cases(
        conn_id: ConnectionReader,
        run: DagRunReader,
        task_id: str = Query(...),
        map_index: int = Query(-1),
    ) -> HTMLResponse:
        """A sensor's watched cases (its rendered ``case_ids``), each linked to the portal."""
        ids = await anyio.to_thread.run_sync(watched_ids, *run, task_id, map_index)
        portfolio = await anyio.to_thread.run_sync(CACHE.get, conn_id)
        return HTMLResponse(render_watched(portfolio, ids, task_id))

    @app.get("/report", response_class=HTMLResponse)
    async def referral_report(run: DagRunReader) -> HTMLResponse:
        return HTMLResponse(await anyio.to_thread.run_sync(read_report, *run))

    return app


def figures(portfolio: Portfolio) -> dict[str, Any]:
    """What the page shows, as JSON (amounts as decimal strings)."""

    def table(totals: dict[tuple[str, str], Totals]) -> list[dict[str, Any]]:
        return [
            {"key": key, "currency": currency, "cases": t.cases, "referred": str(t.referred),
             "collected": str(t.collected), "outstanding": str(t.outstanding)}
            for (key, currency), t in totals.items()
        ]  # fmt: skip

    return {
        "conn_id": portfolio.conn_id,
        "fetched_at": portfolio.fetched_at.isoformat(),
        "list_requests": portfolio.list_requests,
        "error": portfolio.error,
        "cases": len(portfolio.cases),
        "by_lifecycle": dict(sorted(portfolio.by_lifecycle().items())),
        "by_currency": table(portfolio.totals(lambda c: "all")),
        "by_client": table(portfolio.totals(lambda c: c["creditor"])),
        "by_month": table(portfolio.totals(lambda c: c["month"])),
        "needing_agency": sorted(c["id"] for c in portfolio.needing_agency()),
    }


def _recorded() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Recent payments from the ``debitura_payments`` asset events, and the inbox's state (no request to Debitura)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.timestamp, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == DEBITURA_PAYMENTS.name)
            .order_by(AssetEvent.timestamp.desc())
            .limit(20)
        ).all()
        inbox.ensure_table(session.get_bind().engine)
        table = inbox.INBOX
        total, backlog, last = session.execute(
            select(
                func.count(),
                func.count().filter(table.c.recorded_at.is_(None)),
                func.max(table.c.received_at),
            ).select_from(table)
        ).one()
    payments = []
    for recorded_at, extra in rows:
        event = normalize_event(extra or {})
        payments.append({"recorded_at": recorded_at, "type": event["type"], **event["data"]})
    return payments, {"deliveries": total, "backlog": backlog, "last_delivery": last}


def watched_ids(dag_id: str, run_id: str, task_id: str, map_index: int) -> list[str]:
    """The case ids a sensor rendered (its ``case_ids`` template field), as Airflow stored them."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.utils.session import create_session

    from debitura_provider.coercion import as_id_list

    with create_session() as session:
        fields = session.scalar(
            select(Rendered.rendered_fields).where(
                Rendered.dag_id == dag_id,
                Rendered.run_id == run_id,
                Rendered.task_id == task_id,
                Rendered.map_index == map_index,
            )
        )
    value = (fields or {}).get("case_ids")
    return as_id_list(value, "case_ids") if value else []


def render_watched(portfolio: Portfolio, ids: list[str], task_id: str) -> str:
    known = {c["id"]: c for c in portfolio.cases}
    rows = "".join(
        f"<tr><td>{_case_link(i, known[i]['reference'], {i: known[i]['url']}) if i in known else _e(i)}</td>"
        f"<td>{_e(known[i]['lifecycle'] if i in known else 'not in the last refresh')}</td></tr>"
        for i in ids
    )
    body = (
        f"<h1>Cases watched by <code>{_e(task_id)}</code> ({len(ids)})</h1>"
        f'<p class="muted">Lifecycles as of {_when(portfolio.fetched_at)}.</p>'
        f"<table><tr><th>Case</th><th>Lifecycle</th></tr>{rows}</table>"
        if ids
        else "<p>This task has no rendered case ids yet.</p>"
    )
    return _document("Watched cases", body)


def read_report(dag_id: str, run_id: str) -> str:
    """The run's report, read from the URL its ``write_report`` task returned (object storage or a file)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from debitura_provider.compat import ObjectStoragePath

    with create_session() as session:
        value = session.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.task_id == REPORT_TASK_ID,
                XComModel.key == "return_value",
            )
        )
    if isinstance(value, str) and value.startswith('"'):
        value = json.loads(value)
    if not isinstance(value, str) or not value:
        return _document(
            "Referral report",
            f"<p>This run of <code>{_e(dag_id)}</code> has no report: only the referral DAG's "
            f"<code>{REPORT_TASK_ID}</code> task writes one, once it has run.</p>",
        )
    try:
        return ObjectStoragePath(value).read_text()
    except OSError as exc:
        return _document("Referral report", f"<p>The report at <code>{_e(value)}</code> cannot be read: {_e(exc)}</p>")


# ---- HTML ---------------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2rem;color:#1a202c;background:#fff}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.4rem 0 .4rem}
table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #cbd5e0;padding:.2rem .5rem;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#4a5568}.warn{color:#9b2c2c}
.grid{display:flex;flex-wrap:wrap;gap:2rem}section{min-width:22rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _document(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def bar_chart(values: Iterable[tuple[str, Decimal | int]], label: str) -> str:
    """A horizontal bar chart as inline SVG (one bar per value), each bar labelled as the tables write it."""
    items = list(values)
    if not items:
        return '<p class="muted">Nothing yet.</p>'
    top = float(max(v for _, v in items)) or 1.0
    height = 22 * len(items) + 4
    bars = "".join(
        f'<text x="0" y="{22 * i + 16}" font-size="12">{_e(name)}</text>'
        f'<rect x="190" y="{22 * i + 4}" width="{max(1.0, 260 * float(v) / top):.1f}" height="16" fill="#2b6cb0"/>'
        f'<text x="{196 + 260 * float(v) / top:.1f}" y="{22 * i + 16}" font-size="12">{_figure(v)}</text>'
        for i, (name, v) in enumerate(items)
    )
    return f'<svg role="img" aria-label="{_e(label)}" width="520" height="{height}">{bars}</svg>'


def _figure(value: Decimal | int) -> str:
    """An amount with two decimals and a count as it is, as the tables write them."""
    return f"{value:,.2f}" if isinstance(value, Decimal) else f"{value:,}"


def _totals_table(totals: dict[tuple[str, str], Totals], heading: str | None) -> str:
    """One row per (key, currency); without a ``heading`` the key column is left out (totals per currency)."""
    if not totals:
        return '<p class="muted">No cases.</p>'
    rows = "".join(
        "<tr>"
        + ("" if heading is None else f"<td>{_e(key)}</td>")
        + f"<td>{_e(cur)}</td><td class=n>{t.cases}</td><td class=n>{_figure(t.referred)}</td>"
        f"<td class=n>{_figure(t.collected)}</td><td class=n>{_figure(t.outstanding)}</td></tr>"
        for (key, cur), t in totals.items()
    )
    first = "" if heading is None else f"<th>{_e(heading)}</th>"
    return (
        f"<table><tr>{first}<th>Currency</th><th class=n>Cases</th><th class=n>Referred</th>"
        f"<th class=n>Collected</th><th class=n>Outstanding</th></tr>{rows}</table>"
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def render_page(
    portfolio: Portfolio, payments: list[dict[str, Any]], health: dict[str, Any], cache: PortfolioCache
) -> str:
    """The whole page; the figures are those of ``portfolio`` (shared cache) and of what Airflow recorded."""
    now = datetime.now(timezone.utc)
    age = int((now - portfolio.fetched_at).total_seconds())
    urls = {c["id"]: c["url"] for c in portfolio.cases}
    parts = [
        "<h1>Debitura portfolio</h1>",
        f'<p class="muted" id="freshness">Connection <code>{_e(portfolio.conn_id)}</code>: '
        f"{len(portfolio.cases)} referred cases, figures read from Debitura at {_when(portfolio.fetched_at)} "
        f"({age} s ago, {portfolio.list_requests} list request(s)); refreshed at most every "
        f"{cache.refresh_seconds:g} s for all viewers.</p>",
    ]
    if portfolio.error:
        parts.append(f'<p class="warn">The last refresh failed ({_e(portfolio.error)}); older figures shown.</p>')

    lifecycle = sorted(portfolio.by_lifecycle().items())
    by_currency = portfolio.totals(lambda c: "all")
    parts.append('<div class="grid"><section><h2>By lifecycle</h2>')
    parts.append(bar_chart(lifecycle, "cases by lifecycle"))
    parts.append("</section><section><h2>Collected and outstanding</h2>")
    chart = [(f"{cur} {what}", getattr(t, what)) for (_, cur), t in by_currency.items()
             for what in ("collected", "outstanding")]  # fmt: skip
    parts.append(bar_chart(chart, "collected and outstanding per currency"))
    parts.append("</section></div>")
    parts.append("<h2>Per currency</h2>" + _totals_table(by_currency, None))
    parts.append("<h2>Per client</h2>" + _totals_table(portfolio.totals(lambda c: c["creditor"]), "Client"))
    parts.append("<h2>Per month referred</h2>" + _totals_table(portfolio.totals(lambda c: c["month"]), "Month"))

    needing = portfolio.needing_agency()
    parts.append(f'<h2 id="needs-agency">Cases that need the agency ({len(needing)})</h2>')
    if needing:
        rows = "".join(
            f'<tr><td><a href="{_e(c["url"])}" target="_blank" rel="noopener">{_e(c["reference"] or c["id"])}</a>'
            f"</td><td>{_e(c['creditor'])}</td><td>{_e(c['lifecycle'])}</td><td>{_e(c['close_code'] or '')}</td>"
            f"<td class=n>{c['outstanding']:,.2f} {_e(c['currency'])}</td></tr>"
            for c in needing
        )
        parts.append(
            "<table><tr><th>Case</th><th>Client</th><th>Lifecycle</th><th>Close code</th>"
            f"<th class=n>Outstanding</th></tr>{rows}</table>"
        )
    else:
        parts.append('<p class="muted">None.</p>')

    parts.append(f'<h2 id="payments">Recent payments ({len(payments)})</h2>')
    if payments:
        rows = "".join(
            f"<tr><td>{_e(_when(p['recorded_at']))}</td><td>{_e(p['type'])}</td>"
            f"<td>{_case_link(p.get('caseId'), p.get('reference'), urls)}</td>"
            f"<td class=n>{_e(p.get('amount', ''))} {_e(p.get('currency', ''))}</td>"
            f"<td class=n>{_e(p.get('remainder', ''))}</td></tr>"
            for p in payments
        )
        parts.append(
            "<p class=muted>As recorded on the <code>debitura_payments</code> asset by the receiver or the scan.</p>"
            "<table><tr><th>Recorded</th><th>Event</th><th>Case</th><th class=n>Amount</th>"
            f"<th class=n>Remainder</th></tr>{rows}</table>"
        )
    else:
        parts.append('<p class="muted">No payment recorded yet.</p>')

    parts.append('<h2 id="receiver">Webhook receiver</h2>')
    parts.append(
        f"<p>Last delivery: {_e(_when(health['last_delivery']))}; {health['deliveries']} accepted in the inbox, "
        f"{health['backlog']} waiting to be recorded as asset events.</p>"
    )
    refused = sorted(RECEIVER_HEALTH.counts.items())
    parts.append(
        f"<p>Refused since this API server started ({_when(RECEIVER_HEALTH.since)}): "
        + (", ".join(f"{n} &times; {_e(reason)}" for reason, n in refused) if refused else "none")
        + ".</p>"
    )

    parts.append('<h2 id="rate-budget">Rate budget</h2>')
    parts.append(_rate_budget(portfolio, cache))
    return _document("Debitura portfolio", "".join(parts))


def _case_link(case_id: Any, reference: Any, urls: dict[str, str]) -> str:
    if not case_id:
        return ""
    url = urls.get(str(case_id))
    text = _e(reference or case_id)
    return f'<a href="{_e(url)}" target="_blank" rel="noopener">{text}</a>' if url else text


def _rate_budget(portfolio: Portfolio, cache: PortfolioCache) -> str:
    limits = portfolio.limits
    log = cache.requests.get(portfolio.conn_id)
    now = time.monotonic()
    windows = [("minute", 60.0, limits.per_minute if limits else None),
               ("hour", 3600.0, limits.per_hour if limits else None),
               ("day", 86400.0, limits.per_day if limits else None)]  # fmt: skip
    rows = "".join(
        f"<tr><td>{name}</td><td class=n>{log.within(span, now) if log else 0}</td>"
        f"<td class=n>{limit if limit is not None else 'no limit'}</td>"
        f"<td class=n>{_share(log.within(span, now) if log else 0, limit)}</td></tr>"
        for name, span, limit in windows
    )
    return (
        "<p class=muted>This page's own requests against the key's limits (the connection's "
        "<code>rate_limit_per_minute</code>); the key's other users (workers, triggerers) are not counted here.</p>"
        f"<table><tr><th>Window</th><th class=n>Requests</th><th class=n>Key limit</th><th class=n>Used</th></tr>"
        f"{rows}</table>"
    )


def _share(used: int, limit: int | None) -> str:
    return "-" if not limit else f"{Decimal(100 * used) / limit:.2f} %"
