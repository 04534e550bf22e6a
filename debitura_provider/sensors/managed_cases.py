"""Wait until referred cases are paid, paid down, or move in their lifecycle."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from debitura_provider.api import DebituraError
from debitura_provider.api.endpoints import MAX_PAGE_SIZE
from debitura_provider.api.watch import CaseWatch, WatchSpec, WatchState, normalize_case_ids, run_sync
from debitura_provider.api.watch.scan import WatchedListing
from debitura_provider.coercion import as_id_list
from debitura_provider.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    StartTriggerArgs,
    conf,
    supports,
    task_state_store,
)
from debitura_provider.failures import is_transient
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.links import DebituraCaseLink, push_satisfied_url, push_watch_url
from debitura_provider.operators._base import DebituraHookMixin
from debitura_provider.triggers.managed_cases import ManagedCaseTrigger

if TYPE_CHECKING:
    from debitura_provider.compat import Context


class ManagedCaseSensor(DebituraHookMixin, BaseSensorOperator):
    """Waits until a case, or each (``require="all"``) or one (``"any"``) of several, meets a condition.

    Conditions: ``new_payment`` (a payment whose id is not in ``known_payment_ids``; by default any
    payment, so one made between the case's creation and the first poll counts),
    ``remainder_at_most`` (the remainder falls to ``remainder_at_most`` or below; 0 = paid in full),
    ``lifecycle_in`` (the lifecycle is one of ``lifecycles``) and ``lifecycle_changed`` (it differs
    from the lifecycle at the sensor's first poll). A case that met the condition once stays counted.

    Each poll costs ``ceil(N / chunk_size)`` list requests for N cases, plus one payments read per
    case whose money moved; from 300 cases on, pokes of one ``poke``-mode try (and the deferred
    trigger's shared poller) find the changes with the portfolio scan instead, about one request.
    Modes ``poke`` and ``reschedule`` use the blocking client; between
    reschedules the baseline lives in the task's ``task_state_store``. Deferred (``deferrable``,
    default ``[operators] default_deferrable``), the sensor checks once, then hands the baseline to
    :class:`~debitura_provider.triggers.managed_cases.ManagedCaseTrigger`, which keeps its own
    wall-clock deadline so a timeout fails the task as a sensor timeout.

    One hook, so one connection lookup and one client, serves every poke of a try; it is closed
    when ``execute`` ends, however it ends.

    :param case_ids: the case id, or several (templated; a list, or a list rendered to text).
    :param condition: ``new_payment``, ``remainder_at_most``, ``lifecycle_in`` or ``lifecycle_changed``.
    :param remainder_at_most: the amount the remainder must fall to (``remainder_at_most`` only).
    :param lifecycles: the lifecycles that satisfy ``lifecycle_in``.
    :param require: ``all`` cases must meet the condition, or ``any`` one.
    :param known_payment_ids: payments that do not count as new (templated; ``new_payment`` only).
    :param chunk_size: case ids per list request (1 to 100).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param start_from_trigger: (deferrable only, Airflow 3.3+; ignored before, with a log line) the
        scheduler hands the task straight to a triggerer, which renders ``case_ids`` itself: no
        worker runs the first check, and the first trigger cycle takes the baseline. Not for mapped
        sensors (Airflow starts a mapped task on a worker either way) nor a templated
        ``known_payment_ids``.
    :param end_from_trigger: (deferrable only) a satisfied watch ends the task in the triggerer,
        return value and case link included, instead of resuming it on a worker. Timeouts and
        errors still resume it, so they fail it with their message. Together with
        ``start_from_trigger`` a sensor never takes a worker slot: hundreds of them cost the
        triggerers' shared polls only (docs/how-to/production.md, several triggerers). Airflow
        refuses it at parse time while a plugin registers listeners (OpenLineage's, say).
    :param include_snapshots: return (and, deferred, carry in the trigger event) each case's whole
        snapshot instead of its summary. The debtor's name, contacts, address and the comments are
        then in XCom and in the triggerer's log (docs/data-protection.md).
    :param debitura_conn_id: the ``debitura`` connection.
    :return: ``{"cases": [case, ...], "payments": {case_id: [payment, ...]}, "satisfied": [case_id, ...]}``
        in wire form: each case as its :func:`~debitura_provider.api.personal_data.summary` (ids,
        references, client, amounts, currency, lifecycle, close code, dates; no debtor data);
        ``payments`` holds the satisfying payments (payment conditions only).
    """

    template_fields: Sequence[str] = ("case_ids", "known_payment_ids")
    operator_extra_links = (DebituraCaseLink(),)
    ui_color = "#e8f0fe"

    STATE_KEY = "debitura_watch"

    def __init__(
        self,
        *,
        case_ids: str | list[str],
        condition: str,
        remainder_at_most: float | None = None,
        lifecycles: list[str] | None = None,
        require: str = "all",
        known_payment_ids: list[str] | None = None,
        chunk_size: int = MAX_PAGE_SIZE,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        include_snapshots: bool = False,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = WatchSpec.build(
            condition, remainder_at_most=remainder_at_most, lifecycles=lifecycles, require=require
        )
        if not 1 <= chunk_size <= MAX_PAGE_SIZE:
            raise ValueError(f"chunk_size must be 1 to {MAX_PAGE_SIZE}")
        self.case_ids = case_ids
        self.condition = condition
        self.remainder_at_most = remainder_at_most
        self.lifecycles = lifecycles
        self.require = require
        self.known_payment_ids = known_payment_ids
        self.chunk_size = chunk_size
        self.deferrable = deferrable
        self.include_snapshots = include_snapshots
        self.debitura_conn_id = debitura_conn_id
        self.end_from_trigger = end_from_trigger
        self._watch: CaseWatch | None = None
        self._saved: dict[str, Any] | None = None
        if (start_from_trigger or end_from_trigger) and not deferrable:
            raise ValueError("start_from_trigger and end_from_trigger need deferrable=True")
        if start_from_trigger and isinstance(known_payment_ids, str):  # on every version, so a DAG parses alike
            raise ValueError("start_from_trigger needs known_payment_ids as a list: no worker renders it")
        if start_from_trigger and supports("start_from_trigger"):
            self._start_from_trigger()

    def _start_from_trigger(self) -> None:
        """Let the scheduler defer the task to a triggerer at once (Airflow renders ``case_ids`` there)."""
        state = WatchState(known_payment_ids=set(self._known_payment_ids()))
        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{ManagedCaseTrigger.__module__}.{ManagedCaseTrigger.__qualname__}",
            trigger_kwargs=self._trigger_kwargs(self.case_ids, state, end_time=None),
            next_method="execute_complete",
            next_kwargs=None,
            timeout=timedelta(seconds=self.timeout),
        )

    def _trigger_kwargs(self, case_ids: list[str] | str, state: WatchState, end_time: float | None) -> dict[str, Any]:
        return {
            "case_ids": case_ids,
            "watch": self.spec.to_json(),
            "state": state.to_json(),
            "end_time": end_time,
            "poll_interval": self.poke_interval,
            "chunk_size": self.chunk_size,
            "debitura_conn_id": self.debitura_conn_id,
            "include_snapshots": self.include_snapshots,
            "end_from_trigger": self.end_from_trigger,
        }

    def execute(self, context: Context) -> Any:
        try:
            return self._execute(context)
        finally:
            self.close_hook()

    def _execute(self, context: Context) -> Any:
        watch = self._load_watch(context)
        push_watch_url(context, self.hook, watch.case_ids)  # the satisfying case's once known
        if not self.deferrable:
            return super().execute(context)
        result = self._check(context)
        if result is not None:
            return result
        self.defer(
            trigger=ManagedCaseTrigger(
                **self._trigger_kwargs(watch.case_ids, watch.state, end_time=time.time() + self.timeout)
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        result = self._check(context)
        return PokeReturnValue(is_done=result is not None, xcom_value=result)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume from the trigger; anything but a well-formed event fails the task."""
        if not isinstance(event, dict) or "status" not in event:
            raise AirflowException(f"ManagedCaseSensor resumed without a valid trigger event: {event!r}")
        status = event["status"]
        if status == "success":
            push_satisfied_url(context, self.hook, event["satisfied"])
            return {"cases": event["cases"], "payments": event["payments"], "satisfied": event["satisfied"]}
        if status == "timeout":
            raise AirflowSensorTimeout(event.get("message") or "Sensor timed out")
        if status == "error":
            raise AirflowFailException(f"Watching Debitura cases failed: {event.get('message')}")
        raise AirflowException(f"ManagedCaseSensor got a trigger event with unknown status {status!r}")

    @cached_property
    def _listing(self) -> WatchedListing:
        """Kept across the pokes of one try (``poke`` mode): large watched sets are scanned, not chunked."""
        return WatchedListing()

    def _check(self, context: Context) -> dict[str, Any] | None:
        """One poll cycle; the result when the watch is satisfied, else None."""
        watch = self._load_watch(context)
        try:
            result = run_sync(self.hook.get_client(), self._listing.poll(watch, self.chunk_size))
        except DebituraError as exc:
            if is_transient(exc):
                self.log.warning("Polling %d case(s) failed, will poll again: %s", len(watch.case_ids), exc)
                return None
            raise AirflowFailException(f"Watching Debitura cases failed: {exc}") from None
        self._save_watch(context, watch, done=result is not None)
        self.log.info(
            "%d of %d case(s) meet %s (require %s)",
            len(watch.satisfied_ids),
            len(watch.case_ids),
            self.spec.condition.value,
            self.spec.require.value,
        )
        if result is None:
            return None
        satisfied = result.to_json()
        push_satisfied_url(context, self.hook, satisfied["satisfied"])
        return satisfied

    def _load_watch(self, context: Context) -> CaseWatch:
        """The watch with its baseline: in memory between pokes, else from the task's state store."""
        if self._watch is not None:
            return self._watch
        try:
            ids = normalize_case_ids(as_id_list(self.case_ids, "case_ids"))
            watch = CaseWatch(
                ids, self.spec, known_payment_ids=self._known_payment_ids(), full_snapshots=self.include_snapshots
            )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        store = task_state_store(context)
        saved: Any = store.get(self.STATE_KEY) if store is not None else None
        if isinstance(saved, dict) and saved.get("fingerprint") == self._fingerprint(watch):
            watch.state = WatchState.from_json(saved["state"])
        self._watch = watch
        return watch

    def _save_watch(self, context: Context, watch: CaseWatch, *, done: bool = False) -> None:
        """Keep the baseline for the next reschedule or try; a satisfied watch needs none."""
        store = task_state_store(context)
        if store is None:
            return
        if done:
            if self._saved is not None or store.get(self.STATE_KEY) is not None:
                store.delete(self.STATE_KEY)
            return
        record: dict[str, Any] = {"fingerprint": self._fingerprint(watch), "state": watch.state.to_json()}
        if record != self._saved:
            store.set(self.STATE_KEY, record)
            self._saved = record

    def _known_payment_ids(self) -> list[str]:
        """``known_payment_ids`` as given or rendered; none given (or rendered ``"None"``) means none."""
        if self.known_payment_ids is None or self.known_payment_ids in ("", "None", []):
            return []
        return as_id_list(self.known_payment_ids, "known_payment_ids")

    def _fingerprint(self, watch: CaseWatch) -> str:
        """Ties a saved baseline to the same cases and condition (templates may change them between runs)."""
        basis = [watch.case_ids, self.spec.to_json(), sorted(self._known_payment_ids())]
        return hashlib.sha256(json.dumps(basis).encode()).hexdigest()
