"""A real Airflow (API server, scheduler, DAG processor, triggerer) with the sandbox, and headless Chromium.

Only ``make test-ui`` runs these tests (``DEBITURA_UI_TEST=1``): they need Debian's chromium and
take a few minutes. Everything started here is stopped when the session ends, failures, Ctrl-C and
SIGTERM included, and its temporary directories (the Airflow home, the browser profile) are removed;
``DEBITURA_UI_KEEP=<dir>`` keeps them there instead, for a look after the run. A failed test's report
carries the page it showed and the tail of Airflow's output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

USERS = "admin:admin,viewer:viewer"
"""The simple auth manager's users (name:role); it writes their generated passwords into the home."""
RUNNING_DAGS = ("debitura_crm_extract", "debitura_referral", "debitura_portfolio")
"""The DAGs these tests need running (the extract starts the referral, the portfolio DAG records payments).
The others are parsed and listed but stay paused: on a 2-core machine their runs only slow the referral."""

if os.environ.get("DEBITURA_UI_TEST") != "1":
    collect_ignore_glob = ["test_*.py"]


@dataclass
class AirflowUI:
    """The running Airflow and sandbox, and a little REST client for what the browser is not for."""

    url: str
    sandbox_url: str
    portal_url: str
    api_key: str
    home: Path
    token: str = ""
    """The admin's JWT (``POST /auth/token``), for the REST calls and the browser's cookie."""

    def login(self, username: str = "admin") -> str:
        """A JWT for one of :data:`USERS`, from the simple auth manager's own login endpoint."""
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        request = urllib.request.Request(
            f"{self.url}/auth/token",
            data=json.dumps({"username": username, "password": passwords[username]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["access_token"])

    def api(self, path: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/api/v2/{path.lstrip('/')}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            method=method or ("GET" if body is None else "POST"),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self.api("dags?limit=100")["dags"]}

    def wait_for(self, what: str, check: Any, timeout: float, interval: float = 2.0) -> Any:
        """Poll ``check()`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = check()
            except OSError:  # not listening yet, an HTTP error, a file not written yet
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)


@contextlib.contextmanager
def scratch_dir(name: str) -> Iterator[Path]:
    """A directory for this session, removed at its end (kept under ``DEBITURA_UI_KEEP`` when that is set)."""
    keep = os.environ.get("DEBITURA_UI_KEEP")
    if keep:
        path = Path(keep).resolve() / name
        shutil.rmtree(path, ignore_errors=True)  # a fresh one, as without DEBITURA_UI_KEEP
        path.mkdir(parents=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"debitura-ui-{name}-", ignore_cleanup_errors=True) as path:
        yield Path(path)


@pytest.fixture(scope="session")
def airflow_ui() -> Iterator[AirflowUI]:
    """Airflow and the sandbox as ``make airflow`` starts them, in a fresh home."""
    sys.path.insert(0, str(REPO / "scripts"))
    from airflow_ui import running_airflow  # the launcher `make airflow` uses

    # tests/fixtures/airflow.py adds the test-only DAG bundles for dag.test(); this Airflow parses dags/ alone
    os.environ.pop("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", None)
    settings = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS,  # real logins: anonymous requests are refused
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # RUNNING_DAGS are unpaused below
        "DEBITURA_APPROVAL_THRESHOLD": "0",  # every referral batch waits for an approval in the UI
    }
    with (
        scratch_dir("airflow-home") as home,
        (home / "airflow-output.log").open("ab") as output,
        running_airflow(
            home, fresh=False, airflow_port=0, sandbox_port=0, speed=86400.0, extra_env=settings, output=output
        ) as running,
    ):
        sandbox = running.sandbox
        ui = AirflowUI(running.url, sandbox.base_url, sandbox.portal_url, sandbox.api_key, home)
        ui.wait_for("the API server", lambda: ui.api("monitor/health"), timeout=180)
        ui.token = ui.wait_for("the admin's token", ui.login, timeout=60)
        ui.wait_for("the DAG processor to parse the example DAGs", lambda: ui.dag_ids() >= set(RUNNING_DAGS), 180)
        for dag_id in RUNNING_DAGS:
            ui.api(f"dags/{dag_id}", {"is_paused": False}, method="PATCH")
        yield ui


@pytest.fixture(scope="session")
def browser_context() -> Iterator[Any]:
    """Debian's chromium (never a browser Playwright downloads), with a fresh profile."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-ui` installs Debian's chromium package")
    with scratch_dir("chromium-profile") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(90_000)  # generous: CI machines are small and the UI is a large bundle
        try:
            yield context
        finally:
            context.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The approval first (the referral run waits for it), the tests that need the finished run last."""

    def order(item: pytest.Item) -> int:
        if item.get_closest_marker("approves_referral"):
            return 0
        return 2 if item.get_closest_marker("after_referral") else 1

    items.sort(key=order)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "approves_referral: approves the first referral batch in the UI")
    config.addinivalue_line("markers", "after_referral: needs the finished, approved referral run")
    if os.environ.get("DEBITURA_UI_TEST") == "1":
        # SIGTERM and SIGHUP unwind like Ctrl-C, so the fixtures' teardown stops Airflow and Chromium
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failed test's report shows what its page showed, so that a CI log explains the failure."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    page, ui = funcargs.get("page"), funcargs.get("airflow_ui")
    if report.when == "call" and report.failed:
        if page is not None:
            report.sections.append(("the page at failure", f"{page.url}\n{page.inner_text('body')[:3000]}"))
        if ui is not None:
            lines = (ui.home / "airflow-output.log").read_text(errors="replace").splitlines()
            report.sections.append(("Airflow's output at failure (tail)", "\n".join(lines[-60:])))
    return report


@pytest.fixture
def page(browser_context: Any, airflow_ui: AirflowUI) -> Iterator[Any]:
    """A tab of the browser, logged in as the admin (the UI's ``_token`` cookie)."""
    browser_context.add_cookies([{"name": "_token", "value": airflow_ui.token, "url": airflow_ui.url}])
    page = browser_context.new_page()
    try:
        yield page
    finally:
        page.close()
