"""DAGs that run the collection-partner operators, the assigned-cases sensor and the two sync operators.

Inputs come from ``dag_run.conf`` (native rendering). The ``Dies...`` subclasses stage a worker
dying right after Debitura did the work, before the task could report it: the retry must not
repeat the write. Collection-partner tasks use ``debitura_collection``; the syncs the managing key.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import dag

from debitura_provider.compat import AirflowException, Context
from debitura_provider.operators.case_chats import SyncCaseChatsOperator
from debitura_provider.operators.case_files import SyncCaseFilesOperator, UploadCaseFileOperator
from debitura_provider.operators.case_payments import (
    DeletePaymentOperator,
    RecordPaymentOperator,
    UpdatePaymentOperator,
)
from debitura_provider.operators.case_work import (
    AddCaseNoteOperator,
    CloseCaseOperator,
    SendCaseChatOperator,
    StartCaseOperator,
)
from debitura_provider.sensors.assigned_cases import AssignedCasesSensor

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
RETRY_AT_ONCE = {"retries": 1, "retry_delay": dt.timedelta(0)}
CONF = "{{ dag_run.conf[%r] }}"
OPTIONAL = "{{ dag_run.conf.get(%r) }}"
COLLECTION = "debitura_collection"


class DiesAfterWork:
    """The first try dies right after the operator's work is done (Debitura answered)."""

    def execute(self, context: Context) -> Any:
        result = super().execute(context)  # type: ignore[misc]
        if context["ti"].try_number == 1:
            raise AirflowException("simulated worker crash after the write")
        return result


class DiesAfterSending:
    """The first try dies right after Debitura answered the request ``crash_after``, before anything was stored."""

    crash_after = ""

    def execute(self, context: Context) -> Any:
        self._first_try = context["ti"].try_number == 1
        return super().execute(context)  # type: ignore[misc]

    def call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        result = super().call(doing, fn, *args, **kwargs)  # type: ignore[misc]
        if doing == self.crash_after and self._first_try:
            raise AirflowException(f"simulated worker crash after: {doing}")
        return result


class PayThenDie(DiesAfterWork, RecordPaymentOperator):
    pass


class ChatThenDie(DiesAfterWork, SendCaseChatOperator):
    pass


class NoteThenDie(DiesAfterSending, AddCaseNoteOperator):
    crash_after = "Adding the note"


class UploadThenDie(DiesAfterSending, UploadCaseFileOperator):
    crash_after = "Uploading the file"


class DeleteThenDie(DiesAfterWork, DeletePaymentOperator):
    pass


class AssignsBeforeDeferring(AssignedCasesSensor):
    """One more case is assigned right after the sensor's first look, so only the trigger can see it."""

    def defer(self, **kwargs: Any) -> Any:
        from debitura_provider.hooks.debitura import DebituraHook
        from tests.roles.support import assign_cases

        with DebituraHook("debitura_default").client as managing, DebituraHook(COLLECTION).client as collection:
            assign_cases(managing, collection, 1)
        super().defer(**kwargs)


def _dag(dag_id: str, **kwargs: Any) -> Any:
    return dag(
        dag_id=dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        render_template_as_native_obj=True,
        tags=["debitura-tests"],
        default_args=RETRY_AT_ONCE,
        **kwargs,
    )


@_dag("roles_start")
def roles_start() -> None:
    StartCaseOperator(
        task_id="start",
        debitura_conn_id=COLLECTION,
        case_id=CONF % "case_id",
        welcome_message=CONF % "welcome_message",
        user_email=CONF % "user_email",
        collection_partner_reference=OPTIONAL % "reference",
        reminder_fees=OPTIONAL % "reminder_fees",
    )


@_dag("roles_pay")
def roles_pay() -> None:
    RecordPaymentOperator(
        task_id="pay",
        debitura_conn_id=COLLECTION,
        case_id=CONF % "case_id",
        amount=CONF % "amount",
        payment_date=CONF % "date",
        source_id=OPTIONAL % "source_id",
        close_case=OPTIONAL % "close_case",
    )


@_dag("roles_pay_then_die")
def roles_pay_then_die() -> None:
    PayThenDie(
        task_id="pay",
        debitura_conn_id=COLLECTION,
        case_id=CONF % "case_id",
        amount=CONF % "amount",
        payment_date=CONF % "date",
        source_id=OPTIONAL % "source_id",
    )


@_dag("roles_update_payment")
def roles_update_payment() -> None:
    UpdatePaymentOperator(
        task_id="update",
        debitura_conn_id=COLLECTION,
        case_id=CONF % "case_id",
        payment_id=CONF % "payment_id",
        amount=CONF % "amount",
        payment_date=CONF % "date",
        reopen_case_if_needed=OPTIONAL % "reopen",
    )


@_dag("roles_delete_payment")
def roles_delete_payment() -> None:
    DeleteThenDie(
        task_id="delete",
        debitura_conn_id=COLLECTION,
        case_id=CONF % "case_id",
        payment_id=CONF % "payment_id",
        reopen_case_if_needed=OPTIONAL % "reopen",
    )


@_dag("roles_note")
def roles_note() -> None:
    NoteThenDie(
        task_id="note",
        debitura_conn_id=COLLECTION,
        case_id=CONF % "case_id",
        description=CONF % "description",
        event_date=OPTIONAL % "event_date",
    )


@_dag("roles_chat")
def roles_chat() -> None:
    ChatThenDie(
        task_id="chat",
        debitura_conn_id=COLLECTION,
        case_id=CONF % "case_id",
        message=CONF % "message",
        user_email=CONF % "user_email",
    )


@_dag("roles_upload")
def roles_upload() -> None:
    UploadThenDie(
        task_id="upload",
        debitura_conn_id=COLLECTION,
        case_id=CONF % "case_id",
        path=CONF % "path",
        document_type=OPTIONAL % "document_type",
        description=OPTIONAL % "description",
    )


@_dag("roles_close")
def roles_close() -> None:
    CloseCaseOperator(
        task_id="close",
        debitura_conn_id=COLLECTION,
        case_id=CONF % "case_id",
        close_code=CONF % "close_code",
        comment=OPTIONAL % "comment",
    )


@_dag("roles_assigned")
def roles_assigned() -> None:
    AssignedCasesSensor(
        task_id="assigned",
        debitura_conn_id=COLLECTION,
        exclude_case_ids=OPTIONAL % "exclude",
        min_cases=CONF % "min_cases",
        poke_interval=0.2,
        timeout=3,
        mode="poke",
    )


@_dag("roles_assigned_deferred")
def roles_assigned_deferred() -> None:
    AssignsBeforeDeferring(
        task_id="assigned",
        debitura_conn_id=COLLECTION,
        min_cases=CONF % "min_cases",
        poke_interval=0.2,
        timeout=20,
        deferrable=True,
    )


@_dag("roles_assigned_deferred_short")
def roles_assigned_deferred_short() -> None:
    AssignedCasesSensor(
        task_id="assigned",
        debitura_conn_id=COLLECTION,
        min_cases=CONF % "min_cases",
        poke_interval=0.2,
        timeout=1.5,
        deferrable=True,
    )


@_dag("roles_sync_files")
def roles_sync_files() -> None:
    SyncCaseFilesOperator(task_id="sync", case_ids=CONF % "case_ids", destination=CONF % "destination")


@_dag("roles_sync_chats")
def roles_sync_chats() -> None:
    SyncCaseChatsOperator(task_id="sync", case_ids=CONF % "case_ids", sql_conn_id="debitura_crm")


for build in (
    roles_start,
    roles_pay,
    roles_pay_then_die,
    roles_update_payment,
    roles_delete_payment,
    roles_note,
    roles_chat,
    roles_upload,
    roles_close,
    roles_assigned,
    roles_assigned_deferred,
    roles_assigned_deferred_short,
    roles_sync_files,
    roles_sync_chats,
):
    build()
