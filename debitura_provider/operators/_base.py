"""What every Debitura operator and the sensor share: one hook per task instance, closed at the end.

A task instance builds its :class:`~debitura_provider.hooks.debitura.DebituraHook` on first use of
``hook`` (a ``functools.cached_property``): one connection lookup and at most one sync client per
try, shared by every call and every poke. ``execute`` (and ``execute_complete``) end in
``close_hook()`` in a ``finally``, so the client is closed when the task ends, failed or not;
``on_kill`` closes it too. Airflow calls ``post_execute`` only after a successful ``execute``,
so it is not used for this.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from debitura_provider.api import ConfigurationError, DebituraError
from debitura_provider.compat import AirflowFailException, BaseOperator
from debitura_provider.failures import airflow_error
from debitura_provider.hooks.debitura import DebituraHook

if TYPE_CHECKING:
    from debitura_provider.compat import Context

T = TypeVar("T")


class DebituraHookMixin:
    """``hook`` built once per task instance from ``debitura_conn_id``; ``close_hook()`` ends it."""

    debitura_conn_id: str

    @cached_property
    def hook(self) -> DebituraHook:
        """The task's hook, built on first use (after templates are rendered) and kept until ``close_hook``."""
        return DebituraHook(self.debitura_conn_id)

    def close_hook(self) -> None:
        """Close the hook's clients if it was built; the next use of ``hook`` builds a new one."""
        hook: DebituraHook | None = self.__dict__.pop("hook", None)
        if hook is not None:
            hook.close()

    def on_kill(self) -> None:
        self.close_hook()

    @staticmethod
    def coerce(read: Callable[[Any, str], T], value: Any, field: str) -> T:
        """``read(value, field)`` (a :mod:`debitura_provider.coercion` function); a bad value fails the
        task without retry, naming the field."""
        try:
            return read(value, field)
        except ConfigurationError as exc:
            raise AirflowFailException(str(exc)) from None


class DebituraBaseOperator(DebituraHookMixin, BaseOperator):
    """Base of the provider's operators: the hook, and client errors turned into task outcomes.

    Subclasses implement :meth:`work`; ``execute`` runs it and closes the hook however it ends.
    Requests go through :meth:`call`, so that an invalid request fails the task without retry and
    an outage fails the try.

    :param debitura_conn_id: the ``debitura`` connection (API base URL, API key and client settings).
    """

    ui_color = "#e8f0fe"

    def __init__(self, *, debitura_conn_id: str = DebituraHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.debitura_conn_id = debitura_conn_id

    def execute(self, context: Context) -> Any:
        try:
            return self.work(context)
        finally:
            self.close_hook()

    def work(self, context: Context) -> Any:
        """The task itself; the hook is closed after it, whether it returns or raises."""
        raise NotImplementedError

    def call(self, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, with a client error raised as the Airflow exception it means."""
        try:
            return fn(*args, **kwargs)
        except DebituraError as exc:
            raise airflow_error(exc, doing) from None
