"""The "Debitura case" button on a task: opens the case in Debitura's partner portal.

A sensor watching several cases links to the "Debitura" page's view of all of them
(:data:`WATCHED_CASES_PATH`) until one satisfies it, then to that case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from debitura_provider.compat import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey

    from debitura_provider.compat import BaseOperator, Context
    from debitura_provider.hooks.debitura import DebituraHook

CASE_URL_XCOM_KEY = "debitura_case_url"
WATCHED_CASES_PATH = "/debitura/ui/watched"
"""The plugin's view of a task's watched cases (``debitura_provider.receiver.portfolio_view``)."""


class DebituraCaseLink(BaseOperatorLink):
    """Reads the URL the task pushed (``portal_url`` connection field, default https://partner.debitura.com)."""

    name = "Debitura case"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url: Any = XCom.get_value(ti_key=ti_key, key=CASE_URL_XCOM_KEY)
        return url if isinstance(url, str) else ""


def push_case_url(context: Context, hook: DebituraHook, case_id: str) -> None:
    """Remember which case the task is about, for :class:`DebituraCaseLink`."""
    context["ti"].xcom_push(key=CASE_URL_XCOM_KEY, value=hook.portal_case_url(case_id))


def push_watch_url(context: Context, hook: DebituraHook, case_ids: list[str]) -> None:
    """Link one watched case to its portal page, several to the view of all of them (read from the task's
    rendered ``case_ids``, so no id list goes into XCom)."""
    if len(case_ids) == 1:
        push_case_url(context, hook, case_ids[0])
        return
    from urllib.parse import urlencode

    ti = context["ti"]
    query: dict[str, object] = {"conn_id": hook.debitura_conn_id, "dag_id": ti.dag_id, "run_id": ti.run_id}
    query |= {"task_id": ti.task_id, "map_index": getattr(ti, "map_index", -1)}
    context["ti"].xcom_push(key=CASE_URL_XCOM_KEY, value=f"{WATCHED_CASES_PATH}?{urlencode(query)}")


def push_satisfied_url(context: Context, hook: DebituraHook, satisfied: list[str]) -> None:
    """Once the watch is satisfied, link the first case that satisfied it."""
    if satisfied:
        push_case_url(context, hook, str(satisfied[0]))
