"""The pure decisions of watching: which requests a cycle needs and when a watch is satisfied.

No HTTP here: snapshots are built as the API would return them and fed to the sans-I/O steps;
the same steps run against the sandbox in tests/airflow_layer.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from debitura_provider.api import CasesNotFound, RequestValidationError, endpoints
from debitura_provider.api._call import Call
from debitura_provider.api.models import Case, CasePage, Payment
from debitura_provider.api.watch import CaseWatch, WatchSpec, WatchState, poll, run_sync

A, B, C = (str(uuid.UUID(int=i)) for i in (1, 2, 3))


def case(cid: str, *, remainder: float = 100.0, lifecycle: str = "Pending Verification", gross: float = 100.0) -> Case:
    return Case.model_validate(
        {"id": cid, "grossAmount": gross, "remainder": remainder, "lifecycle": lifecycle, "totalAddedFees": 0.0}
    )


def payment(amount: float = 10.0, pid: str | None = None) -> Payment:
    return Payment.model_validate(
        {"id": pid or str(uuid.uuid4()), "grossAmount": amount, "date": "2026-01-05T00:00:00Z", "currency": "EUR"}
    )


class FakeApi:
    """Answers the calls a watch makes from in-memory cases and payments, and records them."""

    def __init__(self, cases: list[Case], payments: dict[str, list[Payment]] | None = None) -> None:
        self.cases = {str(c.id): c for c in cases}
        self.payments = payments or {}
        self.calls: list[Call[Any]] = []

    def send(self, call: Call[Any]) -> Any:
        self.calls.append(call)
        if call.path == "/managed-cases":
            ids = [v for k, v in call.params if k == "Ids"]
            found = [self.cases[i] for i in ids if i in self.cases]
            return CasePage.model_validate(
                {"page": {"pageSize": len(ids), "responseCount": len(found)}, "cases": found}
            )
        cid = call.path.split("/")[2]
        return self.payments.get(cid, [])

    def paths(self) -> list[str]:
        return [c.path for c in self.calls]


def look(api: FakeApi, watch: CaseWatch, chunk: int = 100) -> dict[str, Any] | None:
    api.calls.clear()
    result = run_sync(api, poll(watch, chunk))  # type: ignore[arg-type]
    return result.to_json() if result else None


def test_a_spec_names_the_missing_argument() -> None:
    with pytest.raises(RequestValidationError, match="remainder_at_most"):
        WatchSpec.build("remainder_at_most")
    with pytest.raises(RequestValidationError, match="lifecycles"):
        WatchSpec.build("lifecycle_in", lifecycles=[])
    with pytest.raises(RequestValidationError, match=r"lifecycles.*unknown lifecycle 'Open'"):
        WatchSpec.build("lifecycle_in", lifecycles=["Open"])
    with pytest.raises(RequestValidationError, match="condition"):
        WatchSpec.build("paid")
    with pytest.raises(RequestValidationError, match="require"):
        WatchSpec.build("new_payment", require="most")
    spec = WatchSpec.build("lifecycle_in", lifecycles=["active", "Closed"], require="any")
    assert WatchSpec.from_json(spec.to_json()) == spec


def test_case_ids_are_checked_and_deduplicated() -> None:
    spec = WatchSpec.build("new_payment")
    assert CaseWatch([A, A.upper(), B], spec).case_ids == [A, B]
    with pytest.raises(RequestValidationError, match="case_ids"):
        CaseWatch(["not-a-uuid"], spec)
    with pytest.raises(RequestValidationError, match="case_ids"):
        CaseWatch([], spec)


def test_one_list_request_per_chunk_of_ids() -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(1, 251)]
    calls = endpoints.list_managed_cases_by_id(ids, chunk_size=100)
    assert len(calls) == 3
    assert [len([v for k, v in c.params if k == "Ids"]) for c in calls] == [100, 100, 50]
    assert dict(calls[2].params)["PageSize"] == "50"
    with pytest.raises(RequestValidationError, match="chunk_size"):
        endpoints.list_managed_cases_by_id(ids, chunk_size=101)


def test_untouched_cases_cost_no_payment_reads() -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(1, 251)]
    api = FakeApi([case(i) for i in ids])
    watch = CaseWatch(ids, WatchSpec.build("new_payment"))
    assert look(api, watch) is None
    assert look(api, watch) is None
    assert api.paths() == ["/managed-cases"] * 3


def test_a_payment_between_polls_is_found_through_the_remainder() -> None:
    api = FakeApi([case(A), case(B)])
    watch = CaseWatch([A, B], WatchSpec.build("new_payment"))
    assert look(api, watch) is None
    paid = payment(30.0)
    api.cases[A] = case(A, remainder=70.0)
    api.payments[A] = [paid]
    assert look(api, watch) is None  # require="all": B has not paid
    assert api.paths() == ["/managed-cases", f"/managed-cases/{A}/payments"]
    api.cases[B] = case(B, remainder=0.0, lifecycle="Closed")
    api.payments[B] = [payment(100.0)]
    result = look(api, watch)
    assert result is not None
    assert result["satisfied"] == [A, B]
    assert [p["id"] for p in result["payments"][A]] == [str(paid.id)]
    assert [Decimal(c["remainder"]) for c in result["cases"]] == [70, 0]  # XCom amounts are decimal strings
    assert api.paths() == ["/managed-cases", f"/managed-cases/{B}/payments"]  # A is settled: not read again


def test_a_payment_made_before_the_first_poll_counts() -> None:
    early = payment(10.0)
    api = FakeApi([case(A, remainder=90.0)], {A: [early]})
    result = look(api, CaseWatch([A], WatchSpec.build("new_payment")))
    assert result is not None and result["payments"][A][0]["id"] == str(early.id)


def test_known_payments_are_the_baseline() -> None:
    old = payment(10.0)
    api = FakeApi([case(A, remainder=90.0)], {A: [old]})
    watch = CaseWatch([A], WatchSpec.build("new_payment"), known_payment_ids=[str(old.id)])
    assert look(api, watch) is None
    assert look(api, watch) is None
    assert api.paths() == ["/managed-cases"]  # amounts unchanged since the first look
    new = payment(5.0)
    api.cases[A] = case(A, remainder=85.0)
    api.payments[A] = [new, old]
    result = look(api, watch)
    assert result is not None and [p["id"] for p in result["payments"][A]] == [str(new.id)]


def test_a_restarted_watch_resumes_from_its_serialized_baseline() -> None:
    api = FakeApi([case(A, lifecycle="Pending Verification")])
    watch = CaseWatch([A], WatchSpec.build("lifecycle_changed"))
    assert look(api, watch) is None
    saved = watch.state.to_json()
    api.cases[A] = case(A, lifecycle="Active")
    restarted = CaseWatch([A], WatchSpec.build("lifecycle_changed"), WatchState.from_json(saved))
    result = look(api, restarted)
    assert result is not None and result["satisfied"] == [A] and result["payments"] == {}


def test_a_failed_payment_read_is_repeated_next_cycle() -> None:
    api = FakeApi([case(A)])
    watch = CaseWatch([A], WatchSpec.build("new_payment"))
    look(api, watch)
    api.cases[A] = case(A, remainder=60.0)
    api.payments[A] = [payment(40.0)]
    steps = poll(watch)
    pages = [api.send(c) for c in next(steps)]
    assert [c.path for c in steps.send(pages)] == [f"/managed-cases/{A}/payments"]
    steps.close()  # the read failed: the cycle is abandoned
    assert look(api, watch) is not None


def test_remainder_at_most_reads_payments_only_once_reached() -> None:
    api = FakeApi([case(A, remainder=100.0)])
    watch = CaseWatch([A], WatchSpec.build("remainder_at_most", remainder_at_most=20))
    assert look(api, watch) is None
    api.cases[A] = case(A, remainder=50.0)
    api.payments[A] = [payment(50.0)]
    assert look(api, watch) is None
    assert api.paths() == ["/managed-cases"]
    api.cases[A] = case(A, remainder=20.0)
    api.payments[A] = [payment(30.0), *api.payments[A]]
    result = look(api, watch)
    assert result is not None and len(result["payments"][A]) == 2


def test_lifecycle_in_any_and_sticky_satisfaction() -> None:
    api = FakeApi([case(A), case(B)])
    watch = CaseWatch([A, B], WatchSpec.build("lifecycle_in", lifecycles=["Active"], require="all"))
    assert look(api, watch) is None
    api.cases[A] = case(A, lifecycle="Active")
    assert look(api, watch) is None
    api.cases[A] = case(A, lifecycle="Closed")
    api.cases[B] = case(B, lifecycle="Active")
    result = look(api, watch)
    assert result is not None and result["satisfied"] == [A, B]
    assert api.paths() == ["/managed-cases"]

    any_watch = CaseWatch([A, C], WatchSpec.build("lifecycle_in", lifecycles=["Closed"], require="any"))
    api.cases[C] = case(C)
    result = look(api, any_watch)
    assert result is not None and result["satisfied"] == [A]


def test_cases_missing_from_the_list_fail_the_watch() -> None:
    api = FakeApi([case(A)])
    with pytest.raises(CasesNotFound, match=B):
        look(api, CaseWatch([A, B], WatchSpec.build("new_payment")))


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_chunking_never_changes_the_answer(chunk: int) -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(1, 16)]
    api = FakeApi([case(i, lifecycle="Active") for i in ids])
    result = look(api, CaseWatch(ids, WatchSpec.build("lifecycle_in", lifecycles=["Active"])), chunk)
    assert result is not None and result["satisfied"] == ids
    assert len(api.calls) == -(-len(ids) // chunk)
