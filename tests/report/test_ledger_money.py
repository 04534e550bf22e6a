"""The ledger keeps every cent: amounts go in as exact decimal text and come back as exact Decimals."""

from __future__ import annotations

import random
import sys
from decimal import Decimal
from pathlib import Path

import sqlalchemy

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "dags"))

from agency_crm import report  # noqa: E402
from agency_crm.db import ensure_schema  # noqa: E402
from agency_crm.ledger import ledger_rows, money, stored, upsert_ledger  # noqa: E402


def test_a_thousand_random_cent_amounts_add_up_exactly_through_the_ledger(tmp_path: Path) -> None:
    rng = random.Random(5)
    cents = [rng.randrange(1, 100_000_000_000) for _ in range(1000)]  # up to 999,999,999.99
    amounts = [Decimal(c) / 100 for c in cents]
    exact = Decimal(sum(cents)) / 100
    assert Decimal(repr(sum(float(a) for a in amounts))) != exact  # floats would drift: this test can tell
    entries = [
        {"record_key": f"INV-{i:04d}", "batch_id": "b", "status": "created", "currency": "EUR",
         "amount_referred": amount, "amount_collected": amount, "remainder": Decimal(0)}
        for i, amount in enumerate(amounts)
    ]  # fmt: skip
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    with engine.begin() as connection:
        ensure_schema(connection)
        upsert_ledger(connection, entries)
        rows = ledger_rows(connection, [e["record_key"] for e in entries])
    engine.dispose()
    read = [money(row["amount_collected"]) for row in rows]
    assert read == amounts  # each amount back to the cent
    assert sum(read, Decimal(0)) == exact
    totals = report.totals_by(rows, "currency")["EUR"]["EUR"]
    assert (totals.referred, totals.collected, totals.outstanding) == (exact, exact, 0)


def test_amounts_are_bound_as_decimal_text() -> None:
    assert [stored(v) for v in (Decimal("1234.50"), 7, 0.1, "12.30", None)] == ["1234.50", "7", "0.1", "12.30", None]
    assert [money(v) for v in (1234.5, 7, "0.10", None)] == [Decimal("1234.5"), 7, Decimal("0.10"), None]
