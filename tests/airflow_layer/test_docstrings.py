"""Every public parameter of an operator or sensor is documented in its class docstring (issue 11)."""

from __future__ import annotations

import importlib
import inspect

import pytest

from debitura_provider.compat import BaseOperator

MODULES = (
    "debitura_provider.operators.managed_cases",
    "debitura_provider.operators.payments",
    "debitura_provider.operators.referral",
    "debitura_provider.sensors.managed_cases",
)
"""The Airflow layer's modules (the collection-partner modules are checked by their own tests)."""


def _classes() -> list[type]:
    found: dict[str, type] = {}
    for name in MODULES:
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            if issubclass(cls, BaseOperator) and cls.__module__ == name and not cls.__name__.startswith("_"):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[key] for key in sorted(found)]


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_public_parameter_is_documented(cls: type) -> None:
    parameters = [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    documented = inspect.getdoc(cls) or ""
    missing = [name for name in parameters if f":param {name}:" not in documented]
    assert missing == [], f"{cls.__name__} does not document {missing}"
