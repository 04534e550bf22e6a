"""The referral's approval step (Airflow 3.1+): where it sits in the DAG, and what a rejection records."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from debitura_provider.compat import supports

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _referral(monkeypatch: pytest.MonkeyPatch, threshold: str | None) -> ModuleType:
    """dags/referral.py parsed afresh with ``DEBITURA_APPROVAL_THRESHOLD`` set to ``threshold``."""
    if threshold is None:
        monkeypatch.delenv("DEBITURA_APPROVAL_THRESHOLD", raising=False)
    else:
        monkeypatch.setenv("DEBITURA_APPROVAL_THRESHOLD", threshold)
    monkeypatch.syspath_prepend(str(DAGS))
    spec = importlib.util.spec_from_file_location("referral_under_test", DAGS / "referral.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "referral_under_test", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not supports("hitl"), reason="HITL operators need Airflow 3.1")
def test_with_a_threshold_the_referral_waits_for_the_approval(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = _referral(monkeypatch, "0").debitura_referral().task_dict
    assert tasks["approve_referral"].upstream_task_ids == {"approval_needed"}
    assert tasks["refer_invoices"].upstream_task_ids == {"check_extract", "approval_needed", "approve_referral"}
    assert tasks["refer_invoices"].trigger_rule == "none_failed_min_one_success"


def test_without_a_threshold_there_is_no_approval_step(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = _referral(monkeypatch, None).debitura_referral().task_dict
    assert "approve_referral" not in tasks
    assert tasks["refer_invoices"].upstream_task_ids == {"check_extract"}


def test_a_bad_threshold_fails_the_parse_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match="DEBITURA_APPROVAL_THRESHOLD"):
        _referral(monkeypatch, "lots")


def test_a_rejection_is_recorded_as_not_approved_with_the_comment(monkeypatch: pytest.MonkeyPatch) -> None:
    refusal = _referral(monkeypatch, None)._refusal
    rejected = {"chosen_options": ["Reject"], "params_input": {"comment": "client disputes these"},
                "responded_by_user": {"id": "admin", "name": "admin"}}  # fmt: skip
    assert refusal(rejected) == "not approved by admin: client disputes these"
    assert refusal({**rejected, "params_input": {}}) == "not approved by admin"
    assert refusal({**rejected, "chosen_options": ["Approve"]}) is None
    assert refusal(None) is None  # not asked (skipped) or on Airflow 3.0
