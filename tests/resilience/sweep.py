"""The sweeps' shared run: every example DAG in an Airflow home of its own, and what must not be found in it.

One run serves two sweeps (``test_secrets.py``, ``test_personal_data.py``): a sandbox with a
recognisable API key, a CRM seeded with the sample agency (``dags/agency_crm/sample``, whose
debtors have recognisable names, e-mails, phones and addresses), webhook deliveries whose
``data`` carries debtor personal data, then every DAG of ``dags/`` with ``dag.test()`` (see
``run_example_dags.py``) and the referral once more with a key Debitura refuses.

Also a command, to check any Airflow home, ``make demo``'s for instance::

    python -m tests.resilience.sweep .airflow/demo

prints every debtor value (e-mail, phone, street address ...) found outside the CRM database,
and exits 1 when there is one.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent.parent
SAMPLE = REPO / "dags" / "agency_crm" / "sample"

API_KEY = "dbt-live-4f9c1e7a5b2d40688c3e"
WRONG_KEY = "dbt-live-a3e69b2c8d1f4a70b5d1"
WEBHOOK_SECRET = base64.b64encode(b"whsec-7d0e8f1a6b5c4d3e2f1a9b8c7d6e5f4a").decode()
FIRST = ("debitura_crm_extract", "debitura_referral")
"""The order an agency runs them in; every other DAG of dags/ follows."""

CRM_DB = "crm.sqlite3"
"""Where the debtors' data belongs: the CRM database, the one file of the home not searched."""

PERSONAL_COLUMNS = ("name", "contact_person", "registration_number", "address", "email", "phone")
"""Columns of ``debtors.csv`` whose every value is searched."""
PLACE_COLUMNS = ("zip_code", "city")
"""Searched when distinctive: a 5-digit zip code or a short city name also occurs in ids and timestamps."""
FREE_TEXT = ("description", "collection_notes")
"""Columns of ``invoices.csv`` (the claim description and the comments) searched as they are."""


@dataclass
class SweptHome:
    home: Path
    sandbox_log: Path
    dag_ids: list[str]
    states: dict[str, str]


def _distinctive(value: str) -> bool:
    return len(value) >= 7 or (len(value) >= 5 and not value.isdigit())


def debtor_values(sample: Path = SAMPLE) -> dict[str, str]:
    """Every personal value of the sample CRM, as ``{value: "D-003 email"}``."""
    found: dict[str, str] = {}
    with (sample / "debtors.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            for column in (*PERSONAL_COLUMNS, *PLACE_COLUMNS):
                value = (row.get(column) or "").strip()
                if value and (column in PERSONAL_COLUMNS or _distinctive(value)):
                    found.setdefault(value, f"{row['debtor_id']} {column}")
    with (sample / "invoices.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            for column in FREE_TEXT:
                value = (row.get(column) or "").strip()
                if value:
                    found.setdefault(value, f"{row['invoice_id']} {column}")
    return found


def contact_values(sample: Path = SAMPLE) -> dict[str, str]:
    """The sample's e-mails, phone numbers and street addresses (the issue's "done when" figure)."""
    return {v: k for v, k in debtor_values(sample).items() if k.split()[1] in ("email", "phone", "address")}


def forms(value: str) -> set[bytes]:
    """The value as text, JSON-escaped (both ways) and HTML-escaped: how it would sit in a file."""
    texts = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], html.escape(value)}
    return {t.encode() for t in texts}


def find_values(data: bytes, values: dict[str, str]) -> list[str]:
    """The values (``"D-003 email"``) one of whose :func:`forms` occurs in ``data``."""
    return [label for value, label in values.items() if any(form in data for form in forms(value))]


def sweep(home: Path, values: dict[str, str]) -> dict[str, list[str]]:
    """``{file: [values found]}`` over every file of the Airflow home but the CRM database."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in home.rglob("*") if p.is_file() and p.name != CRM_DB):
        hits = find_values(path.read_bytes(), values)
        if hits:
            found[str(path.relative_to(home))] = hits
    return found


def example_dag_ids(airflow_dags: dict[str, Any]) -> list[str]:
    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).resolve()
    found = sorted(d for d, dag in airflow_dags.items() if Path(dag.fileloc).resolve().parent == dags_folder)
    return [d for d in FIRST if d in found] + [d for d in found if d not in FIRST]


def webhook_envelopes() -> list[dict[str, Any]]:
    """Deliveries whose ``data`` holds debtor personal data beside the ids and amounts (the receiver keeps
    only its allow-list); timestamped now, so their signatures are fresh."""
    debtor = next(iter(csv.DictReader((SAMPLE / "debtors.csv").open(encoding="utf-8", newline=""))))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    case_id = str(uuid.uuid4())
    personal = {"debtorName": debtor["name"], "debtorEmail": debtor["email"], "debtorPhone": debtor["phone"]}
    base = {"caseId": case_id, "reference": "DEB-SWEEP-1", "lifecycle": "Active", "classification": "test"}
    data = [
        (
            "payment.created",
            {
                **base,
                "paymentId": str(uuid.uuid4()),
                "amount": 125.5,
                "currency": "USD",
                "date": now,
                "remainder": 874.5,
                **personal,
            },
        ),
        (
            "case.closed",
            {
                **base,
                "lifecycle": "Closed",
                "closeCode": "DebtorUntraceable",
                "closeComment": f"{debtor['contact_person']} moved away from {debtor['address']}",
            },
        ),
        (
            "chat.created",
            {
                **base,
                "chatId": str(uuid.uuid4()),
                "roleLabel": "Debtor",
                "message": f"Please call me on {debtor['phone']} or write to {debtor['email']}",
            },
        ),
    ]
    return [
        {
            "id": str(uuid.uuid4()),
            "specVersion": "1.0",
            "event": event,
            "timestamp": now,
            "data": body,
            "links": {"self": f"https://collectionpartner-api.debitura.com/managed-cases/{case_id}"},
        }
        for event, body in data
    ]


def start_sandbox(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``debitura-sandbox`` with the recognisable key, its whole output (access log included) in ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "debitura_provider.sandbox",
                "--port",
                "0",
                "--api-key",
                API_KEY,
                "--speed",
                "864000",
                "--no-rate-limit",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while not (found := re.search(r"Debitura sandbox on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the sandbox did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    return process, found.group(1)


def run_every_example_dag(home: Path, sandbox_log: Path, dag_ids: list[str]) -> SweptHome:
    """The shared run (module doc), in ``home``; the sandbox stops whatever happens."""
    sys.path.insert(0, str(REPO / "scripts"))
    from local_airflow import airflow_env, connection_env, connections

    process, base_url = start_sandbox(sandbox_log)
    try:
        conns = connections(base_url, API_KEY, f"{base_url}/portal", home / CRM_DB)
        conns["debitura_default"]["extra"]["webhook_secret"] = WEBHOOK_SECRET
        refused = json.dumps({**conns["debitura_default"], "password": WRONG_KEY})
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the tests' home
        env = {
            **inherited,
            **airflow_env(home),
            **connection_env(conns),
            "REFUSED_CONNECTION": refused,
            "WEBHOOK_ENVELOPES": json.dumps(webhook_envelopes()),
        }
        done = subprocess.run(
            [sys.executable, "-m", "tests.resilience.run_example_dags", *dag_ids],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        process.terminate()
        process.wait(60)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return SweptHome(home, sandbox_log, dag_ids, dict(line.split() for line in done.stdout.splitlines()))


def _report(found: dict[str, list[str]], values: Iterable[str]) -> str:
    distinct = sorted({label for labels in found.values() for label in labels})
    lines = [f"{len(distinct)} of {len(list(values))} debtor values found outside {CRM_DB}"]
    lines += [f"  {name}: {', '.join(labels)}" for name, labels in found.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Search an Airflow home for the sample CRM's debtor data.")
    parser.add_argument("home", type=Path)
    parser.add_argument("--contacts", action="store_true", help="only e-mails, phone numbers and street addresses")
    args = parser.parse_args(argv)
    values = contact_values() if args.contacts else debtor_values()
    found = sweep(args.home, values)
    print(_report(found, values))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
