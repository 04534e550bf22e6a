"""The trigger behind a deferred :class:`~debitura_provider.sensors.assigned_cases.AssignedCasesSensor`.

It lists the cases waiting for acceptance with the async client, in the triggerer's event loop,
until enough wait, the wall-clock deadline passes, or Debitura refuses for good. Kwargs and events
are JSON only; a trigger restarted by the triggerer simply looks again (the list is the state).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from debitura_provider.api.models import Case, Lifecycle
from debitura_provider.api.personal_data import summary
from debitura_provider.compat import BaseTrigger, TriggerEvent
from debitura_provider.failures import is_transient
from debitura_provider.hooks.debitura import DebituraHook

ORDER = "DateCreated:asc"


def waiting(cases: Iterable[Case], excluded: set[str], wanted: int) -> dict[str, Any] | None:
    """The sensor's result when at least ``wanted`` of ``cases`` (minus ``excluded``) wait, else None.

    Shared by the sensor's poke and the trigger, so both decide alike.
    """
    found = [case for case in cases if str(case.id).lower() not in excluded]
    if len(found) < wanted:
        return None
    return {"caseIds": [str(c.id) for c in found], "cases": [summary(c) for c in found]}


class AssignedCasesTrigger(BaseTrigger):
    """Lists this partner's cases in ``statuses`` every ``poll_interval`` seconds.

    Events: ``{"status": "success", "caseIds", "cases"}``, ``{"status": "timeout", "message"}`` or
    ``{"status": "error", "message"}`` (401 and other refusals). Outages, 5xx and 429 are not errors:
    the next look comes after ``poll_interval``.

    :param statuses: lifecycle API names that count as waiting.
    :param excluded: case ids to leave out.
    :param min_cases: how many must wait for the success event.
    :param include_test_cases: also count the caller's own ``isTest`` cases.
    :param end_time: the sensor's deadline (Unix time); the timeout event comes at it.
    :param poll_interval: seconds between looks.
    :param debitura_conn_id: the collection-partner connection.
    """

    def __init__(
        self,
        *,
        statuses: Sequence[str],
        excluded: Sequence[str],
        min_cases: int,
        include_test_cases: bool,
        end_time: float,
        poll_interval: float = 60.0,
        debitura_conn_id: str = DebituraHook.default_conn_name,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.statuses = list(statuses)
        self.excluded = list(excluded)
        self.min_cases = min_cases
        self.include_test_cases = include_test_cases
        self.end_time = end_time
        self.poll_interval = poll_interval
        self.debitura_conn_id = debitura_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "statuses": self.statuses,
                "excluded": self.excluded,
                "min_cases": self.min_cases,
                "include_test_cases": self.include_test_cases,
                "end_time": self.end_time,
                "poll_interval": self.poll_interval,
                "debitura_conn_id": self.debitura_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            statuses = [Lifecycle.parse(s) for s in self.statuses]
        except ValueError as exc:
            yield _event({"status": "error", "message": f"invalid trigger arguments: {exc}"})
            return
        excluded = {i.lower() for i in self.excluded}
        hook = DebituraHook(self.debitura_conn_id)
        async with await hook.get_async_client() as client:
            while True:
                try:
                    cases = [
                        case
                        async for case in client.iter_cases(
                            statuses=statuses, sort=ORDER, include_test_cases=self.include_test_cases
                        )
                    ]
                except Exception as exc:
                    if not is_transient(exc):
                        yield _event({"status": "error", "message": str(exc)})
                        return
                    self.log.warning("Listing assigned cases failed, will look again: %s", exc)
                else:
                    result = waiting(cases, excluded, self.min_cases)
                    if result is not None:
                        yield _event({"status": "success", **result})
                        return
                remaining = self.end_time - time.time()
                if remaining <= 0:
                    message = f"Sensor timed out: fewer than {self.min_cases} case(s) wait for acceptance"
                    yield _event({"status": "timeout", "message": message})
                    return
                await asyncio.sleep(min(self.poll_interval, remaining))


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
