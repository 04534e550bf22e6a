"""The background thread that turns the inbox into Asset events, off the request path."""

from __future__ import annotations

import logging
import threading

from debitura_provider.receiver import inbox

log = logging.getLogger(__name__)


class Recorder:
    """Drains the inbox when nudged by a delivery, and every ``interval`` seconds regardless.

    The periodic pass picks up what a previous process left queued (a restart, a failed record)
    and what another API server worker accepted.
    """

    def __init__(self, interval: float = 30.0) -> None:
        self.interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="debitura-webhook-recorder", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Ask for a pass now (a new event was queued)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current pass and end the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                while inbox.record_pending() and not self._stopping.is_set():
                    pass
            except Exception:
                log.exception("Debitura webhook inbox pass failed; retrying in %s s", self.interval)
            self._wake.wait(self.interval)
