"""The Airflow side of the client: connection → configured sync or async client."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from debitura_provider._provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from debitura_provider.api import (
    DEBITURA_LIMITS,
    DEFAULT_BASE_URL,
    UNLIMITED,
    AsyncDebituraClient,
    DebituraClient,
    DebituraError,
    RateLimits,
    RetryPolicy,
)
from debitura_provider.api.errors import ConfigurationError
from debitura_provider.api.models import UpdateWebhookRequest, WebhookSubscription
from debitura_provider.coercion import as_bool, as_float, as_int
from debitura_provider.compat import AIRFLOW_VERSION, BaseHook, Connection, aget_connection_extra

T = TypeVar("T")

DEFAULT_PORTAL_URL = "https://partner.debitura.com"
WEBHOOK_SECRET_FIELD = "webhook_secret"
"""The connection field holding the webhook signing secret (a password field in the UI)."""


@dataclass(frozen=True)
class ClientSettings:
    """Everything a client needs, read once from a connection; ``repr`` hides the key."""

    base_url: str
    api_key: str
    timeout: float
    retry: RetryPolicy
    rate_limits: RateLimits
    verify: bool
    portal_url: str

    def __repr__(self) -> str:
        return f"ClientSettings(base_url={self.base_url!r}, api_key='***')"

    @classmethod
    def from_connection(cls, conn: Connection, extra: dict[str, Any] | None = None) -> ClientSettings:
        """Read ``conn``; ``extra`` is its ``extra_dejson`` when the caller already has it (async lookups).

        A field that cannot be read raises ``ConfigurationError`` naming the field.
        """
        extra = conn.extra_dejson if extra is None else extra
        per_minute = _field(extra, "rate_limit_per_minute", as_int, 2000)
        processes = _field(extra, "rate_limit_processes", as_int, DEBITURA_LIMITS.processes)
        if processes < 1:
            raise ConfigurationError("connection field rate_limit_processes must be 1 or more")
        return cls(
            base_url=_base_url(conn),
            api_key=conn.password or "",
            timeout=_field(extra, "timeout", as_float, 30.0),
            retry=RetryPolicy(attempts=_field(extra, "max_attempts", as_int, 5)),
            rate_limits=UNLIMITED if per_minute == 0 else _limits(per_minute, processes),
            verify=_field(extra, "verify_tls", as_bool, True),
            portal_url=str(extra.get("portal_url") or DEFAULT_PORTAL_URL).rstrip("/"),
        )

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "retry": self.retry,
            "rate_limits": self.rate_limits,
            "verify": self.verify,
            "user_agent": _airflow_agent(),
        }


def _base_url(conn: Connection) -> str:
    host = (conn.host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_BASE_URL
    if "://" in host:
        return f"{host}:{conn.port}" if conn.port else host
    scheme = conn.schema or "https"
    return f"{scheme}://{host}:{conn.port}" if conn.port else f"{scheme}://{host}"


def _limits(per_minute: int, processes: int) -> RateLimits:
    if per_minute == DEBITURA_LIMITS.per_minute and processes == DEBITURA_LIMITS.processes:
        return DEBITURA_LIMITS
    return RateLimits(per_minute, DEBITURA_LIMITS.per_hour, DEBITURA_LIMITS.per_day, processes=processes)


def _field(extra: dict[str, Any], key: str, read: Callable[[Any, str], T], default: T) -> T:
    """A connection field through its coercion; unset (missing, null or empty) means ``default``."""
    value = extra.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return read(value, f"connection field {key}")


def _airflow_agent() -> str:
    return f"apache-airflow/{AIRFLOW_VERSION}"


class DebituraHook(BaseHook):
    """Hands out clients configured from a ``debitura`` connection.

    Host is the API base URL, password the API key; timeout, attempts, TLS, rate budget, portal URL
    and the webhook secret are connection fields. The connection is read once per hook (sync or
    async) and the sync client is cached per hook until :meth:`close`; the async one is built per
    call so that it belongs to the running event loop.

    :param debitura_conn_id: the ``debitura`` connection to read.
    """

    conn_name_attr = "debitura_conn_id"
    default_conn_name = "debitura_default"
    conn_type = "debitura"
    hook_name = "Debitura"

    def __init__(self, debitura_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.debitura_conn_id = debitura_conn_id

    # The connection form on Airflow 3.0 and 3.1, which do not read provider info's declarative
    # ``conn-fields``/``ui-field-behaviour``; 3.2+ reads those and skips these methods. Both are built
    # from the same dicts, so fields, labels, defaults and masking are the same on every version.

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection's own fields as form widgets (Airflow 3.0/3.1; on 3.0 the UI needs ``wtforms``)."""
        from wtforms import BooleanField, IntegerField, PasswordField, StringField

        by_type = {"integer": IntegerField, "boolean": BooleanField}
        widgets: dict[str, Any] = {}
        for name, field in CONN_FIELDS.items():
            schema = field["schema"]
            kind = PasswordField if schema.get("format") == "password" else by_type.get(schema["type"][0], StringField)
            widgets[name] = kind(field["label"], description=field["description"], default=schema.get("default"))
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder standard fields (Airflow 3.0/3.1 spelling of ``ui-field-behaviour``)."""
        return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}

    @cached_property
    def settings(self) -> ClientSettings:
        """The connection, looked up once per hook."""
        return ClientSettings.from_connection(self.get_connection(self.debitura_conn_id))

    async def asettings(self) -> ClientSettings:
        """Settings resolved without blocking the event loop (for triggers); cached like :attr:`settings`."""
        if "settings" not in self.__dict__:
            conn, extra = await aget_connection_extra(self.debitura_conn_id)
            self.__dict__["settings"] = ClientSettings.from_connection(conn, extra)
        return self.settings

    @cached_property
    def client(self) -> DebituraClient:
        """The blocking client, built on first use and kept until :meth:`close`."""
        return DebituraClient(**self.settings.client_kwargs())

    def get_client(self) -> DebituraClient:
        """The blocking client (cached on this hook)."""
        return self.client

    def close(self) -> None:
        """Close the cached blocking client, if one was built; the next use builds a new one."""
        client: DebituraClient | None = self.__dict__.pop("client", None)
        if client is not None:
            client.close()

    async def get_async_client(self) -> AsyncDebituraClient:
        """A new async client; close it with ``aclose()`` or use ``async with``."""
        settings = await self.asettings()
        return AsyncDebituraClient(**settings.client_kwargs())

    def portal_case_url(self, case_id: str) -> str:
        """Where a person opens the case in Debitura's partner portal."""
        return case_url(self.settings.portal_url, case_id)

    # Webhook subscriptions. ``secret`` is only set on what create and re-key return (a SecretStr):
    # store it at once (``debitura-webhooks`` writes it into a connection) and never log it.

    def list_webhook_subscriptions(self) -> list[WebhookSubscription]:
        """Every subscription of the partner; secrets are never listed."""
        return self.get_client().list_webhooks()

    def create_webhook_subscription(
        self, url: str, events: Iterable[str], *, test_mode: bool = False
    ) -> WebhookSubscription:
        """Subscribe ``url`` (public https) to ``events``; test mode receives test cases' events only."""
        return self.get_client().create_webhook({"url": url, "events": list(events), "isTestMode": test_mode})

    def update_webhook_subscription(
        self,
        subscription_id: str,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        active: bool | None = None,
    ) -> WebhookSubscription:
        """Change the URL or events, or (``active=True``) re-enable an auto-disabled subscription."""
        body = UpdateWebhookRequest(url=url, events=None if events is None else list(events), is_active=active)
        return self.get_client().update_webhook(subscription_id, body)

    def rekey_webhook_subscription(self, subscription_id: str) -> WebhookSubscription:
        """A new signing secret; the old one stops working as soon as Debitura answers."""
        return self.get_client().update_webhook(subscription_id, {"regenerateSecret": True})

    def delete_webhook_subscription(self, subscription_id: str) -> None:
        self.get_client().delete_webhook(subscription_id)

    def test_connection(self) -> tuple[bool, str]:
        """Calls ``GET /me``: proves the URL, the key and the partner behind it."""
        try:
            me = self.get_client().get_me()
        except DebituraError as exc:
            return False, str(exc)
        return True, f"Connected to Debitura as {me.company_name or me.id}."


def case_url(portal_url: str, case_id: str) -> str:
    """The partner portal's page of one case (``{portal}/cases/{id}``; assumed, see docs)."""
    return f"{portal_url.rstrip('/')}/cases/{case_id}"
