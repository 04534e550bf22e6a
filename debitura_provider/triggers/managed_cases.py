"""The trigger behind a deferred :class:`~debitura_provider.sensors.managed_cases.ManagedCaseSensor`.

It runs in the triggerer's event loop, so nothing in it blocks: the connection is read through
``debitura_provider.compat.aget_connection_extra`` (awaited on Airflow 3.3.2+, a worker thread
before, so never a ``DeadlockImminentError``) and requests go through ``httpx.AsyncClient``.
All triggers of one connection in one triggerer share a
:class:`~debitura_provider.api.watch.poller.SharedCasePoller`: N deferred sensors cost
``ceil(N / 100)`` list requests per cycle, not N.

Kwargs and events are JSON only. The kwargs carry the watch's baseline (known payment ids, each
case's starting lifecycle and last seen amounts), so a trigger restarted by the triggerer
re-evaluates from the same baseline and a payment made meanwhile is still seen.

A sensor started from the triggerer (``start_from_trigger``, Airflow 3.3+) never ran on a worker:
its ``case_ids`` arrive as the template the triggerer renders in place before :meth:`run`, and
the baseline is empty (the first cycle takes it). With ``end_from_trigger`` a satisfied watch
ends the task here (``TaskSuccessEvent`` with the sensor's return value and its case link) instead
of resuming it on a worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from debitura_provider.api.endpoints import MAX_PAGE_SIZE
from debitura_provider.api.watch import CaseWatch, WatchSpec, WatchState, run_async, shared_poller
from debitura_provider.coercion import as_id_list
from debitura_provider.compat import BaseTrigger, TaskSuccessEvent, TriggerEvent
from debitura_provider.failures import is_transient
from debitura_provider.hooks.debitura import DebituraHook, case_url
from debitura_provider.links import CASE_URL_XCOM_KEY


class ManagedCaseTrigger(BaseTrigger):
    """Polls watched cases until the watch is satisfied, it fails for good, or ``end_time`` passes.

    :param case_ids: the watched case ids, or their template (rendered by the triggerer, which a
        task started from the trigger needs; read like the sensor's rendered ``case_ids``).
    :param watch: :meth:`WatchSpec.to_json` of the condition.
    :param state: :meth:`WatchState.to_json` at deferral: the baseline.
    :param end_time: wall-clock deadline (``time.time()``); past it a ``timeout`` event is emitted.
        ``None``: Airflow's trigger timeout ends the wait (a task started from the trigger has no
        start time to count from when its kwargs are written).
    :param poll_interval: seconds between cycles (the shared poller uses its subscribers' shortest).
    :param chunk_size: case ids per list request (1 to 100).
    :param debitura_conn_id: the ``debitura`` connection; triggers of one connection share one client.
    :param include_snapshots: put each case's whole snapshot, debtor included, in the success event
        instead of its summary (the sensor's option of the same name).
    :param end_from_trigger: on success, end the task here with ``TaskSuccessEvent`` (the sensor's
        return value and case link as XComs) instead of resuming it on a worker.

    Events: ``{"status": "success", "cases", "payments", "satisfied"}``, ``{"status": "timeout",
    "message"}`` or ``{"status": "error", "message"}`` (401, 404, missing cases...). Outages and 5xx
    are not errors: polling goes on with backoff.
    """

    def __init__(
        self,
        *,
        case_ids: list[str] | str,
        watch: dict[str, Any],
        state: dict[str, Any],
        end_time: float | None,
        poll_interval: float = 60.0,
        chunk_size: int = MAX_PAGE_SIZE,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        include_snapshots: bool = False,
        end_from_trigger: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.case_ids: list[str] | str = case_ids if isinstance(case_ids, str) else list(case_ids)
        self.watch = watch
        self.state = state
        self.end_time = end_time
        self.poll_interval = poll_interval
        self.chunk_size = chunk_size
        self.debitura_conn_id = debitura_conn_id
        self.include_snapshots = include_snapshots
        self.end_from_trigger = end_from_trigger

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "case_ids": self.case_ids,
                "watch": self.watch,
                "state": self.state,
                "end_time": self.end_time,
                "poll_interval": self.poll_interval,
                "chunk_size": self.chunk_size,
                "debitura_conn_id": self.debitura_conn_id,
                "include_snapshots": self.include_snapshots,
                "end_from_trigger": self.end_from_trigger,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            watch = CaseWatch(
                as_id_list(self.case_ids, "case_ids"),
                WatchSpec.from_json(self.watch),
                WatchState.from_json(self.state),
                full_snapshots=self.include_snapshots,
            )
        except ValueError as exc:
            yield _event({"status": "error", "message": f"invalid trigger arguments: {exc}"})
            return
        hook = DebituraHook(self.debitura_conn_id)
        poller = shared_poller(self.debitura_conn_id, hook.get_async_client)
        subscription = poller.subscribe(watch.case_ids, interval=self.poll_interval, chunk_size=self.chunk_size)
        async with subscription:
            while True:
                remaining = None if self.end_time is None else self.end_time - time.time()
                try:
                    if remaining is not None and remaining <= 0:
                        raise asyncio.TimeoutError
                    snapshots = await asyncio.wait_for(subscription.next(), timeout=remaining)
                    result = await run_async(poller.fetch, watch.cycle(snapshots))
                except asyncio.TimeoutError:  # what wait_for raises; the builtin TimeoutError only from Python 3.11
                    yield _event({"status": "timeout", "message": self._timeout_message(watch)})
                    return
                except Exception as exc:
                    if is_transient(exc):
                        self.log.warning("Polling %d case(s) failed, will retry: %s", len(watch.case_ids), exc)
                        continue
                    yield _event({"status": "error", "message": str(exc)})
                    return
                if result is not None:
                    if self.end_from_trigger:
                        yield await self._task_success(hook, result.to_json())
                    else:
                        yield _event({"status": "success", **result.to_json()})
                    return
                self.log.debug("%d of %d case(s) satisfied", len(watch.satisfied_ids), len(watch.case_ids))

    async def _task_success(self, hook: DebituraHook, result: dict[str, Any]) -> TriggerEvent:
        """What the sensor's ``execute_complete`` would leave: its return value and the satisfying case's link."""
        xcoms: dict[str, Any] = {"return_value": result}
        if result["satisfied"]:
            settings = await hook.asettings()
            xcoms[CASE_URL_XCOM_KEY] = case_url(settings.portal_url, str(result["satisfied"][0]))
        return TaskSuccessEvent(xcoms=xcoms)

    def _timeout_message(self, watch: CaseWatch) -> str:
        return (
            f"Sensor timed out: {len(watch.satisfied_ids)} of {len(watch.case_ids)} case(s) met "
            f"{watch.spec.condition.value} (require {watch.spec.require.value})"
        )


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
