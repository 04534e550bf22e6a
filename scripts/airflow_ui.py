"""``make airflow``: the example DAGs in a full local Airflow against the sandbox.

The home ``.airflow/standalone`` is kept between runs (metadata DB, CRM, sandbox state, the
generated admin password); the connections are written again on every start. DAGs start
unpaused, so the daily CRM extract runs at once and its asset event starts the referral.

Airflow runs as its four components (API server, scheduler, DAG processor, triggerer) rather than
``airflow standalone``, whose log servers listen on every interface: here everything listens on
127.0.0.1 only, and the API server reads the task logs from the local files. The components run in
a session of their own, and on exit (Ctrl-C included) that whole session is stopped, politely
first, then by force. ``make test-ui`` starts Airflow the same way, through :func:`running_airflow`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from local_airflow import BIN, REPO, airflow, connection_env, connections, run_main, seed_crm, use_home

HOME = REPO / ".airflow" / "standalone"
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8642"))
AIRFLOW_PORT = int(os.environ.get("AIRFLOW_PORT", "8080"))
SANDBOX_SPEED = 3600.0
"""One sandbox hour per second: partners' work is visible while you watch, not all over at once."""
PASSWORD_FILE = HOME / "simple_auth_manager_passwords.json.generated"
"""Where Airflow 3's simple auth manager stores the generated admin password."""
WEBHOOK_CONN_ID = "debitura_webhooks"
"""The DB connection holding the webhook secret (``debitura_default`` comes from an env variable)."""
WEBHOOKS = os.environ.get("DEBITURA_WEBHOOKS", "1").strip().lower() not in ("0", "false", "off", "no")
"""``DEBITURA_WEBHOOKS=0 make airflow``: no subscription, as where Debitura cannot reach Airflow;
``debitura_portfolio`` then follows the cases through the portfolio scan alone."""
PORTFOLIO_POLL_SECONDS = os.environ.get("DEBITURA_PORTFOLIO_POLL_SECONDS", "15")
"""The scan's interval here (the sandbox runs an hour a second): changes reach the ledger quickly."""


COMPONENTS = """
airflow api-server --host 127.0.0.1 --port "$AIRFLOW__API__PORT" &
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$AIRFLOW__API__PORT") 2>/dev/null && break; sleep 1; done
airflow scheduler --skip-serve-logs & airflow dag-processor & airflow triggerer --skip-serve-logs &
wait
"""
"""Airflow's components in one shell, so that they share one session; no log server is started.

Tasks report to the API server, so the others start once it listens (a task started earlier fails
to connect and waits for its retry)."""


@dataclass
class LocalAirflow:
    """A running Airflow and its sandbox."""

    sandbox: Any
    url: str
    leader: subprocess.Popen[bytes]


def main() -> int:
    ports = {"airflow_port": AIRFLOW_PORT, "sandbox_port": SANDBOX_PORT}
    with running_airflow(HOME, fresh=False, speed=SANDBOX_SPEED, **ports) as running:
        _print_login(running)
        running.leader.wait()
    print("Airflow and the sandbox are stopped.")
    return 0


@contextlib.contextmanager
def running_airflow(
    home: Path,
    *,
    fresh: bool,
    airflow_port: int,
    sandbox_port: int,
    speed: float,
    extra_env: dict[str, str] | None = None,
    output: IO[bytes] | None = None,
) -> Iterator[LocalAirflow]:
    """The sandbox, the connections, the seeded CRM, then Airflow; everything is stopped on exit.

    A port of 0 picks a free one. ``output`` receives Airflow's own output (default: this terminal).
    """
    env = use_home(home, fresh=fresh)
    port = airflow_port or _free_port()
    url = f"http://127.0.0.1:{port}"
    env |= {
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",  # where task processes report
        # Airflow's 5 s default is too short while all four components start on 2 busy cores: a task's
        # first call timed out, and the task waited out its retry delay (5 min for the CRM extract).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        "AIRFLOW__DEBITURA__WEBHOOK_CONN_ID": WEBHOOK_CONN_ID,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the connection's Test button (GET /me)
        "DEBITURA_PORTFOLIO_POLL_SECONDS": PORTFOLIO_POLL_SECONDS,
        **(extra_env or {}),
    }
    os.environ.update(env)
    from debitura_provider.sandbox import SandboxConfig, SandboxServer

    config = SandboxConfig(
        api_key=_api_key(home), port=sandbox_port, seed=7, speed=speed, state_path=home / "sandbox-state.json"
    )
    log = home / "launcher.log"
    with SandboxServer(config) as sandbox:
        print(f"Sandbox: {sandbox.base_url} (portal pages at {sandbox.portal_url}), speed x{speed:g}")
        conns = connections(sandbox.base_url, sandbox.api_key, sandbox.portal_url, home / "crm.sqlite3")
        env |= connection_env(conns)
        os.environ.update(env)
        print("Preparing the metadata database and the connections ...")
        airflow(["db", "migrate"], env, log)
        _store_connections(conns, env, log, home)
        if WEBHOOKS:
            _subscribe_webhooks(url, env, log)
        else:
            print("Webhooks off (DEBITURA_WEBHOOKS=0): the portfolio scan alone follows the cases.")
        seed_crm()
        leader = subprocess.Popen(
            ["bash", "-c", COMPONENTS], env=dict(os.environ), start_new_session=True, stdout=output, stderr=output
        )
        try:
            yield LocalAirflow(sandbox, url, leader)
        finally:
            stop_session(leader)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _api_key(home: Path) -> str:
    """The sandbox key of this home, made once (the sandbox state file belongs to it)."""
    path = home / "sandbox-api-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _store_connections(conns: dict[str, dict[str, Any]], env: dict[str, str], log: Path, home: Path) -> None:
    """Put the connections in the metadata DB as well, so that the UI lists them (key masked)."""
    path = home / "connections.json"
    path.touch(mode=0o600)
    try:
        path.write_text(
            json.dumps({conn_id: {**c, "extra": json.dumps(c.get("extra", {}))} for conn_id, c in conns.items()})
        )
        airflow(["connections", "import", "--overwrite", str(path)], env, log)
    finally:
        path.unlink()


def _subscribe_webhooks(airflow_url: str, env: dict[str, str], log: Path) -> None:
    """Have the sandbox deliver test-case events to the receiver in Airflow's API server.

    The secret goes straight into the ``debitura_webhooks`` connection; a restart re-keys the
    subscription kept in the sandbox state instead of adding a second one.
    """
    command = [
        str(BIN / "debitura-webhooks"),
        "create",
        "--test-mode",
        "--rekey-if-exists",
        "--url",
        f"{airflow_url}/debitura/webhooks",
        "--secret-conn-id",
        WEBHOOK_CONN_ID,
    ]
    with log.open("ab") as out:
        subprocess.run(command, env={**os.environ, **env}, stdout=out, stderr=out, check=True)
    print("Webhooks: the sandbox delivers test-case events to the receiver in Airflow's API server.")


def _print_login(running: LocalAirflow) -> None:
    """Once Airflow has generated the admin password, say where to log in and with what."""
    while not PASSWORD_FILE.exists() and running.leader.poll() is None:
        time.sleep(0.5)
    if PASSWORD_FILE.exists():
        users = json.loads(PASSWORD_FILE.read_text() or "{}")
        login = ", ".join(f"user {user!r} password {password!r}" for user, password in users.items())
        print(
            f"\n>>> Airflow UI: {running.url}  log in with {login}"
            f"\n>>> (kept in {PASSWORD_FILE.relative_to(REPO)}; Ctrl-C stops Airflow and the sandbox)\n",
            flush=True,
        )


def stop_session(leader: subprocess.Popen[bytes]) -> None:
    """Stop every process of the leader's session: SIGINT (Airflow's own shutdown), SIGTERM, SIGKILL."""
    session = leader.pid
    for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        members = session_members(session)
        if not members:
            break
        for pid in members:
            _signal(pid, sig)
        deadline = time.monotonic() + grace
        while session_members(session) and time.monotonic() < deadline:
            leader.poll()
            time.sleep(0.2)
    leader.poll()


def session_members(session: int) -> list[int]:
    """Live processes of a session (zombies excluded), from ``/proc``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == session:
            members.append(int(entry.name))
    return members


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, sig)


if __name__ == "__main__":
    run_main(main, "Stopped: Airflow and the sandbox are down.", interrupted_status=0)
