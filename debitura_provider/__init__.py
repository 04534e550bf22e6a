"""Apache Airflow provider for Debitura's Collection Partner API (managed cases).

This module imports nothing from Airflow: ``debitura_provider.api`` stays usable from plain Python.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from debitura_provider._provider_info import connection_extra  # after __version__, which it imports

__all__ = ["__version__", "connection_extra", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""
    from debitura_provider._provider_info import PROVIDER_INFO

    return dict(PROVIDER_INFO)
