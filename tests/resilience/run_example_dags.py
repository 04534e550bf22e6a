"""Run example DAGs with ``dag.test()`` (what ``airflow dags test`` does) in the Airflow home of the
environment, each run's whole output (stdout, stderr, every logger) into ``$AIRFLOW_HOME/logs/<name>.log``.

One process for all runs: ``airflow dags test`` would import Airflow once per DAG. Used by
test_secrets.py::

    REFUSED_CONNECTION=JSON python -m tests.resilience.run_example_dags DAG_ID...

With ``REFUSED_CONNECTION`` (in the environment, not on the command line where ``ps`` shows it),
``debitura_referral`` runs once more with that ``debitura_default`` connection (a key Debitura
refuses), into ``logs/refused.log``. Prints ``<name> <state>`` per run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
for folder in (REPO / "dags", REPO / "scripts"):
    sys.path.insert(0, str(folder))


@contextlib.contextmanager
def output_into(log: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``log``: whatever writes to them, handlers made earlier included."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dag_ids", nargs="+")
    args = parser.parse_args(argv)
    refused = os.environ.pop("REFUSED_CONNECTION", None)
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    runs = [(dag_id, dag_id, None) for dag_id in args.dag_ids]
    if refused:
        runs.append(("refused", "debitura_referral", refused))
    with output_into(logs / "setup.log"):
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils import db
        from local_airflow import DAGS, seed_crm

        db.resetdb()
        seed_crm()
        dags = DagBag(dag_folder=str(DAGS)).dags
    for name, dag_id, connection in runs:
        if connection:
            os.environ["AIRFLOW_CONN_DEBITURA_DEFAULT"] = connection
        with output_into(logs / f"{name}.log"):
            state = dags[dag_id].test().state
        print(name, state, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
