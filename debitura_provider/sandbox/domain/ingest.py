"""Ingestion jobs: bulk notes processed in the background, as Debitura's AsyncJob does.

A job waits a sandbox minute, then adds each row's note to its case; rows naming a case the partner
does not collect fail. Status: 0 queued, 1 running, 2 succeeded, 3 partly failed, 4 failed.
"""

from __future__ import annotations

from uuid import UUID

from debitura_provider.api.models import CreateIngestionJobRequest
from debitura_provider.sandbox.domain.queries import visible_to_partner
from debitura_provider.sandbox.domain.runtime import Sandbox, partner_actor
from debitura_provider.sandbox.domain.state import IngestionJob, NoteRecord, Partner

QUEUE_DELAY = 60.0
"""Sandbox seconds a job waits in the queue."""


class Ingestor:
    def __init__(self, sb: Sandbox) -> None:
        self._sb = sb
        sb.on_start(self._resume)

    def submit(self, partner: Partner, request: CreateIngestionJobRequest) -> IngestionJob:
        rows = [{"case_id": str(row.case_id), "description": row.description} for row in request.rows]
        job = IngestionJob(
            id=self._sb.store.ids.uuid(), partner_id=partner.id, rows=rows, due=self._sb.clock.due(QUEUE_DELAY)
        )
        self._sb.store.jobs[job.id] = job
        self._sb.store.touch(job)
        self._arm(job)
        return job

    def _resume(self) -> None:
        for job in self._sb.store.jobs.values():
            if job.due is not None:
                self._arm(job)

    def _arm(self, job: IngestionJob) -> None:
        assert job.due is not None
        job_id = job.id
        self._sb.timers.at(("job", job_id), job.due, lambda: self._run(job_id))

    def _run(self, job_id: UUID) -> None:
        sb = self._sb
        job = sb.store.jobs[job_id]
        partner = sb.store.partners[job.partner_id]
        user = partner.users[0]
        for row in job.rows:
            case = sb.store.cases.get(UUID(row["case_id"]))
            if case is None or not visible_to_partner(case, partner) or not row.get("description"):
                job.rows_failed += 1
                continue
            when = sb.clock.now()
            note = NoteRecord(id=sb.store.child_id(case), created_at=when, description=row["description"], user=user)
            case.notes.append(note)
            sb.record(case, "NoteAdded", "Note", row["description"], partner_actor(user))
            job.rows_succeeded += 1
        job.status = 2 if job.rows_failed == 0 else (4 if job.rows_succeeded == 0 else 3)
        job.due = None
        sb.store.touch(job)
