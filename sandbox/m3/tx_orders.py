"""OIS100MI — customer orders: the brief's AddHead/AddLine and CloudSuite's batch flow."""

from __future__ import annotations

import json

from . import orders
from .errors import nok
from .registry import Call, Record, mi
from .store import dumps
from .tx_customers import get_customer


@mi("OIS100MI", "AddHead")
def add_head(call: Call) -> list[Record]:
    return [{"ORNO": orders.create_head(call, "order")["ORNO"]}]


@mi("OIS100MI", "AddLine")
def add_line(call: Call) -> list[Record]:
    line = orders.add_line(call, "order")
    return [{k: line[k] for k in ("ORNO", "PONR", "POSX")}]


@mi("OIS100MI", "AddBatchHead")
def add_batch_head(call: Call) -> list[Record]:
    return [{"ORNO": orders.create_head(call, "batch")["ORNO"]}]


@mi("OIS100MI", "AddBatchLine")
def add_batch_line(call: Call) -> list[Record]:
    line = orders.add_line(call, "batch")
    return [{"PONR": line["PONR"], "POSX": line["POSX"], "ATNR": "0"}]


@mi("OIS100MI", "AddBatchAddress")
def add_batch_address(call: Call) -> list[Record]:
    orders.get_order(call.tx, call.get("ORNO"), "batch")
    adrt = call.get("ADRT")
    if adrt not in {"1", "3"}:  # 1 = delivery address, 3 = payer/invoice address
        raise nok("WADRT01", "Address type &1 is invalid", "ADRT", adrt)
    call.tx.execute(
        "INSERT OR REPLACE INTO order_addresses (orno, adrt, data) VALUES (?, ?, ?)",
        (call.get("ORNO"), adrt, dumps({**call.inputs, "CONO": call.cono, "DIVI": call.divi})),
    )
    return []


@mi("OIS100MI", "Confirm")
def confirm(call: Call) -> list[Record]:
    head = orders.confirm_batch(call.tx, call.get("ORNO"))
    # STAT is the batch order's status: 90 = "Customer Order Created"; below 90 the order stays in
    # OIS275 under its batch number with error messages (LstErrMsgOrder).
    if "ERRORS" in head:
        return [{"ORNO": head["ORNO"], "STAT": head["STAT"]}]
    return [{"ORNO": head["ORNO"], "STAT": orders.BATCH_CREATED}]


@mi("OIS100MI", "LstErrMsgOrder")
def list_order_errors(call: Call) -> list[Record]:
    """The error messages of a batch order Confirm left below 90 (none for one it created)."""
    head = orders.get_order(call.tx, call.get("ORNO"), "batch")
    return list(json.loads(head.get("ERRORS") or "[]"))


@mi("OIS100MI", "DelLine")
def delete_line(call: Call) -> list[Record]:
    orders.delete_line(call.tx, call.get("ORNO"), call.get("PONR"), call.get("POSX") or "0")
    return []


@mi("OIS100MI", "DelHead")
def delete_head(call: Call) -> list[Record]:
    orders.delete_head(call.tx, call.get("ORNO"))
    return []


@mi("OIS100MI", "GetHead")
def get_head(call: Call) -> list[Record]:
    return [orders.get_order(call.tx, call.get("ORNO"))]


@mi("OIS100MI", "LstHead")
def list_heads(call: Call) -> list[Record]:
    get_customer(call.tx, call.get("CUNO"))
    heads = call.tx.records(
        "SELECT data FROM orders WHERE cuno = ? AND kind = 'order' ORDER BY orno", (call.get("CUNO"),)
    )
    low, high = call.get("ORSL", "00"), call.get("ORST", "99")
    return [h for h in heads if low <= (h["ORSL"] or "00") and (h["ORST"] or "00") <= high]


@mi("OIS100MI", "LstLine")
def list_lines(call: Call) -> list[Record]:
    orders.get_order(call.tx, call.get("ORNO"))
    lines = orders.order_lines(call.tx, call.get("ORNO"))
    if "ITNO" in call.inputs:
        lines = [line for line in lines if line["ITNO"] == call.get("ITNO")]
    if "ORST" in call.inputs:
        lines = [line for line in lines if line["ORST"] == call.get("ORST")]
    return lines
