"""The provider as an agency installs it: the built wheel, without extras, in clean virtualenvs.

* ``lean``: the wheel and the Airflow release of the test venv, nothing else. Airflow must list the provider
  and its webhook plugin, and everything the provider info names must import.
* ``plain``: the wheel and its non-Airflow requirements only (no Airflow, no FastAPI): the API client works
  there, and ``debitura-sandbox`` names the extra it needs instead of printing a traceback.

Both venvs are made with the ``uv`` beside this interpreter (its cache makes them quick) and removed afterwards.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"
DIST = "airflow-provider-debitura"
RUNTIME = {"apache-airflow", "apache-airflow-providers-common-compat", "httpx", "pydantic", "tenacity", "pycountry"}
"""The provider's run-time requirements, and only those (issue 11: a lean install)."""


@dataclass
class Venv:
    root: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``args[0]`` from the venv's ``bin/``, run outside the repo (so that nothing imports it from the cwd)."""
        done = subprocess.run(
            [str(self.root / "bin" / args[0]), *args[1:]],
            env=self.env,
            cwd=self.root.parent,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def json(self, *args: str) -> list[dict[str, str]]:
        """The JSON list an ``airflow ... -o json`` command prints (some releases log lines before it)."""
        lines = self.run(*args).stdout.splitlines()
        found: list[dict[str, str]] = next(json.loads(ln) for ln in reversed(lines) if ln.startswith("["))
        return found

    def python(self, code: str) -> object:
        """Run ``code`` in the venv; its last line of output, read as JSON."""
        return json.loads(self.run("python", "-c", code).stdout.strip().splitlines()[-1])


def _uv(*args: str | Path) -> None:
    done = subprocess.run([str(UV), *map(str, args)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"uv {' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ (]", requirement, maxsplit=1)[0].lower()


@pytest.fixture(scope="module")
def wheel() -> Iterator[Path]:
    """The wheel, built from an sdist of this tree (what ``uv build`` does by default)."""
    with tempfile.TemporaryDirectory(prefix="debitura-dist-") as out:
        _uv("build", "--quiet", "--out-dir", out, REPO)
        (built,) = Path(out).glob("airflow_provider_debitura-*.whl")
        yield built


def _metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode()


def _requirements(wheel: Path) -> dict[str | None, set[str]]:
    """Requirement names by extra (``None``: run time)."""
    found: dict[str | None, set[str]] = {}
    for line in re.findall(r"^Requires-Dist: (.+)$", _metadata(wheel), re.M):
        extra = re.search(r"extra == \"([^\"]+)\"", line)
        found.setdefault(extra.group(1) if extra else None, set()).add(_name(line))
    return found


def _venv(root: Path, *requirements: str | Path, no_deps: bool = False) -> Venv:
    _uv("venv", "--quiet", "--python", sys.executable, root)
    _uv(
        "pip",
        "install",
        "--quiet",
        "--python",
        root / "bin" / "python",
        *(["--no-deps"] if no_deps else []),
        *requirements,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(root),
        AIRFLOW_HOME=str(root.parent / "airflow-home"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    return Venv(root, env)


@pytest.fixture(scope="module")
def lean(wheel: Path) -> Iterator[Venv]:
    """The wheel without extras beside the Airflow release this test runs under."""
    airflow = importlib.metadata.version("apache-airflow")
    with tempfile.TemporaryDirectory(prefix="debitura-lean-") as tmp:
        yield _venv(Path(tmp) / "venv", wheel, f"apache-airflow=={airflow}")


@pytest.fixture(scope="module")
def plain(wheel: Path) -> Iterator[Venv]:
    """The wheel and its run-time requirements that are not Airflow: plain Python, no FastAPI."""
    wanted = [
        r
        for r in re.findall(r"^Requires-Dist: (.+)$", _metadata(wheel), re.M)
        if "extra ==" not in r and not _name(r).startswith("apache-airflow")
    ]
    with tempfile.TemporaryDirectory(prefix="debitura-plain-") as tmp:
        root = Path(tmp) / "venv"
        venv = _venv(root, wheel, no_deps=True)
        _uv("pip", "install", "--quiet", "--python", root / "bin" / "python", *wanted)
        yield venv


def test_the_wheel_holds_the_package_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        assert "debitura_provider/py.typed" in archive.namelist()
    assert {t for t in tops if not t.endswith(".dist-info")} == {"debitura_provider"}


def test_run_time_requirements_are_what_the_provider_needs(wheel: Path) -> None:
    requirements = _requirements(wheel)
    assert requirements[None] == RUNTIME
    assert {"fastapi", "uvicorn"} <= requirements["sandbox"]
    assert {"apache-airflow-providers-common-sql", "apache-airflow-providers-sqlite"} <= requirements["examples"]


def test_airflow_lists_the_provider_and_its_webhook_plugin(lean: Venv) -> None:
    providers = lean.json("airflow", "providers", "list", "-o", "json")
    ours = [p for p in providers if p["package_name"] == DIST]
    assert ours, f"{DIST} not in {[p['package_name'] for p in providers]}"
    assert ours[0]["version"] == importlib.metadata.version(DIST)
    # The receiver runs inside Airflow's API server: the FastAPI it needs comes with apache-airflow-core.
    plugins = lean.json("airflow", "plugins", "-o", "json")
    assert "debitura_webhooks" in [p["name"] for p in plugins]


def test_what_the_provider_info_names_imports(lean: Venv) -> None:
    imported = lean.python(
        """
import importlib, inspect, json
from debitura_provider import get_provider_info
info = get_provider_info()
classes = [t["hook-class-name"] for t in info["connection-types"]] + info["extra-links"]
for name in classes:
    module, _, attr = name.rpartition(".")
    getattr(importlib.import_module(module), attr)
found = {}
for kind in ("hooks", "operators", "sensors", "triggers"):
    for entry in info[kind]:
        for module in entry["python-modules"]:
            found[module] = sorted(n for n, v in vars(importlib.import_module(module)).items()
                                   if inspect.isclass(v) and v.__module__.startswith("debitura_provider."))
print(json.dumps({"classes": classes, "modules": found}))
"""
    )
    assert isinstance(imported, dict)
    names = {name for names in imported["modules"].values() for name in names}
    assert {"DebituraHook", "ManagedCaseSensor", "ManagedCaseTrigger"} <= names
    assert {"CreateManagedCaseOperator", "FetchTimelineOperator", "RecordTestPaymentOperator"} <= names
    assert "ReferInvoicesOperator" in names


def test_the_lean_install_has_no_example_providers(lean: Venv) -> None:
    assert lean.python(
        "import importlib.util, json; print(json.dumps(importlib.util.find_spec('airflow.providers.sqlite') is None))"
    )


def test_the_api_client_loads_neither_airflow_nor_fastapi(lean: Venv) -> None:
    loaded = lean.python(
        "import sys, json, debitura_provider.api; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'fastapi', 'starlette', 'uvicorn'})))"
    )
    assert loaded == []


def test_the_api_client_works_without_airflow(plain: Venv) -> None:
    assert plain.python(
        "import importlib.util, json; print(json.dumps([importlib.util.find_spec(m) is None for m in ('airflow', 'fastapi')]))"
    ) == [True, True]
    assert (
        plain.python(
            "import json; from debitura_provider.api import DebituraClient; print(json.dumps(DebituraClient.__name__))"
        )
        == "DebituraClient"
    )


def test_the_sandbox_command_names_its_extra(plain: Venv) -> None:
    done = plain.run("debitura-sandbox", "--port", "0", check=False)
    assert done.returncode != 0
    assert "airflow-provider-debitura[sandbox]" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
