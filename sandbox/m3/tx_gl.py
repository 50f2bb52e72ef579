"""General ledger: GLS200MI/Add (brief, non-standard [ours]), GLS840MI batch (CloudSuite), GLS200MI reads.

Both posting paths end in ``book_voucher``, which refuses a voucher that does not net to zero
or falls in a closed period, so the two profiles book identical vouchers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from .errors import invalid, nok
from .metadata import FIELDS, number_error
from .money import fmt_amount
from .registry import Call, Record, mi
from .seed import VSER
from .store import Tx, dumps

AIT_FIELDS = ("AIT1", "AIT2", "AIT3", "AIT4", "AIT5", "AIT6", "AIT7")
GL_INTERFACE = "GLUPLOAD"


@dataclass(frozen=True)
class VoucherLine:
    aits: tuple[str, ...]
    amount: Decimal        # signed: debit positive, credit negative
    currency: str
    acdt: str
    vtxt: str


def _unbalanced(lines: list[VoucherLine], commit: bool = False) -> Exception | None:
    debit = sum((ln.amount for ln in lines if ln.amount > 0), Decimal(0))
    credit = -sum((ln.amount for ln in lines if ln.amount < 0), Decimal(0))
    if debit == credit:
        return None
    currency = lines[0].currency
    return nok("XBA0001", "Voucher does not balance: debit &1 credit &2", "CUAM",
               fmt_amount(debit, currency), fmt_amount(credit, currency), commit=commit)


def check_period(tx: Tx, divi: str, acdt: str) -> None:
    if tx.period_closed(divi, acdt):
        raise nok("WPE0101", "Accounting period &1 is closed", "ACDT", acdt[:6])


def check_voucher(tx: Tx, divi: str, lines: list[VoucherLine], commit: bool = False) -> None:
    """Every rule a voucher must pass before it is booked."""
    if len({ln.currency for ln in lines}) > 1:
        raise nok("WCUCD01", "Currency differs between lines of voucher &1", "CUCD", lines[0].vtxt, commit=commit)
    if len({ln.acdt for ln in lines}) > 1:
        raise nok("WACDT01", "Accounting date differs between lines of voucher &1", "ACDT", lines[0].vtxt,
                  commit=commit)
    check_period(tx, divi, lines[0].acdt)
    error = _unbalanced(lines, commit)
    if error is not None:
        raise error


def book_voucher(tx: Tx, divi: str, lines: list[VoucherLine], vdsc: str = "") -> Record:
    check_voucher(tx, divi, lines)
    first = lines[0]
    year = first.acdt[:4]
    vono = str(tx.next_number(f"voucher-{divi}-{year}", 1))
    jrno = str(tx.next_number(f"journal-{divi}-{year}", 1))
    currency = first.currency
    debit = sum((ln.amount for ln in lines if ln.amount > 0), Decimal(0))
    credit = sum((ln.amount for ln in lines if ln.amount < 0), Decimal(0))
    head = {"DIVI": divi, "VONO": vono, "YEA4": year, "VSER": VSER, "ACDT": first.acdt, "VTXT": first.vtxt,
            "CUCD": currency, "DSUM": fmt_amount(debit, currency), "CSUM": fmt_amount(credit, currency),
            "JRNO": jrno, "VDSC": vdsc}
    tx.execute("INSERT INTO vouchers (divi, yea4, vono, acdt, data) VALUES (?, ?, ?, ?, ?)",
               (divi, year, vono, first.acdt, dumps(head)))
    for jsno, line in enumerate(lines, start=1):
        amount = fmt_amount(line.amount, currency)
        record = {"DIVI": divi, "VONO": vono, "YEA4": year, "VSER": VSER, "JRNO": jrno, "JSNO": str(jsno),
                  **dict(zip(AIT_FIELDS, line.aits)), "CUCD": currency, "CUAM": amount,
                  "ACAM": amount,  # the sandbox books at rate 1: recorded = foreign amount [ours]
                  "DBCR": "D" if line.amount >= 0 else "C", "VTXT": line.vtxt, "ACDT": line.acdt}
        tx.execute("INSERT INTO voucher_lines (divi, yea4, vono, jsno, data) VALUES (?, ?, ?, ?, ?)",
                   (divi, year, vono, jsno, dumps(record)))
    return {"VONO": vono, "YEA4": year, "JRNO": jrno}


# ---- GLS200MI/Add: one call per line, buffered until NLIN lines have arrived ----------------

@mi("GLS200MI", "Add")
def add_voucher_line(call: Call) -> list[Record]:
    tx, divi, vtxt = call.tx, call.divi, call.get("VTXT")
    line_no, total = int(call.decimal("LINE")), int(call.decimal("NLIN"))
    if total < 1:
        raise invalid("NLIN", call.get("NLIN"))
    if not 1 <= line_no <= total:
        raise invalid("LINE", call.get("LINE"), f"is invalid - must be 1..{total}")
    check_period(tx, divi, call.get("ACDT"))
    if line_no == 1:  # a voucher starts again at line 1; drop what an earlier attempt left behind
        tx.execute("DELETE FROM gl_pending WHERE divi = ? AND vtxt = ?", (divi, vtxt))
    tx.execute("INSERT OR REPLACE INTO gl_pending (divi, vtxt, line, data) VALUES (?, ?, ?, ?)",
               (divi, vtxt, line_no, dumps(call.inputs)))
    pending = tx.records("SELECT data FROM gl_pending WHERE divi = ? AND vtxt = ? ORDER BY line", (divi, vtxt))
    if len(pending) < total:
        return []
    tx.execute("DELETE FROM gl_pending WHERE divi = ? AND vtxt = ?", (divi, vtxt))
    lines = [VoucherLine(tuple(p.get(a, "") for a in AIT_FIELDS), Decimal(p["CUAM"]), p["CUCD"], p["ACDT"], vtxt)
             for p in pending]
    # On failure the buffer stays cleared (commit=True): nothing of this voucher is booked.
    check_voucher(tx, divi, lines, commit=True)
    return [book_voucher(tx, divi, lines, call.get("VDSC"))]


# ---- GLS840MI: batch head, fixed-width I1 lines, control, update ------------------------

# "I1" + RNNO(9) + GRNR(8) + DIVI(3) + AIT1..AIT7(10 each) + CUCD(3) + CUAM(17) + ACDT(8) + VTXT(40)
I1_LAYOUT: tuple[tuple[str, int], ...] = (("RCID", 2), ("RNNO", 9), ("GRNR", 8), ("DIVI", 3),
                                          *((a, 10) for a in AIT_FIELDS), ("CUCD", 3), ("CUAM", 17),
                                          ("ACDT", 8), ("VTXT", 40))
I1_LENGTH = sum(width for _, width in I1_LAYOUT)


def parse_i1(parm: str) -> dict[str, str]:
    """Split a GLUPLOAD ``I1`` record; raises a NOK naming the first bad part."""
    if len(parm) > I1_LENGTH:
        raise invalid("PARM", parm[:20] + "...", f"is invalid - longer than {I1_LENGTH} characters")
    padded = parm.ljust(I1_LENGTH)
    fields: dict[str, str] = {}
    position = 0
    for name, width in I1_LAYOUT:
        fields[name] = padded[position:position + width].strip()
        position += width
    if fields["RCID"] != "I1":
        raise invalid("PARM", parm[:2], "is invalid - record must start with I1")
    for name in ("GRNR", "AIT1", "CUCD", "CUAM", "ACDT"):
        if not fields[name]:
            raise invalid("PARM", parm[:20] + "...", f"is invalid - {name} is blank")
    if number_error(FIELDS["CUAM"], fields["CUAM"]) is not None:  # M3's number grammar, not Python's Decimal
        raise invalid("PARM", fields["CUAM"], "is invalid - CUAM is not a number")
    if not (fields["ACDT"].isdigit() and len(fields["ACDT"]) == 8):
        raise invalid("PARM", fields["ACDT"], "is invalid - ACDT is not yyyyMMdd")
    return fields


def _batch(call: Call) -> dict[str, str]:
    row = call.tx.one("SELECT state, data FROM gl_batches WHERE cono = ? AND key1 = ?",
                      (call.get("CONO"), call.get("KEY1")))
    if row is None:
        raise nok("XRE0103", "Record does not exist: batch &1", "KEY1", call.get("KEY1"))
    if row["state"] == "updated":
        raise nok("XRE0104", "Record already exists: batch &1 is already updated", "KEY1", call.get("KEY1"))
    return {"state": row["state"], "DIVI": call.get("DIVI") or call.divi}


def _batch_groups(call: Call, divi: str) -> dict[str, list[VoucherLine]]:
    rows = call.tx.records("SELECT data FROM gl_batch_lines WHERE cono = ? AND key1 = ? ORDER BY line",
                           (call.get("CONO"), call.get("KEY1")))
    if not rows:
        raise nok("XRE0103", "Record does not exist: batch &1 has no lines", "KEY1", call.get("KEY1"))
    groups: dict[str, list[VoucherLine]] = defaultdict(list)
    for r in rows:
        groups[r["GRNR"]].append(VoucherLine(tuple(r[a] for a in AIT_FIELDS), Decimal(r["CUAM"]), r["CUCD"],
                                             r["ACDT"], r["VTXT"]))
    for lines in groups.values():
        check_voucher(call.tx, divi, lines)
    return groups


@mi("GLS840MI", "AddBatchHead")
def add_batch_head(call: Call) -> list[Record]:
    if call.get("INTN") != GL_INTERFACE:
        raise nok("WINTN03", "Interface &1 does not exist", "INTN", call.get("INTN"))
    if call.tx.one("SELECT 1 FROM gl_batches WHERE cono = ? AND key1 = ?", (call.get("CONO"), call.get("KEY1"))):
        raise nok("XRE0104", "Record already exists: batch &1", "KEY1", call.get("KEY1"))
    call.tx.execute("INSERT INTO gl_batches (cono, key1, state, data) VALUES (?, ?, 'open', ?)",
                    (call.get("CONO"), call.get("KEY1"), dumps(dict(call.inputs))))
    return []


@mi("GLS840MI", "AddBatchLine")
def add_batch_line(call: Call) -> list[Record]:
    batch = _batch(call)
    fields = parse_i1(call.get("PARM"))
    fields["DIVI"] = fields["DIVI"] or batch["DIVI"]
    line = int(call.decimal("LINE"))
    key = (call.get("CONO"), call.get("KEY1"), line)
    if call.tx.one("SELECT 1 FROM gl_batch_lines WHERE cono = ? AND key1 = ? AND line = ?", key):
        raise nok("XRE0104", "Record already exists: line &1", "LINE", line)
    call.tx.execute("INSERT INTO gl_batch_lines (cono, key1, line, data) VALUES (?, ?, ?, ?)",
                    (*key, dumps(fields)))
    call.tx.execute("UPDATE gl_batches SET state = 'open' WHERE cono = ? AND key1 = ?", key[:2])
    return []


@mi("GLS840MI", "CtrlBatch")
def control_batch(call: Call) -> list[Record]:
    batch = _batch(call)
    _batch_groups(call, batch["DIVI"])
    call.tx.execute("UPDATE gl_batches SET state = 'controlled' WHERE cono = ? AND key1 = ?",
                    (call.get("CONO"), call.get("KEY1")))
    return []


@mi("GLS840MI", "UpdBatch")
def update_batch(call: Call) -> list[Record]:
    batch = _batch(call)
    groups = _batch_groups(call, batch["DIVI"])
    booked = [book_voucher(call.tx, batch["DIVI"], groups[grnr], "GLUPLOAD") for grnr in sorted(groups)]
    call.tx.execute("UPDATE gl_batches SET state = 'updated' WHERE cono = ? AND key1 = ?",
                    (call.get("CONO"), call.get("KEY1")))
    return [booked[0]]


# ---- GLS200MI reads -----------------------------------------------------------------------

def _voucher_key(call: Call) -> tuple[str, str, str]:
    return call.get("DIVI"), call.get("YEA4"), str(int(call.decimal("VONO")))


@mi("GLS200MI", "GetVoucherHead")
def get_voucher_head(call: Call) -> list[Record]:
    head = call.tx.record("SELECT data FROM vouchers WHERE divi = ? AND yea4 = ? AND vono = ?", _voucher_key(call))
    if head is None or call.get("VSER", head["VSER"]) != head["VSER"]:
        raise nok("XRE0103", "Record does not exist: voucher &1", "VONO", call.get("VONO"))
    return [head]


@mi("GLS200MI", "LstVoucherLines")
def list_voucher_lines(call: Call) -> list[Record]:
    get_voucher_head(call)
    return call.tx.records("SELECT data FROM voucher_lines WHERE divi = ? AND yea4 = ? AND vono = ? ORDER BY jsno",
                           _voucher_key(call))


@mi("GLS200MI", "LstVouchersByDt")
def list_vouchers_by_date(call: Call) -> list[Record]:
    return call.tx.records(
        "SELECT data FROM vouchers WHERE divi = ? AND acdt BETWEEN ? AND ? ORDER BY acdt, yea4, CAST(vono AS INTEGER)",
        (call.get("DIVI"), call.get("FDAT"), call.get("TDAT")))
