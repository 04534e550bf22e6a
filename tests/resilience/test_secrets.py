"""No secret leaks: every example DAG runs, as ``make demo`` runs them (``airflow dags test`` in an Airflow
home of its own, each run's output in ``logs/``), with a recognisable API key and webhook secret in the
``debitura_default`` connection, then once more with a recognisable wrong key (the failure path). Neither
secret is found in the task logs, XComs, rendered template fields, exception messages, the sandbox's log
or anywhere in the Airflow home, DB bytes included.

Also: plain ``http://`` outside loopback is refused and TLS verification cannot be turned off silently,
through the connection as a DAG author configures it.
"""

from __future__ import annotations

import base64
import sqlite3
import warnings
from typing import Any
from urllib.parse import quote

import pytest

from debitura_provider.api import ConfigurationError
from debitura_provider.hooks.debitura import DebituraHook
from tests.resilience.sweep import API_KEY, WEBHOOK_SECRET, WRONG_KEY, SweptHome

pytestmark = [pytest.mark.resilience, pytest.mark.airflow]

SECRETS = {"API key": API_KEY, "wrong API key": WRONG_KEY, "webhook secret": WEBHOOK_SECRET}


def leaked_forms(secret: str) -> dict[str, bytes]:
    """The secret as text, URL-quoted and base64-encoded, and its distinctive half (a truncated leak)."""
    return {
        "as is": secret.encode(),
        "URL-quoted": quote(secret, safe="").encode(),
        "base64": base64.b64encode(secret.encode()).rstrip(b"="),
        "second half": secret[len(secret) // 2 :].encode(),
    }


def find_secrets(data: bytes) -> list[str]:
    return [
        f"{name} ({form})"
        for name, secret in SECRETS.items()
        for form, needle in leaked_forms(secret).items()
        if needle in data
    ]


@pytest.fixture(scope="module")
def secrets_run(swept_home: SweptHome) -> SweptHome:
    """The sweeps' shared run (sweep.py): a recognisable API key and webhook secret in ``debitura_default``."""
    return swept_home


def test_every_example_dag_ran(secrets_run: SweptHome) -> None:
    assert {"debitura_crm_extract", "debitura_referral", "debitura_integration_test"} <= set(secrets_run.dag_ids)
    for dag_id in secrets_run.dag_ids:
        text = (secrets_run.home / "logs" / f"{dag_id}.log").read_text(errors="replace")
        assert secrets_run.states[dag_id] == "success", text[-3000:]
        assert "[DAG TEST] starting task_id=" in text
    assert secrets_run.states["refused"] == "failed"


def test_task_logs_and_exception_messages_hold_no_secret(secrets_run: SweptHome) -> None:
    refused = (secrets_run.home / "logs" / "refused.log").read_text(errors="replace")
    assert "Task failed with exception" in refused and "401" in refused  # the failure was logged, with its reason
    for log in sorted((secrets_run.home / "logs").iterdir()):
        assert find_secrets(log.read_bytes()) == [], log.name


def test_xcoms_and_rendered_fields_hold_no_secret(secrets_run: SweptHome) -> None:
    with sqlite3.connect(secrets_run.home / "airflow.db") as db:
        xcoms = [str(v) for (v,) in db.execute("SELECT value FROM xcom")]
        rendered = [str(v) for (v,) in db.execute("SELECT rendered_fields FROM rendered_task_instance_fields")]
    assert len(xcoms) > 20 and len(rendered) > 10
    assert find_secrets("\n".join(xcoms + rendered).encode()) == []


def test_the_ledger_keeps_the_refusal_without_the_key(secrets_run: SweptHome) -> None:
    with sqlite3.connect(secrets_run.home / "crm.sqlite3") as db:
        reasons = [r for (r,) in db.execute("SELECT reason FROM referral_ledger WHERE reason IS NOT NULL")]
    assert any("401" in r for r in reasons)
    assert find_secrets("\n".join(reasons).encode()) == []


def test_the_sandbox_log_holds_no_secret(secrets_run: SweptHome) -> None:
    log = secrets_run.sandbox_log.read_bytes()
    assert b"POST /managed-cases" in log and b"401" in log  # its access log saw the runs, the refused one too
    assert find_secrets(log) == []


def test_nothing_in_the_airflow_home_holds_a_secret(secrets_run: SweptHome) -> None:
    files = [p for p in secrets_run.home.rglob("*") if p.is_file()]
    assert {"airflow.db", "crm.sqlite3"} <= {p.name for p in files}
    assert {p.name: found for p in files if (found := find_secrets(p.read_bytes()))} == {}


def _connection(monkeypatch: pytest.MonkeyPatch, host: str, **extra: Any) -> DebituraHook:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEBITURA_DEFAULT",
        f'{{"conn_type": "debitura", "host": "{host}", '
        f'"password": "{API_KEY}", "extra": {{"verify_tls": {str(extra.get("verify_tls", True)).lower()}}}}}',
    )
    return DebituraHook()


def test_plain_http_outside_loopback_is_refused_through_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _connection(monkeypatch, "http://collectionpartner-api.debitura.com")
    with pytest.raises(
        ConfigurationError, match=r"refusing plain http to collectionpartner-api\.debitura\.com"
    ) as refused:
        hook.get_client()
    assert API_KEY not in str(refused.value)
    ok, message = _connection(monkeypatch, "http://10.1.2.3:8642").test_connection()
    assert not ok and "refusing plain http to 10.1.2.3" in message


def test_tls_verification_is_on_and_turning_it_off_is_never_silent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hook = _connection(monkeypatch, "https://collectionpartner-api.debitura.com")
    assert hook.settings.verify is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verified TLS builds a client without a word
        hook.get_client().close()
    off = _connection(monkeypatch, "https://collectionpartner-api.debitura.com", verify_tls=False)
    with pytest.warns(UserWarning, match="TLS certificate verification is OFF"):
        off.get_client().close()
    assert "TLS certificate verification is OFF" in caplog.text and API_KEY not in caplog.text
