"""Test-wide setup. Airflow reads its environment at import, so this runs before any test module.

Fixtures live in ``tests/fixtures/``, one module per real part the tests start.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

_TEMP_HOME = None if "AIRFLOW_HOME" in os.environ else tempfile.mkdtemp(prefix="debitura-airflow-")
"""The tests' own Airflow home, removed when the session ends (see :func:`pytest_unconfigure`)."""
if _TEMP_HOME:
    os.environ["AIRFLOW_HOME"] = _TEMP_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")

pytest_plugins: list[str] = [
    "tests.fixtures.webhooks",
    "tests.fixtures.sandbox",
    "tests.fixtures.airflow",
    "tests.fixtures.example_dags",
]


def openapi_spec_path() -> Path:
    """Where Debitura's official spec is: ``DEBITURA_OPENAPI_SPEC``, else ``../shared/debitura/`` beside the repo."""
    return Path(
        os.environ.get("DEBITURA_OPENAPI_SPEC", REPO.parent / "shared" / "debitura" / "collection-partner-api.json")
    )


@pytest.fixture(scope="session")
def openapi_spec() -> dict[str, Any]:
    """Debitura's official spec, the test oracle. Absent: skipped locally, a failure under CI=true."""
    path = openapi_spec_path()
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Debitura's OpenAPI spec is missing at {path}; CI must have it (set DEBITURA_OPENAPI_SPEC)")
        pytest.skip(f"Debitura's OpenAPI spec not found at {path} (set DEBITURA_OPENAPI_SPEC)")
    spec: dict[str, Any] = json.loads(path.read_text())
    return spec


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave no Airflow home behind in the temp directory (metadata DB, logs, config)."""
    if _TEMP_HOME:
        shutil.rmtree(_TEMP_HOME, ignore_errors=True)
