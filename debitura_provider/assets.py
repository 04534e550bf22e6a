"""The Airflow Assets that Debitura webhooks update, so that DAGs can be scheduled on them.

The webhook receiver (``debitura_provider.receiver.plugin``) records one asset event per accepted
Debitura event; the event's envelope, exactly as delivered and verified, is the asset event's ``extra``.
Schedule a DAG with ``schedule=[DEBITURA_PAYMENTS]`` and read the events from
``triggering_asset_events[DEBITURA_PAYMENTS]``.
"""

from __future__ import annotations

from debitura_provider.compat import Asset

DEBITURA_PAYMENTS = Asset(name="debitura_payments", uri="debitura://payments", group="debitura")
"""Updated by ``payment.created`` and ``payment.deleted``."""

DEBITURA_CASE_LIFECYCLE = Asset(name="debitura_case_lifecycle", uri="debitura://case-lifecycle", group="debitura")
"""Updated by ``case.assigned``, ``case.updated`` and ``case.closed``."""

EVENT_ASSETS: dict[str, Asset] = {
    "payment.created": DEBITURA_PAYMENTS,
    "payment.deleted": DEBITURA_PAYMENTS,
    "case.assigned": DEBITURA_CASE_LIFECYCLE,
    "case.updated": DEBITURA_CASE_LIFECYCLE,
    "case.closed": DEBITURA_CASE_LIFECYCLE,
}
"""Which asset each event type updates. Other events (``chat.created``) are acknowledged and not recorded."""
