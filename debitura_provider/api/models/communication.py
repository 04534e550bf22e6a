"""Chats, notes and files attached to a case."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field, field_validator, model_validator

from debitura_provider.api import validation
from debitura_provider.api.models._base import ApiModel, RequestModel, UtcDateTime


class ChatUser(ApiModel):
    id: int | None = None
    date_created: UtcDateTime | None = None
    date_updated: UtcDateTime | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None


class ChatMessage(ApiModel):
    """A chat message; ``role`` is 0 Partner, 1 Creditor, 2 Managed by partner."""

    id: UUID
    date_created: UtcDateTime | None = None
    date_updated: UtcDateTime | None = None
    role: int | None = None
    role_label: str | None = None
    message: str | None = None
    is_seen: bool = False
    user: ChatUser | None = None


class SendChatRequest(RequestModel):
    """Body of ``POST /cases/{id}/chats``; the author is named by e-mail (``userId`` is deprecated)."""

    message: str = Field(min_length=1, max_length=10000)
    user_email: str | None = None
    user_id: UUID | None = None

    @field_validator("user_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else validation.email(value)

    @model_validator(mode="after")
    def _author(self) -> SendChatRequest:
        if self.user_email is None and self.user_id is None:
            raise ValueError("userEmail (or the deprecated userId) is required: it names the author")
        return self


class NoteAuthor(ApiModel):
    user_id: int | None = None
    user_name: str | None = None


class Note(ApiModel):
    """A note on a case; notes are shared with the creditor."""

    id: UUID
    case_reference: str | None = None
    title: str | None = None
    description: str | None = None
    visibility: str | None = None
    created_at: UtcDateTime | None = None
    event_date: UtcDateTime | None = None
    created_by: NoteAuthor | None = None


class CreateNoteRequest(RequestModel):
    """Body of ``POST /cases/{id}/notes``; ``event_date`` back-dates the timeline entry."""

    description: str = Field(min_length=1, max_length=10000)
    event_date: UtcDateTime | None = None


class CaseFile(ApiModel):
    """A file on a case; ``url`` is a signed link that expires."""

    id: UUID
    date_created: UtcDateTime | None = None
    date_updated: UtcDateTime | None = None
    case_id: UUID | None = None
    entity_type: str | None = None
    entity_id: UUID | None = None
    file_name: str | None = None
    url: str | None = None
    description: str | None = None
    document_type: str | None = None
