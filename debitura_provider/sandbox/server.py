"""Run the sandbox: in a background thread for tests and notebooks, or in the foreground for the CLI."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from debitura_provider.sandbox.config import SandboxConfig
from debitura_provider.sandbox.contract import Findings, Violation
from debitura_provider.sandbox.delivery.dispatcher import Dispatcher
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.edge.app import create_app

log = logging.getLogger("debitura_provider.sandbox")

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 30.0


class SandboxServer:
    """A sandbox on ``127.0.0.1``; with ``port=0`` it takes a free port, known as soon as it is constructed.

    ``with SandboxServer(config) as server:`` serves in a background thread and stops it, with its
    background tasks, on exit.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.sandbox = Sandbox(self.config, Dispatcher.of)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((self.config.host, self.config.port))
        except OSError:
            self._socket.close()
            self.sandbox.store.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        self.sandbox.base_url = f"http://{self.config.host}:{self.port}"
        self.app: FastAPI = create_app(self.sandbox)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SandboxServer(base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        return self.sandbox.base_url

    @property
    def portal_url(self) -> str:
        return f"{self.base_url}/portal"

    @property
    def api_key(self) -> str:
        return self.sandbox.store.managing_partner.api_key

    @property
    def violations(self) -> list[Violation]:
        """What the strict oracle (``strict_spec``) found so far: empty when all was in the spec, or when it is off."""
        findings: Findings = self.app.state.contract
        return findings.violations

    @property
    def partner_keys(self) -> dict[str, str]:
        """API keys of the simulated collection partners, by partner name."""
        return {p.name: p.api_key for p in self.sandbox.store.partners.values() if p.slug != "managing"}

    def _uvicorn(self, log_level: str) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            lifespan="on",
            log_level=log_level,
            access_log=log_level == "info",
            timeout_graceful_shutdown=5,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        return self._server

    def start(self) -> SandboxServer:
        """Serve in a daemon thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("this sandbox server was already started")
        server = self._uvicorn("warning")
        self._socket.listen(128)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name=f"debitura-sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not self._thread.is_alive():
                self._close_socket()
                raise RuntimeError("the sandbox server failed to start; see the log")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox server did not start within {STARTUP_TIMEOUT:.0f} s")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C or SIGTERM (uvicorn's signal handling), then shut down cleanly."""
        self._socket.listen(128)
        try:
            self._uvicorn("info").run(sockets=[self._socket])
        finally:
            self._close_socket()

    def stop(self) -> None:
        """Shut down: in-flight requests finish, background tasks are cancelled, state is flushed."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(SHUTDOWN_TIMEOUT)
            if self._thread.is_alive():
                log.error("The sandbox server thread did not stop within %.0f s", SHUTDOWN_TIMEOUT)
            self._thread = None
        elif self._server is None:
            self.sandbox.store.close()  # never started: the lifespan did not run
        self._close_socket()

    def _close_socket(self) -> None:
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
