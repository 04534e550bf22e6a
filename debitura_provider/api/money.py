"""The one money rule: amounts are :class:`~decimal.Decimal`, compared in the currency's minor unit.

Debitura writes amounts as JSON numbers with at most the currency's decimals (cents for EUR), and
the models read them as ``Decimal`` straight from the number's text, so no binary float ever
rounds them. Two amounts are the same when they are the same number of minor units (cents, yen,
fils): there is no tolerance anywhere else in the package.

pycountry knows the ISO 4217 codes but not their minor units, so the few currencies that do not
have two decimals are listed here (ISO 4217 amendment 176); an unknown or missing code counts two.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

Amount = Decimal | int | str
"""What the functions here take: a ``Decimal``, an ``int`` or a decimal string, never a float."""

_MINOR_DIGITS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
            "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}  # fmt: skip


def minor_digits(currency: str | None) -> int:
    """How many decimals the currency's minor unit has: 2 for EUR, 0 for JPY, 3 for KWD."""
    return _MINOR_DIGITS.get((currency or "").strip().upper(), 2)


def to_minor(amount: Amount, currency: str | None) -> int:
    """The amount in whole minor units (``Decimal("12.50")``, EUR -> ``1250``), half to even."""
    if isinstance(amount, float | bool):
        raise TypeError(f"money must be a Decimal, int or decimal string, not {type(amount).__name__}")
    value = amount if isinstance(amount, Decimal) else Decimal(amount)
    return int(value.scaleb(minor_digits(currency)).to_integral_value(ROUND_HALF_EVEN))


def same_amount(a: Amount, b: Amount, currency: str | None) -> bool:
    """Whether two amounts are the same number of the currency's minor units."""
    return to_minor(a, currency) == to_minor(b, currency)


_EXACT = Context(prec=60)  # more digits than any amount Debitura takes (a .NET decimal), so nothing rounds
_CENTS = Decimal("0.01")


def as_text(amount: Decimal) -> str:
    """The one text form of an amount in XCom and trigger events: ``"512.50"``, ``"1200.00"``, ``"0.125"``.

    At least two decimals, no trailing zero beyond them, never an exponent. Debitura may write 512.5
    or 512.50 for the same amount; both become ``"512.50"``, so equal amounts have equal text.
    """
    value = amount.normalize(_EXACT)
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(_CENTS, context=_EXACT)
    return format(value, "f")
