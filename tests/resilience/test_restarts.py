"""Restarts: a deferred sensor outlives a triggerer restart and a sandbox restart from its ``--state`` file,
and still reports the payment made while it was down; a create whose answer never came, retried,
returns the first case.

tests/airflow_layer/test_trigger.py already restarts the trigger alone (serialized, then resumed); here
the sensor defers for real, the API goes away and comes back from disk, and the triggerer's restart is
a new event loop, as in a new triggerer process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string

from debitura_provider.api import UNLIMITED, DebituraClient
from debitura_provider.compat import TaskDeferred
from debitura_provider.sandbox import FaultSpec, SandboxServer
from debitura_provider.sensors.managed_cases import ManagedCaseSensor
from tests.airflow_layer.cases import invoice, test_case
from tests.airflow_layer.test_trigger import first_event
from tests.fixtures.resilience import RequestLog, StateStore, TaskInstance, point_debitura
from tests.fixtures.sandbox import SandboxFactory, test_config

pytestmark = pytest.mark.resilience


def stored_trigger(classpath: str, kwargs: dict[str, Any]) -> Any:
    """The trigger as a triggerer builds it from its DB row."""
    return import_string(classpath)(**kwargs)


async def test_a_deferred_sensor_reports_a_payment_made_while_triggerer_and_sandbox_were_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "sandbox.db"
    log = RequestLog()
    context: dict[str, Any] = {"ti": TaskInstance(), "task_state_store": StateStore()}
    with SandboxServer(test_config(state_path=state, edge_middleware=(log.middleware,))) as first:
        port = first.port
        point_debitura(monkeypatch, first, max_attempts=1)
        with DebituraClient(first.api_key, first.base_url, rate_limits=UNLIMITED) as client:
            case_id = test_case(client, "restarts")
        sensor = ManagedCaseSensor(
            task_id="wait",
            case_ids=[case_id],
            condition="new_payment",
            deferrable=True,
            poke_interval=0.05,
            timeout=120,
        )
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute(context)  # type: ignore[arg-type]  # first look: no payment yet, so it defers
        classpath, kwargs = json.loads(json.dumps(deferred.value.trigger.serialize()))  # the triggerer's DB row

        triggerer = asyncio.ensure_future(first_event(stored_trigger(classpath, kwargs)))
        polled = len(log.bodies("GET", "/managed-cases"))
        while len(log.bodies("GET", "/managed-cases")) < polled + 3:  # the trigger is watching
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # ten poll intervals against a stopped API: an outage, not an event
    assert not triggerer.done()
    triggerer.cancel()  # the triggerer stops too
    with contextlib.suppress(asyncio.CancelledError):
        await triggerer

    with SandboxServer(test_config(state_path=state, port=port)) as second:
        with DebituraClient(second.api_key, second.base_url, rate_limits=UNLIMITED) as client:
            assert client.get_managed_case(case_id).id is not None  # the case came back from disk
            paid = client.record_test_payment(case_id, {"date": dt.date.today().isoformat(), "paymentAmount": 25})
        # A new triggerer process: a new event loop picks the stored trigger up.
        event = await asyncio.to_thread(lambda: asyncio.run(first_event(stored_trigger(classpath, kwargs))))
        result = sensor.execute_complete(context, event)  # type: ignore[arg-type]

    assert result["satisfied"] == [case_id]
    assert [p["id"] for p in result["payments"][case_id]] == [str(paid.payment_id)]
    assert Decimal(result["payments"][case_id][0]["grossAmount"]) == 25


@pytest.mark.airflow
@pytest.mark.parametrize(("attempts", "tries"), [(1, 2), (3, 1)], ids=["airflow-retry", "client-retry"])
def test_a_create_whose_answer_never_came_returns_the_same_case_when_retried(
    run_dag: Any, sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch, attempts: int, tries: int
) -> None:
    case = invoice("lost-answer")
    lost_once = FaultSpec.parse("commit_then_timeout=1", delay=30, attempts_faulted=1)
    with sandbox_factory(faults=lost_once) as server:
        point_debitura(monkeypatch, server, timeout=1.0, max_attempts=attempts)
        run = run_dag("test_create_case_retried", conf={"case": case})
        made = [
            c for c in list(server.sandbox.store.cases.values()) if c.creditor_reference == case["creditorReference"]
        ]
        faults = server.app.state.faults.counts

    assert run.states == {"create": "success"}
    assert run.ti("create").try_number == tries  # one try (the client retried) or two (Airflow did)
    assert faults == {"commit_then_timeout": 1}  # the first answer was lost after the case was made
    assert [str(c.id) for c in made] == [run.xcom("create")["id"]]
