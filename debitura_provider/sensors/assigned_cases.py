"""Wait for cases Debitura assigned to this partner and that nobody has accepted yet.

A case assigned to a collection partner appears in its ``GET /cases`` as Pending Verification,
and leaves that status when the partner starts it (or Debitura moves it on). So "newly assigned"
needs no cursor of its own: the cases waiting for acceptance *are* the new ones, and a case the DAG
accepted never comes back. One poke is ``ceil(pending / 100)`` list requests, sorted oldest first.

Why a list and not ``case.assigned`` webhooks: webhooks need an HTTPS endpoint Debitura can reach,
most Airflow deployments sit on a private network, and a delivery lost while the receiver was down
is never seen again; the list is Debitura's own state and always complete. Where the webhook
receiver runs, schedule the DAG on the ``debitura_case_lifecycle`` Asset (``case.assigned`` updates
it) and let this sensor confirm: the webhook then only wakes the DAG early.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from debitura_provider.api import DebituraError
from debitura_provider.api.models import Lifecycle
from debitura_provider.coercion import as_bool, as_id_list, as_int
from debitura_provider.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from debitura_provider.failures import is_transient
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.operators._base import DebituraHookMixin
from debitura_provider.triggers.assigned_cases import ORDER, AssignedCasesTrigger, waiting

if TYPE_CHECKING:
    from debitura_provider.compat import Context


class AssignedCasesSensor(DebituraHookMixin, BaseSensorOperator):
    """Waits until at least ``min_cases`` cases assigned to this partner wait for acceptance.

    ``min_cases=0`` makes it a single look: it returns at once with whatever waits (maybe nothing),
    for a DAG that runs on a schedule and handles what came in since its last run.

    Use it with the collection-partner connection (the key of the agency's collection-partner
    account). ``mode="reschedule"`` frees the worker slot between pokes; ``deferrable`` (default
    ``[operators] default_deferrable``) looks once, then waits in the triggerer
    (:class:`~debitura_provider.triggers.assigned_cases.AssignedCasesTrigger`), which keeps the
    sensor's ``timeout`` as its own deadline.

    :param statuses: the lifecycles that count as newly assigned (default Pending Verification).
    :param exclude_case_ids: cases to leave out (templated), e.g. ones the agency declines in the portal.
    :param min_cases: how many must wait before the sensor succeeds (templated); 0 looks once.
    :param include_test_cases: also the caller's own ``isTest`` cases.
    :param deferrable: wait in the triggerer instead of holding a worker slot or rescheduling.
    :param debitura_conn_id: the collection-partner connection (the agency's account key).
    :return: ``{"caseIds": [...], "cases": [summary, ...]}``, oldest first; a summary holds ids,
        references, the creditor, amounts, currency, lifecycle and dates, never the debtor.
    """

    template_fields: Sequence[str] = ("exclude_case_ids", "min_cases", "include_test_cases")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        statuses: Sequence[str] = ("PendingVerification",),
        exclude_case_ids: Any = (),
        min_cases: Any = 1,
        include_test_cases: Any = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        debitura_conn_id: str = DebituraHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        try:
            self.statuses = [Lifecycle.parse(s) for s in statuses]
        except ValueError as exc:
            raise ValueError(f"statuses: {exc}") from None
        self.exclude_case_ids = exclude_case_ids
        self.min_cases = min_cases
        self.include_test_cases = include_test_cases
        self.deferrable = deferrable
        self.debitura_conn_id = debitura_conn_id

    def execute(self, context: Context) -> Any:
        try:
            if not self.deferrable:
                return super().execute(context)
            result = self._look()
            if result is not None:
                return result
        finally:
            self.close_hook()
        excluded, wanted, with_tests = self._arguments()
        self.defer(
            trigger=AssignedCasesTrigger(
                statuses=[s.api_name for s in self.statuses],
                excluded=sorted(excluded),
                min_cases=wanted,
                include_test_cases=with_tests,
                end_time=time.time() + self.timeout,
                poll_interval=self.poke_interval,
                debitura_conn_id=self.debitura_conn_id,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume from the trigger; anything but a well-formed event fails the task."""
        status = event.get("status") if isinstance(event, dict) else None
        if status == "success":
            assert event is not None
            return {"caseIds": event["caseIds"], "cases": event["cases"]}
        if status == "timeout":
            raise AirflowSensorTimeout(str(event.get("message") if event else "Sensor timed out"))
        if status == "error":
            raise AirflowFailException(f"Listing assigned cases failed: {event.get('message') if event else ''}")
        raise AirflowException(f"AssignedCasesSensor resumed without a valid trigger event: {event!r}")

    def poke(self, context: Context) -> PokeReturnValue:
        result = self._look()
        return PokeReturnValue(is_done=result is not None, xcom_value=result)

    def _arguments(self) -> tuple[set[str], int, bool]:
        ids = self.coerce(as_id_list, self.exclude_case_ids, "exclude_case_ids") if self.exclude_case_ids else []
        wanted = self.coerce(as_int, self.min_cases, "min_cases")
        return {i.lower() for i in ids}, wanted, self.coerce(as_bool, self.include_test_cases, "include_test_cases")

    def _look(self) -> dict[str, Any] | None:
        """One look at the cases waiting for acceptance: the result when enough wait, else None."""
        excluded, wanted, with_tests = self._arguments()
        try:
            cases = list(
                self.hook.get_client().iter_cases(statuses=self.statuses, sort=ORDER, include_test_cases=with_tests)
            )
        except DebituraError as exc:
            if is_transient(exc):
                self.log.warning("Listing assigned cases failed, will look again: %s", exc)
                return None
            raise AirflowFailException(f"Listing assigned cases failed: {exc}") from None
        result = waiting(cases, excluded, wanted)
        count = sum(1 for case in cases if str(case.id).lower() not in excluded)
        self.log.info("%d case(s) wait for acceptance (want %d)", count, wanted)
        return result
