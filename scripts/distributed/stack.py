"""Airflow's production shape on one machine, on 127.0.0.1 only, for ``make test-distributed``.

:class:`Stack` starts, each as its own OS process (and process group, so a crash can be injected
into one and teardown can reach its children): a throwaway Postgres cluster (``initdb``/``pg_ctl``
as the ``postgres`` user, which Debian's package creates, since Postgres refuses root) as the
metadata database, Redis as the Celery broker, the bench sandbox enforcing Debitura's real limits
and counting what it answers, then Airflow: ``db migrate``, the API server with several workers,
the scheduler, the DAG processor, several triggerers and several Celery workers.

Everything lives in one temporary directory; leaving the ``with`` block (normally, on an error,
on Ctrl-C or SIGTERM) stops every process, the Postgres cluster, and deletes the directory.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

import httpx

from bench.server import REPO, SandboxProcess
from debitura_provider.sandbox import RateLimitSettings

PG_BIN = Path("/usr/lib/postgresql")
CONN_ID = "debitura_default"
POOL = "debitura"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_tool(name: str) -> str:
    versions = sorted(PG_BIN.glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError(f"{name} not found under {PG_BIN}: apt-get install postgresql")
    return str(versions[-1])


def say(message: str) -> None:
    print(f"[distributed {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Service:
    """One started process: its name, its process group, and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    _out: IO[bytes] = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process, its process group, and every descendant (a task process may have left the group)."""
        import psutil

        try:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.kill()
        self.process.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Stack:
    """``with Stack(workers=3, triggerers=2, api_workers=2, dags=path) as stack:`` (see the module doc)."""

    def __init__(self, *, workers: int, triggerers: int, api_workers: int, dags: Path) -> None:
        self.workers_wanted, self.triggerers_wanted, self.api_workers = workers, triggerers, api_workers
        self.dags = dags
        self.root = Path(tempfile.mkdtemp(prefix="debitura-distributed-"))
        self.home = self.root / "airflow"
        self.pgdata = self.root / "pgdata"
        self.crm = self.root / "crm.db"
        self.pg_port, self.redis_port, self.api_port = _free_port(), _free_port(), _free_port()
        self.services: list[Service] = []
        self.workers: list[Service] = []
        self.triggerers: list[Service] = []
        self.sandbox = SandboxProcess(RateLimitSettings())
        self.webhook_secret = base64.b64encode(secrets.token_bytes(32)).decode()  # Debitura issues base64
        self._pg_started = False
        self._previous_handlers: dict[int, Any] = {}

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._interrupted)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None and exc_type is not KeyboardInterrupt:
            for service in self.services:
                say(f"--- last lines of {service.name} ({service.log.name}) ---\n{service.tail()}")
        self.stop()

    def _interrupted(self, signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def stop(self) -> None:
        """Stop everything started, in reverse order, then delete the directory. Safe to call twice."""
        import psutil

        descendants: list[psutil.Process] = []
        for service in self.services:  # noted first: once a service exits, its orphans are no one's children
            with contextlib.suppress(psutil.Error):
                descendants += psutil.Process(service.pid).children(recursive=True)
        for service in reversed(self.services):
            if service.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for service in reversed(self.services):
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(max(0.1, deadline - time.monotonic()))
            service.kill()  # anything still there: the group, and children that left it (task processes)
            if service._out is not None:
                service._out.close()
        for process in descendants:
            with contextlib.suppress(psutil.Error):
                process.kill()
        self.services.clear()
        self.sandbox.stop()
        if self._pg_started:
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    _pg_tool("pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            self._pg_started = False
        shutil.rmtree(self.root, ignore_errors=True)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    # -- start --------------------------------------------------------------------------------------

    def _start(self) -> None:
        self._start_postgres()
        self._spawn(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--protected-mode",
                "yes",
            ],
            env=None,
        )
        self.sandbox.__enter__()
        say(f"sandbox on {self.sandbox.base_url}, real limits (2,000/min per key)")
        self.home.mkdir()
        env = self.env()
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            check=True,
            cwd=self.root,
            stdout=self._log_file("db-migrate"),
            stderr=subprocess.STDOUT,
        )
        airflow = [sys.executable, "-m", "airflow"]
        self.api_server = self._spawn(
            "api-server",
            [
                *airflow,
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
                "--workers",
                str(self.api_workers),
            ],
        )
        self._spawn("scheduler", [*airflow, "scheduler", "--skip-serve-logs"])
        self._spawn("dag-processor", [*airflow, "dag-processor"])
        for n in range(1, self.triggerers_wanted + 1):
            self.triggerers.append(self._spawn(f"triggerer-{n}", [*airflow, "triggerer", "--skip-serve-logs"]))
        for n in range(1, self.workers_wanted + 1):
            self.workers.append(
                self._spawn(
                    f"worker-{n}",
                    [
                        *airflow,
                        "celery",
                        "worker",
                        "--concurrency",
                        "1",
                        "--celery-hostname",
                        f"worker{n}@%h",
                        "--skip-serve-logs",
                        "--without-mingle",
                        "--without-gossip",
                    ],
                )
            )
        self.wait_for("the API server", lambda: self._health_ok(), timeout=300)
        self.rest(
            "POST",
            "pools",
            json={
                "name": POOL,
                "slots": self.workers_wanted,
                "description": "Debitura tasks at once: one per Celery worker slot",
            },
        )
        say(
            f"Airflow up: API server :{self.api_port} x{self.api_workers} workers, scheduler, DAG processor, "
            f"{self.triggerers_wanted} triggerers, {self.workers_wanted} Celery workers, Postgres :{self.pg_port}, "
            f"Redis :{self.redis_port}"
        )

    def _start_postgres(self) -> None:
        if shutil.which("runuser") is None:
            raise RuntimeError("runuser (util-linux) is needed to run Postgres as the postgres user")
        self.pgdata.mkdir()
        shutil.chown(self.pgdata, "postgres", "postgres")
        os.chmod(self.root, 0o755)
        as_pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *as_pg,
                _pg_tool("initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {self.pgdata} -c fsync=off "
            "-c max_connections=300 -c shared_buffers=64MB"
        )
        self._pg_started = True
        subprocess.run(
            [
                *as_pg,
                _pg_tool("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-o",
                options,
                "-l",
                str(self.pgdata / "postgres.log"),
                "-w",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [*as_pg, _pg_tool("createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "airflow"],
            check=True,
        )
        say(f"Postgres {self.pgdata} on 127.0.0.1:{self.pg_port}")

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process (and of ``airflow`` commands run against the stack)."""
        db = f"postgresql+psycopg2://postgres@127.0.0.1:{self.pg_port}/airflow"
        connection = {
            "conn_type": "debitura",
            "host": self.sandbox.base_url,
            "password": self.sandbox.api_key,
            "extra": {"webhook_secret": self.webhook_secret, "rate_limit_processes": self.processes_on_key},
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        return base | {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "64",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://postgres@127.0.0.1:{self.pg_port}/airflow",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": _stable_secret(self.root, "jwt"),
            "AIRFLOW__API__SECRET_KEY": _stable_secret(self.root, "api"),
            # A 2-core machine under load can take many seconds per Execution API call; a retried
            # "start running" call after a timeout is refused (409/400) and fails the task.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "120",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__DEBITURA__WEBHOOK_RECORD_INTERVAL": "2",
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
            "AIRFLOW_CONN_DIST_CRM": json.dumps({"conn_type": "sqlite", "host": str(self.crm)}),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
        }

    @property
    def processes_on_key(self) -> int:
        """What may use the key at once: one task per Celery worker slot, plus each triggerer's pollers."""
        return self.workers_wanted + self.triggerers_wanted

    def _log_file(self, name: str) -> IO[bytes]:
        return (self.root / f"{name}.log").open("ab")

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | Any | None = ...) -> Service:
        out = self._log_file(name)
        process = subprocess.Popen(
            command,
            cwd=self.root,
            env=self.env() if env is ... else env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        service = Service(name, process, self.root / f"{name}.log", out)
        self.services.append(service)
        return service

    # -- talking to it ------------------------------------------------------------------------------

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _health_ok(self) -> bool:
        try:
            body = httpx.get(f"{self.api}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        return all(body.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.api}/api/v2/{path.lstrip('/')}", timeout=60, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """A query on the metadata database (psycopg2, which the ``[distributed]`` extra installs)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="postgres", dbname="airflow")
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(query, params)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            conn.close()

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float, every: float = 2.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for service in self.services:
                if not service.alive() and service not in self.killed:
                    raise RuntimeError(f"{service.name} exited ({service.process.returncode}):\n{service.tail()}")
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(every)

    killed: list[Service] = []

    def crash(self, service: Service) -> None:
        """SIGKILL ``service`` and its children, as a machine or OOM kill would."""
        self.killed = [*self.killed, service]
        service.kill()
        say(f"SIGKILL {service.name} (pid {service.pid}) and its children")

    def owner_of(self, pid: int) -> Service | None:
        """The started service ``pid`` descends from (a task process runs under its worker's supervisor)."""
        import psutil

        services = {s.pid: s for s in self.services}
        try:
            process = psutil.Process(pid)
            lineage = [process, *process.parents()]
        except psutil.Error:
            return None
        return next((services[p.pid] for p in lineage if p.pid in services), None)


def _stable_secret(root: Path, name: str) -> str:
    """One random secret per stack, the same for every process (they must agree on it)."""
    path = root / f".{name}-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text()
