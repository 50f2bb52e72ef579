"""The fixed-width ``I1`` record of GLS840MI/AddBatchLine (interface GLUPLOAD).

Layout (docs/m3-contract.md): ``"I1" + RNNO(9) + GRNR(8) + DIVI(3) + AIT1..AIT7(10
each) + CUCD(3) + CUAM(17, right-aligned, signed) + ACDT(yyyyMMdd) + VTXT(40) + VTCD(2)`` = 162 chars
(VTCD, the line's VAT code, after VTXT is [ours]: docs/m3-contract.md).
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
)
_WIDTHS = dict(I1_FIELDS)
I1_LENGTH = 2 + sum(width for _, width in I1_FIELDS)  # 162


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
    ]
    return "".join(parts)


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
    )
