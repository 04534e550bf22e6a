"""What ``make demo`` and ``make airflow`` share: an Airflow home, its environment, the connections, the CRM.

Airflow reads ``AIRFLOW_HOME`` when it is first imported, so :func:`use_home` must run before
anything imports ``airflow`` (or the DAG helpers in ``dags/agency_crm``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from debitura_provider import connection_extra

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
BIN = Path(sys.executable).parent


def airflow_env(home: Path) -> dict[str, str]:
    """Settings for an Airflow on a 2-core machine: sqlite, our DAGs only, four tasks at a time."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__TRIGGERER__CAPACITY": "100",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


# --8<-- [start:connections]
def connections(
    base_url: str, api_key: str, portal_url: str, crm_path: Path, collection_api_key: str = "sandbox-workbench-key"
) -> dict[str, dict[str, Any]]:
    """The connections the example DAGs use: the agency's two Debitura accounts (the sandbox's managing
    partner, and its collection partner "Workbench Collections ApS") and the CRM (a SQLite file)."""
    return {
        "debitura_default": {
            "conn_type": "debitura",
            "description": "Debitura Collection Partner API (local sandbox)",
            "host": base_url,
            "password": api_key,
            "extra": connection_extra(portal_url=portal_url),
        },
        "debitura_collection": {
            "conn_type": "debitura",
            "description": "The agency's collection-partner account at Debitura (local sandbox)",
            "host": base_url,
            "password": collection_api_key,
            "extra": connection_extra(portal_url=portal_url),
        },
        "debitura_crm": {
            "conn_type": "sqlite",
            "description": "The agency's CRM database",
            "host": str(crm_path),
        },
    }


# --8<-- [end:connections]


def connection_env(conns: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The connections as ``AIRFLOW_CONN_*`` variables (JSON form)."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in conns.items()}


def use_home(home: Path, *, fresh: bool) -> dict[str, str]:
    """Point this process (and the children it starts) at ``home``; ``fresh`` deletes what was there."""
    if fresh and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home)
    os.environ.update(env)
    return env


def airflow(args: list[str], env: dict[str, str], log: Path) -> None:
    """Run an ``airflow`` CLI command, its output into ``log``; raise with the log's tail if it fails."""
    with log.open("ab") as out:
        done = subprocess.run([str(BIN / "airflow"), *args], env={**os.environ, **env}, stdout=out, stderr=out)
    if done.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed (exit {done.returncode}):\n{tail(log)}")


@contextlib.contextmanager
def output_into(log: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``log`` (appending): whatever writes to them lands there, the
    handlers Airflow set up on ``sys.stdout`` at import included. For ``dag.test()`` runs in this process."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def seed_crm() -> dict[str, int]:
    """Seed the CRM database behind the ``debitura_crm`` connection (idempotent)."""
    sys.path.insert(0, str(DAGS))
    from agency_crm.db import transaction
    from agency_crm.seed import seed

    with transaction() as connection:
        return seed(connection)


def run_main(main: Callable[[], int], interrupted: str, interrupted_status: int = 130) -> None:
    """Exit with ``main()``'s status; SIGTERM and SIGHUP unwind like Ctrl-C, so ``with``/``finally`` clean up.

    An interruption exits with ``interrupted_status``: 0 where Ctrl-C is the normal way to stop
    (``make airflow``, so that make does not report ``Error 130``).
    """

    def unwind(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, unwind)
    signal.signal(signal.SIGHUP, unwind)
    try:
        status = main()
    except KeyboardInterrupt:
        print(f"\n{interrupted}")
        status = interrupted_status
    except RuntimeError as exc:
        print(f"\nFailed: {exc}", file=sys.stderr)
        status = 1
    sys.exit(status)
