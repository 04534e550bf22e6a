"""``/webhooks``: subscriptions, the delivery log and replay.

The secret (base64) appears only in the answers to create and to ``regenerateSecret``.
Debitura requires public HTTPS URLs; the sandbox also takes ``http://`` on loopback hosts
(127.0.0.1, ::1, localhost) so that receivers on the same machine can be used.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response

from debitura_provider.api.models import CreateWebhookRequest, UpdateWebhookRequest, WebhookEventType
from debitura_provider.sandbox.domain import views
from debitura_provider.sandbox.domain.problems import bad_request, invalid_field, not_found
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.domain.state import Partner, Subscription
from debitura_provider.sandbox.edge.deps import Caller, SandboxDep, authenticate, json_body, parse_uuid

router = APIRouter(prefix="/webhooks", tags=["Webhooks"], dependencies=[Depends(authenticate)])


def new_secret(sb: Sandbox) -> str:
    return base64.b64encode(sb.store.ids.secret()).decode()


def owned(sb: Sandbox, caller: Partner, subscription_id: UUID | None) -> Subscription:
    sub = sb.store.subscriptions.get(subscription_id) if subscription_id else None
    if sub is None or sub.partner_id != caller.id:
        raise not_found(f"Webhook subscription {subscription_id} not found.")
    return sub


@router.get("")
async def list_webhooks(sb: SandboxDep, caller: Caller) -> list[dict[str, Any]]:
    subs = sorted(
        (s for s in sb.store.subscriptions.values() if s.partner_id == caller.id), key=lambda s: s.created_utc
    )
    return [views.subscription(s) for s in subs]


@router.post("", status_code=201)
async def create_webhook(
    sb: SandboxDep, caller: Caller, body: Annotated[CreateWebhookRequest, json_body(CreateWebhookRequest)]
) -> dict[str, Any]:
    now = sb.now()
    sub = Subscription(
        id=sb.store.ids.uuid(),
        partner_id=caller.id,
        url=body.url,
        events=_events(body.events),
        is_test_mode=body.is_test_mode,
        secret=new_secret(sb),
        created_utc=now,
        updated_utc=now,
    )
    sb.store.subscriptions[sub.id] = sub
    sb.store.touch(sub)
    return views.subscription(sub, with_secret=True)


def _events(chosen: list[WebhookEventType]) -> list[str]:
    return list(dict.fromkeys(e.value for e in chosen))


@router.get("/events")
async def list_webhook_events(
    sb: SandboxDep,
    caller: Caller,
    case_id: Annotated[str | None, Query(alias="caseId")] = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Newest first. A row appears once its first delivery attempt was made, as on Debitura."""
    wanted = parse_uuid(case_id or "")
    if wanted is None:
        raise invalid_field("caseId", "is required and must be a UUID")
    floor = since.replace(tzinfo=since.tzinfo or timezone.utc) if since else None
    rows = [
        e
        for e in sb.store.events.values()
        if e.partner_id == caller.id
        and e.case_id == wanted
        and e.attempt_count > 0
        and (floor is None or e.created_at >= floor)
    ]
    return [views.event(e) for e in sorted(rows, key=lambda e: e.created_at, reverse=True)]


@router.post("/events/{id}/replay")
async def replay_webhook_event(
    sb: SandboxDep, caller: Caller, event_id: Annotated[UUID, Path(alias="id")]
) -> dict[str, Any]:
    row = sb.store.events.get(event_id)
    if row is None or row.partner_id != caller.id:
        raise not_found(f"Webhook event {event_id} not found.")
    return replay(sb, caller, row.id)


def replay(sb: Sandbox, caller: Partner, event_id: UUID) -> dict[str, Any]:
    """Queue a logged event again for its subscription (``X-Debitura-Replay: true``)."""
    row = sb.store.events[event_id]
    sub = owned(sb, caller, row.subscription_id)
    if not sub.is_active:
        raise bad_request(
            "The subscription is disabled; re-enable it with PUT /webhooks/{id} isActive=true first.",
            "SubscriptionDisabled",
        )
    sb.dispatcher.replay(row)
    return views.replayed(row)


@router.get("/{id}")
async def get_webhook(sb: SandboxDep, caller: Caller, webhook_id: Annotated[str, Path(alias="id")]) -> dict[str, Any]:
    return views.subscription(owned(sb, caller, parse_uuid(webhook_id)))


@router.put("/{id}")
async def update_webhook(
    sb: SandboxDep,
    caller: Caller,
    webhook_id: Annotated[UUID, Path(alias="id")],
    body: Annotated[UpdateWebhookRequest, json_body(UpdateWebhookRequest)],
) -> dict[str, Any]:
    sub = owned(sb, caller, webhook_id)
    if body.url is not None:
        sub.url = body.url
    if body.events is not None:
        sub.events = _events(body.events)
    if body.is_test_mode is not None:
        sub.is_test_mode = body.is_test_mode
    if body.is_active is not None:
        sub.is_active = body.is_active
        sub.disabled_reason = None
    if body.regenerate_secret:
        sub.secret = new_secret(sb)
    sub.updated_utc = sb.now()
    sb.store.touch(sub)
    return views.subscription(sub, with_secret=body.regenerate_secret)


@router.delete("/{id}", status_code=204)
async def delete_webhook(sb: SandboxDep, caller: Caller, webhook_id: Annotated[str, Path(alias="id")]) -> Response:
    sub = owned(sb, caller, parse_uuid(webhook_id))
    del sb.store.subscriptions[sub.id]
    sb.store.forget("subscription", str(sub.id))
    for row in sb.store.events.values():
        if row.subscription_id == sub.id and row.next_attempt_at is not None:
            row.next_attempt_at = None
            sb.dispatcher.drop(row.id)
            sb.store.touch(row)
    return Response(status_code=204)
