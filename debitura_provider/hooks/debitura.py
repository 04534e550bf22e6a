"""The Airflow side of the client: connection → configured sync or async client."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook, Connection

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
from debitura_provider.api.models import UpdateWebhookRequest, WebhookSubscription

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
    def from_connection(cls, conn: Connection) -> ClientSettings:
        extra = conn.extra_dejson
        per_minute = _number(extra, "rate_limit_per_minute", int, 2000)
        return cls(
            base_url=_base_url(conn),
            api_key=conn.password or "",
            timeout=_number(extra, "timeout", float, 30.0),
            retry=RetryPolicy(attempts=_number(extra, "max_attempts", int, 5)),
            rate_limits=UNLIMITED if per_minute == 0 else _limits(per_minute),
            verify=_flag(extra, "verify_tls", True),
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


def _limits(per_minute: int) -> RateLimits:
    if per_minute == DEBITURA_LIMITS.per_minute:
        return DEBITURA_LIMITS
    return RateLimits(per_minute, DEBITURA_LIMITS.per_hour, DEBITURA_LIMITS.per_day)


def _number(extra: dict[str, Any], key: str, kind: type[Any], default: Any) -> Any:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise DebituraError(f"connection extra {key!r} must be a number, got {value!r}") from None


def _flag(extra: dict[str, Any], key: str, default: bool) -> bool:
    value = extra.get(key)
    if value in (None, ""):
        return default
    return value if isinstance(value, bool) else str(value).strip().lower() not in ("false", "0", "no", "off")


def _airflow_agent() -> str:
    from airflow import __version__ as airflow_version

    return f"apache-airflow/{airflow_version}"


class DebituraHook(BaseHook):
    """Hands out clients configured from a ``debitura`` connection.

    Host is the API base URL, password the API key; timeout, attempts, TLS, rate budget, portal URL
    and the webhook secret are connection fields. The sync client is cached per hook; the async
    one is built per call so that it belongs to the running event loop.
    """

    conn_name_attr = "debitura_conn_id"
    default_conn_name = "debitura_default"
    conn_type = "debitura"
    hook_name = "Debitura"

    def __init__(self, debitura_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.debitura_conn_id = debitura_conn_id

    @cached_property
    def settings(self) -> ClientSettings:
        return ClientSettings.from_connection(self.get_connection(self.debitura_conn_id))

    async def asettings(self) -> ClientSettings:
        """Settings resolved without blocking the event loop (for triggers)."""
        if "settings" not in self.__dict__:
            conn = await self.aget_connection(self.debitura_conn_id)
            self.__dict__["settings"] = ClientSettings.from_connection(conn)
        return self.settings

    @cached_property
    def client(self) -> DebituraClient:
        return DebituraClient(**self.settings.client_kwargs())

    def get_client(self) -> DebituraClient:
        """The blocking client (cached on this hook)."""
        return self.client

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
