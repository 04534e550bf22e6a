"""``debitura-webhooks`` against the sandbox: secrets go into a DB connection and nowhere else."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from debitura_provider.api.errors import SecretStoreError
from debitura_provider.receiver.cli import main
from debitura_provider.sandbox import SandboxServer

pytestmark = pytest.mark.airflow

SECRET_CONN = "debitura_cli_webhooks"
URL = "http://127.0.0.1:9/debitura/webhooks"


def stored_secret(conn_id: str = SECRET_CONN) -> str | None:
    from airflow.models.connection import Connection

    secret = Connection.get_connection_from_secrets(conn_id).extra_dejson.get("webhook_secret")
    return str(secret) if secret else None


def subscriptions(sandbox: SandboxServer) -> list[str]:
    from debitura_provider.api import DebituraClient

    with DebituraClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        return [str(s.id) for s in client.list_webhooks() if s.url == URL]


@pytest.fixture
def cli(
    airflow_db: None, debitura_conn: SandboxServer, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[SandboxServer]:
    """The sandbox behind ``debitura_default``; afterwards no stored secret was printed or logged."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    caplog.set_level(logging.DEBUG)
    yield debitura_conn
    out, err = capsys.readouterr()
    if secret := stored_secret_or_none():
        assert secret not in out + err + caplog.text
    for sub_id in subscriptions(debitura_conn):
        main(["delete", sub_id])
    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id == SECRET_CONN))


def stored_secret_or_none() -> str | None:
    from debitura_provider.compat import AirflowNotFoundException

    try:
        return stored_secret()
    except AirflowNotFoundException:
        return None


def test_create_stores_the_secret_in_a_new_connection(cli: SandboxServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", "--url", URL, "--test-mode", "--secret-conn-id", SECRET_CONN]) == 0
    out = capsys.readouterr().out
    secret = stored_secret()
    assert secret and secret not in out
    [sub_id] = subscriptions(cli)
    assert f"Created: {sub_id}  {URL}  active [test mode]" in out
    assert "payment.created, payment.deleted, case.assigned, case.updated, case.closed" in out


def test_a_second_create_for_the_same_url_is_refused_or_rekeys(
    cli: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create", "--url", URL, "--secret-conn-id", SECRET_CONN, "--event", "payment.created"]) == 0
    first = stored_secret()
    assert main(["create", "--url", URL, "--secret-conn-id", SECRET_CONN]) == 1
    assert "already delivers to" in capsys.readouterr().err
    assert stored_secret() == first
    assert main(["create", "--url", URL, "--secret-conn-id", SECRET_CONN, "--rekey-if-exists"]) == 0
    assert stored_secret() not in (None, first)
    assert len(subscriptions(cli)) == 1


def test_list_update_rekey_delete(cli: SandboxServer, capsys: pytest.CaptureFixture[str]) -> None:
    main(["create", "--url", URL, "--secret-conn-id", SECRET_CONN])
    [sub_id] = subscriptions(cli)
    before = stored_secret()
    capsys.readouterr()

    assert main(["update", sub_id, "--disable", "--event", "payment.created", "--event", "payment.deleted"]) == 0
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"{sub_id}  {URL}  DISABLED" in out
    assert out.rstrip().endswith("events: payment.created, payment.deleted")

    assert main(["update", sub_id, "--enable"]) == 0
    assert f"{sub_id}  {URL}  active" in capsys.readouterr().out

    assert main(["rekey", sub_id, "--secret-conn-id", SECRET_CONN]) == 0
    after = stored_secret()
    assert after not in (None, before)
    out = capsys.readouterr().out
    assert before not in out and after not in out  # type: ignore[operator]

    assert main(["delete", sub_id]) == 0
    assert subscriptions(cli) == []


def test_a_secret_connection_outside_the_db_is_refused_before_subscribing(
    cli: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # debitura_default is the AIRFLOW_CONN_ variable debitura_conn sets: it cannot be written.
    assert main(["create", "--url", URL]) == 1
    err = capsys.readouterr().err
    assert "connection 'debitura_default' is defined in an AIRFLOW_CONN_ environment variable" in err
    assert "--secret-conn-id" in err
    assert subscriptions(cli) == []


def test_a_secret_that_cannot_be_stored_takes_the_subscription_back(
    cli: SandboxServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(conn_id: str, secret: str) -> None:
        raise SecretStoreError(f"could not write connection {conn_id!r} (OperationalError)")

    monkeypatch.setattr("debitura_provider.receiver.cli.store_secret", refuse)
    assert main(["create", "--url", URL, "--secret-conn-id", SECRET_CONN]) == 1
    assert "could not write connection" in capsys.readouterr().err
    assert subscriptions(cli) == []


def test_an_existing_connection_keeps_its_other_fields(cli: SandboxServer) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(
            Connection(
                conn_id=SECRET_CONN, conn_type="debitura", host="https://x.example", extra=json.dumps({"timeout": 12})
            )
        )
    assert main(["create", "--url", URL, "--secret-conn-id", SECRET_CONN]) == 0
    from airflow.models.connection import Connection as Stored

    conn = Stored.get_connection_from_secrets(SECRET_CONN)
    assert conn.host == "https://x.example"
    assert conn.extra_dejson["timeout"] == 12
    assert conn.extra_dejson["webhook_secret"]


def test_errors_are_one_line_without_a_traceback(airflow_db: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--conn-id", "no_such_connection", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no_such_connection" in err
    assert "Traceback" not in err
