"""The one place that knows Airflow versions: every Airflow name the provider uses, and its feature gates.

Supported: apache-airflow 3.0.6 to 3.3.x (docs/compatibility.md says what differs). Names that moved
between 3.0 and 3.3 come from ``apache-airflow-providers-common-compat``'s ``sdk`` module, which tries
the newest location first (``BaseHook``: ``airflow.sdk`` from 3.1, ``airflow.hooks.base`` before;
the ``airflow.sdk.exceptions`` classes and ``airflow.sdk.conf`` from 3.2, ``airflow.exceptions`` and
``airflow.configuration`` before). Nothing else in the package compares versions or tries imports:
it imports from here and asks the ``AIRFLOW_V_*`` flags or :func:`feature_unavailable`.

The async connection lookup is written here rather than taken from common-compat: the safe
``get_async_connection`` (a worker thread before Airflow 3.3.2) is in common-compat 1.21.0 and
later, which need Python 3.11, so on Python 3.10 pip resolves 1.20.0, whose lookup awaits
``BaseHook.aget_connection`` and can raise ``DeadlockImminentError`` in the triggerer.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow import __version__ as AIRFLOW_VERSION
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowPlugin,
    AirflowSensorTimeout,
    AirflowSkipException,
    Asset,
    BaseHook,
    BaseOperator,
    BaseOperatorLink,
    BaseSensorOperator,
    Connection,
    Context,
    ObjectStoragePath,
    PokeReturnValue,
    TaskDeferred,
    XCom,
    conf,
)
from airflow.triggers.base import BaseTrigger, StartTriggerArgs, TaskSuccessEvent, TriggerEvent
from packaging.version import Version

log = logging.getLogger(__name__)

_BASE = Version(Version(AIRFLOW_VERSION).base_version)

AIRFLOW_V_3_1_PLUS = Version("3.1.0") <= _BASE
"""Plugin ``external_views``/``react_apps`` (UI views), HITL operators, ``BaseHook.aget_connection``."""
AIRFLOW_V_3_2_PLUS = Version("3.2.0") <= _BASE
"""Declarative ``conn-fields``/``ui-field-behaviour`` in provider info are read (hook methods are not)."""
AIRFLOW_V_3_3_PLUS = Version("3.3.0") <= _BASE
"""``task_state_store`` in the task context; ``start_from_trigger`` works (3.0-3.2: broken or disabled)."""
ASYNC_SECRET_MASKING = hasattr(Connection, "aextra_dejson")
"""3.3.2+: a connection and its extra can be read on an event loop without a synchronous supervisor call."""

_reported: set[str] = set()


def feature_unavailable(feature: str, needs: str, why: str) -> None:
    """Log once per process that ``feature`` is off on this Airflow (it ``needs`` a newer one, because ``why``)."""
    if feature not in _reported:
        _reported.add(feature)
        log.info("%s is unavailable on Airflow %s: it needs Airflow %s (%s).", feature, AIRFLOW_VERSION, needs, why)


FEATURES: dict[str, tuple[bool, str, str]] = {
    "ui_views": (AIRFLOW_V_3_1_PLUS, "3.1", "plugin external_views and react_apps are read from Airflow 3.1"),
    "hitl": (AIRFLOW_V_3_1_PLUS, "3.1", "the standard provider's HITL operators need Airflow 3.1"),
    "start_from_trigger": (
        AIRFLOW_V_3_3_PLUS,
        "3.3",
        "start_from_trigger is broken on 3.0 (apache/airflow#48009) and disabled on 3.1 and 3.2",
    ),
}
"""Features that need a newer Airflow than the oldest supported: available?, from which version, why."""


def supports(feature: str) -> bool:
    """Whether this Airflow has ``feature`` (a key of :data:`FEATURES`); when not, say so once in the log.

    Use it where the feature is declared (a plugin attribute, a DAG's operator, an operator's
    ``start_from_trigger``), so that nothing fails at import or parse time on an older Airflow.
    """
    available, needs, why = FEATURES[feature]
    if not available:
        feature_unavailable(feature, needs, why)
    return available


class VariableStateStore:
    """``task_state_store`` before Airflow 3.3: a task instance's state kept in Airflow Variables.

    Before 3.3 nothing else a task can write survives a retry or a reschedule (the task's XComs are
    cleared when a try starts), so each value lives in the Variable
    ``debitura_state.<task instance hash>.<key>`` (JSON), shared by every try of the task instance
    as the 3.3 store's rows are. What the provider keeps there holds ids, amounts and lifecycles,
    never debtor data. Variables have no retention: the provider deletes its values when they are
    no longer needed (the bulk referral and the sensor when they succeed); a test payment's guard
    stays, one small Variable per task instance, so that a retry after a lost success still finds it.
    """

    def __init__(self, ti: Any) -> None:
        import hashlib

        identity = f"{ti.dag_id}\x1f{ti.task_id}\x1f{ti.run_id}\x1f{getattr(ti, 'map_index', -1)}"
        self._prefix = f"debitura_state.{hashlib.sha256(identity.encode()).hexdigest()[:24]}."
        self._about = f"Debitura provider state of {ti.dag_id}.{ti.task_id} in {ti.run_id} (Airflow < 3.3)"

    def get(self, key: str, default: Any = None) -> Any:
        from airflow.sdk import Variable

        return Variable.get(self._prefix + key, default=default, deserialize_json=True)

    def set(self, key: str, value: Any) -> None:
        from airflow.sdk import Variable

        Variable.set(self._prefix + key, value, description=self._about, serialize_json=True)

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(self._prefix + key)


def task_state_store(context: Any) -> Any:
    """The task instance's state shared by all its tries: ``task_state_store`` on 3.3+, else Variables.

    ``None`` only outside a real task run (a context without a task instance).
    """
    store = context.get("task_state_store")
    if store is not None or AIRFLOW_V_3_3_PLUS:
        return store
    ti = context.get("ti")
    if ti is None or not hasattr(ti, "run_id"):
        return None
    feature_unavailable(
        "task_state_store", "3.3", "kept in Airflow Variables debitura_state.* instead, with the same guarantees"
    )
    return VariableStateStore(ti)


def latest_asset_events(inlet_events: Any, asset: Asset, limit: int) -> list[Any]:
    """The ``limit`` newest events of an inlet asset, newest first.

    3.2+ narrows the query (``inlet_events[asset].ascending(False).limit(n)``); 3.0 and 3.1 return
    the asset's whole event list, oldest first.
    """
    events = inlet_events[asset]
    if hasattr(events, "ascending"):
        return list(events.ascending(False).limit(limit))
    return sorted(events, key=lambda event: event.timestamp, reverse=True)[:limit]


async def aget_connection_extra(conn_id: str) -> tuple[Connection, dict[str, Any]]:
    """A connection and its extra, read without blocking the event loop and without ``DeadlockImminentError``.

    From 3.3.2 both are awaited (secrets are masked asynchronously). Before, the whole synchronous
    lookup, ``extra_dejson`` included (it masks secrets too), runs in a worker thread through
    asgiref, whose thread hands the supervisor call back to the loop safely; this is what
    common-compat's ``get_async_connection`` does there.
    """
    if ASYNC_SECRET_MASKING:
        conn = await BaseHook.aget_connection(conn_id)
        extra: dict[str, Any] = await conn.aextra_dejson()
        return conn, extra

    from asgiref.sync import sync_to_async

    def read() -> tuple[Connection, dict[str, Any]]:
        found = BaseHook.get_connection(conn_id)
        return found, found.extra_dejson

    return await sync_to_async(read)()


__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "ASYNC_SECRET_MASKING",
    "FEATURES",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowPlugin",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "BaseTrigger",
    "Connection",
    "Context",
    "ObjectStoragePath",
    "PokeReturnValue",
    "StartTriggerArgs",
    "TaskDeferred",
    "TaskSuccessEvent",
    "TriggerEvent",
    "VariableStateStore",
    "XCom",
    "aget_connection_extra",
    "conf",
    "feature_unavailable",
    "supports",
    "task_state_store",
]
