"""Typed records the M3 business operations take and return (frozen dataclasses).

M3 answers with strings; the ``from_m3`` constructors parse numbers to ``Decimal``/``int``
and yyyyMMdd dates to ``datetime.date``. Requests check M3's field limits when built, so a
value that M3 would refuse is refused here with the field named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from connectors.m3.errors import M3Error

# M3's GL field sizes are defined once, beside the voucher builder that must fit them (pure data).
from reconciliation.m3_fields import (
    AIT_COUNT,
    AIT_LENGTH,
    CUAM_LENGTH,
    CUCD_LENGTH,
    DIVI_LENGTH,
    MAX_VOUCHER_LINES,
    VTCD_LENGTH,
    VTXT_LENGTH,
)


class M3DataError(M3Error, ValueError):
    """A value M3 returned, or a value for M3, is not what the field allows."""


# -- parsing M3's strings ------------------------------------------------------------------------
def m3_decimal(record: Mapping[str, str], name: str) -> Decimal:
    raw = (record.get(name) or "").strip()
    if not raw:
        return Decimal(0)
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise M3DataError(f"M3 field {name} is not a number: {raw!r}") from None


def m3_int(record: Mapping[str, str], name: str) -> int:
    value = m3_decimal(record, name)
    if value != value.to_integral_value():
        raise M3DataError(f"M3 field {name} is not a whole number: {value}")
    return int(value)


def m3_date(record: Mapping[str, str], name: str) -> date | None:
    raw = (record.get(name) or "").strip()
    if not raw or raw.strip("0") == "":
        return None
    try:
        return datetime.strptime(raw, "%Y%m%d").date()
    except ValueError:
        raise M3DataError(f"M3 field {name} is not a yyyyMMdd date: {raw!r}") from None


def m3_text(record: Mapping[str, str], name: str) -> str:
    return (record.get(name) or "").strip()


def check_length(what: str, name: str, value: str | None, limit: int, *, required: bool = False) -> None:
    if value is None or value == "":
        if required:
            raise M3DataError(f"{what}: {name} must be given")
        return
    if len(value) > limit:
        raise M3DataError(f"{what}: {name} is {len(value)} characters, M3 allows {limit}: {value[:60]!r}")


def _check_amount(what: str, name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise M3DataError(f"{what}: {name} must be a Decimal or int (never float), got {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise M3DataError(f"{what}: {name} must be finite, got {value}")


# -- customers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerRequest:
    """A new customer for CRS610MI/Add, created from ``template`` (the template customer)."""

    name: str  # CUNM A36
    address1: str  # CUA1 A36
    template: str = "AMZTMPL"  # CUTM
    cuno: str | None = None  # CUNO: None lets M3 number it
    address2: str | None = None
    address3: str | None = None
    address4: str | None = None
    postal_code: str | None = None  # PONO A10
    town: str | None = None  # TOWN A20
    country: str | None = None  # CSCD A3
    state: str | None = None  # ECAR A2
    phone: str | None = field(default=None, repr=False)  # PHNO A16
    email: str | None = field(default=None, repr=False)  # MAIL A50
    currency: str | None = None  # CUCD
    reference: str | None = None  # YREF A30
    search_key: str | None = None  # ALCU A10

    def __post_init__(self) -> None:
        for name, value, limit, required in (
            ("CUNM", self.name, 36, True),
            ("CUA1", self.address1, 36, True),
            ("CUTM", self.template, 10, True),
            ("CUNO", self.cuno, 10, False),
            ("CUA2", self.address2, 36, False),
            ("CUA3", self.address3, 36, False),
            ("CUA4", self.address4, 36, False),
            ("PONO", self.postal_code, 10, False),
            ("TOWN", self.town, 20, False),
            ("CSCD", self.country, 3, False),
            ("ECAR", self.state, 2, False),
            ("PHNO", self.phone, 16, False),
            ("MAIL", self.email, 50, False),
            ("CUCD", self.currency, 3, False),
            ("YREF", self.reference, 30, False),
            ("ALCU", self.search_key, 10, False),
        ):
            check_length("customer", name, value, limit, required=required)

    def to_m3(self) -> dict[str, str | None]:
        return {
            "CUTM": self.template,
            "CUNO": self.cuno,
            "CUNM": self.name,
            "CUA1": self.address1,
            "CUA2": self.address2,
            "CUA3": self.address3,
            "CUA4": self.address4,
            "PONO": self.postal_code,
            "TOWN": self.town,
            "CSCD": self.country,
            "ECAR": self.state,
            "PHNO": self.phone,
            "MAIL": self.email,
            "CUCD": self.currency,
            "YREF": self.reference,
            "ALCU": self.search_key,
        }


@dataclass(frozen=True)
class Customer:
    cuno: str
    name: str
    status: str = ""
    currency: str = ""
    country: str = ""
    town: str = ""
    address: tuple[str, ...] = field(default=(), repr=False)
    postal_code: str = field(default="", repr=False)
    phone: str = field(default="", repr=False)
    email: str = field(default="", repr=False)
    order_type: str = ""
    payer: str = ""
    division: str = ""
    registered: date | None = None

    @classmethod
    def from_m3(cls, r: Mapping[str, str]) -> Customer:
        return cls(
            cuno=m3_text(r, "CUNO"),
            name=m3_text(r, "CUNM"),
            status=m3_text(r, "STAT"),
            currency=m3_text(r, "CUCD"),
            country=m3_text(r, "CSCD"),
            town=m3_text(r, "TOWN"),
            address=tuple(m3_text(r, f"CUA{i}") for i in range(1, 5) if m3_text(r, f"CUA{i}")),
            postal_code=m3_text(r, "PONO"),
            phone=m3_text(r, "PHNO"),
            email=m3_text(r, "MAIL"),
            order_type=m3_text(r, "ORTP"),
            payer=m3_text(r, "PYNO"),
            division=m3_text(r, "DIVI"),
            registered=m3_date(r, "RGDT"),
        )


# -- orders --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderAddress:
    """Delivery address (AddBatchAddress ADRT=1; cloudsuite profile only). Buyer data: no repr."""

    name: str = field(repr=False)
    address1: str = field(repr=False)
    address2: str | None = field(default=None, repr=False)
    address3: str | None = field(default=None, repr=False)
    postal_code: str | None = field(default=None, repr=False)
    town: str | None = field(default=None, repr=False)
    country: str | None = None
    state: str | None = None
    phone: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("CUNM", self.name, 36),
            ("CUA1", self.address1, 36),
            ("CUA2", self.address2, 36),
            ("CUA3", self.address3, 36),
            ("PONO", self.postal_code, 10),
            ("TOWN", self.town, 20),
            ("CSCD", self.country, 3),
            ("ECAR", self.state, 2),
            ("PHNO", self.phone, 16),
        ):
            check_length("delivery address", name, value, limit, required=name in ("CUNM", "CUA1"))


@dataclass(frozen=True)
class OrderLineRequest:
    itno: str  # ITNO A15
    quantity: Decimal | int  # ORQT, > 0 (< 0 on a return order's line)
    unit_price: Decimal | None = None  # SAPR; None = M3's price list
    discount: Decimal | None = None  # DIA1 (amount)
    warehouse: str | None = None  # WHLO; None = the head's
    requested_delivery_date: date | None = None  # DWDT
    returned: bool = False  # a return order's line (M3Operations.create_credit_order): goods coming back, ORQT < 0

    def __post_init__(self) -> None:
        check_length("order line", "ITNO", self.itno, 15, required=True)
        check_length("order line", "WHLO", self.warehouse, 3)
        _check_amount("order line", "ORQT", self.quantity)
        _check_amount("order line", "SAPR", self.unit_price, allow_none=True)
        _check_amount("order line", "DIA1", self.discount, allow_none=True)
        if self.returned and self.quantity >= 0:
            raise M3DataError(f"return order line {self.itno}: ORQT must be negative, got {self.quantity}")
        if not self.returned and self.quantity <= 0:
            raise M3DataError(f"order line {self.itno}: ORQT must be positive, got {self.quantity}")

    def to_m3(self) -> dict[str, str | int | Decimal | date | None]:
        return {
            "ITNO": self.itno,
            "ORQT": self.quantity,
            "SAPR": self.unit_price,
            "DIA1": self.discount,
            "WHLO": self.warehouse,
            "DWDT": self.requested_delivery_date,
        }


@dataclass(frozen=True)
class OrderRequest:
    cuno: str  # CUNO A10
    customer_order_ref: str  # CUOR A20: the Amazon order id, our idempotency reference
    order_type: str  # ORTP A3 (AMZ / AFN)
    lines: tuple[OrderLineRequest, ...]
    order_date: date | None = None  # ORDT
    requested_delivery_date: date | None = None  # RLDT
    warehouse: str | None = None  # WHLO
    facility: str | None = None  # FACI
    currency: str | None = None  # CUCD
    your_reference: str | None = None  # YREF A30
    delivery_address: OrderAddress | None = None

    def __post_init__(self) -> None:
        for name, value, limit, required in (
            ("CUNO", self.cuno, 10, True),
            ("CUOR", self.customer_order_ref, 20, True),
            ("ORTP", self.order_type, 3, True),
            ("WHLO", self.warehouse, 3, False),
            ("FACI", self.facility, 3, False),
            ("CUCD", self.currency, 3, False),
            ("YREF", self.your_reference, 30, False),
        ):
            check_length(f"order {self.customer_order_ref}", name, value, limit, required=required)
        if not isinstance(self.lines, tuple) or not self.lines:
            raise M3DataError(f"order {self.customer_order_ref}: lines must be a non-empty tuple of OrderLineRequest")

    def head_to_m3(self) -> dict[str, str | int | Decimal | date | None]:
        return {
            "CUNO": self.cuno,
            "ORTP": self.order_type,
            "FACI": self.facility,
            "WHLO": self.warehouse,
            "ORDT": self.order_date,
            "RLDT": self.requested_delivery_date,
            "CUOR": self.customer_order_ref,
            "YREF": self.your_reference,
            "CUCD": self.currency,
        }


@dataclass(frozen=True)
class CreatedOrder:
    orno: str  # the final order number
    status: str  # STAT after creation
    line_numbers: tuple[int, ...]  # PONR per requested line, in order
    batch_orno: str | None = None  # cloudsuite: the temporary batch order number


@dataclass(frozen=True)
class OrderHead:
    orno: str
    cuno: str
    customer_order_ref: str
    order_type: str
    status: str
    lowest_status: str
    highest_status: str
    currency: str
    order_date: date | None
    warehouse: str
    facility: str
    division: str
    net_amount: Decimal
    vat_amount: Decimal
    total_amount: Decimal
    your_reference: str = ""  # YREF (GetHead): a credit order's credit key

    @classmethod
    def from_m3(cls, r: Mapping[str, str]) -> OrderHead:
        return cls(
            orno=m3_text(r, "ORNO"),
            cuno=m3_text(r, "CUNO"),
            customer_order_ref=m3_text(r, "CUOR"),
            order_type=m3_text(r, "ORTP"),
            status=m3_text(r, "STAT"),
            lowest_status=m3_text(r, "ORSL"),
            highest_status=m3_text(r, "ORST"),
            currency=m3_text(r, "CUCD"),
            order_date=m3_date(r, "ORDT"),
            warehouse=m3_text(r, "WHLO"),
            facility=m3_text(r, "FACI"),
            division=m3_text(r, "DIVI"),
            net_amount=m3_decimal(r, "NTAM"),
            vat_amount=m3_decimal(r, "VTAM"),
            total_amount=m3_decimal(r, "TOPY"),
            your_reference=m3_text(r, "YREF"),
        )


@dataclass(frozen=True)
class OrderLine:
    orno: str
    line_number: int  # PONR
    suffix: int  # POSX
    itno: str
    name: str
    quantity: Decimal  # ORQT
    unit_price: Decimal  # SAPR
    discount: Decimal  # DIA1
    net_amount: Decimal  # NLAM
    status: str  # ORST
    warehouse: str
    allocated: Decimal
    delivered: Decimal
    invoiced: Decimal
    currency: str

    @classmethod
    def from_m3(cls, r: Mapping[str, str]) -> OrderLine:
        return cls(
            orno=m3_text(r, "ORNO"),
            line_number=m3_int(r, "PONR"),
            suffix=m3_int(r, "POSX"),
            itno=m3_text(r, "ITNO"),
            name=m3_text(r, "ITDS"),
            quantity=m3_decimal(r, "ORQT"),
            unit_price=m3_decimal(r, "SAPR"),
            discount=m3_decimal(r, "DIA1"),
            net_amount=m3_decimal(r, "NLAM"),
            status=m3_text(r, "ORST"),
            warehouse=m3_text(r, "WHLO"),
            allocated=m3_decimal(r, "ALQT"),
            delivered=m3_decimal(r, "DLQT"),
            invoiced=m3_decimal(r, "IVQT"),
            currency=m3_text(r, "CUCD"),
        )


@dataclass(frozen=True)
class CreditOrder:
    """A return order M3 has for an Amazon order (its CUOR): the head (YREF: the credit key) and lines."""

    head: OrderHead
    lines: tuple[OrderLine, ...]


# -- items and stock -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    itno: str
    name: str
    description: str
    status: str
    unit: str
    item_group: str
    item_type: str

    @classmethod
    def from_m3(cls, r: Mapping[str, str]) -> Item:
        return cls(
            itno=m3_text(r, "ITNO"),
            name=m3_text(r, "ITDS"),
            description=m3_text(r, "FUDS"),
            status=m3_text(r, "STAT"),
            unit=m3_text(r, "UNMS"),
            item_group=m3_text(r, "ITGR"),
            item_type=m3_text(r, "ITTY"),
        )


@dataclass(frozen=True)
class ItemSalesPrice:
    """An item's basic sales price (MMS200MI/GetItmPrice): per unit of the sales price U/M."""

    price: Decimal | None  # SAPR / SACD (the price is for SACD units); None when M3 holds none (SAPR blank)
    currency: str  # CUCS: the sales price's currency

    @classmethod
    def from_m3(cls, r: Mapping[str, str]) -> ItemSalesPrice:
        per = m3_decimal(r, "SACD") or Decimal(1)  # 0 or blank: the price is per unit
        return cls(m3_decimal(r, "SAPR") / per if m3_text(r, "SAPR") else None, m3_text(r, "CUCS"))


@dataclass(frozen=True)
class StockBalance:
    whlo: str
    itno: str
    on_hand: Decimal  # STQT: on-hand approved
    allocated: Decimal  # ALQT
    allocatable: Decimal  # AVAL: what may still be promised


# -- invoices ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerInvoice:
    orno: str
    cuor: str | None  # the customer's order number (Amazon order id) when known
    ivno: str  # IVNO as M3 shows it (an identifier: kept a string)
    ivdt: date | None
    cuno: str
    currency: str
    gross: Decimal  # AMT1, incl. VAT
    net: Decimal  # AMT2, excl. VAT
    tax: Decimal  # VTAM, else gross - net
    year: int
    division: str
    delivery: str  # DLIX
    prefix: str  # INPX
    extended_number: str  # EXIN
    due_date: date | None
    remaining: Decimal  # RAFC

    @classmethod
    def from_m3(cls, r: Mapping[str, str]) -> CustomerInvoice:
        gross, net = m3_decimal(r, "AMT1"), m3_decimal(r, "AMT2")
        tax = m3_decimal(r, "VTAM") if m3_text(r, "VTAM") else gross - net
        return cls(
            orno=m3_text(r, "ORNO"),
            cuor=m3_text(r, "CUOR") or None,
            ivno=m3_text(r, "IVNO"),
            ivdt=m3_date(r, "IVDT"),
            cuno=m3_text(r, "CUNO"),
            currency=m3_text(r, "CUCD"),
            gross=gross,
            net=net,
            tax=tax,
            year=m3_int(r, "YEA4"),
            division=m3_text(r, "DIVI"),
            delivery=m3_text(r, "DLIX"),
            prefix=m3_text(r, "INPX"),
            extended_number=m3_text(r, "EXIN"),
            due_date=m3_date(r, "DUDT"),
            remaining=m3_decimal(r, "RAFC"),
        )


# -- deliveries ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryLine:
    line: int  # RIDL: order line number
    itno: str
    quantity: Decimal  # TRQT


@dataclass(frozen=True)
class Delivery:
    dlix: str
    orno: str
    warehouse: str
    tracking: str  # ETRN (may be empty until packed)
    carrier: str  # FWNO forwarding agent
    bill_of_lading: str  # NBOL
    status: str  # PGRS
    departure_date: date | None  # DSDT
    lines: tuple[DeliveryLine, ...]


# -- general ledger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalLine:
    dimensions: tuple[str, ...]  # AIT1..AIT7; AIT1 is the account
    amount: Decimal  # signed: debit positive, credit negative
    text: str = ""  # line text (cloudsuite: in the line's VTXT after the key)
    vat_code: str = ""  # VTCD, M3's VAT code of the line; "" none

    def __post_init__(self) -> None:
        if not isinstance(self.dimensions, tuple) or not 1 <= len(self.dimensions) <= AIT_COUNT:
            raise M3DataError(
                f"journal line: dimensions must be a tuple of 1..{AIT_COUNT} strings (AIT1..AIT7), "
                f"got {self.dimensions!r}"
            )
        if not self.dimensions[0]:
            raise M3DataError("journal line: AIT1 (the account) must be given")
        for i, dim in enumerate(self.dimensions, start=1):
            if not isinstance(dim, str):
                raise M3DataError(f"journal line: AIT{i} must be a string, got {type(dim).__name__}")
            check_length(f"journal line {self.dimensions[0]}", f"AIT{i}", dim, AIT_LENGTH)
        _check_amount(f"journal line {self.dimensions[0]}", "amount", self.amount)
        if not isinstance(self.vat_code, str) or not re.fullmatch(rf"[0-9]{{0,{VTCD_LENGTH}}}", self.vat_code):
            raise M3DataError(
                f"journal line {self.dimensions[0]}: VTCD {self.vat_code!r} must be up to {VTCD_LENGTH} digits"
            )
        if len(format(Decimal(self.amount), "f")) > CUAM_LENGTH:
            raise M3DataError(
                f"journal line {self.dimensions[0]}: amount {self.amount} does not fit CUAM N{CUAM_LENGTH}"
            )


@dataclass(frozen=True)
class JournalEntry:
    """One voucher. It cannot be built unless its lines net to zero and every field fits M3.

    ``key`` is the posting key (e.g. ``AMZ-10000000001-202410``): the voucher text starts with
    it, which is how :meth:`M3Operations.find_voucher` finds a voucher already posted.
    """

    key: str
    divi: str
    accounting_date: date
    currency: str
    text: str
    lines: tuple[JournalLine, ...]
    # Sent on every line (CRTP, ARAT): the exchange rate type, and the rate when one is fixed;
    # None leaves it to M3 (its default type; the division's rate for the accounting date).
    rate_type: int | None = None
    rate: Decimal | None = None

    def __post_init__(self) -> None:
        where = f"journal entry {self.key!r}"
        if self.rate_type is not None and not (isinstance(self.rate_type, int) and 0 < self.rate_type < 100):
            raise M3DataError(f"{where}: rate_type (CRTP N2) must be 1..99, got {self.rate_type!r}")
        if self.rate is not None and not (isinstance(self.rate, Decimal) and self.rate > 0):
            raise M3DataError(f"{where}: rate (ARAT) must be a positive Decimal, got {self.rate!r}")
        if not self.key or any(ch.isspace() for ch in self.key):
            raise M3DataError(f"{where}: key must be non-empty and contain no spaces")
        check_length(where, "DIVI", self.divi, DIVI_LENGTH, required=True)
        check_length(where, "CUCD", self.currency, CUCD_LENGTH, required=True)
        if isinstance(self.accounting_date, datetime) or not isinstance(self.accounting_date, date):
            raise M3DataError(f"{where}: accounting_date must be a datetime.date")
        check_length(where, "VTXT (key + text)", self.voucher_text, VTXT_LENGTH)
        if not isinstance(self.lines, tuple) or len(self.lines) < 2:
            raise M3DataError(f"{where}: a voucher needs at least two lines (a tuple of JournalLine)")
        if len(self.lines) > MAX_VOUCHER_LINES:
            raise M3DataError(f"{where}: {len(self.lines)} lines, M3 allows {MAX_VOUCHER_LINES} per voucher (NLIN N3)")
        for n, line in enumerate(self.lines, start=1):
            if not isinstance(line, JournalLine):
                raise M3DataError(f"{where}: line {n} is not a JournalLine")
            check_length(f"{where} line {n}", "VTXT (key + line text)", self.line_text(line), VTXT_LENGTH)
        if self.debit != self.credit:
            raise M3DataError(
                f"{where}: lines do not balance: debit {self.debit} credit {self.credit} "
                f"(difference {self.debit - self.credit})"
            )

    @property
    def voucher_text(self) -> str:
        return f"{self.key} {self.text}".rstrip() if self.text else self.key

    def line_text(self, line: JournalLine) -> str:
        return f"{self.key} {line.text}".rstrip() if line.text else self.voucher_text

    @property
    def debit(self) -> Decimal:
        return sum((Decimal(line.amount) for line in self.lines if line.amount > 0), Decimal(0))

    @property
    def credit(self) -> Decimal:
        return -sum((Decimal(line.amount) for line in self.lines if line.amount < 0), Decimal(0))


@dataclass(frozen=True)
class PostedVoucherLine:
    dimensions: tuple[str, ...]  # AIT1..AIT7, trailing blanks dropped
    amount: Decimal  # CUAM (signed)
    local_amount: Decimal  # ACAM
    text: str
    journal_sequence: int  # JSNO
    vat_code: str = ""  # VTCD
    rate_type: int | None = None  # CRTP
    rate: Decimal | None = None  # ARAT

    @property
    def added_by_m3(self) -> bool:
        """A line M3 added in local currency only (CUAM 0): its FAM function's rounding difference."""
        return self.amount == 0 and self.local_amount != 0

    @classmethod
    def from_m3(cls, r: Mapping[str, str]) -> PostedVoucherLine:
        dims = [m3_text(r, f"AIT{i}") for i in range(1, 8)]
        while dims and not dims[-1]:
            dims.pop()
        return cls(
            dimensions=tuple(dims),
            amount=m3_decimal(r, "CUAM"),
            local_amount=m3_decimal(r, "ACAM"),
            text=m3_text(r, "VTXT"),
            journal_sequence=m3_int(r, "JSNO"),
            vat_code=m3_text(r, "VTCD"),
            rate_type=m3_int(r, "CRTP") or None,
            rate=m3_decimal(r, "ARAT") or None,
        )


@dataclass(frozen=True)
class PostedVoucher:
    key: str  # posting key at the start of VTXT ("" if none)
    divi: str
    year: int
    vono: str  # voucher number (identifier: a string)
    series: str  # VSER
    accounting_date: date | None
    text: str  # VTXT
    currency: str
    debit: Decimal  # DSUM
    credit: Decimal  # CSUM as a positive amount (M3 may sign it)
    journal_no: str  # JRNO
    lines: tuple[PostedVoucherLine, ...] = ()
    already_posted: bool = False  # post_voucher found it in M3 instead of writing it


@dataclass(frozen=True)
class SubmittedVoucher:
    """A voucher handed to M3 as GLS840MI batch ``batch`` (KEY1) whose batch job had not booked
    it within the connector's wait. It is not failed and must never be sent again under another
    batch: the next :meth:`M3Operations.post_voucher` of the same entry finds it once booked."""

    key: str  # posting key
    divi: str
    batch: str  # GLS840MI KEY1
