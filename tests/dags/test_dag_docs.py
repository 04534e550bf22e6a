"""The docs the Airflow UI shows for the example DAGs and their tasks are Markdown, without Sphinx roles."""

from __future__ import annotations

import re
from typing import Any

SPHINX_ROLE = re.compile(r":(?:py:)?(?:data|class|func|meth|mod|attr|obj|exc|ref|doc):`")


def test_no_dag_or_task_doc_shown_in_the_ui_holds_a_sphinx_role(airflow_dags: dict[str, Any]) -> None:
    leaks = [
        f"{dag_id}{'.' + task.task_id if task else ''}"
        for dag_id, dag in airflow_dags.items()
        for task, doc in [(None, dag.doc_md), *((t, t.doc_md) for t in dag.tasks)]
        if doc and SPHINX_ROLE.search(doc)
    ]
    assert not leaks, f"Sphinx roles in the UI's docs of {leaks}"
