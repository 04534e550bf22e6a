"""The receiver's durable inbox: accepted Debitura events, keyed by event id, in Airflow's metadata DB.

A delivery is answered as soon as its event is in this table, so Debitura's 10-second timeout holds
even when the scheduler keeps the database busy; :func:`record_pending` turns rows into Asset events
afterwards. The event id is the primary key, so a redelivery can never be queued (or recorded) twice,
and the claim in :func:`_claim` lets several API server workers drain the same table safely.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from airflow.models.asset import AssetModel
from airflow.utils.session import create_session
from airflow.utils.sqlalchemy import UtcDateTime
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, inspect, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from debitura_provider.assets import EVENT_ASSETS

log = logging.getLogger(__name__)

INBOX = Table(
    "debitura_webhook_inbox",
    MetaData(),
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=True),
    Column("asset_event_id", Integer, nullable=True),
)
"""Kept outside Airflow's ORM metadata so Airflow's migrations neither see nor drop it."""

_created: set[str] = set()


def ensure_table(engine: Engine) -> None:
    """Create the inbox table if this database lacks it (once per process and database)."""
    key = engine.url.render_as_string(hide_password=True)
    if key not in _created:
        try:
            INBOX.create(engine, checkfirst=True)
        except SQLAlchemyError:
            # Another API server worker created it between the check and the create.
            if not inspect(engine).has_table(INBOX.name):
                raise
        _created.add(key)


def enqueue(event_id: str, event_type: str, envelope: dict[str, Any]) -> bool:
    """Store an accepted event; ``False`` when that event id was accepted before (a redelivery)."""
    with create_session() as session:
        ensure_table(session.get_bind().engine)
        try:
            session.execute(
                insert(INBOX).values(
                    event_id=event_id,
                    event_type=event_type,
                    envelope=json.dumps(envelope),
                    received_at=_now(),
                )
            )
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
    return True


def record_pending(limit: int = 100) -> int:
    """Turn up to ``limit`` queued events into Asset events, oldest first; returns how many."""
    with create_session() as session:
        ensure_table(session.get_bind().engine)
        pending = session.execute(
            select(INBOX.c.event_id, INBOX.c.event_type, INBOX.c.envelope)
            .where(INBOX.c.recorded_at.is_(None))
            .order_by(INBOX.c.received_at)
            .limit(limit)
        ).all()
    recorded = 0
    for event_id, event_type, envelope in pending:
        try:
            recorded += _record(event_id, event_type, json.loads(envelope))
        except Exception:
            # The row stays queued and is tried again on the next pass.
            log.exception("could not record Debitura event %s (%s) as an Asset event", event_id, event_type)
    return recorded


def _record(event_id: str, event_type: str, envelope: dict[str, Any]) -> int:
    """Claim one row and record its Asset event in the same transaction: all or nothing."""
    from airflow.assets.manager import asset_manager

    with create_session() as session:
        if not _claim(session, event_id):
            return 0
        asset = EVENT_ASSETS[event_type]
        model = _asset_model(session, asset.name, asset.uri, asset.group)
        asset_event = asset_manager.register_asset_change(
            asset=model, extra=envelope, source_is_api=True, session=session
        )
        if asset_event is None:
            raise RuntimeError(f"Airflow recorded no event for asset {asset.name}")
        session.execute(update(INBOX).where(INBOX.c.event_id == event_id).values(asset_event_id=asset_event.id))
    log.info("Debitura event %s (%s) recorded on asset %s", event_id, event_type, asset.name)
    return 1


def _claim(session: Session, event_id: str) -> bool:
    # The conditional update takes the row (or SQLite's write lock) until commit; a concurrent
    # drainer then matches no row and skips it.
    result = session.execute(
        update(INBOX).where(INBOX.c.event_id == event_id, INBOX.c.recorded_at.is_(None)).values(recorded_at=_now())
    )
    return bool(getattr(result, "rowcount", 0))


def _asset_model(session: Session, name: str, uri: str, group: str) -> AssetModel:
    """The asset row, created when no DAG has declared the asset yet (its events are then still kept)."""
    model = session.scalar(select(AssetModel).where(AssetModel.name == name, AssetModel.uri == uri))
    if model is None:
        model = AssetModel(name=name, uri=uri, group=group)
        session.add(model)
        session.flush()
    return model


def _now() -> datetime:
    return datetime.now(timezone.utc)
