"""OIS350MI invoices, MWS411MI / MWS410MI deliveries and tracking numbers."""

from __future__ import annotations

from .errors import does_not_exist, nok
from .registry import Call, Record, mi


@mi("OIS350MI", "LstInvHeadByCo")
def list_invoices_by_order(call: Call) -> list[Record]:
    if call.tx.one("SELECT 1 FROM orders WHERE orno = ? AND kind = 'order'", (call.get("ORNO"),)) is None:
        raise does_not_exist("WOR0303", "Customer order number", "ORNO", call.get("ORNO"))
    invoices = call.tx.records("SELECT data FROM invoices WHERE orno = ? ORDER BY yea4, ivno", (call.get("ORNO"),))
    if "DLIX" in call.inputs:
        invoices = [i for i in invoices if i["DLIX"] == call.get("DLIX")]
    return invoices


@mi("OIS350MI", "LstInvHead")
def list_invoices(call: Call) -> list[Record]:
    """Invoices of year YEA4, optionally within invoice dates FIVD..TIVD [ours]."""
    low, high = call.get("FIVD", "00000000"), call.get("TIVD", "99999999")
    if low > high:
        raise nok("WFIVD01", "From invoice date &1 is after to date &2", "FIVD", low, high)
    return call.tx.records(
        "SELECT data FROM invoices WHERE divi = ? AND yea4 = ? AND ivdt BETWEEN ? AND ? ORDER BY ivno",
        (call.divi, call.get("YEA4"), low, high),
    )


@mi("MWS411MI", "LstDelLnByOrd")
def list_delivery_lines(call: Call) -> list[Record]:
    if call.get("RORC") != "3":  # only customer orders exist in the sandbox
        raise nok("WRORC01", "Reference order category &1 is invalid", "RORC", call.get("RORC"))
    lines = call.tx.records("SELECT data FROM order_lines WHERE orno = ? ORDER BY ponr", (call.get("RIDN"),))
    return [
        {
            "CONO": call.cono,
            "DLIX": line["DLIX"],
            "RORC": "3",
            "RIDN": line["ORNO"],
            "RIDL": line["PONR"],
            "ITNO": line["ITNO"],
            "TRQT": line["DLQT"],
            "WHLO": line["WHLO"],
        }
        for line in lines
        if line.get("DLIX")
    ]


@mi("MWS410MI", "GetHead")
def get_delivery(call: Call) -> list[Record]:
    record = call.tx.record("SELECT data FROM deliveries WHERE dlix = ?", (call.get("DLIX"),))
    if record is None:
        raise does_not_exist("WDLIX03", "Delivery number", "DLIX", call.get("DLIX"))
    return [record]
