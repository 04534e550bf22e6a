"""Step 1 of the referral: decide which extracted records can be sent, and say why the others cannot.

The check is the provider's own (:func:`debitura_provider.api.referral.prepare`, the bulk
operator's first step), so a record that passes is one Debitura's documented rules accept, and
the reasons are the field-level messages the API would give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agency_crm.extract import RECORD_KEY
from agency_crm.ledger import WHOLE_RECORD
from debitura_provider.api.errors import FieldErrors
from debitura_provider.api.referral import prepare


@dataclass
class CheckedBatch:
    """Records ready to refer (request body plus record key), and field errors of the others."""

    valid: list[dict[str, Any]] = field(default_factory=list)
    invalid: dict[str, FieldErrors] = field(default_factory=dict)
    batch_of: dict[str, str] = field(default_factory=dict)


def check_records(loaded: list[tuple[str, str, Any]]) -> CheckedBatch:
    """Check ``(batch_id, record_key, record)`` triples; a key seen again in a later batch wins."""
    latest = {key: (batch_id, record) for batch_id, key, record in loaded}
    keys = list(latest)
    records = [
        {**record, RECORD_KEY: key} if isinstance(record, dict) else record for key, (_, record) in latest.items()
    ]
    sendable, rejected = prepare(records, record_key=RECORD_KEY)
    return CheckedBatch(
        valid=[{RECORD_KEY: r.record_key, **r.request.to_wire()} for r in sendable],
        invalid={
            keys[i]: outcome.field_errors or {WHOLE_RECORD: [outcome.reason or "rejected"]}
            for i, outcome in rejected.items()
        },
        batch_of={key: batch_id for key, (batch_id, _) in latest.items()},
    )
