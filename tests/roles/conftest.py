"""A sandbox per test module with the agency's two accounts wired as Airflow connections, and a CRM file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.server import RequestCounter
from debitura_provider.api import DebituraClient
from debitura_provider.sandbox import SandboxServer
from tests.fixtures.sandbox import test_config
from tests.roles.support import clients, connection_env

DAGS = Path(__file__).resolve().parents[2] / "dags"
if str(DAGS) not in sys.path:
    sys.path.append(str(DAGS))  # the example DAGs' agency_crm helpers, as Airflow's DAG bundle provides them


@dataclass
class Agency:
    """The sandbox, both accounts' clients, and the CRM database behind ``debitura_crm``."""

    sandbox: SandboxServer
    managing: DebituraClient
    collection: DebituraClient
    crm_path: Path


@pytest.fixture(scope="module")
def agency(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agency]:
    crm_path = tmp_path_factory.mktemp("crm") / "crm.sqlite3"
    config = test_config(edge_middleware=(RequestCounter,), payout_invoice_days=3650.0)
    with SandboxServer(config) as sandbox, pytest.MonkeyPatch.context() as patch:
        for name, value in connection_env(sandbox, crm_path).items():
            patch.setenv(name, value)
        managing, collection = clients(sandbox)
        with managing, collection:
            yield Agency(sandbox, managing, collection, crm_path)
