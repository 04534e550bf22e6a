"""``POST /managed-cases``: routing a new case to a collection partner and recording it."""

from __future__ import annotations

import pycountry

from debitura_provider.api.models import CreateManagedCaseRequest
from debitura_provider.sandbox.domain import money
from debitura_provider.sandbox.domain.problems import business_rule
from debitura_provider.sandbox.domain.runtime import Sandbox, partner_actor
from debitura_provider.sandbox.domain.state import CaseRecord, Partner

NO_PARTNER = "NoPartnerAvailable"


def route(sb: Sandbox, caller: Partner, request: CreateManagedCaseRequest) -> Partner:
    """Who will collect: the caller for a test case (routing isolation), the named partner, or the first
    routable partner covering the debtor's jurisdiction ('US-CA' for a US debtor)."""
    if request.is_test:
        return caller
    jurisdiction = request.debtor.jurisdiction
    if request.collection_partner_id is not None:
        chosen = sb.store.partners.get(request.collection_partner_id)
        if chosen is None or not chosen.covers(jurisdiction):
            message = (
                f"Collection partner {request.collection_partner_id} is not an active partner covering {jurisdiction}."
            )
            raise business_rule(message, NO_PARTNER)
        return chosen
    for partner in sb.store.partners.values():
        if partner.routable and partner.covers(jurisdiction):
            return partner
    raise business_rule(f"No collection partner available for this jurisdiction ({jurisdiction}).", NO_PARTNER)


def create(sb: Sandbox, caller: Partner, request: CreateManagedCaseRequest) -> CaseRecord:
    """Record a new case in Pending Verification Internal; verification and any simulated work follow."""
    collector = route(sb, caller, request)
    debtor = request.debtor.to_json_types()
    debtor.setdefault("countryAlpha2", request.debtor.jurisdiction.split("-", 1)[0])
    gross = money.cents(request.amount_to_recover)
    case = CaseRecord(
        id=sb.store.ids.uuid(),
        reference=_unique_reference(sb),
        managing_partner_id=caller.id,
        collection_partner_id=collector.id,
        is_test=request.is_test,
        tag=request.tag,
        debtor_id=sb.store.ids.uuid(),
        debtor=debtor,
        jurisdiction=request.debtor.jurisdiction,
        creditor_id=sb.store.ids.uuid(),
        creditor_name=request.creditor_company_name,
        creditor_country=_country_name(request),
        creditor_reference=request.creditor_reference,
        comments=request.comments,
        claim_description=request.claim_description,
        currency=request.currency_code,
        gross_amount=gross,
        success_fee=money.success_fee(gross),
        date=request.date,
        due_date=request.due_date or request.date,
        date_created=sb.now(),
    )
    sb.store.add_case(case)
    kind = "test case" if case.is_test else "case"
    sb.record(
        case,
        "CaseCreated",
        "Case submitted",
        f"{caller.name} submitted this {kind} on behalf of {case.creditor_name}.",
        partner_actor(caller.users[0]),
    )
    return case


def _unique_reference(sb: Sandbox) -> str:
    reference = sb.store.ids.reference()
    while reference in sb.store.references:
        reference = sb.store.ids.reference()
    return reference


def _country_name(request: CreateManagedCaseRequest) -> str | None:
    code = request.creditor_country_alpha2
    if code is None:
        return request.creditor_country
    country = pycountry.countries.get(alpha_2=code)
    return str(country.name) if country is not None else code
