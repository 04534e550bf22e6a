"""DAG files go through Airflow's object storage under one configurable base URL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "dags"))

from agency_crm import artifacts, report  # noqa: E402


@pytest.fixture
def memory_store():
    yield "memory://debitura-test/artifacts"
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


def test_a_file_is_written_under_a_non_default_store(memory_store: str) -> None:
    path = artifacts.write_artifact(
        "reports", "manual__2026-01-01T00:00:00+00:00.html", "<html></html>", url=memory_store
    )
    assert str(path) == "memory://debitura-test/artifacts/reports/manual__2026-01-01T00_00_00_00_00.html"
    assert MemoryFileSystem().cat_file("/debitura-test/artifacts/reports/manual__2026-01-01T00_00_00_00_00.html") == (
        b"<html></html>"
    )


def test_the_environment_sets_the_base_when_no_url_is_given(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(artifacts.ENV, (tmp_path / "store").as_uri())
    path = artifacts.write_artifact("reports", "run 1.html", "é")
    assert (tmp_path / "store" / "reports" / "run_1.html").read_text(encoding="utf-8") == "é"
    assert str(path) == (tmp_path / "store" / "reports" / "run_1.html").as_uri()


def test_a_given_url_wins_over_the_environment(tmp_path: Path, monkeypatch, memory_store: str) -> None:
    monkeypatch.setenv(artifacts.ENV, (tmp_path / "ignored").as_uri())
    assert str(report.report_dir(memory_store)) == f"{memory_store}/reports"


def test_the_default_is_under_the_airflow_home(monkeypatch) -> None:
    monkeypatch.delenv(artifacts.ENV, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", "/srv/airflow")
    assert str(artifacts.artifacts_base()) == "file:///srv/airflow/debitura"


def test_a_base_that_is_not_a_url_is_refused_with_its_name(monkeypatch) -> None:
    monkeypatch.setenv(artifacts.ENV, "/srv/reports")
    with pytest.raises(ValueError, match="DEBITURA_ARTIFACTS_URL"):
        artifacts.artifacts_base()
