"""The fixed-width ``I1`` record of GLS840MI/AddBatchLine (interface GLUPLOAD).

Layout (docs/m3-contract.md): ``"I1" + RNNO(9) + GRNR(8) + DIVI(3) + AIT1..AIT7(10
each) + CUCD(3) + CUAM(17, right-aligned, signed) + ACDT(yyyyMMdd) + VTXT(40) + VTCD(2) +
CRTP(2) + ARAT(13, right-aligned)`` = 177 chars. VTCD is the line's VAT code ("" none). CRTP
(exchange rate type) and ARAT (exchange rate) are blank when not given: M3 then takes the
division's rate of the default rate type for ACDT. The place of VTCD, CRTP and ARAT after VTXT is
[ours]: Infor's published layout we have ends at VTXT.
Numbers (RNNO, GRNR) are zero-padded, alpha fields left-aligned and space-padded. Shared wire
format: the sandbox may decode with :func:`decode_i1` so both sides agree on one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from reconciliation.m3_fields import (
    AIT_COUNT,
    AIT_LENGTH,
    ARAT_LENGTH,
    CRTP_LENGTH,
    CUAM_LENGTH,
    CUCD_LENGTH,
    DIVI_LENGTH,
    VTCD_LENGTH,
    VTXT_LENGTH,
)

# (name, width) in record order, after the 2-char record type.
I1_FIELDS: tuple[tuple[str, int], ...] = (
    ("RNNO", 9),
    ("GRNR", 8),
    ("DIVI", DIVI_LENGTH),
    *((f"AIT{i}", AIT_LENGTH) for i in range(1, AIT_COUNT + 1)),
    ("CUCD", CUCD_LENGTH),
    ("CUAM", CUAM_LENGTH),
    ("ACDT", 8),
    ("VTXT", VTXT_LENGTH),
    ("VTCD", VTCD_LENGTH),
    ("CRTP", CRTP_LENGTH),
    ("ARAT", ARAT_LENGTH),
)
_WIDTHS = dict(I1_FIELDS)
I1_LENGTH = 2 + sum(width for _, width in I1_FIELDS)  # 177


class I1RecordError(ValueError):
    """A value does not fit the I1 layout, or a record cannot be decoded."""


@dataclass(frozen=True)
class I1Record:
    rnno: int  # record number within the batch, 1..
    grnr: int  # group number: lines of one group form one voucher
    divi: str
    dimensions: tuple[str, ...]  # AIT1..AIT7 (missing trailing ones are blank)
    currency: str
    amount: Decimal  # signed: debit positive, credit negative
    accounting_date: date
    text: str
    vat_code: str = ""  # VTCD; "" none
    rate_type: int | None = None  # CRTP; None: blank (M3's default rate type)
    rate: Decimal | None = None  # ARAT; None: blank (M3 takes the division's rate for ACDT)


def _alpha(name: str, value: str, width: int) -> str:
    if len(value) > width:
        raise I1RecordError(f"I1 field {name} is {len(value)} chars, at most {width} allowed: {value!r}")
    return value.ljust(width)


def _number(name: str, value: int, width: int) -> str:
    text = str(value)
    if value < 0 or len(text) > width:
        raise I1RecordError(f"I1 field {name} must be 0..{10**width - 1}, got {value}")
    return text.zfill(width)


def encode_i1(record: I1Record) -> str:
    """Build the PARM string (``I1_LENGTH`` chars) for one voucher line."""
    if len(record.dimensions) > AIT_COUNT:
        raise I1RecordError(f"I1 record has {len(record.dimensions)} dimensions, at most {AIT_COUNT} (AIT1..AIT7)")
    dims = tuple(record.dimensions) + ("",) * (AIT_COUNT - len(record.dimensions))
    amount = format(record.amount, "f")
    if len(amount) > CUAM_LENGTH:
        raise I1RecordError(f"I1 field CUAM {amount} is longer than {CUAM_LENGTH} chars")
    parts = [
        "I1",
        _number("RNNO", record.rnno, _WIDTHS["RNNO"]),
        _number("GRNR", record.grnr, _WIDTHS["GRNR"]),
        _alpha("DIVI", record.divi, DIVI_LENGTH),
    ]
    parts += [_alpha(f"AIT{i}", dim, AIT_LENGTH) for i, dim in enumerate(dims, start=1)]
    parts += [
        _alpha("CUCD", record.currency, CUCD_LENGTH),
        amount.rjust(CUAM_LENGTH),
        record.accounting_date.strftime("%Y%m%d"),
        _alpha("VTXT", record.text, VTXT_LENGTH),
        _alpha("VTCD", record.vat_code, VTCD_LENGTH),
        "".rjust(CRTP_LENGTH) if record.rate_type is None else _number("CRTP", record.rate_type, CRTP_LENGTH),
        "".rjust(ARAT_LENGTH) if record.rate is None else _rate(record.rate),
    ]
    return "".join(parts)


def _rate(rate: Decimal) -> str:
    text = format(rate, "f")
    if not rate > 0 or len(text) > ARAT_LENGTH:
        raise I1RecordError(f"I1 field ARAT must be a positive rate of at most {ARAT_LENGTH} chars, got {text}")
    return text.rjust(ARAT_LENGTH)


def decode_i1(parm: str) -> I1Record:
    """Parse a PARM string built by :func:`encode_i1` (trailing blanks may have been trimmed)."""
    if not parm.startswith("I1"):
        raise I1RecordError(f"I1 record must start with 'I1', got {parm[:2]!r}")
    if len(parm) > I1_LENGTH:
        raise I1RecordError(f"I1 record is {len(parm)} chars, at most {I1_LENGTH}")
    padded = parm.ljust(I1_LENGTH)
    values: dict[str, str] = {}
    pos = 2
    for name, width in I1_FIELDS:
        values[name] = padded[pos : pos + width]
        pos += width
    try:
        amount = Decimal(values["CUAM"].strip())
    except InvalidOperation:
        raise I1RecordError(f"I1 field CUAM is not a number: {values['CUAM']!r}") from None
    try:
        accounting_date = datetime.strptime(values["ACDT"], "%Y%m%d").date()
    except ValueError:
        raise I1RecordError(f"I1 field ACDT is not yyyyMMdd: {values['ACDT']!r}") from None
    for name in ("RNNO", "GRNR"):
        if not values[name].isdigit():
            raise I1RecordError(f"I1 field {name} is not a number: {values[name]!r}")
    rate_type, rate = values["CRTP"].strip(), values["ARAT"].strip()
    if rate_type and not rate_type.isdigit():
        raise I1RecordError(f"I1 field CRTP is not a number: {values['CRTP']!r}")
    try:
        rate_value = Decimal(rate) if rate else None
    except InvalidOperation:
        raise I1RecordError(f"I1 field ARAT is not a number: {values['ARAT']!r}") from None
    return I1Record(
        rnno=int(values["RNNO"]),
        grnr=int(values["GRNR"]),
        divi=values["DIVI"].strip(),
        dimensions=tuple(values[f"AIT{i}"].strip() for i in range(1, AIT_COUNT + 1)),
        currency=values["CUCD"].strip(),
        amount=amount,
        accounting_date=accounting_date,
        text=values["VTXT"].rstrip(),
        vat_code=values["VTCD"].strip(),
        rate_type=int(rate_type) if rate_type else None,
        rate=rate_value,
    )
