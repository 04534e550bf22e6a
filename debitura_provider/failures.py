"""How client errors become Airflow task outcomes.

Each error says whether it may pass (``retryable``, :mod:`debitura_provider.api.errors`). One that
may not (a 4xx Debitura refused for what it said, a request that never left because a field is
invalid, a 409 that needs a different request) fails the task for good (``AirflowFailException``).
Outages, 5xx, 429 and in-flight 409s that outlived the client's own retries fail the try
(``AirflowException``) so Airflow's ``retries`` apply.
"""

from __future__ import annotations

from debitura_provider.api import DebituraError
from debitura_provider.compat import AirflowException, AirflowFailException


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later may succeed: the error's own ``retryable``."""
    return isinstance(exc, DebituraError) and exc.retryable


def airflow_error(exc: Exception, doing: str) -> AirflowException:
    """The Airflow exception to raise for ``exc`` while ``doing`` something (messages never hold secrets)."""
    cls = AirflowException if is_transient(exc) else AirflowFailException
    return cls(f"{doing} failed: {exc}")
