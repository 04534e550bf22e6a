"""Human approval before referral (Airflow 3.1+): the batch waits in the referral run until a person
approves it in Airflow's UI, then the referral goes on (``DEBITURA_APPROVAL_THRESHOLD=0`` here).

The run is found waiting through Airflow's Human-in-the-loop API (``hitlDetails`` without a
response), not through the task's state: an ``ApprovalOperator`` waits ``deferred`` on Airflow 3.1
and 3.2 but ``awaiting_input`` from 3.3, where no trigger is involved.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from debitura_provider.compat import supports
from tests.ui.test_airflow_ui import REFERRAL, quote, screenshot

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.approves_referral,
    pytest.mark.skipif(not supports("hitl"), reason="HITL operators need Airflow 3.1"),
]

APPROVAL_TASK = "approve_referral"
WAITING = ("deferred", "awaiting_input")
"""The states of a task waiting for a person: before Airflow 3.3, and from 3.3."""


def _pending_approval(airflow_ui: Any) -> dict[str, Any]:
    """The referral's Required Action that nobody has answered yet, once its task waits for it."""
    found = airflow_ui.api(f"dags/{REFERRAL}/dagRuns/~/hitlDetails?task_id={APPROVAL_TASK}&response_received=false")
    waiting = [d for d in found["hitl_details"] if d["task_instance"]["state"] in WAITING]
    return waiting[0] if waiting else {}


def test_a_batch_approved_in_the_ui_is_referred(airflow_ui: Any, page: Any) -> None:
    detail = airflow_ui.wait_for("a referral batch awaiting approval", lambda: _pending_approval(airflow_ui), 480)
    run_id = detail["task_instance"]["dag_run_id"]
    run_path = f"dags/{REFERRAL}/dagRuns/{quote(run_id)}"
    assert airflow_ui.api(f"{run_path}/taskInstances/refer_invoices")["state"] in (None, "none", "scheduled")

    page.goto(f"{airflow_ui.url}/dags/{REFERRAL}/runs/{quote(run_id)}/tasks/{APPROVAL_TASK}/required_actions")
    page.get_by_text(detail["subject"]).first.wait_for()
    approve = page.get_by_role("button", name="Approve", exact=True)
    # both answers open without typing a comment (a required field would keep them disabled)
    expect(approve).to_be_enabled()
    expect(page.get_by_role("button", name="Reject", exact=True)).to_be_enabled()
    screenshot(page, "approval.png")
    approve.click()

    def answered() -> dict[str, Any]:
        found = airflow_ui.api(f"{run_path}/taskInstances/{APPROVAL_TASK}/-1/hitlDetails")
        return found if found["response_received"] else {}

    response = airflow_ui.wait_for("the UI's response to reach Airflow", answered, timeout=60)
    assert response["chosen_options"] == ["Approve"]
    assert response["responded_by_user"]["name"] == "admin"

    def referring() -> bool:  # the approval task resumed and finished, and the bulk referral started
        states = {
            task: airflow_ui.api(f"{run_path}/taskInstances/{task}")["state"]
            for task in (APPROVAL_TASK, "refer_invoices")
        }
        assert states[APPROVAL_TASK] not in ("failed", "upstream_failed", "skipped"), states
        assert states["refer_invoices"] not in ("failed", "upstream_failed", "skipped"), states
        return states[APPROVAL_TASK] == "success" and states["refer_invoices"] in ("queued", "running", "success")

    airflow_ui.wait_for("the approved batch's referral to start", referring, timeout=300)
    decision = airflow_ui.api(f"{run_path}/taskInstances/{APPROVAL_TASK}/xcomEntries/return_value")["value"]
    assert decision["chosen_options"] == ["Approve"]
