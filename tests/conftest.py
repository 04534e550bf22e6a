"""Test-wide setup. Airflow reads its environment at import, so this runs before any test module.

Fixtures live in ``tests/fixtures/``, one module per real part the tests start.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="debitura-airflow-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")

pytest_plugins: list[str] = []
