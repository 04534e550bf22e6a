"""Markers of the Airflow-layer tests that are not part of ``make test``."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "triggerer_load: 200 deferred sensors in a real triggerer (DEBITURA_TRIGGERER_TEST=1; minutes)"
    )
