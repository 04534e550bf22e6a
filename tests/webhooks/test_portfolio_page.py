"""The "Debitura" page's figures: read from a fresh sandbox at one list request per 100 cases, shared and
refreshed at most once a minute, matching the cases as the API returns them; anonymous requests refused."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from debitura_provider.api import UNLIMITED, DebituraClient
from debitura_provider.receiver import portfolio_view
from debitura_provider.receiver.portfolio_data import PortfolioCache
from tests.airflow_layer.cases import invoice


@pytest.fixture
def fresh_sandbox(sandbox_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    with sandbox_factory() as server:
        conn = {
            "conn_type": "debitura",
            "host": server.base_url,
            "password": server.api_key,
            "extra": {"portal_url": server.portal_url, "rate_limit_per_minute": 0},
        }
        monkeypatch.setenv("AIRFLOW_CONN_DEBITURA_PAGE", json.dumps(conn))
        yield server


def test_the_portfolio_costs_one_list_request_per_100_cases_and_matches_the_api(fresh_sandbox: Any) -> None:
    with DebituraClient(fresh_sandbox.api_key, fresh_sandbox.base_url, rate_limits=UNLIMITED) as client:
        for i in range(205):
            client.create_managed_case(invoice(None, amountToRecover=100.0 + i, currencyCode="EUR" if i % 3 else "USD"))
        cases = list(client.iter_managed_cases())
    assert len(cases) == 205

    loaded, portal_url, sent, _ = portfolio_view.load_portfolio("debitura_page")
    assert sent == 3
    portfolio = PortfolioCache(lambda conn_id: (loaded, portal_url, sent, UNLIMITED)).get("debitura_page")
    figures = portfolio_view.figures(portfolio)

    assert figures["by_lifecycle"] == dict(sorted(Counter(c.lifecycle for c in cases).items()))
    for row in figures["by_currency"]:
        mine = [c for c in cases if c.currency == row["currency"]]
        assert row["cases"] == len(mine)
        assert Decimal(row["referred"]) == sum(c.gross_amount for c in mine)
        assert Decimal(row["outstanding"]) == sum(c.remainder for c in mine)
        assert Decimal(row["collected"]) == sum(c.paid_off for c in mine)
    assert all(c["url"] == f"{portal_url}/cases/{c['id']}" for c in portfolio.cases)
    assert not any("debtor" in c for c in portfolio.cases)


def test_every_viewer_within_a_minute_shares_one_refresh() -> None:
    now = [0.0]
    loads: list[str] = []

    def load(conn_id: str) -> Any:
        loads.append(conn_id)
        return [], "https://portal", 1, UNLIMITED

    cache = PortfolioCache(load, clock=lambda: now[0])
    for second in range(0, 60, 5):
        now[0] = float(second)
        cache.get("debitura_default")
    assert loads == ["debitura_default"]
    now[0] = 60.0
    cache.get("debitura_default")
    assert len(loads) == 2


def test_a_failed_refresh_keeps_the_last_figures_and_says_why() -> None:
    now = [0.0]
    answers: list[Any] = [([], "https://portal", 1, UNLIMITED), RuntimeError("sandbox down")]

    def load(conn_id: str) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    cache = PortfolioCache(load, clock=lambda: now[0])
    first = cache.get("c")
    now[0] = 61.0
    second = cache.get("c")
    assert second.fetched_at == first.fetched_at
    assert second.error == "RuntimeError: sandbox down"


@pytest.mark.parametrize("path", ["/", "/data.json", "/report?dag_id=debitura_referral&run_id=r"])
def test_an_anonymous_request_is_refused(path: str) -> None:
    client = TestClient(portfolio_view.create_ui_app())
    response = client.get(path)
    assert response.status_code == 401
    assert "log in" in response.text


class _TI:
    dag_id, run_id, task_id, map_index = "debitura_referral", "manual__1", "wait_for_payment", -1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class _Hook:
    debitura_conn_id = "debitura_default"

    def portal_case_url(self, case_id: str) -> str:
        return f"https://portal/cases/{case_id}"


def test_a_sensor_links_its_watched_cases_until_one_satisfies_it_then_that_case() -> None:
    from debitura_provider.links import CASE_URL_XCOM_KEY, push_satisfied_url, push_watch_url

    ti = _TI()
    push_watch_url({"ti": ti}, _Hook(), ["a", "b"])  # type: ignore[arg-type]
    assert ti.pushed[CASE_URL_XCOM_KEY] == (
        "/debitura/ui/watched?conn_id=debitura_default&dag_id=debitura_referral&run_id=manual__1"
        "&task_id=wait_for_payment&map_index=-1"
    )
    push_satisfied_url({"ti": ti}, _Hook(), ["b"])  # type: ignore[arg-type]
    assert ti.pushed[CASE_URL_XCOM_KEY] == "https://portal/cases/b"
    push_watch_url({"ti": ti}, _Hook(), ["c"])  # type: ignore[arg-type]
    assert ti.pushed[CASE_URL_XCOM_KEY] == "https://portal/cases/c"


def test_the_charts_label_amounts_exactly_and_counts_as_counts() -> None:
    svg = portfolio_view.bar_chart([("EUR collected", Decimal("35180.75")), ("EUR outstanding", Decimal(0))], "x")
    assert ">35,180.75</text>" in svg and ">0.00</text>" in svg
    assert ">1,204</text>" in portfolio_view.bar_chart([("Active", 1204)], "cases")
