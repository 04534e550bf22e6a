"""A real Airflow (API server, scheduler, DAG processor, triggerer) with the sandbox, and headless Chromium.

Only ``make test-ui`` runs these tests (``DEBITURA_UI_TEST=1``): they need Debian's chromium and
take a few minutes. Everything started here is stopped when the session ends, failures included.
"""

from __future__ import annotations

import json
import os
import sys
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
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; logs in {self.home}")
            time.sleep(interval)


@pytest.fixture(scope="session")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowUI]:
    """Airflow and the sandbox as ``make airflow`` starts them, in a fresh home (kept by pytest for a look)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from airflow_ui import running_airflow  # the launcher `make airflow` uses

    home = tmp_path_factory.mktemp("airflow-home")
    settings = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS,  # real logins: anonymous requests are refused
        "DEBITURA_APPROVAL_THRESHOLD": "0",  # every referral batch waits for an approval in the UI
    }
    with (
        (home / "airflow-output.log").open("ab") as output,
        running_airflow(
            home, fresh=False, airflow_port=0, sandbox_port=0, speed=86400.0, extra_env=settings, output=output
        ) as running,
    ):
        sandbox = running.sandbox
        ui = AirflowUI(running.url, sandbox.base_url, sandbox.portal_url, sandbox.api_key, home)
        ui.wait_for("the API server", lambda: ui.api("monitor/health"), timeout=180)
        ui.token = ui.wait_for("the admin's token", ui.login, timeout=60)
        yield ui


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's chromium (never a browser Playwright downloads), with a fresh profile."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-ui` installs Debian's chromium package")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
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
    """The approval test first: every other test that needs a finished referral run waits for it."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("approves_referral") else 1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "approves_referral: approves the first referral batch in the UI")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failed test's report shows what its page showed, so that a CI log explains the failure."""
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and page is not None:
        report.sections.append(("the page at failure", f"{page.url}\n{page.inner_text('body')[:3000]}"))
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
