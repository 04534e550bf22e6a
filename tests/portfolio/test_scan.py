"""The portfolio scan against a respx listing: orderings that could lose or repeat a change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import respx

from debitura_provider.api import UNLIMITED, AsyncDebituraClient, DebituraClient
from debitura_provider.api.watch.poller import run_async, run_sync
from debitura_provider.api.watch.scan import PortfolioScan, ScanResult, ScanState, events_of, normalize_event
from tests.portfolio.fake import BASE, Book

KEY = "unit-test-key-portfolio"


@pytest.fixture
def book() -> Iterator[Book]:
    with respx.mock(assert_all_called=False) as router:
        yield Book(router)


@pytest.fixture
def client(book: Book) -> Iterator[DebituraClient]:
    with DebituraClient(KEY, BASE, rate_limits=UNLIMITED) as c:
        yield c


def cycle(client: DebituraClient, state: ScanState, **kwargs: object) -> ScanResult:
    """One cycle from a state that went through JSON, as a restarted trigger would have it."""
    restored = ScanState.from_json(json.loads(json.dumps(state.to_json())))
    scan = PortfolioScan(restored, **kwargs)  # type: ignore[arg-type]
    result = run_sync(client, scan.cycle())
    state.__dict__.update(restored.__dict__)
    return result


def portfolio(book: Book, n: int) -> list[str]:
    """``n`` cases created a second apart, the last an hour before the first cycle."""
    ids = []
    for _ in range(n):
        ids.append(book.add())
        book.tick()
    book.tick(3600)
    return ids


def kinds(result: ScanResult) -> list[tuple[str, str]]:
    return [(c.kind, c.case_id) for c in result.changes]


def test_baseline_reports_nothing_and_costs_one_request(book: Book, client: DebituraClient) -> None:
    ids = portfolio(book, 250)
    book.pay(ids[0], "10.00")
    state = ScanState()
    result = cycle(client, state)
    assert result.baseline and result.changes == []
    assert book.list_requests == 1 and book.payment_requests == 0
    book.tick()
    assert cycle(client, state).changes == []
    assert book.list_requests == 2


def test_a_payment_is_reported_once_and_only_its_case_payments_read(book: Book, client: DebituraClient) -> None:
    ids = portfolio(book, 250)
    state = ScanState()
    cycle(client, state)
    book.tick()
    pid = book.pay(ids[200], "12.50")
    book.tick()
    book.set_lifecycle(ids[3], "Paused")
    result = cycle(client, state)
    assert kinds(result) == [("payment.created", ids[200]), ("case.updated", ids[3])]
    assert (book.list_requests, book.payment_requests) == (2, 1)
    payment = events_of(result, ["payment.created"])[0]
    assert payment["data"]["paymentId"] == pid and payment["data"]["amount"] == "12.50"
    assert payment["data"]["remainder"] == "87.50"
    assert "Jane" not in json.dumps(events_of(result)) and "debtor" not in json.dumps(events_of(result))
    assert cycle(client, state).changes == []


def test_start_replays_changes_after_it(book: Book, client: DebituraClient) -> None:
    old = book.add()
    book.pay(old, "5.00")
    book.tick(3600)
    start = book.now
    book.tick(60)
    paid = book.add()
    book.tick()
    pid = book.pay(paid, "7.00")
    result = cycle(client, ScanState(), start=start)
    created = [c for c in result.changes if c.kind == "payment.created"]
    assert [str(c.payment.id) for c in created if c.payment] == [pid]


def test_case_updated_between_page_reads_is_reported_next_cycle_once(book: Book, client: DebituraClient) -> None:
    ids = portfolio(book, 300)
    state = ScanState()
    cycle(client, state)
    book.tick()
    for cid in ids[:150]:  # two pages of changes
        book.pay(cid, "1.00")
    book.tick()
    late = book.ordered()[250]["id"]  # on page 3, paid while page 2 is read: it jumps to page 1
    book.before_page[2] = lambda: (book.tick(), book.pay(late, "2.00"))
    first = cycle(client, state)
    assert sorted(c.case_id for c in first.changes) == sorted(ids[:150])
    book.tick()
    second = cycle(client, state)
    assert kinds(second) == [("payment.created", late)]
    assert cycle(client, state).changes == []


def test_ties_across_a_page_boundary_and_a_cycle(book: Book, client: DebituraClient) -> None:
    ids = portfolio(book, 120)
    state = ScanState()
    cycle(client, state)
    book.tick()
    first_batch = ids[:60]
    for cid in first_batch:
        book.pay(cid, "1.00")  # all at one instant
    assert {c.case_id for c in cycle(client, state).changes} == set(first_batch)
    for cid in ids[60:]:  # same instant as the cursor, after the cycle read it
        book.pay(cid, "1.00")
    result = cycle(client, state)
    assert {c.case_id for c in result.changes} == set(ids[60:])
    assert all(c.kind == "payment.created" for c in result.changes)


def test_a_late_commit_inside_the_overlap_is_reported(book: Book, client: DebituraClient) -> None:
    ids = portfolio(book, 10)
    state = ScanState()
    cycle(client, state)
    book.tick(10)
    stamped = book.now
    book.tick(2)
    book.pay(ids[1], "3.00")
    assert len(cycle(client, state).changes) == 1
    book.now = stamped  # committed with a time before the cursor, visible only now
    book.pay(ids[2], "4.00")
    book.now += timedelta(seconds=3)
    assert kinds(cycle(client, state)) == [("payment.created", ids[2])]


def test_listing_shrinking_mid_read_restarts_from_page_one(book: Book, client: DebituraClient) -> None:
    ids = portfolio(book, 250)
    state = ScanState()
    cycle(client, state)
    book.tick()
    for cid in ids[:150]:
        book.pay(cid, "1.00")
    gone = book.ordered()[10]["id"]
    book.before_page[2] = lambda: book.cases.pop(gone)
    result = cycle(client, state)
    assert {c.case_id for c in result.changes} == set(ids[:150])  # the removed case changed first
    assert result.list_requests == 4


def test_edit_delete_lifecycle_and_close(book: Book, client: DebituraClient) -> None:
    cid = book.add("100.00")
    book.tick(3600)
    state = ScanState()
    cycle(client, state, start=book.now - timedelta(seconds=1))  # start: the case is new, payments read
    book.tick()
    keep = book.pay(cid, "10.00")
    drop = book.pay(cid, "20.00")
    assert [c.kind for c in cycle(client, state).changes] == ["payment.created", "payment.created"]
    book.tick()
    book.edit(cid, keep, "15.00")
    edited = cycle(client, state)
    assert [c.kind for c in edited.changes] == ["payment.edited"]
    assert events_of(edited)[0]["data"]["previousAmount"] == "10.00"
    book.tick()
    book.delete_payment(cid, drop)
    deleted = cycle(client, state)
    assert [(c.kind, str(c.payment.id) if c.payment else None) for c in deleted.changes] == [("payment.deleted", drop)]
    book.tick()
    book.set_lifecycle(cid, "Closed", "NoPayment")
    closed = events_of(cycle(client, state))
    assert [e["type"] for e in closed] == ["case.closed"] and closed[0]["data"]["closeCode"] == "NoPayment"


def test_lifecycle_only_change_reads_no_payments(book: Book, client: DebituraClient) -> None:
    ids = portfolio(book, 5)
    state = ScanState()
    cycle(client, state)
    book.tick()
    book.set_lifecycle(ids[0], "More Info Required")
    result = cycle(client, state)
    assert [(e["type"], e["data"]["newLifecycle"]) for e in events_of(result)] == [
        ("case.updated", "More Info Required")
    ]
    assert book.payment_requests == 0


def test_event_ids_are_stable_for_the_same_change(book: Book, client: DebituraClient) -> None:
    cid = portfolio(book, 1)[0]
    state = ScanState()
    cycle(client, state)
    saved = json.loads(json.dumps(state.to_json()))
    book.tick()
    book.pay(cid, "9.99")
    first = events_of(cycle(client, state))
    again = events_of(cycle(client, ScanState.from_json(saved)))  # a restart from the older state
    assert [e["id"] for e in first] == [e["id"] for e in again] and len(first) == 1


def test_payments_off_reports_lifecycles_only(book: Book, client: DebituraClient) -> None:
    cid = portfolio(book, 1)[0]
    state = ScanState()
    cycle(client, state, payments=False)
    book.tick()
    book.pay(cid, "100.00")
    book.set_lifecycle(cid, "Closed", "Paid")
    result = cycle(client, state, payments=False)
    assert [c.kind for c in result.changes] == ["case.closed"] and book.payment_requests == 0


def test_normalize_event_reads_webhook_and_scan_envelopes() -> None:
    webhook = {
        "id": "e1",
        "specVersion": "1.0",
        "event": "payment.created",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {"caseId": "c"},
        "links": {},
    }
    assert normalize_event(webhook) == {
        "id": "e1",
        "type": "payment.created",
        "createdAt": "2026-01-01T00:00:00Z",
        "data": {"caseId": "c"},
    }
    scan = {"id": "e2", "type": "case.closed", "createdAt": "2026-01-01T00:00:00Z", "data": {"caseId": "c"}}
    assert normalize_event(scan) == scan


async def test_async_driver_gives_the_same_changes(book: Book) -> None:
    ids = portfolio(book, 120)
    state = ScanState()
    client = AsyncDebituraClient(KEY, BASE, rate_limits=UNLIMITED)
    try:
        await run_async(client.send, PortfolioScan(state).cycle())
        book.tick()
        book.pay(ids[110], "1.00")
        result = await run_async(client.send, PortfolioScan(state).cycle())
    finally:
        await client.aclose()
    assert kinds(result) == [("payment.created", ids[110])]


def test_after_a_burst_quiet_cycles_cost_one_request_once_the_overlap_was_reread(
    book: Book, client: DebituraClient
) -> None:
    clock = [1_000_000.0]

    def now() -> float:
        return clock[0]

    ids = portfolio(book, 300)
    state = ScanState()
    cycle(client, state, clock=now)
    for cid in ids[:250]:  # a burst: three pages within the overlap
        book.tick(0.01)
        book.pay(cid, "1.00")
    assert len(cycle(client, state, clock=now).changes) == 250
    counts = []
    for step in (1, 10, 10, 10):  # seconds of our clock between cycles
        clock[0] += step
        before = book.list_requests
        assert cycle(client, state, clock=now).changes == []
        counts.append(book.list_requests - before)
    assert counts == [3, 3, 1, 1]  # the overlap is re-read until once past it, then only the cursor's instant
    book.tick()
    book.pay(ids[299], "2.00")
    assert kinds(cycle(client, state, clock=now)) == [("payment.created", ids[299])]


def test_equal_timestamps_at_the_cursor_are_re_read_and_never_reported_again(
    book: Book, client: DebituraClient
) -> None:
    ids = portfolio(book, 300)
    state = ScanState()
    cycle(client, state)
    for cid in ids[:150]:  # one instant, two pages
        book.pay(cid, "1.00")
    assert len(cycle(client, state).changes) == 150
    before = book.list_requests
    assert cycle(client, state).changes == []
    assert book.list_requests - before == 2
