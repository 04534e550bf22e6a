"""debitura_provider.compat: the one place that knows Airflow versions."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from debitura_provider import compat

PACKAGE = Path(compat.__file__).parent


MOVED_MODULES = {"airflow.sdk.exceptions", "airflow.exceptions", "airflow.hooks.base", "airflow.configuration"}
"""Modules whose names moved between Airflow 3.0 and 3.3 (exceptions, ``BaseHook``, ``conf``)."""
MOVED_FROM_SDK = {"BaseHook", "conf", "BaseAsyncOperator", "DeadlineAlert"}
"""``airflow.sdk`` names that older supported versions lack."""


def test_no_module_but_compat_imports_version_dependent_airflow_names() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "compat.py" or "sandbox" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (
                node.module in MOVED_MODULES
                or (node.module == "airflow.sdk" and {a.name for a in node.names} & MOVED_FROM_SDK)
                or (node.module == "airflow" and "__version__" in {a.name for a in node.names})
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}: from {node.module} import ...")
    assert offenders == []


class FakeVariables:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default: Any = None, deserialize_json: bool = False) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any, description: str | None = None, serialize_json: bool = False) -> None:
        assert serialize_json and description and "Airflow < 3.3" in description
        self.values[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class TI:
    dag_id, task_id, run_id, map_index = "d", "t", "manual__1", -1


def test_before_3_3_a_task_instances_state_lives_in_variables_shared_by_its_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import airflow.sdk

    variables = FakeVariables()
    monkeypatch.setattr(airflow.sdk, "Variable", variables)
    monkeypatch.setattr(compat, "AIRFLOW_V_3_3_PLUS", False)

    first_try = compat.task_state_store({"ti": TI()})
    first_try.set("debitura_watch", {"state": [1]})
    retry = compat.task_state_store({"ti": TI()})
    other = TI()
    other.map_index = 3

    assert retry.get("debitura_watch") == {"state": [1]}
    assert compat.task_state_store({"ti": other}).get("debitura_watch") is None
    assert all(key.startswith("debitura_state.") and len(key) < 250 for key in variables.values)
    retry.delete("debitura_watch")
    assert variables.values == {}


def test_from_3_3_the_task_state_store_is_used_and_outside_a_task_there_is_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = object()
    assert compat.task_state_store({"task_state_store": store, "ti": TI()}) is store
    monkeypatch.setattr(compat, "AIRFLOW_V_3_3_PLUS", False)
    assert compat.task_state_store({}) is None


def test_an_unavailable_feature_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="debitura_provider.compat"):
        compat.feature_unavailable("pytest feature", "9.9", "it is a test")
        compat.feature_unavailable("pytest feature", "9.9", "it is a test")
    lines = [r.getMessage() for r in caplog.records if "pytest feature" in r.getMessage()]
    assert lines == [
        f"pytest feature is unavailable on Airflow {compat.AIRFLOW_VERSION}: it needs Airflow 9.9 (it is a test)."
    ]


@pytest.mark.parametrize(("feature", "flag"), [("ui_views", "3.1"), ("hitl", "3.1"), ("start_from_trigger", "3.3")])
def test_a_feature_of_a_newer_airflow_is_off_with_one_log_line_saying_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, feature: str, flag: str
) -> None:
    _, needs, why = compat.FEATURES[feature]
    monkeypatch.setitem(compat.FEATURES, feature, (False, needs, why))
    monkeypatch.setattr(compat, "_reported", set())
    with caplog.at_level("INFO", logger="debitura_provider.compat"):
        assert compat.supports(feature) is False
        assert compat.supports(feature) is False
    assert [r.getMessage() for r in caplog.records] == [
        f"{feature} is unavailable on Airflow {compat.AIRFLOW_VERSION}: it needs Airflow {flag} ({why})."
    ]


def test_on_this_airflow_the_gates_match_its_version() -> None:
    from packaging.version import Version

    version = Version(Version(compat.AIRFLOW_VERSION).base_version)
    assert compat.supports("ui_views") is (version >= Version("3.1"))
    assert compat.supports("start_from_trigger") is (version >= Version("3.3"))
