"""Customer orders as the sandbox M3 keeps them, and the business simulation that moves them.

Shared by the OIS100MI handlers (both profiles) and the admin API, so the brief's
AddHead/AddLine and CloudSuite's batch flow build identical orders.

Amounts [ours]: ``SAPR`` is the net sales price per unit; a line's ``NLAM`` = ORQT × SAPR − DIA1..DIA6;
a return order's line (order type in ``RETURN_ORDER_TYPES``) has a negative ORQT and its discounts
reduce the credit: NLAM = ORQT × SAPR + DIA1..DIA6, so the invoice of a return order is a credit note;
the order's ``BRAM`` = Σ ORQT × SAPR, ``NTAM`` = Σ NLAM, ``VTAM`` = Σ VAT per line at the rate of
the customer's country (``money.vat_rate_pct``), ``TOPY`` = NTAM + VTAM. Invoices use the same figures.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from . import ledger
from .errors import does_not_exist, invalid, nok
from .money import fmt_amount, fmt_qty, vat
from .registry import Call, Record
from .seed import DIVI, FACI, RETURN_ORDER_TYPES
from .store import Tx, dumps
from .tx_customers import get_customer
from .tx_stock import check_warehouse, get_item

DISCOUNT_FIELDS = ("DIA1", "DIA2", "DIA3", "DIA4", "DIA5", "DIA6")
HEAD_FIELDS = ("ORDT", "RLDT", "CUDT", "CUOR", "YREF", "OREF", "PYNO", "ADID", "MODL", "TEDL", "TEPY", "NREF")
STATUS_ORDER = ("22", "33", "66", "77")


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d")


def get_order(tx: Tx, orno: str, kind: str = "order") -> Record:
    record = tx.record("SELECT data FROM orders WHERE orno = ? AND kind = ?", (orno, kind))
    if record is None:
        raise does_not_exist("WOR0303", "Customer order number", "ORNO", orno)
    return record


def order_lines(tx: Tx, orno: str) -> list[Record]:
    return tx.records("SELECT data FROM order_lines WHERE orno = ? ORDER BY ponr", (orno,))


def save_order(tx: Tx, head: Record, kind: str) -> None:
    tx.execute(
        "INSERT OR REPLACE INTO orders (orno, kind, cuno, cuor, data) VALUES (?, ?, ?, ?, ?)",
        (head["ORNO"], kind, head["CUNO"], head.get("CUOR", ""), dumps(head)),
    )


def save_line(tx: Tx, line: Record) -> None:
    tx.execute(
        "INSERT OR REPLACE INTO order_lines (orno, ponr, data) VALUES (?, ?, ?)",
        (line["ORNO"], int(line["PONR"]), dumps(line)),
    )


def create_head(call: Call, kind: str) -> Record:
    """Validate and store an order head; ``kind`` "batch" gets a temporary number (CloudSuite)."""
    tx = call.tx
    customer = get_customer(tx, call.get("CUNO"))
    if customer.get("STAT") == "90" and kind != "batch":  # a batch order is checked when it is confirmed
        raise nok("WCU0290", "Customer &1 is blocked", "CUNO", customer["CUNO"])
    ortp = call.get("ORTP") or customer.get("ORTP", "AMZ")
    order_type = tx.one("SELECT whlo FROM order_types WHERE ortp = ?", (ortp,))
    if order_type is None:
        raise does_not_exist("WTT0403", "Order type", "ORTP", ortp)
    whlo = call.get("WHLO") or order_type["whlo"]
    check_warehouse(tx, whlo)
    if call.get("FACI", FACI) != FACI:
        raise does_not_exist("WFAC303", "Facility", "FACI", call.get("FACI"))
    currency = call.get("CUCD") or customer["CUCD"]
    number = tx.next_number("batch_order" if kind == "batch" else "order", 1)
    orno = f"{'9' if kind == 'batch' else '1'}{number:09d}"
    head = {
        "CONO": call.cono,
        "DIVI": call.divi or DIVI,
        "ORNO": orno,
        "ORTP": ortp,
        "FACI": FACI,
        "WHLO": whlo,
        "CUNO": customer["CUNO"],
        "CUCD": currency,
        "STAT": "15" if kind == "batch" else "20",
        "ORSL": "",
        "ORST": "",
        "ORDT": today(),
        **{f: "" for f in HEAD_FIELDS if f != "ORDT"},
    }
    head.update({f: call.inputs[f] for f in HEAD_FIELDS if f in call.inputs})
    _set_totals(head, [], customer["CSCD"])
    save_order(tx, head, kind)
    return head


def add_line(call: Call, kind: str) -> Record:
    tx = call.tx
    head = get_order(tx, call.get("ORNO"), kind)
    item = get_item(tx, call.get("ITNO"))
    if item["STAT"] != "20" and kind != "batch":  # a batch line is checked when the order is confirmed
        raise nok("XIT0107", "Item number is not permitted - status is &1", "ITNO", item["STAT"])
    quantity = call.decimal("ORQT")
    returned = head["ORTP"] in RETURN_ORDER_TYPES
    if returned and quantity >= 0:
        raise invalid("ORQT", call.get("ORQT"), "is invalid - a return order's quantity must be less than zero")
    if not returned and quantity <= 0:
        raise invalid("ORQT", call.get("ORQT"), "is invalid - ordered quantity must be greater than zero")
    whlo = call.get("WHLO") or head["WHLO"]
    check_warehouse(tx, whlo)
    currency = head["CUCD"]
    if "SAPR" in call.inputs:
        price = call.decimal("SAPR")
    else:
        row = tx.one("SELECT sapr FROM prices WHERE itno = ? AND cucd = ?", (item["ITNO"], currency))
        if row is None:
            raise nok(
                "WSAPR02", "Sales price must be entered: no price for item &1 in &2", "SAPR", item["ITNO"], currency
            )
        price = Decimal(row["sapr"])
    if price < 0:
        raise nok("XNU0003", "Negative value is not permitted", "SAPR")
    discounts = {f: call.decimal(f) for f in DISCOUNT_FIELDS}
    if any(d < 0 for d in discounts.values()):
        raise nok("XNU0003", "Negative value is not permitted", next(f for f, d in discounts.items() if d < 0))
    lines = order_lines(tx, head["ORNO"])
    ponr = (max((int(line["PONR"]) for line in lines), default=0)) + 1
    # Discounts are given positive and always make the line's amount smaller: a credit less.
    net = quantity * price - (-1 if returned else 1) * sum(discounts.values(), Decimal(0))
    line = {
        "CONO": head["CONO"],
        "DIVI": head["DIVI"],
        "ORNO": head["ORNO"],
        "PONR": str(ponr),
        "POSX": "0",
        "ITNO": item["ITNO"],
        "ITDS": call.get("ITDS") or item["ITDS"],
        "ORQT": fmt_qty(quantity),
        "WHLO": whlo,
        "ORST": "22",
        "SAPR": fmt_amount(price, currency),
        **{f: fmt_amount(d, currency) for f, d in discounts.items()},
        "NLAM": fmt_amount(net, currency),
        "ALQT": "0",
        "DLQT": "0",
        "IVQT": "0",
        "CUOR": call.get("CUOR") or head.get("CUOR", ""),
        "CUCD": currency,
        "DWDT": call.get("DWDT"),
        "DLIX": "",
    }
    save_line(tx, line)
    _refresh_head(tx, head, kind, [*lines, line])
    return line


# The batch order status Confirm leaves a rejected order at (m3-api.md 4.1: rejected batch
# orders keep 15, 20, 25, 30 or 55; 90 = customer order created). Which of them M3 picks per
# error is not documented: 30 for every error here [ours].
BATCH_REJECTED = "30"
BATCH_CREATED = "90"


def batch_errors(tx: Tx, head: Record, lines: list[Record]) -> list[Record]:
    """What M3's batch order check finds (OIS275's error messages; OIS100MI/LstErrMsgOrder):
    a blocked customer, a line's item not released for sale. LEVL 1 = head, 2 = line [ours]."""
    errors = []
    customer = get_customer(tx, head["CUNO"])
    if customer.get("STAT") == "90":
        errors.append(
            {"LEVL": "1", "MDTA": head["CUNO"], "MSID": "WCU0290", "TX60": f"Customer {head['CUNO']} is blocked"}
        )
    for line in lines:
        item = get_item(tx, line["ITNO"])
        if item["STAT"] != "20":
            text = f"Item number {line['ITNO']} is not permitted - status is {item['STAT']}"
            errors.append({"LEVL": "2", "MDTA": f"{line['PONR']} {line['ITNO']}", "MSID": "XIT0107", "TX60": text})
    return errors


def confirm_batch(tx: Tx, batch_orno: str) -> Record:
    """OIS100MI/Confirm: turn a batch order into a real one under a new number (STAT 90), or,
    when M3's check finds errors, leave it in OIS275 at a status below 90 with its messages
    (answered OK all the same: the caller must read the status)."""
    head = get_order(tx, batch_orno, "batch")
    lines = order_lines(tx, batch_orno)
    if not lines:
        raise nok("WPONR02", "Order &1 has no lines", "ORNO", batch_orno)
    errors = batch_errors(tx, head, lines)
    if errors:
        head = {**head, "STAT": BATCH_REJECTED, "ERRORS": json.dumps(errors)}  # read by LstErrMsgOrder
        save_order(tx, head, "batch")
        return head
    orno = f"1{tx.next_number('order', 1):09d}"
    tx.execute("DELETE FROM orders WHERE orno = ?", (batch_orno,))
    tx.execute("DELETE FROM order_lines WHERE orno = ?", (batch_orno,))
    tx.execute("UPDATE order_addresses SET orno = ? WHERE orno = ?", (orno, batch_orno))
    head = {**head, "ORNO": orno, "STAT": "20"}
    head.pop("ERRORS", None)
    moved = [{**line, "ORNO": orno} for line in lines]
    for line in moved:
        save_line(tx, line)
    _refresh_head(tx, head, "order", moved)
    return head


# The first line status M3 will not delete: the line is on a picking list (44), delivered (66) or
# invoiced (77). Before it, deleting a line releases its allocation (m3-api.md 4.1 statuses).
UNDELETABLE_FROM = "44"


def delete_line(tx: Tx, orno: str, ponr: str, posx: str = "0") -> None:
    """OIS100MI/DelLine: remove a line not yet on a picking list, releasing its allocated stock."""
    head = get_order(tx, orno)
    wanted = (Decimal(ponr), Decimal(posx or "0"))  # N fields: validated as numbers before the handler runs
    line = next((x for x in order_lines(tx, orno) if (Decimal(x["PONR"]), Decimal(x["POSX"] or "0")) == wanted), None)
    if line is None:
        raise does_not_exist("WPONR03", "Order line", "PONR", ponr)
    _refuse_undeletable(line)
    _remove_line(tx, line)
    _refresh_head(tx, head, "order", order_lines(tx, orno))


def delete_head(tx: Tx, orno: str) -> None:
    """OIS100MI/DelHead: remove the order with its lines (allocations released); refused while a
    line is on a picking list or delivered."""
    get_order(tx, orno)
    lines = order_lines(tx, orno)
    for line in lines:
        _refuse_undeletable(line)
    for line in lines:
        _remove_line(tx, line)
    tx.execute("DELETE FROM order_addresses WHERE orno = ?", (orno,))
    tx.execute("DELETE FROM orders WHERE orno = ? AND kind = 'order'", (orno,))


def _refuse_undeletable(line: Record) -> None:
    if line["ORST"] >= UNDELETABLE_FROM:
        # [ours] code and text, in M3's pattern (W + field + 01 "invalid"; "- status is &1" as XIT0107)
        raise nok("WPONR01", "Order line &1 cannot be deleted - status is &2", "PONR", line["PONR"], line["ORST"])


def _remove_line(tx: Tx, line: Record) -> None:
    allocated = int(Decimal(line.get("ALQT") or "0"))
    if allocated:
        tx.execute(
            "UPDATE balances SET alqt = max(alqt - ?, 0) WHERE whlo = ? AND itno = ?",
            (allocated, line["WHLO"], line["ITNO"]),
        )
    tx.execute("DELETE FROM order_lines WHERE orno = ? AND ponr = ?", (line["ORNO"], int(line["PONR"])))


def order_totals(lines: list[Record], currency: str, country: str) -> dict[str, Decimal]:
    gross = sum((Decimal(line["ORQT"]) * Decimal(line["SAPR"]) for line in lines), Decimal(0))
    net = sum((Decimal(line["NLAM"]) for line in lines), Decimal(0))
    tax = sum((vat(Decimal(line["NLAM"]), currency, country) for line in lines), Decimal(0))
    return {"BRAM": gross, "NTAM": net, "VTAM": tax, "TOPY": net + tax}


def _customer_country(tx: Tx, head: Record) -> str:
    return get_customer(tx, head["CUNO"]).get("CSCD", "")


def _set_totals(head: Record, lines: list[Record], country: str) -> None:
    currency = head["CUCD"]
    head.update({k: fmt_amount(v, currency) for k, v in order_totals(lines, currency, country).items()})
    statuses = sorted(line["ORST"] for line in lines)
    head["ORSL"], head["ORST"] = (statuses[0], statuses[-1]) if statuses else ("", "")


def _refresh_head(tx: Tx, head: Record, kind: str, lines: list[Record]) -> None:
    _set_totals(head, lines, _customer_country(tx, head))
    save_order(tx, head, kind)


# ---- business simulation (admin API) -------------------------------------------------------


class SimulationError(Exception):
    """An admin request that cannot be carried out (unknown order, bad target status)."""


def advance_order(tx: Tx, orno: str, to: str, date: str | None = None) -> str:
    """Move order ``orno`` as far as status ``to`` (33 allocate, 66 deliver, 77 invoice); returns the head status."""
    if to not in STATUS_ORDER[1:]:
        raise SimulationError(f"target status {to!r} is not one of 33, 66, 77")
    head = tx.record("SELECT data FROM orders WHERE orno = ? AND kind = 'order'", (orno,))
    if head is None:
        raise SimulationError(f"customer order {orno!r} does not exist")
    lines = order_lines(tx, orno)
    if not lines:
        raise SimulationError(f"customer order {orno!r} has no lines")
    day = date or today()
    steps = {"33": _allocate, "66": _deliver, "77": _invoice}
    for status in STATUS_ORDER[1 : STATUS_ORDER.index(to) + 1]:
        if min(line["ORST"] for line in lines) < status:
            steps[status](tx, head, lines, day)
            for line in lines:
                line["ORST"] = status
                save_line(tx, line)
    _refresh_head(tx, head, "order", lines)
    return head["ORSL"]


def _allocate(tx: Tx, head: Record, lines: list[Record], day: str) -> None:
    if head["ORTP"] in RETURN_ORDER_TYPES:
        return  # goods coming back are received, not allocated
    for line in lines:
        qty = int(Decimal(line["ORQT"]))
        tx.execute("UPDATE balances SET alqt = alqt + ? WHERE whlo = ? AND itno = ?", (qty, line["WHLO"], line["ITNO"]))
        line["ALQT"] = line["ORQT"]


def _deliver(tx: Tx, head: Record, lines: list[Record], day: str) -> None:
    """Ship the order's lines, or for a return order receive them back: a receipt, no carrier nor tracking."""
    dlix = str(tx.next_number("delivery", 10000000001))
    returned = head["ORTP"] in RETURN_ORDER_TYPES
    carrier = "" if returned else "UPS" if head["CUCD"] == "USD" else "DHL"
    delivery = {
        "CONO": head["CONO"],
        "DIVI": head["DIVI"],
        "DLIX": dlix,
        "RORC": "3",
        "RIDN": head["ORNO"],
        "WHLO": head["WHLO"],
        "ETRN": "" if returned else f"{'1Z' if carrier == 'UPS' else 'JJD'}{dlix}{head['ORNO'][-4:]}",
        "NBOL": "",
        "FWNO": carrier,
        "CONN": str(tx.next_number("shipment", 1000001)),
        "PGRS": "60",
        "DSDT": day,
        "IVNO": "",
        "MODL": "",
    }
    tx.execute("INSERT INTO deliveries (dlix, orno, data) VALUES (?, ?, ?)", (dlix, head["ORNO"], dumps(delivery)))
    for line in lines:
        qty = int(Decimal(line["ORQT"]))  # negative on a return: the stock grows
        tx.execute(
            "UPDATE balances SET stqt = stqt - ?, alqt = max(alqt - ?, 0) WHERE whlo = ? AND itno = ?",
            (qty, max(qty, 0), line["WHLO"], line["ITNO"]),
        )
        line.update({"ALQT": "0", "DLQT": line["ORQT"], "DLIX": dlix})


def _invoice(tx: Tx, head: Record, lines: list[Record], day: str) -> None:
    currency = head["CUCD"]
    totals = order_totals(lines, currency, _customer_country(tx, head))
    due = (dt.datetime.strptime(day, "%Y%m%d") + dt.timedelta(days=30)).strftime("%Y%m%d")
    dlix = lines[0].get("DLIX", "")
    ivno = _book_invoice(tx, head, day, due, totals["NTAM"], totals["VTAM"], DLIX=dlix)
    delivery = tx.record("SELECT data FROM deliveries WHERE dlix = ?", (dlix,))
    if delivery is not None:
        delivery.update({"PGRS": "70", "IVNO": ivno})
        tx.execute("UPDATE deliveries SET data = ? WHERE dlix = ?", (dumps(delivery), dlix))
    for line in lines:
        line["IVQT"] = line["ORQT"]


def _book_invoice(tx: Tx, head: Record, day: str, due: str, net: Decimal, tax: Decimal, **extra: str) -> str:
    """An invoice (a credit note: negative ``net`` and ``tax``) of order ``head`` in its
    division's series, stored and opened in the customer ledger; returns its IVNO."""
    currency, year = head["CUCD"], day[:4]
    ivno = str(tx.next_number(f"invoice-{head['DIVI']}-{year}", 100000001))
    gross = net + tax
    invoice = {
        "CONO": head["CONO"],
        "DIVI": head["DIVI"],
        "ORNO": head["ORNO"],
        "DLIX": "",
        "IVNO": ivno,
        "IVDT": day,
        "CUNO": head["CUNO"],
        "PYNO": head.get("PYNO") or head["CUNO"],
        "CUCD": currency,
        "YEA4": year,
        "AMT1": fmt_amount(gross, currency),
        "AMT2": fmt_amount(net, currency),
        "VTAM": fmt_amount(tax, currency),
        "INPX": "AZ",
        "EXIN": f"AZ{ivno}",
        "DUDT": due,
        "RAFC": fmt_amount(gross, currency),
        "CUOR": head.get("CUOR", ""),
        **extra,
    }
    tx.execute(
        "INSERT INTO invoices (divi, yea4, ivno, orno, ivdt, data) VALUES (?, ?, ?, ?, ?, ?)",
        (head["DIVI"], year, ivno, head["ORNO"], day, dumps(invoice)),
    )
    ledger.open_item(tx, invoice)  # a credit note is an open item of the customer ledger too
    return ivno


def credit_order(tx: Tx, orno: str, net: Decimal, tax: Decimal, date: str | None = None, reference: str = "") -> str:
    """A credit note for invoiced order ``orno`` (a return or refund): an invoice of the same
    series with negative amounts, ``net`` and ``tax`` given positive. ``reference`` (YREF [ours],
    e.g. Amazon's adjustment id) makes it idempotent: a second request with it returns the first
    credit note's number. Returns the credit note's IVNO."""
    head = tx.record("SELECT data FROM orders WHERE orno = ? AND kind = 'order'", (orno,))
    if head is None:
        raise SimulationError(f"customer order {orno!r} does not exist")
    invoices = tx.records("SELECT data FROM invoices WHERE orno = ? ORDER BY yea4, ivno", (orno,))
    if not any(Decimal(i["AMT1"]) >= 0 for i in invoices):
        raise SimulationError(f"customer order {orno!r} has no invoice to credit")
    if net < 0 or tax < 0:
        raise SimulationError("net and tax of a credit note are given as positive amounts")
    if reference:
        for invoice in invoices:
            if invoice.get("YREF") == reference:
                return str(invoice["IVNO"])
    day = date or today()
    return _book_invoice(tx, head, day, day, -net, -tax, YREF=reference)
