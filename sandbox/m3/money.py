"""Exact amounts for the sandbox: Decimal, rounded half-up to the currency's decimals."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# The sandbox's currencies all have two decimals (USD, EUR, GBP).
CURRENCY_DECIMALS = {"USD": 2, "EUR": 2, "GBP": 2}

# Output VAT the sandbox M3 charges on invoices, by the customer's country [ours]: the
# destination country's standard rate (OSS), as for Amazon EU sales; US 0 because Amazon
# collects US sales tax as marketplace facilitator. Unknown countries fall back to the
# currency's rate.
VAT_RATE_PCT_BY_COUNTRY = {"DE": Decimal(19), "FR": Decimal(20), "GB": Decimal(20), "UK": Decimal(20), "US": Decimal(0)}
VAT_RATE_PCT = {"EUR": Decimal(19), "GBP": Decimal(20), "USD": Decimal(0)}


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-CURRENCY_DECIMALS.get(currency, 2))


def to_currency(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def fmt_amount(amount: Decimal, currency: str) -> str:
    return str(to_currency(amount, currency))


def vat_rate_pct(country: str, currency: str) -> Decimal:
    return VAT_RATE_PCT_BY_COUNTRY.get(country, VAT_RATE_PCT.get(currency, Decimal(0)))


def vat(net: Decimal, currency: str, country: str = "") -> Decimal:
    """VAT on one invoice line, rounded per line as M3 does before summing."""
    return to_currency(net * vat_rate_pct(country, currency) / 100, currency)


def fmt_qty(qty: Decimal | int) -> str:
    """Quantities without trailing zeros: 2, 1.5."""
    d = Decimal(qty)
    return str(d.quantize(Decimal(1))) if d == d.to_integral_value() else str(d.normalize())
