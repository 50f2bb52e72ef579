"""MMS200MI / MMS080MI / MMS060MI — items and warehouse balances; OIS017MI — sales price lists."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal

from .errors import does_not_exist, nok
from .registry import Call, Record, mi
from .seed import FACI, PRICE_LISTS, SEED_DATE
from .store import Tx


def get_item(tx: Tx, itno: str) -> Record:
    record = tx.record("SELECT data FROM items WHERE itno = ?", (itno,))
    if record is None:
        raise does_not_exist("WIT0103", "Item number", "ITNO", itno)
    return record


def check_warehouse(tx: Tx, whlo: str) -> None:
    if tx.one("SELECT 1 FROM warehouses WHERE whlo = ?", (whlo,)) is None:
        raise does_not_exist("WWH0103", "Warehouse", "WHLO", whlo)


def _balances(call: Call) -> list[sqlite3.Row]:
    check_warehouse(call.tx, call.get("WHLO"))
    select = "SELECT b.whlo, b.itno, b.stqt, b.alqt, i.data FROM balances b JOIN items i ON i.itno = b.itno "
    if "ITNO" in call.inputs:  # one item: its own query, so SQLite looks it up by key (an OR scans the warehouse)
        get_item(call.tx, call.get("ITNO"))
        return call.tx.all(select + "WHERE b.whlo = ? AND b.itno = ?", (call.get("WHLO"), call.get("ITNO")))
    return call.tx.all(select + "WHERE b.whlo = ? ORDER BY b.itno", (call.get("WHLO"),))


@mi("MMS200MI", "GetItmBasic")
def get_item_basic(call: Call) -> list[Record]:
    return [get_item(call.tx, call.get("ITNO"))]


@mi("MMS200MI", "GetItmPrice")
def get_item_price(call: Call) -> list[Record]:
    """The item's basic sales price: SAPR for SACD units of SPUN, in currency CUCS (the seed's
    item master holds them; the admin API's /sandbox/items changes them)."""
    item = get_item(call.tx, call.get("ITNO"))
    per = item.get("SACD") or "1"
    sales_price = item.get("SAPR", "")
    basic = str((Decimal(sales_price) / Decimal(per)).quantize(Decimal("0.000001"))) if sales_price else ""
    return [
        {
            "SAPR": sales_price,
            "SACD": per,
            "CUCS": item.get("CUCS", ""),
            "SPUN": item.get("SPUN") or item["UNMS"],
            "SAPB": basic,
            "PDCC": "2",
            "SPDT": item.get("LMDT", SEED_DATE),
            "LMDT": item.get("LMDT", SEED_DATE),
        }
    ]


@mi("MMS200MI", "GetItmWhsBal")
def get_item_warehouse_balance(call: Call) -> list[Record]:
    rows = _balances(call)
    if not rows:
        raise does_not_exist("WIT0103", "Item number", "ITNO", call.get("ITNO"))
    row = rows[0]
    on_hand, allocated = row["stqt"], row["alqt"]
    available = str(on_hand - allocated)
    return [
        {
            "WHLO": row["whlo"],
            "ITNO": row["itno"],
            "FACI": FACI,
            "STQT": str(on_hand),
            "QUQT": "0",
            "RJQT": "0",
            "ALQT": str(allocated),
            "AV01": available,
            "AVAL": available,
            "REQT": "0",
            "PLQT": "0",
            "ORQT": "0",
            "AV02": available,
        }
    ]


@mi("MMS080MI", "LstItemBal")
def list_item_balances(call: Call) -> list[Record]:
    return [
        {
            "WHLO": r["whlo"],
            "ITNO": r["itno"],
            "ITDS": json.loads(r["data"])["ITDS"],
            "STQT": str(r["stqt"]),
            "ALQT": str(r["alqt"]),
            "AVAL": str(r["stqt"] - r["alqt"]),
        }
        for r in _balances(call)
    ]


@mi("MMS060MI", "LstBalID")
def list_balance_ids(call: Call) -> list[Record]:
    # One balance identity per item and warehouse: location A01, no lot, status 2 (approved).
    return [
        {
            "WHLO": r["whlo"],
            "ITNO": r["itno"],
            "WHSL": "A01",
            "BANO": "",
            "STAS": "2",
            "STQT": str(r["stqt"]),
            "ALQT": str(r["alqt"]),
            "ALOC": "1",
            "MVB1": str(r["stqt"] - r["alqt"]),
        }
        for r in _balances(call)
    ]


@mi("OIS017MI", "GetBasePrice")
def get_base_price(call: Call) -> list[Record]:
    """The item's base price in a price list (the sandbox's lists hold one price per item, valid
    from the seed date; a customer or from date given is accepted and does not change it)."""
    prrf, cucd, itno = call.get("PRRF"), call.get("CUCD"), call.get("ITNO")
    if PRICE_LISTS.get(prrf) != cucd:
        raise does_not_exist("WPRR003", "Price list", "PRRF", f"{prrf}/{cucd}")
    get_item(call.tx, itno)
    row = call.tx.one("SELECT sapr FROM prices WHERE itno = ? AND cucd = ?", (itno, cucd))
    if row is None:
        raise nok("XRE0103", "Record does not exist", "ITNO", itno)
    return [
        {"PRRF": prrf, "CUCD": cucd, "CUNO": call.get("CUNO"), "ITNO": itno, "FVDT": SEED_DATE, "SAPR": row["sapr"]}
    ]
