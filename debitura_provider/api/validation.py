"""ISO code checks shared by the request models (and so by the sandbox, which parses the same models).

Each function returns the normalised value or raises ``ValueError`` with a message a person can act on;
pydantic turns that into an error naming the field.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

import pycountry

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@lru_cache(maxsize=512)
def country_alpha2(value: str) -> str:
    """ISO 3166-1 alpha-2 code for an alpha-2 code, alpha-3 code or country name."""
    text = value.strip()
    found = pycountry.countries.get(alpha_2=text.upper()) if len(text) == 2 else None
    if found is None and len(text) > 2:
        try:
            found = pycountry.countries.lookup(text)
        except LookupError:
            found = None
    if found is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 country (use a code such as 'DE' or a name)")
    return str(found.alpha_2)


def country_alpha2_strict(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased; names are refused where the field wants a code."""
    text = value.strip().upper()
    if len(text) != 2 or pycountry.countries.get(alpha_2=text) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (such as 'DE' or 'US')")
    return text


@lru_cache(maxsize=256)
def currency_code(value: str) -> str:
    """An ISO 4217 alphabetic currency code, upper-cased."""
    text = value.strip().upper()
    if len(text) != 3 or pycountry.currencies.get(alpha_3=text) is None:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (such as 'EUR' or 'USD')")
    return text


@lru_cache(maxsize=1)
def _us_states_by_name() -> dict[str, Any]:
    states = pycountry.subdivisions.get(country_code="US") or ()  # type: ignore[no-untyped-call]
    return {s.name.casefold(): s for s in states}


@lru_cache(maxsize=256)
def us_state(value: str) -> str:
    """A US state as Debitura accepts it: 'CA', 'US-CA' or 'California'; returned as 'CA'."""
    text = value.strip()
    code = text.upper()
    if len(code) == 2:
        code = f"US-{code}"
    found = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
    if found is None:
        found = _us_states_by_name().get(text.casefold())
    if found is None or found.country_code != "US":
        raise ValueError(f"{value!r} is not a US state (use 'CA', 'US-CA' or 'California')")
    return str(found.code).split("-", 1)[1]


MAX_AMOUNT = Decimal("79228162514264337593543950335")
"""The largest amount Debitura can store (.NET ``decimal.MaxValue``); the API refuses larger ones with a 400."""


def positive_amount(value: Decimal) -> Decimal:
    """A money amount: finite, greater than zero, and small enough for Debitura's money type."""
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if value <= 0:
        raise ValueError("must be greater than zero")
    if value > MAX_AMOUNT:
        raise ValueError(f"must be at most {MAX_AMOUNT:.6g}, the largest amount Debitura stores")
    return value


def not_a_boolean(value: Any) -> Any:
    """Refuse true/false where a number belongs: pydantic would read ``true`` as an amount of 1."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def email(value: str) -> str:
    """A plausible e-mail address; Debitura answers 'Invalid email format' otherwise.

    The message leaves the value out: it is the debtor's personal data, and outcomes land in XCom and logs.
    """
    if not _EMAIL.match(value):
        raise ValueError("not a valid e-mail address (the value is left out: it is personal data)")
    return value


def is_loopback(host: str) -> bool:
    """Whether a URL host is this machine (``localhost`` or a loopback address): where plain http is safe."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
