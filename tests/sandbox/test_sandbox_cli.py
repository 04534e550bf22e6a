"""``debitura-sandbox`` / ``python -m debitura_provider.sandbox``: starts, says where it is, stops cleanly."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from debitura_provider.sandbox import SandboxServer
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.helpers import case_body


def start(*args: str) -> tuple[subprocess.Popen[str], str, str]:
    """The process, its base URL and the key line, read from the first two lines it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "debitura_provider.sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    first, second = process.stdout.readline(), process.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+)", first)
    if found is None:
        process.kill()
        process.wait()
        pytest.fail(f"no base URL in the first line: {first!r}")
    return process, found.group(1), second


def wait_until_serving(base_url: str, key: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base_url}/me", headers={"XApiKey": key})
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_serves_and_stops_cleanly_on_a_signal(stop_signal: signal.Signals, tmp_path: Path) -> None:
    state = tmp_path / "cli.db"
    process, base_url, key_line = start(
        "--api-key", "cli-key", "--seed", "3", "--speed", "60", "--state", str(state), "--no-rate-limit"
    )
    assert "cli-key" not in key_line and "--api-key" in key_line  # a chosen key is never printed
    try:
        wait_until_serving(base_url, "cli-key")
        assert httpx.get(f"{base_url}/me", headers={"XApiKey": "cli-key"}).status_code == 200
        created = httpx.post(f"{base_url}/managed-cases", json=case_body(), headers={"XApiKey": "cli-key"})
        assert created.status_code == 200
    finally:
        process.send_signal(stop_signal)
        returncode = process.wait(timeout=60)
    assert process.stdout is not None
    output = process.stdout.read()
    assert returncode == 0, output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    assert state.is_file()


def test_the_cli_refuses_bad_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "debitura_provider.sandbox", "--speed", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "speed" in result.stderr


WITHOUT_EXTRA = """
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("fastapi", "uvicorn", "starlette"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
import debitura_provider.sandbox
from debitura_provider.sandbox import SandboxConfig
SandboxConfig(port=0, faults="error=0.1")
from debitura_provider.sandbox.__main__ import main
sys.exit(main(["--port", "0"]))
"""


def test_without_the_sandbox_extra_the_cli_names_the_extra_instead_of_a_traceback() -> None:
    """The package and its settings import without FastAPI and uvicorn; serving says which extra to install."""
    result = subprocess.run([sys.executable, "-c", WITHOUT_EXTRA], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("debitura-sandbox: ")
    assert line.endswith("the sandbox needs its extra: pip install 'airflow-provider-debitura[sandbox]'")


def test_importing_the_sandbox_package_loads_no_web_framework() -> None:
    code = (
        "import sys, debitura_provider.sandbox, debitura_provider.sandbox.__main__; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'uvicorn', 'starlette'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_the_cli_refuses_a_strict_spec_it_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    result = subprocess.run(
        [sys.executable, "-m", "debitura_provider.sandbox", "--port", "0", "--strict-spec", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot read the OpenAPI spec" in result.stderr and "Traceback" not in result.stderr


def test_the_curl_quickstart_in_the_docs_runs(sandbox_factory: SandboxFactory) -> None:
    """docs/sandbox.md's quickstart, run as written against a sandbox (only the address and key differ)."""
    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.skip("the quickstart needs curl and bash")
    with sandbox_factory() as sandbox:
        run_quickstart(sandbox)


def run_quickstart(sandbox: SandboxServer) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text()
    script = page.split("## Quickstart with curl", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line for line in script.splitlines() if not line.startswith(("debitura-sandbox", "DEBITURA=", "KEY="))]
    env = {**os.environ, "DEBITURA": sandbox.base_url, "KEY": sandbox.api_key}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(lines)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert '"advanced":true' in result.stdout
    assert '"remainingAmount":1000.0' in result.stdout
    assert result.stdout.rstrip().endswith("204")
