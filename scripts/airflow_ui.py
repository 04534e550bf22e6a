"""``make airflow``: the example DAGs in a full local Airflow (``airflow standalone``) against the sandbox.

The home ``.airflow/standalone`` is kept between runs (metadata DB, CRM, sandbox state, the
generated admin password); the connections are written again on every start. DAGs start
unpaused, so the daily CRM extract runs at once and its asset event starts the referral.

``airflow standalone`` leaves its scheduler, triggerer and task processes running when it is
killed, so it runs in a session of its own, and on exit (Ctrl-C included) that whole session is
stopped: politely first, then by force.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from local_airflow import BIN, REPO, airflow, connection_env, connections, run_main, seed_crm, use_home

HOME = REPO / ".airflow" / "standalone"
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8642"))
AIRFLOW_PORT = int(os.environ.get("AIRFLOW_PORT", "8080"))
SANDBOX_SPEED = 3600.0
"""One sandbox hour per second: partners' work is visible while you watch, not all over at once."""
PASSWORD_FILE = HOME / "simple_auth_manager_passwords.json.generated"
"""Where Airflow 3's simple auth manager stores the generated admin password."""


def main() -> int:
    env = use_home(HOME, fresh=False)
    env |= {
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(AIRFLOW_PORT),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{AIRFLOW_PORT}",  # workers reach the execution API here
    }
    os.environ.update(env)
    from debitura_provider.sandbox import SandboxConfig, SandboxServer

    config = SandboxConfig(
        api_key=_api_key(), port=SANDBOX_PORT, seed=7, speed=SANDBOX_SPEED, state_path=HOME / "sandbox-state.json"
    )
    log = HOME / "launcher.log"
    with SandboxServer(config) as sandbox:
        print(f"Sandbox: {sandbox.base_url} (portal pages at {sandbox.portal_url}), speed x{SANDBOX_SPEED:g}")
        conns = connections(sandbox.base_url, sandbox.api_key, sandbox.portal_url, HOME / "crm.sqlite3")
        env |= connection_env(conns)
        os.environ.update(env)
        print("Preparing the metadata database and the connections ...")
        airflow(["db", "migrate"], env, log)
        _store_connections(conns, env, log)
        seed_crm()
        standalone = subprocess.Popen(
            [str(BIN / "airflow"), "standalone"], env=dict(os.environ), start_new_session=True
        )
        try:
            _print_login(standalone)
            standalone.wait()
        finally:
            stop_session(standalone)
    print("Airflow and the sandbox are stopped.")
    return 0


def _api_key() -> str:
    """The sandbox key of this home, made once (the sandbox state file belongs to it)."""
    path = HOME / "sandbox-api-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _store_connections(conns: dict[str, dict[str, Any]], env: dict[str, str], log: Path) -> None:
    """Put the connections in the metadata DB as well, so that the UI lists them (key masked)."""
    path = HOME / "connections.json"
    path.touch(mode=0o600)
    try:
        path.write_text(
            json.dumps({conn_id: {**c, "extra": json.dumps(c.get("extra", {}))} for conn_id, c in conns.items()})
        )
        airflow(["connections", "import", "--overwrite", str(path)], env, log)
    finally:
        path.unlink()


def _print_login(standalone: subprocess.Popen[bytes]) -> None:
    """Once Airflow has generated the admin password, say where to log in and with what."""
    while not PASSWORD_FILE.exists() and standalone.poll() is None:
        time.sleep(0.5)
    if PASSWORD_FILE.exists():
        users = json.loads(PASSWORD_FILE.read_text() or "{}")
        login = ", ".join(f"user {user!r} password {password!r}" for user, password in users.items())
        print(
            f"\n>>> Airflow UI: http://localhost:{AIRFLOW_PORT}  log in with {login}"
            f"\n>>> (kept in {PASSWORD_FILE.relative_to(REPO)}; Ctrl-C stops Airflow and the sandbox)\n",
            flush=True,
        )


def stop_session(leader: subprocess.Popen[bytes]) -> None:
    """Stop every process of the leader's session: SIGINT (standalone's own shutdown), SIGTERM, SIGKILL."""
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
    run_main(main, "Stopped: Airflow and the sandbox are down.")
