"""The collection-partner operators under real Airflow (``dag.test()``) against the sandbox, as the agency's
collection-partner account working cases its managing-partner account referred."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.sandbox import SandboxFactory
from tests.roles.conftest import Agency
from tests.roles.support import assign_cases, clients, connection_env, counts, start

pytestmark = pytest.mark.airflow

TODAY = dt.date.today().isoformat()


def _email(agency: Agency) -> str:
    return agency.collection.list_users().users[0].email


def _active_case(agency: Agency, **kwargs: Any) -> str:
    (case_id,) = assign_cases(agency.managing, agency.collection, 1, **kwargs)
    start(agency.collection, case_id)
    return case_id


def test_start_accepts_with_fees_and_a_welcome_message_once(run_dag: Any, agency: Agency) -> None:
    (case_id,) = assign_cases(agency.managing, agency.collection, 1)
    reference = f"AG-{agency.collection.get_case(case_id).reference}"
    conf = {
        "case_id": case_id,
        "welcome_message": "Welcome aboard",
        "user_email": _email(agency),
        "reference": reference,
        "reminder_fees": "25.50",
    }

    first = run_dag("roles_start", conf=conf)
    again = run_dag("roles_start", conf=conf)

    assert first.states == again.states == {"start": "success"}
    result = first.xcom("start")
    assert (result["caseId"], result["status"], result["alreadyStarted"]) == (case_id, "Active", False)
    assert again.xcom("start")["alreadyStarted"] is True
    case = agency.collection.get_case(case_id)
    assert (case.lifecycle, float(case.reminder_fees)) == ("Active", 25.5)
    assert agency.collection.get_case_by_partner_reference(reference).id == case.id
    chats = agency.managing.get_managed_case_chats(case_id)
    assert [c.message for c in chats] == ["Welcome aboard"]  # the second run sent nothing


def test_start_refuses_bad_input_naming_the_field_before_sending(run_dag: Any, agency: Agency) -> None:
    (case_id,) = assign_cases(agency.managing, agency.collection, 1)
    before = counts(agency.sandbox)

    run = run_dag("roles_start", conf={"case_id": case_id, "welcome_message": "", "user_email": _email(agency)})

    assert run.states == {"start": "failed"}
    assert run.ti("start").try_number == 1  # a bad field is not retried
    assert (counts(agency.sandbox) - before).matching("POST /cases") == 0
    assert agency.collection.get_case(case_id).lifecycle == "Pending Verification"


def test_a_retried_payment_is_recorded_once_and_shows_on_the_managing_side(run_dag: Any, agency: Agency) -> None:
    case_id = _active_case(agency)
    conf = {"case_id": case_id, "amount": "120.50", "date": TODAY, "source_id": "TX-retry-1"}

    run = run_dag("roles_pay_then_die", conf=conf)

    assert run.states == {"pay": "success"}
    assert run.ti("pay").try_number == 2  # the first try died after Debitura recorded the payment
    payments = agency.collection.get_case_payments(case_id)
    assert len(payments) == 1
    assert run.xcom("pay")["paymentId"] == str(payments[0].id)
    assert [str(p.id) for p in agency.managing.get_managed_case_payments(case_id)] == [str(payments[0].id)]


def test_two_bank_transactions_of_the_same_amount_and_day_are_two_payments(run_dag: Any, agency: Agency) -> None:
    case_id = _active_case(agency)
    for source in ("TX-a", "TX-b", "TX-a"):
        run = run_dag("roles_pay", conf={"case_id": case_id, "amount": "10", "date": TODAY, "source_id": source})
        assert run.states == {"pay": "success"}
    assert len(agency.collection.get_case_payments(case_id)) == 2


def test_the_same_transaction_with_another_amount_fails_for_good(run_dag: Any, agency: Agency) -> None:
    case_id = _active_case(agency)
    run_dag("roles_pay", conf={"case_id": case_id, "amount": "10", "date": TODAY, "source_id": "TX-c"})

    changed = run_dag("roles_pay", conf={"case_id": case_id, "amount": "11", "date": TODAY, "source_id": "TX-c"})

    assert changed.states == {"pay": "failed"}
    assert changed.ti("pay").try_number == 1
    assert len(agency.collection.get_case_payments(case_id)) == 1


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"amount": "ten"}, "paymentAmount"),
        ({"amount": "0"}, "paymentAmount"),
        ({"date": None}, "date"),
        ({"close_case": "maybe"}, "closeCase"),
    ],
)
def test_an_invalid_payment_is_refused_before_sending(
    conf: dict[str, Any], field: str, run_dag: Any, agency: Agency, capfd: pytest.CaptureFixture[str]
) -> None:
    case_id = _active_case(agency)
    before = counts(agency.sandbox)

    run = run_dag("roles_pay", conf={"case_id": case_id, "amount": "10", "date": TODAY, **conf})

    assert run.states == {"pay": "failed"}
    assert run.ti("pay").try_number == 1
    assert (counts(agency.sandbox) - before).matching("POST /cases") == 0
    assert f"Invalid payment (nothing was sent): {field}:" in capfd.readouterr().out


def test_update_and_delete_check_the_case_first(run_dag: Any, agency: Agency) -> None:
    case_id = _active_case(agency, amount=200.0)
    paid = agency.collection.record_payment(
        case_id, {"date": TODAY, "paymentAmount": 200, "paymentRecipient": "CollectionPartner", "closeCase": True}
    )
    assert paid.case_closed
    payment_id = str(paid.payment_id)
    base = {"case_id": case_id, "payment_id": payment_id, "date": TODAY}

    refused = run_dag("roles_update_payment", conf={**base, "amount": "150"})
    edited = run_dag("roles_update_payment", conf={**base, "amount": "150", "reopen": True})
    wrong = run_dag("roles_delete_payment", conf={**base, "payment_id": case_id})
    deleted = run_dag("roles_delete_payment", conf=base)

    assert refused.states == {"update": "failed"} and refused.ti("update").try_number == 1
    assert edited.states == {"update": "success"}
    assert float(edited.xcom("update")["grossAmount"]) == 150.0
    assert wrong.states == {"delete": "failed"} and wrong.ti("delete").try_number == 1
    assert deleted.states == {"delete": "success"}
    assert deleted.ti("delete").try_number == 2  # the first try died after deleting
    assert deleted.xcom("delete") == {
        "caseId": case_id,
        "paymentId": payment_id,
        "deleted": True,
        "alreadyDeleted": False,
    }
    assert agency.collection.get_case_payments(case_id) == []
    assert agency.collection.get_case(case_id).lifecycle == "Active"  # reopened by the edit


def test_an_invoiced_payment_is_refused_with_the_reason(
    run_dag: Any,
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    with sandbox_factory(payout_invoice_days=0.0) as sandbox:
        for name, value in connection_env(sandbox, tmp_path / "crm.sqlite3").items():
            monkeypatch.setenv(name, value)
        managing, collection = clients(sandbox)
        with managing, collection:
            (case_id,) = assign_cases(managing, collection, 1)
            start(collection, case_id)
            paid = collection.record_payment(
                case_id, {"date": TODAY, "paymentAmount": 50, "paymentRecipient": "CollectionPartner"}
            )

            run = run_dag(
                "roles_update_payment",
                conf={"case_id": case_id, "payment_id": str(paid.payment_id), "amount": "40", "date": TODAY},
            )

            assert run.states == {"update": "failed"}
            assert run.ti("update").try_number == 1
            assert "its payout has already been invoiced" in capfd.readouterr().out
            assert float(collection.get_case_payments(case_id)[0].gross_amount) == 50.0


def test_a_note_is_added_once_when_the_first_try_dies_after_sending(run_dag: Any, agency: Agency) -> None:
    case_id = _active_case(agency)

    run = run_dag("roles_note", conf={"case_id": case_id, "description": "Called the debtor, promised Friday"})
    future = run_dag("roles_note", conf={"case_id": case_id, "description": "x", "event_date": "2999-01-01"})

    assert run.states == {"note": "success"} and run.ti("note").try_number == 2
    notes = [i for i in agency.collection.get_case_timeline(case_id).items if i.type == "NoteAdded"]
    assert [n.description for n in notes] == ["Called the debtor, promised Friday"]
    assert future.states == {"note": "failed"} and future.ti("note").try_number == 1


def test_a_chat_message_is_posted_once_when_retried(run_dag: Any, agency: Agency) -> None:
    case_id = _active_case(agency)

    run = run_dag(
        "roles_chat", conf={"case_id": case_id, "message": "We reached the debtor today.", "user_email": _email(agency)}
    )

    assert run.states == {"chat": "success"} and run.ti("chat").try_number == 2
    messages = [c.message for c in agency.managing.get_managed_case_chats(case_id)]
    assert messages == ["Started", "We reached the debtor today."]
    assert "message" not in run.xcom("chat")


def test_an_upload_is_made_once_and_bad_files_are_refused_before_sending(
    run_dag: Any, agency: Agency, tmp_path: Path
) -> None:
    case_id = _active_case(agency)
    letter = tmp_path / "demand-letter.pdf"
    letter.write_bytes(b"%PDF-1.4 demand letter")
    program = tmp_path / "tool.exe"
    program.write_bytes(b"MZ")
    huge = tmp_path / "scan.pdf"
    with huge.open("wb") as handle:
        handle.truncate(25 * 1024 * 1024 + 1)  # sparse: no 25 MB written
    before = counts(agency.sandbox)

    run = run_dag("roles_upload", conf={"case_id": case_id, "path": str(letter), "document_type": "DemandLetter"})
    refused = [
        run_dag("roles_upload", conf={"case_id": case_id, "path": str(path), **extra})
        for path, extra in (
            (program, {}),
            (huge, {}),
            (letter, {"document_type": "Letter"}),
            (letter, {"description": "x" * 501}),
        )
    ]

    assert run.states == {"upload": "success"} and run.ti("upload").try_number == 2
    files = agency.collection.get_case_files(case_id)
    assert [(f.file_name, f.document_type) for f in files] == [("demand-letter.pdf", "DemandLetter")]
    assert run.xcom("upload")["id"] == str(files[0].id)
    assert all(r.states == {"upload": "failed"} and r.ti("upload").try_number == 1 for r in refused)
    assert (counts(agency.sandbox) - before).matching("POST /cases/{id}/files") == 1


def test_close_checks_the_money_first_and_closes_once(run_dag: Any, agency: Agency) -> None:
    case_id = _active_case(agency, amount=300.0)
    before = counts(agency.sandbox)

    paid_without_money = run_dag("roles_close", conf={"case_id": case_id, "close_code": "Paid"})
    other_without_comment = run_dag("roles_close", conf={"case_id": case_id, "close_code": "Other"})
    unknown = run_dag("roles_close", conf={"case_id": case_id, "close_code": "Gone"})

    assert (counts(agency.sandbox) - before).matching("POST /cases/{id}/close") == 0
    assert all(
        r.states == {"close": "failed"} and r.ti("close").try_number == 1
        for r in (paid_without_money, other_without_comment, unknown)
    )
    agency.collection.record_payment(
        case_id, {"date": TODAY, "paymentAmount": 100, "paymentRecipient": "CollectionPartner"}
    )
    closed = run_dag("roles_close", conf={"case_id": case_id, "close_code": "Partially paid"})
    again = run_dag("roles_close", conf={"case_id": case_id, "close_code": "PartiallyPaid"})

    assert closed.xcom("close")["closeCode"] == "PartiallyPaid" and closed.xcom("close")["alreadyClosed"] is False
    assert again.xcom("close")["alreadyClosed"] is True
    assert agency.managing.get_managed_case(case_id).close_code == "Partially paid"
    assert (counts(agency.sandbox) - before).matching("POST /cases/{id}/close") == 1
