"""The managing side's incremental copies of case files (object storage) and chats (the CRM), and the
assigned-cases sensor. Requests are counted at the sandbox: a second run fetches nothing it has."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.roles.conftest import Agency
from tests.roles.support import assign_cases, counts, start

pytestmark = pytest.mark.airflow

FILES = {"invoice.pdf": b"%PDF-1.4 invoice", "letter.docx": b"PK demand letter", "notes.txt": b"call log"}


@pytest.fixture(scope="module")
def worked(agency: Agency) -> list[str]:
    """Two cases the collection partner works: three files and two extra chat messages on the first."""
    first, second = assign_cases(agency.managing, agency.collection, 2)
    email = agency.collection.list_users().users[0].email
    for case_id in (first, second):
        start(agency.collection, case_id)
    for name, content in FILES.items():
        agency.collection.upload_case_file(first, name, content, document_type="PartnerDocuments")
    agency.collection.upload_case_file(second, "receipt.png", b"\x89PNG receipt")
    for text in ("Debtor promised to pay on Friday", "First instalment received"):
        agency.collection.send_case_chat(first, {"message": text, "userEmail": email})
    return [first, second]


def _sync_files(run_dag: Any, agency: Agency, case_ids: list[str], destination: Path) -> tuple[Any, Any]:
    before = counts(agency.sandbox)
    run = run_dag("roles_sync_files", conf={"case_ids": case_ids, "destination": f"file://{destination}"})
    assert run.states == {"sync": "success"}
    return run.xcom("sync"), counts(agency.sandbox) - before


def test_files_sync_twice_downloads_each_file_once(
    run_dag: Any, agency: Agency, worked: list[str], tmp_path: Path
) -> None:
    first, second = (_sync_files(run_dag, agency, worked, tmp_path) for _ in range(2))

    assert (first[0]["downloaded"], first[0]["skipped"], first[0]["files"]) == (4, 0, 4)
    assert first[1].matching("GET /portal/files/") == 4
    assert (second[0]["downloaded"], second[0]["skipped"]) == (0, 4)
    assert second[1].matching("GET /portal/files/") == 0
    assert second[1].matching("GET /managed-cases/{id}/files") == 2  # one list per case, nothing else
    manifest = json.loads((tmp_path / worked[0] / "manifest.json").read_text())["files"]
    stored = {entry["fileName"]: (tmp_path / worked[0] / entry["object"]).read_bytes() for entry in manifest.values()}
    assert stored == FILES
    assert not any(name in json.dumps(first[0]) for name in FILES)  # file names stay in the agency's storage


def test_files_sync_fetches_only_a_new_file_and_repairs_a_damaged_copy(
    run_dag: Any, agency: Agency, worked: list[str], tmp_path: Path
) -> None:
    _sync_files(run_dag, agency, worked, tmp_path)
    new = agency.collection.upload_case_file(worked[1], "settlement.csv", b"date,amount\n")
    manifest = json.loads((tmp_path / worked[0] / "manifest.json").read_text())["files"]
    damaged_id, entry = next(iter(manifest.items()))
    (tmp_path / worked[0] / entry["object"]).write_bytes(b"truncated")

    result, requests = _sync_files(run_dag, agency, worked, tmp_path)

    assert sorted(result["downloadedFileIds"]) == sorted([str(new.id), damaged_id])
    assert requests.matching("GET /portal/files/") == 2
    assert (tmp_path / worked[0] / entry["object"]).read_bytes() in FILES.values()


def test_chats_sync_twice_brings_each_message_into_the_crm_once(
    run_dag: Any, agency: Agency, worked: list[str]
) -> None:
    from agency_crm.db import rows, transaction

    runs, requests = [], []
    for _ in range(2):
        before = counts(agency.sandbox)
        run = run_dag("roles_sync_chats", conf={"case_ids": worked})
        assert run.states == {"sync": "success"}
        runs.append(run.xcom("sync"))
        requests.append(counts(agency.sandbox) - before)

    assert runs[0] == {"cases": 2, "messages": 4, "new": 4, "newByCase": {worked[0]: 3, worked[1]: 1}}
    assert runs[1] == {"cases": 2, "messages": 4, "new": 0, "newByCase": {}}
    assert requests[0].matching("GET /managed-cases/{id}/chats") == requests[1].matching("GET /managed-cases") == 2
    with transaction() as connection:
        stored = rows(connection, "SELECT case_id, message FROM case_chat_messages ORDER BY date_created")
    assert [r["message"] for r in stored if r["case_id"] == worked[0]] == [
        "Started",
        "Debtor promised to pay on Friday",
        "First instalment received",
    ]


def test_the_sensor_returns_cases_waiting_for_acceptance_without_the_debtor(run_dag: Any, agency: Agency) -> None:
    waiting = set(assign_cases(agency.managing, agency.collection, 2))
    already = {str(c.id) for c in agency.collection.iter_cases(statuses=["PendingVerification"])} - waiting

    run = run_dag("roles_assigned", conf={"min_cases": len(already) + 2})
    excluded = run_dag("roles_assigned", conf={"min_cases": len(already) + 2, "exclude": sorted(waiting)[:1]})

    assert run.states == {"assigned": "success"}
    result = run.xcom("assigned")
    assert set(result["caseIds"]) == waiting | already
    assert all("debtor" not in case and case["lifecycle"] == "Pending Verification" for case in result["cases"])
    assert excluded.states == {"assigned": "failed"}  # timed out: one short
    started = dt.datetime.now(dt.timezone.utc)
    for case_id in waiting:
        start(agency.collection, case_id)
    after = run_dag("roles_assigned", conf={"min_cases": 0})
    assert waiting.isdisjoint(after.xcom("assigned")["caseIds"])
    assert all(
        agency.collection.get_case(c).date_collection_started >= started - dt.timedelta(minutes=1) for c in waiting
    )


def test_deferred_the_trigger_sees_a_case_assigned_after_the_first_look(
    run_dag: Any, agency: Agency, capfd: pytest.CaptureFixture[str]
) -> None:
    before = {str(c.id) for c in agency.collection.iter_cases(statuses=["PendingVerification"])}

    run = run_dag("roles_assigned_deferred", conf={"min_cases": len(before) + 1})
    short = run_dag("roles_assigned_deferred_short", conf={"min_cases": len(before) + 100})

    assert run.states == {"assigned": "success"}
    found = set(run.xcom("assigned")["caseIds"])
    assert before < found and len(found) == len(before) + 1  # the new case, seen only by the trigger
    assert short.states == {"assigned": "failed"}  # the trigger's deadline is the sensor's timeout
    assert "fewer than" in capfd.readouterr().out


def test_the_case_documents_dag_copies_files_and_chats_once(
    agency: Agency, worked: list[str], airflow_dags: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agency_crm.db import ensure_schema, transaction
    from agency_crm.ledger import upsert_ledger
    from sqlalchemy import text

    monkeypatch.setenv("DEBITURA_ARTIFACTS_URL", (tmp_path / "artifacts").as_uri())
    with transaction() as connection:
        ensure_schema(connection)
        connection.execute(text("DROP TABLE IF EXISTS case_chat_messages"))  # an earlier test filled it
        upsert_ledger(
            connection,
            [
                {"record_key": f"INV-{n}", "batch_id": "b", "status": "created", "case_id": case_id}
                for n, case_id in enumerate(worked)
            ],
        )
    results = []
    for _ in range(2):
        before = counts(agency.sandbox)
        run = airflow_dags["debitura_case_documents"].test()
        assert str(run.state) == "success"
        pull = run.get_task_instance
        results.append(
            (
                pull("sync_files").xcom_pull(task_ids="sync_files"),
                pull("sync_chats").xcom_pull(task_ids="sync_chats"),
                counts(agency.sandbox) - before,
            )
        )

    (files, chats, first), (files_again, chats_again, second) = results
    assert files["downloaded"] == files["files"] >= 4 and files_again["downloaded"] == 0
    assert chats["new"] >= 4 and chats_again["new"] == 0
    assert first.matching("GET /portal/files/") == files["files"] and second.matching("GET /portal/files/") == 0
    assert (tmp_path / "artifacts" / "case-files" / worked[0] / "manifest.json").is_file()
