"""Watching many cases for payments and lifecycle changes with as few requests as possible.

One poll cycle over N cases costs ``ceil(N / chunk_size)`` ``GET /managed-cases?Ids=...`` requests,
plus one ``GET /managed-cases/{id}/payments`` for each case whose money moved since the last
cycle. Every decision is a pure function of the snapshots and of a JSON-safe
:class:`~debitura_provider.api.watch.state.WatchState`, so the sensor (sync client), the trigger
(async client) and the triggerer-wide :class:`~debitura_provider.api.watch.poller.SharedCasePoller`
share them: only the sending differs.

- :mod:`~debitura_provider.api.watch.condition`: what to wait for (:class:`WatchSpec`), validated once.
- :mod:`~debitura_provider.api.watch.state`: what a watch has learnt, JSON-safe for trigger kwargs.
- :mod:`~debitura_provider.api.watch.cycle`: the sans-I/O cycle, which yields the calls it needs.
- :mod:`~debitura_provider.api.watch.poller`: the sync and async drivers, and the per-loop shared poller.

Why no payment is missed: Debitura defines ``remainder`` as principal + fees - payments, so
``paid_off = grossAmount + totalAddedFees - remainder`` moves whenever a payment is recorded,
edited or deleted. A case seen for the first time with ``paid_off > 0`` has payments, and they are
fetched and compared with the known payment ids (empty by default: any payment counts, including
one made between the case's creation and the first poll). Afterwards payments are fetched
whenever ``paid_off``, the remainder or the lifecycle changed. The state is only advanced after
those payments were read, so a failed cycle is repeated, not skipped, and a trigger restarted
from its serialized state re-evaluates from the same baseline. What polling cannot see: a payment
deleted and another of exactly the same amount recorded between two polls, or (for
``lifecycle_changed``) a lifecycle that changed and changed back between two polls.
"""

from debitura_provider.api.watch.condition import Condition, Require, WatchSpec, normalize_case_ids
from debitura_provider.api.watch.cycle import CaseWatch, Steps, poll
from debitura_provider.api.watch.poller import SharedCasePoller, Subscription, run_async, run_sync, shared_poller
from debitura_provider.api.watch.state import CaseMemo, WatchResult, WatchState

__all__ = [
    "CaseMemo",
    "CaseWatch",
    "Condition",
    "Require",
    "SharedCasePoller",
    "Steps",
    "Subscription",
    "WatchResult",
    "WatchSpec",
    "WatchState",
    "normalize_case_ids",
    "poll",
    "run_async",
    "run_sync",
    "shared_poller",
]
