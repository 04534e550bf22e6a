"""Mounts the Debitura webhook receiver in Airflow's API server.

Airflow finds the plugin through the ``airflow.plugins`` entry point ``debitura_webhooks`` (in
``pyproject.toml``), not through provider info.

The path is ``[debitura] webhook_path`` (env ``AIRFLOW__DEBITURA__WEBHOOK_PATH``), default
``/debitura/webhooks``; Debitura may post to it with or without a trailing slash.
"""

from __future__ import annotations

from typing import Any

from debitura_provider.compat import AirflowPlugin, conf, supports
from debitura_provider.receiver.app import create_app
from debitura_provider.receiver.portfolio_view import UI_PATH, create_ui_app

DEFAULT_PATH = "/debitura/webhooks"


def webhook_path() -> str:
    """The configured mount path, normalised to one leading and no trailing slash."""
    path = conf.get("debitura", "webhook_path", fallback=DEFAULT_PATH).strip().strip("/")
    return f"/{path}" if path else DEFAULT_PATH


class ExactPathToMount:
    """Routes ``POST <path>`` into the app mounted at ``<path>``: Starlette only routes ``<path>/`` there,
    and Debitura does not follow redirects, so a URL without the slash would fail every delivery."""

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == scope.get("root_path", "") + self.path:
            scope = {**scope, "path": scope["path"] + "/"}
        await self.app(scope, receive, send)


class DebituraWebhookPlugin(AirflowPlugin):
    """Debitura webhooks → Airflow Asset events (docs/webhooks.md), and the "Debitura" page and report tab."""

    name = "debitura_webhooks"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": webhook_path(), "name": "Debitura webhooks"},
        {"app": create_ui_app(), "url_prefix": UI_PATH, "name": "Debitura portfolio"},
    ]
    # Airflow 3.1+ shows the page in its navigation and the report as a tab of each DAG run; on
    # 3.0 both are at their URLs under UI_PATH (docs/how-to/monitor-in-the-ui.md).
    external_views = (
        [
            {"name": "Debitura", "href": f"{UI_PATH}/", "destination": "nav", "url_route": "debitura"},
            {
                "name": "Referral report",
                "href": f"{UI_PATH}/report?dag_id={{DAG_ID}}&run_id={{RUN_ID}}",
                "destination": "dag_run",
                "url_route": "referral-report",
            },
        ]
        if supports("ui_views")
        else []
    )
    fastapi_root_middlewares = [
        {"middleware": ExactPathToMount, "kwargs": {"path": webhook_path()}, "name": "Debitura webhooks path"}
    ]
