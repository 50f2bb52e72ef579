"""CRS610MI — customers."""

from __future__ import annotations

import datetime as dt
import fnmatch

from .errors import does_not_exist, invalid, nok
from .registry import Call, Record, mi
from .seed import TEMPLATE_CUSTOMER
from .store import Tx, dumps

_COPIED_FROM_INPUT = (
    "LNCD",
    "CUNM",
    "CUA1",
    "CUA2",
    "CUA3",
    "CUA4",
    "PONO",
    "TOWN",
    "CSCD",
    "ECAR",
    "PHNO",
    "PHN2",
    "TFNO",
    "CUTP",
    "ALCU",
    "YREF",
    "MAIL",
    "STAT",
    "CUCD",
    "VRNO",
)


def get_customer(tx: Tx, cuno: str, field: str = "CUNO") -> Record:
    record = tx.record("SELECT data FROM customers WHERE cuno = ?", (cuno,))
    if record is None:
        raise does_not_exist("WCU0203", "Customer number", field, cuno)
    return record


@mi("CRS610MI", "Add")
def add(call: Call) -> list[Record]:
    template = get_customer(call.tx, call.get("CUTM"), field="CUTM")
    if template["CUNO"] != TEMPLATE_CUSTOMER and template.get("TEMPLATE") != "1":
        raise nok("WCUTM03", "Template customer &1 does not exist", "CUTM", call.get("CUTM"))
    cuno = call.get("CUNO")
    if cuno:
        if call.tx.one("SELECT 1 FROM customers WHERE cuno = ?", (cuno,)):
            raise nok("WCU0204", "Customer number &1 already exists", "CUNO", cuno)
    else:
        cuno = f"AZ{call.tx.next_number('customer', 1):08d}"
    if "CUTP" in call.inputs and call.get("CUTP") not in {"0", "1", "2", "3"}:
        raise invalid("CUTP", call.get("CUTP"))
    today = dt.date.today().strftime("%Y%m%d")
    record = {**template, "CUNO": cuno, "CONO": call.cono, "DIVI": call.divi, "LMDT": today, "RGDT": today}
    record.pop("TEMPLATE", None)
    record.update({k: call.inputs[k] for k in _COPIED_FROM_INPUT if k in call.inputs})
    call.tx.execute("INSERT INTO customers (cuno, data) VALUES (?, ?)", (cuno, dumps(record)))
    return [{"CUNO": cuno, "ERRM": ""}]


@mi("CRS610MI", "GetBasicData")
def get_basic_data(call: Call) -> list[Record]:
    return [get_customer(call.tx, call.get("CUNO"))]


@mi("CRS610MI", "LstByNumber")
def list_by_number(call: Call) -> list[Record]:
    # CUNO is the start position, as in M3.
    return call.tx.records("SELECT data FROM customers WHERE cuno >= ? ORDER BY cuno", (call.get("CUNO"),))


@mi("CRS610MI", "SearchCustomer")
def search(call: Call) -> list[Record]:
    """``SQRY`` = space-separated ``FIELD:value`` terms, ``*`` wildcard, all terms must match."""
    terms: list[tuple[str, str]] = []
    for term in call.get("SQRY").split():
        name, sep, pattern = term.partition(":")
        if not sep or not name.isalnum():
            raise invalid("SQRY", call.get("SQRY"), f"is invalid: term {term!r} is not FIELD:value")
        terms.append((name.upper(), pattern.upper()))
    customers = call.tx.records("SELECT data FROM customers ORDER BY cuno")
    return [
        c for c in customers if all(fnmatch.fnmatchcase(c.get(name, "").upper(), pattern) for name, pattern in terms)
    ]
