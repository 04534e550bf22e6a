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
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from local_airflow import REPO, airflow_env, connection_env, connections

from debitura_provider.api import ConfigurationError
from debitura_provider.hooks.debitura import DebituraHook

pytestmark = [pytest.mark.resilience, pytest.mark.airflow]

API_KEY = "dbt-live-4f9c1e7a5b2d40688c3e"
WRONG_KEY = "dbt-live-a3e69b2c8d1f4a70b5d1"
WEBHOOK_SECRET = base64.b64encode(b"whsec-7d0e8f1a6b5c4d3e2f1a9b8c7d6e5f4a").decode()
SECRETS = {"API key": API_KEY, "wrong API key": WRONG_KEY, "webhook secret": WEBHOOK_SECRET}
FIRST = ("debitura_crm_extract", "debitura_referral")
"""The order an agency runs them in; every other DAG of dags/ follows."""


def leaked_forms(secret: str) -> dict[str, bytes]:
    """The secret as text, URL-quoted and base64-encoded, and its distinctive half (a truncated leak)."""
    return {
        "as is": secret.encode(),
        "URL-quoted": quote(secret, safe="").encode(),
        "base64": base64.b64encode(secret.encode()).rstrip(b"="),
        "second half": secret[len(secret) // 2 :].encode(),
    }


def find_secrets(data: bytes) -> list[str]:
    return [f"{name} ({form})" for name, secret in SECRETS.items()
            for form, needle in leaked_forms(secret).items() if needle in data]


@dataclass
class SecretsRun:
    home: Path
    sandbox_log: Path
    dag_ids: list[str]
    states: dict[str, str]


def example_dag_ids(airflow_dags: dict[str, Any]) -> list[str]:
    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).resolve()
    found = sorted(d for d, dag in airflow_dags.items() if Path(dag.fileloc).resolve().parent == dags_folder)
    return [d for d in FIRST if d in found] + [d for d in found if d not in FIRST]


def start_sandbox(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``debitura-sandbox`` with the recognisable key, its whole output (access log included) in ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "debitura_provider.sandbox", "--port", "0", "--api-key", API_KEY,
             "--speed", "864000", "--no-rate-limit"], stdout=out, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while not (found := re.search(r"Debitura sandbox on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the sandbox did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    return process, found.group(1)


@pytest.fixture(scope="module")
def secrets_run(airflow_dags: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretsRun]:
    home = tmp_path_factory.mktemp("airflow-home")
    sandbox_log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"  # Debitura's side, not the Airflow home
    process, base_url = start_sandbox(sandbox_log)
    try:
        conns = connections(base_url, API_KEY, f"{base_url}/portal", home / "crm.sqlite3")
        conns["debitura_default"]["extra"]["webhook_secret"] = WEBHOOK_SECRET
        refused = json.dumps({**conns["debitura_default"], "password": WRONG_KEY})
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the tests' home
        env = {**inherited, **airflow_env(home), **connection_env(conns), "REFUSED_CONNECTION": refused}
        dag_ids = example_dag_ids(airflow_dags)
        done = subprocess.run([sys.executable, "-m", "tests.resilience.run_example_dags", *dag_ids], env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=900)
    finally:
        process.terminate()
        process.wait(60)
    assert done.returncode == 0, done.stderr[-3000:]
    yield SecretsRun(home, sandbox_log, dag_ids, dict(line.split() for line in done.stdout.splitlines()))


def test_every_example_dag_ran(secrets_run: SecretsRun) -> None:
    assert {"debitura_crm_extract", "debitura_referral", "debitura_integration_test"} <= set(secrets_run.dag_ids)
    for dag_id in secrets_run.dag_ids:
        text = (secrets_run.home / "logs" / f"{dag_id}.log").read_text(errors="replace")
        assert secrets_run.states[dag_id] == "success", text[-3000:]
        assert "[DAG TEST] starting task_id=" in text
    assert secrets_run.states["refused"] == "failed"


def test_task_logs_and_exception_messages_hold_no_secret(secrets_run: SecretsRun) -> None:
    refused = (secrets_run.home / "logs" / "refused.log").read_text(errors="replace")
    assert "Task failed with exception" in refused and "401" in refused  # the failure was logged, with its reason
    for log in sorted((secrets_run.home / "logs").iterdir()):
        assert find_secrets(log.read_bytes()) == [], log.name


def test_xcoms_and_rendered_fields_hold_no_secret(secrets_run: SecretsRun) -> None:
    with sqlite3.connect(secrets_run.home / "airflow.db") as db:
        xcoms = [str(v) for (v,) in db.execute("SELECT value FROM xcom")]
        rendered = [str(v) for (v,) in db.execute("SELECT rendered_fields FROM rendered_task_instance_fields")]
    assert len(xcoms) > 20 and len(rendered) > 10
    assert find_secrets("\n".join(xcoms + rendered).encode()) == []


def test_the_ledger_keeps_the_refusal_without_the_key(secrets_run: SecretsRun) -> None:
    with sqlite3.connect(secrets_run.home / "crm.sqlite3") as db:
        reasons = [r for (r,) in db.execute("SELECT reason FROM referral_ledger WHERE reason IS NOT NULL")]
    assert any("401" in r for r in reasons)
    assert find_secrets("\n".join(reasons).encode()) == []


def test_the_sandbox_log_holds_no_secret(secrets_run: SecretsRun) -> None:
    log = secrets_run.sandbox_log.read_bytes()
    assert b"POST /managed-cases" in log and b"401" in log  # its access log saw the runs, the refused one too
    assert find_secrets(log) == []


def test_nothing_in_the_airflow_home_holds_a_secret(secrets_run: SecretsRun) -> None:
    files = [p for p in secrets_run.home.rglob("*") if p.is_file()]
    assert {"airflow.db", "crm.sqlite3"} <= {p.name for p in files}
    assert {p.name: found for p in files if (found := find_secrets(p.read_bytes()))} == {}


def _connection(monkeypatch: pytest.MonkeyPatch, host: str, **extra: Any) -> DebituraHook:
    monkeypatch.setenv("AIRFLOW_CONN_DEBITURA_DEFAULT", f'{{"conn_type": "debitura", "host": "{host}", '
                       f'"password": "{API_KEY}", "extra": {{"verify_tls": {str(extra.get("verify_tls", True)).lower()}}}}}')
    return DebituraHook()


def test_plain_http_outside_loopback_is_refused_through_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _connection(monkeypatch, "http://collectionpartner-api.debitura.com")
    with pytest.raises(ConfigurationError, match=r"refusing plain http to collectionpartner-api\.debitura\.com") as refused:
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
