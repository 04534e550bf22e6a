"""Where the DAGs' files go: one base URL through Airflow's object storage, readable from any worker.

On a Celery or Kubernetes worker a file on the local disk is out of reach of the others and is lost
with the worker, so every file a DAG writes goes through :class:`airflow.sdk.ObjectStoragePath`
under one base URL, first match wins:

1. the ``url`` given (the DAGs pass the Airflow Variable :data:`VARIABLE`);
2. the environment variable :data:`ENV` (set it on every worker);
3. ``file://<AIRFLOW_HOME>/debitura``, right for one machine.

``s3://bucket/prefix`` or ``gs://bucket/prefix`` need the Amazon or Google provider (which register
the fsspec file systems) and, optionally, the Airflow connection named by :data:`CONN_ENV`.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import ObjectStoragePath

VARIABLE = "debitura_artifacts_url"
"""The Airflow Variable holding the base URL (read by the task that writes)."""
ENV = "DEBITURA_ARTIFACTS_URL"
"""The environment variable holding the base URL, when no Variable is set."""
CONN_ENV = "DEBITURA_ARTIFACTS_CONN_ID"
"""The environment variable naming the Airflow connection with the store's credentials, if any."""


def default_url() -> str:
    """``file://<AIRFLOW_HOME>/debitura``."""
    home = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser().resolve()
    return (home / "debitura").as_uri()


def artifacts_base(url: str | None = None) -> ObjectStoragePath:
    """The base every DAG file goes under (see the module docstring for the order)."""
    base = url or os.environ.get(ENV) or default_url()
    if "://" not in base:
        raise ValueError(f"{VARIABLE} / {ENV} must be a URL such as file:///srv/reports or s3://bucket/x, got {base!r}")
    return ObjectStoragePath(base, conn_id=os.environ.get(CONN_ENV) or None)


def safe_name(name: str) -> str:
    """``name`` with every character unsafe in a file or object name replaced by ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def write_artifact(folder: str, name: str, content: str, *, url: str | None = None) -> ObjectStoragePath:
    """Write ``content`` as ``<base>/<folder>/<name>`` (UTF-8) and return where it is."""
    directory = artifacts_base(url) / folder
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / safe_name(name)
    path.write_text(content, encoding="utf-8")
    return path
