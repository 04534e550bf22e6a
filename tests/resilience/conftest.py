"""The sweeps' shared run (sweep.py), made once per session for ``test_secrets.py`` and ``test_personal_data.py``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.resilience.sweep import SweptHome, example_dag_ids, run_every_example_dag


@pytest.fixture(scope="session")
def swept_home(airflow_dags: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> SweptHome:
    """Every example DAG run in an Airflow home of its own; the sandbox's log lies outside that home."""
    home = tmp_path_factory.mktemp("airflow-home")
    sandbox_log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"  # Debitura's side, not the Airflow home
    try:
        return run_every_example_dag(home, sandbox_log, example_dag_ids(airflow_dags))
    except RuntimeError as exc:
        pytest.fail(str(exc))
