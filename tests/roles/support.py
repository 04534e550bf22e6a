"""The agency's two Debitura accounts on a sandbox of its own, and cases assigned to its collection-partner one.

The managing-partner key (``debitura_default``) refers production cases naming the agency's
collection-partner account (the sandbox's "Workbench Collections ApS", key ``sandbox-workbench-key``,
which no simulation works) with ``collectionPartnerId``; the collection-partner key
(``debitura_collection``) then finds them Pending Verification in ``GET /cases``, as Debitura's
assignment leaves them. Requests are counted at the sandbox's edge (bench's counter).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.server import COUNTS_PATH, Counts
from debitura_provider.api import UNLIMITED, DebituraClient
from debitura_provider.sandbox import SandboxServer

WORKBENCH_KEY = "sandbox-workbench-key"
COLLECTION_CONN_ID = "debitura_collection"


def connection_env(sandbox: SandboxServer, crm_path: Path) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` for both accounts and the CRM (client-side rate budget off)."""

    def debitura(key: str) -> str:
        return json.dumps(
            {
                "conn_type": "debitura",
                "host": sandbox.base_url,
                "password": key,
                "extra": {"portal_url": sandbox.portal_url, "rate_limit_per_minute": 0},
            }
        )

    return {
        "AIRFLOW_CONN_DEBITURA_DEFAULT": debitura(sandbox.api_key),
        "AIRFLOW_CONN_DEBITURA_COLLECTION": debitura(WORKBENCH_KEY),
        "AIRFLOW_CONN_DEBITURA_CRM": json.dumps({"conn_type": "sqlite", "host": str(crm_path)}),
    }


def clients(sandbox: SandboxServer) -> tuple[DebituraClient, DebituraClient]:
    """(managing, collection) clients of the sandbox."""
    managing = DebituraClient(sandbox.api_key, sandbox.base_url, rate_limits=UNLIMITED)
    collection = DebituraClient(WORKBENCH_KEY, sandbox.base_url, rate_limits=UNLIMITED)
    return managing, collection


def assign_cases(
    managing: DebituraClient,
    collection: DebituraClient,
    count: int,
    *,
    amount: float = 1000.0,
    currency: str = "EUR",
) -> list[str]:
    """Refer ``count`` production cases to the agency's collection-partner account; their ids once assigned."""
    partner_id = collection.get_me().id
    ids = []
    for n in range(count):
        body = {
            "creditorCompanyName": "Fjord Logistics A/S",
            "creditorCountryAlpha2": "DK",
            "currencyCode": currency,
            "amountToRecover": amount + 100 * n,
            "date": (dt.date.today() - dt.timedelta(days=60)).isoformat(),
            "creditorReference": f"INV-{uuid.uuid4().hex[:10]}",
            "collectionPartnerId": str(partner_id),
            "debtor": {
                "type": "Company",
                "name": "Havn Trading ApS",
                "contactPerson": "Test Person",
                "countryAlpha2": "DK",
            },
        }
        ids.append(str(managing.create_managed_case(body).id))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = {str(c.id) for c in collection.iter_cases(statuses=["PendingVerification"])}
        if set(ids) <= waiting:
            return ids
        time.sleep(0.05)
    raise AssertionError("the referred cases never reached the collection partner")


def start(collection: DebituraClient, case_id: str, reference: str | None = None) -> None:
    """Accept a case as the collection partner (outside Airflow), with partner reference ``reference``."""
    email = collection.list_users().users[0].email
    body: dict[str, Any] = {"welcomeMessage": "Started", "userEmail": email}
    if reference:
        body["collectionPartnerReference"] = reference
    collection.start_case(case_id, body)


def counts(sandbox: SandboxServer) -> Counts:
    """What the sandbox was asked so far, by route (``GET /cases/{id}/files``) and status."""
    from collections import Counter

    body = httpx.get(sandbox.base_url + COUNTS_PATH, timeout=10).json()
    return Counts(Counter(body["routes"]), Counter(body["statuses"]))
