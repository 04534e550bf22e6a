"""Human approval before referral (Airflow 3.1+): the batch waits in the referral run until a person
approves it in Airflow's UI, then the referral goes on (``DEBITURA_APPROVAL_THRESHOLD=0`` here)."""

from __future__ import annotations

from typing import Any

import pytest

from debitura_provider.compat import supports
from tests.ui.test_airflow_ui import REFERRAL, quote, screenshot

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.approves_referral,
    pytest.mark.skipif(not supports("hitl"), reason="HITL operators need Airflow 3.1"),
]

APPROVAL_TASK = "approve_referral"


def _waiting_approval(airflow_ui: Any) -> dict[str, Any]:
    for run in airflow_ui.api(f"dags/{REFERRAL}/dagRuns")["dag_runs"]:
        ti = airflow_ui.api(f"dags/{REFERRAL}/dagRuns/{quote(run['dag_run_id'])}/taskInstances/{APPROVAL_TASK}")
        if ti["state"] == "deferred":
            return run
    return {}


def test_a_batch_approved_in_the_ui_is_referred(airflow_ui: Any, page: Any) -> None:
    run = airflow_ui.wait_for("a referral batch awaiting approval", lambda: _waiting_approval(airflow_ui), 480)
    run_path = f"dags/{REFERRAL}/dagRuns/{quote(run['dag_run_id'])}"
    assert airflow_ui.api(f"{run_path}/taskInstances/refer_invoices")["state"] in (None, "none", "scheduled")

    page.goto(
        f"{airflow_ui.url}/dags/{REFERRAL}/runs/{quote(run['dag_run_id'])}/tasks/{APPROVAL_TASK}/required_actions"
    )
    approve = page.get_by_role("button", name="Approve")
    approve.wait_for()
    screenshot(page, "approval.png")
    approve.click()

    def referred() -> bool:
        state = airflow_ui.api(f"{run_path}/taskInstances/refer_invoices")["state"]
        return state == "success"

    airflow_ui.wait_for("the approved batch to be referred", referred, timeout=300)
    decision = airflow_ui.api(f"{run_path}/taskInstances/{APPROVAL_TASK}/xcomEntries/return_value")["value"]
    assert decision["chosen_options"] == ["Approve"]
