"""``ReferInvoicesOperator`` retried: each try sends only the records the tries before it could not settle,
so a batch under a flaky network comes through whole, with the first try's cases."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from debitura_provider.compat import AirflowException
from debitura_provider.operators.managed_cases import ReferInvoicesOperator
from debitura_provider.sandbox import FaultSpec
from tests.fixtures.resilience import RequestLog, StateStore, TaskInstance, point_debitura
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.helpers import case_body

pytestmark = pytest.mark.resilience


def test_a_retry_sends_only_the_records_that_failed(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [{**case_body(isTest=False), "record_id": f"R{n}"} for n in range(40)]
    records.append({**records[0], "record_id": "R-again"})  # an in-batch duplicate stays rejected
    log = RequestLog()
    store = StateStore()
    operator = ReferInvoicesOperator(task_id="refer", records=records, max_concurrency=4)
    with sandbox_factory(
        faults=FaultSpec.parse("error=0.5", attempts_faulted=4), edge_middleware=(log.middleware,)
    ) as server:
        point_debitura(monkeypatch, server, max_attempts=1)
        tries: list[tuple[int, list[dict[str, Any]]]] = []
        while True:
            before = len(log.bodies("POST", "/managed-cases"))
            ti = TaskInstance()
            try:
                outcomes = operator.execute({"ti": ti, "task_state_store": store})  # type: ignore[arg-type]
            except AirflowException:
                tries.append((len(log.bodies("POST", "/managed-cases")) - before, ti.pushed["outcomes"]))
                continue
            tries.append((len(log.bodies("POST", "/managed-cases")) - before, outcomes))
            break
        cases = len(server.sandbox.store.cases)

    assert len(tries) > 2
    assert tries[0][0] == 40
    for (_, earlier), (sent, later) in itertools.pairwise(tries):
        failed = [i for i, o in enumerate(earlier) if o["status"] == "failed"]
        assert sent == len(failed)  # each try sends exactly what the try before could not settle
        assert all(later[i] == o for i, o in enumerate(earlier) if o["status"] != "failed")
    final = tries[-1][1]
    assert [o["status"] for o in final] == ["created"] * 40 + ["rejected"]
    assert cases == 40 and len({o["caseId"] for o in final[:40]}) == 40
    assert store.values == {}  # forgotten once the batch came through
