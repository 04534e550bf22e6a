"""A respx stand-in for ``GET /managed-cases?Sort=DateUpdated:desc`` and the payments reads.

Just enough of the listing's behaviour for the scan's tricky orderings: offset pages over a list
sorted newest change first, a server clock of its own, and hooks that change cases between two
page reads. Counts the requests it answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import respx

BASE = "https://api.test.invalid"
SERVER_EPOCH = datetime(2031, 5, 4, 12, 0, tzinfo=timezone.utc)
"""The fake server's clock starts years away from ours: only its own times are compared."""


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


class Book:
    def __init__(self, router: respx.MockRouter) -> None:
        self.now = SERVER_EPOCH
        self.cases: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, list[dict[str, Any]]] = {}
        self.before_page: dict[int, Callable[[], None]] = {}
        self.list_requests = 0
        self.payment_requests = 0
        router.get(f"{BASE}/managed-cases").mock(side_effect=self._list)
        router.get(url__regex=rf"{BASE}/managed-cases/(?P<cid>[0-9a-f-]+)/payments").mock(side_effect=self._payments)

    def tick(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def add(self, gross: str = "100.00", *, touch: bool = True) -> str:
        cid = str(uuid.uuid4())
        self.cases[cid] = {
            "id": cid,
            "dateCreated": _iso(self.now),
            "dateUpdated": _iso(self.now),
            "reference": cid[:8].upper(),
            "grossAmount": gross,
            "remainder": gross,
            "totalAddedFees": "0",
            "currency": "EUR",
            "isTestCase": True,
            "lifecycle": "Active",
            "closeCode": None,
            "dateFinished": None,
            "debtor": {"name": "Jane Debtor", "email": "jane@example.test"},
        }
        self.payments[cid] = []
        return cid

    def touch(self, cid: str) -> None:
        self.cases[cid]["dateUpdated"] = _iso(self.now)

    def pay(self, cid: str, amount: str) -> str:
        pid = str(uuid.uuid4())
        self.payments[cid].insert(
            0,
            {
                "id": pid,
                "dateCreated": _iso(self.now),
                "date": _iso(self.now),
                "grossAmount": amount,
                "currency": "EUR",
            },
        )
        case = self.cases[cid]
        case["remainder"] = str(Decimal(case["remainder"]) - Decimal(amount))
        self.touch(cid)
        return pid

    def edit(self, cid: str, pid: str, amount: str) -> None:
        p = next(p for p in self.payments[cid] if p["id"] == pid)
        case = self.cases[cid]
        case["remainder"] = str(Decimal(case["remainder"]) + Decimal(p["grossAmount"]) - Decimal(amount))
        p["grossAmount"], p["dateUpdated"] = amount, _iso(self.now)
        self.touch(cid)

    def delete_payment(self, cid: str, pid: str) -> None:
        p = next(p for p in self.payments[cid] if p["id"] == pid)
        self.payments[cid].remove(p)
        case = self.cases[cid]
        case["remainder"] = str(Decimal(case["remainder"]) + Decimal(p["grossAmount"]))
        self.touch(cid)

    def set_lifecycle(self, cid: str, lifecycle: str, close_code: str | None = None) -> None:
        case = self.cases[cid]
        case["lifecycle"], case["closeCode"] = lifecycle, close_code
        if lifecycle == "Closed":
            case["dateFinished"] = _iso(self.now)
        self.touch(cid)

    def ordered(self) -> list[dict[str, Any]]:
        by_id = sorted(self.cases.values(), key=lambda c: c["id"])
        return sorted(by_id, key=lambda c: c["dateUpdated"], reverse=True)

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        assert params["Sort"] == "DateUpdated:desc"
        page, size = int(params["Page"]), int(params["PageSize"])
        hook = self.before_page.pop(page, None)
        if hook is not None:
            hook()
        self.list_requests += 1
        rows = self.ordered()
        window = rows[(page - 1) * size : page * size]
        pages = -(-len(rows) // size)
        return httpx.Response(
            200,
            json={
                "page": {
                    "totalResults": len(rows),
                    "pageSize": size,
                    "currentPage": page,
                    "responseCount": len(window),
                    "totalPages": pages,
                },
                "cases": window,
            },
        )

    def _payments(self, request: httpx.Request, cid: str) -> httpx.Response:
        self.payment_requests += 1
        return httpx.Response(200, json=self.payments[cid])
