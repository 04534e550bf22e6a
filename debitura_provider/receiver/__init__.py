"""Debitura's webhooks inside Airflow, in one place.

- :mod:`~debitura_provider.receiver.plugin`: the Airflow plugin that mounts the receiver in the API
  server; registered through the ``airflow.plugins`` entry point (``debitura_webhooks``).
- :mod:`~debitura_provider.receiver.app`: the FastAPI app that verifies and queues each delivery.
- :mod:`~debitura_provider.receiver.inbox` and :mod:`~debitura_provider.receiver.recorder`: the
  durable queue in the metadata DB and the thread that records it as Asset events.
- :mod:`~debitura_provider.receiver.cli` (``debitura-webhooks``) and
  :mod:`~debitura_provider.receiver.secret_store`: subscriptions, and their signing secret kept in a connection.

Signing and envelopes are Airflow-free and live in :mod:`debitura_provider.api.webhooks`; the
Assets the events update are :mod:`debitura_provider.assets`.
"""
