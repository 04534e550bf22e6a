"""``debitura-webhooks``: manage Debitura webhook subscriptions, keeping the signing secret in Airflow.

Run it where the ``airflow`` CLI runs (same ``AIRFLOW_HOME``, metadata DB access): Airflow 3 tasks
cannot write connections, so subscribing is an admin step, not a DAG. ``create`` and ``rekey``
write the one-time secret straight into the ``webhook_secret`` field of an Airflow connection
(a password field, masked in the UI) and never print or log it.

    debitura-webhooks create --url https://airflow.example.com/debitura/webhooks
    debitura-webhooks list
    debitura-webhooks update ID --event payment.created --event payment.deleted
    debitura-webhooks update ID --enable          # after Debitura auto-disabled it
    debitura-webhooks rekey ID                     # rotate the secret
    debitura-webhooks delete ID
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from debitura_provider.api import DebituraError
from debitura_provider.api.errors import SecretStoreError
from debitura_provider.api.models import WebhookEventType, WebhookSubscription
from debitura_provider.assets import EVENT_ASSETS
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.receiver.secret_store import check_writable, store_secret

DEFAULT_EVENTS = tuple(EVENT_ASSETS)
"""The events the receiver records as Asset events."""

Command = Callable[[DebituraHook, argparse.Namespace], int]


def _create(hook: DebituraHook, args: argparse.Namespace) -> int:
    secret_conn = args.secret_conn_id or hook.debitura_conn_id
    check_writable(secret_conn)
    subs = hook.list_webhook_subscriptions()
    duplicates = [s for s in subs if s.url == args.url and s.is_test_mode == args.test_mode]
    if duplicates and args.rekey_if_exists:
        args.id = str(duplicates[0].id)
        return _rekey(hook, args)
    if duplicates:
        print(
            f"error: subscription {duplicates[0].id} already delivers to {args.url}; use 'update' or 'rekey', "
            "or --rekey-if-exists (a second subscription would deliver every event twice)",
            file=sys.stderr,
        )
        return 1
    sub = hook.create_webhook_subscription(args.url, args.events or DEFAULT_EVENTS, test_mode=args.test_mode)
    try:
        store_secret(secret_conn, _secret_of(sub))
    except Exception:
        # A subscription whose secret is lost can never be verified: take it back.
        hook.delete_webhook_subscription(str(sub.id))
        raise
    print(f"Created: {_describe(sub)}")
    print(f"Signing secret stored in connection {secret_conn!r}, field 'webhook_secret'.")
    return 0


def _list(hook: DebituraHook, args: argparse.Namespace) -> int:
    subs = hook.list_webhook_subscriptions()
    if not subs:
        print("No webhook subscriptions.")
    for sub in subs:
        print(_describe(sub))
    return 0


def _update(hook: DebituraHook, args: argparse.Namespace) -> int:
    sub = hook.update_webhook_subscription(args.id, url=args.url, events=args.events, active=args.active)
    print(f"Updated: {_describe(sub)}")
    return 0


def _rekey(hook: DebituraHook, args: argparse.Namespace) -> int:
    secret_conn = args.secret_conn_id or hook.debitura_conn_id
    check_writable(secret_conn)
    sub = hook.rekey_webhook_subscription(args.id)
    try:
        store_secret(secret_conn, _secret_of(sub))
    except Exception:
        print(
            f"error: Debitura issued a new secret for {args.id} but it could not be stored; "
            "deliveries fail until you run 'rekey' again",
            file=sys.stderr,
        )
        raise
    print(f"New signing secret for {sub.id} stored in connection {secret_conn!r}, field 'webhook_secret'.")
    return 0


def _delete(hook: DebituraHook, args: argparse.Namespace) -> int:
    hook.delete_webhook_subscription(args.id)
    print(f"Deleted subscription {args.id}.")
    return 0


def _secret_of(sub: WebhookSubscription) -> str:
    if sub.secret is None:
        raise SecretStoreError(f"Debitura returned no secret for subscription {sub.id}")
    return sub.secret.get_secret_value()


def _describe(sub: WebhookSubscription) -> str:
    state = "active" if sub.is_active else f"DISABLED ({sub.disabled_reason or 'no reason given'})"
    mode = " [test mode]" if sub.is_test_mode else ""
    return f"{sub.id}  {sub.url}  {state}{mode}  events: {', '.join(sub.events)}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="debitura-webhooks",
        description="Manage Debitura webhook subscriptions; signing secrets go into an Airflow connection, "
        "never to the terminal. Run it where the airflow CLI runs.",
    )
    parser.add_argument("--conn-id", default=DebituraHook.default_conn_name, help="Debitura API connection")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(func=func)
        return sub

    def events(sub: argparse.ArgumentParser, default: str) -> None:
        sub.add_argument(
            "--event",
            dest="events",
            action="append",
            choices=[e.value for e in WebhookEventType],
            help=f"event to deliver (repeat for several; default: {default})",
        )

    def secret_conn(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--secret-conn-id",
            help="connection whose webhook_secret receives the secret "
            "(default: --conn-id; the receiver reads [debitura] webhook_conn_id)",
        )

    create = command("create", _create, "subscribe a URL; the secret goes into a connection")
    create.add_argument(
        "--url",
        required=True,
        help="the receiver's public https URL, e.g. https://airflow.example.com/debitura/webhooks",
    )
    create.add_argument("--test-mode", action="store_true", help="receive events of test cases only")
    create.add_argument(
        "--rekey-if-exists",
        action="store_true",
        help="if the URL is already subscribed, re-key that subscription instead (for scripts)",
    )
    events(create, ", ".join(DEFAULT_EVENTS))
    secret_conn(create)

    command("list", _list, "list subscriptions (secrets are never listed)")

    update = command("update", _update, "change URL or events, or enable/disable")
    update.add_argument("id")
    update.add_argument("--url")
    events(update, "unchanged")
    active = update.add_mutually_exclusive_group()
    active.add_argument("--enable", dest="active", action="store_const", const=True)
    active.add_argument("--disable", dest="active", action="store_const", const=False)

    rekey = command("rekey", _rekey, "rotate the signing secret and store the new one")
    rekey.add_argument("id")
    secret_conn(rekey)

    delete = command("delete", _delete, "delete a subscription")
    delete.add_argument("id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Like Airflow's own server components: look connections up in the metadata DB too, not only in env vars.
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    from debitura_provider.compat import AirflowNotFoundException

    try:
        return int(args.func(DebituraHook(args.conn_id), args))
    except (DebituraError, SecretStoreError, AirflowNotFoundException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
