"""Run example DAGs with ``dag.test()`` (what ``airflow dags test`` does) in the Airflow home of the
environment, each run's whole output (stdout, stderr, every logger) into ``$AIRFLOW_HOME/logs/<name>.log``.

One process for all runs: ``airflow dags test`` would import Airflow once per DAG. Used by the
sweeps (sweep.py)::

    REFUSED_CONNECTION=JSON WEBHOOK_ENVELOPES=JSON python -m tests.resilience.run_example_dags DAG_ID...

With ``WEBHOOK_ENVELOPES`` (a JSON list), each envelope is first delivered, signed with the
``debitura_default`` connection's ``webhook_secret``, to the webhook receiver's app and recorded as
an Asset event, as the API server would, so the DAGs scheduled on those assets have events to read.

With ``REFUSED_CONNECTION`` (in the environment, not on the command line where ``ps`` shows it),
``debitura_referral`` runs once more with that ``debitura_default`` connection (a key Debitura
refuses), into ``logs/refused.log``. Prints ``<name> <state>`` per run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
for folder in (REPO / "dags", REPO / "scripts"):
    sys.path.insert(0, str(folder))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dag_ids", nargs="+")
    args = parser.parse_args(argv)
    refused = os.environ.pop("REFUSED_CONNECTION", None)
    envelopes = json.loads(os.environ.pop("WEBHOOK_ENVELOPES", "[]"))
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    runs = [(dag_id, dag_id, None) for dag_id in args.dag_ids]
    if refused:
        runs.append(("refused", "debitura_referral", refused))
    from local_airflow import DAGS, output_into, seed_crm

    with output_into(logs / "setup.log"):
        from airflow.utils import db

        from tests.fixtures.compat import DagBag

        db.resetdb()
        seed_crm()
        deliver(envelopes)
        dags = DagBag(dag_folder=str(DAGS)).dags
    for name, dag_id, connection in runs:
        if connection:
            os.environ["AIRFLOW_CONN_DEBITURA_DEFAULT"] = connection
        with output_into(logs / f"{name}.log"):
            state = dags[dag_id].test().state
        print(name, state, flush=True)
    return 0


def deliver(envelopes: list[dict]) -> None:
    """Each envelope through the receiver's app (signature checked, queued), then recorded as Asset events."""
    if not envelopes:
        return
    from starlette.testclient import TestClient

    from debitura_provider.api.webhooks import SIGNATURE_HEADER, sign
    from debitura_provider.hooks.debitura import WEBHOOK_SECRET_FIELD
    from debitura_provider.receiver import inbox
    from debitura_provider.receiver.app import ReceiverSettings, create_app

    secret = json.loads(os.environ["AIRFLOW_CONN_DEBITURA_DEFAULT"])["extra"][WEBHOOK_SECRET_FIELD]
    client = TestClient(create_app(ReceiverSettings(conn_id="debitura_default")))  # no lifespan: recorded below
    for envelope in envelopes:
        body = json.dumps(envelope).encode()
        answer = client.post("/", content=body, headers={SIGNATURE_HEADER: sign(secret, body)})
        if answer.status_code not in (200, 202):
            raise RuntimeError(f"the receiver refused {envelope['event']}: {answer.status_code} {answer.text}")
    inbox.record_pending()


if __name__ == "__main__":
    sys.exit(main())
