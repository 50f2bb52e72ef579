"""Reconciliation across the settlements of a run and across runs (issue 12, item 1), in process
against an M3 sandbox configured as a live M3.

Four AMZUS orders are entered and invoiced in M3, and recorded as Amazon.com (US) orders in the
id map, as order sync records them:

- ORDER_SOLD_1, 50.00, invoiced 2024-10-15: sold in settlement 1 (window 2024-10-09 to 10-23);
- ORDER_SOLD_2, 100.00, invoiced 2024-10-16 (inside settlement 1's window): sold in settlement 2
  (window 2024-10-23 to 11-06), of the same run;
- ORDER_EARLIER, 30.00, invoiced 2024-10-17: settled by settlement 19999999999 of an earlier run
  (recorded in the state store);
- ORDER_OPEN, 20.00, invoiced 2024-10-18: settled by nobody.

Settlement 1 reads every invoice dated in its window as a "not settled" candidate: only
ORDER_OPEN is not settled. ORDER_SOLD_2 is matched in settlement 2 (100.00 settled, 100.00
invoiced), and nowhere listed as not settled.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
from _live_m3 import invoice_amzus_orders, live_m3  # noqa: F401 - a fixture

from connectors.state import StateStore
from tests._settlement_builders import V2_HEADER as HEADER

ORDER_SOLD_1, ORDER_SOLD_2 = "111-0000000-7100001", "111-0000000-7100002"
ORDER_EARLIER, ORDER_OPEN = "111-0000000-7100003", "111-0000000-7100004"
SETTLEMENT_1, SETTLEMENT_2, EARLIER = "21000000001", "21000000002", "19999999999"


def _settlement(folder: Path, sid: str, start: str, end: str, order: str, principal: str, commission: str) -> Path:
    """One sale (principal and commission) of ``order``, posted the day after ``start``."""
    total = Decimal(principal) + Decimal(commission)
    head = f"{sid}\t{start} 14:28:38 UTC\t{end} 14:28:38 UTC\t{end} 14:28:39 UTC\t{total}\tUSD" + "\t" * 18
    day = f"{start[:8]}{int(start[8:]) + 1:02d}"

    def row(amount_type: str, description: str, amount: str) -> str:
        return (
            f"{sid}\t\t\t\t\t\tOrder\t{order}\t{order}\t\tSHP\tAmazon.com\t{amount_type}\t{description}\t{amount}\t"
            f"AFN\t{day}\t{day} 02:58:02 UTC\t9000001\t\t\tSKU-1\t1\t"
        )

    path = folder / f"{sid}.tsv"
    rows = [row("ItemPrice", "Principal", principal), row("ItemFees", "Commission", commission)]
    path.write_text("\n".join([HEADER, head, *rows]) + "\n", encoding="utf-8")
    return path


def _invoice(base_url: str, ionapi: Path, home: Path) -> None:
    """Each order entered, invoiced on its date (one advance per date) and recorded as a US order."""
    orders = (
        (ORDER_SOLD_1, "50.00", "20241015"),
        (ORDER_SOLD_2, "100.00", "20241016"),
        (ORDER_EARLIER, "30.00", "20241017"),
        (ORDER_OPEN, "20.00", "20241018"),
    )
    ornos = invoice_amzus_orders(base_url, ionapi, orders)
    with StateStore.for_home(home) as state:
        for cuor, orno in ornos.items():
            state.map_id("order", cuor, orno, marketplace="US")
        state.record_settled_orders(EARLIER, [ORDER_EARLIER])  # what a run before this one recorded


def test_orders_settled_in_another_settlement_or_an_earlier_run_are_not_not_settled(
    prefect_api_url: str, live_m3, tmp_path: Path
) -> None:
    from flows.settlement import settlement_reconciliation

    server, configure, ionapi = live_m3
    home = configure("brief")
    _invoice(server.base_url, ionapi, home)
    files = [
        _settlement(tmp_path, SETTLEMENT_1, "2024-10-09", "2024-10-23", ORDER_SOLD_1, "50.00", "-7.50"),
        _settlement(tmp_path, SETTLEMENT_2, "2024-10-23", "2024-11-06", ORDER_SOLD_2, "100.00", "-15.00"),
    ]
    workbook = tmp_path / "run.xlsx"
    # Settlement 2 first on the command line: the sheet lists settlements oldest first all the same.
    result = settlement_reconciliation(files=[str(files[1]), str(files[0])], home=str(home), report=str(workbook))

    by_id = {s["settlement_id"]: s for s in result["settlements"]}
    assert {sid: s["status"] for sid, s in by_id.items()} == {SETTLEMENT_1: "posted", SETTLEMENT_2: "posted"}
    first, second = by_id[SETTLEMENT_1]["reconciliation"], by_id[SETTLEMENT_2]["reconciliation"]
    assert (first["matched"], first["not_settled"], second["matched"], second["not_settled"]) == (1, 1, 1, 0)

    sheet = openpyxl.load_workbook(workbook, data_only=True)["Reconciliation"]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    listed = [
        {h: v for h, v in zip(header, row) if h in ("Settlement ID", "Order ID", "Category", "Settled in")}
        for row in rows[1:]
    ]
    assert listed == [
        {"Settlement ID": SETTLEMENT_1, "Order ID": ORDER_SOLD_1, "Category": "Matched", "Settled in": SETTLEMENT_1},
        {
            "Settlement ID": SETTLEMENT_1,
            "Order ID": ORDER_OPEN,
            "Category": "Not settled (M3 only)",
            "Settled in": None,
        },
        {"Settlement ID": SETTLEMENT_2, "Order ID": ORDER_SOLD_2, "Category": "Matched", "Settled in": SETTLEMENT_2},
    ]
    [open_row] = [dict(zip(header, row)) for row in rows[1:] if row[header.index("Order ID")] == ORDER_OPEN]
    assert open_row["Invoice date"] == datetime(2024, 10, 18)
    assert Decimal(str(open_row["Difference"])) == Decimal("-20.00")

    # Both posted settlements' sales are recorded for the runs to come.
    with StateStore.for_home(home) as state:
        assert state.settlements_of_orders([ORDER_SOLD_1, ORDER_SOLD_2, ORDER_EARLIER, ORDER_OPEN]) == [
            (ORDER_SOLD_1, SETTLEMENT_1),
            (ORDER_SOLD_2, SETTLEMENT_2),
            (ORDER_EARLIER, EARLIER),
        ]
