"""Every Amazon marketplace, defined once, and which marketplace a settlement belongs to.

A ``Marketplace`` is the name settlement files give it (``marketplace-name``), Amazon's
marketplace id, the two-letter code the GL mappings put in dimensions (``{marketplace}``;
``UK`` for Amazon.co.uk, as the presets have always used), its country (ISO 3166), currency
(ISO 4217) with that currency's decimals, and its SP-API region.

Multi-channel fulfilment (MCF) orders carry names that are not marketplaces: ``Non-Amazon``,
``Non-Amazon US``, ``Non-Amazon UK``, … and internal ones such as ``SI CA Prod Marketplace``.
They are recognised (not errors); a country code in the name ties them to that country's
marketplace.

``resolve_marketplace`` decides a settlement's marketplace from its rows; a settlement whose
rows name none (account-level fees only) takes it from the seller account's configured
marketplaces narrowed by the settlement currency, else from the currency alone when exactly one
marketplace uses it. When it cannot be told, the answer says why (errors as data).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import pandas as pd

REGION_NA, REGION_EU, REGION_FE = "NA", "EU", "FE"


@dataclass(frozen=True)
class Marketplace:
    name: str  # marketplace-name as settlement files spell it
    marketplace_id: str  # Amazon's MarketplaceId (developer-docs.amazon.com/sp-api/docs/marketplace-ids)
    code: str  # two letters in GL dimensions ({marketplace}); UK for Amazon.co.uk
    country: str  # ISO 3166-1 alpha-2 (GB for Amazon.co.uk)
    currency: str  # ISO 4217
    decimals: int  # ISO 4217 minor unit of the currency (JPY has none)
    region: str  # SP-API region: NA, EU or FE


MARKETPLACES: tuple[Marketplace, ...] = (
    Marketplace("Amazon.com", "ATVPDKIKX0DER", "US", "US", "USD", 2, REGION_NA),
    Marketplace("Amazon.ca", "A2EUQ1WTGCTBG2", "CA", "CA", "CAD", 2, REGION_NA),
    Marketplace("Amazon.com.mx", "A1AM78C64UM0Y8", "MX", "MX", "MXN", 2, REGION_NA),
    Marketplace("Amazon.com.br", "A2Q3Y263D00KWC", "BR", "BR", "BRL", 2, REGION_NA),
    Marketplace("Amazon.co.uk", "A1F83G8C2ARO7P", "UK", "GB", "GBP", 2, REGION_EU),
    Marketplace("Amazon.de", "A1PA6795UKMFR9", "DE", "DE", "EUR", 2, REGION_EU),
    Marketplace("Amazon.fr", "A13V1IB3VIYZZH", "FR", "FR", "EUR", 2, REGION_EU),
    Marketplace("Amazon.it", "APJ6JRA9NG5V4", "IT", "IT", "EUR", 2, REGION_EU),
    Marketplace("Amazon.es", "A1RKKUPIHCS9HS", "ES", "ES", "EUR", 2, REGION_EU),
    Marketplace("Amazon.nl", "A1805IZSGTT6HS", "NL", "NL", "EUR", 2, REGION_EU),
    Marketplace("Amazon.se", "A2NODRKZP88ZB9", "SE", "SE", "SEK", 2, REGION_EU),
    Marketplace("Amazon.pl", "A1C3SOZRARQ6R3", "PL", "PL", "PLN", 2, REGION_EU),
    Marketplace("Amazon.com.be", "AMEN7PMS3EDWL", "BE", "BE", "EUR", 2, REGION_EU),
    Marketplace("Amazon.com.tr", "A33AVAJ2PDY3EV", "TR", "TR", "TRY", 2, REGION_EU),
    Marketplace("Amazon.ie", "A28R8C7NBKEWEA", "IE", "IE", "EUR", 2, REGION_EU),
    Marketplace("Amazon.ae", "A2VIGQ35RCS4UG", "AE", "AE", "AED", 2, REGION_EU),
    Marketplace("Amazon.sa", "A17E79C6D8DWNP", "SA", "SA", "SAR", 2, REGION_EU),
    Marketplace("Amazon.eg", "ARBP9OOSHTCHU", "EG", "EG", "EGP", 2, REGION_EU),
    Marketplace("Amazon.in", "A21TJRUUN4KGV", "IN", "IN", "INR", 2, REGION_EU),
    Marketplace("Amazon.co.za", "AE08WJ6YKNBMC", "ZA", "ZA", "ZAR", 2, REGION_EU),
    Marketplace("Amazon.co.jp", "A1VC38T7YXB528", "JP", "JP", "JPY", 0, REGION_FE),
    Marketplace("Amazon.com.au", "A39IBJ37TRP1C6", "AU", "AU", "AUD", 2, REGION_FE),
    Marketplace("Amazon.sg", "A19VAU5U5O7RUS", "SG", "SG", "SGD", 2, REGION_FE),
)

# Currencies a settlement may arrive in that no marketplace uses as its own (none known yet);
# anything else not listed defaults to 2 decimals in ``reconciliation.model.currency_decimals``.
_OTHER_CURRENCY_DECIMALS: dict[str, int] = {}


def _currency_decimals() -> Mapping[str, int]:
    table = dict(_OTHER_CURRENCY_DECIMALS)
    for marketplace in MARKETPLACES:
        known = table.setdefault(marketplace.currency, marketplace.decimals)
        if known != marketplace.decimals:  # a typo in the table above, caught at import
            raise ValueError(f"{marketplace.currency} has {known} and {marketplace.decimals} decimals")
    return MappingProxyType(table)


# ISO 4217 minor-unit exponent per currency, from the table above.
CURRENCY_DECIMALS: Mapping[str, int] = _currency_decimals()

_BY_NAME = {m.name.casefold(): m for m in MARKETPLACES}
_BY_ID = {m.marketplace_id: m for m in MARKETPLACES}
# Country codes an MCF name may carry: the dimension codes, plus GB for the UK.
_BY_MCF_COUNTRY = {**{m.code: m for m in MARKETPLACES}, **{m.country: m for m in MARKETPLACES}}

# "Non-Amazon", "Non-Amazon US", "NON_AMAZON"; Amazon's internal "SI CA Prod Marketplace".
_MULTICHANNEL = re.compile(r"^(non[\s_-]*amazon\b.*|si\s.*\bmarketplace)$", re.IGNORECASE)
_LETTERS = re.compile(r"[A-Za-z]+")


def marketplace_by_name(name: str) -> Marketplace | None:
    """The Amazon marketplace a ``marketplace-name`` spells (case and surrounding spaces ignored)."""
    return _BY_NAME.get(str(name).strip().casefold())


def marketplace_by_id(marketplace_id: str) -> Marketplace | None:
    return _BY_ID.get(str(marketplace_id).strip())


def is_multichannel(name: str) -> bool:
    """A multi-channel fulfilment name (``Non-Amazon …``, ``SI CA Prod Marketplace``)."""
    return bool(_MULTICHANNEL.match(str(name).strip()))


def multichannel_country(name: str) -> Marketplace | None:
    """The marketplace of the one country code an MCF name carries (``Non-Amazon UK`` ->
    Amazon.co.uk); None for a name without one (``Non-Amazon``) or with several."""
    if not is_multichannel(name):
        return None
    found = {
        _BY_MCF_COUNTRY[word.upper()]
        for word in _LETTERS.findall(name)
        if len(word) == 2 and word.upper() in _BY_MCF_COUNTRY
    }
    return found.pop() if len(found) == 1 else None


def find_marketplace(name: str) -> Marketplace | None:
    """The marketplace a name stands for: an Amazon marketplace, or an MCF name's country."""
    return marketplace_by_name(name) or multichannel_country(name)


def marketplaces_for_currency(currency: str) -> tuple[Marketplace, ...]:
    return tuple(m for m in MARKETPLACES if m.currency == str(currency).strip().upper())


def name_counts(names: pd.Series) -> list[tuple[str, int]]:
    """Distinct non-empty marketplace names (stripped) with their line counts, most lines first.

    Counts the distinct values first and strips only those: cheap on a million lines."""
    counts: dict[str, int] = {}
    for value, count in names.value_counts(sort=False, dropna=True).items():
        name = str(value).strip()
        if name:
            counts[name] = counts.get(name, 0) + int(count)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def main_marketplace_name(names: pd.Series) -> str:
    """The name most lines carry, preferring Amazon marketplaces, then other names, then MCF
    names (MCF rows ride along in a marketplace's settlement); "" when no row names one."""
    counts = name_counts(names)
    for wanted in (lambda n: marketplace_by_name(n) is not None, lambda n: not is_multichannel(n), lambda n: True):
        for name, _ in counts:
            if wanted(name):
                return name
    return ""


@dataclass(frozen=True)
class MarketplaceResolution:
    """Which marketplace a settlement books to, and how that was decided."""

    marketplace: Marketplace | None
    decided_by: str  # "rows", "multi-channel rows", "configuration", "currency", ""
    problem: str = ""  # why the settlement must be held ("" when it may go on)
    unknown_names: tuple[tuple[str, int], ...] = ()  # names never seen, with their line counts

    @property
    def held(self) -> bool:
        return bool(self.problem)


def resolve_marketplace(
    names: pd.Series, currency: str, configured_marketplaces: Sequence[str] = ()
) -> MarketplaceResolution:
    """The marketplace of a settlement from its rows' ``marketplace-name`` values.

    Rows naming an Amazon marketplace decide (the one with most lines). Rows naming only MCF
    channels decide when they name one country. Otherwise the seller account's configured
    marketplace ids narrowed by ``currency`` decide when they leave exactly one, else the
    currency alone when exactly one marketplace uses it. A name never seen holds the settlement.
    """
    counts = name_counts(names)
    unknown = tuple((n, c) for n, c in counts if marketplace_by_name(n) is None and not is_multichannel(n))
    if unknown:
        listed = ", ".join(f"{n!r} ({c} line{'s' if c != 1 else ''})" for n, c in unknown)
        chosen = next((marketplace_by_name(n) for n, _ in counts if marketplace_by_name(n)), None)
        return MarketplaceResolution(
            chosen,
            "rows" if chosen else "",
            f"unknown marketplace-name {listed}: not an Amazon marketplace or multi-channel name this "
            f"version knows; nothing is posted for this settlement",
            unknown,
        )
    amazon = [marketplace_by_name(n) for n, _ in counts if marketplace_by_name(n) is not None]
    if amazon:
        return MarketplaceResolution(amazon[0], "rows")
    channels = [n for n, _ in counts]  # only MCF names are left
    countries = list(dict.fromkeys(m for m in map(multichannel_country, channels) if m is not None))
    if len(countries) > 1:  # MCF orders shipped to several countries: the settlement's currency picks
        countries = [m for m in countries if m.currency == currency.strip().upper()]
    if len(countries) == 1:
        return MarketplaceResolution(countries[0], "multi-channel rows")
    what = (
        f"only multi-channel rows ({', '.join(repr(n) for n in channels)})"
        if channels
        else "no marketplace-name on any row"
    )
    return _from_account(what, currency, configured_marketplaces)


def _from_account(what: str, currency: str, configured_marketplaces: Sequence[str]) -> MarketplaceResolution:
    currency = str(currency).strip().upper()
    configured = [marketplace_by_id(i) for i in configured_marketplaces]
    unknown_ids = [i for i, m in zip(configured_marketplaces, configured) if m is None]
    narrowed = list(dict.fromkeys(m for m in configured if m is not None and m.currency == currency))
    if len(narrowed) == 1:
        return MarketplaceResolution(narrowed[0], "configuration")
    if len(narrowed) > 1:
        return MarketplaceResolution(
            None,
            "",
            (
                f"{what} and the configured marketplaces {_names(narrowed)} all settle in {currency}: cannot tell "
                f"which one this settlement belongs to; nothing is posted for it (book it by hand)"
            ),
        )
    by_currency = marketplaces_for_currency(currency)
    if len(by_currency) == 1:
        return MarketplaceResolution(by_currency[0], "currency")
    note = (
        f" (configured id(s) {', '.join(map(repr, unknown_ids))} are not Amazon marketplace ids)" if unknown_ids else ""
    )
    if not by_currency:
        return MarketplaceResolution(
            None,
            "",
            (
                f"{what} and no Amazon marketplace settles in {currency or 'an empty currency'!s}{note}; "
                f"nothing is posted for this settlement"
            ),
        )
    return MarketplaceResolution(
        None,
        "",
        (
            f"{what} and {currency} is used by {_names(by_currency)}{note}; set [amazon] marketplaces in "
            f'config.toml to this seller account\'s marketplace ids (e.g. "{by_currency[0].marketplace_id}" '
            f"for {by_currency[0].name}) so the marketplace can be told"
        ),
    )


def _names(marketplaces: Iterable[Marketplace]) -> str:
    return ", ".join(m.name for m in marketplaces)
