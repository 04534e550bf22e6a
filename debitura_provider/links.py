"""The "Debitura case" button on a task: opens the case in Debitura's partner portal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from debitura_provider.compat import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey

    from debitura_provider.compat import BaseOperator, Context
    from debitura_provider.hooks.debitura import DebituraHook

CASE_URL_XCOM_KEY = "debitura_case_url"


class DebituraCaseLink(BaseOperatorLink):
    """Reads the URL the task pushed (``portal_url`` connection field, default https://partner.debitura.com)."""

    name = "Debitura case"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url: Any = XCom.get_value(ti_key=ti_key, key=CASE_URL_XCOM_KEY)
        return url if isinstance(url, str) else ""


def push_case_url(context: Context, hook: DebituraHook, case_id: str) -> None:
    """Remember which case the task is about, for :class:`DebituraCaseLink`."""
    context["ti"].xcom_push(key=CASE_URL_XCOM_KEY, value=hook.portal_case_url(case_id))
