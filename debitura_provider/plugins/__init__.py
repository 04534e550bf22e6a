"""Airflow plugins shipped with the provider (registered through provider info ``plugins``)."""
