"""Until the shared migrated-DB fixture lands: one reset of the test AIRFLOW_HOME's sqlite DB."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db

    db.resetdb()
