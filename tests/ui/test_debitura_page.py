"""The plugin's "Debitura" page, its report tab and the connection Edit form, in a real Airflow and Chromium.

The page's figures are checked against the sandbox read here, independently, through the API; the
screenshots are the ones docs/how-to/monitor-in-the-ui.md shows.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

from debitura_provider.api import UNLIMITED, DebituraClient
from debitura_provider.api.models.enums import Lifecycle
from tests.ui.test_airflow_ui import CONNECTION, REFERRAL, _finished_referral_run, quote, screenshot

pytestmark = pytest.mark.timeout(900)

PAGE = "/debitura/ui/"


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_page_is_refused_without_a_logged_in_user(airflow_ui: Any) -> None:
    for path in (PAGE, f"{PAGE}data.json", f"{PAGE}report?dag_id={REFERRAL}&run_id=x"):
        assert _status(f"{airflow_ui.url}{path}") == 401, path
        assert _status(f"{airflow_ui.url}{path}", {"Authorization": "Bearer not-a-token"}) == 401, path
    viewer = {"Authorization": f"Bearer {airflow_ui.login('viewer')}"}  # logged in, may not read connections
    assert _status(f"{airflow_ui.url}{PAGE}", viewer) == 403
    assert _status(f"{airflow_ui.url}{PAGE}data.json", viewer) == 403
    # the admin's 200 on the page is checked after the referral (a visit now would cache its figures for a minute)
    admin = {"Authorization": f"Bearer {airflow_ui.token}"}
    assert _status(f"{airflow_ui.url}{PAGE}report?dag_id={REFERRAL}&run_id=x", admin) == 200
    # the webhook endpoint stays public and signed: no signature, 401 from the receiver itself
    request = urllib.request.Request(f"{airflow_ui.url}/debitura/webhooks", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
        assert "signature" in json.loads(exc.read())["message"].lower()


def _api_figures(airflow_ui: Any) -> tuple[list[Any], dict[tuple[str, str], tuple[int, Decimal]]]:
    """The managed cases and (client, currency) -> (cases, referred), read from the sandbox's API here."""
    with DebituraClient(airflow_ui.api_key, airflow_ui.sandbox_url, rate_limits=UNLIMITED) as client:
        cases = list(client.iter_managed_cases())
    per_client: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for case in cases:
        key = ((case.creditor.company_name if case.creditor else None) or "unknown client", case.currency or "?")
        count, referred = per_client.get(key, (0, Decimal(0)))
        per_client[key] = (count + 1, referred + case.gross_amount)
    return cases, per_client


@pytest.mark.after_referral
def test_the_page_shows_the_portfolio_of_the_sandbox_for_a_logged_in_user(airflow_ui: Any, page: Any) -> None:
    run = airflow_ui.wait_for("a finished referral run", lambda: _finished_referral_run(airflow_ui), timeout=480)
    referred_at = airflow_ui.api(f"dags/{REFERRAL}/dagRuns/{quote(run['dag_run_id'])}/taskInstances/refer_invoices")
    page.goto(f"{airflow_ui.url}/plugin/debitura")  # the nav entry (Airflow 3.1+): the page in an iframe
    page.get_by_role("link", name="Debitura").first.wait_for()  # in the navigation
    frame = page.frame_locator("iframe").first
    frame.locator("#freshness").wait_for()

    response = page.request.get(f"{airflow_ui.url}{PAGE}data.json")  # the same cache, as the logged-in user
    assert response.ok, response.status
    figures = response.json()
    assert figures["error"] is None
    assert figures["fetched_at"] >= referred_at["end_date"], "the page's figures predate the referral"
    cases, per_client = _api_figures(airflow_ui)
    assert figures["cases"] == len(cases) > 0
    assert figures["list_requests"] == max(1, -(-len(cases) // 100))  # one list request per 100 cases
    shown = {(r["key"], r["currency"]): (r["cases"], Decimal(r["referred"])) for r in figures["by_client"]}
    assert shown == per_client
    assert sum(figures["by_lifecycle"].values()) == len(cases)
    assert set(figures["by_lifecycle"]) <= {m.value for m in Lifecycle}

    text = frame.locator("body").inner_text()
    assert f"{len(cases)} referred cases" in text
    for heading in ("By lifecycle", "Per client", "Per month referred", "Recent payments", "Webhook receiver"):
        assert heading in text, heading
    assert _shown_per_client(frame) == per_client  # the table as the browser shows it
    assert frame.locator("svg").count() >= 2
    links = frame.locator("a[href*='/cases/']")
    assert links.count() > 0
    for i in range(links.count()):
        assert links.nth(i).get_attribute("href").startswith(f"{airflow_ui.portal_url}/cases/")
    screenshot(page, "debitura-page.png")
    whole = page.context.new_page()  # the page alone, at its own URL, every section of it
    try:
        whole.goto(f"{airflow_ui.url}{PAGE}")
        whole.locator("#rate-budget").wait_for()
        screenshot(whole, "debitura-page-full.png", full_page=True)
    finally:
        whole.close()


def _shown_per_client(frame: Any) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """The "Per client" table of the page: (client, currency) -> (cases, referred)."""
    rows = frame.locator("h2:text-is('Per client') + table tr:has(td)")
    shown = {}
    for i in range(rows.count()):
        client, currency, cases, referred, *_ = rows.nth(i).locator("td").all_inner_texts()
        shown[(client, currency)] = (int(cases), Decimal(referred.replace(",", "")))
    return shown


@pytest.mark.after_referral
def test_the_report_tab_shows_the_runs_report(airflow_ui: Any, page: Any) -> None:
    run = airflow_ui.wait_for("a finished referral run", lambda: _finished_referral_run(airflow_ui), timeout=480)
    run_id = run["dag_run_id"]
    run_path = f"dags/{REFERRAL}/dagRuns/{quote(run_id)}"
    report_url = airflow_ui.api(f"{run_path}/taskInstances/write_report/xcomEntries/return_value")["value"]

    page.goto(f"{airflow_ui.url}/dags/{REFERRAL}/runs/{quote(run_id)}")
    page.get_by_role("tab", name=re.compile("Referral report")).or_(
        page.get_by_role("link", name=re.compile("Referral report"))
    ).first.click()
    frame = page.frame_locator("iframe").first
    frame.locator("svg").first.wait_for()
    screenshot(page, "referral-report-tab.png", full_page=True)
    body = frame.locator("body").inner_text()
    from debitura_provider.compat import ObjectStoragePath

    expected = ObjectStoragePath(report_url).read_text()
    assert run_id in expected
    assert run_id in body


EDITED = {
    "timeout": "45",
    "max_attempts": "3",
    "rate_limit_per_minute": "1500",
    "rate_limit_processes": "8",
    "portal_url": "https://partner.debitura.com",
    "webhook_secret": "edited-in-the-form-4242",
}
"""What the Edit test types into each extra field (``verify_tls`` is switched off)."""


def test_the_connection_edit_form_shows_and_saves_every_field(airflow_ui: Any, page: Any) -> None:
    """Every extra field of ``debitura_default`` can be changed in the Edit form, and Save stores it (issue 13).

    Only the metadata DB's copy changes: the running tasks and the page read ``AIRFLOW_CONN_DEBITURA_DEFAULT``,
    which the secrets backend looks up first.
    """
    fields = CONNECTION["conn-fields"]
    assert set(EDITED) | {"verify_tls"} == set(fields)
    page.set_viewport_size({"width": 1400, "height": 1700})
    page.goto(f"{airflow_ui.url}/connections")
    row = page.get_by_role("row").filter(has_text="debitura_default")
    row.wait_for()
    row.get_by_role("button", name=re.compile("edit", re.I)).click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=host]").wait_for()
    dialog.get_by_text("Extra Fields", exact=True).click()
    for name, field in fields.items():
        dialog.get_by_text(field["label"], exact=True).wait_for()
        assert dialog.locator(f"[name=element_{name}]").count() == 1, name
    before = _stored("debitura_default", airflow_ui)
    for name, value in EDITED.items():
        dialog.locator(f"input[name=element_{name}]").fill(value)
    verify_tls = dialog.locator("[name=element_verify_tls]")
    assert verify_tls.is_checked()
    dialog.get_by_text(fields["verify_tls"]["label"], exact=True).click()
    assert not verify_tls.is_checked()
    screenshot(dialog, "connection-edit-form.png")
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")

    after = _stored("debitura_default", airflow_ui)
    extra = json.loads(after["extra"])
    expected = {name: fields[name]["schema"]["type"][0] for name in EDITED}
    typed = {"number": float, "integer": int, "string": str}
    assert extra == {**{name: typed[kind](EDITED[name]) for name, kind in expected.items()}, "verify_tls": False}
    assert after["password"] == before["password"] == airflow_ui.api_key  # the masked key was kept, not replaced
    assert after["host"] == before["host"]


def _stored(conn_id: str, airflow_ui: Any) -> dict[str, Any]:
    """The connection as the metadata DB holds it, decrypted (``airflow connections export``: the REST API masks)."""
    from local_airflow import airflow  # scripts/, on the path through the fixture

    path = airflow_ui.home / "connections-export.json"
    try:
        airflow(["connections", "export", str(path)], {}, airflow_ui.home / "launcher.log")
        return dict(json.loads(path.read_text())[conn_id])
    finally:
        path.unlink(missing_ok=True)
