"""Every public parameter of an operator, sensor or trigger is documented in its class docstring (issue 11)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from debitura_provider.compat import BaseOperator, BaseTrigger

PACKAGES = ("debitura_provider.operators", "debitura_provider.sensors", "debitura_provider.triggers")
"""Every operator, sensor and trigger module of the package, found by walking these packages."""


def _modules() -> list[str]:
    return sorted(
        info.name
        for package in PACKAGES
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__, f"{package}.")
    )


def _classes() -> list[type]:
    found: dict[str, type] = {}
    for name in _modules():
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            if (
                issubclass(cls, (BaseOperator, BaseTrigger))
                and cls.__module__ == name
                and not cls.__name__.startswith("_")
            ):
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
