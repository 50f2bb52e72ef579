"""The fixed-width ``I1`` record of GLS840MI/AddBatchLine (interface GLUPLOAD).

Layout (m3-api.md §4.5, m3-contract.md): ``"I1" + RNNO(9) + GRNR(8) + DIVI(3) + AIT1..AIT7(10
each) + CUCD(3) + CUAM(17, right-aligned, signed) + ACDT(yyyyMMdd) + VTXT(40)`` = 160 chars.
Numbers (RNNO, GRNR) are zero-padded, alpha fields left-aligned and space-padded. Shared wire
format: the sandbox may decode with :func:`decode_i1` so both sides agree on one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

# (name, width) in record order, after the 2-char record type.
I1_FIELDS: tuple[tuple[str, int], ...] = (
    ("RNNO", 9),
    ("GRNR", 8),
    ("DIVI", 3),
    ("AIT1", 10),
    ("AIT2", 10),
    ("AIT3", 10),
    ("AIT4", 10),
    ("AIT5", 10),
    ("AIT6", 10),
    ("AIT7", 10),
    ("CUCD", 3),
    ("CUAM", 17),
    ("ACDT", 8),
    ("VTXT", 40),
)
I1_LENGTH = 2 + sum(width for _, width in I1_FIELDS)  # 160


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
    """Build the 160-char PARM string for one voucher line."""
    if len(record.dimensions) > 7:
        raise I1RecordError(f"I1 record has {len(record.dimensions)} dimensions, at most 7 (AIT1..AIT7)")
    dims = tuple(record.dimensions) + ("",) * (7 - len(record.dimensions))
    amount = format(record.amount, "f")
    if len(amount) > 17:
        raise I1RecordError(f"I1 field CUAM {amount} is longer than 17 chars")
    parts = ["I1", _number("RNNO", record.rnno, 9), _number("GRNR", record.grnr, 8), _alpha("DIVI", record.divi, 3)]
    parts += [_alpha(f"AIT{i}", dim, 10) for i, dim in enumerate(dims, start=1)]
    parts += [
        _alpha("CUCD", record.currency, 3),
        amount.rjust(17),
        record.accounting_date.strftime("%Y%m%d"),
        _alpha("VTXT", record.text, 40),
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
        dimensions=tuple(values[f"AIT{i}"].strip() for i in range(1, 8)),
        currency=values["CUCD"].strip(),
        amount=amount,
        accounting_date=accounting_date,
        text=values["VTXT"].rstrip(),
    )
