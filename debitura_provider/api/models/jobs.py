"""Ingestion jobs: bulk notes for cases the partner works."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from debitura_provider.api.models._base import ApiModel, RequestModel, UtcDateTime


class IngestionRow(RequestModel):
    """One row; only type 0 (Note) is accepted today."""

    type: int = Field(default=0, ge=0, le=0)
    case_id: UUID
    description: str | None = None
    event_date: UtcDateTime | None = None
    external_ref: str | None = None


class CreateIngestionJobRequest(RequestModel):
    rows: list[IngestionRow] = Field(min_length=1, max_length=1000)


class IngestionJobCreated(ApiModel):
    job_id: UUID
    rows_queued: int = 0


class IngestionJobStatus(ApiModel):
    """``status``: 0 queued, 1 running, 2 succeeded, 3 partly failed, 4 failed (int enum)."""

    status: int = 0
    rows_total: int = 0
    rows_succeeded: int = 0
    rows_failed: int = 0
