"""Provider metadata, declarative as Airflow 3.2+ expects (no hook import, no wtforms).

The connection form is defined once, here: Airflow 3.2+ reads ``conn-fields`` and
``ui-field-behaviour``; 3.0 and 3.1 ignore those keys and call the hook's
``get_connection_form_widgets`` / ``get_ui_field_behaviour``, which build the same fields, labels and
masking from :data:`CONN_FIELDS` and :data:`UI_FIELD_BEHAVIOUR`.
"""

from __future__ import annotations

from typing import Any

from debitura_provider import __version__

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "login", "port", "extra"],
    "relabeling": {"host": "API base URL", "password": "API key"},
    "placeholders": {
        "host": "https://collectionpartner-api.debitura.com",
        "password": "Key from partner.debitura.com → API Keys",
    },
}
"""How the standard fields show in the connection form (provider-info spelling, hyphenated keys)."""

CONN_FIELDS: dict[str, Any] = {
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Per-request timeout.",
        "schema": {"type": ["number", "null"], "minimum": 1, "default": 30},
    },
    "max_attempts": {
        "label": "Attempts per request",
        "description": "Tries for connect errors, timeouts and 5xx (POSTs only with an idempotency key); "
        "a 429 waits its retryAfter without using a try.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 20, "default": 5},
    },
    "verify_tls": {
        "label": "Verify TLS certificates",
        "description": "Turning this off for a non-loopback host logs a warning on every client.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "rate_limit_per_minute": {
        "label": "Requests per minute",
        "description": "Client-side budget per API key (Debitura allows 2,000; 0 turns the limiter off).",
        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 2000},
    },
    "rate_limit_processes": {
        "label": "Processes sharing the key",
        "description": "Debitura pool slots plus triggerers: after a 429 a process keeps at least 1/N of the key.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 16},
    },
    "portal_url": {
        "label": "Partner portal URL",
        "description": "Base of the 'Debitura case' links; defaults to https://partner.debitura.com.",
        "schema": {"type": ["string", "null"]},
    },
    "webhook_secret": {
        "label": "Webhook signing secret",
        "description": "The base64 secret Debitura returned when the webhook subscription was created.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
}
"""The connection's own fields, stored in its extra under these names. Airflow 3.2+ reads them from here;
on 3.0 and 3.1 the hook's ``get_connection_form_widgets`` builds the same fields from this dict."""


def connection_extra(**values: Any) -> dict[str, Any]:
    """A ``debitura`` connection's extra with every field present: ``values`` over the fields' defaults.

    Write connections with this (CLI, scripts, secrets backends): Airflow's connection *Edit* form
    (3.0 to 3.3.2) shows only the fields whose names are keys of the stored extra, so a connection
    stored with ``{"portal_url": ...}`` alone hides timeout, attempts, TLS, rate and the webhook
    secret from its Edit form, while *Add* shows them all. A field left ``None`` reads as its default.
    """
    from debitura_provider.api.errors import ConfigurationError

    unknown = set(values) - set(CONN_FIELDS)
    if unknown:
        raise ConfigurationError(f"not a debitura connection field: {', '.join(sorted(unknown))}")
    return {name: values.get(name, field["schema"].get("default")) for name, field in CONN_FIELDS.items()}


PROVIDER_INFO: dict[str, Any] = {
    "package-name": "airflow-provider-debitura",
    "name": "Debitura",
    "description": "Refer overdue invoices to Debitura as managed cases and monitor them until paid.",
    "versions": [__version__],
    "connection-types": [
        {
            "connection-type": "debitura",
            "hook-class-name": "debitura_provider.hooks.debitura.DebituraHook",
            "hook-name": "Debitura",
            "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            "conn-fields": CONN_FIELDS,
        }
    ],
    "hooks": [{"integration-name": "Debitura", "python-modules": ["debitura_provider.hooks.debitura"]}],
    "operators": [
        {
            "integration-name": "Debitura",
            "python-modules": [
                "debitura_provider.operators.managed_cases",
                "debitura_provider.operators.case_work",
                "debitura_provider.operators.case_payments",
                "debitura_provider.operators.case_files",
                "debitura_provider.operators.case_chats",
            ],
        }
    ],
    "sensors": [
        {
            "integration-name": "Debitura",
            "python-modules": [
                "debitura_provider.sensors.managed_cases",
                "debitura_provider.sensors.assigned_cases",
            ],
        }
    ],
    "triggers": [
        {
            "integration-name": "Debitura",
            "python-modules": ["debitura_provider.triggers.managed_cases", "debitura_provider.triggers.assigned_cases"],
        }
    ],
    "extra-links": ["debitura_provider.links.DebituraCaseLink"],
}
