"""One hook per task instance, one client per hook, closed when the task ends (issue 11).

Counted in the test process: ``dag.test()`` runs each task in it, so patching the hook's
connection lookup and the client's constructor and ``close`` sees every one a task makes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from debitura_provider.api import DebituraClient
from debitura_provider.compat import AirflowFailException, BaseHook
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.operators.managed_cases import CreateManagedCaseOperator
from debitura_provider.sensors.managed_cases import ManagedCaseSensor
from tests.airflow_layer.cases import invoice, test_case
from tests.fixtures.resilience import TaskInstance

pytestmark = pytest.mark.airflow


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Connection lookups of ``debitura_default``, clients built and clients closed, from now on."""
    counts: Counter[str] = Counter()
    lookup = BaseHook.get_connection.__func__  # type: ignore[attr-defined]
    init, close = DebituraClient.__init__, DebituraClient.close

    def get_connection(cls: Any, conn_id: str) -> Any:
        counts[f"lookup {conn_id}"] += 1
        return lookup(cls, conn_id)

    def counted_init(self: DebituraClient, *args: Any, **kwargs: Any) -> None:
        counts["built"] += 1
        init(self, *args, **kwargs)

    def counted_close(self: DebituraClient) -> None:
        counts["closed"] += 1
        close(self)

    monkeypatch.setattr(DebituraHook, "get_connection", classmethod(get_connection))
    monkeypatch.setattr(DebituraClient, "__init__", counted_init)
    monkeypatch.setattr(DebituraClient, "close", counted_close)
    return counts


def test_a_poking_sensor_looks_the_connection_up_once_and_reuses_one_client(
    run_dag: Any,
    sandbox_client: DebituraClient,
    case_tag: str,
    counted: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case_id = test_case(sandbox_client, case_tag)
    poke = ManagedCaseSensor.poke

    def counted_poke(self: ManagedCaseSensor, context: Any) -> Any:
        counted["poke"] += 1
        return poke(self, context)

    monkeypatch.setattr(ManagedCaseSensor, "poke", counted_poke)

    run = run_dag("test_watch_poke", conf={"case_ids": [case_id], "act": {"pay": 12.5}})

    assert run.states == {"watch": "success", "satisfied": "success"}
    assert counted["poke"] >= 2  # the payment is made after the first look
    assert counted["lookup debitura_default"] == 1
    assert counted["built"] == 1 and counted["closed"] == 1


def test_the_hook_is_built_once_per_task_instance_and_closed_after_a_failing_execute(
    debitura_conn: Any, counted: Counter[str]
) -> None:
    bad = invoice("lifetime", debtor={"type": "Person", "name": "Sam Rivera", "countryAlpha2": "US"})
    operator = CreateManagedCaseOperator(task_id="create", case=bad)

    assert operator.hook is operator.hook  # a cached property: no lookup per attribute access
    assert counted["lookup debitura_default"] == 0  # built lazily, read on first use
    with pytest.raises(AirflowFailException, match=r"debtor\.stateAlpha2"):
        operator.execute({"ti": TaskInstance()})  # type: ignore[arg-type]

    assert counted["lookup debitura_default"] == 1
    assert counted["built"] == 1 and counted["closed"] == 1  # closed although execute failed
    assert "hook" not in operator.__dict__  # the next try builds a fresh one


def test_on_kill_closes_the_client(debitura_conn: Any, counted: Counter[str]) -> None:
    operator = CreateManagedCaseOperator(task_id="create", case={})
    operator.hook.get_client()

    operator.on_kill()

    assert counted["built"] == 1 and counted["closed"] == 1
