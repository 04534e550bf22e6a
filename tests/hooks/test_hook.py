"""The hook reads a ``debitura`` connection given as AIRFLOW_CONN_DEBITURA_DEFAULT."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import respx

from debitura_provider.api import UNLIMITED, ConfigurationError
from debitura_provider.hooks.debitura import DEFAULT_PORTAL_URL, DebituraHook

KEY = "hook-test-key-91d0"


def _conn(monkeypatch: pytest.MonkeyPatch, conn_id: str = "debitura_default", **fields: object) -> None:
    conn = {"conn_type": "debitura", "password": KEY, **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def test_defaults_point_at_production(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch)
    settings = DebituraHook().settings
    assert settings.base_url == "https://collectionpartner-api.debitura.com"
    assert settings.portal_url == DEFAULT_PORTAL_URL
    assert settings.verify is True and settings.retry.attempts == 5 and settings.timeout == 30.0
    assert KEY not in repr(settings)


def test_connection_fields_configure_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(
        monkeypatch,
        "debitura_sandbox",
        host="http://127.0.0.1",
        port=8642,
        extra={
            "timeout": "12",
            "max_attempts": 2,
            "rate_limit_per_minute": 0,
            "portal_url": "http://127.0.0.1:8642/portal/",
        },
    )
    hook = DebituraHook("debitura_sandbox")
    settings = hook.settings
    assert settings.base_url == "http://127.0.0.1:8642"
    assert (settings.timeout, settings.retry.attempts, settings.rate_limits) == (12.0, 2, UNLIMITED)
    assert hook.portal_case_url("abc") == "http://127.0.0.1:8642/portal/cases/abc"
    assert hook.get_client() is hook.get_client()
    assert hook.get_client().base_url == "http://127.0.0.1:8642"


def test_host_without_scheme_uses_https(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, host="collectionpartner-api.debitura.com")
    assert DebituraHook().settings.base_url == "https://collectionpartner-api.debitura.com"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"timeout": "soon"}, "connection field timeout: 'soon' is not a number"),
        ({"max_attempts": "2.5"}, "connection field max_attempts: '2.5' is not an integer"),
        ({"verify_tls": "maybe"}, "connection field verify_tls: 'maybe' is not a boolean"),
        ({"rate_limit_per_minute": True}, "connection field rate_limit_per_minute: True is not an integer"),
        ({"rate_limit_processes": 0}, "connection field rate_limit_processes must be 1 or more"),
    ],
)
def test_a_bad_extra_is_a_configuration_error_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, object], message: str
) -> None:
    _conn(monkeypatch, extra=extra)
    with pytest.raises(ConfigurationError, match=message):
        DebituraHook().settings  # noqa: B018 - reading it is the test


def test_processes_sharing_the_key_set_each_process_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, extra={"rate_limit_processes": "8"})
    assert DebituraHook().settings.rate_limits.processes == 8


@pytest.mark.parametrize(
    ("text", "verify"), [("off", False), (" No ", False), ("0", False), ("YES", True), ("on", True)]
)
def test_verify_tls_reads_the_one_truth_table(monkeypatch: pytest.MonkeyPatch, text: str, verify: bool) -> None:
    _conn(monkeypatch, extra={"verify_tls": text})
    assert DebituraHook().settings.verify is verify


@respx.mock
def test_test_connection_calls_me(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, extra={"rate_limit_per_minute": 0})
    route = respx.get("https://collectionpartner-api.debitura.com/me").respond(
        200, json={"id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "companyName": "Nordic Recovery"}
    )
    assert DebituraHook().test_connection() == (True, "Connected to Debitura as Nordic Recovery.")
    assert route.calls.last.request.headers["XApiKey"] == KEY
    assert "apache-airflow/" in route.calls.last.request.headers["User-Agent"]


@respx.mock
def test_test_connection_reports_a_bad_key_without_showing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, extra={"rate_limit_per_minute": 0})
    respx.get("https://collectionpartner-api.debitura.com/me").respond(
        401, json={"title": "Unauthorized", "status": 401}
    )
    ok, message = DebituraHook().test_connection()
    assert not ok and "401" in message and KEY not in message


async def test_async_client_resolves_the_connection_without_the_sync_path(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, host="http://localhost:9")

    def forbidden(*_: object) -> None:
        raise AssertionError("sync connection lookup inside the event loop")

    monkeypatch.setattr(DebituraHook, "get_connection", forbidden)
    client = await DebituraHook().get_async_client()
    assert client.base_url == "http://localhost:9"
    await client.aclose()


def test_provider_is_registered_with_airflow() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"], capture_output=True, text=True, check=True
    ).stdout
    assert "airflow-provider-debitura" in out
    hooks = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "hooks", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = json.loads(next(line for line in hooks.splitlines() if line.startswith("[{")))  # 3.0 logs to stdout first
    assert any(h.get("connection_type") == "debitura" for h in listed)


def test_api_package_loads_no_airflow_module() -> None:
    code = "import sys, debitura_provider.api; print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
