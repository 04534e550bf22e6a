"""A minimal stand-in for Debitura's partner portal: one HTML page per case, file downloads, and a webhook sink.

Not part of the API spec (so not rate limited and not authenticated: the sandbox listens on loopback
only). The provider links a case's portal page from the Airflow UI; here it leads somewhere real.
The sink (``/portal/webhook-sink``) is a receiver for demos and quickstarts: it accepts every delivery
and lists the last ones it got, headers and body, without checking anything.
"""

from __future__ import annotations

from collections import deque
from html import escape
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from debitura_provider.sandbox.domain import money
from debitura_provider.sandbox.domain.problems import not_found
from debitura_provider.sandbox.domain.state import CaseRecord
from debitura_provider.sandbox.edge.deps import SandboxDep

router = APIRouter(prefix="/portal", include_in_schema=False)

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}h1 small{color:#666}"
)


def _page(title: str, body: str) -> HTMLResponse:
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(html)


def _table(headers: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    lines = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{lines}</table>"


@router.get("")
async def portal_index(sb: SandboxDep) -> HTMLResponse:
    cases = sorted(sb.store.cases.values(), key=lambda c: c.date_created, reverse=True)
    items = "".join(
        f"<li><a href='/portal/cases/{c.id}'>{escape(c.reference)}</a> {escape(c.debtor.get('name', ''))} "
        f"\u2013 {escape(c.lifecycle.value)}{' (test)' if c.is_test else ''}</li>"
        for c in cases
    )
    listing = items or "<li>No cases yet.</li>"
    return _page("Debitura sandbox portal", f"<h1>Debitura sandbox portal</h1><ul>{listing}</ul>")


@router.get("/cases/{id}")
async def portal_case(sb: SandboxDep, case_id: Annotated[UUID, Path(alias="id")]) -> HTMLResponse:
    case = sb.store.cases.get(case_id)
    if case is None:
        raise not_found(f"Case {case_id} not found.")
    return _page(f"Case {case.reference}", _case_html(sb.store.partners[case.collection_partner_id].name, case))


def _case_html(partner: str, case: CaseRecord) -> str:
    summary = _table(
        ("Field", "Value"),
        [
            ("Reference", case.reference),
            ("Lifecycle", case.lifecycle.value),
            ("Close code", case.close_label or "\u2013"),
            ("Debtor", case.debtor.get("name", "")),
            ("Creditor", case.creditor_name),
            ("Collection partner", partner),
            ("Amount", f"{case.gross_amount} {case.currency}"),
            ("Remainder", f"{money.remainder(case)} {case.currency}"),
            ("Test case", "yes" if case.is_test else "no"),
        ],
    )
    timeline = _table(
        ("Date", "Event", "Description"),
        [
            (e.date.strftime("%Y-%m-%d %H:%M:%S"), e.title, e.description)
            for e in sorted(case.timeline, key=lambda e: (e.date, e.seq))
        ],
    )
    paid = _table(("Date", "Amount", "Recipient"), [(p.date, p.amount, p.recipient) for p in case.live_payments])
    return (
        f"<h1>Case {escape(case.reference)} <small>{escape(str(case.id))}</small></h1>{summary}"
        f"<h2>Payments</h2>{paid}<h2>Timeline</h2>{timeline}"
    )


@router.get("/files/{id}")
async def portal_file(sb: SandboxDep, file_id: Annotated[UUID, Path(alias="id")]) -> Response:
    content = sb.store.file_contents.get(file_id)
    if content is None:
        raise not_found(f"File {file_id} not found.")
    return Response(content, media_type="application/octet-stream")


SINK_SIZE = 100


def _sink(request: Request) -> deque[dict[str, Any]]:
    state = request.app.state
    if not hasattr(state, "webhook_sink"):
        state.webhook_sink = deque(maxlen=SINK_SIZE)
    sink: deque[dict[str, Any]] = state.webhook_sink
    return sink


@router.post("/webhook-sink", status_code=204)
async def webhook_sink(request: Request) -> Response:
    body = (await request.body()).decode("utf-8", errors="replace")
    headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-debitura-")}
    _sink(request).appendleft({"headers": headers, "body": body})
    return Response(status_code=204)


@router.get("/webhook-sink")
async def webhook_sink_log(request: Request) -> list[dict[str, Any]]:
    """The last deliveries the sink got, newest first."""
    return list(_sink(request))
