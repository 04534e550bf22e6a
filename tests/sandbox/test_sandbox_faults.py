"""``--faults``: each kind does what it says, draws repeat for a seed whatever the arrival order, and
the sandbox logs what it injected and still stops cleanly."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from debitura_provider.sandbox import FaultSpec, SandboxServer
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.helpers import case_body, client, wait_for

pytestmark = pytest.mark.resilience

CLIENT_TIMEOUT = 0.5
FAULT_DELAY = 1.0


def once(kind: str) -> FaultSpec:
    """The first attempt of every request meets ``kind``; the next goes through."""
    return FaultSpec.parse(f"{kind}=1", delay=FAULT_DELAY, attempts_faulted=1)


def post_case(server: SandboxServer, body: dict[str, Any], key: str = "key-1") -> httpx.Response:
    with client(server) as c:
        return c.post("/managed-cases", json=body, headers={"Idempotency-Key": key}, timeout=CLIENT_TIMEOUT)


def cases_with(server: SandboxServer, reference: str) -> list[str]:
    """Ids of the cases holding this creditor reference, read from the sandbox's state."""
    return [str(c.id) for c in list(server.sandbox.store.cases.values()) if c.creditor_reference == reference]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("error", "not kind=probability"),
        ("error=lots", "not kind=probability"),
        ("error=nan", "not kind=probability"),
        ("meltdown=0.1", "unknown fault kind"),
        ("error=1.5", "not between 0 and 1"),
        ("error=0.6,reset=0.6", "add up to 1.2"),
        ("error=0.1,error=0.2", "once"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        FaultSpec.parse(text)


def test_the_spec_reads_back_as_written() -> None:
    spec = FaultSpec.parse(" error=0.1, commit_then_timeout=0.05 ,reset=0.05")
    assert str(spec) == "error=0.1,commit_then_timeout=0.05,reset=0.05"
    assert spec.total == pytest.approx(0.2)


@pytest.mark.parametrize("kind", ["error", "rate_limit"])
def test_a_refusal_writes_nothing(sandbox_factory: SandboxFactory, kind: str) -> None:
    body = case_body()
    with sandbox_factory(faults=once(kind)) as server:
        first = post_case(server, body)
        assert cases_with(server, body["creditorReference"]) == []
        second = post_case(server, body)
    if kind == "error":
        assert first.status_code in (500, 503)
        assert first.json()["businessErrors"][0]["type"] in ("InternalServerError", "ServiceUnavailable")
    else:
        assert first.status_code == 429
        assert first.json()["retryAfter"] == 1.0 and first.json()["error"] == "rate_limit_exceeded"
    assert second.status_code == 200


def test_commit_then_error_writes_then_answers_500(sandbox_factory: SandboxFactory) -> None:
    body = case_body()
    with sandbox_factory(faults=once("commit_then_error")) as server:
        first = post_case(server, body)
        made = cases_with(server, body["creditorReference"])
        second = post_case(server, body)
    assert first.status_code == 500 and len(made) == 1
    assert second.status_code == 200 and second.json()["id"] == made[0]


def test_commit_then_timeout_writes_and_never_answers(sandbox_factory: SandboxFactory) -> None:
    body = case_body()
    with sandbox_factory(faults=once("commit_then_timeout")) as server:
        with pytest.raises(httpx.ReadTimeout):
            post_case(server, body)
        made = cases_with(server, body["creditorReference"])
        second = post_case(server, body)
    assert len(made) == 1 and second.json()["id"] == made[0]


def test_a_held_answer_is_dropped_when_the_client_waits_longer_than_the_hold(sandbox_factory: SandboxFactory) -> None:
    body = case_body()
    with sandbox_factory(faults=FaultSpec.parse("commit_then_timeout=1", delay=0.2)) as server, client(server) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/managed-cases", json=body, headers={"Idempotency-Key": "k"}, timeout=30)
        assert len(cases_with(server, body["creditorReference"])) == 1


def test_a_reset_drops_the_connection(sandbox_factory: SandboxFactory) -> None:
    body = case_body()
    with sandbox_factory(faults=once("reset")) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            post_case(server, body)
        second = post_case(server, body)
        assert cases_with(server, body["creditorReference"]) == [second.json()["id"]]


def test_a_slow_request_is_handled_after_the_client_gave_up_and_meets_its_retry(
    sandbox_factory: SandboxFactory,
) -> None:
    body = case_body()
    with sandbox_factory(faults=once("slow")) as server:
        with pytest.raises(httpx.ReadTimeout):
            post_case(server, body)
        retry = post_case(server, body)
        wait_for(lambda: server.app.state.faults.active == 0, "the late original to be handled")
        # The late original ran after its retry; with the same key it replayed the retry's case.
        assert cases_with(server, body["creditorReference"]) == [retry.json()["id"]]


def test_the_same_seed_gives_the_same_faults_whatever_the_arrival_order(sandbox_factory: SandboxFactory) -> None:
    bodies = [case_body() for _ in range(30)]
    spec = FaultSpec.parse("error=0.2,commit_then_error=0.1,reset=0.1,rate_limit=0.1")

    def outcomes(seed: int, order: list[int], workers: int) -> dict[int, Any]:
        seen: dict[int, Any] = {}
        with sandbox_factory(faults=spec, seed=seed) as server:

            def send(i: int) -> None:
                try:
                    seen[i] = post_case(server, bodies[i], key=f"key-{i}").status_code
                except httpx.TransportError as exc:
                    seen[i] = type(exc).__name__

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(send, order))
        return seen

    in_order = outcomes(7, list(range(30)), 1)
    concurrent_reversed = outcomes(7, list(reversed(range(30))), 8)
    other_seed = outcomes(8, list(range(30)), 1)

    assert in_order == concurrent_reversed
    assert set(in_order.values()) >= {200, 429, "RemoteProtocolError"} and {500, 503} & set(in_order.values())
    assert other_seed != in_order


def test_test_driver_and_portal_are_exempt(sandbox_factory: SandboxFactory) -> None:
    with sandbox_factory(faults=once("error")) as server, client(server) as c:
        body = case_body()
        assert post_case(server, body).status_code in (500, 503)
        case_id = post_case(server, body).json()["id"]
        assert c.get("/me").status_code in (500, 503)  # every API route, reads too
        assert c.post(f"/test/cases/{case_id}/advance", json={"to": "Active"}).status_code == 200
        assert c.get(f"/portal/cases/{case_id}").status_code == 200
        assert server.app.state.faults.counts == {"error": 2}


def test_every_fault_is_logged_and_counted_without_secrets_or_bodies(
    sandbox_factory: SandboxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="debitura_provider.sandbox.faults")
    bodies = [case_body() for _ in range(20)]
    with sandbox_factory(faults="error=0.3,rate_limit=0.2", api_key="sandbox-secret-key-4f1d") as server:
        for i, body in enumerate(bodies):
            post_case(server, body, key=f"key-{i}")
        plan = server.app.state.faults
    lines = [r.getMessage() for r in caplog.records if r.name == "debitura_provider.sandbox.faults"]
    assert plan.requests == 20 and 0 < sum(plan.counts.values()) == len(lines)
    assert {line.split()[2] for line in lines} <= {"error", "rate_limit"}
    assert all("POST /managed-cases (attempt 1, request " in line for line in lines)
    assert "sandbox-secret-key-4f1d" not in caplog.text
    assert not any(body["creditorReference"] in caplog.text for body in bodies)


def test_a_held_request_does_not_keep_the_sandbox_from_stopping(sandbox_factory: SandboxFactory) -> None:
    body = case_body()
    failures: list[BaseException] = []
    spec = FaultSpec.parse("commit_then_timeout=1", delay=600)
    with ThreadPoolExecutor(1) as pool, sandbox_factory(faults=spec) as server:
        plan = server.app.state.faults

        def wait_for_answer() -> None:
            try:
                with client(server) as c:
                    c.post("/managed-cases", json=body, timeout=600)
            except httpx.TransportError as exc:
                failures.append(exc)

        waiting = pool.submit(wait_for_answer)
        wait_for(lambda: plan.active == 1, "the request to be held")
    # The server stopped with the request held: uvicorn cancelled it after its grace period.
    waiting.result(timeout=60)
    assert server._thread is None and plan.active == 0
    assert [type(f) for f in failures] == [httpx.RemoteProtocolError]


def test_the_cli_takes_faults_and_refuses_a_bad_spec(capsys: pytest.CaptureFixture[str]) -> None:
    from debitura_provider.sandbox.__main__ import main
    from tests.sandbox.test_sandbox_cli import start, wait_until_serving

    assert main(["--faults", "error=2"]) == 2
    assert "fault error: probability 2.0 is not between 0 and 1" in capsys.readouterr().err

    process, base_url, _ = start("--faults", "error=1", "--seed", "3", "--no-rate-limit")
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "Injecting faults: error=1 (seed 3)"
        wait_until_serving(base_url, "sandbox-key")
        assert httpx.get(f"{base_url}/me", headers={"XApiKey": "sandbox-key"}).status_code in (500, 503)
    finally:
        process.terminate()
        returncode = process.wait(timeout=60)
    output = process.stdout.read()
    assert returncode == 0, output
    assert "Injecting fault error into GET /me (attempt 1, request " in output
