"""The referral run as a self-contained HTML page: what was referred, collected and is still outstanding.

Amounts are summed per currency (they cannot be added across currencies) and drawn as inline SVG
bars, by client and by lifecycle, so the page needs no script, stylesheet or network to open.
Every text from the CRM or from Debitura is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow.sdk import ObjectStoragePath
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection  # not in sqlalchemy's top level before 2.0 (Airflow 3.0 has 1.4)

from agency_crm.artifacts import artifacts_base, write_artifact
from agency_crm.ledger import batch_record_keys, money

SERIES = (
    ("referred", "Referred", "#3f51b5"),
    ("collected", "Collected", "#2e7d32"),
    ("outstanding", "Outstanding", "#ef6c00"),
)
"""The three bars of each group: attribute of :class:`Totals`, legend label, colour."""

WITH_CASE = ("created", "existing")
REPORTS = "reports"
"""The artifacts folder of the run reports."""

_ROWS = text(
    "SELECT l.*, c.company_name AS client FROM referral_ledger l "
    "LEFT JOIN invoices i ON i.invoice_id = l.record_key "
    "LEFT JOIN clients c ON c.client_id = i.client_id "
    "WHERE l.record_key IN :keys ORDER BY l.record_key"
).bindparams(bindparam("keys", expanding=True))


@dataclass
class Totals:
    """Money of one group of cases, in one currency: exact sums, to the cent."""

    referred: Decimal = Decimal(0)
    collected: Decimal = Decimal(0)
    outstanding: Decimal = Decimal(0)


def load_rows(connection: Connection, record_keys: list[str]) -> list[dict[str, Any]]:
    """Ledger rows of the records, each with its client's name."""
    if not record_keys:
        return []
    return [dict(row) for row in connection.execute(_ROWS, {"keys": record_keys}).mappings()]


def _amount(value: Any) -> Decimal:
    return money(value) or Decimal(0)


def totals_by(rows: Iterable[Mapping[str, Any]], key: str) -> dict[str, dict[str, Totals]]:
    """``{currency: {group: Totals}}`` over the rows that have a case, grouped by ``row[key]``."""
    result: dict[str, dict[str, Totals]] = {}
    for row in rows:
        if row.get("status") not in WITH_CASE:
            continue
        group = str(row.get(key) or "unknown")
        totals = result.setdefault(str(row.get("currency") or "?"), {}).setdefault(group, Totals())
        referred, collected = _amount(row.get("amount_referred")), _amount(row.get("amount_collected"))
        totals.referred += referred
        totals.collected += collected
        remainder = row.get("remainder")
        totals.outstanding += _amount(remainder) if remainder is not None else max(referred - collected, Decimal(0))
    return result


def bar_chart(title: str, groups: Mapping[str, Totals], currency: str) -> str:
    """Horizontal grouped bars, one group per key, scaled to the largest amount in the chart."""
    label_width, bar_width, bar, gap = 160, 250, 11, 12
    group_height = bar * len(SERIES) + gap
    height = 34 + group_height * len(groups)
    largest = max((getattr(t, name) for t in groups.values() for name, _, _ in SERIES), default=Decimal(0)) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{label_width + bar_width + 90}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        f"<title>{html.escape(title)} ({html.escape(currency)})</title>",
        f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>',
    ]
    for index, (group, totals) in enumerate(groups.items()):
        top = 28 + index * group_height
        parts.append(f'<text x="0" y="{top + bar * 2}">{html.escape(group[:32])}</text>')
        for row, (name, label, colour) in enumerate(SERIES):
            value = getattr(totals, name)
            y = top + row * bar
            width = round(bar_width * value / largest, 1)
            parts.append(
                f'<rect x="{label_width}" y="{y}" width="{width}" height="{bar - 2}" fill="{colour}">'
                f"<title>{label}: {value:,.2f} {html.escape(currency)}</title></rect>"
                f'<text x="{label_width + width + 4}" y="{y + bar - 3}" font-size="10">{value:,.2f}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    items = "".join(f'<span><i style="background:{colour}"></i>{label}</span>' for _, label, colour in SERIES)
    return f'<p class="legend">{items}</p>'


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _money(value: Any) -> str:
    return "" if value is None else f"{money(value):,.2f}"


def render_report(
    rows: list[Mapping[str, Any]], *, title: str, subtitle: str, case_url: Callable[[str], str] | None = None
) -> str:
    """The whole page. ``case_url(case_id)`` turns case references into links to the partner portal."""
    by_client, by_lifecycle = totals_by(rows, "client"), totals_by(rows, "lifecycle")
    currencies = sorted(by_client, key=lambda c: -sum(t.referred for t in by_client[c].values()))
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[str(row.get("status"))] = statuses.get(str(row.get("status")), 0) + 1
    sections = [
        f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>",
        _table(("Outcome", "Records"), sorted(statuses.items())),
    ]
    if currencies:
        sections.append("<h2>Amounts by client and by lifecycle</h2>" + _legend())
    for currency in currencies:
        sections.append(
            f'<h3>{html.escape(currency)}</h3><div class="charts">'
            f"{bar_chart('By client', by_client[currency], currency)}"
            f"{bar_chart('By lifecycle', by_lifecycle[currency], currency)}</div>"
        )

    def reference(row: Mapping[str, Any]) -> str:
        shown = html.escape(str(row.get("case_reference") or ""))
        if case_url and row.get("case_id"):
            return f'<a href="{html.escape(case_url(str(row["case_id"])))}">{shown}</a>'
        return shown

    cases = [r for r in rows if r.get("status") in WITH_CASE]
    sections.append(
        "<h2>Cases</h2>"
        + _table(
            ("Invoice", "Client", "Case", "Lifecycle", "Currency", "Referred", "Collected", "Outstanding"),
            [
                (
                    html.escape(str(r["record_key"])),
                    html.escape(str(r.get("client") or "")),
                    reference(r),
                    html.escape(str(r.get("lifecycle") or "")),
                    html.escape(str(r.get("currency") or "")),
                    _money(r.get("amount_referred")),
                    _money(r.get("amount_collected")),
                    _money(r.get("remainder")),
                )
                for r in cases
            ],
        )
    )
    others = [r for r in rows if r.get("status") not in WITH_CASE]
    if others:
        sections.append(
            "<h2>Not referred</h2>"
            + _table(
                ("Invoice", "Client", "Outcome", "Reason"),
                [
                    [html.escape(str(r.get(k) or "")) for k in ("record_key", "client", "status", "reason")]
                    for r in others
                ],
            )
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "".join(sections)
        + "</body></html>"
    )


_STYLE = (
    "body{font-family:sans-serif;margin:24px;color:#212121}"
    "table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    ".charts{display:flex;flex-wrap:wrap;gap:24px}.legend span{margin-right:16px}"
    ".legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}"
)


def report_dir(url: str | None = None) -> ObjectStoragePath:
    """``reports/`` under the DAGs' artifact base (:mod:`agency_crm.artifacts`), on any worker's reach."""
    return artifacts_base(url) / REPORTS


def write_run_report(
    connection: Connection,
    batch_ids: list[str],
    run_id: str,
    case_url: Callable[[str], str] | None = None,
    *,
    url: str | None = None,
) -> ObjectStoragePath:
    """Render the ledger rows of the run's batches and write ``reports/<run id>.html`` under the base ``url``."""
    rows = load_rows(connection, batch_record_keys(connection, batch_ids))
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"Batches {', '.join(batch_ids) or '(none)'}; {len(rows)} records; written {when}."
    page = render_report(rows, title=f"Referral run {run_id}", subtitle=subtitle, case_url=case_url)
    return write_artifact(REPORTS, f"{run_id}.html", page, url=url)
