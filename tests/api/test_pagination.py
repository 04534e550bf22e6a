"""Iterators walk every page with the filters on each request, and stop at the last page."""

from __future__ import annotations

import uuid

import respx

from debitura_provider.api import AsyncDebituraClient, DebituraClient
from tests.api.conftest import BASE
from tests.api.samples import CASE, page


def _cases(n: int) -> list[dict[str, object]]:
    return [{**CASE, "id": str(uuid.uuid4())} for _ in range(n)]


@respx.mock
def test_iterates_all_pages_of_managed_cases(client: DebituraClient) -> None:
    pages = [page(_cases(2), 1, 3, 2), page(_cases(2), 2, 3, 2), page(_cases(1), 3, 3, 2)]
    route = respx.get(f"{BASE}/managed-cases").mock(side_effect=[respx.MockResponse(200, json=p) for p in pages])
    cases = list(client.iter_managed_cases(statuses=["Active"], sort="DateUpdated:desc", page_size=2))
    assert len(cases) == 5
    assert [c.request.url.params["Page"] for c in route.calls] == ["1", "2", "3"]
    assert all(c.request.url.params["Statuses"] == "Active" for c in route.calls)
    assert all(c.request.url.params["Sort"] == "DateUpdated:desc" for c in route.calls)


@respx.mock
def test_stops_on_a_short_page_even_if_total_pages_is_stale(client: DebituraClient) -> None:
    route = respx.get(f"{BASE}/cases").mock(side_effect=[respx.MockResponse(200, json=page(_cases(1), 1, 5, 2))])
    assert len(list(client.iter_cases(include_test_cases=True, page_size=2))) == 1
    assert route.call_count == 1
    assert route.calls.last.request.url.params["includeTestCases"] == "true"


@respx.mock
def test_empty_list_makes_one_request(client: DebituraClient) -> None:
    route = respx.get(f"{BASE}/managed-cases").respond(200, json=page([], 1, 0, 100))
    assert list(client.iter_managed_cases()) == []
    assert route.call_count == 1


@respx.mock
async def test_async_iteration(aclient: AsyncDebituraClient) -> None:
    pages = [page(_cases(3), 1, 2, 3), page(_cases(2), 2, 2, 3)]
    route = respx.get(f"{BASE}/managed-cases").mock(side_effect=[respx.MockResponse(200, json=p) for p in pages])
    ids = [c.id async for c in aclient.iter_managed_cases(ids=[uuid.uuid4()], page_size=3)]
    assert len(ids) == 5
    assert route.call_count == 2
