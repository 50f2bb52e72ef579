"""Customer ledger: ARS200MI reads (Infor's "Customer invoice interface") and ARS040MI payment
batches (Infor's "Customer payment interface"); docs/m3-contract.md "Customer ledger".

Program, transaction and field names are Infor's (m3h5 metadata); what a batch does when it is
controlled is ours: ``ControlBatch`` books it (pays each line's item and books one voucher:
receivable credited, the line's accounting string debited, each charge debited to its own
accounting string and deducted from the first line's) and answers its voucher; asked again it
answers the same voucher, never pays twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from . import ledger, metadata
from .errors import does_not_exist, invalid, nok
from .registry import Call, Record, mi
from .store import Tx, dumps
from .tx_gl import AIT_FIELDS, VoucherLine, book_voucher, check_period

_ITEM_OUT = ("YEA4", "JRNO", "JSNO", "CINO", "TRCD", "INYR", "RECO", "REDE", "PYNO", "IVDT", "DUDT", "TDSC")
OPEN, UPDATED = "open", "updated"
PAYMENT_TEXT = "Payment batch"  # [ours] VTXT of a payment batch's voucher: "Payment batch {PBID}"


def _items(call: Call, sql: str, params: tuple[str, ...]) -> list[Record]:
    items = call.tx.records(sql, params)
    if call.get("AAC0") == "1":  # only open invoices
        items = [i for i in items if i["RECO"] != ledger.SETTLED]
    if "IVDT" in call.inputs:
        items = [i for i in items if i["IVDT"] >= call.get("IVDT")]
    return [{**{k: i.get(k, "") for k in _ITEM_OUT}, "CUNO": i["CUNO"]} for i in items]


@mi("ARS200MI", "LstInvoices")
def list_customer_invoices(call: Call) -> list[Record]:
    if call.tx.one("SELECT 1 FROM customers WHERE cuno = ?", (call.get("CUNO"),)) is None:
        raise does_not_exist("WCU0203", "Customer number", "CUNO", call.get("CUNO"))
    return _items(
        call, "SELECT data FROM ar_items WHERE divi = ? AND cuno = ? ORDER BY inyr, cino", (call.divi, call.get("CUNO"))
    )


@mi("ARS200MI", "LstInvByDivi")
def list_division_invoices(call: Call) -> list[Record]:
    low, high = call.get("FDIV", call.divi), call.get("TDIV", call.get("FDIV", call.divi))
    items = _items(
        call, "SELECT data FROM ar_items WHERE divi BETWEEN ? AND ? ORDER BY divi, cuno, inyr, cino", (low, high)
    )
    return [i for i in items if call.get("CUNO", i["CUNO"]) == i["CUNO"]]


@mi("ARS200MI", "GetInvTotInfo")
def invoice_totals(call: Call) -> list[Record]:
    item = _item(call.tx, call.divi, call.get("CUNO"), call.get("CINO"), call.get("INYR"))
    return [item]


def _item(tx: Tx, divi: str, cuno: str, cino: str, inyr: str) -> dict[str, str]:
    item = tx.record(
        "SELECT data FROM ar_items WHERE divi = ? AND cuno = ? AND cino = ? AND inyr = ?", (divi, cuno, cino, inyr)
    )
    if item is None:
        raise nok("WCINO03", "Invoice number &1 &2 does not exist for customer &3", "CINO", cino, inyr, cuno)
    return item


def _batch(call: Call) -> dict[str, str]:
    batch = call.tx.record("SELECT data FROM ar_batches WHERE divi = ? AND pbid = ?", (call.divi, call.get("PBID")))
    if batch is None:
        raise does_not_exist("WPBID03", "Payment batch", "PBID", call.get("PBID"))
    return batch


@mi("ARS040MI", "AddBatchHead")
def add_payment_batch(call: Call) -> list[Record]:
    pbid = call.get("PBID")
    if call.tx.one("SELECT 1 FROM ar_batches WHERE divi = ? AND pbid = ?", (call.divi, pbid)) is not None:
        raise nok("XRE0104", "Record already exists: payment batch &1", "PBID", pbid)
    acdt = call.get("ACDT", dt.date.today().strftime("%Y%m%d"))
    check_period(call.tx, call.divi, acdt)
    head = {"DIVI": call.divi, "PBID": pbid, "BOPE": call.get("BOPE"), "ACDT": acdt, "BAAN": call.get("BAAN")}
    call.tx.execute(
        "INSERT INTO ar_batches (divi, pbid, state, data) VALUES (?, ?, ?, ?)", (call.divi, pbid, OPEN, dumps(head))
    )
    return [{"PBID": pbid}]


@mi("ARS040MI", "AddBatchLine")
def add_payment_line(call: Call) -> list[Record]:
    batch = _batch(call)
    if batch.get("VONO"):
        raise nok("XRE0104", "Record already exists: payment batch &1 is already updated", "PBID", call.get("PBID"))
    trno = call.get("TRNO")
    if call.tx.one(
        "SELECT 1 FROM ar_batch_lines WHERE divi = ? AND pbid = ? AND trno = ?",
        (call.divi, call.get("PBID"), int(trno)),
    ):
        raise nok("XRE0104", "Record already exists: line &1", "TRNO", trno)
    item = _item(call.tx, call.divi, call.get("CUNO"), call.get("CINO"), call.get("INYR"))
    if call.get("CUCD", item["CUCD"]) != item["CUCD"]:
        raise invalid("CUCD", call.get("CUCD"), f"differs from the invoice's currency {item['CUCD']}")
    if not call.get("AIT1"):
        raise nok("WAIT102", "Accounting dimension 1 must be entered", "AIT1")  # [ours] the debit side
    line = {k: call.get(k) for k in ("PBID", "TRNO", "CINO", "INYR", "CUNO", "PYAM", "ARAT", *AIT_FIELDS)}
    line["CUCD"] = item["CUCD"]
    call.tx.execute(
        "INSERT INTO ar_batch_lines (divi, pbid, trno, data) VALUES (?, ?, ?, ?)",
        (call.divi, call.get("PBID"), int(trno), dumps(line)),
    )
    return []


@mi("ARS040MI", "AddBatchCharge")
def add_payment_charge(call: Call) -> list[Record]:
    """A charge on the payment (bank charges, payment differences written off): CHAM is debited to
    the charge's accounting string and deducted from what the payment debits [ours: one charge per
    CHRI and batch, so a second is refused; AIT1..AIT7 name the charge's account, required]."""
    batch = _batch(call)
    pbid, chri = call.get("PBID"), call.get("CHRI")
    if batch.get("VONO"):
        raise nok("XRE0104", "Record already exists: payment batch &1 is already updated", "PBID", pbid)
    if call.tx.one("SELECT 1 FROM ar_batch_charges WHERE divi = ? AND pbid = ? AND chri = ?", (call.divi, pbid, chri)):
        raise nok("XRE0104", "Record already exists: charge &1", "CHRI", chri)
    if not call.get("AIT1"):
        raise nok("WAIT102", "Accounting dimension 1 must be entered", "AIT1")
    charge = {k: call.get(k) for k in ("CHRI", "CHAM", "CUCD", "ARAT", *AIT_FIELDS)}
    call.tx.execute(
        "INSERT INTO ar_batch_charges (divi, pbid, chri, data) VALUES (?, ?, ?, ?)",
        (call.divi, pbid, chri, dumps(charge)),
    )
    return []


@mi("ARS040MI", "ControlBatch")
def control_payment_batch(call: Call) -> list[Record]:
    batch = _batch(call)
    if batch.get("VONO"):  # booked already: the same answer again [ours]
        return [{k: batch[k] for k in ("PBID", "VONO", "YEA4", "JRNO")}]
    lines = call.tx.records(
        "SELECT data FROM ar_batch_lines WHERE divi = ? AND pbid = ? ORDER BY trno", (call.divi, call.get("PBID"))
    )
    if not lines:
        raise nok("WPBID05", "Payment batch &1 has no lines", "PBID", call.get("PBID"))
    if len({ln["CUCD"] for ln in lines}) > 1:
        raise nok("WCUCD01", "Currency differs between lines of payment batch &1", "CUCD", call.get("PBID"))
    acdt, currency = batch["ACDT"], lines[0]["CUCD"]
    # Summed per (accounting string, rate): the payment's rate (ARAT, else the division's for
    # ACDT) converts both sides, and M3's rounding line (book_voucher) balances it in local
    # currency [ours: a real M3 credits the receivable at the invoice's rate and books the
    # realised exchange difference to its currency gain/loss accounts].
    sums: dict[tuple[tuple[str, ...], str], Decimal] = {}
    for line in lines:
        item = _item(call.tx, call.divi, line["CUNO"], line["CINO"], line["INYR"])
        amount, rate = Decimal(line["PYAM"]), line.get("ARAT", "")
        ledger.pay(call.tx, item, amount, acdt)
        credit = (item["ACCT"], "", item["AIT3"], "", "", "", "")
        debit = tuple(line.get(f, "") for f in AIT_FIELDS)
        sums[debit, rate] = sums.get((debit, rate), Decimal(0)) + amount
        sums[credit, rate] = sums.get((credit, rate), Decimal(0)) - amount
    # Charges: debited to their own string, deducted from the first line's (what was received).
    first = tuple(lines[0].get(f, "") for f in AIT_FIELDS)
    charges = call.tx.records(
        "SELECT data FROM ar_batch_charges WHERE divi = ? AND pbid = ? ORDER BY chri", (call.divi, call.get("PBID"))
    )
    for charge in charges:
        if charge.get("CUCD") and charge["CUCD"] != currency:
            raise nok("WCUCD01", "Currency differs between lines of payment batch &1", "CUCD", call.get("PBID"))
        amount, rate = Decimal(charge["CHAM"]), charge.get("ARAT", "")
        aits = tuple(charge.get(f, "") for f in AIT_FIELDS)
        sums[aits, rate] = sums.get((aits, rate), Decimal(0)) + amount
        sums[first, rate] = sums.get((first, rate), Decimal(0)) - amount
    text = f"{PAYMENT_TEXT} {call.get('PBID')}"
    voucher_lines = [
        VoucherLine(aits, amount, currency, acdt, text, arat=rate) for (aits, rate), amount in sums.items() if amount
    ]
    booked = book_voucher(call.tx, call.divi, voucher_lines, vdsc="ARS040") if voucher_lines else {}
    batch.update({"VONO": booked.get("VONO", ""), "YEA4": booked.get("YEA4", acdt[:4]), "JRNO": booked.get("JRNO", "")})
    call.tx.execute(
        "UPDATE ar_batches SET state = ?, data = ? WHERE divi = ? AND pbid = ?",
        (UPDATED, dumps(batch), call.divi, call.get("PBID")),
    )
    return [{k: batch[k] for k in ("PBID", "VONO", "YEA4", "JRNO")}]


@mi("MRS001MI", "LstTransactions")
def list_transactions(call: Call) -> list[Record]:
    """The transactions a program offers (MRS001MI, Infor's MI metadata program)."""
    program = call.get("MINM").upper()
    found = sorted(t for p, t in metadata.TRANSACTIONS if p == program)
    if not found:
        raise does_not_exist("WMINM03", "Program", "MINM", program)
    return [{"MINM": program, "TRNM": t} for t in found]
