"""Case files: the collection partner uploads them; either role copies a case's files into object storage.

Upload (``POST /cases/{id}/files``): the name's extension, the size (25 MB at most) and the
document type are checked before the file is read or anything is sent, with the spec's limits. The
API takes no ``Idempotency-Key`` here, so a retry is guarded through the task's state store and
finds the file an interrupted try uploaded instead of uploading it again.

Sync (``GET /managed-cases/{id}/files`` or ``GET /cases/{id}/files``): each file goes to
``{destination}/{case id}/{file id}{extension}`` through ``ObjectStoragePath`` (local disk, S3, GCS,
... by URL), and a ``manifest.json`` beside them records each file's SHA-256, size and
``dateUpdated``. A file whose manifest entry still matches what Debitura lists, and whose stored
object still has that hash, is skipped without downloading, so a second run downloads nothing. The
signed download URLs are fetched without the API key (they are pre-authorised, and may point at
another host). File names stay in the manifest (the agency's storage), not in XCom or logs: they
may name the debtor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import tenacity

from debitura_provider.api.endpoints import ALLOWED_FILE_EXTENSIONS, MAX_FILE_BYTES
from debitura_provider.api.models import CaseFile
from debitura_provider.api.validation import is_loopback
from debitura_provider.coercion import as_id_list
from debitura_provider.compat import AirflowException, AirflowFailException, ObjectStoragePath
from debitura_provider.links import DebituraCaseLink, push_case_url
from debitura_provider.operators._base import DebituraBaseOperator
from debitura_provider.operators._once import SentOnce

if TYPE_CHECKING:
    from debitura_provider.compat import Context

DOCUMENT_TYPES = (
    "DebtorDocuments",
    "CreditorDocuments",
    "PartnerDocuments",
    "OriginalInvoice",
    "DemandLetter",
    "Miscellaneous",
)
"""``DocumentType`` values ``POST /cases/{id}/files`` takes (the spec's list)."""
MAX_DESCRIPTION = 500
MANIFEST = "manifest.json"
CLOCK_SKEW = timedelta(minutes=5)


def _storage_path(value: Any, conn_id: str | None) -> ObjectStoragePath:
    if isinstance(value, ObjectStoragePath):
        return value
    text = str(value).strip()
    if not text:
        raise AirflowFailException("destination: an object storage URL or path is required")
    return ObjectStoragePath(text if "://" in text else Path(text).resolve().as_uri(), conn_id=conn_id)


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class UploadCaseFileOperator(DebituraBaseOperator):
    """Attach a file to a worked case.

    :param case_id: the case (this partner collects it).
    :param path: the file: a local path or an object storage URL (``s3://...``, ``file://...``).
    :param file_name: the name Debitura shows (default: the path's name); its extension must be one of
        .pdf .doc .docx .xls .xlsx .jpg .jpeg .png .txt .zip .csv .eml.
    :param document_type: one of :data:`DOCUMENT_TYPES` (optional).
    :param description: at most 500 characters.
    :param storage_conn_id: the connection of the object storage holding ``path``.
    :return: ``{"id", "caseId", "documentType", "dateCreated", "size", "sha256"}``.
    """

    template_fields: Sequence[str] = ("case_id", "path", "file_name", "document_type", "description")
    operator_extra_links = (DebituraCaseLink(),)
    STATE_KEY = "debitura_file_upload"

    def __init__(
        self,
        *,
        case_id: str,
        path: Any,
        file_name: str | None = None,
        document_type: str | None = None,
        description: str | None = None,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.case_id = case_id
        self.path = path
        self.file_name = file_name
        self.document_type = document_type
        self.description = description
        self.storage_conn_id = storage_conn_id

    def _checked(self) -> tuple[ObjectStoragePath, str]:
        """The file and its name, refused before reading it if Debitura would refuse it."""
        source = _storage_path(self.path, self.storage_conn_id)
        name = (self.file_name or source.name or "").strip()
        if not name.lower().endswith(ALLOWED_FILE_EXTENSIONS):
            raise AirflowFailException(
                f"Invalid file upload (nothing was sent): File: extension of {name!r} not allowed; use one of "
                f"{' '.join(ALLOWED_FILE_EXTENSIONS)}"
            )
        if self.document_type and self.document_type not in DOCUMENT_TYPES:
            raise AirflowFailException(
                f"Invalid file upload (nothing was sent): DocumentType: {self.document_type!r} is not one of "
                f"{', '.join(DOCUMENT_TYPES)}"
            )
        if self.description and len(self.description) > MAX_DESCRIPTION:
            raise AirflowFailException(
                f"Invalid file upload (nothing was sent): Description: must be at most {MAX_DESCRIPTION} characters"
            )
        try:
            size = source.stat().st_size
        except FileNotFoundError:
            raise AirflowFailException(f"path: no file at {source}") from None
        if size > MAX_FILE_BYTES:
            raise AirflowFailException(
                f"Invalid file upload (nothing was sent): File: {size} bytes is larger than Debitura's 25 MB "
                f"({MAX_FILE_BYTES} bytes)"
            )
        return source, name

    def work(self, context: Context) -> dict[str, Any]:
        source, name = self._checked()
        content = source.read_bytes()
        if len(content) > MAX_FILE_BYTES:  # it grew since stat()
            raise AirflowFailException(
                f"Invalid file upload (nothing was sent): File: larger than Debitura's 25 MB ({MAX_FILE_BYTES} bytes)"
            )
        case_id = str(self.case_id)
        digest = sha256_of(content)
        guard = SentOnce(context, self.STATE_KEY, [case_id, name, digest, self.document_type, self.description])
        earlier = guard.result()
        if earlier is not None:
            return earlier
        client = self.hook.get_client()
        uploaded: CaseFile | None = None
        if guard.interrupted():
            since = guard.started_at() - CLOCK_SKEW
            files: list[CaseFile] = self.call("Reading the case's files", client.get_case_files, case_id)
            uploaded = next(
                (f for f in files if f.file_name == name and f.date_created and f.date_created >= since), None
            )
            if uploaded is not None:
                self.log.info(
                    "An earlier try uploaded this file (%s) before failing; not uploading it again", uploaded.id
                )
        if uploaded is None:
            guard.sending()
            uploaded = self.call(
                "Uploading the file",
                client.upload_case_file,
                case_id,
                name,
                content,
                document_type=self.document_type or None,
                description=self.description or None,
            )
            self.log.info("Uploaded file %s (%d bytes) to case %s", uploaded.id, len(content), case_id)
        push_case_url(context, self.hook, case_id)
        return guard.done(
            {
                "id": str(uploaded.id),
                "caseId": case_id,
                "documentType": uploaded.document_type,
                "dateCreated": uploaded.date_created.isoformat() if uploaded.date_created else None,
                "size": len(content),
                "sha256": digest,
            }
        )


class SyncCaseFilesOperator(DebituraBaseOperator):
    """Copy the files of cases into object storage, downloading only what is not there yet.

    :param case_ids: one case id or a list (templated; an XComArg works).
    :param destination: where to keep them: an object storage URL (``s3://bucket/debitura/files``,
        ``file:///srv/debitura/files``) or an ``ObjectStoragePath``.
    :param role: ``managing`` (cases this partner referred, the default) or ``collection`` (cases it works).
    :param verify_stored: re-hash a stored object before skipping it, so that a truncated or altered
        copy is downloaded again (reads the object from storage, costs no request to Debitura).
    :param storage_conn_id: the object storage connection (S3, GCS ...); none for local files.
    :return: ``{"cases", "files", "downloaded", "skipped", "bytes", "downloadedFileIds"}``.
    """

    template_fields: Sequence[str] = ("case_ids", "destination")

    def __init__(
        self,
        *,
        case_ids: Any,
        destination: Any,
        role: str = "managing",
        verify_stored: bool = True,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if role not in ("managing", "collection"):
            raise ValueError("role must be 'managing' or 'collection'")
        self.case_ids = case_ids
        self.destination = destination
        self.role = role
        self.verify_stored = verify_stored
        self.storage_conn_id = storage_conn_id

    def work(self, context: Context) -> dict[str, Any]:
        try:
            case_ids = [] if self.case_ids in ([], ()) else as_id_list(self.case_ids, "case_ids")
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        root = _storage_path(self.destination, self.storage_conn_id)
        client = self.hook.get_client()
        list_files = client.get_managed_case_files if self.role == "managing" else client.get_case_files
        totals = {"cases": len(case_ids), "files": 0, "downloaded": 0, "skipped": 0, "bytes": 0}
        fetched: list[str] = []
        with httpx.Client(timeout=self.hook.settings.timeout, follow_redirects=True) as downloads:
            for case_id in case_ids:
                files: list[CaseFile] = self.call("Listing the case's files", list_files, case_id)
                folder = root / case_id
                manifest = _read_manifest(folder)
                for f in files:
                    totals["files"] += 1
                    entry = manifest.get(str(f.id))
                    if entry is not None and self._still_stored(folder, f, entry):
                        totals["skipped"] += 1
                        continue
                    content = self._download(downloads, f)
                    target = folder / f"{f.id}{_extension(f.file_name)}"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
                    manifest[str(f.id)] = {
                        "object": target.name,
                        "sha256": sha256_of(content),
                        "size": len(content),
                        "dateUpdated": _stamp(f),
                        "fileName": f.file_name,
                        "documentType": f.document_type,
                    }
                    totals["downloaded"] += 1
                    totals["bytes"] += len(content)
                    fetched.append(str(f.id))
                if files:
                    _write_manifest(folder, manifest)
        if len(case_ids) == 1:
            push_case_url(context, self.hook, case_ids[0])
        self.log.info(
            "%d file(s) on %d case(s): %d downloaded (%d bytes), %d already stored",
            totals["files"],
            totals["cases"],
            totals["downloaded"],
            totals["bytes"],
            totals["skipped"],
        )
        return {**totals, "downloadedFileIds": fetched}

    def _still_stored(self, folder: ObjectStoragePath, f: CaseFile, entry: dict[str, Any]) -> bool:
        """Whether the stored copy is this version of the file, intact."""
        if entry.get("dateUpdated") != _stamp(f):
            return False
        stored = folder / str(entry.get("object", ""))
        if not stored.exists():
            return False
        if not self.verify_stored:
            return True
        return sha256_of(stored.read_bytes()) == entry.get("sha256")

    def _download(self, downloads: httpx.Client, f: CaseFile) -> bytes:
        url = f.url or ""
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname or "")):
            raise AirflowFailException(f"File {f.id}: its download URL is not https; refusing to fetch it")

        def fetch() -> bytes:
            response = downloads.get(url)
            if response.status_code >= 500:
                raise AirflowException(f"downloading file {f.id} answered {response.status_code}")
            if response.status_code != 200:
                raise AirflowFailException(
                    f"Downloading file {f.id} answered {response.status_code} (its signed link may have expired)"
                )
            return response.content

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.hook.settings.retry.attempts),
            wait=tenacity.wait_exponential_jitter(initial=0.5, max=10),
            retry=tenacity.retry_if_exception(
                lambda e: (
                    isinstance(e, httpx.TransportError)
                    or (isinstance(e, AirflowException) and not isinstance(e, AirflowFailException))
                )
            ),
            reraise=True,
        )
        try:
            return retrying(fetch)
        except httpx.TransportError as exc:
            raise AirflowException(f"Downloading file {f.id} failed: {type(exc).__name__}") from None


def _stamp(f: CaseFile) -> str | None:
    when: datetime | None = f.date_updated or f.date_created
    return when.isoformat() if when else None


def _extension(name: str | None) -> str:
    suffix = "." + name.rsplit(".", 1)[1].lower() if name and "." in name else ""
    return suffix if suffix in ALLOWED_FILE_EXTENSIONS else ""


def _read_manifest(folder: ObjectStoragePath) -> dict[str, dict[str, Any]]:
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        files = json.loads(path.read_text()).get("files", {})
    except ValueError:
        return {}  # a damaged manifest: every file is checked and downloaded again
    return files if isinstance(files, dict) else {}


def _write_manifest(folder: ObjectStoragePath, files: dict[str, dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1, sort_keys=True))
