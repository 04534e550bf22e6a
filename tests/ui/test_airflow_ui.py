"""What an agency sees in the Airflow UI: the connection form, the example DAGs, a referral run's case link.

The screenshots taken here are the ones the docs show (``docs/images``).
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from debitura_provider._provider_info import PROVIDER_INFO

# Airflow's start-up (in the first test) and a whole referral run take minutes; each wait has its own deadline.
pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("DEBITURA_UI_SCREENSHOTS", REPO / "docs" / "images"))
"""Where the screenshots the docs show are written."""
CONNECTION = PROVIDER_INFO["connection-types"][0]
REFERRAL = "debitura_referral"


def screenshot(target: Any, name: str, **kwargs: Any) -> None:
    """Save a picture for the docs, once the page's requests have settled (best effort: the UI may poll)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = getattr(target, "page", target)  # a locator knows its page
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_load_state("networkidle", timeout=10_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(SCREENSHOTS / name), **kwargs)


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def example_dag_ids() -> list[str]:
    return sorted(
        match for path in (REPO / "dags").glob("*.py") for match in re.findall(r'dag_id="(\w+)"', path.read_text())
    )


def test_connection_form_shows_the_declared_fields_with_the_key_masked(airflow_ui: Any, page: Any) -> None:
    page.goto(f"{airflow_ui.url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").fill(CONNECTION["hook-name"])
    page.keyboard.press("Enter")

    behaviour = CONNECTION["ui-field-behaviour"]
    for label in behaviour["relabeling"].values():
        assert dialog.get_by_text(label, exact=True).is_visible(), label
    for hidden in behaviour["hidden-fields"]:
        assert dialog.locator(f"[name={hidden}]").count() == 0, f"{hidden} should be hidden"
    dialog.locator("input[name=connection_id]").fill("debitura_production")
    dialog.locator("input[name=host]").fill("https://collectionpartner-api.debitura.com")
    key = dialog.locator("input[name=password]")
    key.fill("not-a-real-key-4242")
    assert key.get_attribute("type") == "password"
    assert "not-a-real-key-4242" not in dialog.inner_text()
    screenshot(dialog, "connection-form.png")

    page.set_viewport_size({"width": 1400, "height": 1500})  # room for every extra field
    dialog.get_by_text("Extra Fields", exact=True).click()
    for name, field in CONNECTION["conn-fields"].items():
        dialog.get_by_text(field["label"], exact=True).wait_for()
        if field["schema"].get("format") == "password":
            assert dialog.locator(f"input[name=element_{name}]").get_attribute("type") == "password", name
    screenshot(dialog, "connection-extra-fields.png")


def test_a_stored_connection_never_shows_its_key(airflow_ui: Any, page: Any) -> None:
    page.goto(f"{airflow_ui.url}/connections")
    row = page.get_by_role("row").filter(has_text="debitura_default")
    row.wait_for()
    row.get_by_role("button", name=re.compile("edit", re.I)).click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=host]").wait_for()
    assert dialog.locator("input[name=host]").input_value() == airflow_ui.sandbox_url
    assert dialog.locator("input[name=password]").get_attribute("type") == "password"
    assert airflow_ui.api_key not in page.content()


def test_the_example_dags_are_listed(airflow_ui: Any, page: Any) -> None:
    expected = example_dag_ids()
    airflow_ui.wait_for(
        "the DAG processor to parse the example DAGs",
        lambda: airflow_ui.dag_ids() >= set(expected),
        timeout=180,
    )
    page.goto(f"{airflow_ui.url}/dags")
    for dag_id in expected:
        page.get_by_role("link", name=dag_id, exact=True).wait_for()
    screenshot(page, "dag-list.png")


def _finished_referral_run(airflow_ui: Any) -> dict[str, Any]:
    """The first referral run, once it is done (the CRM extract starts it through its asset event)."""
    runs = airflow_ui.api(f"dags/{REFERRAL}/dagRuns")["dag_runs"]
    done = [run for run in runs if run["state"] in ("success", "failed")]
    return done[0] if done else {}


@pytest.mark.after_referral
def test_a_referral_run_links_each_paid_case_to_its_portal_page(airflow_ui: Any, page: Any) -> None:
    run = airflow_ui.wait_for("a finished referral run", lambda: _finished_referral_run(airflow_ui), timeout=480)
    assert run["state"] == "success", run
    run_path = f"dags/{REFERRAL}/dagRuns/{quote(run['dag_run_id'])}"
    paid = airflow_ui.api(f"{run_path}/taskInstances/paid_case_ids/xcomEntries/return_value")["value"]
    assert paid, "the run saw no payment"

    page.goto(f"{airflow_ui.url}/dags/{REFERRAL}/runs/{quote(run['dag_run_id'])}/tasks/fetch_timeline/mapped/0/details")
    link = page.get_by_role("link", name="Debitura case")
    link.wait_for()
    assert link.get_attribute("href") == f"{airflow_ui.portal_url}/cases/{paid[0]}"
    screenshot(page, "case-link.png")

    case_page = page.context.new_page()
    try:
        case_page.goto(link.get_attribute("href"))
        assert paid[0] in case_page.inner_text("body")
    finally:
        case_page.close()


@pytest.mark.after_referral
def test_a_referral_run_writes_its_report_and_logs_where(airflow_ui: Any, page: Any) -> None:
    run = airflow_ui.wait_for("a finished referral run", lambda: _finished_referral_run(airflow_ui), timeout=480)
    run_path = f"dags/{REFERRAL}/dagRuns/{quote(run['dag_run_id'])}"
    report_url = airflow_ui.api(f"{run_path}/taskInstances/write_report/xcomEntries/return_value")["value"]
    assert report_url.startswith("file:///")  # the default artifact store: the Airflow home
    report = Path(urllib.parse.unquote(urllib.parse.urlsplit(report_url).path))
    assert report.is_file()

    page.goto(f"{airflow_ui.url}/dags/{REFERRAL}/runs/{quote(run['dag_run_id'])}/tasks/write_report")
    page.get_by_text(f"Referral report: {report_url}").wait_for(timeout=90_000)  # the log loads last
    screenshot(page, "report-log.png")

    page.goto(report.as_uri())
    assert page.locator("svg").count() >= 2
    screenshot(page, "referral-report.png", full_page=True)
