"""Command-line tools that run next to the ``airflow`` CLI (they need the metadata database)."""
