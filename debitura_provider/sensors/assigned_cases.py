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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from debitura_provider.api import DebituraError
from debitura_provider.api.models import Lifecycle
from debitura_provider.api.personal_data import summary
from debitura_provider.coercion import as_bool, as_id_list, as_int
from debitura_provider.compat import AirflowFailException, BaseSensorOperator, PokeReturnValue
from debitura_provider.failures import is_transient
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.operators._base import DebituraHookMixin

if TYPE_CHECKING:
    from debitura_provider.compat import Context


class AssignedCasesSensor(DebituraHookMixin, BaseSensorOperator):
    """Waits until at least ``min_cases`` cases assigned to this partner wait for acceptance.

    ``min_cases=0`` makes it a single look: it returns at once with whatever waits (maybe nothing),
    for a DAG that runs on a schedule and handles what came in since its last run.

    Use it with the collection-partner connection (the key of the agency's collection-partner
    account). ``mode="reschedule"`` frees the worker slot between pokes.

    :param statuses: the lifecycles that count as newly assigned (default Pending Verification).
    :param exclude_case_ids: cases to leave out (templated), e.g. ones the agency declines in the portal.
    :param include_test_cases: also the caller's own ``isTest`` cases.
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
        self.debitura_conn_id = debitura_conn_id

    def execute(self, context: Context) -> Any:
        try:
            return super().execute(context)
        finally:
            self.close_hook()

    def poke(self, context: Context) -> PokeReturnValue:
        try:
            excluded = (
                set()
                if not self.exclude_case_ids
                else {i.lower() for i in as_id_list(self.exclude_case_ids, "exclude_case_ids")}
            )
            wanted = as_int(self.min_cases, "min_cases")
            with_tests = as_bool(self.include_test_cases, "include_test_cases")
        except DebituraError as exc:
            raise AirflowFailException(str(exc)) from None
        try:
            found = [
                case
                for case in self.hook.get_client().iter_cases(
                    statuses=self.statuses, sort="DateCreated:asc", include_test_cases=with_tests
                )
                if str(case.id) not in excluded
            ]
        except DebituraError as exc:
            if is_transient(exc):
                self.log.warning("Listing assigned cases failed, will poke again: %s", exc)
                return PokeReturnValue(is_done=False)
            raise AirflowFailException(f"Listing assigned cases failed: {exc}") from None
        self.log.info("%d case(s) wait for acceptance (want %d)", len(found), wanted)
        if len(found) < wanted:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(
            is_done=True, xcom_value={"caseIds": [str(c.id) for c in found], "cases": [summary(c) for c in found]}
        )
