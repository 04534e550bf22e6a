"""A payment made while a real ``airflow triggerer`` is restarted reaches Airflow as one asset event.

The watched asset of an ``AssetWatcher`` with ``DebituraPortfolioTrigger`` in a real triggerer
process (an Airflow home of its own on SQLite; ``airflow dags reserialize`` registers the watcher of the
unpaused DAG):
the triggerer is stopped, by SIGTERM and then by SIGKILL, payments are made while it is down, and
after each restart every payment appears once among Airflow's asset events. The cursor is in the
asset state store (Airflow 3.3+) or the trigger's file before that.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from debitura_provider.api import DebituraClient
from debitura_provider.api.watch.scan import normalize_event
from tests.airflow_layer.cases import test_case
from tests.fixtures.sandbox import SandboxFactory

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(600)]

CONN_ID = "debitura_restart"
AIRFLOW = Path(sys.executable).parent / "airflow"
DAG = f'''
import datetime as dt
from airflow.sdk import dag, task
from debitura_provider.triggers.portfolio import portfolio_watchers

PAYMENTS, _ = portfolio_watchers(debitura_conn_id="{CONN_ID}", poll_interval=1.0)


@dag(schedule=[PAYMENTS], start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False)
def restart_watch():
    @task
    def noop():
        pass

    noop()


restart_watch()
'''


class Home:
    """An Airflow home with the watcher's DAG registered; its triggerer started and stopped by the test."""

    def __init__(self, root: Path, base_url: str, api_key: str) -> None:
        self.root = root
        (root / "dags").mkdir(parents=True)
        (root / "dags" / "restart_watch.py").write_text(DAG)
        conn = {"conn_type": "debitura", "host": base_url, "password": api_key, "extra": {"max_attempts": 1}}
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(root),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # a paused DAG's assets have no watcher
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow.db'}",
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn),
        }
        self.triggerer: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def airflow(self, *args: str) -> None:
        with open(self.root / "cli.log", "ab") as log:
            subprocess.run([str(AIRFLOW), *args], env=self.env, stdout=log, stderr=log, check=True, timeout=300)

    def start_triggerer(self) -> None:
        self.starts += 1
        log = open(self.root / f"triggerer-{self.starts}.log", "wb")  # noqa: SIM115 - closed with the process
        self.triggerer = subprocess.Popen(
            [str(AIRFLOW), "triggerer"], env=self.env, stdout=log, stderr=log, start_new_session=True
        )
        log.close()

    def stop_triggerer(self, how: signal.Signals) -> None:
        process, self.triggerer = self.triggerer, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, how)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.root / "airflow.db", timeout=30) as db:
            return db.execute(query).fetchall()

    def payment_events(self) -> Counter[str]:
        """Payment ids among the asset events Airflow recorded, with how often each appears."""
        events = [normalize_event(json.loads(extra)) for (extra,) in self.rows("SELECT extra FROM asset_event")]
        return Counter(e["data"]["paymentId"] for e in events if e["type"] == "payment.created")

    def cursor_saved(self) -> bool:
        state = self.rows("SELECT value FROM asset_state_store") if self._has("asset_state_store") else []
        return bool(state) or any((self.root / "debitura" / "portfolio").glob("*.json"))

    def _has(self, table: str) -> bool:
        return bool(self.rows(f"SELECT name FROM sqlite_master WHERE type = 'table' AND name = '{table}'"))

    def triggerer_log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.glob("triggerer-*.log")))


@contextmanager
def airflow_home(root: Path, base_url: str, api_key: str) -> Iterator[Home]:
    home = Home(root, base_url, api_key)
    try:
        home.airflow("db", "migrate")
        home.airflow("dags", "reserialize")
        yield home
    finally:
        home.stop_triggerer(signal.SIGTERM)


def wait_for(what: str, done: Callable[[], bool], home: Home, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if home.triggerer is not None and home.triggerer.poll() is not None:
            raise AssertionError(f"the triggerer exited while waiting for {what}:\n{home.triggerer_log()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{home.triggerer_log()[-3000:]}")
        time.sleep(0.5)


def test_payments_made_while_a_real_triggerer_is_down_reach_airflow_once_each(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    with (
        sandbox_factory(simulate=False) as server,
        airflow_home(tmp_path / "airflow", server.base_url, server.api_key) as home,
    ):
        with DebituraClient(server.api_key, server.base_url) as client:
            cases = [test_case(client, "real-triggerer", creditorReference=f"RT-{n}") for n in range(5)]
            payment = {"date": date.today().isoformat(), "paymentAmount": "10.00"}

            def pay(case_id: str) -> str:
                return str(client.record_test_payment(case_id, payment).payment_id)

            home.start_triggerer()
            wait_for("the watcher's baseline", home.cursor_saved, home)
            paid = [pay(cases[0])]
            wait_for("the first payment's asset event", lambda: set(home.payment_events()) == set(paid), home)
            time.sleep(7)  # past the trigger's hand-over window: Airflow has written the event

            for how, down in ((signal.SIGTERM, cases[1:3]), (signal.SIGKILL, cases[3:5])):
                home.stop_triggerer(how)
                paid.extend(pay(case_id) for case_id in down)
                home.start_triggerer()
                wait_for(
                    f"the payments made while it was down ({how.name})",
                    lambda: set(home.payment_events()) == set(paid),
                    home,
                )
                time.sleep(7)

            time.sleep(3)  # a few more cycles: nothing may come twice
            seen = home.payment_events()
        log = home.triggerer_log()

    assert sorted(seen) == sorted(paid)
    assert set(seen.values()) == {1}, seen
    assert "Deadlock" not in log
