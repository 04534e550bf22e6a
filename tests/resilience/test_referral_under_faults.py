"""1,000 CRM records through the real ``debitura_referral`` DAG (``dag.test()``, Airflow task retries)
against a sandbox that fails about one request in five, in every way ``--faults`` knows.

Afterwards the sandbox holds no duplicate case, and every input record is accounted for exactly once in
the CRM's ledger: created or existing (with its case), rejected (with Debitura's reason), invalid (with
the field), or failed (retryable), and the counts add up to the input. The sandbox's collection
partners do not work cases on their own here; a ``Collector`` thread plays one, starting cases and
recording payments while the DAG runs, so that the sensor has payments to wait for without hundreds of
them arriving at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from local_airflow import connection_env, connections
from soak import NO_PARTNER, synthetic_record

from debitura_provider.api import UNLIMITED, DebituraClient, DebituraError
from debitura_provider.sandbox import FaultSpec, SandboxServer
from tests.fixtures.resilience import as_crm_records, corpus, duplicates
from tests.fixtures.sandbox import test_config

pytestmark = [pytest.mark.resilience, pytest.mark.airflow]

FAULTS = "error=0.05,commit_then_error=0.04,commit_then_timeout=0.03,reset=0.03,slow=0.02,rate_limit=0.03"
"""One request in five fails; every kind is there."""
CLIENT = {"timeout": 1.0, "max_attempts": 3}
"""Short client timeout (the held and slow requests outlast it) and few attempts, so that some records
outlive the client's retries and the task's own retries have work to do."""
FAULT_DELAY = 2.0
RECORDS = 1000
BATCH = "resilience-1000"


@dataclass
class Expected:
    records: list[dict[str, Any]]
    invalid: set[str]
    no_partner: set[str]


def batch() -> Expected:
    """The corpus's records (all but those a CRM table cannot hold: a list, a key used twice), then generated ones."""
    entries = [e for e in corpus() if isinstance(e["record"], dict) and "recordKey" not in e]
    records = as_crm_records(entries)
    made = [synthetic_record(n, "RES") for n in range(RECORDS - len(records))]
    invalid = {e["id"] for e in entries if e["expect"] in ("invalid", "duplicate")}
    no_partner = {e["id"] for e in entries if e["expect"] == "api_rejected"}
    no_partner |= {r["record_id"] for r in made if r["debtor"]["countryAlpha2"] in NO_PARTNER}
    records += made
    return Expected(records, invalid, no_partner)


class Collector(threading.Thread):
    """A collection partner at work: once the referral has made ``start_after`` cases, every two seconds
    it starts one and records a payment on it, so that the waiting sensor sees a few at a time.

    It talks to the sandbox over HTTP like any partner, through the same faults; a call that fails is
    left alone (the next case comes two seconds later).
    """

    def __init__(self, server: SandboxServer, start_after: int) -> None:
        super().__init__(name="collector", daemon=True)
        self.server = server
        self.start_after = start_after
        self.stop = threading.Event()
        self.paid: list[str] = []

    def run(self) -> None:
        done: set[Any] = set()
        clients: dict[str, DebituraClient] = {}
        try:
            while not self.stop.wait(2.0) and len(self.paid) < 30:
                store = self.server.sandbox.store
                production = [c for c in list(store.cases.values()) if not c.is_test]
                case = next((c for c in production if c.id not in done), None)
                if len(production) < self.start_after or case is None:
                    continue
                done.add(case.id)
                partner = store.partners[case.collection_partner_id]
                client = clients.get(partner.api_key) or clients.setdefault(
                    partner.api_key,
                    DebituraClient(partner.api_key, self.server.base_url, rate_limits=UNLIMITED, timeout=5.0),
                )
                self._collect(client, str(case.id), partner.users[0].email)
        finally:
            for client in clients.values():
                client.close()

    def _collect(self, client: DebituraClient, case_id: str, user: str) -> None:
        with contextlib.suppress(DebituraError):  # maybe started after all (its answer was lost): the payment tells
            client.start_case(case_id, {"welcomeMessage": "We have your case.", "userEmail": user})
        try:
            client.record_payment(
                case_id,
                {"date": dt.date.today().isoformat(), "paymentAmount": 10.0, "paymentRecipient": "CollectionPartner"},
            )
        except DebituraError:
            return
        self.paid.append(case_id)


@dataclass
class Run:
    expected: Expected
    dag_run: Any
    ledger: dict[str, dict[str, Any]]
    rejections: list[dict[str, Any]]
    cases: list[Any]
    duplicates: dict[str, int]
    faults: Counter[str]
    requests: int
    paid: list[str]


@pytest.fixture(scope="module")
def run(airflow_dags: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    expected = batch()
    crm_path = tmp_path_factory.mktemp("crm") / "crm.sqlite3"
    config = test_config(faults=FaultSpec.parse(FAULTS, delay=FAULT_DELAY), simulate=False)
    with SandboxServer(config) as server, pytest.MonkeyPatch.context() as patch:
        conns = connections(server.base_url, server.api_key, server.portal_url, crm_path)
        conns["debitura_default"]["extra"].update(CLIENT, rate_limit_per_minute=0)
        for name, value in connection_env(conns).items():
            patch.setenv(name, value)
        from agency_crm.db import ensure_schema, rows, transaction
        from agency_crm.extract import save_batch

        with transaction() as connection:
            ensure_schema(connection)
            save_batch(connection, BATCH, expected.records)
        collector = Collector(
            server, start_after=len(expected.records) - len(expected.invalid) - len(expected.no_partner)
        )
        collector.start()
        try:
            dag_run = airflow_dags["debitura_referral"].test(run_conf={"batch_id": BATCH})
        finally:
            collector.stop.set()
            collector.join(60)
        with transaction() as connection:
            ledger = {r["record_key"]: r for r in rows(connection, "SELECT * FROM referral_ledger")}
            rejections = rows(connection, "SELECT * FROM rejections")
        plan = server.app.state.faults
        done = Run(
            expected,
            dag_run,
            ledger,
            rejections,
            list(server.sandbox.store.cases.values()),
            duplicates(server),
            Counter(plan.counts),
            plan.requests,
            collector.paid,
        )
    print(
        f"\n{RECORDS} records: {dict(Counter(row['status'] for row in ledger.values()))}; "  # the figures, for -s
        f"{sum(done.faults.values())} faults in {done.requests} requests {dict(done.faults)}; "
        f"refer_invoices tries: {dag_run.get_task_instance('refer_invoices').try_number}; "
        f"duplicates: {len(done.duplicates)}; run {dag_run.state}"
    )
    yield done


def test_the_faults_were_real(run: Run) -> None:
    assert set(run.faults) == {kind for kind, _ in FaultSpec.parse(FAULTS).rates}
    assert 0.1 < sum(run.faults.values()) / run.requests < 0.3


def test_the_bulk_task_was_retried_by_airflow(run: Run) -> None:
    refer = run.dag_run.get_task_instance("refer_invoices")
    assert refer.try_number > 1


def test_the_sandbox_holds_no_duplicate_case(run: Run) -> None:
    assert run.duplicates == {}
    production = [c for c in run.cases if not c.is_test]
    assert len({c.creditor_reference for c in production}) == len(production)


def test_every_record_is_accounted_for_exactly_once(run: Run) -> None:
    keys = [r["record_id"] for r in run.expected.records]
    assert sorted(run.ledger) == sorted(keys)  # one row per record, none extra
    statuses = Counter(row["status"] for row in run.ledger.values())
    assert sum(statuses.values()) == RECORDS
    assert set(statuses) <= {"created", "existing", "rejected", "invalid", "failed"}
    assert {k for k, row in run.ledger.items() if row["status"] == "invalid"} == run.expected.invalid
    assert {k for k, row in run.ledger.items() if row["status"] == "rejected"} == run.expected.no_partner
    failed = [row for row in run.ledger.values() if row["status"] == "failed"]
    assert str(run.dag_run.state) == ("failed" if failed else "success"), run.dag_run.get_task_instances()
    for row in failed:  # outlived every retry: the next run refers it again
        assert row["case_id"] is None and row["reason"]


def test_every_case_in_the_sandbox_is_in_the_ledger_and_the_other_way_round(run: Run) -> None:
    referred = {row["case_id"]: key for key, row in run.ledger.items() if row["status"] in ("created", "existing")}
    production = {str(c.id): c.creditor_reference for c in run.cases if not c.is_test}
    by_reference = {r["record_id"]: r.get("creditorReference") for r in run.expected.records}
    assert set(referred) <= set(production)
    assert all(production[case_id] == by_reference[key] for case_id, key in referred.items())
    # A case the ledger lacks can only be one whose answer was lost on the last try: its record is
    # "failed" (retryable), and the next run's identical request replays that case.
    unrecorded = {production[case_id] for case_id in set(production) - set(referred)}
    assert unrecorded <= {by_reference[k] for k, row in run.ledger.items() if row["status"] == "failed"}


def test_reasons_name_the_field_or_the_rule(run: Run) -> None:
    fields = {(r["record_key"], r["field"]) for r in run.rejections if r["stage"] == "check"}
    assert {key for key, _ in fields} == run.expected.invalid
    expected = {e["id"]: e.get("field", "record") for e in corpus() if e["id"] in run.expected.invalid}
    assert all((key, field) in fields for key, field in expected.items())
    api = [r for r in run.rejections if r["stage"] == "debitura"]
    assert {r["record_key"] for r in api} == run.expected.no_partner
    assert all("NoPartnerAvailable" in r["reason"] for r in api)


def test_the_wait_saw_a_payment_made_while_it_waited(run: Run) -> None:
    result = run.dag_run.get_task_instance("wait_for_payment").xcom_pull(task_ids="wait_for_payment")
    assert result["satisfied"] and set(result["satisfied"]) <= set(run.paid)
    paid = [row for row in run.ledger.values() if row["amount_collected"]]
    assert {row["case_id"] for row in paid} <= set(run.paid)
    assert all(row["amount_collected"] == 10.0 for row in paid)
