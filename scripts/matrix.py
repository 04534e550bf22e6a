"""``make test-matrix``: the built wheel on every supported Airflow minor, each row in a fresh virtualenv.

For each row (an Airflow release and a Python):

1. a fresh venv under ``.venv-matrix/`` with the wheel built once from this tree (not editable) and its
   ``sandbox`` and ``examples`` extras, ``apache-airflow==X.Y.Z``, the test tools of the ``dev`` extra
   (pytest and its plugins, respx) and the row's pins (see :data:`PINS`);
2. the provider's Airflow-facing tests (:data:`TEST_PATHS`: hook, operators, sensor in its three modes,
   trigger, example DAGs, and the webhook receiver where the row's Airflow has plugin ``fastapi_apps``),
   run from a copy of ``tests/``, ``dags/`` and ``scripts/`` without ``debitura_provider/``, so that they
   import the installed wheel; the run checks where ``debitura_provider`` was imported from;
3. the README's "Quick start DAG", copied out of README.md as it stands, run with ``airflow dags test``
   against ``debitura-sandbox`` started from the row's venv.

Rows run two at a time (``--jobs``; the machine has 2 cores). Each row's venv, Airflow home and copy are
removed when it ends (``--keep`` keeps them); its log stays in ``.venv-matrix/logs/``. Exit status 1 when
any row fails. Everything started here is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".venv-matrix"
UV = Path(sys.executable).parent / "uv"


@dataclass(frozen=True)
class Row:
    """One supported Airflow release on one Python."""

    airflow: str
    python: str

    @property
    def name(self) -> str:
        return f"airflow-{self.airflow}-py{self.python}"

    @property
    def minor(self) -> tuple[int, int]:
        major, minor, *_ = self.airflow.split(".")
        return int(major), int(minor)


ROWS = (
    Row("3.0.6", "3.10"),  # 3.0.x supports Python 3.9-3.12
    Row("3.1.8", "3.11"),
    Row("3.2.2", "3.12"),
    Row("3.3.2", "3.13"),
)

PINS: dict[str, tuple[str, ...]] = {
    # fastapi 0.117+ (with the cadwyn it brings): Airflow 3.0.6's execution API answers the task runner's
    # PATCH /task-instances/{id}/run with 422 "Input should be a valid dictionary", so no task starts.
    # universal-pathlib 0.3 (3.0.6 allows it; 3.1 declares <0.3): ObjectStoragePath("file://...") raises
    # "_IncompatibleProtocolError: detected protocol file which is incompatible with ObjectStoragePath".
    "3.0.6": ("fastapi<0.117", "universal-pathlib<0.3"),
    # fastapi 0.137+ (cadwyn 8+): "Model 'TITerminalStatePayload' needs a discriminator field" in the execution
    # API; 3.3.2 declares this bound itself. svcs 26: the execution API fails with KeyError 'svcs_registry'.
    "3.2.2": ("fastapi<0.137", "svcs<26"),
}
"""Extra requirements per Airflow release where the newest allowed version of a dependency breaks it.

No constraint file is reachable from here, so what resolves is the newest release each package allows.
These break Airflow itself (a one-task DAG fails under ``airflow dags test`` without the provider), not
the provider: an agency installing with Airflow's constraint file gets older versions anyway. Found by
resolving with ``uv --exclude-newer <the release's date>`` (which works) and narrowing down."""

TEST_PATHS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("tests/hooks", (3, 0)),
    ("tests/airflow_layer", (3, 0)),  # operators, the sensor (poke, reschedule, deferrable), the trigger
    ("tests/dags", (3, 0)),  # the example DAGs with dag.test() against their own sandbox
    ("tests/roles", (3, 0)),  # the collection-partner operators and the bank-feed example DAG
    ("tests/portfolio/test_trigger.py", (3, 0)),  # the portfolio trigger (BaseEventTrigger, AssetWatcher: 3.0)
    ("tests/webhooks", (3, 0)),  # the receiver: plugin fastapi_apps and fastapi_root_middlewares, both 3.0
)
"""The tests each row runs, with the first Airflow minor whose features they need."""

TEST_TOOLS = ("pytest", "pytest-asyncio", "pytest-timeout", "respx")
"""Taken from the ``dev`` extra with their version ranges; the lint and docs tools are not needed."""

COPIED = ("tests", "dags", "scripts", "bench", "pyproject.toml")
"""What the tests need beside them (``bench/`` for its request counter, ``pyproject.toml`` for pytest's settings);
``debitura_provider/`` is not."""

QUICK_START_HEADING = "## Quick start DAG"
QUICK_START_DAG_ID = "debitura_quick_start"

_children: set[subprocess.Popen[bytes]] = set()
_lock = threading.Lock()
_stopping = threading.Event()


@dataclass
class Result:
    row: Row
    ok: bool = False
    tests: str = "not run"
    quick_start: str = "not run"
    seconds: float = 0.0
    log: Path = field(default_factory=Path)


def find_python(version: str) -> str:
    """An interpreter for ``version``: ``pythonX.Y`` on PATH if it runs, else one in pyenv's versions."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True)]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(int(x) for x in version.split("."))):
            return candidate
    raise SystemExit(f"test-matrix: no Python {version} found (on PATH or in {pyenv})")


def test_tools(wheel: Path) -> list[str]:
    """The requirements of :data:`TEST_TOOLS` as the wheel's ``dev`` extra states them."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(name).decode()
    dev = [m.group(1) for m in re.finditer(r"^Requires-Dist: (.+?) ?; extra == \"dev\"$", metadata, re.M)]
    found = [r for r in dev if re.split(r"[<>=!~\[ (]", r, maxsplit=1)[0] in TEST_TOOLS]
    if len(found) != len(TEST_TOOLS):
        raise SystemExit(f"test-matrix: the dev extra lacks some of {TEST_TOOLS}: {found}")
    return found


def quick_start_dag(readme: Path = REPO / "README.md") -> str:
    """The first ``python`` code block under the README's "Quick start DAG" heading, exactly as written."""
    text = readme.read_text()
    start = text.find(QUICK_START_HEADING + "\n")
    if start < 0:
        raise SystemExit(f"test-matrix: README.md has no {QUICK_START_HEADING!r} section")
    block = re.search(r"^```python\n(.*?)^```$", text[start:], re.S | re.M)
    if not block:
        raise SystemExit(f"test-matrix: no python code block under {QUICK_START_HEADING!r} in README.md")
    return block.group(1)


def run(
    cmd: Sequence[str | Path],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd`` in its own process group, appending its output to ``log``; killed on timeout or Ctrl-C."""
    if _stopping.is_set():
        return subprocess.CompletedProcess(cmd, -2)
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n".encode())
        out.flush()
        process = subprocess.Popen(
            list(map(str, cmd)), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
        with _tracked(process):
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill(process)
                out.write(f"\n[test-matrix] timed out after {timeout:.0f} s\n".encode())
                code = -1
    return subprocess.CompletedProcess(cmd, code)


@contextlib.contextmanager
def _tracked(process: subprocess.Popen[bytes]) -> Iterator[None]:
    with _lock:
        _children.add(process)
        if _stopping.is_set():  # started just as Ctrl-C came: stop it too
            _kill(process, grace=5)
    try:
        yield
    finally:
        with _lock:
            _children.discard(process)


def _kill(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM to the process group, SIGKILL after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def build_wheel(log: Path) -> Path:
    """The provider's wheel, built from an sdist of this tree (so nothing stale in ``build/`` gets in)."""
    dist = WORK / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    if run([UV, "build", "--quiet", "--out-dir", dist, REPO], log).returncode != 0:
        raise SystemExit(f"test-matrix: building the wheel failed; see {log}")
    (wheel,) = dist.glob("airflow_provider_debitura-*.whl")
    return wheel


def row_env(home: Path, venv: Path) -> dict[str, str]:
    """A clean environment for one row: its venv first on PATH, its own Airflow home, no repo on sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "UV_"))}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONDONTWRITEBYTECODE="1",
    )
    spec = REPO.parent / "shared" / "debitura" / "collection-partner-api.json"
    if "DEBITURA_OPENAPI_SPEC" not in env and spec.is_file():
        env["DEBITURA_OPENAPI_SPEC"] = str(spec)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def sandbox(venv: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """``debitura-sandbox`` from the row's venv on a free loopback port; yields its base URL."""
    if _stopping.is_set():
        raise RuntimeError("stopped")
    port = free_port()
    with log.open("ab") as out:
        out.write(f"\n$ debitura-sandbox --port {port}\n".encode())
    out_file = log.open("ab")
    process = subprocess.Popen(
        [str(venv / "bin" / "debitura-sandbox"), "--port", str(port)],
        stdout=out_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        with _tracked(process):
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"debitura-sandbox exited with {process.returncode}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("debitura-sandbox did not listen within 60 s")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            _kill(process)
        out_file.close()


def run_quick_start(venv: Path, work: Path, env: dict[str, str], log: Path) -> str:
    """The README's DAG with ``airflow dags test`` against the row's sandbox; "passed" or what went wrong."""
    dags = work / "quick_start_dags"
    dags.mkdir()
    (dags / "quick_start.py").write_text(quick_start_dag())
    env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    airflow = venv / "bin" / "airflow"
    if run([airflow, "db", "migrate"], log, env=env, cwd=work, timeout=600).returncode != 0:
        return "airflow db migrate failed"
    with sandbox(venv, env, log) as base_url:
        connection = {"conn_type": "debitura", "host": base_url, "password": "sandbox-key"}
        env["AIRFLOW_CONN_DEBITURA_DEFAULT"] = json.dumps(connection)
        offset = log.stat().st_size
        if run([airflow, "dags", "test", QUICK_START_DAG_ID], log, env=env, cwd=work, timeout=600).returncode != 0:
            return "airflow dags test exited non-zero"
    # `airflow dags test` exits non-zero on a failed run (3.0 to 3.3); the run's own log line says it succeeded.
    # (`airflow dags list-runs` cannot tell: on 3.0 `dags test` does not write the DAG to the dag table.)
    output = log.read_bytes()[offset:].decode(errors="replace")
    if not re.search(rf"DagRun Finished: dag_id={QUICK_START_DAG_ID}, .*state=success", output):
        return "no successful DAG run in the output of airflow dags test"
    return "passed"


def _pytest_summary(log: Path) -> str:
    """pytest's closing line ("12 passed, 1 skipped in 80.1s") from the row's log."""
    lines = [ln.strip("= \n") for ln in log.read_text(errors="replace").splitlines()]
    found = [ln for ln in lines if re.search(r"\b(passed|failed|error|errors|no tests ran)\b.* in [\d.]+s", ln)]
    if found:
        return re.sub(r" in [\d.]+s.*", "", found[-1])
    hung = re.search(r"File \"[^\"]*/work/(tests/[^\"]+)\", line \d+, in (test_\w+)", log.read_text(errors="replace"))
    return (
        f"a test hung and pytest-timeout ended the run ({hung.group(1)}::{hung.group(2)})"
        if hung
        else "no pytest summary"
    )


def run_row(row: Row, wheel: Path, tools: list[str], keep: bool) -> Result:
    started = time.monotonic()
    base = WORK / row.name
    log = WORK / "logs" / f"{row.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"test-matrix row {row.name}\n")
    result = Result(row, log=log)
    shutil.rmtree(base, ignore_errors=True)
    venv, work, home = base / "venv", base / "work", base / "airflow-home"
    try:
        python = find_python(row.python)
        if run([UV, "venv", "--quiet", "--python", python, venv], log).returncode != 0:
            result.tests = "venv failed"
            return result
        requirements = [
            f"{wheel}[sandbox,examples]",
            f"apache-airflow=={row.airflow}",
            *tools,
            *PINS.get(row.airflow, ()),
        ]
        if (
            run(
                [UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", *requirements], log, timeout=1200
            ).returncode
            != 0
        ):
            result.tests = "install failed"
            return result
        work.mkdir(parents=True)
        home.mkdir()
        for name in COPIED:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, work / name)
        env = row_env(home, venv)
        where = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import debitura_provider; print(debitura_provider.__file__)"],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
        )
        with log.open("a") as out:
            out.write(f"\ndebitura_provider imported from: {where.stdout.strip()} {where.stderr.strip()}\n")
        if where.returncode != 0 or not where.stdout.startswith(str(venv)):
            result.tests = (
                f"debitura_provider not imported from the wheel ({where.stdout.strip() or where.stderr[-200:]})"
            )
            return result
        paths = [path for path, needs in TEST_PATHS if row.minor >= needs]
        pytest = run(
            [
                venv / "bin" / "python",
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--continue-on-collection-errors",
                # A hung test ends the row with every thread's stack: Airflow's own SIGALRM (execution_timeout)
                # can swallow the default signal-based timeout of pytest-timeout.
                "--timeout-method=thread",
                *paths,
            ],
            log,
            env=env,
            cwd=work,
            timeout=1800,
        )
        result.tests = _pytest_summary(log) + ("" if pytest.returncode == 0 else f" (exit {pytest.returncode})")
        result.quick_start = run_quick_start(venv, work, {**env, "AIRFLOW_HOME": str(home / "quick-start")}, log)
        result.ok = pytest.returncode == 0 and result.quick_start == "passed"
        return result
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        result.quick_start = f"error: {exc}"
        return result
    finally:
        result.seconds = time.monotonic() - started
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def _stop_children(signum: int, frame: object) -> None:
    _stopping.set()
    with _lock:
        running = list(_children)
    for process in running:
        _kill(process, grace=5)
    raise SystemExit(130)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--rows", help="comma-separated Airflow versions to run (default: all): " + ", ".join(r.airflow for r in ROWS)
    )
    parser.add_argument("--jobs", type=int, default=2, help="rows at a time (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep each row's venv, Airflow home and test copy")
    args = parser.parse_args(argv)
    rows = [r for r in ROWS if not args.rows or r.airflow in args.rows.split(",")]
    if not rows:
        parser.error(f"--rows matches none of {[r.airflow for r in ROWS]}")
    signal.signal(signal.SIGTERM, _stop_children)
    signal.signal(signal.SIGINT, _stop_children)
    WORK.mkdir(exist_ok=True)
    (WORK / "logs").mkdir(exist_ok=True)
    started = time.monotonic()
    quick_start_dag()  # fail early when the README lost its DAG
    wheel = build_wheel(WORK / "logs" / "build.log")
    tools = test_tools(wheel)
    print(f"test-matrix: {wheel.name}; rows {', '.join(r.name for r in rows)}; {args.jobs} at a time", flush=True)
    results: list[Result] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_row, row, wheel, tools, args.keep) for row in rows]
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            results.append(result)
            print(
                f"  {result.row.name}: {'PASS' if result.ok else 'FAIL'} in {result.seconds:.0f} s "
                f"(tests: {result.tests}; quick start DAG: {result.quick_start}; log {result.log.relative_to(REPO)})",
                flush=True,
            )
    if not args.keep:
        shutil.rmtree(WORK / "dist", ignore_errors=True)
    results.sort(key=lambda r: rows.index(r.row))
    width = max(len(r.row.name) for r in results)
    print(f"\n{'row':<{width}}  result  wall time  tests / quick start DAG")
    for r in results:
        print(
            f"{r.row.name:<{width}}  {'pass' if r.ok else 'FAIL':<6}  {r.seconds:>7.0f} s  {r.tests} / {r.quick_start}"
        )
    failed = [r for r in results if not r.ok]
    print(
        f"test-matrix: {len(results) - len(failed)} of {len(results)} rows passed in {time.monotonic() - started:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
