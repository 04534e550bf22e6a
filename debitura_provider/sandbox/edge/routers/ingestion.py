"""``/ingestion-jobs``: queue notes for many cases at once and poll the job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from debitura_provider.api.models import CreateIngestionJobRequest
from debitura_provider.sandbox.domain import views
from debitura_provider.sandbox.domain.ingest import Ingestor
from debitura_provider.sandbox.domain.problems import not_found
from debitura_provider.sandbox.edge.deps import Caller, SandboxDep, authenticate, json_body, parse_uuid

router = APIRouter(prefix="/ingestion-jobs", tags=["IngestionJobs"], dependencies=[Depends(authenticate)])


def get_ingestor(request: Request) -> Ingestor:
    ingestor: Ingestor = request.app.state.ingestor
    return ingestor


@router.post("", status_code=202)
async def create_ingestion_job(
    caller: Caller,
    ingestor: Annotated[Ingestor, Depends(get_ingestor)],
    body: Annotated[CreateIngestionJobRequest, json_body(CreateIngestionJobRequest)],
) -> dict[str, Any]:
    job = ingestor.submit(caller, body)
    return views.wire({"jobId": job.id, "rowsQueued": len(job.rows)})


@router.get("/{jobId}")
async def get_ingestion_job(
    sb: SandboxDep, caller: Caller, job_id: Annotated[str, Path(alias="jobId")]
) -> dict[str, Any]:
    found = parse_uuid(job_id)
    job = sb.store.jobs.get(found) if found else None
    if job is None or job.partner_id != caller.id:
        raise not_found(f"Ingestion job {job_id} not found.")
    return views.wire(
        {
            "status": job.status,
            "rowsTotal": len(job.rows),
            "rowsSucceeded": job.rows_succeeded,
            "rowsFailed": job.rows_failed,
        }
    )
