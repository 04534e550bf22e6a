"""The strict oracle apart from the client's models: a wrong wire name on either side makes tests fail.

* Requests: the sandbox checks every body it receives against the spec's schema (``--strict-spec``), so
  a client request model with a wrong alias is caught in any integration test that sends it.
* Responses: the sandbox writes its answers itself (``domain/views.py``), so a client response model
  with a wrong alias meets a correct answer. Every alias of every response model must then be a
  property of the spec schema that model reads: checked here against the spec, for all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from debitura_provider.api import models as m
from debitura_provider.sandbox.contract import Oracle
from tests.conftest import openapi_spec_path

PREFIX = "Debitura.Web.ExternalApi.Contracts.V1."
RESPONSE_MODELS: dict[type[BaseModel], str] = {
    m.Case: PREFIX + "Cases.InvoiceDto",
    m.CasePage: PREFIX + "Cases.InvoiceListDto",
    m.PageInfo: "Debitura.Domain.Model.Base.PageData",
    m.Timeline: PREFIX + "Cases.CaseTimelineResponse",
    m.Payment: PREFIX + "Payments.PaymentDto",
    m.ChatMessage: PREFIX + "Chats.ChatDto",
    m.CaseFile: PREFIX + "Files.CaseFileDto",
    m.Note: PREFIX + "Notes.NoteDto",
    m.Me: "Debitura.Web.CollectionPartnerApi.Models.Me.CollectionPartnerMeResponse",
    m.UserPage: PREFIX + "Users.UserListDto",
    m.WebhookSubscription: "Debitura.Domain.Model.Webhooks.Dtos.WebhookDto",
    m.CreatePaymentResponse: PREFIX + "Payments.CreatePaymentResponse",
    m.TestPaymentResponse: PREFIX + "Payments.CreateManagedCasePaymentResponse",
    m.CloseCaseResponse: PREFIX + "Cases.CloseCaseResponse",
    m.StartCaseResponse: PREFIX + "Cases.StartCaseResponse",
    m.UpdateFeesResponse: PREFIX + "Cases.UpdateCaseFeesResponse",
    m.PriceChangeConfirmation: PREFIX + "Cases.PriceChangeConfirmationResponse",
    m.ExclusivePeriod: PREFIX + "Cases.ExclusivePeriodDto",
    m.CaseValidationStatus: "Debitura.Domain.Services.CaseValidation.CaseValidationStatusDto",
    m.IngestionJobCreated: "Debitura.Web.CollectionPartnerApi.Controllers.CreateIngestionJobResponse",
    m.IngestionJobStatus: "Debitura.Web.CollectionPartnerApi.Controllers.IngestionJobStatusResponse",
    m.ReplayedEvent: "Debitura.Web.CollectionPartnerApi.Models.Webhooks.ReplayEventResultDto",
    m.FireWebhookResult: PREFIX + "Cases.FireWebhookResponse",
    m.AdvanceResult: PREFIX + "Cases.AdvanceTestCaseResponse",
}


@pytest.fixture(scope="module")
def schemas(openapi_spec: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = openapi_spec["components"]["schemas"]
    return found


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models inside an annotation (``X | None``, ``list[X]``, ``Annotated[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation) if get_origin(annotation) is not None else ():
        yield from _models(arg)


def _target(prop: dict[str, Any]) -> str | None:
    ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
    for option in prop.get("allOf", []) + prop.get("anyOf", []) + prop.get("oneOf", []):
        ref = ref or option.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def misnamed(model: type[BaseModel], schema_name: str, schemas: dict[str, Any], where: str = "") -> list[str]:
    """Fields of a client response model whose wire name is not a property of the spec schema it reads."""
    properties = schemas[schema_name].get("properties", {})
    problems = []
    for name, info in model.model_fields.items():
        wire = info.alias or name
        here = f"{where or model.__name__}.{wire}"
        if wire not in properties:
            problems.append(f"{here} is not a property of {schema_name.rsplit('.', 1)[-1]}")
            continue
        nested = _target(properties[wire])
        for inner in _models(info.annotation):
            if nested is not None:
                problems += misnamed(inner, nested, schemas, here)
    return problems


def test_every_client_response_model_reads_the_spec_s_wire_names(schemas: dict[str, Any]) -> None:
    problems = [p for model, name in RESPONSE_MODELS.items() for p in misnamed(model, name, schemas)]
    assert problems == []


def test_a_wrong_wire_name_in_a_response_model_is_caught(
    schemas: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: the remainder read under a name the spec does not have."""
    monkeypatch.setattr(m.Case.model_fields["remainder"], "alias", "remainingAmount")
    assert misnamed(m.Case, RESPONSE_MODELS[m.Case], schemas) == [
        "Case.remainingAmount is not a property of InvoiceDto"
    ]
    monkeypatch.undo()
    monkeypatch.setattr(m.CaseDebtor.model_fields["name"], "alias", "fullName")
    assert misnamed(m.Case, RESPONSE_MODELS[m.Case], schemas) == ["Case.debtor.fullName is not a property of DebtorDto"]


WRONG_REQUEST_NAME = """
import json, sys
from debitura_provider.api import DebituraClient, models as m
from debitura_provider.sandbox import SandboxConfig, SandboxServer

field = m.CreateManagedCaseRequest.model_fields["creditor_reference"]
field.alias = field.serialization_alias = field.validation_alias = "creditorRef"
m.CreateManagedCaseRequest.model_rebuild(force=True)
body = json.loads(sys.argv[2])
with SandboxServer(SandboxConfig(port=0, rate_limits=False, strict_spec=sys.argv[1])) as server:
    request = m.CreateManagedCaseRequest.model_validate(body)
    with DebituraClient(server.api_key, server.base_url) as client:
        try:
            client.create_managed_case(request)
            outcome = "accepted"
        except Exception as exc:
            outcome = type(exc).__name__
    print(json.dumps({"outcome": outcome, "violations": [str(v) for v in server.violations]}))
"""


def test_a_wrong_wire_name_in_a_request_model_is_caught_by_the_strict_sandbox() -> None:
    """A client and a sandbox that share the wrong name still fail: the oracle reads the spec."""
    spec = openapi_spec_path()
    if not spec.is_file():
        pytest.skip(f"Debitura's OpenAPI spec not found at {spec}")
    from tests.sandbox.helpers import case_body

    body = case_body()
    body["creditorRef"] = body.pop("creditorReference")
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WRONG_REQUEST_NAME), str(spec), json.dumps(body)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["outcome"] != "accepted"
    assert any("request breaks the spec" in v and "creditorRef" in v for v in result["violations"]), result


def test_the_oracle_knows_the_documented_exceptions_by_name() -> None:
    spec = openapi_spec_path()
    if not spec.is_file():
        pytest.skip(f"Debitura's OpenAPI spec not found at {spec}")
    oracle = Oracle(spec)
    op = oracle.operation("POST", "/ingestion-jobs")
    assert op is not None and op.path == "/ingestion-jobs"
    conflict = {"error": "x", "message": "x", "businessErrors": [{"type": "IdempotencyConflict", "message": "x"}]}
    assert oracle.check_response(op, 422, "application/json", json.dumps(conflict).encode()) == []
    assert oracle.check_response(op, 418, "application/json", b"{}") != []
    field_map = {"type": "t", "title": "t", "status": 400, "errors": {"rows": ["is required"]}}
    assert oracle.check_response(op, 400, "application/json", json.dumps(field_map).encode()) == []
    hooks = oracle.operation("GET", "/webhooks")
    assert hooks is not None
    assert oracle.check_response(hooks, 401, None, b"") == []
    assert oracle.check_response(hooks, 401, "application/json", b'{"status": 401}') != []
