"""Debitura's webhooks received inside Airflow's API server and recorded as Asset events."""
