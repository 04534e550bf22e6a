"""Step 1 of the referral: decide which extracted records can be sent, and say why the others cannot.

The check is the provider's own (:func:`debitura_provider.api.referral.prepare`, the bulk
operator's first step), so a record that passes is one Debitura's documented rules accept, and
the reasons are the field-level messages the API would give.

What passed is kept in the CRM (``checked_records``: run, record key, batch; no record data), and
the bulk operator reads those records from the CRM itself with :data:`CHECKED_RECORDS_SQL`: the
records never travel through XCom or the operator's rendered fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection  # not in sqlalchemy's top level before 2.0 (Airflow 3.0 has 1.4)

from agency_crm.extract import RECORD_KEY
from agency_crm.ledger import WHOLE_RECORD
from debitura_provider.api.errors import FieldErrors
from debitura_provider.api.personal_data import personal_values, scrub
from debitura_provider.api.referral import prepare

CHECKED_TABLE = """CREATE TABLE IF NOT EXISTS checked_records (
    run_id VARCHAR(250) NOT NULL,
    record_key VARCHAR(64) NOT NULL,
    batch_id VARCHAR(250) NOT NULL,
    PRIMARY KEY (run_id, record_key)
)"""
"""Which extracted record each referral run sends (keys only: the record stays in ``extract_rows``)."""

# --8<-- [start:checked_records_sql]
CHECKED_RECORDS_SQL = """
SELECT r.record_key AS record_id, r.payload
FROM checked_records c
JOIN extract_rows r ON r.batch_id = c.batch_id AND r.record_key = c.record_key
WHERE c.run_id = :run_id
ORDER BY r.record_key
"""
"""The records a run refers, for ``ReferInvoicesOperator(records_sql=..., records_json_column="payload")``."""
# --8<-- [end:checked_records_sql]


@dataclass
class CheckedBatch:
    """Records ready to refer (request body plus record key), and field errors of the others."""

    valid: list[dict[str, Any]] = field(default_factory=list)
    invalid: dict[str, FieldErrors] = field(default_factory=dict)
    batch_of: dict[str, str] = field(default_factory=dict)

    @property
    def valid_keys(self) -> list[str]:
        return [record[RECORD_KEY] for record in self.valid]


def check_records(loaded: list[tuple[str, str, Any]]) -> CheckedBatch:
    """Check ``(batch_id, record_key, record)`` triples; a key seen again in a later batch wins."""
    latest = {key: (batch_id, record) for batch_id, key, record in loaded}
    keys = list(latest)
    records = [
        {**record, RECORD_KEY: key} if isinstance(record, dict) else record for key, (_, record) in latest.items()
    ]
    sendable, rejected = prepare(records, record_key=RECORD_KEY)
    return CheckedBatch(
        valid=[{RECORD_KEY: r.record_key, **r.request.to_json_types()} for r in sendable],
        invalid={
            keys[i]: _without_personal_data(
                outcome.field_errors or {WHOLE_RECORD: [outcome.reason or "rejected"]}, records[i]
            )
            for i, outcome in rejected.items()
        },
        batch_of={key: batch_id for key, (batch_id, _) in latest.items()},
    )


def _without_personal_data(errors: FieldErrors, record: Any) -> FieldErrors:
    """Field errors name the field; a message that echoes a personal value gets it replaced."""
    values = personal_values(record)
    return {name: [scrub(message, values) for message in messages] for name, messages in errors.items()}


def save_checked(connection: Connection, run_id: str, checked: CheckedBatch) -> None:
    """Keep which records ``run_id`` sends, replacing an earlier try of the same run."""
    connection.execute(text(CHECKED_TABLE))
    connection.execute(text("DELETE FROM checked_records WHERE run_id = :run_id"), {"run_id": run_id})
    if checked.valid:
        connection.execute(
            text("INSERT INTO checked_records (run_id, record_key, batch_id) VALUES (:run_id, :key, :batch_id)"),
            [{"run_id": run_id, "key": key, "batch_id": checked.batch_of[key]} for key in checked.valid_keys],
        )
