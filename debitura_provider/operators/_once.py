"""A guard for the writes Debitura takes no ``Idempotency-Key`` for (notes, file uploads).

All tries of one task instance share its state store (``task_state_store`` on Airflow 3.3+, Airflow
Variables before: :func:`debitura_provider.compat.task_state_store`). Before sending, the
guard records that the request with this fingerprint is being sent; after, the result. A later try
with the same input returns the stored result, or, when the earlier try died between sending and
storing, lets the operator look for what that try left (a timeline item, a file) before sending
again. Outside a task run (no task instance, no store) the guard logs that a retry could repeat the write.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from typing import Any

from debitura_provider.compat import task_state_store

log = logging.getLogger(__name__)


class SentOnce:
    """The state of one guarded write of one task instance."""

    def __init__(self, context: Any, key: str, request: Any) -> None:
        self._store = task_state_store(context)
        self._key = key
        self._fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
        saved = self._store.get(key) if self._store is not None else None
        mine = isinstance(saved, dict) and saved.get("fingerprint") == self._fingerprint
        self._saved: dict[str, Any] | None = saved if mine else None
        if self._store is None:
            log.warning("No task state store outside a task run: a retry could repeat the write")

    def result(self) -> dict[str, Any] | None:
        """What an earlier try stored after the write succeeded, else None."""
        if self._saved is not None and self._saved.get("phase") == "done":
            log.info("An earlier try of this task already made this write; returning its result")
            stored: dict[str, Any] = self._saved["result"]
            return stored
        return None

    def interrupted(self) -> bool:
        """Whether an earlier try started sending this write and never stored a result."""
        return self._saved is not None and self._saved.get("phase") == "sending"

    def started_at(self) -> datetime:
        """When the interrupted try started sending (only after :meth:`interrupted` is true)."""
        assert self._saved is not None
        return datetime.fromisoformat(self._saved["at"])

    def sending(self) -> None:
        if self._store is not None:
            at = datetime.now(timezone.utc).isoformat()
            self._store.set(self._key, {"fingerprint": self._fingerprint, "phase": "sending", "at": at})

    def done(self, result: dict[str, Any]) -> dict[str, Any]:
        if self._store is not None:
            self._store.set(self._key, {"fingerprint": self._fingerprint, "phase": "done", "result": result})
        return result
