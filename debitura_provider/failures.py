"""How client errors become Airflow task outcomes.

A request Debitura refused for what it said (4xx other than 409/429), or one that never left
because a field is invalid, cannot succeed on retry: it fails the task for good
(``AirflowFailException``). Outages, 5xx, 429 and in-flight conflicts that outlived the client's own
retries may pass: they fail the try (``AirflowException``) so Airflow's ``retries`` apply.
"""

from __future__ import annotations

from debitura_provider.api import ConflictError, RateLimitError, ServerError, TransportError
from debitura_provider.compat import AirflowException, AirflowFailException


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later may succeed."""
    return isinstance(exc, TransportError | ServerError | RateLimitError | ConflictError)


def airflow_error(exc: Exception, doing: str) -> AirflowException:
    """The Airflow exception to raise for ``exc`` while ``doing`` something (messages never hold secrets)."""
    cls = AirflowException if is_transient(exc) else AirflowFailException
    return cls(f"{doing} failed: {exc}")
