"""The distributed measurements: several processes sharing one key, and Airflow on Celery and Postgres."""
