"""Mounts the Debitura webhook receiver in Airflow's API server.

The path is ``[debitura] webhook_path`` (env ``AIRFLOW__DEBITURA__WEBHOOK_PATH``), default
``/debitura/webhooks``; Debitura posts to ``https://<airflow host><path>/`` (with the trailing slash).
"""

from __future__ import annotations

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

from debitura_provider.receiver.app import create_app

DEFAULT_PATH = "/debitura/webhooks"


def webhook_path() -> str:
    """The configured mount path, normalised to one leading and no trailing slash."""
    path = conf.get("debitura", "webhook_path", fallback=DEFAULT_PATH).strip().strip("/")
    return f"/{path}" if path else DEFAULT_PATH


class DebituraWebhookPlugin(AirflowPlugin):
    """Debitura webhooks → Airflow Asset events (see docs/webhooks.md)."""

    name = "debitura_webhooks"
    fastapi_apps = [{"app": create_app(), "url_prefix": webhook_path(), "name": "Debitura webhooks"}]
