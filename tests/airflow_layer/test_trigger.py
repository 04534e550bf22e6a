"""The trigger in an event loop against the sandbox over HTTP: serialization, events, and coalescing.

Many triggers in one loop stand for many deferred sensors in one triggerer: they must share one
list request per 100 cases per cycle.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.module_loading import import_string

from debitura_provider.api import DebituraClient
from debitura_provider.api.watch import CaseWatch, WatchSpec, WatchState, poll, run_sync, shared_poller
from debitura_provider.compat import AIRFLOW_V_3_3_PLUS
from debitura_provider.triggers.managed_cases import ManagedCaseTrigger
from tests.airflow_layer.cases import test_case
from tests.fixtures.sandbox import SandboxFactory


def trigger(
    case_ids: list[str],
    condition: str = "new_payment",
    *,
    seconds: float = 30,
    conn: str = "debitura_default",
    **spec: Any,
) -> ManagedCaseTrigger:
    return ManagedCaseTrigger(
        case_ids=case_ids,
        watch=WatchSpec.build(condition, **spec).to_json(),
        state=WatchState().to_json(),
        end_time=time.time() + seconds,
        poll_interval=0.05,
        debitura_conn_id=conn,
    )


async def first_event(t: ManagedCaseTrigger) -> dict[str, Any]:
    events: AsyncIterator[Any] = t.run()
    try:
        event = await anext(events)
    finally:
        await events.aclose()
    payload: dict[str, Any] = event.payload
    return payload


def test_serialize_round_trips_through_json() -> None:
    original = trigger(["7d3c3a52-96a4-4c44-9d43-2c1b6d4d9d5e"], "lifecycle_in", lifecycles=["Active"])
    classpath, kwargs = original.serialize()
    restored = import_string(classpath)(**json.loads(json.dumps(kwargs)))
    assert restored.serialize() == (classpath, kwargs)
    assert classpath == "debitura_provider.triggers.managed_cases.ManagedCaseTrigger"


async def test_a_closed_paid_case_satisfies_remainder_at_most(sandbox_client: DebituraClient, case_tag: str) -> None:
    case_id = test_case(sandbox_client, case_tag)
    waiting = asyncio.ensure_future(first_event(trigger([case_id], "remainder_at_most", remainder_at_most=0)))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await asyncio.to_thread(sandbox_client.advance_test_case, case_id, {"to": "Closed:Paid", "amount": 100})

    event = await waiting

    assert event["status"] == "success" and event["satisfied"] == [case_id]
    assert event["cases"][0]["lifecycle"] == "Closed" and Decimal(event["cases"][0]["remainder"]) == 0
    assert [Decimal(p["grossAmount"]) for p in event["payments"][case_id]] == [100]
    json.dumps(event)


async def test_a_payment_while_the_triggerer_restarts_is_still_seen(
    sandbox_client: DebituraClient, case_tag: str
) -> None:
    case_id = test_case(sandbox_client, case_tag)
    watch = CaseWatch([case_id], WatchSpec.build("new_payment"))
    assert run_sync(sandbox_client, poll(watch)) is None  # the sensor's look before deferring
    deferred = ManagedCaseTrigger(
        case_ids=[case_id],
        watch=watch.spec.to_json(),
        state=watch.state.to_json(),
        end_time=time.time() + 30,
        poll_interval=0.05,
    )
    stored = json.dumps(deferred.serialize())  # what the triggerer keeps while it is down

    paid = await asyncio.to_thread(
        sandbox_client.record_test_payment, case_id, {"date": "2026-01-20", "paymentAmount": 15}
    )
    classpath, kwargs = json.loads(stored)
    event = await first_event(import_string(classpath)(**kwargs))

    assert event["status"] == "success"
    assert [p["id"] for p in event["payments"][case_id]] == [str(paid.payment_id)]


async def test_the_deadline_ends_the_wait_with_a_timeout_event(sandbox_client: DebituraClient, case_tag: str) -> None:
    case_id = test_case(sandbox_client, case_tag)
    event = await first_event(trigger([case_id], "lifecycle_changed", seconds=0.3))
    assert event == {
        "status": "timeout",
        "message": "Sensor timed out: 0 of 1 case(s) met lifecycle_changed (require all)",
    }


async def test_fatal_answers_end_the_trigger_without_leaking_the_key(
    sandbox_client: DebituraClient, case_tag: str, debitura_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_key = "not-the-sandbox-key-5f2e"
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEBITURA_WRONG",
        json.dumps({"conn_type": "debitura", "host": debitura_conn.base_url, "password": wrong_key}),
    )
    case_id = test_case(sandbox_client, case_tag)
    missing = "00000000-0000-4000-8000-000000000000"

    unauthorized = await first_event(trigger([case_id], conn="debitura_wrong"))
    not_found = await first_event(trigger([case_id, missing]))
    no_connection = await first_event(trigger([case_id], conn="debitura_nowhere"))

    assert unauthorized["status"] == "error" and "401" in unauthorized["message"]
    assert wrong_key not in unauthorized["message"]
    assert not_found == {
        "status": "error",
        "message": f"1 watched case(s) not found among this partner's managed cases: {missing}",
    }
    assert no_connection["status"] == "error" and "debitura_nowhere" in no_connection["message"]


async def test_an_outage_is_waited_out_not_reported(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sandbox_factory() as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_DEBITURA_OUTAGE",
            json.dumps(
                {
                    "conn_type": "debitura",
                    "host": server.base_url,
                    "password": server.api_key,
                    "extra": {"max_attempts": 1, "rate_limit_per_minute": 0},
                }
            ),
        )
        with DebituraClient(server.api_key, server.base_url) as client:
            case_id = test_case(client, "outage")
    event = await first_event(trigger([case_id], conn="debitura_outage", seconds=1.0))
    assert event["status"] == "timeout"


async def test_many_deferred_sensors_share_one_list_request_per_hundred_cases(
    sandbox_client: DebituraClient, case_tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_ids = await asyncio.to_thread(lambda: [test_case(sandbox_client, case_tag) for _ in range(150)])
    waiting = [asyncio.ensure_future(first_event(trigger([case_id], seconds=60))) for case_id in case_ids]
    await asyncio.sleep(0)
    poller = shared_poller("debitura_default", lambda: pytest.fail("the triggers must have made the poller"))
    assert poller.watched == 150
    lists: Counter[int] = Counter()  # list requests sent, by the poller's cycle number
    others: Counter[str] = Counter()
    send = httpx.AsyncClient.send

    async def counting(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if request.url.path == "/managed-cases":
            lists[poller.cycles] += 1
        else:
            others[f"{request.method} {request.url.path}"] += 1
        return await send(self, request, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", counting)
    counted_from = poller.cycles + 1  # the cycle under way may have sent some of its requests already
    await asyncio.wait_for(_cycles_done(poller, counted_from + 3), timeout=30)
    paid = case_ids[7]
    await asyncio.to_thread(sandbox_client.record_test_payment, paid, {"date": "2026-01-20", "paymentAmount": 5})

    event = await asyncio.wait_for(waiting[7], timeout=30)
    await _cycles_done(poller, poller.cycles + 1)

    assert event["status"] == "success" and event["satisfied"] == [paid]
    assert poller.watched == 149
    finished = [c for c in sorted(lists)[:-1] if c >= counted_from]  # the last cycle may still be sending
    assert len(finished) >= 3 and all(lists[c] == math.ceil(150 / 100) for c in finished)
    assert others == {f"GET /managed-cases/{paid}/payments": 1}
    assert not any(w.done() for i, w in enumerate(waiting) if i != 7)
    for w in waiting:
        w.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert poller.closed and poller.watched == 0


async def _cycles_done(poller: Any, count: int) -> None:
    while poller.cycles < count:
        await asyncio.sleep(0.01)


def _started_from_trigger() -> Any:
    from debitura_provider.sensors.managed_cases import ManagedCaseSensor

    return ManagedCaseSensor(
        task_id="watch",
        case_ids="{{ params.case_id }}",
        condition="new_payment",
        deferrable=True,
        start_from_trigger=True,
        end_from_trigger=True,
        poke_interval=0.05,
    )


def test_start_from_trigger_is_ignored_where_airflow_cannot_do_it() -> None:
    from debitura_provider.compat import supports

    sensor = _started_from_trigger()
    assert sensor.start_from_trigger is supports("start_from_trigger")
    assert (sensor.start_trigger_args is not None) is supports("start_from_trigger")


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="start_from_trigger works from Airflow 3.3")
async def test_a_sensor_started_from_the_trigger_ends_the_task_there(
    sandbox_client: DebituraClient, case_tag: str
) -> None:
    from debitura_provider.compat import TaskSuccessEvent

    case_id = test_case(sandbox_client, case_tag)
    sensor = _started_from_trigger()
    args = sensor.start_trigger_args
    assert sensor.start_from_trigger and args is not None and args.next_method == "execute_complete"
    assert args.trigger_kwargs is not None and args.trigger_kwargs["case_ids"] == "{{ params.case_id }}"
    kwargs = {**json.loads(json.dumps(args.trigger_kwargs)), "case_ids": case_id}  # as the triggerer renders it
    started = import_string(args.trigger_cls)(**kwargs)
    paid = await asyncio.to_thread(
        sandbox_client.record_test_payment, case_id, {"date": "2026-01-20", "paymentAmount": 15}
    )

    events: AsyncIterator[Any] = started.run()
    try:
        event = await asyncio.wait_for(anext(events), 30)
    finally:
        await events.aclose()

    assert isinstance(event, TaskSuccessEvent) and event.xcoms is not None
    result = event.xcoms["return_value"]
    assert result["satisfied"] == [case_id]
    assert [p["id"] for p in result["payments"][case_id]] == [str(paid.payment_id)]
    assert event.xcoms["debitura_case_url"].endswith(f"/cases/{case_id}")
