"""Tax per marketplace: who owes the tax on sales, and the VAT/GST on Amazon's fees.

A ``TaxProfile`` per marketplace code (shipped defaults with their sources in
``reconciliation/tax_profiles.yaml``; ``HOME/config.toml`` overrides them, ``[tax] seller``
picks a registration other than "established in the marketplace's country") says:

- ``facilitator``: whether Amazon collects and remits the tax on sales: ``true`` for every order
  (US), ``false`` for none, ``auto`` per order, from the file: an order with a withheld-tax line
  (a category with the ``withheld`` role: ItemWithheldTax, MarketplaceFacilitatorTax-*/VAT-*) is
  one Amazon is the facilitator or deemed supplier for (EU/UK sellers' mixed files: non-established
  sellers' and low-value import orders), its refunds too (matched by order id). Unless M3's
  invoices carry that tax (``m3_invoices = "gross"`` under a mapping whose settlement settles M3
  invoices), the collected and the withheld tax lines of those orders are booked to
  ``facilitator_tax_clearing``, which nets to nil (``book_facilitator_tax``, a stage on the mapped
  lines, so vouchers, the invoice policy and the customer ledger see the same lines); other
  orders' tax follows the mapping (it settles the receivable of M3's gross invoice);
- ``fee_vat``: the tax Amazon charges on its fees (``FEE_VAT_TREATMENTS``); it applies to the
  mapping's categories marked ``tax: fee``. It may change over time: a list of treatments, each
  after the first with a ``from`` date; a voucher takes the one in force on its accounting date
  (``TaxProfile.on``). A fee row whose transaction carries its own row mapped to ``input_tax``
  (same transaction type, order and month: ``AmazonFees`` ``BASE_FEE`` / ``TAX_ON_FEE``) is
  taxed by that row: no treatment adds tax to it again (``reconciliation.vouchers``);
- ``output_vat_code``: the M3 VAT code of output-tax lines (categories marked ``tax: output``).

``apply_tax_profile`` applies the fee VAT to a voucher's (period, category, channel) sums, before
accounts are summed, so every figure is per voucher and per category (and per side of a category
the mapping keeps gross); it keeps each period's total, so the month split's carry-over is unchanged.
Rounding (``ROUND_HALF_UP`` in the minor unit): included tax = gross x rate / (1 + rate),
reverse charge = net x rate, as on Amazon's fee invoice, whose tax is computed on its total
rather than per fee row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import yaml

from reconciliation.marketplaces import MARKETPLACES

if TYPE_CHECKING:  # mapping imports this module's tax roles
    from reconciliation.mapping import GLMapping, MappedLines

FEE_VAT_TREATMENTS = ("included", "reverse_charge", "separate_rows", "none")
# facilitator: per order, from the file (an order with withheld tax is a facilitator order)
FACILITATOR_AUTO = "auto"
Facilitator = bool | Literal["auto"]
M3_INVOICES = ("net", "gross")
# Category roles a GL mapping may give (``tax:`` on a category).
TAX_COLLECTED, TAX_WITHHELD, TAX_OUTPUT, TAX_FEE = "collected", "withheld", "output", "fee"
TAX_ROLES = (TAX_COLLECTED, TAX_WITHHELD, TAX_OUTPUT, TAX_FEE)
# The roles whose amounts book to the facilitator clearing where the profile clears facilitator tax.
CLEARED_ROLES = frozenset((TAX_COLLECTED, TAX_WITHHELD, TAX_OUTPUT))
# Categories the profile books to (by name, in the GL mapping).
FACILITATOR_CLEARING = "facilitator_tax_clearing"
INPUT_TAX = "input_tax"
INPUT_VAT_REVERSE_CHARGE = "input_vat_reverse_charge"
OUTPUT_VAT_REVERSE_CHARGE = "output_vat_reverse_charge"

PROFILES_FILE = "tax_profiles.yaml"
_VAT_CODE = re.compile(r"^[0-9]{0,2}$")  # M3's VTCD is N2
_PROFILE_KEYS = ("facilitator", "m3_invoices", "fee_vat", "output_vat_code", "source")
_FEE_VAT_KEYS = ("treatment", "rate", "vat_code", "output_vat_code")
FEE_VAT_FROM = "from"  # the date a treatment in a list of fee_vat treatments applies from


class TaxProfileError(ValueError):
    """A tax profile value that cannot be used; the message names where and which key."""


class TaxSetupError(ValueError):
    """The GL mapping lacks a category a marketplace's tax profile books to."""


@dataclass(frozen=True)
class FeeVat:
    treatment: str = "none"  # FEE_VAT_TREATMENTS
    rate: Decimal = Decimal(0)
    vat_code: str = ""  # input-tax lines
    output_vat_code: str = ""  # the reverse charge's output line; "" = vat_code

    @property
    def reverse_charge_output_code(self) -> str:
        return self.output_vat_code or self.vat_code


@dataclass(frozen=True)
class TaxProfile:
    marketplace: str
    facilitator: Facilitator = False
    m3_invoices: str = "gross"  # M3_INVOICES
    fee_vat: FeeVat = FeeVat()  # in force until the first of fee_vat_from (always, when there is none)
    output_vat_code: str = ""
    source: str = ""
    fee_vat_from: tuple[tuple[date, FeeVat], ...] = ()  # later treatments, by ascending from-date

    def on(self, day: date) -> TaxProfile:
        """The profile on ``day``: its fee_vat the treatment in force then."""
        in_force = self.fee_vat
        for start, fee_vat in self.fee_vat_from:
            if start <= day:
                in_force = fee_vat
        return replace(self, fee_vat=in_force, fee_vat_from=())

    def with_fee_tax_in_rows(self) -> TaxProfile:
        """The profile for fee rows that carry their tax in rows of their own: ``separate_rows``."""
        return replace(self, fee_vat=replace(self.fee_vat, treatment="separate_rows"))

    @property
    def invoices_withheld_tax(self) -> bool:
        """M3's invoices carry the tax Amazon withholds as facilitator (facilitator, invoiced gross)."""
        return self.facilitator is not False and self.m3_invoices == "gross"

    def clears_facilitator_tax(self, invoices_in_m3: bool) -> bool:
        """Whether the facilitator orders' collected and withheld tax net on the clearing account:
        Amazon owes the tax and no M3 invoice booked it (M3 invoices them net, or M3 does not
        invoice at all). Which orders those are: ``facilitator``."""
        return self.facilitator is not False and not (invoices_in_m3 and self.m3_invoices == "gross")


NO_TAX_PROFILE = TaxProfile("")  # a marketplace with no profile (unresolved: such a settlement is held)


@dataclass(frozen=True)
class TaxProfiles:
    by_marketplace: tuple[tuple[str, TaxProfile], ...]

    def __getitem__(self, code: str) -> TaxProfile:
        return dict(self.by_marketplace).get(code, replace(NO_TAX_PROFILE, marketplace=code))


# A voucher's sums before accounts: (period, category, channel, Σ positive, Σ negative settlement
# amounts); a category the voucher nets comes with its net on one side.
CategorySums = tuple[int, str, str, int, int]


def apply_tax_profile(
    sums: Iterable[CategorySums],
    profile: TaxProfile,
    roles: Mapping[str, str],
    categories: Iterable[str],
    *,
    invoices_in_m3: bool = True,
) -> list[CategorySums]:
    """``sums`` after the profile's fee VAT: fee sums split (included) or joined by the
    self-assessment pair (reverse charge). ``roles`` is each category's ``tax:`` role;
    ``categories`` the mapping's categories. Each side (positive, negative) is treated on its own,
    so a category kept gross keeps its sides; amounts keep the settlement's sign (a fee is
    negative) and each period's total is unchanged. Facilitator tax is on the clearing already
    (``book_facilitator_tax``); tax that should be there and is not, because the mapping has no
    clearing category, is refused here (``TaxSetupError``), naming the category."""
    sums = list(sums)
    clears = profile.clears_facilitator_tax(invoices_in_m3)
    treatment = profile.fee_vat.treatment
    # true: every order's tax is the facilitator's; auto: an order's withheld tax makes it so
    facilitator_roles = CLEARED_ROLES if profile.facilitator is True else frozenset((TAX_WITHHELD,))
    needed = _needed_categories(sums, roles, facilitator_roles if clears else frozenset(), treatment)
    missing = [name for name in needed if name not in set(categories)]
    if missing:
        several = len(missing) > 1
        raise TaxSetupError(
            f"the GL mapping has no categor{'ies' if several else 'y'} {', '.join(missing)}, which the "
            f"{profile.marketplace} tax profile books to ({_why(FACILITATOR_CLEARING in needed, treatment)}); add "
            f"{'them' if several else 'it'} to the mapping or change [tax.{profile.marketplace}] in config.toml"
        )
    rate = profile.fee_vat.rate

    def after_profile(category: str, amount: int) -> list[tuple[str, int]]:
        role = roles.get(category, "")
        if role == TAX_FEE and treatment == "included":
            tax = _round_half_up(Decimal(amount) * rate / (1 + rate))
            return [(category, amount - tax), (INPUT_TAX, tax)]
        if role == TAX_FEE and treatment == "reverse_charge":
            tax = _round_half_up(Decimal(amount) * rate)
            return [(category, amount), (INPUT_VAT_REVERSE_CHARGE, tax), (OUTPUT_VAT_REVERSE_CHARGE, -tax)]
        return [(category, amount)]

    out: list[CategorySums] = []
    for period, category, channel, positive, negative in sums:
        if not (positive or negative):  # nets to nothing: kept, so the category still names its account
            out.append((period, category, channel, 0, 0))
        for amount in (positive, negative):
            if amount:
                out += [
                    (period, name, channel, max(value, 0), min(value, 0))
                    for name, value in after_profile(category, amount)
                ]
    return out


def vat_code_for(category: str, role: str, profile: TaxProfile) -> str:
    """The M3 VAT code of a voucher line of ``category`` (``role`` its ``tax:`` role)."""
    if category in (INPUT_TAX, INPUT_VAT_REVERSE_CHARGE):
        return profile.fee_vat.vat_code
    if category == OUTPUT_VAT_REVERSE_CHARGE:
        return profile.fee_vat.reverse_charge_output_code
    if role == TAX_OUTPUT:
        return profile.output_vat_code
    return ""


def _needed_categories(
    sums: list[CategorySums], roles: Mapping[str, str], facilitator_roles: frozenset[str], treatment: str
) -> list[str]:
    present = {roles.get(category, "") for _, category, _, positive, negative in sums if positive or negative}
    needed = []
    if present & facilitator_roles:
        needed.append(FACILITATOR_CLEARING)
    if TAX_FEE in present and treatment == "included":
        needed.append(INPUT_TAX)
    if TAX_FEE in present and treatment == "reverse_charge":
        needed += [INPUT_VAT_REVERSE_CHARGE, OUTPUT_VAT_REVERSE_CHARGE]
    return needed


def _why(clears: bool, treatment: str) -> str:
    reasons = ["Amazon collects the tax on sales (facilitator)"] if clears else []
    if treatment in ("included", "reverse_charge"):
        reasons.append(f"fee VAT {treatment.replace('_', ' ')}")
    return "; ".join(reasons)


def _round_half_up(value: Decimal) -> int:
    """To a whole minor unit, halves away from zero (Decimal's ROUND_HALF_UP is symmetric)."""
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


# ----------------------------------------------------------------------------------------
# loading: the shipped file, a seller registration, the user's overrides


def tax_profiles(
    overrides: Mapping[str, Any] | None = None, *, seller: str = "", source: str = "config.toml"
) -> TaxProfiles:
    """The shipped profiles, with ``seller``'s registration (``sellers:`` in the shipped file)
    and then ``overrides`` ({marketplace code: {field: value}}, as ``[tax.XX]`` tables) applied.
    A bad value raises ``TaxProfileError`` naming ``source`` and the key."""
    shipped = _shipped()
    profiles = dict(shipped.profiles)
    if seller:
        if seller not in shipped.sellers:
            raise TaxProfileError(
                f"{source}: [tax] seller: {seller!r} is not a known registration "
                f"(known: {', '.join(sorted(shipped.sellers))})"
            )
        for code, fields in shipped.sellers[seller].items():
            profiles[code] = _with_fields(profiles[code], fields, f"{PROFILES_FILE}: sellers.{seller}.{code}")
    for code, fields in (overrides or {}).items():
        where = f"{source}: [tax.{code}]"
        if code not in profiles:
            raise TaxProfileError(f"{where}: unknown marketplace code (known: {', '.join(profiles)})")
        if not isinstance(fields, Mapping):
            raise TaxProfileError(f"{where}: must be a table of {', '.join(_PROFILE_KEYS[:-1])}")
        profiles[code] = _with_fields(profiles[code], fields, where)
    return TaxProfiles(tuple(profiles.items()))


def configured_tax_profiles(table: Mapping[str, Any], source: str = "config.toml") -> TaxProfiles:
    """The profiles as ``[tax]`` in config.toml sets them: ``seller`` and one table per marketplace
    code (``[tax.DE]``); anything else is refused naming the key."""
    seller = table.get("seller", "")
    if not isinstance(seller, str):
        raise TaxProfileError(f"{source}: [tax] seller: must be text, got {seller!r}")
    return tax_profiles(
        {code: fields for code, fields in table.items() if code != "seller"}, seller=seller, source=source
    )


@dataclass(frozen=True)
class _Shipped:
    profiles: Mapping[str, TaxProfile]
    sellers: Mapping[str, Mapping[str, Mapping[str, Any]]]


@cache
def _shipped() -> _Shipped:
    text = (resources.files("reconciliation") / PROFILES_FILE).read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    profiles = {
        code: _with_fields(TaxProfile(code), fields, f"{PROFILES_FILE}: marketplaces.{code}")
        for code, fields in document["marketplaces"].items()
    }
    unknown = set(profiles) - {m.code for m in MARKETPLACES}
    missing = {m.code for m in MARKETPLACES} - set(profiles)
    if unknown or missing:  # the shipped file is checked by the tests; this guards a bad edit
        raise TaxProfileError(f"{PROFILES_FILE}: marketplaces unknown {sorted(unknown)}, missing {sorted(missing)}")
    sellers = {name: spec["marketplaces"] for name, spec in (document.get("sellers") or {}).items()}
    return _Shipped(profiles, sellers)


def _with_fields(profile: TaxProfile, fields: Mapping[str, Any], where: str) -> TaxProfile:
    """``profile`` with ``fields`` applied (``fee_vat`` merges key by key)."""
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        path = f"{where} {key}"
        if key == "facilitator":
            if not (isinstance(value, bool) or value == FACILITATOR_AUTO):
                raise TaxProfileError(f'{path}: must be true, false or "{FACILITATOR_AUTO}", got {value!r}')
            changes[key] = value
        elif key == "m3_invoices":
            changes[key] = _choice(value, M3_INVOICES, path)
        elif key == "output_vat_code":
            changes[key] = _vat_code(value, path)
        elif key == "source":
            changes[key] = " ".join(str(value).split())
        elif key == "fee_vat" and isinstance(value, Mapping):  # one table: at every date
            changes[key] = _fee_vat(profile.fee_vat, value, path)
            changes["fee_vat_from"] = tuple((start, _fee_vat(fv, value, path)) for start, fv in profile.fee_vat_from)
        elif key == "fee_vat" and isinstance(value, list) and value:  # dated treatments
            changes["fee_vat"], changes["fee_vat_from"] = _fee_vat_periods(profile, value, path)
        elif key == "fee_vat":
            raise TaxProfileError(
                f"{path}: must be a table of {', '.join(_FEE_VAT_KEYS)}, or a list of such tables "
                f"each after the first with a {FEE_VAT_FROM} date"
            )
        else:
            raise TaxProfileError(f"{path}: unknown key (expected {', '.join(_PROFILE_KEYS)})")
    return replace(profile, **changes)


def _fee_vat_periods(
    profile: TaxProfile, periods: list[Any], where: str
) -> tuple[FeeVat, tuple[tuple[date, FeeVat], ...]]:
    """(the first treatment, the dated ones) of a list of fee_vat tables; each table's keys apply
    over the treatment before it (the first over ``profile``'s first), so a key may be left out."""
    first_fields, *dated = periods
    first = _fee_vat(profile.fee_vat, _treatment_fields(first_fields, f"{where}[0]"), f"{where}[0]")
    if FEE_VAT_FROM in first_fields:
        raise TaxProfileError(f"{where}[0].{FEE_VAT_FROM}: the first treatment applies from the start: no date")
    later: list[tuple[date, FeeVat]] = []
    for index, fields in enumerate(dated, start=1):
        path = f"{where}[{index}]"
        treatment = _treatment_fields(fields, path)
        start = _from_date(fields.get(FEE_VAT_FROM), f"{path}.{FEE_VAT_FROM}")
        if later and start <= later[-1][0]:
            raise TaxProfileError(f"{path}.{FEE_VAT_FROM}: {start} is not after the date before it ({later[-1][0]})")
        later.append((start, _fee_vat(later[-1][1] if later else first, treatment, path)))
    return first, tuple(later)


def _treatment_fields(fields: Any, path: str) -> dict[str, Any]:
    """One table of a fee_vat list without its from-date."""
    if not isinstance(fields, Mapping):
        raise TaxProfileError(f"{path}: must be a table of {FEE_VAT_FROM}, {', '.join(_FEE_VAT_KEYS)}")
    return {key: value for key, value in fields.items() if key != FEE_VAT_FROM}


def _from_date(value: Any, path: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):  # YAML and TOML dates
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise TaxProfileError(f"{path}: must be a date written 2024-08-01, got {value!r}")


def _fee_vat(base: FeeVat, fields: Mapping[str, Any], where: str) -> FeeVat:
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        path = f"{where}.{key}"
        if key == "treatment":
            changes[key] = _choice(value, FEE_VAT_TREATMENTS, path)
        elif key == "rate":
            changes[key] = _rate(value, path)
        elif key in ("vat_code", "output_vat_code"):
            changes[key] = _vat_code(value, path)
        else:
            raise TaxProfileError(f"{path}: unknown key (expected {', '.join(_FEE_VAT_KEYS)})")
    return replace(base, **changes)


def _choice(value: Any, allowed: tuple[str, ...], path: str) -> str:
    if value not in allowed:
        raise TaxProfileError(f"{path}: must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _rate(value: Any, path: str) -> Decimal:
    problem = f'{path}: must be a fraction from 0 to 1 written as a string (e.g. "0.20" for 20 %), got {value!r}'
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TaxProfileError(problem)
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise TaxProfileError(problem) from None
    if not rate.is_finite() or not 0 <= rate < 1:
        raise TaxProfileError(problem)
    return rate


def _vat_code(value: Any, path: str) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None or not _VAT_CODE.match(text):
        raise TaxProfileError(f'{path}: must be an M3 VAT code of up to 2 digits (VTCD), e.g. "21", got {value!r}')
    return text


def book_facilitator_tax(mapped: MappedLines, mapping: GLMapping, profile: TaxProfile) -> MappedLines:
    """``mapped`` with the tax of the orders Amazon is the facilitator for booked to
    ``facilitator_tax_clearing``, where the profile clears it (``clears_facilitator_tax``): the
    lines of categories with a collected, withheld or output tax role, of every order
    (``facilitator = true``) or of the orders with a withheld-tax line of a non-zero amount (``auto``). Lines without an
    order id count as one order per transaction type. Run once right after mapping (and again,
    finding nothing new, after any stage that re-books lines): every later stage reads the
    category and account from the lines. Unchanged when the mapping has no clearing category
    (``apply_tax_profile`` then refuses the vouchers, naming it)."""
    if not profile.clears_facilitator_tax(mapping.invoices_in_m3) or FACILITATOR_CLEARING not in mapping.categories:
        return mapped
    lines = mapped.lines
    roles = {name: category.tax for name, category in mapping.categories.items()}
    categories = lines["category"]
    cleared = np.asarray(categories.isin([name for name, role in roles.items() if role in CLEARED_ROLES]), dtype=bool)
    if profile.facilitator == FACILITATOR_AUTO and cleared.any():
        # An order is the facilitator's when Amazon withheld tax on it (a line on the clearing
        # already, on a rerun). A zero withheld-tax row withholds nothing: EU files carry
        # MarketplaceFacilitatorVAT-Principal 0.00 on orders whose VAT is the seller's.
        withheld_categories = [name for name, role in roles.items() if role == TAX_WITHHELD] + [FACILITATOR_CLEARING]
        withheld = np.asarray(categories.isin(withheld_categories), dtype=bool) & (
            lines["amount_minor"].to_numpy(dtype=np.int64) != 0
        )
        orders = _order_keys(lines)
        cleared = cleared & np.isin(orders, orders[withheld])
    return mapping.rebooked(mapped, cleared, FACILITATOR_CLEARING)


def _order_keys(lines: pd.DataFrame) -> np.ndarray:
    """One integer per line naming its order: the order id's code (>= 0), or, for a line without
    an order id, one negative code per transaction type."""
    from reconciliation.mapping import factorize_text  # here: mapping imports this module

    orders, ids = factorize_text(lines["order_id"])
    without_id = orders < 0
    if "" in ids:
        without_id |= orders == ids.index("")
    types, _ = factorize_text(lines["transaction_type"])
    keys: np.ndarray = np.where(without_id, -2 - types, orders)
    return keys
